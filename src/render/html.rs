//! The HTML part: a hybrid (fluid) layout that holds up in Gmail, Apple Mail
//! and Outlook for Windows.
//!
//! A 600 px max-width container, wrapped for Outlook in an MSO-only table;
//! layout tables carry `role="presentation"`; styles are inline, and the
//! one `<style>` in `<head>` only adds media queries and dark mode.
//!
//! The public web page ([`super::web_page`]) is the same markup with the
//! email's own lines swapped for links to the site ([`web_head`],
//! [`web_top`], [`web_footer`]).

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::markdown::{HtmlStyle, Markdown};
use super::template::{Slot, Template};
use super::{Model, ModelCta, ModelSection, WebPage, cards, long_date};
use crate::model::theme::Theme;

pub fn render(model: &Model) -> String {
    let theme = model.theme;
    let list = &model.config.list;
    // Merge fields in these are placeholders, which escaping leaves alone
    // and the template turns into holes.
    let preheader = model.preheader.as_str();
    let subject = model.subject.as_str();
    let font = format!("font-family:{};", theme.font_stack);
    let heading_font = format!("font-family:{};", theme.heading_font_stack);
    let link = format!("color:{};text-decoration:underline;", theme.accent_colour);
    let muted = format!("color:{};", theme.muted_colour);

    let page = html! {
        (DOCTYPE)
        html lang=(list.language) xmlns="http://www.w3.org/1999/xhtml" xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="x-apple-disable-message-reformatting" content="";
                // Apple Mail and iOS would turn event dates and places into links.
                meta name="format-detection" content="telephone=no,date=no,address=no,email=no,url=no";
                meta name="color-scheme" content="light dark";
                meta name="supported-color-schemes" content="light dark";
                title { (subject) }
                @if let Some(web) = &model.web { (web_head(web, &model.web_url)) }
                // Outlook for Windows at 120 dpi would scale every width.
                (PreEscaped("<!--[if mso]><xml><o:OfficeDocumentSettings><o:PixelsPerInch>96</o:PixelsPerInch></o:OfficeDocumentSettings></xml><![endif]-->"))
                style { (PreEscaped(head_style(theme))) (PreEscaped(cards_style(theme))) }
            }
            body class="page" style=(format!("margin:0;padding:0;width:100%;background-color:{};{font}", theme.page_colour)) {
                // Hidden preheader: the line inboxes show after the subject.
                @if model.web.is_none() { div style="display:none;max-height:0;max-width:0;opacity:0;overflow:hidden;mso-hide:all" {
                    (preheader)
                    // Padding stops mail apps pulling body text into the preview.
                    (PreEscaped("&#8199;&#847; ".repeat(40)))
                } }
                table role="presentation" border="0" cellpadding="0" cellspacing="0" width="100%" class="page" style=(format!("background-color:{}", theme.page_colour)) {
                    tr { td align="center" style="padding:16px 8px" {
                        (PreEscaped("<!--[if mso]><table role=\"presentation\" border=\"0\" cellpadding=\"0\" cellspacing=\"0\" width=\"600\" align=\"center\"><tr><td><![endif]-->"))
                        div class="container" style="max-width:600px;margin:0 auto" {
                            // Web version link above the card (on the web page: the index).
                            table role="presentation" border="0" cellpadding="0" cellspacing="0" width="100%" {
                                tr { td class="muted" align="center" style=(format!("padding:0 8px 12px 8px;font-size:14px;line-height:1.4;{muted}{font}")) {
                                    @match &model.web {
                                        None => { a class="muted" href=(model.web_url) style=(format!("{muted}text-decoration:underline")) { "View this email in your browser" } }
                                        Some(web) => { (web_top(web, &list.name, &muted)) }
                                    }
                                } }
                            }
                            table role="presentation" border="0" cellpadding="0" cellspacing="0" width="100%" class="card" style=(format!("background-color:{}", theme.background_colour)) {
                                tr { td class="card-cell text" style=(format!("padding:32px 28px;font-size:16px;line-height:1.55;color:{};{font}", theme.text_colour)) {
                                    (card_body(model, &font, &heading_font, &link, &muted))
                                } }
                            }
                            @match &model.web {
                                None => { (footer(model, &font, &muted)) }
                                Some(web) => { (web_footer(model, web, &font, &muted)) }
                            }
                        }
                        (PreEscaped("<!--[if mso]></td></tr></table><![endif]-->"))
                    } }
                }
            }
        }
    };
    page.into_string()
}

/// The card's contents: the masthead, the subject and date, the greeting,
/// the letter, the sections, the call to action and the sign-off.
fn card_body(model: &Model, font: &str, heading_font: &str, link: &str, muted: &str) -> Markup {
    let theme = model.theme;
    // Merge fields in the subject are placeholders, which escaping leaves
    // alone and the template turns into holes.
    html! {
        (masthead(model, theme))
        h1 class="heading" style=(format!("margin:0 0 4px 0;font-size:28px;line-height:1.25;font-weight:bold;color:{};{heading_font}", theme.accent_colour)) { (no_widow(&model.subject)) }
        p class="muted" style=(format!("margin:0 0 24px 0;font-size:14px;{muted}")) { (long_date(model.issue.date)) }
        p style="margin:0 0 16px 0" { (PreEscaped(Template::marker(Slot::Greeting))) }
        (markdown(&model.letter, theme))
        @for section in &model.sections { (section_block(model, section, font, heading_font, link, muted)) }
        @if let Some(cta) = &model.call_to_action { (cta_block(cta, theme, font)) }
        (sign_off(model))
    }
}

