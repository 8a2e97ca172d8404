//! Lints of the rendered message: size, images, links, Outlook CSS and the
//! text part.
//!
//! The HTML part is parsed once, as a browser parses it (`scraper`, on
//! html5ever): attributes in any quoting, entities decoded, tag names in
//! any case, and nothing inside a comment, a `<style>` or a `<title>`
//! taken for an element. Outlook's conditional comments
//! (`<!--[if mso]>…<![endif]-->`) are the exception: Outlook shows their
//! insides, so those are parsed too and walked in their place. The parser
//! keeps no source text, so a message shows an element's opening tag
//! written back as the renderer writes it ([`opening_tag`]).

use std::path::Path;

use scraper::{ElementRef, Html};

use crate::model::config::Config;
use crate::model::finding::Finding;
use crate::model::issue::Issue;
use crate::model::subscribers::{self, Columns};
use crate::render::template::escape_html;
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
    let page = Page::parse(message.html);
    let elements = page.elements();
    lint_size(message, findings);
    lint_alt_text(message, &elements, findings);
    lint_external_resources(message, &elements, findings);
    lint_outlook_css(message, &elements, findings);
    lint_required_links(message, findings);
    lint_text_part(message, findings);
    let flat_text = words(message.text.split_whitespace());
    lint_text_links(message, &elements, &flat_text, findings);
    lint_text_headings(message, &elements, &flat_text, findings);
}

/// The HTML part, parsed: the document, and the inside of each of its
/// Outlook conditional comments.
struct Page {
    document: Html,
    /// One for each conditional comment of `document`, in document order.
    outlook: Vec<Html>,
}

impl Page {
    fn parse(html: &str) -> Page {
        let document = Html::parse_document(html);
        let outlook = document
            .tree
            .root()
            .descendants()
            .filter_map(|node| node.value().as_comment().and_then(|c| outlook_markup(c)))
            .map(Html::parse_fragment)
            .collect();
        Page { document, outlook }
    }

    /// Every element in document order, those Outlook alone shows in the
    /// place of their conditional comment.
    fn elements(&self) -> Vec<ElementRef<'_>> {
        let mut outlook = self.outlook.iter();
        let mut elements = Vec::new();
        for node in self.document.tree.root().descendants() {
            if let Some(element) = ElementRef::wrap(node) {
                elements.push(element);
            } else if node
                .value()
                .as_comment()
                .and_then(|c| outlook_markup(c))
                .is_some()
                && let Some(inside) = outlook.next()
            {
                elements.extend(
                    inside
                        .tree
                        .root()
                        .descendants()
                        .filter_map(ElementRef::wrap),
                );
            }
        }
        elements
    }
}

/// The markup of a conditional comment, `[if mso]>…<![endif]`; `None` for
/// an ordinary comment.
fn outlook_markup(comment: &str) -> Option<&str> {
    let (_, inside) = comment.strip_prefix("[if ")?.split_once("]>")?;
    Some(inside.strip_suffix("<![endif]").unwrap_or(inside))
}

/// The elements named `name` (lower case), in document order.
fn named<'a, 'p>(
    elements: &'a [ElementRef<'p>],
    name: &'a str,
) -> impl Iterator<Item = &'a ElementRef<'p>> + 'a {
    elements.iter().filter(move |e| e.value().name() == name)
}

/// An element's opening tag as the renderer writes it: the attributes in
/// their order, double-quoted, escaped as [`escape_html`] escapes them.
fn opening_tag(element: &ElementRef) -> String {
    let mut tag = format!("<{}", element.value().name());
    for (name, value) in element.value().attrs() {
        tag.push(' ');
        tag.push_str(name);
        tag.push_str("=\"");
        escape_html(value, &mut tag);
        tag.push('"');
    }
    tag.push('>');
    tag
}

