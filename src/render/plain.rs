//! The text part: the same content as the HTML part, in the same order,
//! with every link written out in full.

use super::template::{Slot, Template};
use super::text::{TextBlock, TextWriter};
use super::{Model, ModelCta, ModelSection, byline, event_when, long_date};
use crate::model::archive::{Event, Post};

/// The text part with holes, and its blocks that hold merge fields.
pub fn render(model: &Model) -> (String, Vec<TextBlock>) {
    let mut w = TextWriter::default();
    masthead(&mut w, model);
    w.raw_line(&Template::marker(Slot::Greeting));
    model.letter.to_text(&mut w);
    for section in &model.sections {
        write_section(&mut w, model, section);
    }
    if let Some(cta) = &model.call_to_action {
        call_to_action(&mut w, cta);
    }
    sign_off(&mut w, model);
    footer(&mut w, model);
    w.finish_with_blocks()
}

/// The browser link, the list's name, the subject and the date.
fn masthead(w: &mut TextWriter, model: &Model) {
    browser_link(w, model);
    w.blank_line();
    w.wrapped(&clean(&model.config.list.name).to_uppercase(), "", "");
    w.heading(&clean(&model.subject), 1);
    w.raw_line(&long_date(model.issue.date));
    w.blank_line();
}

fn browser_link(w: &mut TextWriter, model: &Model) {
    w.wrapped(
        &format!("View this email in your browser: <{}>", model.web_url),
        "",
        "",
    );
}

/// A section's heading, body, events and posts.
fn write_section(w: &mut TextWriter, model: &Model, section: &ModelSection) {
    // An audienced section is marked from its heading to the blank
    // line after it, so leaving it out leaves the spacing as it was.
    if let Some(bit) = section.audience {
        w.blank_line();
        w.mark(&super::section_marker(bit, false));
    }
    w.heading(&clean(&section.heading), 2);
    if let Some(body) = &section.body {
        body.to_text(w);
    }
    for event in &section.events {
        write_event(w, model, event, section.past_events);
    }
    for post in &section.posts {
        write_post(w, post);
    }
    if let Some(bit) = section.audience {
        w.blank_line();
        w.mark(&super::section_marker(bit, true));
    }
}

/// An event as a list item: when, where, what, and (unless it is past)
/// how to book and its calendar file.
fn write_event(w: &mut TextWriter, model: &Model, event: &Event, past: bool) {
    w.blank_line();
    w.wrapped(&clean(&event.title), "* ", "  ");
    w.wrapped(&event_when(event), "  ", "  ");
    if let Some(line) = super::cards::place_line(event) {
        w.wrapped(&clean(&line), "  ", "  ");
    }
    if let Some(summary) = &event.summary {
        w.wrapped(&clean(summary), "  ", "  ");
    }
    if let (Some(url), false) = (&event.booking_url, past) {
        w.wrapped(&format!("Book a place: <{url}>"), "  ", "  ");
    }
    if !past {
        w.wrapped("Add to calendar:", "  ", "  ");
        w.wrapped(&format!("<{}>", model.calendar_url(event)), "  ", "  ");
    }
}

/// A post as a list item: title, byline, summary and its link.
fn write_post(w: &mut TextWriter, post: &Post) {
    w.blank_line();
    w.wrapped(&clean(&post.title), "* ", "  ");
    if let Some(by) = byline(post) {
        w.wrapped(&clean(&by), "  ", "  ");
    }
    if let Some(summary) = &post.summary {
        w.wrapped(&format!("{}…", clean(summary)), "  ", "  ");
    }
    w.wrapped(&format!("Read more: <{}>", post.url), "  ", "  ");
}

/// The intro, then the text with its link written out.
fn call_to_action(w: &mut TextWriter, cta: &ModelCta) {
    if let Some(intro) = &cta.intro {
        intro.to_text(w);
    }
    w.blank_line();
    match &cta.url {
        Some(url) => w.wrapped(&format!("{}: <{}>", clean(&cta.text), url), "", ""),
        None => w.wrapped(&clean(&cta.text), "", ""),
    }
}

/// The letter's last words, the closing, the name and the role.
fn sign_off(w: &mut TextWriter, model: &Model) {
    let sign_off = &model.issue.content.sign_off;
    if let Some(text) = &model.sign_off_text {
        text.to_text(w);
    }
    w.blank_line();
    w.wrapped(&clean(&sign_off.closing), "", "");
    w.blank_line();
    w.wrapped(&clean(&sign_off.name), "", "");
    if let Some(role) = &sign_off.role {
        w.wrapped(&clean(role), "", "");
    }
}

/// Why the reader gets it, how to leave, the browser link again, and the
/// charity's address and number.
fn footer(w: &mut TextWriter, model: &Model) {
    let list = &model.config.list;
    w.blank_line();
    w.raw_line("-- ");
    w.raw_line("You are receiving this email because");
    w.raw_line(&Template::marker(Slot::Email));
    w.wrapped(
        &format!("subscribed to news from {}.", clean(&list.name)),
        "",
        "",
    );
    w.blank_line();
    w.raw_line("Unsubscribe:");
    w.raw_line(&format!("<{}>", Template::marker(Slot::UnsubscribeUrl)));
    w.blank_line();
    browser_link(w, model);
    w.blank_line();
    w.wrapped(&clean(&list.postal_address), "", "");
    w.wrapped(
        &format!(
            "{} is a registered charity, number {}.",
            clean(&list.charity_name),
            clean(&list.charity_number)
        ),
        "",
        "",
    );
}

/// Data text with line breaks folded and template markers neutralised.
fn clean(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    super::markdown::neutral(&folded.into())
}
