//! The endpoint's pages: small, escaped (maud), readable on a phone.

use maud::{Markup, html};

use crate::model::config::List;
use crate::render::page::{Shell, page as shell};

const CSS: &str = "body{margin:0;padding:24px 16px;font:18px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#1a1a1a;background:#fff}\
main{max-width:36em;margin:0 auto}\
h1{font-size:1.5em;line-height:1.25;margin:0 0 .75em}\
button{font:inherit;font-weight:600;padding:.6em 1.4em;border:2px solid #1a1a1a;border-radius:6px;background:#1a1a1a;color:#fff;cursor:pointer}\
button:focus-visible{outline:3px solid #0a58ca;outline-offset:3px}\
a{color:#0a58ca}\
.small{font-size:.9em;color:#444}\
@media (prefers-color-scheme:dark){body{background:#121212;color:#eee}button{background:#eee;color:#121212;border-color:#eee}a{color:#8ab4f8}.small{color:#bbb}}";

fn page(list: &List, title: &str, content: Markup) -> String {
    shell(
        Shell {
            language: &list.language,
            title: &format!("{title} – {}", list.name),
            style: CSS,
            head: html! { meta name="robots" content="noindex"; },
        },
        html! { main { (content) } },
    )
}

/// Asks to confirm: a GET never unsubscribes, so link scanners that follow
/// the link change nothing. The button posts `List-Unsubscribe=One-Click`
/// to the same URL, as a mail app's one-click button does.
pub fn confirm(list: &List, address: &str) -> String {
    page(
        list,
        "Unsubscribe",
        html! {
            h1 { "Unsubscribe from " (list.name) "?" }
            p { "We will stop sending our newsletter to " strong { (address) } "." }
            form method="post" {
                input type="hidden" name="List-Unsubscribe" value="One-Click";
                button type="submit" { "Unsubscribe" }
            }
            p class="small" {
                "Nothing changes until you press the button. If you did not ask for this, you can close this page."
            }
        },
    )
}

/// After the button.
pub fn done(list: &List, address: &str) -> String {
    page(
        list,
        "You are unsubscribed",
        html! {
            h1 { "You are unsubscribed" }
            p { "We will not send our newsletter to " strong { (address) } " any more." }
            p { "Thank you for your support. " a href=(list.site_url) { "Visit " (list.name) } }
        },
    )
}

/// A link that does not verify.
pub fn invalid(list: &List) -> String {
    page(
        list,
        "This link does not work",
        html! {
            h1 { "This unsubscribe link does not work" }
            p {
                "It may have been cut short when it was copied. Open the link from the email again, or write to "
                a href={ "mailto:" (list.unsubscribe_mailto) "?subject=unsubscribe" } { (list.unsubscribe_mailto) }
                " and we will unsubscribe you."
            }
        },
    )
}

/// Something failed on our side; nothing was recorded.
pub fn failed(list: &List) -> String {
    page(
        list,
        "Please try again",
        html! {
            h1 { "Sorry, that did not work" }
            p {
                "Your request could not be recorded, so nothing has changed. Please try again later, or write to "
                a href={ "mailto:" (list.unsubscribe_mailto) "?subject=unsubscribe" } { (list.unsubscribe_mailto) }
                "."
            }
        },
    )
}
