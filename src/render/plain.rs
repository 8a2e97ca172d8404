//! The text part: the same content as the HTML part, in the same order,
//! with every link written out in full.

use super::template::{Slot, Template};
use super::text::{TextBlock, TextWriter};
use super::{Model, byline, event_when, long_date};

/// The text part with holes, and its blocks that hold merge fields.
pub fn render(model: &Model) -> (String, Vec<TextBlock>) {
    let list = &model.config.list;
    let c = &model.issue.content;
    let mut w = TextWriter::default();

    w.wrapped(
        &format!("View this email in your browser: <{}>", model.web_url),
        "",
        "",
    );
    w.blank_line();
    w.wrapped(&clean(&list.name).to_uppercase(), "", "");
    w.heading(&clean(&model.subject), 1);
    w.raw_line(&long_date(model.issue.date));
    w.blank_line();
    w.raw_line(&Template::marker(Slot::Greeting));
    model.letter.to_text(&mut w);

    for section in &model.sections {
        // An audienced section is marked from its heading to the blank
        // line after it, so leaving it out leaves the spacing as it was.
        if let Some(bit) = section.audience {
            w.blank_line();
            w.mark(&super::section_marker(bit, false));
        }
        w.heading(&clean(&section.heading), 2);
        if let Some(body) = &section.body {
            body.to_text(&mut w);
        }
        for event in &section.events {
            w.blank_line();
            w.wrapped(&clean(&event.title), "* ", "  ");
            w.wrapped(&event_when(event), "  ", "  ");
            if let Some(line) = super::cards::place_line(event) {
                w.wrapped(&clean(&line), "  ", "  ");
            }
            if let Some(summary) = &event.summary {
                w.wrapped(&clean(summary), "  ", "  ");
            }
            if let (Some(url), false) = (&event.booking_url, section.past_events) {
                w.wrapped(&format!("Book a place: <{url}>"), "  ", "  ");
            }
            if !section.past_events {
                w.wrapped("Add to calendar:", "  ", "  ");
                w.wrapped(&format!("<{}>", model.calendar_url(event)), "  ", "  ");
            }
        }
        for post in &section.posts {
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
        if let Some(bit) = section.audience {
            w.blank_line();
            w.mark(&super::section_marker(bit, true));
        }
    }

    if let Some(cta) = &model.call_to_action {
        if let Some(intro) = &cta.intro {
            intro.to_text(&mut w);
        }
        w.blank_line();
        match &cta.url {
            Some(url) => w.wrapped(&format!("{}: <{}>", clean(&cta.text), url), "", ""),
            None => w.wrapped(&clean(&cta.text), "", ""),
        }
    }

    if let Some(text) = &model.sign_off_text {
        text.to_text(&mut w);
    }
    w.blank_line();
    w.wrapped(&clean(&c.sign_off.closing), "", "");
    w.blank_line();
    w.wrapped(&clean(&c.sign_off.name), "", "");
    if let Some(role) = &c.sign_off.role {
        w.wrapped(&clean(role), "", "");
    }

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
    w.wrapped(
        &format!("View this email in your browser: <{}>", model.web_url),
        "",
        "",
    );
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
    w.finish_with_blocks()
}

/// Data text with line breaks folded and template markers neutralised.
fn clean(text: &str) -> String {
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    super::markdown::neutral(&folded.into())
}
