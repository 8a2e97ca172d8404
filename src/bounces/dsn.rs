//! Reading one delivery status notification (RFC 3464): a
//! `multipart/report; report-type=delivery-status` message whose
//! `message/delivery-status` part has one block of fields per recipient.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::classify::is_address_failure;

/// What a bounce report says.
#[derive(Debug, Default)]
pub struct Report {
    pub recipients: Vec<Recipient>,
    /// The issue the bounced message belonged to, from its returned headers.
    pub issue: Option<String>,
    /// Recipient blocks that could not be used, and why.
    pub problems: Vec<String>,
}

/// One recipient's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Lowercased.
    pub address: String,
    pub kind: Kind,
    /// The enhanced status code, e.g. `5.1.1`.
    pub status: String,
    /// The remote server's reply, on one line; may be empty.
    pub diagnostic: String,
}

/// How a recipient's outcome counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Action `failed`, status 5.x.x that says the address does not work
    /// ([`is_address_failure`]).
    Hard,
    /// Status 4.x.x (`delayed`, or `failed` after retries): may pass.
    Soft,
    /// Any other 5.x.x: a policy refusal (5.7.x), a message too big (5.3.4),
    /// refused content (5.6.x) …, which says nothing about the address.
    NotAddress,
    /// Delivered, relayed or expanded: not a failure.
    NotFailure,
}

/// Reads a report; `Err` says why the message is not one.
pub fn read(raw: &[u8]) -> Result<Report, String> {
    if looks_binary(raw) {
        return Err("binary data, not an email message".to_string());
    }
    let message = MessageParser::default()
        .parse(raw)
        .filter(|m| {
            m.headers()
                .iter()
                .any(|h| h.name().starts_with(char::is_alphabetic))
        })
        .ok_or("no email headers")?;
    let Some(content_type) = message.content_type() else {
        return Err("not a delivery status notification (it has no Content-Type)".to_string());
    };
    let kind = format!(
        "{}/{}",
        content_type.ctype(),
        content_type.subtype().unwrap_or_default()
    )
    .to_ascii_lowercase();
    if kind != "multipart/report" {
        return Err(format!(
            "not a delivery status notification (its Content-Type is `{kind}`, not `multipart/report`)"
        ));
    }
    if let Some(report_type) = content_type.attribute("report-type")
        && !report_type.eq_ignore_ascii_case("delivery-status")
    {
        return Err(format!(
            "a `{report_type}` report, not a delivery status notification"
        ));
    }

    let mut status_text = None;
    let mut issue = None;
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let subtype = ct.subtype().unwrap_or_default().to_ascii_lowercase();
        match (ct.ctype().to_ascii_lowercase().as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                status_text
                    .get_or_insert_with(|| String::from_utf8_lossy(part.contents()).into_owned());
            }
            ("message", "rfc822" | "global") => {
                if let PartType::Message(original) = &part.body {
                    issue = issue.or_else(|| issue_of(original));
                }
            }
            ("text", "rfc822-headers") | ("message", "global-headers") => {
                if let Some(original) = MessageParser::default().parse_headers(part.contents()) {
                    issue = issue.or_else(|| issue_of(&original));
                }
            }
            _ => {}
        }
    }
    let Some(status_text) = status_text else {
        return Err(
            "a multipart/report without a message/delivery-status part (it may be cut short)"
                .to_string(),
        );
    };

    let mut report = Report {
        issue,
        ..Report::default()
    };
    let blocks: Vec<Vec<(String, String)>> = blocks(&status_text)
        .into_iter()
        .filter(|b| {
            field(b, "final-recipient").is_some() || field(b, "original-recipient").is_some()
        })
        .collect();
    if blocks.is_empty() {
        return Err("its delivery status names no recipient (it may be cut short)".to_string());
    }
    for block in &blocks {
        match recipient(block) {
            Ok(r) => report.recipients.push(r),
            Err(why) => report.problems.push(why),
        }
    }
    if report.recipients.is_empty() {
        return Err(report.problems.join("; "));
    }
    Ok(report)
}

/// NUL bytes or many control characters early on: not a message.
fn looks_binary(raw: &[u8]) -> bool {
    let head = &raw[..raw.len().min(4096)];
    let controls = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n'))
        .count();
    head.contains(&0) || controls * 20 > head.len()
}

/// Field blocks separated by blank lines, with folded lines joined; names
/// lowercased.
fn blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut block: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = block.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

fn field<'b>(block: &'b [(String, String)], name: &str) -> Option<&'b str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `rfc822; Zoe@Example.org` → `zoe@example.org`, if it is an address.
fn address_of(value: &str) -> Option<String> {
    let (kind, address) = value.split_once(';').unwrap_or(("rfc822", value));
    if !kind.trim().eq_ignore_ascii_case("rfc822") {
        return None;
    }
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    address
        .parse::<lettre::Address>()
        .ok()
        .map(|_| address.to_lowercase())
}

