//! A rendered part with holes for what differs per subscriber.
//!
//! The issue is rendered once; each message only fills the holes, so the cost
//! per subscriber is a copy of the text plus the escaped values (and, in the
//! text part, wrapping the few blocks that hold a merge field).

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::text::TextBlock;
use crate::render::merge::{self, Fields};

/// What goes into a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The greeting with merge fields filled, e.g. "Dear Zoë".
    Greeting,
    /// The subscriber's own signed unsubscribe URL.
    UnsubscribeUrl,
    /// The subscriber's address, shown in the footer.
    Email,
    /// The value of one of the merge fields (HTML-escaped in HTML).
    Merge(Hole),
    /// A block of the text part holding merge fields, filled and wrapped.
    Text(Hole),
}

/// Which merge field or text block a hole is, and a digest of what it is
/// (the field's name and fallback, the block's text and layout), so that
/// whatever records a template's pieces (the journal's fingerprint of the
/// rendered issue) sees a changed fallback although the index is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hole {
    pub index: u32,
    pub digest: u32,
}

const SLOTS: [(Slot, &str); 3] = [
    (Slot::Greeting, "greeting"),
    (Slot::UnsubscribeUrl, "unsubscribe-url"),
    (Slot::Email, "email"),
];

/// The values for one subscriber.
#[derive(Debug, Clone, Copy)]
pub struct SlotValues<'a> {
    pub greeting: &'a str,
    pub unsubscribe_url: &'a str,
    pub email: &'a str,
    /// The value of each merge field, by index ([`Fields::values`]).
    pub merge: &'a [Cow<'a, str>],
}

impl SlotValues<'_> {
    fn get(&self, slot: Slot) -> &str {
        match slot {
            Slot::Greeting => self.greeting,
            Slot::UnsubscribeUrl => self.unsubscribe_url,
            Slot::Email => self.email,
            Slot::Merge(hole) | Slot::Text(hole) => self
                .merge
                .get(hole.index as usize)
                .map_or("", |v| v.as_ref()),
        }
    }
}

/// A piece of a template, as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'a> {
    Literal(&'a str),
    Hole(Slot),
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Hole(Slot),
}

/// Text with holes; `html` templates escape what they put in the holes.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pieces: Vec<Piece>,
    html: bool,
    literal_len: usize,
    /// The text blocks [`Slot::Text`] holes index.
    blocks: Vec<TextBlock>,
}

const MARKER: &str = "<!--slot:";

impl Template {
    /// The marker a renderer writes where a hole goes. In HTML it is a
    /// comment, which escaped data can never produce. (A merge field is
    /// written as its placeholder, [`merge::placeholder`], instead.)
    pub fn marker(slot: Slot) -> String {
        match slot {
            Slot::Merge(hole) => format!("{MARKER}merge-{}-->", hole.index),
            Slot::Text(hole) => format!("{MARKER}text-{}-->", hole.index),
            _ => {
                let name = SLOTS
                    .iter()
                    .find(|(s, _)| *s == slot)
                    .map_or("", |(_, n)| n);
                format!("{MARKER}{name}-->")
            }
        }
    }

    /// Splits rendered text at the markers (and merge-field placeholders).
    pub fn from_marked(text: &str, html: bool) -> Template {
        Template::with_fields(text, html, &Fields::default(), Vec::new())
    }

    /// Splits rendered text at the markers and at the placeholders of
    /// `fields`; `blocks` are the text part's blocks with merge fields.
    pub fn with_fields(
        text: &str,
        html: bool,
        fields: &Fields,
        blocks: Vec<TextBlock>,
    ) -> Template {
        let holes = Holes {
            fields,
            blocks: &blocks,
        };
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        loop {
            let marker = rest.find(MARKER);
            let placeholder = rest.find('\u{FDD0}');
            let (start, is_marker) = match (marker, placeholder) {
                (Some(m), Some(p)) if p < m => (p, false),
                (Some(m), _) => (m, true),
                (None, Some(p)) => (p, false),
                (None, None) => break,
            };
            match holes.at(&rest[start..], is_marker) {
                Some((slot, len)) => {
                    literal.push_str(&rest[..start]);
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Hole(slot));
                    rest = &rest[start + len..];
                }
                None => {
                    // Not a hole after all: keep it as text and look further.
                    let skip = start + rest[start..].chars().next().map_or(1, char::len_utf8);
                    literal.push_str(&rest[..skip]);
                    rest = &rest[skip..];
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        let literal_len = pieces
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => s.len(),
                Piece::Hole(_) => 0,
            })
            .sum();
        Template {
            pieces,
            html,
            literal_len,
            blocks,
        }
    }

