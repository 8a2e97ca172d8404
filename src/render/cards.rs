//! Post and event cards of the HTML part.
//!
//! A card is a bordered table (Outlook draws borders and padding on cells
//! only). A post card with a thumbnail is "hybrid": two inline-block
//! columns side by side where they fit and one above the other where they
//! do not, with no media query; an MSO-only table holds them side by side
//! in Outlook for Windows, which knows no inline-block. An event card has a
//! date badge in a narrow cell beside the details, which fits a 320 px
//! phone as it is.
//!
//! Links whose visible words are generic ("Read more", "Add to calendar")
//! carry the title in a visually hidden span, so the link's accessible
//! name says where it goes ("Read more about …", "Add … to calendar"): a 1 × 1 px clipped inline-block (no
//! `position`, which Gmail drops), hidden from Outlook for Windows, which
//! ignores the size, with `mso-hide:all`.

use maud::{Markup, PreEscaped, html};

use super::images::{Shown, THUMBNAIL_WIDTH};
use super::{Model, byline, event_when};
use crate::model::archive::{Event, Post};
use crate::model::theme::Theme;

/// The width of the thumbnail's column: the image and a gap after it.
const THUMBNAIL_COLUMN: u32 = THUMBNAIL_WIDTH + 16;
/// The widest the text beside a thumbnail gets; with the thumbnail's column
/// it fits the card at a 600 px window (526 px less the card's padding).
const TEXT_COLUMN: u32 = 344;

/// The style of a card's table: a thin border of the theme's rule colour.
fn card_style(theme: &Theme) -> String {
    format!(
        "border:1px solid {};border-radius:8px;border-collapse:separate",
        theme.rule_colour
    )
}

fn heading_style(theme: &Theme) -> String {
    format!(
        "margin:0 0 4px 0;font-size:18px;line-height:1.35;color:{}",
        theme.text_colour
    )
}

/// Words that screen readers read and eyes do not see (see the module doc).
fn hidden(text: &str) -> Markup {
    html! {
        span style="display:inline-block;width:1px;height:1px;overflow:hidden;white-space:nowrap;vertical-align:bottom;mso-hide:all" { (text) }
    }
}

pub fn post_card(model: &Model, post: &Post, link: &str, muted: &str) -> Markup {
    let theme = model.theme;
    let text = html! {
        h3 class="heading" style=(heading_style(theme)) {
            a class="link" href=(post.url) style=(link) { (post.title) }
        }
        @if let Some(by) = byline(post) { p class="muted" style=(format!("margin:0 0 4px 0;font-size:14px;{muted}")) { (by) } }
        @if let Some(summary) = &post.summary { p style="margin:0 0 8px 0" { (summary) "…" } }
        p style="margin:0" {
            a class="link" href=(post.url) style=(link) { "Read more" (hidden(&format!(" about {}", post.title))) }
        }
    };
    html! {
        div style="margin:0 0 16px 0" {
            table role="presentation" border="0" cellpadding="0" cellspacing="0" width="100%" class="item" style=(card_style(theme)) {
                tr { td style="padding:16px;word-break:break-word" {
                    @match model.images.thumbnails.get(&post.id) {
                        Some(image) => {
                            (PreEscaped(format!("<!--[if mso]><table role=\"presentation\" border=\"0\" cellpadding=\"0\" cellspacing=\"0\" width=\"100%\"><tr><td width=\"{THUMBNAIL_COLUMN}\" valign=\"top\"><![endif]-->")))
                            div style=(format!("display:inline-block;width:100%;max-width:{THUMBNAIL_COLUMN}px;vertical-align:top")) {
                                (thumbnail(image))
                            }
                            (PreEscaped("<!--[if mso]></td><td valign=\"top\"><![endif]-->"))
                            div style=(format!("display:inline-block;width:100%;max-width:{TEXT_COLUMN}px;vertical-align:top")) { (text) }
                            (PreEscaped("<!--[if mso]></td></tr></table><![endif]-->"))
                        }
                        None => { (text) }
                    }
                } }
            }
        }
    }
}