fn recipient(block: &[(String, String)]) -> Result<Recipient, String> {
    // The original recipient is the address the newsletter was sent to; the
    // final one may be where it was forwarded.
    let named = field(block, "original-recipient")
        .or_else(|| field(block, "final-recipient"))
        .unwrap_or_default();
    let address = field(block, "original-recipient")
        .and_then(address_of)
        .or_else(|| field(block, "final-recipient").and_then(address_of))
        .ok_or_else(|| format!("recipient `{}` is not an email address", shorten(named)))?;
    let action = field(block, "action").map(str::to_ascii_lowercase);
    let diagnostic = field(block, "diagnostic-code")
        .map(|d| d.split_once(';').map_or(d, |(_, text)| text).trim())
        .unwrap_or_default();
    let diagnostic = &unfold_reply(diagnostic);
    let status = field(block, "status")
        .and_then(enhanced_status)
        .map(str::to_string)
        .or_else(|| {
            // No usable Status: take the class of the SMTP reply.
            let class = diagnostic
                .chars()
                .next()
                .filter(|c| matches!(c, '2' | '4' | '5'))?;
            Some(format!("{class}.0.0"))
        });
    let (Some(status), action) = (status, action.as_deref()) else {
        return Err(format!(
            "recipient `{address}` has no Status (the report may be cut short)"
        ));
    };
    let kind = match (action, status.as_bytes()[0]) {
        (Some("delayed"), _) => Kind::Soft,
        (None | Some("failed"), b'5')
            if is_address_failure(None, &format!("{status} {diagnostic}")) =>
        {
            Kind::Hard
        }
        (None | Some("failed"), b'5') => Kind::NotAddress,
        (None | Some("failed"), b'4') => Kind::Soft,
        _ => Kind::NotFailure,
    };
    Ok(Recipient {
        address,
        kind,
        status,
        diagnostic: shorten(diagnostic),
    })
}

/// A multi-line SMTP reply on one line: the `550-5.1.1` that starts each
/// continuation line is dropped after the first.
fn unfold_reply(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let is_code = |w: &str| w.len() == 3 && w.bytes().all(|b| b.is_ascii_digit());
    let is_status = |w: &str| enhanced_status(w) == Some(w);
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        let joined = word
            .split_once('-')
            .is_some_and(|(code, rest)| is_code(code) && is_status(rest));
        let split = is_code(word) && words.get(i + 1).is_some_and(|next| is_status(next));
        if i > 1 && joined {
            i += 1;
        } else if i > 1 && split {
            i += 2;
        } else {
            out.push(word);
            i += 1;
        }
    }
    out.join(" ")
}

/// The first enhanced status code (`5.1.1`) in a text.
pub fn enhanced_status(text: &str) -> Option<&str> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ';' | '(' | ')' | ',' | '-'))
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// The issue id from the original message: `X-Newsletter-Issue`, or its
/// Message-ID `<ISSUE.HASH@domain>` as `newsletter send` makes them.
fn issue_of(original: &Message) -> Option<String> {
    if let Some(issue) = original
        .header_raw("X-Newsletter-Issue")
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        return Some(issue.to_string());
    }
    let id = original.message_id()?;
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _domain) = id.rsplit_once('@')?;
    let (issue, hash) = local.rsplit_once('.')?;
    (hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && !issue.is_empty())
        .then(|| issue.to_string())
}

/// One line, at most 160 characters, no control characters.
fn shorten(text: &str) -> String {
    let mut out = String::new();
    for (count, c) in text
        .split_whitespace()
        .flat_map(|w| w.chars().chain([' ']))
        .enumerate()
    {
        if count == 160 {
            out.push('…');
            return out;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_enhanced_status_codes() {
        assert_eq!(
            enhanced_status("550 5.1.1 <x@example.org>: User unknown"),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_status("550-5.1.1 The email account"),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_status("smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound"),
            Some("5.1.10")
        );
        assert_eq!(
            enhanced_status("554 5.7.1 Service unavailable"),
            Some("5.7.1")
        );
        assert_eq!(enhanced_status("550 No such user"), None);
        assert_eq!(enhanced_status("version 1.2.3"), None);
    }

    #[test]
    fn unfolds_multi_line_replies() {
        assert_eq!(
            unfold_reply(
                "550-5.1.1 The account does not\n 550-5.1.1 exist. Learn more at\n 550 5.1.1  https://x.example.com/"
            ),
            "550-5.1.1 The account does not exist. Learn more at https://x.example.com/"
        );
        assert_eq!(
            unfold_reply("550 5.1.1 <a@example.org>: no"),
            "550 5.1.1 <a@example.org>: no"
        );
    }

    #[test]
    fn reads_the_issue_from_a_message_id() {
        let raw = b"Message-ID: <2022-07-13.0123456789abcdef0123456789abcdef@renecassin.example.org>\r\n\r\n";
        let original = MessageParser::default().parse_headers(raw).unwrap();
        assert_eq!(issue_of(&original).as_deref(), Some("2022-07-13"));
        let raw = b"Message-ID: <CAF=abc@mail.example.com>\r\n\r\n";
        let original = MessageParser::default().parse_headers(raw).unwrap();
        assert_eq!(issue_of(&original), None);
    }
}
