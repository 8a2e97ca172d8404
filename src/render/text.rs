//! Plain-text layout: lines of at most 78 columns that never split a word,
//! so a URL always stays whole (a URL longer than a line stands alone).

use unicode_width::UnicodeWidthStr;

/// The line limit of RFC 5322 §2.1.1.
pub const WIDTH: usize = 78;

/// Builds the text part block by block.
#[derive(Debug, Default)]
pub struct TextWriter {
    out: String,
}

impl TextWriter {
    /// Starts a new block, separated from the previous one by a blank line.
    pub fn blank_line(&mut self) {
        if self.out.is_empty() {
            return;
        }
        while self.out.ends_with("\n\n") {
            self.out.pop();
        }
        if !self.out.ends_with('\n') {
            self.out.push('\n');
        }
        self.out.push('\n');
    }

    /// Writes `text` wrapped to the width, the first line after `first`
    /// and the others after `rest` (for list bullets and quotes).
    pub fn wrapped(&mut self, text: &str, first: &str, rest: &str) {
        for (i, paragraph_line) in text.split('\n').enumerate() {
            let prefix = if i == 0 { first } else { rest };
            wrap_into(&mut self.out, paragraph_line, prefix, rest);
        }
    }

    /// A heading underlined with `=` (level 1) or `-`.
    pub fn heading(&mut self, text: &str, level: u8) {
        self.blank_line();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        self.wrapped(&text, "", "");
        let width = text.width().min(WIDTH);
        let underline = if level <= 1 { "=" } else { "-" };
        self.out.push_str(&underline.repeat(width.max(3)));
        self.out.push('\n');
    }

    /// Writes a line as it is (a marker or a short literal).
    pub fn raw_line(&mut self, line: &str) {
        self.out.push_str(line);
        self.out.push('\n');
    }

    pub fn finish(mut self) -> String {
        while self.out.ends_with("\n\n") {
            self.out.pop();
        }
        self.out
    }
}

/// Greedy word wrap. Words are never split; a word wider than the line
/// (a long URL) gets a line of its own.
fn wrap_into(out: &mut String, text: &str, first: &str, rest: &str) {
    let mut line = String::from(first);
    let mut line_width = first.width();
    let mut has_word = false;
    for word in text.split_whitespace() {
        let w = word.width();
        if has_word && line_width + 1 + w > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(rest);
            line_width = rest.width();
            has_word = false;
        }
        if has_word {
            line.push(' ');
            line_width += 1;
        }
        line.push_str(word);
        line_width += w;
        has_word = true;
    }
    if has_word || !first.trim().is_empty() {
        out.push_str(line.trim_end());
        out.push('\n');
    } else {
        out.push('\n');
    }
}

/// True when a text line is within the limit or is one lone URL.
pub fn line_ok(line: &str) -> bool {
    if line.width() <= WIDTH {
        return true;
    }
    let mut words = line.split_whitespace();
    matches!((words.next(), words.next()), (Some(word), None) if is_url(word))
}

fn is_url(word: &str) -> bool {
    let word = word.trim_start_matches(['<', '(']);
    word.starts_with("https://") || word.starts_with("http://") || word.starts_with("mailto:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_78_and_keeps_urls_whole() {
        let url = format!("<https://example.org/{}>", "a".repeat(90));
        let text = format!("{} {} end", "word ".repeat(30), url);
        let mut w = TextWriter::default();
        w.wrapped(&text, "", "");
        let out = w.finish();
        for line in out.lines() {
            assert!(line.width() <= WIDTH || line == url, "{line:?}");
        }
        assert!(out.contains(&url));
    }

    #[test]
    fn hanging_indent_for_bullets() {
        let mut w = TextWriter::default();
        w.wrapped(&"alpha ".repeat(20), "  * ", "    ");
        let out = w.finish();
        let lines: Vec<_> = out.lines().collect();
        assert!(lines[0].starts_with("  * alpha"));
        assert!(lines[1].starts_with("    alpha"));
    }
}