/// A section: its heading, body, event and post cards, between its
/// audience's markers when it has one.
fn section_block(
    model: &Model,
    section: &ModelSection,
    font: &str,
    heading_font: &str,
    link: &str,
    muted: &str,
) -> Markup {
    let theme = model.theme;
    html! {
        @if let Some(bit) = section.audience { (PreEscaped(super::section_marker(bit, false))) }
        h2 class="heading rule" style=(format!("margin:32px 0 12px 0;padding-top:20px;border-top:1px solid {};font-size:22px;line-height:1.3;color:{};{heading_font}", theme.rule_colour, theme.accent_colour)) { (section.heading) }
        @if let Some(body) = &section.body { (markdown(body, theme)) }
        @for event in &section.events { (cards::event_card(model, event, section.past_events, link, muted, font)) }
        @for post in &section.posts { (cards::post_card(model, post, link, muted)) }
        @if let Some(bit) = section.audience { (PreEscaped(super::section_marker(bit, true))) }
    }
}

/// The letter's last words, the closing, the signature, the name and role.
fn sign_off(model: &Model) -> Markup {
    let sign_off = &model.issue.content.sign_off;
    html! {
        @if let Some(text) = &model.sign_off_text { div style="margin:24px 0 0 0" { (markdown(text, model.theme)) } }
        p style="margin:24px 0 4px 0" { (sign_off.closing) }
        @if let Some(signature) = &model.images.signature {
            img src=(signature.url) alt=(signature.alt) width=[signature.width] height=[signature.height] style=(format!("display:block;max-width:100%;height:auto;border:0;margin:8px 0 4px 0{}", signature.width.map(|w| format!(";width:{w}px")).unwrap_or_default()));
        }
        p style="margin:0;font-weight:bold" { (sign_off.name) }
        @if let Some(role) = &sign_off.role { p style="margin:0" { (role) } }
    }
}

/// The heading's last two words joined by a no-break space, so that no
/// width leaves one word alone on its last line; only when they are short
/// enough together (16 characters) to fit the narrowest phone's line.
fn no_widow(heading: &str) -> String {
    match heading.rsplit_once(' ') {
        Some((rest, last)) => {
            let before = rest.rsplit(' ').next().unwrap_or(rest);
            if !before.is_empty() && before.chars().count() + 1 + last.chars().count() <= 16 {
                format!("{rest}\u{a0}{last}")
            } else {
                heading.to_string()
            }
        }
        None => heading.to_string(),
    }
}

fn masthead(model: &Model, theme: &Theme) -> Markup {
    html! {
        @match &model.images.logo {
            Some(logo) => {
                img src=(logo.url) alt=(logo.alt) width=[logo.width] height=[logo.height] style=(format!("display:block;width:100%;max-width:{}px;height:auto;border:0;margin:0 0 24px 0", logo.width.unwrap_or(200)));
            }
            None => {
                p class="muted" style=(format!("margin:0 0 20px 0;font-size:14px;letter-spacing:1px;text-transform:uppercase;color:{}", theme.muted_colour)) { (model.config.list.name) }
            }
        }
    }
}

fn markdown(md: &Markdown, theme: &Theme) -> Markup {
    let mut out = String::new();
    md.to_html(
        &HtmlStyle {
            link_colour: &theme.accent_colour,
            rule_colour: &theme.rule_colour,
            heading_offset: 1,
        },
        &mut out,
    );
    PreEscaped(out)
}

/// A "bulletproof" button: a padded link inside a coloured cell, which
/// every client draws as a button. Outlook for Windows ignores padding on
/// a link, so the cell carries it there (`mso-padding-alt`).
fn cta_block(cta: &ModelCta, theme: &Theme, font: &str) -> Markup {
    html! {
        div class="rule" style=(format!("margin:32px 0 0 0;padding-top:20px;border-top:1px solid {}", theme.rule_colour)) {
            @if let Some(intro) = &cta.intro { (markdown(intro, theme)) }
            table role="presentation" border="0" cellpadding="0" cellspacing="0" style="margin:8px 0 16px 0" {
                tr { td class="button" align="center" bgcolor=(theme.button_colour) style=(format!("border-radius:6px;background-color:{};mso-padding-alt:14px 28px", theme.button_colour)) {
                    @let style = format!("display:inline-block;padding:14px 28px;font-size:18px;line-height:1.2;font-weight:bold;color:{};text-decoration:none;border-radius:6px;{font}", theme.button_text_colour);
                    @match &cta.url {
                        Some(url) => { a class="button-link" href=(url) style=(style) { (cta.text) } }
                        None => { span class="button-link" style=(style) { (cta.text) } }
                    }
                } }
            }
        }
    }
}

