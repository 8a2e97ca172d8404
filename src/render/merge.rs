//! Merge fields: `{{first_name}}` or `{{first_name|Supporter}}`, in the
//! greeting and in every text a reader sees (subject, preheader, letter,
//! sections, call to action).
//!
//! Outside the greeting a field is *protected* before the text is parsed as
//! Markdown: it is replaced by a placeholder made of Unicode noncharacters
//! (U+FDD0…U+FDEF, which Unicode sets aside for a program's internal use),
//! so that `{{a_b}}` is never read as emphasis and a field stays one word.
//! After rendering, each placeholder becomes a hole of the template
//! ([`crate::render::Slot::Merge`]) indexing the distinct fields
//! ([`Fields`]), which each message fills.

use std::borrow::Cow;
use std::fmt;

/// A parsed text with merge fields.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeText {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field { name: String, fallback: String },
}

/// A merge field as written in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldAt {
    /// Byte offset of its `{{` in the text.
    pub offset: usize,
    /// Byte length from `{{` to `}}` inclusive.
    pub len: usize,
    /// Normalised like subscriber columns.
    pub name: String,
    pub fallback: String,
}

/// Merge syntax that is wrong, at a byte offset of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MergeError {}

/// Every merge field of `text` in order; `{{` must be closed by `}}` around
/// a field name, and a fallback is one line.
pub fn scan(text: &str) -> Result<Vec<FieldAt>, MergeError> {
    let mut fields = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("{{") {
        let open = from + found;
        let after = &text[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(MergeError {
                offset: open,
                message: format!(
                    "`{{{{` without a closing `}}}}` in `{}`; write a merge field like `{{{{first_name|Supporter}}}}`",
                    excerpt(&text[open..])
                ),
            });
        };
        let inner = &after[..close];
        let (name, fallback) = match inner.split_once('|') {
            Some((name, fallback)) => (name.trim(), fallback.trim()),
            None => (inner.trim(), ""),
        };
        let normalised = normalise_field(name);
        if normalised.is_empty() || !normalised.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(MergeError {
                offset: open,
                message: format!(
                    "`{{{{{inner}}}}}` is not a merge field; write one like `{{{{first_name|Supporter}}}}`"
                ),
            });
        }
        if fallback.chars().any(char::is_control) {
            return Err(MergeError {
                offset: open,
                message: format!(
                    "the fallback of `{{{{{}}}}}` has a line break; keep a field on one line",
                    excerpt(inner)
                ),
            });
        }
        fields.push(FieldAt {
            offset: open,
            len: close + 4,
            name: normalised,
            fallback: fallback.to_string(),
        });
        from = open + 2 + close + 2;
    }
    Ok(fields)
}

/// The start of `text`, on one line, for a message.
fn excerpt(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let short: String = line.chars().take(40).collect();
    if short.len() < line.len() {
        format!("{short}…")
    } else {
        short
    }
}

impl MergeText {
    /// Parses `text`; `{{` must be closed by `}}` around a field name.
    pub fn parse(text: &str) -> Result<MergeText, MergeError> {
        let mut parts = Vec::new();
        let mut at = 0;
        for field in scan(text)? {
            if field.offset > at {
                parts.push(Part::Text(text[at..field.offset].to_string()));
            }
            parts.push(Part::Field {
                name: field.name,
                fallback: field.fallback,
            });
            at = field.offset + field.len;
        }
        if at < text.len() {
            parts.push(Part::Text(text[at..].to_string()));
        }
        Ok(MergeText { parts })
    }

    /// Names of the fields used, normalised like subscriber columns.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field { name, .. } => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Fills the fields; an empty or missing value takes the fallback.
    /// Control characters in a value (a line break) become spaces.
    pub fn fill<'a>(&self, value: impl Fn(&str) -> Option<&'a str>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field { name, fallback } => {
                    out.push_str(&resolve(value(name), fallback));
                }
            }
        }
        out
    }
}

/// A subscriber's value as it goes into a message: trimmed, the fallback
/// when empty, control characters (CR, LF, tab, …) as spaces and the
/// noncharacters placeholders are made of as U+FFFD.
pub fn resolve<'a>(value: Option<&'a str>, fallback: &'a str) -> Cow<'a, str> {
    let chosen = value.map(str::trim).filter(|v| !v.is_empty());
    let chosen = chosen.unwrap_or(fallback);
    if chosen.chars().any(|c| c.is_control() || is_noncharacter(c)) {
        Cow::Owned(
            chosen
                .chars()
                .map(|c| match c {
                    c if c.is_control() => ' ',
                    // Never taken for a placeholder.
                    c if is_noncharacter(c) => '\u{FFFD}',
                    c => c,
                })
                .collect::<String>()
                .trim()
                .to_string(),
        )
    } else {
        Cow::Borrowed(chosen)
    }
}

/// Lowercase, with spaces and `-` as `_`: "First Name" is `first_name`.
pub fn normalise_field(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

// ---------------------------------------------------------------- protection

/// One distinct merge field of an issue: the same name with the same
/// fallback is one field, wherever it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub fallback: String,
}

