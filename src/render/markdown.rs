//! Markdown from issue files, parsed once and written both as email HTML
//! (inline styles) and as wrapped plain text.
//!
//! Raw HTML in the Markdown is shown as text, never passed through, and a
//! link whose scheme is not `https:`, `http:` or `mailto:` loses its link.

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::template::escape_html;
use super::text::TextWriter;
use crate::model::url::safe_url;
use crate::render::merge::{self, Fields};

/// Parsed Markdown, ready to be written in either form.
#[derive(Debug, Clone)]
pub struct Markdown {
    events: Vec<Event<'static>>,
}

/// A link as written in the Markdown.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub text: String,
    pub url: String,
    /// Byte offset of the link in the Markdown source.
    pub offset: usize,
}

/// Inline styles the HTML writer uses.
pub struct HtmlStyle<'a> {
    pub link_colour: &'a str,
    pub rule_colour: &'a str,
    /// Markdown `#` becomes this heading level (so the letter's headings sit
    /// below the issue title).
    pub heading_offset: u8,
}

impl Markdown {
    pub fn parse(source: &str) -> Markdown {
        Markdown::parse_protected(source, &Fields::default())
    }

    /// Parses Markdown whose merge fields were protected by `fields`
    /// ([`Fields::protect`]): placeholders in the text stay, to become holes;
    /// in a link or image URL (or title) they are put back as written, since
    /// a URL is never personalised (`check` reports `merge-field-in-url`).
    pub fn parse_protected(source: &str, fields: &Fields) -> Markdown {
        let restore = |s: CowStr<'static>| -> CowStr<'static> {
            if merge::has_placeholder(&s) {
                fields.restore(&s).into()
            } else {
                s
            }
        };
        let events = Parser::new_ext(source, Options::ENABLE_STRIKETHROUGH)
            .map(Event::into_static)
            .map(|event| match event {
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }) => Event::Start(Tag::Link {
                    link_type,
                    dest_url: restore(dest_url),
                    title: restore(title),
                    id,
                }),
                Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    title,
                    id,
                }) => Event::Start(Tag::Image {
                    link_type,
                    dest_url: restore(dest_url),
                    title: restore(title),
                    id,
                }),
                other => other,
            })
            .collect();
        Markdown { events }
    }

    /// Every link with its text and offset, for the checks. Merge fields are
    /// read as fields, not Markdown, and shown as written.
    pub fn links(source: &str) -> Vec<Link> {
        Markdown::destinations(source, false)
    }

    /// Every link and image (its alt text as the text), for the checks.
    pub fn links_and_images(source: &str) -> Vec<Link> {
        Markdown::destinations(source, true)
    }

    fn destinations(source: &str, images: bool) -> Vec<Link> {
        let mut fields = Fields::default();
        let protected = fields.protect(source).ok();
        let parsed = protected.as_ref().map_or(source, |p| p.text.as_str());
        let mut links = Vec::new();
        // Open links (and images): URL, offset, text so far.
        let mut open: Vec<(String, usize, String)> = Vec::new();
        for (event, range) in
            Parser::new_ext(parsed, Options::ENABLE_STRIKETHROUGH).into_offset_iter()
        {
            match event {
                Event::Start(Tag::Link { dest_url, .. }) => {
                    open.push((dest_url.to_string(), range.start, String::new()));
                }
                Event::Start(Tag::Image { dest_url, .. }) if images => {
                    open.push((dest_url.to_string(), range.start, String::new()));
                }
                Event::Text(t) | Event::Code(t) => {
                    for (_, _, text) in &mut open {
                        text.push_str(&t);
                    }
                }
                Event::End(TagEnd::Link) => {
                    if let Some((url, offset, text)) = open.pop() {
                        links.push(Link { text, url, offset });
                    }
                }
                Event::End(TagEnd::Image) if images => {
                    if let Some((url, offset, text)) = open.pop() {
                        links.push(Link { text, url, offset });
                    }
                }
                _ => {}
            }
        }
        if let Some(protected) = &protected {
            for link in &mut links {
                link.text = fields.restore(&link.text);
                link.url = fields.restore(&link.url);
                link.offset = protected.original_offset(link.offset);
            }
        }
        links
    }

    /// Writes email HTML with inline styles.
    pub fn to_html(&self, style: &HtmlStyle, out: &mut String) {
        let link = format!(
            "<a class=\"link\" style=\"color:{};text-decoration:underline\" href=\"",
            style.link_colour
        );
        // A stack of whether each open link was emitted, so End matches Start.
        let mut links: Vec<bool> = Vec::new();
        let mut image_alt: Option<(String, String)> = None;
        for event in &self.events {
            if let Some((_, alt)) = &mut image_alt {
                match event {
                    Event::Text(t) | Event::Code(t) => {
                        alt.push_str(t);
                        continue;
                    }
                    Event::End(TagEnd::Image) => {}
                    _ => continue,
                }
            }
            match event {
                Event::Start(tag) => match tag {
                    Tag::Paragraph => out.push_str("<p style=\"margin:0 0 16px 0\">"),
                    Tag::Heading { level, .. } => {
                        let n = heading_number(*level, style.heading_offset);
                        out.push_str(&format!(
                            "<h{n} class=\"heading\" style=\"margin:24px 0 12px 0;font-size:{}px;line-height:1.3;color:{}\">",
                            if n <= 2 { 22 } else { 18 },
                            style.link_colour
                        ));
                    }
                    Tag::BlockQuote(_) => out.push_str(&format!(
                        "<blockquote class=\"rule\" style=\"margin:0 0 16px 0;padding:0 0 0 16px;border-left:4px solid {}\">",
                        style.rule_colour
                    )),
                    Tag::CodeBlock(_) => out.push_str(
                        "<pre style=\"margin:0 0 16px 0;white-space:pre-wrap;word-wrap:break-word\">",
                    ),
                    Tag::List(Some(start)) => out.push_str(&format!(
                        "<ol start=\"{start}\" style=\"margin:0 0 16px 0;padding:0 0 0 24px\">"
                    )),
                    Tag::List(None) => {
                        out.push_str("<ul style=\"margin:0 0 16px 0;padding:0 0 0 24px\">")
                    }
                    Tag::Item => out.push_str("<li style=\"margin:0 0 8px 0\">"),
                    Tag::Emphasis => out.push_str("<em>"),
                    Tag::Strong => out.push_str("<strong>"),
                    Tag::Strikethrough => out.push_str("<s>"),
                    Tag::Link { dest_url, .. } => {
                        let ok = safe_url(dest_url);
                        if ok {
                            out.push_str(&link);
                            escape_html(dest_url.trim(), out);
                            out.push_str("\">");
                        }
                        links.push(ok);
                    }
                    Tag::Image { dest_url, .. } => {
                        image_alt = Some((dest_url.to_string(), String::new()));
                    }
                    _ => {}
                },
                Event::End(tag) => match tag {
                    TagEnd::Paragraph => out.push_str("</p>\n"),
                    TagEnd::Heading(level) => {
                        let n = heading_number(*level, style.heading_offset);
                        out.push_str(&format!("</h{n}>\n"));
                    }
                    TagEnd::BlockQuote(_) => out.push_str("</blockquote>\n"),
                    TagEnd::CodeBlock => out.push_str("</pre>\n"),
                    TagEnd::List(true) => out.push_str("</ol>\n"),
                    TagEnd::List(false) => out.push_str("</ul>\n"),
                    TagEnd::Item => out.push_str("</li>\n"),
                    TagEnd::Emphasis => out.push_str("</em>"),
                    TagEnd::Strong => out.push_str("</strong>"),
                    TagEnd::Strikethrough => out.push_str("</s>"),
                    TagEnd::Link if links.pop().unwrap_or(false) => out.push_str("</a>"),
                    TagEnd::Image => {
                        if let Some((src, alt)) = image_alt.take() {
                            if src.starts_with("https://") {
                                out.push_str("<img src=\"");
                                escape_html(&src, out);
                                out.push_str("\" alt=\"");
                                escape_html(&alt, out);
                                out.push_str("\" width=\"560\" style=\"display:block;width:100%;max-width:560px;height:auto;border:0\">");
                            } else {
                                escape_html(&alt, out);
                            }
                        }
                    }
                    _ => {}
                },
                Event::Text(t) => escape_html(t, out),
                Event::Code(t) => {
                    out.push_str("<code>");
                    escape_html(t, out);
                    out.push_str("</code>");
                }
                Event::Html(t) | Event::InlineHtml(t) => escape_html(t, out),
                Event::SoftBreak => out.push('\n'),
                Event::HardBreak => out.push_str("<br>\n"),
                Event::Rule => out.push_str(&format!(
                    "<hr class=\"rule\" style=\"border:0;border-top:1px solid {};margin:24px 0\">\n",
                    style.rule_colour
                )),
                _ => {}
            }
        }
    }

    /// Writes wrapped plain text; each link is followed by its URL in
    /// angle brackets, so no address is lost.
    pub fn to_text(&self, w: &mut TextWriter) {
        // Inline text of the block being built.
        let mut buf = String::new();
        // Prefixes for nested lists and quotes.
        let mut lists: Vec<Option<u64>> = Vec::new();
        let mut quote_depth = 0usize;
        let mut pending_bullet: Option<String> = None;
        let mut link_urls: Vec<Option<String>> = Vec::new();
        let mut image: Option<String> = None;
        let mut heading: Option<HeadingLevel> = None;

        let indent = |lists: &Vec<Option<u64>>, quote_depth: usize| -> String {
            let mut s = "> ".repeat(quote_depth);
            s.push_str(&"  ".repeat(lists.len()));
            s
        };
        let flush = |w: &mut TextWriter,
                     buf: &mut String,
                     pending: &mut Option<String>,
                     lists: &Vec<Option<u64>>,
                     quote_depth: usize| {
            if buf.trim().is_empty() && pending.is_none() {
                buf.clear();
                return;
            }
            let rest = indent(lists, quote_depth);
            let first = pending.take().unwrap_or_else(|| rest.clone());
            w.wrapped(buf.trim(), &first, &rest);
            buf.clear();
        };

        for event in &self.events {
            match event {
                Event::Start(tag) => match tag {
                    Tag::Paragraph if pending_bullet.is_none() => w.blank_line(),
                    Tag::Heading { level, .. } => {
                        heading = Some(*level);
                        buf.clear();
                    }
                    Tag::BlockQuote(_) => {
                        flush(w, &mut buf, &mut pending_bullet, &lists, quote_depth);
                        quote_depth += 1;
                    }
                    Tag::CodeBlock(_) => w.blank_line(),
                    Tag::List(start) => {
                        flush(w, &mut buf, &mut pending_bullet, &lists, quote_depth);
                        if lists.is_empty() {
                            w.blank_line();
                        }
                        lists.push(*start);
                    }
                    Tag::Item => {
                        flush(w, &mut buf, &mut pending_bullet, &lists, quote_depth);
                        let depth = lists.len().saturating_sub(1);
                        let mut prefix = "> ".repeat(quote_depth);
                        prefix.push_str(&"  ".repeat(depth));
                        match lists.last_mut() {
                            Some(Some(n)) => {
                                prefix.push_str(&format!("{n}. "));
                                *n += 1;
                            }
                            _ => prefix.push_str("* "),
                        }
                        pending_bullet = Some(prefix);
                    }
                    Tag::Link { dest_url, .. } => {
                        link_urls.push(safe_url(dest_url).then(|| dest_url.trim().to_string()));
                    }
                    Tag::Image { .. } => image = Some(String::new()),
                    _ => {}
                },
                Event::End(tag) => match tag {
                    TagEnd::Paragraph => {
                        flush(w, &mut buf, &mut pending_bullet, &lists, quote_depth)
                    }
                    TagEnd::Heading(_) => {
                        let level = heading.take().map_or(2, |l| l as u8);
                        w.heading(buf.trim(), level + 1);
                        buf.clear();
                    }
                    TagEnd::BlockQuote(_) => {
                        flush(w, &mut buf, &mut pending_bullet, &lists, quote_depth);
                        quote_depth = quote_depth.saturating_sub(1);
                    }
                    TagEnd::CodeBlock => {
                        for line in buf.lines() {
                            w.wrapped(line, "    ", "    ");
                        }
                        buf.clear();
                    }
                    TagEnd::List(_) => {
                        flush(w, &mut buf, &mut pending_bullet, &lists, quote_depth);
                        lists.pop();
                    }
                    TagEnd::Item => flush(w, &mut buf, &mut pending_bullet, &lists, quote_depth),
                    TagEnd::Link => {
                        if let Some(Some(url)) = link_urls.pop() {
                            let shown = url.strip_prefix("mailto:").unwrap_or(&url);
                            if !buf.trim_end().ends_with(shown) {
                                buf.push_str(" <");
                                buf.push_str(&url);
                                buf.push('>');
                            }
                        }
                    }
                    TagEnd::Image => {
                        if let Some(alt) = image.take() {
                            buf.push_str(&alt);
                        }
                    }
                    _ => {}
                },
                Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                    match &mut image {
                        Some(alt) => alt.push_str(t),
                        None => buf.push_str(&neutral(t)),
                    }
                }
                Event::SoftBreak => buf.push(' '),
                Event::HardBreak => buf.push('\n'),
                Event::Rule => {
                    w.blank_line();
                    w.raw_line(&"-".repeat(20));
                }
                _ => {}
            }
        }
        flush(w, &mut buf, &mut pending_bullet, &lists, quote_depth);
    }
}

