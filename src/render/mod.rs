//! Turns an issue and the archive into the two parts of every message.
//!
//! One resolved model feeds both the HTML and the text part, and each piece of
//! Markdown is parsed once for both. The result has holes for the few
//! per-subscriber values, so sending fills templates instead of rendering.
//!
//! Merge fields outside the greeting (subject, preheader, letter, section
//! headings and bodies, call-to-action intro and text) are protected as
//! placeholders before anything is parsed ([`crate::render::merge`]) and become
//! holes of the templates: [`Slot::Merge`] in the HTML part (the value,
//! HTML-escaped) and in the subject and preheader, [`Slot::Text`] in the
//! text part (the block holding the field, filled and wrapped per message).
//!
//! Rendering fails only on what the issue says — a post or event the archive
//! lacks, merge syntax that is wrong, an image that cannot be shown — so its
//! error is the [`Finding`] `check` reports for it, at its line: `check`
//! lists it, the other commands print it ([`load_issue`] returns it as
//! [`LoadError::Invalid`]). Boxed, as in [`LoadError`].

pub mod assets;
mod cards;
mod html;
pub mod ics;
pub mod images;
pub mod markdown;
pub mod merge;
pub mod message;
pub mod page;
mod plain;
pub mod qp;
pub mod template;
pub mod text;

use std::borrow::Cow;

use toml::Spanned;

use crate::model::archive::{Archive, Event, Post};
use crate::model::audience::Audiences;
use crate::model::config::Config;
use crate::model::finding::Finding;
use crate::model::issue::{CallToAction, Issue};
use crate::model::load_error::LoadError;
use crate::model::theme::Theme;
use crate::model::toml_file::Source;
use crate::render::merge::{Fields, MergeText};
use markdown::Markdown;
pub use template::{Hole, Slot, SlotValues, Template};

/// Everything about an issue that both parts show, resolved and parsed.
pub struct Model<'a> {
    pub config: &'a Config,
    pub theme: &'a Theme,
    pub issue: &'a Issue,
    pub web_url: String,
    /// The root of the static site (`newsletter web build`), ending in `/`.
    pub site_base: String,
    /// The subject and preheader, merge fields as placeholders.
    pub subject: String,
    pub preheader: String,
    pub letter: Markdown,
    pub sections: Vec<ModelSection<'a>>,
    pub call_to_action: Option<ModelCta>,
    /// The sign-off's `text`: the letter's last words before the closing.
    pub sign_off_text: Option<Markdown>,
    /// Set when rendering the public web page instead of the email.
    pub web: Option<WebPage>,
    /// The logo, the signature and the posts' thumbnails, hosted.
    pub images: images::Images,
}

/// What the public web page of an issue ([`web_page`]) has instead of the
/// email's personal lines: links to the rest of the site, and what a link
/// preview shows.
#[derive(Debug, Clone)]
pub struct WebPage {
    /// The list of issues, relative to the page.
    pub index_href: String,
    /// The page on how to unsubscribe, relative to the page.
    pub unsubscribe_href: String,
    /// The Atom feed, relative to the page.
    pub feed_href: String,
    /// The subject and preheader with every merge field at its fallback.
    pub title: String,
    pub description: String,
}

pub struct ModelSection<'a> {
    /// The section's bit among the audienced sections, when it has an
    /// audience: it is then marked ([`section_marker`]) in both parts.
    pub audience: Option<u32>,
    pub heading: String,
    /// The events already happened, so no booking links.
    pub past_events: bool,
    pub body: Option<Markdown>,
    pub events: Vec<&'a Event>,
    pub posts: Vec<&'a Post>,
}

pub struct ModelCta {
    pub intro: Option<Markdown>,
    pub text: String,
    /// None when the URL is not safe to link to.
    pub url: Option<String>,
}

/// The rendered issue: subject, preheader, and the two parts with holes.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub issue_id: String,
    /// The subject as written (merge fields and all).
    pub subject: String,
    /// The preheader as written.
    pub preheader: String,
    pub greeting: MergeText,
    pub web_url: String,
    pub html: Template,
    pub text: Template,
    /// The distinct merge fields outside the greeting; [`Slot::Merge`] and
    /// [`SlotValues::merge`] index them.
    pub fields: Fields,
    /// The subject and the preheader with holes for their merge fields.
    pub subject_template: Template,
    pub preheader_template: Template,
    /// Who gets the issue and its audienced sections. `html` and `text`
    /// hold every section; [`Rendered::parts_for`] leaves some out.
    pub audiences: Audiences,
    /// Both parts with the audienced sections marked; None without any.
    marked: Option<Marked>,
}

