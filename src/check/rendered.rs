//! Lints of the rendered message: size, images, links, Outlook CSS and the
//! text part, found by scanning the HTML each issue renders to.

use std::path::Path;

use crate::model::config::Config;
use crate::model::finding::Finding;
use crate::model::issue::Issue;
use crate::model::subscribers::{self, Columns};
use crate::render::{Rendered, text};

/// Gmail clips messages over about 102 KB; stay well under.
pub(super) const HTML_LIMIT: usize = 90 * 1024;

pub(super) fn lint_rendered(
    config: &Config,
    issue: &Issue,
    rendered: &Rendered,
    columns: &Columns,
    sample: &subscribers::Subscriber,
    findings: &mut Vec<Finding>,
) {
    let personal = rendered.personal(|name| sample.field(columns, name));
    let values = personal.values(UNSUBSCRIBE, &sample.email);
    let message = Message {
        file: &issue.source.path,
        html: &rendered.html.fill(&values),
        text: &rendered.text.fill(&values),
        web_url: &rendered.web_url,
    };
    lint_message(&message, findings);
    let _ = config;
}

/// The unsubscribe link the message is filled with, to find it again.
const UNSUBSCRIBE: &str = "https://unsubscribe.check.invalid/token";

/// One subscriber's message, filled: both parts and where it came from.
struct Message<'a> {
    file: &'a Path,
    html: &'a str,
    text: &'a str,
    web_url: &'a str,
}

/// Every lint of the filled message, in the order `check` reports them.
fn lint_message(message: &Message, findings: &mut Vec<Finding>) {
    lint_size(message, findings);
    lint_alt_text(message, findings);
    lint_external_resources(message, findings);
    lint_outlook_css(message, findings);
    lint_required_links(message, findings);
    lint_text_part(message, findings);
    let flat_text = message
        .text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    lint_text_links(message, &flat_text, findings);
    lint_text_headings(message, &flat_text, findings);
}

/// `html-too-large`: Gmail clips the message.
fn lint_size(message: &Message, findings: &mut Vec<Finding>) {
    let size = message.html.len();
    if size > HTML_LIMIT {
        findings.push(Finding::error(
            "html-too-large",
            message.file,
            format!(
                "the HTML part is {} KB; Gmail clips messages over about 102 KB, so keep it under {} KB (shorten the letter or move sections to the blog)",
                size / 1024,
                HTML_LIMIT / 1024
            ),
        ));
    }
}

/// `missing-alt`: an image without words for those who cannot see it.
fn lint_alt_text(message: &Message, findings: &mut Vec<Finding>) {
    for tag in tags(message.html, "img") {
        if attribute(tag, "alt").is_none_or(|alt| alt.trim().is_empty()) {
            findings.push(Finding::error(
                "missing-alt",
                message.file,
                format!("an image has no alt text: `{}`; add words that describe it (`![description](url)`)", clip(tag)),
            ));
        }
    }
}

/// `external-resource`: stylesheets and scripts, which mail apps block.
fn lint_external_resources(message: &Message, findings: &mut Vec<Finding>) {
    let html = message.html;
    for tag in tags(html, "link").chain(tags(html, "script")) {
        findings.push(Finding::error(
            "external-resource",
            message.file,
            format!(
                "the HTML loads `{}`; mail apps block external stylesheets and scripts",
                clip(tag)
            ),
        ));
    }
}

/// `outlook-css`: inline CSS that Outlook for Windows drops.
fn lint_outlook_css(message: &Message, findings: &mut Vec<Finding>) {
    for style in attributes(message.html, "style") {
        let compact: String = style
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase();
        for bad in [
            "display:flex",
            "display:grid",
            "display:inline-flex",
            "position:",
        ] {
            if compact.contains(bad) {
                findings.push(Finding::error(
                    "outlook-css",
                    message.file,
                    format!("the HTML uses `{bad}`, which Outlook for Windows drops for layout; use tables"),
                ));
            }
        }
    }
}

/// `missing-unsubscribe`, `missing-web-version`: links both parts must have.
fn lint_required_links(message: &Message, findings: &mut Vec<Finding>) {
    let (html, text) = (message.html, message.text);
    if !html.contains(UNSUBSCRIBE) || !text.contains(UNSUBSCRIBE) {
        findings.push(Finding::error(
            "missing-unsubscribe",
            message.file,
            "the unsubscribe link must be in both the HTML and the text part",
        ));
    }
    if !html.contains(message.web_url) || !text.contains(message.web_url) {
        findings.push(Finding::error(
            "missing-web-version",
            message.file,
            "the link to the web version must be in both parts",
        ));
    }
}

