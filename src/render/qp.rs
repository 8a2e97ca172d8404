//! Bodies pre-encoded as quoted-printable, so a message costs a copy rather
//! than an encode.
//!
//! Each literal piece of a template is encoded once, with lines of at most
//! 75 characters and a soft line break (`=` CRLF) at its end when it does not
//! end a line. Every piece then starts at column 0, so a subscriber's values
//! can be encoded on their own and the concatenation is valid
//! quoted-printable with no line over 76 characters (RFC 2045 §6.7).

use quoted_printable::{InputMode, Options};

use crate::render::template::{Part, Slot, SlotValues, Template};

/// A template whose literal pieces are already quoted-printable.
#[derive(Debug, Clone)]
pub struct QpTemplate {
    template: Template,
    pieces: Vec<QpPiece>,
    literal_len: usize,
}

#[derive(Debug, Clone)]
enum QpPiece {
    Literal(Vec<u8>),
    Hole(Slot),
}

impl QpTemplate {
    pub fn new(template: &Template) -> QpTemplate {
        let pieces: Vec<QpPiece> = template
            .parts()
            .filter_map(|part| match part {
                Part::Literal("") => None,
                Part::Literal(text) => Some(QpPiece::Literal(encode(text))),
                Part::Hole(slot) => Some(QpPiece::Hole(slot)),
            })
            .collect();
        let literal_len = pieces
            .iter()
            .map(|p| match p {
                QpPiece::Literal(b) => b.len(),
                QpPiece::Hole(_) => 0,
            })
            .sum();
        QpTemplate {
            template: template.clone(),
            pieces,
            literal_len,
        }
    }

    /// The encoded body for one subscriber.
    pub fn fill(&self, values: &SlotValues) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.literal_len + 1024);
        let mut value = String::new();
        for piece in &self.pieces {
            match piece {
                QpPiece::Literal(bytes) => out.extend_from_slice(bytes),
                QpPiece::Hole(slot) => {
                    value.clear();
                    self.template.value_into(*slot, values, &mut value);
                    encode_into(&mut out, &value);
                }
            }
        }
        // A soft break at the very end would join the body to the boundary.
        if out.ends_with(b"=\r\n") {
            out.truncate(out.len() - 3);
        }
        out
    }
}

/// Longest encoded line before its soft line break `=`.
const LINE: usize = 75;

/// Bytes quoted-printable writes as they are anywhere: `!` to `~` but `=`.
const PRINTABLE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0x21;
    while b <= 0x7e {
        table[b] = b != b'=' as usize;
        b += 1;
    }
    table
};

/// Encodes a subscriber's value (LF or CRLF line ends) onto `out`, ending at
/// column 0 like [`encode`]; written for speed, since every message encodes
/// its values. A character's bytes are never split across lines, and white
/// space before a line break is encoded.
fn encode_into(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = text.as_bytes();
    let n = bytes.len();
    // A byte written as it is: printable ASCII but `=`, and space or tab
    // unless a line ends after it.
    let plain = |j: usize| {
        let b = bytes[j];
        PRINTABLE[b as usize]
            || ((b == b' ' || b == b'\t') && j + 1 < n && !matches!(bytes[j + 1], b'\n' | b'\r'))
    };
    out.reserve(n + n / 16 + 8);
    let mut column = 0;
    let mut i = 0;
    while i < n {
        let b = bytes[i];
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            out.extend_from_slice(b"\r\n");
            column = 0;
            i += if b == b'\r' { 2 } else { 1 };
            continue;
        }
        if plain(i) {
            if column == LINE {
                out.extend_from_slice(b"=\r\n");
                column = 0;
            }
            // A run of plain bytes, as far as the line allows.
            let end = (i + LINE - column).min(n);
            let mut j = i + 1;
            while j < end && plain(j) {
                j += 1;
            }
            out.extend_from_slice(&bytes[i..j]);
            column += j - i;
            i = j;
            continue;
        }
        // One character, escaped byte by byte, never split across lines.
        let len = match b {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        }
        .min(n - i);
        if column + 3 * len > LINE {
            out.extend_from_slice(b"=\r\n");
            column = 0;
        }
        for &byte in &bytes[i..i + len] {
            out.extend_from_slice(&[b'=', HEX[(byte >> 4) as usize], HEX[(byte & 15) as usize]]);
        }
        column += 3 * len;
        i += len;
    }
    if column > 0 {
        out.extend_from_slice(b"=\r\n");
    }
}