/// The parts as rendered, before their audienced sections are chosen.
#[derive(Debug, Clone)]
struct Marked {
    html: String,
    text: String,
    blocks: Vec<text::TextBlock>,
}

/// Where an audienced section starts (`end` false) or ends in a part. Like
/// every marker it is a comment data can never produce (escaped in HTML,
/// neutralised in text).
pub fn section_marker(bit: u32, end: bool) -> String {
    format!("<!--slot:section-{}{bit}-->", if end { "end-" } else { "" })
}

/// `marked` with the audienced sections in `mask` and without the others,
/// markers removed.
fn select_sections(marked: &str, mask: u64) -> String {
    const OPEN: &str = "<!--slot:section-";
    let mut out = String::with_capacity(marked.len());
    let mut rest = marked;
    let mut skipping: Option<u32> = None;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(close) = after.find("-->") else {
            break;
        };
        let (end, number) = match after[..close].strip_prefix("end-") {
            Some(n) => (true, n),
            None => (false, &after[..close]),
        };
        let bit: u32 = number.parse().unwrap_or(u32::MAX);
        if skipping.is_none() {
            out.push_str(&rest[..start]);
        }
        match (end, skipping) {
            (false, None) if bit >= 64 || mask & (1 << bit) == 0 => skipping = Some(bit),
            (true, Some(b)) if b == bit => skipping = None,
            _ => {}
        }
        rest = &after[close + 3..];
    }
    if skipping.is_none() {
        out.push_str(rest);
    }
    out
}

/// What one subscriber's message has of its own, apart from the address and
/// unsubscribe link: the greeting and the merge fields' values.
#[derive(Debug, Clone)]
pub struct Personal<'a> {
    pub greeting: String,
    pub merge: Vec<Cow<'a, str>>,
}

impl Rendered {
    /// The HTML and text templates of a message with the audienced
    /// sections of `mask` (bit i: the i-th section with an audience).
    /// Build once per mask: this splits the rendered parts, it does not
    /// render again.
    pub fn parts_for(&self, mask: u64) -> (Template, Template) {
        let Some(marked) = &self.marked else {
            return (self.html.clone(), self.text.clone());
        };
        (
            Template::with_fields(
                &select_sections(&marked.html, mask),
                true,
                &self.fields,
                Vec::new(),
            ),
            Template::with_fields(
                &select_sections(&marked.text, mask),
                false,
                &self.fields,
                marked.blocks.clone(),
            ),
        )
    }

    /// The parts without any audienced section: what everyone may see.
    pub fn public_parts(&self) -> (Template, Template) {
        self.parts_for(0)
    }

    /// The greeting and merge values for a subscriber; `lookup` gives a
    /// column's value (None or empty: the fallback).
    pub fn personal<'a>(&'a self, lookup: impl Fn(&str) -> Option<&'a str>) -> Personal<'a> {
        Personal {
            greeting: self.greeting.fill(&lookup),
            merge: self.fields.values(&lookup),
        }
    }

