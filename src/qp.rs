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
        let mut out = Vec::with_capacity(self.literal_len + 512);
        for piece in &self.pieces {
            match piece {
                QpPiece::Literal(bytes) => out.extend_from_slice(bytes),
                QpPiece::Hole(slot) => {
                    out.extend_from_slice(&encode(&self.template.value(*slot, values)))
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