    /// The text for one subscriber.
    pub fn fill(&self, values: &SlotValues) -> String {
        let mut out = String::with_capacity(self.literal_len + 256);
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Hole(slot) => self.value_into(*slot, values, &mut out),
            }
        }
        out
    }

    /// The pieces in order: literal text, or a hole.
    pub fn parts(&self) -> impl Iterator<Item = Part<'_>> {
        self.pieces.iter().map(|p| match p {
            Piece::Literal(s) => Part::Literal(s),
            Piece::Hole(slot) => Part::Hole(*slot),
        })
    }

    /// Whether holes are filled with HTML-escaped values.
    pub fn is_html(&self) -> bool {
        self.html
    }

    /// The value a hole takes for one subscriber, escaped as the part needs.
    pub fn value(&self, slot: Slot, values: &SlotValues) -> String {
        let mut out = String::new();
        self.value_into(slot, values, &mut out);
        out
    }

    /// [`Template::value`], appended to `out`.
    pub fn value_into(&self, slot: Slot, values: &SlotValues, out: &mut String) {
        if let Slot::Text(hole) = slot {
            if let Some(block) = self.blocks.get(hole.index as usize) {
                block.fill_into(out, values.merge);
            }
        } else if self.html {
            escape_html(values.get(slot), out);
        } else if slot == Slot::Greeting {
            // The greeting stands on its own line; a long name must not
            // push it past the text part's line limit.
            let mut w = super::text::TextWriter::default();
            w.wrapped(values.get(slot), "", "");
            out.push_str(w.finish().trim_end_matches('\n'));
        } else {
            out.push_str(values.get(slot));
        }
    }

    /// Whether a hole for `slot` exists.
    pub fn has(&self, slot: Slot) -> bool {
        self.pieces.contains(&Piece::Hole(slot))
    }
}

/// A short digest of a hole's content.
fn digest(text: &str) -> u32 {
    let d = Sha256::digest(text.as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Escapes text for HTML element content and quoted attributes.
pub fn escape_html(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The holes [`Template::with_fields`] finds, with the digests that tie
/// each to what fills it: the merge fields and the text part's
/// blocks.
struct Holes<'a> {
    fields: &'a Fields,
    blocks: &'a [TextBlock],
}

impl Holes<'_> {
    /// The hole at the start of `text` — a marker, or a merge field's
    /// placeholder — and its length; None if it is not one after all.
    fn at(&self, text: &str, is_marker: bool) -> Option<(Slot, usize)> {
        if !is_marker {
            let (index, len) = merge::parse_placeholder(text)?;
            return Some((Slot::Merge(self.merge(index)), len));
        }
        let after = &text[MARKER.len()..];
        let end = after.find("-->")?;
        let slot = self.named(&after[..end])?;
        Some((slot, MARKER.len() + end + 3))
    }

    /// The slot a marker names: `greeting`, `email`…, `merge-N`, `text-N`.
    fn named(&self, name: &str) -> Option<Slot> {
        if let Some((slot, _)) = SLOTS.iter().find(|(_, n)| *n == name) {
            return Some(*slot);
        }
        let (kind, number) = name.split_once('-')?;
        let index: usize = number.parse().ok()?;
        match kind {
            "merge" => Some(Slot::Merge(self.merge(index))),
            "text" => Some(Slot::Text(Hole {
                index: index as u32,
                digest: digest(
                    &self
                        .blocks
                        .get(index)
                        .map_or(String::new(), TextBlock::describe),
                ),
            })),
            _ => None,
        }
    }

    /// The hole of the merge field number `index`.
    fn merge(&self, index: usize) -> Hole {
        let field = self.fields.get(index);
        Hole {
            index: index as u32,
            digest: digest(&field.map_or(String::new(), |f| format!("{}|{}", f.name, f.fallback))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_escapes_holes() {
        let marked = format!(
            "<p>{}</p><a href=\"{}\">",
            Template::marker(Slot::Greeting),
            Template::marker(Slot::UnsubscribeUrl)
        );
        let t = Template::from_marked(&marked, true);
        let values = SlotValues {
            greeting: "Dear <script>",
            unsubscribe_url: "https://x.example/u?a=1&b=2",
            email: "a@example.org",
            merge: &[],
        };
        assert_eq!(
            t.fill(&values),
            "<p>Dear &lt;script&gt;</p><a href=\"https://x.example/u?a=1&amp;b=2\">"
        );
        assert!(t.has(Slot::Greeting));
        assert!(!t.has(Slot::Email));
    }

    #[test]
    fn merge_placeholders_become_escaped_holes_that_know_their_field() {
        let template = |fallback: &str| {
            let mut fields = Fields::default();
            let marked = fields
                .protect(&format!(
                    "<h1>{{{{first_name|{fallback}}}}}</h1><p>Hi {{{{city}}}}!</p>"
                ))
                .unwrap()
                .text;
            (
                Template::with_fields(&marked, true, &fields, Vec::new()),
                fields,
            )
        };
        let (t, fields) = template("Friend");
        let merge: Vec<Cow<str>> = fields.values(|name| match name {
            "first_name" => Some("<b>Zoë</b>"),
            _ => None,
        });
        let values = SlotValues {
            greeting: "",
            unsubscribe_url: "",
            email: "",
            merge: &merge,
        };
        assert_eq!(
            t.fill(&values),
            "<h1>&lt;b&gt;Zoë&lt;/b&gt;</h1><p>Hi !</p>"
        );
        let holes = |t: &Template| -> Vec<Slot> {
            t.parts()
                .filter_map(|p| match p {
                    Part::Hole(slot) => Some(slot),
                    Part::Literal(_) => None,
                })
                .collect()
        };
        let (other, _) = template("Supporter");
        let (a, b) = (holes(&t), holes(&other));
        assert!(matches!(a[0], Slot::Merge(Hole { index: 0, .. })));
        assert_ne!(a[0], b[0], "a changed fallback changes the hole");
        assert_eq!(a[1], b[1]);
        // Plain text gets the value as it is.
        let plain = Template::with_fields(
            &crate::render::merge::placeholder(0),
            false,
            &fields,
            Vec::new(),
        );
        assert_eq!(plain.fill(&values), "<b>Zoë</b>");
    }
}
