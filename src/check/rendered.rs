//! Lints of the rendered message: size, images, links, Outlook CSS and the
//! text part, found by scanning the HTML each issue renders to.

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
    let file = &issue.source.path;
    let unsubscribe = "https://unsubscribe.check.invalid/token";
    let personal = rendered.personal(|name| sample.field(columns, name));
    let values = personal.values(unsubscribe, &sample.email);
    let html = rendered.html.fill(&values);
    let txt = rendered.text.fill(&values);

    if html.len() > HTML_LIMIT {
        findings.push(Finding::error(
            "html-too-large",
            file,
            format!(
                "the HTML part is {} KB; Gmail clips messages over about 102 KB, so keep it under {} KB (shorten the letter or move sections to the blog)",
                html.len() / 1024,
                HTML_LIMIT / 1024
            ),
        ));
    }
    for tag in tags(&html, "img") {
        if attribute(tag, "alt").is_none_or(|alt| alt.trim().is_empty()) {
            findings.push(Finding::error(
                "missing-alt",
                file,
                format!("an image has no alt text: `{}`; add words that describe it (`![description](url)`)", clip(tag)),
            ));
        }
    }
    for tag in tags(&html, "link").chain(tags(&html, "script")) {
        findings.push(Finding::error(
            "external-resource",
            file,
            format!(
                "the HTML loads `{}`; mail apps block external stylesheets and scripts",
                clip(tag)
            ),
        ));
    }
    for style in attributes(&html, "style") {
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
                    file,
                    format!("the HTML uses `{bad}`, which Outlook for Windows drops for layout; use tables"),
                ));
            }
        }
    }
    if !html.contains(unsubscribe) || !txt.contains(unsubscribe) {
        findings.push(Finding::error(
            "missing-unsubscribe",
            file,
            "the unsubscribe link must be in both the HTML and the text part",
        ));
    }
    if !html.contains(&rendered.web_url) || !txt.contains(&rendered.web_url) {
        findings.push(Finding::error(
            "missing-web-version",
            file,
            "the link to the web version must be in both parts",
        ));
    }

    if txt.trim().is_empty() {
        findings.push(Finding::error(
            "missing-text-part",
            file,
            "the text part is empty",
        ));
    }
    for (i, line) in txt.lines().enumerate() {
        if !text::line_ok(line) {
            findings.push(Finding::error(
                "text-line-too-long",
                file,
                format!(
                    "line {} of the text part has more than {} characters: `{}`",
                    i + 1,
                    text::WIDTH,
                    clip(line)
                ),
            ));
        }
    }
    let flat_text = txt.split_whitespace().collect::<Vec<_>>().join(" ");
    for href in attributes(&html, "href") {
        let url = unescape(href);
        // The text part writes a mailto link as the bare address.
        let needle = url.strip_prefix("mailto:").unwrap_or(&url);
        if !flat_text.contains(needle) {
            findings.push(Finding::error(
                "text-missing-link",
                file,
                format!("the HTML links to `{url}` but the text part does not; spam filters score parts that differ"),
            ));
        }
    }
    for level in ["h1", "h2", "h3"] {
        for heading in elements(&html, level) {
            let words = strip_tags(&heading)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if !words.is_empty() && !flat_text.contains(&words) {
                findings.push(Finding::error(
                    "text-missing-heading",
                    file,
                    format!("the heading `{words}` is in the HTML but not in the text part"),
                ));
            }
        }
    }
    let _ = config;
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
