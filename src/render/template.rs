//! A rendered part with holes for what differs per subscriber.
//!
//! The issue is rendered once; each message only fills the holes, so the cost
//! per subscriber is a copy of the text plus the escaped values.

/// What goes into a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The greeting with merge fields filled, e.g. "Dear Zoë".
    Greeting,
    /// The subscriber's own signed unsubscribe URL.
    UnsubscribeUrl,
    /// The subscriber's address, shown in the footer.
    Email,
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
}

impl SlotValues<'_> {
    fn get(&self, slot: Slot) -> &str {
        match slot {
            Slot::Greeting => self.greeting,
            Slot::UnsubscribeUrl => self.unsubscribe_url,
            Slot::Email => self.email,
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
}

impl Template {
    /// The marker a renderer writes where a hole goes. In HTML it is a
    /// comment, which escaped data can never produce.
    pub fn marker(slot: Slot) -> String {
        let name = SLOTS
            .iter()
            .find(|(s, _)| *s == slot)
            .map_or("", |(_, n)| n);
        format!("<!--slot:{name}-->")
    }

    /// Splits rendered text at the markers.
    pub fn from_marked(text: &str, html: bool) -> Template {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("<!--slot:") {
            let after = &rest[start + "<!--slot:".len()..];
            let Some(end) = after.find("-->") else { break };
            let Some((slot, _)) = SLOTS.iter().find(|(_, n)| *n == &after[..end]) else {
                break;
            };
            if start > 0 {
                pieces.push(Piece::Literal(rest[..start].to_string()));
            }
            pieces.push(Piece::Hole(*slot));
            rest = &after[end + 3..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_string()));
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
        }
    }

    /// The text for one subscriber.
    pub fn fill(&self, values: &SlotValues) -> String {
        let mut out = String::with_capacity(self.literal_len + 256);
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Hole(slot) => out.push_str(&self.value(*slot, values)),
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
        if self.html {
            escape_html(values.get(slot), &mut out);
        } else if slot == Slot::Greeting {
            // The greeting stands on its own line; a long name must not
            // push it past the text part's line limit.
            let mut w = super::text::TextWriter::default();
            w.wrapped(values.get(slot), "", "");
            out.push_str(w.finish().trim_end_matches('\n'));
        } else {
            out.push_str(values.get(slot));
        }
        out
    }

    /// Whether a hole for `slot` exists.
    pub fn has(&self, slot: Slot) -> bool {
        self.pieces.contains(&Piece::Hole(slot))
    }
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
        };
        assert_eq!(
            t.fill(&values),
            "<p>Dear &lt;script&gt;</p><a href=\"https://x.example/u?a=1&amp;b=2\">"
        );
        assert!(t.has(Slot::Greeting));
        assert!(!t.has(Slot::Email));
    }
}
