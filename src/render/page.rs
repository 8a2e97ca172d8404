//! The one shell of every HTML page the tool serves or writes (the
//! unsubscribe endpoint's pages, the web site's pages, the preview page):
//! doctype, language, charset, viewport, title and style, so that they can
//! never drift apart. The email itself is not a page: see `html`.

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// What differs between pages around their body.
pub struct Shell<'a> {
    /// The page's language (`lang`).
    pub language: &'a str,
    pub title: &'a str,
    /// The page's CSS, trusted (written by the tool, never by a user).
    pub style: &'a str,
    /// More `<head>` elements: `robots`, `color-scheme`, feed links.
    pub head: Markup,
}

/// The page: the shell around `body`'s content.
pub fn page(shell: Shell, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang=(shell.language) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                (shell.head)
                title { (shell.title) }
                style { (PreEscaped(shell.style)) }
            }
            body { (body) }
        }
    }
    .into_string()
}