    /// The subject for one message, on one line, with single spaces (lettre
    /// would lose a run of spaces between two encoded words).
    pub fn subject_for(&self, values: &SlotValues) -> String {
        let filled = self.subject_template.fill(values);
        if filled.contains("  ") || filled.trim().len() != filled.len() {
            return filled.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        filled
    }

    /// The preheader for one message.
    pub fn preheader_for(&self, values: &SlotValues) -> String {
        self.preheader_template.fill(values).trim().to_string()
    }
}

impl<'a> Personal<'a> {
    /// The slot values with this subscriber's address and unsubscribe URL.
    pub fn values(&'a self, unsubscribe_url: &'a str, email: &'a str) -> SlotValues<'a> {
        SlotValues {
            greeting: &self.greeting,
            unsubscribe_url,
            email,
            merge: &self.merge,
        }
    }
}

/// Renders an issue; fails with the finding `check` reports: a dangling
/// post or event id (naming the nearest existing ids), wrong merge syntax,
/// an image that cannot be shown.
pub fn render(
    config: &Config,
    theme: &Theme,
    issue: &Issue,
    archive: &Archive,
) -> Result<Rendered, Box<Finding>> {
    let mut fields = Fields::default();
    let model = resolve(config, theme, issue, archive, &mut fields)?;
    let greeting = parse_greeting(issue)?;
    let (text, blocks) = plain::render(&model);
    let html = html::render(&model);
    let audiences = issue.audiences.clone();
    let all = audiences.all_sections();
    let marked = (!audiences.sections.is_empty()).then(|| Marked {
        html: html.clone(),
        text: text.clone(),
        blocks: blocks.clone(),
    });
    let (html, text) = match marked {
        Some(_) => (select_sections(&html, all), select_sections(&text, all)),
        None => (html, text),
    };
    Ok(Rendered {
        issue_id: issue.id.clone(),
        subject: issue.content.subject.get_ref().trim().to_string(),
        preheader: issue
            .content
            .preheader
            .as_ref()
            .map(|p| p.get_ref().trim().to_string())
            .unwrap_or_default(),
        greeting,
        html: Template::with_fields(&html, true, &fields, Vec::new()),
        text: Template::with_fields(&text, false, &fields, blocks),
        subject_template: Template::with_fields(&model.subject, false, &fields, Vec::new()),
        preheader_template: Template::with_fields(&model.preheader, false, &fields, Vec::new()),
        web_url: model.web_url,
        fields,
        audiences,
        marked,
    })
}

/// The public web page of an issue: the HTML part as everyone may see it
/// (no audienced section, every merge field at its fallback), without the
/// email's "view in your browser" and "you are receiving this" lines and
/// personal unsubscribe link, with links to the rest of the site and the
/// `og:` tags link previews read.
pub fn web_page(
    config: &Config,
    theme: &Theme,
    issue: &Issue,
    archive: &Archive,
    page: WebPage,
) -> Result<String, Box<Finding>> {
    let mut fields = Fields::default();
    let mut model = resolve(config, theme, issue, archive, &mut fields)?;
    model.web = Some(page);
    let html = html::render(&model);
    let html = if issue.audiences.sections.is_empty() {
        html
    } else {
        select_sections(&html, 0)
    };
    let greeting = parse_greeting(issue)?.fill(|_| None);
    let merge = fields.values(|_| None);
    let values = SlotValues {
        greeting: &greeting,
        unsubscribe_url: "",
        email: "",
        merge: &merge,
    };
    Ok(Template::with_fields(&html, true, &fields, Vec::new()).fill(&values))
}

/// Protects the merge fields of an issue's text; a field that is not one
/// is an `invalid-merge-field` error on its line.
fn protect(
    source: &Source,
    fields: &mut Fields,
    key: &str,
    value: &Spanned<String>,
) -> Result<String, Box<Finding>> {
    fields
        .protect(value.get_ref())
        .map(|p| p.text)
        .map_err(|e| merge_error(source, key, value, &e).into())
}

/// An `invalid-merge-field` finding for a merge syntax error in a value.
pub fn merge_error(
    source: &Source,
    key: &str,
    value: &Spanned<String>,
    error: &crate::render::merge::MergeError,
) -> Finding {
    Finding::error(
        "invalid-merge-field",
        &source.path,
        format!("`{key}`: {error}"),
    )
    .at_line(value_line(source, value, error.offset))
}

/// The line in the file of a byte offset inside a string value.
pub fn value_line(source: &Source, value: &Spanned<String>, offset: usize) -> usize {
    let span = value.span();
    let raw = source.text.get(span.clone()).unwrap_or("");
    let mut start = span.start;
    if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
        start += 3;
        if raw[3..].starts_with('\n') || raw[3..].starts_with("\r\n") {
            start += if raw[3..].starts_with('\n') { 1 } else { 2 };
        }
    } else {
        start += 1;
    }
    let before = value.get_ref().get(..offset).unwrap_or("");
    source.line(start) + before.matches('\n').count()
}

/// The model both parts are written from: every reference checked, every
/// merge field protected (into `fields`), every Markdown parsed, every image
/// hosted.
fn resolve<'a>(
    config: &'a Config,
    theme: &'a Theme,
    issue: &'a Issue,
    archive: &'a Archive,
    fields: &mut Fields,
) -> Result<Model<'a>, Box<Finding>> {
    if let Some(first) = unknown_references(issue, archive).into_iter().next() {
        return Err(first.into());
    }
    let c = &issue.content;
    let source = &issue.source;
    let subject = protect(source, fields, "subject", &c.subject)?
        .trim()
        .to_string();
    let preheader = match &c.preheader {
        Some(p) => protect(source, fields, "preheader", p)?.trim().to_string(),
        None => String::new(),
    };
    let letter = protect(source, fields, "letter", &c.letter)?;
    let letter = Markdown::parse_protected(&letter, fields);
    let sections = resolve_sections(issue, archive, fields)?;
    let call_to_action = match &c.call_to_action {
        Some(cta) => Some(resolve_call_to_action(source, cta, fields)?),
        None => None,
    };
    let sign_off_text =
        protect_markdown(source, fields, "sign-off.text", c.sign_off.text.as_ref())?;
    let images = images::Images::resolve(
        config,
        theme.logo_image(),
        issue.signature_image(),
        sections.iter().flat_map(|s| s.posts.iter().copied()),
    )?;
    Ok(Model {
        images,
        config,
        theme,
        issue,
        sign_off_text,
        web: None,
        web_url: config.list.web_version_url.replace("{issue}", &issue.id),
        site_base: crate::render::ics::site_base(&config.list.web_version_url),
        subject,
        preheader,
        letter,
        sections,
        call_to_action,
    })
}