/// Text from data can never contain a template marker.
pub fn neutral(text: &CowStr) -> String {
    text.replace("<!--slot:", "<!-- slot:")
}

fn heading_number(level: HeadingLevel, offset: u8) -> u8 {
    (level as u8 + offset).min(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(md: &str) -> String {
        let mut out = String::new();
        Markdown::parse(md).to_html(
            &HtmlStyle {
                link_colour: "#000000",
                rule_colour: "#cccccc",
                heading_offset: 1,
            },
            &mut out,
        );
        out
    }

    fn text(md: &str) -> String {
        let mut w = TextWriter::default();
        Markdown::parse(md).to_text(&mut w);
        w.finish()
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let out = html("Hello <script>alert(1)</script> there");
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("&lt;script&gt;"));
    }

    #[test]
    fn javascript_links_lose_their_link() {
        let out = html("[click](javascript:alert(1)) and [ok](https://example.org/)");
        assert!(!out.contains("javascript:"), "{out}");
        assert!(out.contains("href=\"https://example.org/\""));
        let t = text("[click](javascript:alert(1))");
        assert!(!t.contains("javascript:"), "{t}");
    }

    #[test]
    fn links_are_written_out_in_text() {
        let t = text("Read [our briefing](https://example.org/briefing) today.");
        assert_eq!(
            t,
            "Read our briefing <https://example.org/briefing> today.\n"
        );
    }

    #[test]
    fn lists_and_headings_in_text() {
        let t = text("# Title\n\n* one\n* two\n\n1. first\n2. second\n");
        assert!(t.contains("Title\n-----"), "{t}");
        assert!(t.contains("* one\n* two"), "{t}");
        assert!(t.contains("1. first\n2. second"), "{t}");
    }

    #[test]
    fn merge_fields_are_not_markdown_and_urls_keep_them_as_written() {
        let mut fields = Fields::default();
        let source = "Hi _{{a_b}}_ and {{c_d|x_y}} [see](https://x.example/?u={{a_b}})";
        let protected = fields.protect(source).unwrap();
        let mut out = String::new();
        Markdown::parse_protected(&protected.text, &fields).to_html(
            &HtmlStyle {
                link_colour: "#000000",
                rule_colour: "#cccccc",
                heading_offset: 1,
            },
            &mut out,
        );
        let (a, c) = (merge::placeholder(0), merge::placeholder(1));
        assert!(out.contains(&format!("<em>{a}</em> and {c} ")), "{out}");
        assert!(
            out.contains("href=\"https://x.example/?u={{a_b}}\""),
            "{out}"
        );
        let links = Markdown::links(source);
        assert_eq!(links[0].url, "https://x.example/?u={{a_b}}");
        assert_eq!(links[0].offset, source.find("[see]").unwrap());
    }

    #[test]
    fn finds_links_with_offsets() {
        let links = Markdown::links("a [b](https://x.example/) c");
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].text, "b");
        assert_eq!(links[0].offset, 2);
    }
}