fn thumbnail(image: &Shown) -> Markup {
    html! {
        img src=(image.url) alt=(image.alt) width=(THUMBNAIL_WIDTH) height=[image.height]
            style=(format!("display:block;width:100%;max-width:{THUMBNAIL_WIDTH}px;height:auto;border:0;border-radius:4px;margin:0 0 12px 0"));
    }
}

pub fn event_card(
    model: &Model,
    event: &Event,
    past: bool,
    link: &str,
    muted: &str,
    font: &str,
) -> Markup {
    let theme = model.theme;
    let badge = format!(
        "width:56px;padding:8px 0;border-radius:6px;background-color:{};color:{};text-align:center;{font}",
        theme.button_colour, theme.button_text_colour
    );
    html! {
        div style="margin:0 0 16px 0" {
            table role="presentation" border="0" cellpadding="0" cellspacing="0" width="100%" class="item" style=(card_style(theme)) {
                tr {
                    // The day and month again, big: the details say them in words.
                    td width="56" valign="top" style="padding:16px 0 16px 16px" aria-hidden="true" {
                        table role="presentation" border="0" cellpadding="0" cellspacing="0" width="56" {
                            tr { td class="badge" bgcolor=(theme.button_colour) style=(badge) {
                                div style="font-size:24px;line-height:1.1;font-weight:bold" { (event.start.strftime("%-d").to_string()) }
                                div style="font-size:13px;line-height:1.3;font-weight:bold;letter-spacing:1px;text-transform:uppercase" { (event.start.strftime("%b").to_string()) }
                            } }
                        }
                    }
                    td valign="top" style="padding:16px 16px 16px 14px;word-break:break-word" {
                        h3 class="heading" style=(heading_style(theme)) { (event.title) }
                        p style="margin:0;font-weight:bold" { (event_when(event)) }
                        @if let Some(line) = place_line(event) {
                            p class="muted" style=(format!("margin:0;{muted}")) { (line) }
                        }
                        @if let Some(summary) = &event.summary { p style="margin:8px 0 0 0" { (summary) } }
                        @if let (Some(url), false) = (&event.booking_url, past) {
                            (booking_button(theme, url, &event.title, font))
                        }
                        @if !past {
                            p style="margin:12px 0 0 0" {
                                a class="link" href=(model.calendar_url(event)) style=(link) { "Add" (hidden(&format!(" {}", event.title))) " to calendar" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Where the event is and with whom: `place · with partner`, `place`,
/// `With partner`, or nothing when the archive says neither (a place is
/// never guessed).
pub fn place_line(event: &Event) -> Option<String> {
    match (&event.place, &event.partner) {
        (Some(place), Some(partner)) => Some(format!("{place} · with {partner}")),
        (Some(place), None) => Some(place.clone()),
        (None, Some(partner)) => Some(format!("With {partner}")),
        (None, None) => None,
    }
}

/// A button whose padding is on its cell, so it holds its size in Outlook
/// for Windows, which ignores padding on links.
fn booking_button(theme: &Theme, url: &str, title: &str, font: &str) -> Markup {
    html! {
        table role="presentation" border="0" cellpadding="0" cellspacing="0" style="margin:12px 0 0 0" {
            tr { td class="book" bgcolor=(theme.button_colour) style=(format!("padding:12px 20px;border-radius:6px;background-color:{}", theme.button_colour)) {
                a class="book-link" href=(url) style=(format!("display:inline-block;font-size:16px;line-height:20px;font-weight:bold;color:{};text-decoration:none;{font}", theme.button_text_colour)) {
                    "Book a place" (hidden(&format!(" for {title}")))
                }
            } }
        }
    }
}

/// The dark-mode colour of a card's border: halfway between the dark
/// muted text and the dark card, subtle but at least 3:1 against the card
/// with the example theme.
pub fn dark_border(theme: &Theme) -> String {
    let channel =
        |hex: &str, i: usize| u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap_or(0);
    let (a, b) = (&theme.dark_muted_colour, &theme.dark_background_colour);
    let mixed: String = (0..3)
        .map(|i| {
            format!(
                "{:02x}",
                (u16::from(channel(a, i)) + u16::from(channel(b, i))) / 2
            )
        })
        .collect();
    format!("#{mixed}")
}