fn footer(model: &Model, font: &str, muted: &str) -> Markup {
    let list = &model.config.list;
    let small = format!("margin:0 0 8px 0;font-size:14px;line-height:1.5;{muted}{font}");
    let link = format!("{muted}text-decoration:underline");
    html! {
        table role="presentation" border="0" cellpadding="0" cellspacing="0" width="100%" {
            tr { td class="muted footer-cell" style="padding:20px 28px" {
                p class="muted" style=(small) {
                    "You are receiving this email because " (PreEscaped(Template::marker(Slot::Email)))
                    " subscribed to news from " (list.name) "."
                }
                p class="muted" style=(small) {
                    a class="muted" href=(PreEscaped(Template::marker(Slot::UnsubscribeUrl))) style=(link) { "Unsubscribe" }
                    " · "
                    a class="muted" href=(model.web_url) style=(link) { "View this email in your browser" }
                }
                p class="muted" style=(small) { (list.postal_address) }
                p class="muted" style=(small) { (list.charity_name) " is a registered charity, number " (list.charity_number) "." }
            } }
        }
    }
}

/// The web page's `<head>` additions: what link previews show (`og:`), and
/// the feed.
fn web_head(web: &WebPage, url: &str) -> Markup {
    html! {
        meta name="description" content=(web.description);
        meta property="og:type" content="article";
        meta property="og:title" content=(web.title);
        meta property="og:description" content=(web.description);
        meta property="og:url" content=(url);
        link rel="alternate" type="application/atom+xml" href=(web.feed_href);
    }
}

/// Above the web page's card: the way back to every issue.
fn web_top(web: &WebPage, list_name: &str, muted: &str) -> Markup {
    html! {
        a class="muted" href=(web.index_href) style=(format!("{muted}text-decoration:underline")) { "All " (list_name) " newsletters" }
    }
}

/// The web page's footer: nothing personal (no address, no personal
/// unsubscribe link), where to unsubscribe instead, and the index.
fn web_footer(model: &Model, web: &WebPage, font: &str, muted: &str) -> Markup {
    let list = &model.config.list;
    let small = format!("margin:0 0 8px 0;font-size:14px;line-height:1.5;{muted}{font}");
    let link = format!("{muted}text-decoration:underline");
    html! {
        table role="presentation" border="0" cellpadding="0" cellspacing="0" width="100%" {
            tr { td class="muted" style="padding:20px 28px" {
                p class="muted" style=(small) {
                    "This is the web version of a newsletter from " (list.name) ". To stop receiving it, use the Unsubscribe link at the end of any of its emails, or read "
                    a class="muted" href=(web.unsubscribe_href) style=(link) { "how to unsubscribe" }
                    "."
                }
                p class="muted" style=(small) {
                    a class="muted" href=(web.index_href) style=(link) { "All " (list.name) " newsletters" }
                }
                p class="muted" style=(small) { (list.postal_address) }
                p class="muted" style=(small) { (list.charity_name) " is a registered charity, number " (list.charity_number) "." }
            } }
        }
    }
}

/// The cards' own rules, in dark mode: a subtle border round each card,
/// and an edge that sets the date badge and the booking button off the
/// dark card.
fn cards_style(theme: &Theme) -> String {
    format!(
        "@media (prefers-color-scheme:dark){{.item{{border-color:{} !important}}.badge,.book{{border:1px solid {} !important}}}}",
        cards::dark_border(theme),
        theme.dark_accent_colour
    )
}

/// Media queries and dark mode only; everything else is inline.
fn head_style(theme: &Theme) -> String {
    format!(
        ":root{{color-scheme:light dark;supported-color-schemes:light dark}}\
body{{margin:0;padding:0;-webkit-text-size-adjust:100%;-ms-text-size-adjust:100%}}\
table,td{{mso-table-lspace:0pt;mso-table-rspace:0pt}}\
img{{-ms-interpolation-mode:bicubic}}\
a[x-apple-data-detectors]{{color:inherit !important;text-decoration:none !important;font-size:inherit !important;font-family:inherit !important;font-weight:inherit !important;line-height:inherit !important}}\
a{{word-break:break-word}}\
@media screen and (max-width:480px){{.card-cell{{padding:24px 16px !important}}.footer-cell{{padding:20px 16px !important}}}}\
@media (prefers-color-scheme:dark){{\
.page{{background-color:{page} !important}}\
.card{{background-color:{bg} !important}}\
.text{{color:{text} !important}}\
.heading{{color:{accent} !important}}\
.link{{color:{accent} !important}}\
.muted{{color:{muted} !important}}\
.rule{{border-color:{rule} !important}}\
.button{{background-color:{button} !important}}\
.button-link{{color:{button_text} !important}}}}",
        page = theme.dark_page_colour,
        bg = theme.dark_background_colour,
        text = theme.dark_text_colour,
        accent = theme.dark_accent_colour,
        muted = theme.dark_muted_colour,
        rule = theme.dark_rule_colour,
        button = theme.dark_button_colour,
        button_text = theme.dark_button_text_colour,
    )
}
