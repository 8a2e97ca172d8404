//! `feed.xml`: an Atom feed (RFC 4287) of the issues, newest first, for
//! feed readers.
//!
//! Written by hand: a dozen elements, and a crate would have to be told
//! not to stamp the build time (the feed's `updated` is the newest issue's
//! date, so a rebuild gives the same bytes). Issue dates have no time of
//! day: `updated` is midnight UTC of that date. Ids are the pages' URLs,
//! which stay the same as long as `web-version-url` does.

use super::Entry;
use crate::model::config::Config;
use crate::render::ics::site_base;

/// Where the feed lives, relative to the site's root.
pub const FEED_PATH: &str = "feed.xml";

/// The feed of `entries` (newest first).
pub fn atom(config: &Config, entries: &[Entry]) -> String {
    let list = &config.list;
    let base = site_base(&list.web_version_url);
    let updated = entries
        .iter()
        .map(|e| e.date)
        .max()
        .map_or_else(|| "1970-01-01T00:00:00Z".to_string(), timestamp);
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str(&format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{}\">\n",
        escape(&list.language)
    ));
    element(&mut out, 1, "id", &base);
    element(&mut out, 1, "title", &format!("{}: newsletters", list.name));
    element(&mut out, 1, "updated", &updated);
    out.push_str(&format!(
        "  <author><name>{}</name></author>\n",
        escape(&list.name)
    ));
    link(&mut out, 1, "alternate", "text/html", &base);
    link(
        &mut out,
        1,
        "self",
        "application/atom+xml",
        &format!("{base}{FEED_PATH}"),
    );
    for entry in entries {
        out.push_str("  <entry>\n");
        element(&mut out, 2, "id", &entry.url);
        element(&mut out, 2, "title", &entry.subject);
        element(&mut out, 2, "updated", &timestamp(entry.date));
        link(&mut out, 2, "alternate", "text/html", &entry.url);
        if !entry.preheader.is_empty() {
            element(&mut out, 2, "summary", &entry.preheader);
        }
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    out
}

/// `2022-07-13T00:00:00Z`.
fn timestamp(date: jiff::civil::Date) -> String {
    format!("{date}T00:00:00Z")
}

fn element(out: &mut String, depth: usize, name: &str, text: &str) {
    out.push_str(&format!(
        "{}<{name}>{}</{name}>\n",
        "  ".repeat(depth),
        escape(text)
    ));
}

fn link(out: &mut String, depth: usize, rel: &str, kind: &str, href: &str) {
    out.push_str(&format!(
        "{}<link rel=\"{rel}\" type=\"{kind}\" href=\"{}\"/>\n",
        "  ".repeat(depth),
        escape(href)
    ));
}

/// Text or attribute value: markup characters escaped, and the control
/// characters XML 1.0 does not allow dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(
            escape("a & b <c> \"d\" 'e'\u{1}"),
            "a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;"
        );
    }
}