/// `missing-text-part`, `text-line-too-long`: the text part on its own.
fn lint_text_part(message: &Message, findings: &mut Vec<Finding>) {
    if message.text.trim().is_empty() {
        findings.push(Finding::error(
            "missing-text-part",
            message.file,
            "the text part is empty",
        ));
    }
    for (i, line) in message.text.lines().enumerate() {
        if !text::line_ok(line) {
            findings.push(Finding::error(
                "text-line-too-long",
                message.file,
                format!(
                    "line {} of the text part has more than {} characters: `{}`",
                    i + 1,
                    text::WIDTH,
                    clip(line)
                ),
            ));
        }
    }
}

/// `text-missing-link`: every link of the HTML is in the text part too.
fn lint_text_links(message: &Message, flat_text: &str, findings: &mut Vec<Finding>) {
    for href in attributes(message.html, "href") {
        let url = unescape(href);
        // The text part writes a mailto link as the bare address.
        let needle = url.strip_prefix("mailto:").unwrap_or(&url);
        if !flat_text.contains(needle) {
            findings.push(Finding::error(
                "text-missing-link",
                message.file,
                format!("the HTML links to `{url}` but the text part does not; spam filters score parts that differ"),
            ));
        }
    }
}

/// `text-missing-heading`: every heading of the HTML is in the text part too.
fn lint_text_headings(message: &Message, flat_text: &str, findings: &mut Vec<Finding>) {
    for level in ["h1", "h2", "h3"] {
        for heading in elements(message.html, level) {
            let words = strip_tags(&heading)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if !words.is_empty() && !flat_text.contains(&words) {
                findings.push(Finding::error(
                    "text-missing-heading",
                    message.file,
                    format!("the heading `{words}` is in the HTML but not in the text part"),
                ));
            }
        }
    }
}

pub(super) fn clip(text: &str) -> String {
    let clipped: String = text.chars().take(80).collect();
    if clipped.len() < text.len() {
        format!("{clipped}…")
    } else {
        clipped
    }
}

/// The opening tags `<name …>` in HTML.
pub(super) fn tags<'a>(html: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    tags_at(html, name).map(|(_, tag)| tag)
}

/// Every opening `<name …>` tag with the offset it starts at.
pub(super) fn tags_at<'a>(
    html: &'a str,
    name: &'a str,
) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    let open = format!("<{name}");
    html.match_indices(open.clone().as_str())
        .map(|(i, _)| i)
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(move |i| {
            let rest = &html[i..];
            let after = rest.as_bytes().get(open.len()).copied();
            if !matches!(after, Some(b' ' | b'>' | b'/' | b'\n')) {
                return None;
            }
            rest.find('>').map(|end| (i, &rest[..=end]))
        })
}

/// The value of `name="…"` in one tag.
pub(super) fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')?;
    Some(&tag[start..start + end])
}

/// Every value of `name="…"` anywhere in the HTML.
pub(super) fn attributes<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let key = format!(" {name}=\"");
    html.match_indices(&key)
        .filter_map(|(i, _)| {
            let start = i + key.len();
            html[start..].find('"').map(|end| &html[start..start + end])
        })
        .collect()
}

/// The inner HTML of every `<name …>…</name>`, each from its own tag
/// (identical tags are found at their own places, not the first one's).
pub(super) fn elements(html: &str, name: &str) -> Vec<String> {
    let close = format!("</{name}>");
    tags_at(html, name)
        .filter_map(|(at, tag)| {
            let start = at + tag.len();
            let end = html[start..].find(&close)?;
            Some(html[start..start + end].to_string())
        })
        .collect()
}

pub(super) fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out)
}

pub(super) fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_tags_each_yield_their_own_content() {
        let html = r#"<h2 class="s">From the blog</h2><p>x</p><h2 class="s">Coming up</h2>"#;
        assert_eq!(elements(html, "h2"), ["From the blog", "Coming up"]);
    }

    #[test]
    fn finds_tags_and_attributes() {
        let html = r#"<p><img src="a.png" alt=""><img src="b" alt="B"><a href="https://x.example/?a=1&amp;b=2">x</a></p>"#;
        let imgs: Vec<_> = tags(html, "img").collect();
        assert_eq!(imgs.len(), 2);
        assert_eq!(attribute(imgs[0], "alt"), Some(""));
        assert_eq!(attributes(html, "href"), ["https://x.example/?a=1&amp;b=2"]);
        assert_eq!(
            unescape(attributes(html, "href")[0]),
            "https://x.example/?a=1&b=2"
        );
    }
}