/// Encodes text (LF or CRLF line ends) so that it ends at column 0.
fn encode(text: &str) -> Vec<u8> {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let options = Options::default()
        .input_mode(InputMode::Text)
        .line_length_limit(75);
    let mut encoded = quoted_printable::encode_with_options(crlf, options).into_bytes();
    if !encoded.is_empty() && !encoded.ends_with(b"\r\n") {
        encoded.extend_from_slice(b"=\r\n");
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> String {
        String::from_utf8(
            quoted_printable::decode(bytes, quoted_printable::ParseMode::Strict).unwrap(),
        )
        .unwrap()
    }

    /// `text` encoded after a literal piece (the crate's encoding of
    /// `<p>` and the text up to its first `x`) is valid and decodes back.
    fn check_encoded(text: &str) -> Result<(), String> {
        let literal = format!("<p>{}", text.split('x').next().unwrap_or(""));
        let mut out = encode(&literal);
        encode_into(&mut out, text);
        let encoded = String::from_utf8(out.clone()).map_err(|e| e.to_string())?;
        for line in encoded.split("\r\n") {
            if line.len() > 76 || line.ends_with([' ', '\t']) || line.contains('\r') {
                return Err(format!("line {line:?}"));
            }
        }
        if !out.ends_with(b"\r\n") {
            return Err("does not end at column 0".into());
        }
        // As `fill` does: a soft break at the very end is not kept.
        let body = out.strip_suffix(b"=\r\n").unwrap_or(&out);
        let decoded = quoted_printable::decode(body, quoted_printable::ParseMode::Strict)
            .map_err(|e| format!("{e:?} in {encoded:?}"))?;
        let crlf = |t: &str| t.replace("\r\n", "\n").replace('\n', "\r\n");
        let wanted = crlf(&literal) + &crlf(text);
        if decoded != wanted.as_bytes() {
            return Err(format!(
                "decodes to {:?}",
                String::from_utf8_lossy(&decoded)
            ));
        }
        Ok(())
    }

    #[test]
    fn values_encode_to_valid_lines_that_decode_back() {
        for text in [
            "",
            "Zoë",
            "a \nb\t\r\nc ",
            "=?utf-8?b?QmNjOg==?=",
            &"é".repeat(60),
            &"a".repeat(200),
            &format!("{} 李伟 {}", "w ".repeat(37), "x".repeat(80)),
            "\r lone CR and a final space ",
        ] {
            assert_eq!(check_encoded(text), Ok(()), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_value_encodes_to_valid_lines(text in "\\PC{0,200}|[ a-zé=\r\n\t]{0,200}") {
            proptest::prop_assert_eq!(check_encoded(&text), Ok(()));
        }
    }

    #[test]
    fn concatenation_decodes_to_the_filled_template() {
        let long = "é".repeat(60);
        let marked = format!(
            "<p>{long} Dear {}!</p>\n<a href=\"{}\">x</a>\nend ",
            Template::marker(Slot::Greeting),
            Template::marker(Slot::UnsubscribeUrl)
        );
        let template = Template::from_marked(&marked, true);
        let values = SlotValues {
            greeting: "Zoë <&>",
            unsubscribe_url: &format!("https://example.org/u/{}", "t".repeat(120)),
            email: "z@example.org",
            merge: &[],
        };
        let qp = QpTemplate::new(&template).fill(&values);
        let text = String::from_utf8(qp.clone()).unwrap();
        for line in text.split("\r\n") {
            assert!(line.len() <= 76, "{} chars: {line}", line.len());
        }
        assert!(qp.is_ascii());
        assert_eq!(decode(&qp), template.fill(&values).replace('\n', "\r\n"));
    }
}