impl Field {
    /// As written: `{{name}}` or `{{name|fallback}}`.
    pub fn written(&self) -> String {
        if self.fallback.is_empty() {
            format!("{{{{{}}}}}", self.name)
        } else {
            format!("{{{{{}|{}}}}}", self.name, self.fallback)
        }
    }
}

/// The distinct merge fields of an issue; a field's index is its number in
/// placeholders and holes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    list: Vec<Field>,
}

/// A text with its merge fields replaced by placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    pub text: String,
    /// Each placeholder: (offset in `text`, its length, offset of the field
    /// in the original, the field's length).
    spans: Vec<(usize, usize, usize, usize)>,
}

impl Protected {
    /// The offset in the original text of an offset in the protected one.
    pub fn original_offset(&self, offset: usize) -> usize {
        let mut shift: isize = 0;
        for &(at, len, original, original_len) in &self.spans {
            if offset < at {
                break;
            }
            if offset < at + len {
                return original;
            }
            shift = (original + original_len) as isize - (at + len) as isize;
        }
        (offset as isize + shift).max(0) as usize
    }
}

impl Fields {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn get(&self, index: usize) -> Option<&Field> {
        self.list.get(index)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Field> {
        self.list.iter()
    }

    /// The index of a field, added if new.
    pub fn intern(&mut self, name: &str, fallback: &str) -> usize {
        if let Some(i) = self
            .list
            .iter()
            .position(|f| f.name == name && f.fallback == fallback)
        {
            return i;
        }
        self.list.push(Field {
            name: name.to_string(),
            fallback: fallback.to_string(),
        });
        self.list.len() - 1
    }

    /// Replaces every merge field of `text` by its placeholder. Noncharacters
    /// already in the text (which could pass for a placeholder) become U+FFFD.
    pub fn protect(&mut self, text: &str) -> Result<Protected, MergeError> {
        let found = scan(text)?;
        let mut out = String::with_capacity(text.len());
        let mut spans = Vec::with_capacity(found.len());
        let mut at = 0;
        for field in found {
            push_clean(&mut out, &text[at..field.offset]);
            let index = self.intern(&field.name, &field.fallback);
            let start = out.len();
            push_placeholder(&mut out, index);
            spans.push((start, out.len() - start, field.offset, field.len));
            at = field.offset + field.len;
        }
        push_clean(&mut out, &text[at..]);
        Ok(Protected { text: out, spans })
    }

    /// Placeholders back to the fields as written (for URLs, which are never
    /// personalised).
    pub fn restore(&self, text: &str) -> String {
        if !has_placeholder(text) {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len() + 16);
        for segment in segments(text) {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Field(i) => match self.get(i) {
                    Some(field) => out.push_str(&field.written()),
                    None => out.push('\u{FFFD}'),
                },
            }
        }
        out
    }

    /// Each field's value for one subscriber, in index order (see
    /// [`resolve`]).
    pub fn values<'a>(&'a self, lookup: impl Fn(&str) -> Option<&'a str>) -> Vec<Cow<'a, str>> {
        self.list
            .iter()
            .map(|f| resolve(lookup(&f.name), &f.fallback))
            .collect()
    }
}

const OPEN: char = '\u{FDD0}';
const CLOSE: char = '\u{FDD1}';
/// Hexadecimal digits of a field's index: U+FDE0 … U+FDEF.
const DIGIT_0: u32 = 0xFDE0;

fn is_noncharacter(c: char) -> bool {
    ('\u{FDD0}'..='\u{FDEF}').contains(&c)
}

fn push_clean(out: &mut String, text: &str) {
    if text.chars().any(is_noncharacter) {
        out.extend(
            text.chars()
                .map(|c| if is_noncharacter(c) { '\u{FFFD}' } else { c }),
        );
    } else {
        out.push_str(text);
    }
}

fn push_placeholder(out: &mut String, index: usize) {
    out.push(OPEN);
    let digits = format!("{index:x}");
    for d in digits.bytes() {
        let value = (d as char).to_digit(16).unwrap_or(0);
        out.push(char::from_u32(DIGIT_0 + value).unwrap_or(CLOSE));
    }
    out.push(CLOSE);
}

/// The placeholder of field `index`.
pub fn placeholder(index: usize) -> String {
    let mut out = String::new();
    push_placeholder(&mut out, index);
    out
}

/// Whether a text may hold a placeholder.
pub fn has_placeholder(text: &str) -> bool {
    text.contains(OPEN)
}

/// A piece of a protected text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    Text(&'a str),
    /// A placeholder, with its field's index.
    Field(usize),
}