/// Each section with its audience's bit, its posts and events from the
/// archive (every id known: [`unknown_references`] ran first), its heading
/// and body protected.
fn resolve_sections<'a>(
    issue: &Issue,
    archive: &'a Archive,
    fields: &mut Fields,
) -> Result<Vec<ModelSection<'a>>, Box<Finding>> {
    let source = &issue.source;
    let audienced = &issue.audiences.sections;
    let mut sections = Vec::new();
    for (index, section) in issue.content.sections.iter().enumerate() {
        let audience = audienced
            .iter()
            .position(|a| a.index == index)
            .map(|bit| bit as u32);
        let posts = section
            .posts
            .iter()
            .filter_map(|id| archive.post(id.get_ref()))
            .collect();
        let events = section
            .events
            .iter()
            .filter_map(|id| archive.event(id.get_ref()))
            .collect();
        let heading = protect(source, fields, "section.heading", &section.heading)?;
        let body = protect_markdown(source, fields, "section.body", section.body.as_ref())?;
        sections.push(ModelSection {
            audience,
            heading: heading.trim().to_string(),
            past_events: section.past_events,
            body,
            events,
            posts,
        });
    }
    Ok(sections)
}

/// The call to action, its intro and text protected.
fn resolve_call_to_action(
    source: &Source,
    cta: &CallToAction,
    fields: &mut Fields,
) -> Result<ModelCta, Box<Finding>> {
    let intro = protect_markdown(source, fields, "call-to-action.intro", cta.intro.as_ref())?;
    let text = protect(source, fields, "call-to-action.text", &cta.text)?;
    Ok(ModelCta {
        intro,
        text: text.trim().to_string(),
        // Like a Markdown link, an unsafe URL loses its link (`check`
        // reports it as `unsafe-link`). A merge field in it stays as
        // written (`check` reports `merge-field-in-url`).
        url: Some(cta.url.get_ref().trim().to_string()).filter(|u| crate::model::url::safe_url(u)),
    })
}

/// An optional Markdown value, its merge fields protected, parsed.
fn protect_markdown(
    source: &Source,
    fields: &mut Fields,
    key: &str,
    value: Option<&Spanned<String>>,
) -> Result<Option<Markdown>, Box<Finding>> {
    match value {
        Some(v) => {
            let protected = protect(source, fields, key, v)?;
            Ok(Some(Markdown::parse_protected(&protected, fields)))
        }
        None => Ok(None),
    }
}

/// The greeting's merge fields; an error is an `invalid-merge-field`
/// finding where the greeting starts.
pub fn parse_greeting(issue: &Issue) -> Result<MergeText, Box<Finding>> {
    let greeting = &issue.content.greeting;
    MergeText::parse(greeting.get_ref()).map_err(|e| {
        issue
            .source
            .error_at(
                "invalid-merge-field",
                greeting.span().start,
                format!("`greeting`: {e}"),
            )
            .into()
    })
}

