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
use crate::render::merge::{self, Segment};

/// The line limit of RFC 5322 §2.1.1.
pub const WIDTH: usize = 78;

/// Builds the text part block by block.
#[derive(Debug, Default)]
pub struct TextWriter {
    out: String,
    blocks: Vec<TextBlock>,
    /// The length of `out` just after the last [`TextWriter::mark`].
    marked_at: Option<usize>,
}

/// A block of the text part that holds merge fields, wrapped per message.
///
/// Its words are split and measured once, when the issue is rendered; a
/// message only measures the words its values make.
#[derive(Debug, Clone, PartialEq)]
pub struct TextBlock {
    layout: Layout,
    /// The block's lines (split at its hard line breaks), as words.
    lines: Vec<Vec<Word>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Layout {
    /// [`TextWriter::wrapped`] with these prefixes.
    Wrapped { first: String, rest: String },
    /// [`TextWriter::heading`] of this level (without the blank line before).
    Heading(u8),
}

#[derive(Debug, Clone, PartialEq)]
enum Word {
    /// A word of the issue's own text, with its display width.
    Fixed(String, usize),
    /// A word with merge fields in it, perhaps joined to text (`{{a}},`); a
    /// value with spaces in it makes several words, an empty one none.
    Merged(Vec<BlockPiece>),
}

#[derive(Debug, Clone, PartialEq)]
enum BlockPiece {
    Text(String),
    Field(usize),
}

impl TextBlock {
    fn new(text: &str, layout: Layout) -> TextBlock {
        let word = |w: &str| {
            if merge::has_placeholder(w) {
                Word::Merged(
                    merge::segments(w)
                        .into_iter()
                        .map(|s| match s {
                            Segment::Text(t) => BlockPiece::Text(t.to_string()),
                            Segment::Field(i) => BlockPiece::Field(i),
                        })
                        .collect(),
                )
            } else {
                Word::Fixed(w.to_string(), width(w))
            }
        };
        let lines = match layout {
            // A heading is folded onto one line first.
            Layout::Heading(_) => vec![text.split_whitespace().map(word).collect()],
            Layout::Wrapped { .. } => text
                .split('\n')
                .map(|line| line.split_whitespace().map(word).collect())
                .collect(),
        };
        TextBlock { layout, lines }
    }

    /// The block for one subscriber: the values put in and wrapped, without
    /// the final line break. A value missing from `values` is empty.
    pub fn fill(&self, values: &[Cow<str>]) -> String {
        let mut out = String::new();
        self.fill_into(&mut out, values);
        out
    }

    /// [`TextBlock::fill`], appended to `out`.
    pub fn fill_into(&self, out: &mut String, values: &[Cow<str>]) {
        // The words the values make, in one buffer: (start, end, width).
        let mut merged = String::new();
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        // For each merged word in order, its range in `spans`.
        let mut merged_words: Vec<(usize, usize)> = Vec::new();
        for word in self.lines.iter().flatten() {
            if let Word::Merged(pieces) = word {
                let start = merged.len();
                for piece in pieces {
                    match piece {
                        BlockPiece::Text(t) => merged.push_str(t),
                        BlockPiece::Field(i) => {
                            merged.push_str(values.get(*i).map_or("", |v| v.as_ref()))
                        }
                    }
                }
                let first_span = spans.len();
                let base = merged.as_ptr() as usize;
                for part in merged[start..].split_whitespace() {
                    let offset = part.as_ptr() as usize - base;
                    spans.push((offset, offset + part.len(), width(part)));
                }
                merged_words.push((first_span, spans.len()));
            }
        }
        let mut next = 0;
        match &self.layout {
            Layout::Wrapped { first, rest } => {
                for (i, line) in self.lines.iter().enumerate() {
                    let prefix = if i == 0 { first } else { rest };
                    let words = line_words(line, &merged, &spans, &merged_words, &mut next);
                    wrap_words(out, words.into_iter(), prefix, rest);
                }
            }
            Layout::Heading(level) => {
                let line = self.lines.first().map_or(&[][..], |l| l);
                let words = line_words(line, &merged, &spans, &merged_words, &mut next);
                let text_width =
                    words.iter().map(|(_, w)| w).sum::<usize>() + words.len().saturating_sub(1);
                wrap_words(out, words.into_iter(), "", "");
                push_underline(out, text_width, *level);
            }
        }
        if out.ends_with('\n') {
            out.pop();
        }
    }

