//! The site's own pages: the list of issues and the unsubscribe help.

use maud::{Markup, html};

use super::Entry;
use super::feed::FEED_PATH;
use crate::model::config::Config;
use crate::model::theme::Theme;
use crate::render::long_date;
use crate::render::page::{Shell, page as shell};

/// `index.html`: every issue, newest first, with its date and preheader.
pub fn index(config: &Config, theme: &Theme, entries: &[Entry]) -> String {
    let title = format!("{}: newsletters", config.list.name);
    page(
        config,
        theme,
        &title,
        html! {
            h1 { (config.list.name) " newsletters" }
            @if entries.is_empty() {
                p { "No issues yet." }
            }
            ol class="issues" {
                @for entry in entries {
                    li {
                        a href=(format!("issues/{}/", entry.id)) { (entry.subject) }
                        p class="date" { time datetime=(entry.date.to_string()) { (long_date(entry.date)) } }
                        @if !entry.preheader.is_empty() { p { (entry.preheader) } }
                    }
                }
            }
            p class="date" { a href=(FEED_PATH) { "New issues as a feed (Atom)" } }
        },
    )
}

/// `unsubscribe.html`: the public pages cannot know who is reading, so
/// this explains where the personal link is.
pub fn unsubscribe(config: &Config, theme: &Theme) -> String {
    let list = &config.list;
    page(
        config,
        theme,
        &format!("Unsubscribe from {}", list.name),
        html! {
            h1 { "Unsubscribe" }
            p {
                "Every newsletter email from " (list.name) " ends with an Unsubscribe link made for your address. "
                "Use that link in the email itself: this web page cannot tell who you are."
            }
            p {
                "Or send an email to "
                a href=(format!("mailto:{}?subject=unsubscribe", list.unsubscribe_mailto)) { (list.unsubscribe_mailto) }
                " from the address you want removed."
            }
            p { a href="index.html" { "All newsletters" } }
        },
    )
}

fn page(config: &Config, theme: &Theme, title: &str, body: Markup) -> String {
    let list = &config.list;
    shell(
        Shell {
            language: &list.language,
            title,
            style: &style(theme),
            head: html! {
                meta name="color-scheme" content="light dark";
                link rel="alternate" type="application/atom+xml" title=(format!("{}: newsletters", list.name)) href=(FEED_PATH);
            },
        },
        html! {
            main { (body) }
            footer {
                p { (list.postal_address) }
                p { (list.charity_name) " is a registered charity, number " (list.charity_number) "." }
            }
        },
    )
}

fn style(t: &Theme) -> String {
    format!(
        "body{{margin:0;padding:16px;background:{page};color:{text};font-family:{font};line-height:1.55}}\
main,footer{{max-width:600px;margin:0 auto;overflow-wrap:anywhere}}\
main{{background:{bg};padding:24px 20px}}\
h1{{font-family:{heading};color:{accent};font-size:28px;line-height:1.25;margin:0 0 16px}}\
a{{color:{accent}}}\
.issues{{list-style:none;padding:0;margin:0}}\
.issues li{{padding:16px 0;border-top:1px solid {rule}}}\
.issues a{{font-size:20px;font-weight:bold;display:inline-block;min-height:44px}}\
.issues p{{margin:0}}\
.date,footer{{color:{muted};font-size:14px}}\
@media (prefers-color-scheme:dark){{\
body{{background:{dpage};color:{dtext}}}main{{background:{dbg}}}\
h1,a{{color:{daccent}}}.date,footer{{color:{dmuted}}}}}",
        page = t.page_colour,
        text = t.text_colour,
        font = t.font_stack,
        bg = t.background_colour,
        heading = t.heading_font_stack,
        accent = t.accent_colour,
        rule = t.rule_colour,
        muted = t.muted_colour,
        dpage = t.dark_page_colour,
        dtext = t.dark_text_colour,
        dbg = t.dark_background_colour,
        daccent = t.dark_accent_colour,
        dmuted = t.dark_muted_colour,
    )
}