/// Words joined by one space each.
fn words<'a>(words: impl Iterator<Item = &'a str>) -> String {
    words.collect::<Vec<_>>().join(" ")
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
fn lint_alt_text(message: &Message, elements: &[ElementRef], findings: &mut Vec<Finding>) {
    for img in named(elements, "img") {
        if img.attr("alt").is_none_or(|alt| alt.trim().is_empty()) {
            findings.push(Finding::error(
                "missing-alt",
                message.file,
                format!("an image has no alt text: `{}`; add words that describe it (`![description](url)`)", clip(&opening_tag(img))),
            ));
        }
    }
}

/// `external-resource`: stylesheets and scripts, which mail apps block.
fn lint_external_resources(
    message: &Message,
    elements: &[ElementRef],
    findings: &mut Vec<Finding>,
) {
    for element in named(elements, "link").chain(named(elements, "script")) {
        findings.push(Finding::error(
            "external-resource",
            message.file,
            format!(
                "the HTML loads `{}`; mail apps block external stylesheets and scripts",
                clip(&opening_tag(element))
            ),
        ));
    }
}

/// `outlook-css`: inline CSS that Outlook for Windows drops.
fn lint_outlook_css(message: &Message, elements: &[ElementRef], findings: &mut Vec<Finding>) {
    for style in elements.iter().filter_map(|e| e.attr("style")) {
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
fn lint_text_links(
    message: &Message,
    elements: &[ElementRef],
    flat_text: &str,
    findings: &mut Vec<Finding>,
) {
    for url in elements.iter().filter_map(|e| e.attr("href")) {
        // The text part writes a mailto link as the bare address.
        let needle = url.strip_prefix("mailto:").unwrap_or(url);
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
fn lint_text_headings(
    message: &Message,
    elements: &[ElementRef],
    flat_text: &str,
    findings: &mut Vec<Finding>,
) {
    for level in ["h1", "h2", "h3"] {
        for heading in named(elements, level) {
            // Text nodes are joined as they stand: `<strong>Save</strong>: 5 May`
            // reads "Save: 5 May", as the text part writes it.
            let text: String = heading.text().collect();
            let words = words(text.split_whitespace());
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

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: &str = "https://news.example.org/2026-01-01.html";

    /// The findings of a message whose HTML body is `body` and whose text
    /// part is `text`, both with the links every message has.
    fn lint(body: &str, text: &str) -> Vec<(&'static str, String)> {
        let html = format!(
            "<!DOCTYPE html><html><head></head><body>{body}<a href=\"{UNSUBSCRIBE}\">Unsubscribe</a> <a href=\"{WEB}\">View online</a></body></html>"
        );
        let text = format!("{text}\n\nUnsubscribe: {UNSUBSCRIBE}\nView online: {WEB}\n");
        let message = Message {
            file: Path::new("issues/2026-01-01.toml"),
            html: &html,
            text: &text,
            web_url: WEB,
        };
        let mut findings = Vec::new();
        lint_message(&message, &mut findings);
        findings.into_iter().map(|f| (f.code, f.message)).collect()
    }

    fn codes(body: &str, text: &str) -> Vec<&'static str> {
        lint(body, text).into_iter().map(|(code, _)| code).collect()
    }

    #[test]
    fn a_clean_message_has_no_findings() {
        let body = r#"<h2 class="heading">From the blog</h2><p><img src="https://x.example/a.png" alt="The team"></p>"#;
        assert_eq!(codes(body, "From the blog"), Vec::<&str>::new());
    }

    #[test]
    fn an_empty_alt_is_missing_alt_shown_as_rendered() {
        let body = r#"<img src="https://x.example/a.png?w=1&amp;h=2" alt="" width="600" style="display:block">"#;
        assert_eq!(
            lint(body, ""),
            [(
                "missing-alt",
                "an image has no alt text: `<img src=\"https://x.example/a.png?w=1&amp;h=2\" alt=\"\" width=\"600\" style=\"display…`; add words that describe it (`![description](url)`)".to_string()
            )]
        );
    }

    #[test]
    fn a_single_quoted_alt_is_alt_text() {
        assert_eq!(
            codes("<img src='a.png' alt='The team'>", ""),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn an_unquoted_alt_is_alt_text() {
        assert_eq!(codes("<img src=a.png alt=Team>", ""), Vec::<&str>::new());
    }

    #[test]
    fn a_data_alt_attribute_is_not_alt_text() {
        assert_eq!(
            codes(r#"<img src="a.png" data-alt="The team">"#, ""),
            ["missing-alt"]
        );
    }

    #[test]
    fn an_alt_inside_another_attribute_is_not_alt_text() {
        assert_eq!(
            codes(r#"<img src="a.png" title='say alt="x"'>"#, ""),
            ["missing-alt"]
        );
    }

    #[test]
    fn a_greater_than_sign_in_an_attribute_does_not_end_the_tag() {
        assert_eq!(
            codes(r#"<img title="a > b" src="a.png" alt="The team">"#, ""),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn an_upper_case_img_tag_is_an_image() {
        assert_eq!(codes(r#"<IMG SRC="a.png">"#, ""), ["missing-alt"]);
    }

    #[test]
    fn an_image_in_a_comment_is_not_shown() {
        assert_eq!(
            codes(r#"<!-- <img src="a.png"> -->"#, ""),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn an_image_in_a_style_block_is_not_an_image() {
        assert_eq!(
            codes(r#"<style>/* <img src="a.png"> */ p{margin:0}</style>"#, ""),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn an_image_in_an_outlook_conditional_comment_is_shown_by_outlook() {
        assert_eq!(
            codes(r#"<!--[if mso]><img src="a.png"><![endif]-->"#, ""),
            ["missing-alt"]
        );
    }

    #[test]
    fn a_script_is_shown_by_its_opening_tag() {
        assert_eq!(
            lint(r#"<script src="https://x.example/a.js"></script>"#, ""),
            [(
                "external-resource",
                "the HTML loads `<script src=\"https://x.example/a.js\">`; mail apps block external stylesheets and scripts".to_string()
            )]
        );
    }

    #[test]
    fn a_stylesheet_in_a_comment_loads_nothing() {
        assert_eq!(
            codes(
                r#"<!-- <link rel="stylesheet" href="https://x.example/a.css"> -->"#,
                ""
            ),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_single_quoted_style_is_css() {
        assert_eq!(
            codes("<div style='display: flex'>x</div>", ""),
            ["outlook-css"]
        );
    }

    #[test]
    fn a_style_attribute_in_a_comment_is_not_css() {
        assert_eq!(
            codes(r#"<!-- <div style="position:absolute"> -->"#, ""),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_single_quoted_href_is_a_link() {
        assert_eq!(
            lint("<a href='https://x.example/report'>the report</a>", ""),
            [(
                "text-missing-link",
                "the HTML links to `https://x.example/report` but the text part does not; spam filters score parts that differ".to_string()
            )]
        );
    }

    #[test]
    fn an_amp_entity_in_an_href_is_decoded() {
        let body = r#"<a href="https://x.example/?a=1&amp;b=2">x</a>"#;
        assert_eq!(
            codes(body, "https://x.example/?a=1&b=2"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_numeric_entity_in_an_href_is_decoded() {
        let body = r#"<a href="https://x.example/?a=1&#38;b=2">x</a>"#;
        assert_eq!(
            codes(body, "https://x.example/?a=1&b=2"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_mailto_link_is_the_bare_address_in_the_text() {
        let body = r#"<a href="mailto:office@example.org">write to us</a>"#;
        assert_eq!(codes(body, "office@example.org"), Vec::<&str>::new());
    }

    #[test]
    fn two_identical_headings_are_each_checked() {
        let body = r#"<h2 class="s">From the blog</h2><p>x</p><h2 class="s">Coming up</h2>"#;
        assert_eq!(
            lint(body, "From the blog"),
            [(
                "text-missing-heading",
                "the heading `Coming up` is in the HTML but not in the text part".to_string()
            )]
        );
    }

    #[test]
    fn a_heading_with_a_class_is_a_heading() {
        assert_eq!(
            codes(r#"<h2 class="heading">Coming up</h2>"#, ""),
            ["text-missing-heading"]
        );
    }

    #[test]
    fn a_heading_tag_followed_by_a_tab_is_a_heading() {
        assert_eq!(
            codes("<h2\tclass=\"heading\">Coming up</h2>", ""),
            ["text-missing-heading"]
        );
    }

    #[test]
    fn nested_tags_in_a_heading_are_its_words() {
        let body = r#"<h3><a href="https://x.example/post">From <em>the</em> blog</a></h3>"#;
        assert_eq!(
            codes(body, "From the blog https://x.example/post"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn markup_touching_a_word_in_a_heading_adds_no_space() {
        let body = "<h2><strong>Save the date</strong>: 5 May</h2><h3><em>Anna</em>'s story</h3>";
        assert_eq!(
            codes(body, "Save the date: 5 May\n\nAnna's story"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_greater_than_sign_in_a_heading_link_is_not_its_words() {
        let body = r#"<h3><a title="a > b" href="https://x.example/post">From the blog</a></h3>"#;
        assert_eq!(
            codes(body, "From the blog https://x.example/post"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_numeric_entity_in_a_heading_is_decoded() {
        assert_eq!(
            codes("<h2>Women&#8217;s rights</h2>", "Women\u{2019}s rights"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn a_heading_in_a_comment_is_not_a_heading() {
        assert_eq!(codes("<!-- <h2>Draft</h2> -->", ""), Vec::<&str>::new());
    }
}