    /// Bytes that change when the block changes, for a hole's digest.
    pub fn describe(&self) -> String {
        format!("{self:?}")
    }
}

/// The words of one line with their widths: its own, and those its merged
/// words made (taken in order from `spans`).
fn line_words<'a>(
    line: &'a [Word],
    merged: &'a str,
    spans: &[(usize, usize, usize)],
    merged_words: &[(usize, usize)],
    next_merged: &mut usize,
) -> Vec<(&'a str, usize)> {
    let mut words = Vec::with_capacity(line.len() + 4);
    for word in line {
        match word {
            Word::Fixed(text, w) => words.push((text.as_str(), *w)),
            Word::Merged(_) => {
                let (from, to) = merged_words[*next_merged];
                *next_merged += 1;
                for &(a, b, w) in &spans[from..to] {
                    words.push((&merged[a..b], w));
                }
            }
        }
    }
    words
}

impl TextWriter {
    /// Starts a new block, separated from the previous one by a blank line.
    pub fn blank_line(&mut self) {
        // A mark is written after a blank line: the block starts here.
        if self.out.is_empty() || self.marked_at == Some(self.out.len()) {
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

    /// Writes a marker that takes no room, after a blank line: the next
    /// block starts after it without another one.
    pub fn mark(&mut self, marker: &str) {
        self.out.push_str(marker);
        self.marked_at = Some(self.out.len());
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
    push_underline(out, text.width(), level);
}

fn push_underline(out: &mut String, text_width: usize, level: u8) {
    let underline = if level <= 1 { "=" } else { "-" };
    out.push_str(&underline.repeat(text_width.clamp(3, WIDTH)));
    out.push('\n');
}

/// Display width, with a shortcut for printable ASCII.
fn width(text: &str) -> usize {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        text.len()
    } else {
        text.width()
    }
}

/// Greedy word wrap. Words are never split; a word wider than the line
/// (a long URL) gets a line of its own.
fn wrap_into(out: &mut String, text: &str, first: &str, rest: &str) {
    wrap_words(
        out,
        text.split_whitespace().map(|w| (w, width(w))),
        first,
        rest,
    );
}

/// Greedy wrap of words with their widths, the first line after `first`,
/// the others after `rest`; each line ends in a line break.
fn wrap_words<'w>(
    out: &mut String,
    words: impl Iterator<Item = (&'w str, usize)>,
    first: &str,
    rest: &str,
) {
    let mut line_start = out.len();
    out.push_str(first);
    let mut line_width = width(first);
    let mut has_word = false;
    for (word, w) in words {
        if has_word && line_width + 1 + w > WIDTH {
            trim_end_from(out, line_start);
            out.push('\n');
            line_start = out.len();
            out.push_str(rest);
            line_width = width(rest);
            has_word = false;
        }
        if has_word {
            out.push(' ');
            line_width += 1;
        }
        out.push_str(word);
        line_width += w;
        has_word = true;
    }
    if has_word || !first.trim().is_empty() {
        trim_end_from(out, line_start);
    } else {
        out.truncate(line_start);
    }
    out.push('\n');
}

/// Removes trailing white space of the line that starts at `start`.
fn trim_end_from(out: &mut String, start: usize) {
    let keep = start + out[start..].trim_end().len();
    out.truncate(keep);
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

    /// A block with merge fields, filled per message, reads exactly as the
    /// same text written with the values in it.
    #[test]
    fn a_block_with_fields_wraps_like_the_filled_text() {
        let mut fields = crate::render::merge::Fields::default();
        let source = format!(
            "{{{{first_name|Friend}}}}, on 22 June {} ({{{{city}}}}),\nand then {}",
            "the government introduced its Bill of Rights ".repeat(3),
            "more words ".repeat(12)
        );
        let protected = fields.protect(&source).unwrap().text;
        for values in [
            vec!["Zoë", "Leeds"],
            vec!["", ""],
            vec![
                "María de los Ángeles Fernández-Castillo de la Vega",
                "a b  c",
            ],
            vec![&"x".repeat(100)[..], "李伟"],
        ] {
            let values: Vec<Cow<str>> = fields
                .iter()
                .zip(&values)
                .map(|(f, v)| crate::render::merge::resolve(Some(v), &f.fallback))
                .collect();
            let plain = source
                .replace("{{first_name|Friend}}", &values[0])
                .replace("{{city}}", &values[1]);
            for (first, rest) in [("", ""), ("  * ", "    "), ("> ", "> ")] {
                let mut w = TextWriter::default();
                w.wrapped(&protected, first, rest);
                let (marked, blocks) = w.finish_with_blocks();
                assert_eq!(marked, "<!--slot:text-0-->\n");
                let mut direct = TextWriter::default();
                direct.wrapped(&plain, first, rest);
                assert_eq!(
                    blocks[0].fill(&values),
                    direct.finish().trim_end_matches('\n'),
                    "{values:?} {first:?}"
                );
            }
            let mut w = TextWriter::default();
            w.heading(&protected, 2);
            let (_, blocks) = w.finish_with_blocks();
            let mut direct = TextWriter::default();
            direct.heading(&plain, 2);
            assert_eq!(
                blocks[0].fill(&values),
                direct.finish().trim_end_matches('\n')
            );
        }
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
