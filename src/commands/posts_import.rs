//! `newsletter posts import FEED`: new posts from the blog's RSS 2.0 or
//! Atom feed, added to the top of `archive/posts.toml`.
//!
//! A feed item is already archived when its URL or its id (the slug of its
//! title) is. An item's picture becomes the post's `image` (the card's
//! thumbnail): its `media:content` or `media:thumbnail`, its enclosure, or
//! else the first `<img>` of its content; https:// addresses only. New
//! entries are written as text above the first `[[post]]` (see
//! [`crate::archive_edit`]), so every existing byte of the file, hand edits
//! included, stays as it was.
//!
//! A feed's content is HTML from another site: it is read with a real HTML
//! parser (`scraper`, as `check` reads the rendered message), never scanned
//! by hand.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use scraper::{Html, Node};

use crate::archive_edit::{self, Position, toml_string};
use crate::model::archive::Archive;
use crate::model::config::Config;
use crate::model::dates::OFFICE_TIME_ZONE;
use crate::model::slug::slug;
use crate::model::toml_file::Source;

/// The longest summary kept, in characters; the email adds "…".
const SUMMARY_CHARS: usize = 160;
/// The largest feed read from the network.
const MAX_FEED_BYTES: u64 = 20 * 1024 * 1024;

/// A feed item, as the archive will hold it.
#[derive(Debug)]
pub struct NewPost {
    pub id: String,
    pub title: String,
    pub url: String,
    pub author: Option<String>,
    pub date: Option<jiff::civil::Date>,
    pub summary: Option<String>,
    /// The item's picture (https:// only) and its alt text, if the feed has one.
    pub image: Option<String>,
    pub image_alt: Option<String>,
}