/// Every post or event id the issue names that the archive lacks, with the
/// nearest existing ids as suggestions.
pub fn unknown_references(issue: &Issue, archive: &Archive) -> Vec<Finding> {
    let mut findings = Vec::new();
    for section in &issue.content.sections {
        for id in &section.posts {
            if archive.post(id.get_ref()).is_none() {
                findings.push(issue.source.error_at(
                    "unknown-post",
                    id.span().start,
                    format!(
                        "no post with id `{}` in the archive{}",
                        id.get_ref(),
                        suggestion(&archive.nearest_posts(id.get_ref()))
                    ),
                ));
            }
        }
        for id in &section.events {
            if archive.event(id.get_ref()).is_none() {
                findings.push(issue.source.error_at(
                    "unknown-event",
                    id.span().start,
                    format!(
                        "no event with id `{}` in the archive{}",
                        id.get_ref(),
                        suggestion(&archive.nearest_events(id.get_ref()))
                    ),
                ));
            }
        }
    }
    findings
}

fn suggestion(nearest: &[&str]) -> String {
    match nearest {
        [] => "; check the id against the archive file".into(),
        ids => format!(
            "; did you mean {}?",
            ids.iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    }
}

impl Model<'_> {
    /// The event's "Add to calendar" file on the static site.
    pub fn calendar_url(&self, event: &Event) -> String {
        format!(
            "{}{}",
            self.site_base,
            crate::render::ics::calendar_path(&event.id)
        )
    }
}

/// "Monday 20 June 2022, 6pm BST" in the event's own time zone.
pub fn event_when(event: &Event) -> String {
    let start = &event.start;
    let day = start.strftime("%A %-d %B %Y").to_string();
    let time = clock(start);
    let zone = start.strftime("%Z").to_string();
    match &event.end {
        Some(end) if end.date() == start.date() => {
            format!("{day}, {time}–{} {zone}", clock(end))
        }
        _ => format!("{day}, {time} {zone}"),
    }
}

/// British style: "6pm", "5.45pm", "12 noon".
fn clock(t: &jiff::ZonedDateTime) -> String {
    let (hour, minute) = (t.hour(), t.minute());
    if hour == 12 && minute == 0 {
        return "12 noon".into();
    }
    let suffix = if hour < 12 { "am" } else { "pm" };
    let h12 = match hour % 12 {
        0 => 12,
        h => h,
    };
    if minute == 0 {
        format!("{h12}{suffix}")
    } else {
        format!("{h12}.{minute:02}{suffix}")
    }
}

/// "13 July 2022".
pub fn long_date(date: jiff::civil::Date) -> String {
    date.strftime("%-d %B %Y").to_string()
}

/// The byline of a post: "By Name, Role".
pub fn byline(post: &Post) -> Option<String> {
    match (&post.author, &post.role) {
        (Some(author), Some(role)) => Some(format!("By {author}, {role}")),
        (Some(author), None) => Some(format!("By {author}")),
        _ => None,
    }
}

/// An issue with everything it needs, rendered.
pub struct Loaded {
    pub issue: Issue,
    pub archive: Archive,
    pub theme: Theme,
    pub rendered: Rendered,
}

/// Loads the archive, the theme and an issue, and renders it; a render
/// that fails is [`LoadError::Invalid`] with its finding.
pub fn load_issue(config: &Config, path: &std::path::Path) -> Result<Loaded, LoadError> {
    let archive = Archive::load(
        &config.paths.posts,
        &config.paths.events,
        &config.list.post_url,
    )?;
    let theme = Theme::load(&config.paths.theme)?;
    let issue = Issue::load(path)?;
    let rendered = render(config, &theme, &issue, &archive).map_err(LoadError::Invalid)?;
    Ok(Loaded {
        issue,
        archive,
        theme,
        rendered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_kept_or_cut_by_their_bit_and_their_markers_go() {
        let marked = format!(
            "a{}b{}{}c{}d",
            section_marker(0, false),
            section_marker(0, true),
            section_marker(1, false),
            section_marker(1, true)
        );
        assert_eq!(select_sections(&marked, 0b00), "ad");
        assert_eq!(select_sections(&marked, 0b01), "abd");
        assert_eq!(select_sections(&marked, 0b10), "acd");
        assert_eq!(select_sections(&marked, 0b11), "abcd");
        // Other markers are left for the template.
        let hole = Template::marker(Slot::Email);
        assert_eq!(select_sections(&hole, 0), hole);
    }
}
