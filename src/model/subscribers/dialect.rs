//! The CSV dialect: which delimiter the header line uses.

/// Counts candidate delimiters outside quotes in the first line with a name in it.
#[derive(Default)]
pub(super) struct Sniffer {
    in_quotes: bool,
    /// Whether the current line has anything but delimiters and spaces.
    content: bool,
    done: bool,
    counts: [u64; 3],
}

impl Sniffer {
    const CANDIDATES: [u8; 3] = [b',', b';', b'\t'];

    pub(super) fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.done {
                return;
            }
            match b {
                b'"' => {
                    self.in_quotes = !self.in_quotes;
                    self.content = true;
                }
                _ if self.in_quotes => {}
                b'\r' | b'\n' if self.content => self.done = true,
                // A blank line, or one like `,,,`: the header comes later.
                b'\r' | b'\n' => self.counts = [0; 3],
                _ => match Self::CANDIDATES.iter().position(|&c| c == b) {
                    Some(i) => self.counts[i] += 1,
                    None => self.content |= !b.is_ascii_whitespace(),
                },
            }
        }
    }

    /// The most frequent candidate; `,` on a tie or when there is none.
    pub(super) fn delimiter(&self) -> u8 {
        let mut best = 0;
        for i in 1..Self::CANDIDATES.len() {
            if self.counts[i] > self.counts[best] {
                best = i;
            }
        }
        Self::CANDIDATES[best]
    }
}