pub fn run(config: &Config, feed: &str) -> Result<ExitCode> {
    let bytes = read_feed(feed)?;
    let parsed = feed_rs::parser::parse(bytes.as_slice()).with_context(|| {
        format!("`{feed}` is not an RSS or Atom feed; give the blog's feed address or file")
    })?;
    let items = items(&parsed)?;

    let posts_path = &config.paths.posts;
    let events = Source::read(&config.paths.events)?;
    let post_url = &config.list.post_url;
    let mut added = Vec::new();
    let mut known = 0;
    let mut refused = Vec::new();
    // Under the archive's lock: what is new is decided on the file as it is
    // when the lock is held, so two imports never add a post twice.
    archive_edit::update(posts_path, |text| {
        let source = Source {
            path: posts_path.clone(),
            text: text.to_string(),
        };
        let archive = Archive::from_sources(&source, &events, post_url)?;
        let mut ids: HashSet<String> = archive.posts.iter().map(|p| p.id.clone()).collect();
        let mut urls: HashSet<String> = archive.posts.iter().map(|p| url_key(&p.url)).collect();
        for mut item in items {
            // The one URL policy: a feed is somebody else's file.
            if !crate::model::url::safe_url(&item.url) {
                refused.push(item);
                continue;
            }
            if urls.contains(&url_key(&item.url)) || ids.contains(&item.id) {
                known += 1;
                continue;
            }
            urls.insert(url_key(&item.url));
            ids.insert(item.id.clone());
            // A derived URL is left out, as in the rest of the archive.
            let derived = post_url.replace("{id}", &item.id);
            if url_key(&derived) == url_key(&item.url) {
                item.url.clear();
            }
            added.push(item);
        }
        if added.is_empty() {
            return Ok(None);
        }
        let updated = insert(text, &added);
        // A mistake must never leave a broken archive behind.
        let checked = Source {
            path: posts_path.clone(),
            text: updated,
        };
        Archive::from_sources(&checked, &events, post_url)
            .context("the imported posts would break the archive; nothing was changed")?;
        Ok(Some(checked.text))
    })?;

    let mut out = std::io::stdout().lock();
    for post in &added {
        writeln!(out, "added `{}`: {}", post.id, post.title)?;
        if post.image.is_some() && post.image_alt.is_none() {
            writeln!(
                out,
                "  its image has no alt text in the feed: add `image-alt` to `{}` (what the picture shows) before an issue uses it",
                post.id
            )?;
        }
    }
    for post in &refused {
        writeln!(
            out,
            "not added `{}`: its link `{}` is not a web address (https://), so it is not safe to put in a newsletter",
            post.id, post.url
        )?;
    }
    writeln!(
        out,
        "{} new post(s) added to `{}`, {} already there",
        added.len(),
        posts_path.display(),
        known
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The feed's bytes, from a file or an https:// URL.
fn read_feed(feed: &str) -> Result<Vec<u8>> {
    if feed.starts_with("http://") {
        bail!("`{feed}` is not https://; give the feed's https address");
    }
    if feed.starts_with("https://") {
        let response = ureq::get(feed).call().with_context(|| {
            format!("cannot fetch `{feed}`; check the address and your connection")
        })?;
        let mut bytes = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(MAX_FEED_BYTES)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read the feed from `{feed}`"))?;
        return Ok(bytes);
    }
    fs::read(feed)
        .with_context(|| format!("cannot read `{feed}`; give a feed file or an https:// URL"))
}

/// The feed's items with a title and a link, newest first.
fn items(feed: &feed_rs::model::Feed) -> Result<Vec<NewPost>> {
    let london = jiff::tz::TimeZone::get(OFFICE_TIME_ZONE)?;
    let mut posts = Vec::new();
    for entry in &feed.entries {
        let Some(title) = entry
            .title
            .as_ref()
            .map(|t| one_line(&html_to_text(&t.content)))
        else {
            continue;
        };
        let Some(url) = entry
            .links
            .iter()
            .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
            .map(|l| l.href.trim().to_string())
        else {
            continue;
        };
        let id = slug(&title);
        if id.is_empty() || title.is_empty() {
            continue;
        }
        let when = entry.published.or(entry.updated);
        let date = when
            .and_then(|t| jiff::Timestamp::from_second(t.timestamp()).ok())
            .map(|t| t.to_zoned_datetime(london.clone()).date());
        let author = entry
            .authors
            .iter()
            .filter_map(|a| a.name.as_deref())
            .map(|n| one_line(&html_to_text(n)))
            .find(|n| !n.is_empty());
        let summary_html = entry
            .summary
            .as_ref()
            .map(|s| s.content.clone())
            .or_else(|| entry.content.as_ref().and_then(|c| c.body.clone()));
        let (image, image_alt) = match image_of(entry) {
            Some((url, alt)) => (Some(url), alt),
            None => (None, None),
        };
        let summary = summary_html
            .map(|html| summary_of(&html))
            .filter(|s| !s.is_empty());
        posts.push((
            when,
            NewPost {
                id,
                title,
                url,
                author,
                date,
                summary,
                image,
                image_alt,
            },
        ));
    }
    // Newest first, like the archive; undated items keep the feed's order.
    posts.sort_by_key(|p| std::cmp::Reverse(p.0));
    Ok(posts.into_iter().map(|(_, p)| p).collect())
}

/// The item's picture and its alt text: an image `media:content` (or an
/// enclosure, which feed-rs gives as one), a `media:thumbnail`, or the
/// first `<img>` of the content or summary. Only https:// addresses.
fn image_of(entry: &feed_rs::model::Entry) -> Option<(String, Option<String>)> {
    let https = |url: &str| url.trim().to_ascii_lowercase().starts_with("https://");
    for media in &entry.media {
        let alt = media
            .description
            .as_ref()
            .or(media.title.as_ref())
            .map(|t| one_line(&html_to_text(&t.content)))
            .filter(|t| !t.is_empty());
        let contents = media.content.iter().filter(|c| {
            c.content_type
                .as_ref()
                .is_some_and(|t| t.to_string().starts_with("image/"))
        });
        let thumbnails = media.thumbnails.iter().map(|t| t.image.uri.as_str());
        if let Some(url) = contents
            .filter_map(|c| c.url.as_ref().map(|u| u.as_str()))
            .chain(thumbnails)
            .find(|u| https(u))
        {
            return Some((url.trim().to_string(), alt));
        }
    }
    let html = [
        entry.content.as_ref().and_then(|c| c.body.as_deref()),
        entry.summary.as_ref().map(|s| s.content.as_str()),
    ];
    html.into_iter().flatten().find_map(first_img)
}

/// The `src` and `alt` of the first `<img>` of some HTML whose `src` is an
/// https:// address.
fn first_img(html: &str) -> Option<(String, Option<String>)> {
    first_img_within(html, NOSCRIPT_DEPTH)
}

/// How many `<noscript>` levels [`first_img`] reads into: lazy-loading
/// plugins put the real `<img>` in one, after a placeholder.
const NOSCRIPT_DEPTH: usize = 2;

/// [`first_img`], reading the insides of `<noscript>` (which a parser with
/// scripting on keeps as text) `depth` levels down.
fn first_img_within(html: &str, depth: usize) -> Option<(String, Option<String>)> {
    let fragment = Html::parse_fragment(html);
    for node in fragment.tree.root().descendants() {
        if let Some(image) = node.value().as_element().filter(|e| e.name() == "img") {
            let Some(src) = image.attr("src").map(str::trim) else {
                continue;
            };
            if src.to_ascii_lowercase().starts_with("https://") {
                let alt = image.attr("alt").map(one_line).filter(|a| !a.is_empty());
                return Some((src.to_string(), alt));
            }
        } else if let Some(text) = node.value().as_text()
            && depth > 0
            && within(node.ancestors().map(|a| a.value()), &["noscript"])
            && let Some(found) = first_img_within(text, depth - 1)
        {
            return Some(found);
        }
    }
    None
}

/// Whether a node whose `ancestors` these are is inside one of the
/// elements `names`.
fn within<'a>(mut ancestors: impl Iterator<Item = &'a Node>, names: &[&str]) -> bool {
    ancestors.any(|parent| {
        parent
            .as_element()
            .is_some_and(|e| names.contains(&e.name()))
    })
}

/// URLs compare without a trailing `/` and ignoring case.
fn url_key(url: &str) -> String {
    url.trim().trim_end_matches('/').to_lowercase()
}

/// `text` with the new `[[post]]` entries before its first one (or at the
/// end when it has none); every other byte unchanged.
fn insert(text: &str, posts: &[NewPost]) -> String {
    let mut block = String::new();
    for post in posts {
        block.push_str("[[post]]\n");
        block.push_str(&format!("id = {}\n", toml_string(&post.id)));
        block.push_str(&format!("title = {}\n", toml_string(&post.title)));
        if let Some(author) = &post.author {
            block.push_str(&format!("author = {}\n", toml_string(author)));
        }
        if let Some(date) = post.date {
            block.push_str(&format!("date = {date}\n"));
        }
        if !post.url.is_empty() {
            block.push_str(&format!("url = {}\n", toml_string(&post.url)));
        }
        if let Some(summary) = &post.summary {
            block.push_str(&format!("summary = {}\n", toml_string(summary)));
        }
        if let Some(image) = &post.image {
            block.push_str(&format!("image = {}\n", toml_string(image)));
        }
        if let Some(alt) = &post.image_alt {
            block.push_str(&format!("image-alt = {}\n", toml_string(alt)));
        }
        block.push('\n');
    }
    archive_edit::insert(text, "[[post]]", &block, Position::BeforeFirst)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A short plain-text summary: tags dropped, WordPress's "[…]" and "The
/// post … appeared first on …" removed, cut at a word near 160 characters.
fn summary_of(html: &str) -> String {
    let mut text = one_line(&html_to_text(html));
    if let Some(at) = text.find("The post ")
        && text[at..].contains(" appeared first on ")
    {
        text.truncate(at);
    }
    let mut text = text.trim_end().to_string();
    for tail in ["[…]", "[...]", "…", "..."] {
        if let Some(rest) = text.strip_suffix(tail) {
            text = rest.trim_end().to_string();
        }
    }
    if text.chars().count() > SUMMARY_CHARS {
        let cut: String = text.chars().take(SUMMARY_CHARS).collect();
        text = match cut.rfind(' ') {
            Some(space) => cut[..space].to_string(),
            None => cut,
        };
    }
    text.trim_end_matches([',', ';', ':', ' ', '.']).to_string()
}

/// The words of some HTML: its text, each piece apart, character
/// references decoded; what is inside `<script>`, `<style>` and `<noscript>`
/// (a fallback, often an `<img>` kept as text) is not text.
fn html_to_text(html: &str) -> String {
    let fragment = Html::parse_fragment(html);
    let mut out = String::with_capacity(html.len());
    for node in fragment.tree.root().descendants() {
        let Some(text) = node.value().as_text() else {
            continue;
        };
        let hidden = ["script", "style", "noscript"];
        if !within(node.ancestors().map(|a| a.value()), &hidden) {
            out.push(' ');
            out.push_str(text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_lose_markup_and_wordpress_tails() {
        assert_eq!(
            summary_of(
                "<p>Refugees &amp; asylum &#8211; a view [&hellip;]</p>\n<p>The post <a href=\"x\">X</a> appeared first on <a>Y</a>.</p>"
            ),
            "Refugees & asylum – a view"
        );
        let long = "word ".repeat(100);
        assert!(summary_of(&long).chars().count() <= SUMMARY_CHARS);
    }

    #[test]
    fn the_first_img_of_the_content_gives_its_src_and_alt() {
        assert_eq!(
            first_img(
                "<p>Hi</p><img src=\"http://e.example.org/no.jpg\"><IMG class=x alt='Two &amp; three' src=\"https://e.example.org/a.jpg\"><img src=b>"
            ),
            Some((
                "https://e.example.org/a.jpg".into(),
                Some("Two & three".into())
            ))
        );
        assert_eq!(
            first_img("<img data-src=\"x\" src=https://e.example.org/b.png />"),
            Some(("https://e.example.org/b.png".into(), None))
        );
        assert_eq!(first_img("<p>no picture</p>"), None);
    }

    #[test]
    fn an_img_in_a_comment_is_not_the_first_img() {
        assert_eq!(
            first_img(
                "<!-- <img src=\"https://e.example.org/old.jpg\"> --><img src=\"https://e.example.org/new.jpg\">"
            ),
            Some(("https://e.example.org/new.jpg".into(), None))
        );
    }

    #[test]
    fn a_lazy_loaded_img_is_read_from_its_noscript() {
        let lazy = "<p><img src=\"data:image/gif;base64,R0lGOD\" data-src=\"https://blog.example.org/a.jpg\" alt=\"Refugee Week\"><noscript><img src=\"https://blog.example.org/a.jpg\" alt=\"Refugee Week\"></noscript></p><img src=\"https://blog.example.org/later.jpg\">";
        assert_eq!(
            first_img(lazy),
            Some((
                "https://blog.example.org/a.jpg".into(),
                Some("Refugee Week".into())
            ))
        );
    }

    #[test]
    fn noscripts_nested_past_the_depth_are_not_read() {
        let deep = format!(
            "{}<img src=\"https://blog.example.org/deep.jpg\">",
            "<noscript>".repeat(100_000)
        );
        assert_eq!(first_img(&deep), None);
    }

    #[test]
    fn a_noscript_fallback_is_not_in_the_summary() {
        assert_eq!(
            summary_of(
                "<p>Our work</p><noscript><img src=\"https://blog.example.org/a.jpg\" alt=\"x\"></noscript>"
            ),
            "Our work"
        );
    }

    #[test]
    fn a_greater_than_sign_in_an_alt_does_not_end_the_img() {
        assert_eq!(
            first_img("<img alt=\"Rights > wrongs\" src=\"https://e.example.org/a.jpg\">"),
            Some((
                "https://e.example.org/a.jpg".into(),
                Some("Rights > wrongs".into())
            ))
        );
    }

    #[test]
    fn every_named_character_reference_is_decoded_in_a_summary() {
        assert_eq!(
            summary_of("<p>Caf&eacute; talk, &pound;5 &ndash; Ren&eacute; Cassin</p>"),
            "Café talk, £5 – René Cassin"
        );
    }

    #[test]
    fn a_script_or_a_style_in_the_content_is_not_in_the_summary() {
        assert_eq!(
            summary_of("<style>p { color: red }</style><p>Our work</p><script>track()</script>"),
            "Our work"
        );
    }

    #[test]
    fn inserts_above_the_first_post_and_keeps_the_rest() {
        let text = "# header\n\n[[post]]\nid = \"old\"\ntitle = \"Old\"\n";
        let post = NewPost {
            id: "new".into(),
            title: "New".into(),
            url: String::new(),
            author: None,
            date: None,
            summary: None,
            image: None,
            image_alt: None,
        };
        let updated = insert(text, &[post]);
        assert_eq!(
            updated,
            "# header\n\n[[post]]\nid = \"new\"\ntitle = \"New\"\n\n[[post]]\nid = \"old\"\ntitle = \"Old\"\n"
        );
    }
}
