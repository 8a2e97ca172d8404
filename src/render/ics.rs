//! An event as an iCalendar file (RFC 5545) for "Add to calendar".
//!
//! Times are written in UTC, so every calendar app gets the right instant
//! without a VTIMEZONE block. An event without `end` in the archive lasts
//! [`DEFAULT_DURATION`] (calendar apps draw an event with no DTEND as a
//! point in time, or not at all). URL is the booking link, else the issue
//! page that shows the event; DESCRIPTION is the summary, the partner and
//! the booking link. TEXT values are escaped (3.3.11) and lines folded at
//! 75 octets (3.1) here, by hand: a dozen lines, where an iCalendar crate
//! would add a dependency and choose its own DTSTAMP.
//!
//! The output depends on the event, the list and the page only, so a
//! rebuilt site is byte for byte the same: the UID is `EVENT-ID@LIST-ID`
//! and DTSTAMP is the event's start.

use jiff::SignedDuration;

use crate::model::archive::Event;

/// How long an event lasts in its calendar file when the archive gives no
/// `end`: one hour (the archive says when an event starts, rarely when it
/// ends).
pub const DEFAULT_DURATION: SignedDuration = SignedDuration::from_hours(1);

/// Where an event's `.ics` file lives, relative to the site's root.
pub fn calendar_path(event_id: &str) -> String {
    format!("events/{event_id}.ics")
}

/// The root of the static site, from `web-version-url`: everything before
/// `issues/{issue}` when it has that shape, else its origin and `/`.
pub fn site_base(web_version_url: &str) -> String {
    if let Some(at) = web_version_url.find("issues/{issue}") {
        return web_version_url[..at].to_string();
    }
    let after_scheme = web_version_url.find("://").map_or(0, |i| i + 3);
    match web_version_url[after_scheme..].find('/') {
        Some(slash) => web_version_url[..after_scheme + slash + 1].to_string(),
        None => format!("{web_version_url}/"),
    }
}

/// The `.ics` text for one event: CRLF line ends, lines folded at 75 octets.
/// `page_url` is where the event is shown (an issue page), the URL when
/// there is no booking link.
pub fn event_calendar(
    event: &Event,
    list_id: &str,
    list_name: &str,
    page_url: Option<&str>,
) -> String {
    let start = utc(event.start.timestamp());
    let end = match &event.end {
        Some(end) => end.timestamp(),
        None => event
            .start
            .timestamp()
            .saturating_add(DEFAULT_DURATION)
            .unwrap_or(event.start.timestamp()),
    };
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        format!("PRODID:-//{}//newsletter//EN", text(list_name)),
        "CALSCALE:GREGORIAN".to_string(),
        "METHOD:PUBLISH".to_string(),
        "BEGIN:VEVENT".to_string(),
        format!("UID:{}@{}", event.id, list_id),
        format!("DTSTAMP:{start}"),
        format!("DTSTART:{start}"),
    ];
    lines.push(format!("DTEND:{}", utc(end)));
    lines.push(format!("SUMMARY:{}", text(&event.title)));
    if let Some(place) = &event.place {
        lines.push(format!("LOCATION:{}", text(place)));
    }
    let mut description = Vec::new();
    if let Some(summary) = &event.summary {
        description.push(summary.clone());
    }
    if let Some(partner) = &event.partner {
        description.push(format!("With {partner}."));
    }
    if let Some(url) = &event.booking_url {
        description.push(format!("Book a place: {url}"));
    }
    if !description.is_empty() {
        lines.push(format!("DESCRIPTION:{}", text(&description.join("\n\n"))));
    }
    if let Some(url) = event.booking_url.as_deref().or(page_url) {
        // A URI value, not TEXT: nothing to escape, but no line breaks.
        lines.push(format!("URL:{}", url.replace(['\r', '\n'], "")));
    }
    lines.push("END:VEVENT".to_string());
    lines.push("END:VCALENDAR".to_string());

    let mut out = String::new();
    for line in &lines {
        fold(line, &mut out);
    }
    out
}

/// `20220905T140000Z`.
fn utc(time: jiff::Timestamp) -> String {
    time.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// A TEXT value (RFC 5545 3.3.11): `\`, `;` and `,` escaped, line breaks
/// as `\n`, other control characters dropped.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let value = value.replace("\r\n", "\n");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' | '\r' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `line` folded into lines of at most 75 octets (RFC 5545 3.1),
/// never inside a UTF-8 character; continuation lines start with a space.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_at_75_octets_without_splitting_characters() {
        let mut out = String::new();
        fold(&format!("SUMMARY:{}", "é".repeat(60)), &mut out);
        for line in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets: {line}", line.len());
        }
        assert_eq!(
            out.replace("\r\n ", ""),
            format!("SUMMARY:{}\r\n", "é".repeat(60))
        );
    }

    #[test]
    fn site_base_follows_the_web_version_url() {
        assert_eq!(
            site_base("https://news.example.org/issues/{issue}/"),
            "https://news.example.org/"
        );
        assert_eq!(
            site_base("https://example.org/news/issues/{issue}/"),
            "https://example.org/news/"
        );
        assert_eq!(
            site_base("https://example.org/view?issue={issue}"),
            "https://example.org/"
        );
    }

    #[test]
    fn escapes_text() {
        assert_eq!(text("a;b,c\\d\ne"), "a\\;b\\,c\\\\d\\ne");
    }
}
