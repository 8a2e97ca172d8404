//! Plain-text layout: lines of at most 78 columns that never split a word,
//! so a URL always stays whole (a URL longer than a line stands alone).
//!
//! A merge field's value is not known when the issue is rendered, so a
//! block (a paragraph, list item, heading…) that holds a field is not
//! wrapped then: it is kept as a [`TextBlock`] and stands in the text as one
//! hole ([`Slot::Text`]), which each message fills with the values and wraps
//! by the same rules. Blocks without a field are wrapped once, as before.
//! So every message's text part keeps to the width, whatever the values.

use std::borrow::Cow;

use unicode_width::UnicodeWidthStr;

use super::template::{Hole, Slot, Template};
use crate::merge::{self, Segment};

/// The line limit of RFC 5322 §2.1.1.
pub const WIDTH: usize = 78;

/// Builds the text part block by block.
#[derive(Debug, Default)]
pub struct TextWriter {
    out: String,
    blocks: Vec<TextBlock>,
}

/// A block of the text part that holds merge fields, wrapped per message.
#[derive(Debug, Clone, PartialEq)]
pub struct TextBlock {
    layout: Layout,
    pieces: Vec<BlockPiece>,
}

#[derive(Debug, Clone, PartialEq)]
enum Layout {
    /// [`TextWriter::wrapped`] with these prefixes.
    Wrapped { first: String, rest: String },
    /// [`TextWriter::heading`] of this level (without the blank line before).
    Heading(u8),
}

#[derive(Debug, Clone, PartialEq)]
enum BlockPiece {
    Text(String),
    Field(usize),
}

impl TextBlock {
    fn new(text: &str, layout: Layout) -> TextBlock {
        let pieces = merge::segments(text)
            .into_iter()
            .map(|s| match s {
                Segment::Text(t) => BlockPiece::Text(t.to_string()),
                Segment::Field(i) => BlockPiece::Field(i),
            })
            .collect();
        TextBlock { layout, pieces }
    }

    /// The block for one subscriber: the values put in and wrapped, without
    /// the final line break. A value missing from `values` is empty.
    pub fn fill(&self, values: &[Cow<str>]) -> String {
        let mut text = String::new();
        for piece in &self.pieces {
            match piece {
                BlockPiece::Text(t) => text.push_str(t),
                BlockPiece::Field(i) => text.push_str(values.get(*i).map_or("", |v| v)),
            }
        }
        let mut out = String::with_capacity(text.len() + 16);
        match &self.layout {
            Layout::Wrapped { first, rest } => wrap_lines(&mut out, &text, first, rest),
            Layout::Heading(level) => write_heading(&mut out, &text, *level),
        }
        if out.ends_with('\n') {
            out.pop();
        }
        out
    }

    /// Bytes that change when the block changes, for a hole's digest.
    pub fn describe(&self) -> String {
        format!("{self:?}")
    }
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
    /// Text with a merge field is kept as a block filled per message.
    pub fn wrapped(&mut self, text: &str, first: &str, rest: &str) {
        if merge::has_placeholder(text) {
            let layout = Layout::Wrapped {
                first: first.to_string(),
                rest: rest.to_string(),
            };
            self.defer(TextBlock::new(text, layout));
            return;
        }
        wrap_lines(&mut self.out, text, first, rest);
    }

    /// A heading underlined with `=` (level 1) or `-`; one with a merge
    /// field is kept as a block filled per message.
    pub fn heading(&mut self, text: &str, level: u8) {
        self.blank_line();
        if merge::has_placeholder(text) {
            self.defer(TextBlock::new(text, Layout::Heading(level)));
            return;
        }
        write_heading(&mut self.out, text, level);
    }

    /// A hole on a line of its own for a block.
    fn defer(&mut self, block: TextBlock) {
        let index = self.blocks.len();
        self.blocks.push(block);
        self.out.push_str(&Template::marker(Slot::Text(Hole {
            index: index as u32,
            digest: 0,
        })));
        self.out.push('\n');
    }

    /// Writes a line as it is (a marker or a short literal).
    pub fn raw_line(&mut self, line: &str) {
        self.out.push_str(line);
        self.out.push('\n');
    }

    pub fn finish(self) -> String {
        self.finish_with_blocks().0
    }

    /// The text with a hole for each block, and the blocks.
    pub fn finish_with_blocks(mut self) -> (String, Vec<TextBlock>) {
        while self.out.ends_with("\n\n") {
            self.out.pop();
        }
        (self.out, self.blocks)
    }
}

fn wrap_lines(out: &mut String, text: &str, first: &str, rest: &str) {
    for (i, paragraph_line) in text.split('\n').enumerate() {
        let prefix = if i == 0 { first } else { rest };
        wrap_into(out, paragraph_line, prefix, rest);
    }
}

fn write_heading(out: &mut String, text: &str, level: u8) {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    wrap_lines(out, &text, "", "");
    let width = text.width().min(WIDTH);
    let underline = if level <= 1 { "=" } else { "-" };
    out.push_str(&underline.repeat(width.max(3)));
    out.push('\n');
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
