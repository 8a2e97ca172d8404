//! Turns an issue and the archive into the two parts of every message.
//!
//! One resolved model feeds both the HTML and the text part, and each piece of
//! Markdown is parsed once for both. The result has holes for the few
//! per-subscriber values, so sending fills templates instead of rendering.

mod html;
pub mod markdown;
mod plain;
pub mod template;
pub mod text;

use anyhow::Result;

use crate::archive::{Archive, Event, Post};
use crate::config::Config;
use crate::finding::Finding;
use crate::issue::Issue;
use crate::merge::MergeText;
use crate::theme::Theme;
use markdown::Markdown;
pub use template::{Slot, SlotValues, Template};

/// Everything about an issue that both parts show, resolved and parsed.
pub struct Model<'a> {
    pub config: &'a Config,
    pub theme: &'a Theme,
    pub issue: &'a Issue,
    pub web_url: String,
    /// The root of the static site (`newsletter web build`), ending in `/`.
    pub site_base: String,
    pub letter: Markdown,
    pub sections: Vec<ModelSection<'a>>,
    pub call_to_action: Option<ModelCta>,
}

pub struct ModelSection<'a> {
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
    pub subject: String,
    pub preheader: String,
    pub greeting: MergeText,
    pub web_url: String,
    pub html: Template,
    pub text: Template,
}

/// Renders an issue; fails on a dangling post or event id, naming the
/// file and line and the nearest existing ids.
pub fn render(
    config: &Config,
    theme: &Theme,
    issue: &Issue,
    archive: &Archive,
) -> Result<Rendered> {
    let model = resolve(config, theme, issue, archive)?;
    let greeting = MergeText::parse(issue.content.greeting.get_ref()).map_err(|e| {
        anyhow::anyhow!(
            "{}: `greeting`: {e:#}",
            issue.at(issue.content.greeting.span())
        )
    })?;
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
        html: Template::from_marked(&html::render(&model), true),
        text: Template::from_marked(&plain::render(&model), false),
        web_url: model.web_url,
    })
}

fn resolve<'a>(
    config: &'a Config,
    theme: &'a Theme,
    issue: &'a Issue,
    archive: &'a Archive,
) -> Result<Model<'a>> {
    if let Some(first) = unknown_references(issue, archive).into_iter().next() {
        return Err(first.into());
    }
    let c = &issue.content;
    let mut sections = Vec::new();
    for section in &c.sections {
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
        sections.push(ModelSection {
            heading: section.heading.get_ref().trim().to_string(),
            past_events: section.past_events,
            body: section.body.as_ref().map(|b| Markdown::parse(b.get_ref())),
            events,
            posts,
        });
    }
    let call_to_action = c.call_to_action.as_ref().map(|cta| ModelCta {
        intro: cta.intro.as_ref().map(|i| Markdown::parse(i.get_ref())),
        text: cta.text.get_ref().trim().to_string(),
        // Like a Markdown link, an unsafe URL loses its link (`check`
        // reports it as `unsafe-link`).
        url: Some(cta.url.get_ref().trim().to_string()).filter(|u| markdown::safe_url(u)),
    });
    Ok(Model {
        config,
        theme,
        issue,
        web_url: config.list.web_version_url.replace("{issue}", &issue.id),
        site_base: crate::ics::site_base(&config.list.web_version_url),
        letter: Markdown::parse(c.letter.get_ref()),
        sections,
        call_to_action,
    })
}

/// The greeting's merge fields; an error is a finding on its line.
pub fn parse_greeting(issue: &Issue) -> Result<MergeText> {
    let greeting = &issue.content.greeting;
    MergeText::parse(greeting.get_ref()).map_err(|e| {
        issue
            .source
            .error_at(
                "invalid-merge-field",
                greeting.span().start,
                format!("`greeting`: {e:#}"),
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
        format!("{}{}", self.site_base, crate::ics::calendar_path(&event.id))
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