/// Splits a protected text at its placeholders; anything that only looks
/// partly like one stays text.
pub fn segments(text: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut literal_from = 0;
    let mut scanned = 0;
    while let Some(found) = rest[scanned..].find(OPEN) {
        let start = scanned + found;
        match parse_placeholder(&rest[start..]) {
            Some((index, len)) => {
                if start > literal_from {
                    out.push(Segment::Text(&rest[literal_from..start]));
                }
                out.push(Segment::Field(index));
                rest = &rest[start + len..];
                literal_from = 0;
                scanned = 0;
            }
            None => scanned = start + OPEN.len_utf8(),
        }
    }
    if rest.len() > literal_from {
        out.push(Segment::Text(&rest[literal_from..]));
    }
    out
}

/// `(index, byte length)` of the placeholder `text` starts with.
pub fn parse_placeholder(text: &str) -> Option<(usize, usize)> {
    let mut chars = text.char_indices();
    if chars.next()?.1 != OPEN {
        return None;
    }
    let mut index: usize = 0;
    let mut digits = 0;
    for (at, c) in chars {
        if c == CLOSE {
            return (digits > 0).then_some((index, at + c.len_utf8()));
        }
        let d = (c as u32).checked_sub(DIGIT_0).filter(|d| *d < 16)?;
        digits += 1;
        if digits > 8 {
            return None;
        }
        index = index * 16 + d as usize;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_when_empty_or_missing() {
        let greeting = MergeText::parse("Dear {{first_name|Supporter}}").unwrap();
        assert_eq!(greeting.fill(|_| Some("Zoë")), "Dear Zoë");
        assert_eq!(greeting.fill(|_| Some("  ")), "Dear Supporter");
        assert_eq!(greeting.fill(|_| None), "Dear Supporter");
        assert_eq!(greeting.fill(|_| Some("A\r\nB")), "Dear A  B");
        assert_eq!(greeting.fields().collect::<Vec<_>>(), ["first_name"]);
    }

    #[test]
    fn rejects_unclosed_and_empty_fields() {
        let unclosed = MergeText::parse("Dear {{first_name")
            .unwrap_err()
            .to_string();
        assert!(
            unclosed.contains("without a closing `}}` in `{{first_name`"),
            "{unclosed}"
        );
        assert!(MergeText::parse("Dear {{|x}}").is_err());
        assert!(MergeText::parse("Dear {{a<b}}").is_err());
        assert!(MergeText::parse("Dear {{a|b\nc}}").is_err());
    }

    #[test]
    fn scan_gives_offsets_and_errors_where_they_are() {
        let fields = scan("Hi {{First Name|you}}, and {{city}}.").unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!((fields[0].offset, fields[0].len), (3, 18));
        assert_eq!(fields[0].name, "first_name");
        assert_eq!(fields[1].name, "city");
        assert_eq!(scan("ab\n{{x").unwrap_err().offset, 3);
        assert_eq!(scan("{{a}} {{b<c}}").unwrap_err().offset, 6);
    }

    #[test]
    fn protect_and_restore() {
        let mut fields = Fields::default();
        let p = fields
            .protect("Dear {{first_name|friend}}, see {{a_b}} and {{first_name|friend}}\u{FDD0}")
            .unwrap();
        assert_eq!(fields.len(), 2);
        assert!(!p.text.contains('{'));
        assert!(!p.text.contains('_'));
        let segs = segments(&p.text);
        assert_eq!(
            segs,
            [
                Segment::Text("Dear "),
                Segment::Field(0),
                Segment::Text(", see "),
                Segment::Field(1),
                Segment::Text(" and "),
                Segment::Field(0),
                Segment::Text("\u{FFFD}"),
            ]
        );
        assert_eq!(
            fields.restore(&p.text),
            "Dear {{first_name|friend}}, see {{a_b}} and {{first_name|friend}}\u{FFFD}"
        );
        // Offsets map back: "see" and the second field.
        let see = p.text.find("see").unwrap();
        assert_eq!(p.original_offset(see), 28);
        let second = p.text.find(&placeholder(1)).unwrap();
        assert_eq!(p.original_offset(second), 32);
        assert_eq!(p.original_offset(second + 1), 32);
    }

    #[test]
    fn placeholders_of_large_indexes_parse_back() {
        for index in [0, 9, 15, 16, 255, 4096, 70000] {
            let text = format!("a{}b", placeholder(index));
            assert_eq!(
                segments(&text),
                [
                    Segment::Text("a"),
                    Segment::Field(index),
                    Segment::Text("b")
                ]
            );
        }
        // Broken ones stay text.
        let broken = "\u{FDD0}x\u{FDD0}\u{FDD1}\u{FDD0}\u{FDE1}";
        assert_eq!(segments(broken), [Segment::Text(broken)]);
    }

    #[test]
    fn values_take_fallbacks_and_lose_control_characters() {
        let mut fields = Fields::default();
        fields.intern("first_name", "friend");
        fields.intern("city", "");
        let values = fields.values(|name| match name {
            "first_name" => Some(" Zoë\r\n "),
            _ => None,
        });
        assert_eq!(values, ["Zoë", ""]);
        let values = fields.values(|_| Some("a\nb"));
        assert_eq!(values, ["a b", "a b"]);
    }
}
