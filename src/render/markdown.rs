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
        let mut writer = HtmlWriter {
            link: format!(
                "<a class=\"link\" style=\"color:{};text-decoration:underline\" href=\"",
                style.link_colour
            ),
            style,
            out,
            links: Vec::new(),
            image: None,
        };
        for event in &self.events {
            writer.event(event);
        }
    }

    /// Writes wrapped plain text; each link is followed by its URL in
    /// angle brackets, so no address is lost.
    pub fn to_text(&self, w: &mut TextWriter) {
        let mut writer = TextBuilder {
            w,
            buf: String::new(),
            lists: Vec::new(),
            quote_depth: 0,
            pending_bullet: None,
            link_urls: Vec::new(),
            image: None,
            heading: None,
        };
        for event in &self.events {
            writer.event(event);
        }
        writer.flush();
    }
}

/// Writing one Markdown's events as email HTML.
struct HtmlWriter<'a> {
    style: &'a HtmlStyle<'a>,
    out: &'a mut String,
    /// The opening of a link, up to its `href` value.
    link: String,
    /// Whether each open link was emitted, so End matches Start.
    links: Vec<bool>,
    /// The open image: its URL, and its alt text so far.
    image: Option<(String, String)>,
}

impl HtmlWriter<'_> {
    fn event(&mut self, event: &Event) {
        if let Some((_, alt)) = &mut self.image {
            match event {
                Event::Text(t) | Event::Code(t) => {
                    alt.push_str(t);
                    return;
                }
                Event::End(TagEnd::Image) => {}
                _ => return,
            }
        }
        let out = &mut *self.out;
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
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
                self.style.rule_colour
            )),
            _ => {}
        }
    }

    fn start(&mut self, tag: &Tag) {
        let (out, style) = (&mut *self.out, self.style);
        match tag {
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
            Tag::List(None) => out.push_str("<ul style=\"margin:0 0 16px 0;padding:0 0 0 24px\">"),
            Tag::Item => out.push_str("<li style=\"margin:0 0 8px 0\">"),
            Tag::Emphasis => out.push_str("<em>"),
            Tag::Strong => out.push_str("<strong>"),
            Tag::Strikethrough => out.push_str("<s>"),
            Tag::Link { dest_url, .. } => {
                let ok = safe_url(dest_url);
                if ok {
                    out.push_str(&self.link);
                    escape_html(dest_url.trim(), out);
                    out.push_str("\">");
                }
                self.links.push(ok);
            }
            Tag::Image { dest_url, .. } => {
                self.image = Some((dest_url.to_string(), String::new()));
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: &TagEnd) {
        let out = &mut *self.out;
        match tag {
            TagEnd::Paragraph => out.push_str("</p>\n"),
            TagEnd::Heading(level) => {
                let n = heading_number(*level, self.style.heading_offset);
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
            TagEnd::Link if self.links.pop().unwrap_or(false) => out.push_str("</a>"),
            TagEnd::Image => self.image(),
            _ => {}
        }
    }

    /// The image just closed: shown from an https:// URL, else its alt text.
    fn image(&mut self) {
        let Some((src, alt)) = self.image.take() else {
            return;
        };
        let out = &mut *self.out;
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

/// Writing one Markdown's events as wrapped plain text, a block at a time.
struct TextBuilder<'a> {
    w: &'a mut TextWriter,
    /// Inline text of the block being built.
    buf: String,
    /// The open lists, each with its next number (None: bullets).
    lists: Vec<Option<u64>>,
    quote_depth: usize,
    /// The open item's first-line prefix (`* `, `2. `), until it is written.
    pending_bullet: Option<String>,
    /// Each open link's URL, when it is safe to show.
    link_urls: Vec<Option<String>>,
    /// The open image's alt text so far.
    image: Option<String>,
    heading: Option<HeadingLevel>,
}

impl TextBuilder<'_> {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                match &mut self.image {
                    Some(alt) => alt.push_str(t),
                    None => self.buf.push_str(&neutral(t)),
                }
            }
            Event::SoftBreak => self.buf.push(' '),
            Event::HardBreak => self.buf.push('\n'),
            Event::Rule => {
                self.w.blank_line();
                self.w.raw_line(&"-".repeat(20));
            }
            _ => {}
        }
    }

    fn start(&mut self, tag: &Tag) {
        match tag {
            Tag::Paragraph if self.pending_bullet.is_none() => self.w.blank_line(),
            Tag::Heading { level, .. } => {
                self.heading = Some(*level);
                self.buf.clear();
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.quote_depth += 1;
            }
            Tag::CodeBlock(_) => self.w.blank_line(),
            Tag::List(start) => {
                self.flush();
                if self.lists.is_empty() {
                    self.w.blank_line();
                }
                self.lists.push(*start);
            }
            Tag::Item => {
                self.flush();
                self.pending_bullet = Some(self.bullet());
            }
            Tag::Link { dest_url, .. } => {
                let shown = safe_url(dest_url).then(|| dest_url.trim().to_string());
                self.link_urls.push(shown);
            }
            Tag::Image { .. } => self.image = Some(String::new()),
            _ => {}
        }
    }

    fn end(&mut self, tag: &TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::Item => self.flush(),
            TagEnd::Heading(_) => {
                let level = self.heading.take().map_or(2, |l| l as u8);
                self.w.heading(self.buf.trim(), level + 1);
                self.buf.clear();
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.quote_depth = self.quote_depth.saturating_sub(1);
            }
            TagEnd::CodeBlock => {
                for line in self.buf.lines() {
                    self.w.wrapped(line, "    ", "    ");
                }
                self.buf.clear();
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
            }
            TagEnd::Link => self.link_url(),
            TagEnd::Image => {
                if let Some(alt) = self.image.take() {
                    self.buf.push_str(&alt);
                }
            }
            _ => {}
        }
    }

    /// The first-line prefix of a new item, counting on a numbered list.
    fn bullet(&mut self) -> String {
        let depth = self.lists.len().saturating_sub(1);
        let mut prefix = "> ".repeat(self.quote_depth);
        prefix.push_str(&"  ".repeat(depth));
        match self.lists.last_mut() {
            Some(Some(n)) => {
                prefix.push_str(&format!("{n}. "));
                *n += 1;
            }
            _ => prefix.push_str("* "),
        }
        prefix
    }

    /// The link just closed: its URL in angle brackets after its text,
    /// unless the text already ends with it.
    fn link_url(&mut self) {
        if let Some(Some(url)) = self.link_urls.pop() {
            let shown = url.strip_prefix("mailto:").unwrap_or(&url);
            if !self.buf.trim_end().ends_with(shown) {
                self.buf.push_str(" <");
                self.buf.push_str(&url);
                self.buf.push('>');
            }
        }
    }

    /// The prefix of a block's lines after the first: quotes and lists.
    fn indent(&self) -> String {
        let mut s = "> ".repeat(self.quote_depth);
        s.push_str(&"  ".repeat(self.lists.len()));
        s
    }

    /// Writes the block built so far, wrapped, and starts the next.
    fn flush(&mut self) {
        if self.buf.trim().is_empty() && self.pending_bullet.is_none() {
            self.buf.clear();
            return;
        }
        let rest = self.indent();
        let first = self.pending_bullet.take().unwrap_or_else(|| rest.clone());
        self.w.wrapped(self.buf.trim(), &first, &rest);
        self.buf.clear();
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
