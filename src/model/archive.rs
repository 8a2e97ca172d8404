//! The post and event archive under `archive/` that issues reference by id.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use jiff::ZonedDateTime as Zoned;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::Deserialize;
use toml::Spanned;

use crate::model::image::ImageSpec;
use crate::model::load_error::LoadError;
use crate::model::toml_file::Source;

/// An archived blog post.
#[derive(Debug, Clone)]
pub struct Post {
    pub id: String,
    pub title: String,
    pub author: Option<String>,
    pub role: Option<String>,
    pub summary: Option<String>,
    pub url: String,
    pub date: Option<jiff::civil::Date>,
    /// The card's thumbnail (`image`, `image-alt`).
    pub image: Option<ImageSpec>,
}

/// An event with a start in its own time zone.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub title: String,
    pub start: Zoned,
    pub end: Option<Zoned>,
    pub partner: Option<String>,
    /// Where it takes place (`where`); None when the archive does not say,
    /// and then nothing is shown: no "Online", no "To be confirmed".
    pub place: Option<String>,
    pub booking_url: Option<String>,
    pub summary: Option<String>,
}

/// Every post and event, looked up by id.
#[derive(Debug, Default)]
pub struct Archive {
    pub posts: Vec<Post>,
    pub events: Vec<Event>,
    post_index: HashMap<String, usize>,
    event_index: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PostsFile {
    #[serde(default, rename = "post")]
    posts: Vec<RawPost>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPost {
    id: Spanned<String>,
    title: String,
    author: Option<String>,
    role: Option<String>,
    summary: Option<String>,
    url: Option<Spanned<String>>,
    date: Option<toml::value::Datetime>,
    image: Option<Spanned<String>>,
    image_alt: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct EventsFile {
    time_zone: Spanned<String>,
    #[serde(default, rename = "event")]
    events: Vec<RawEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEvent {
    id: Spanned<String>,
    title: String,
    start: Spanned<toml::value::Datetime>,
    end: Option<Spanned<toml::value::Datetime>>,
    time_zone: Option<Spanned<String>>,
    partner: Option<String>,
    #[serde(rename = "where")]
    place: Option<String>,
    booking_url: Option<Spanned<String>>,
    summary: Option<String>,
}

impl Archive {
    /// Loads both archive files. `post_url` has `{id}` for posts without a URL.
    pub fn load(
        posts_path: &Path,
        events_path: &Path,
        post_url: &str,
    ) -> Result<Archive, LoadError> {
        Archive::from_sources(
            &Source::read(posts_path)?,
            &Source::read(events_path)?,
            post_url,
        )
    }

    /// [`Archive::load`] from texts already read (a new version about to be
    /// written is checked this way, its errors naming the real file).
    pub(crate) fn from_sources(
        posts: &Source,
        events: &Source,
        post_url: &str,
    ) -> Result<Archive, LoadError> {
        let mut archive = Archive::default();
        let file: PostsFile = posts.parse()?;
        for raw in file.posts {
            archive.add_post(posts, raw, post_url)?;
        }
        let file: EventsFile = events.parse()?;
        let default_zone = zone(events, &file.time_zone)?;
        for raw in file.events {
            archive.add_event(events, raw, &default_zone)?;
        }
        Ok(archive)
    }

    /// One post of `posts.toml`, checked; its URL defaults to `post_url`.
    fn add_post(&mut self, source: &Source, raw: RawPost, post_url: &str) -> Result<(), LoadError> {
        let id = raw.id.get_ref().clone();
        check_id(source, &raw.id)?;
        let date = match raw.date {
            None => None,
            Some(d) => Some(to_date(source, &raw.id, d)?),
        };
        if self.post_index.contains_key(&id) {
            return Err(source
                .error_at(
                    "duplicate-id",
                    raw.id.span().start,
                    format!("post id `{id}` is used twice; ids must be unique"),
                )
                .into());
        }
        if let Some(url) = &raw.url {
            check_url(source, "url", url)?;
        }
        let image = post_image(source, &raw);
        self.post_index.insert(id.clone(), self.posts.len());
        self.posts.push(Post {
            image,
            url: raw
                .url
                .map(Spanned::into_inner)
                .unwrap_or_else(|| post_url.replace("{id}", &id)),
            id,
            title: raw.title,
            author: raw.author,
            role: raw.role,
            summary: raw.summary,
            date,
        });
        Ok(())
    }

    /// One event of `events.toml`, checked; its times are in `default_zone`
    /// unless it names its own.
    fn add_event(
        &mut self,
        source: &Source,
        raw: RawEvent,
        default_zone: &TimeZone,
    ) -> Result<(), LoadError> {
        let id = raw.id.get_ref().clone();
        check_id(source, &raw.id)?;
        let tz = match &raw.time_zone {
            Some(name) => zone(source, name)?,
            None => default_zone.clone(),
        };
        if let Some(url) = &raw.booking_url {
            check_url(source, "booking-url", url)?;
        }
        let start = zoned(source, &raw.start, &tz)?;
        let end = match &raw.end {
            Some(end) => Some(zoned(source, end, &tz)?),
            None => None,
        };
        if let Some(end) = &end
            && *end <= start
        {
            return Err(source
                .error_at(
                    "event-ends-before-start",
                    raw.end.as_ref().map_or(0, |e| e.span().start),
                    format!("event `{id}` ends before it starts"),
                )
                .into());
        }
        if self.event_index.contains_key(&id) {
            return Err(source
                .error_at(
                    "duplicate-id",
                    raw.id.span().start,
                    format!("event id `{id}` is used twice; ids must be unique"),
                )
                .into());
        }
        self.event_index.insert(id.clone(), self.events.len());
        self.events.push(Event {
            id,
            title: raw.title,
            start,
            end,
            partner: raw.partner,
            place: raw.place.filter(|p| !p.trim().is_empty()),
            booking_url: raw.booking_url.map(Spanned::into_inner),
            summary: raw.summary,
        });
        Ok(())
    }

    pub fn post(&self, id: &str) -> Option<&Post> {
        self.post_index.get(id).map(|&i| &self.posts[i])
    }

    pub fn event(&self, id: &str) -> Option<&Event> {
        self.event_index.get(id).map(|&i| &self.events[i])
    }

    /// Up to three existing post ids closest to `id`, best first.
    pub fn nearest_posts(&self, id: &str) -> Vec<&str> {
        nearest(id, self.posts.iter().map(|p| p.id.as_str()))
    }

    /// Up to three existing event ids closest to `id`, best first.
    pub fn nearest_events(&self, id: &str) -> Vec<&str> {
        nearest(id, self.events.iter().map(|e| e.id.as_str()))
    }
}

fn nearest<'a>(id: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .map(|c| (strsim::jaro_winkler(id, c), c))
        .filter(|(score, _)| *score > 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Refuses a link that is not `https:`, `http:` or `mailto:` (the one URL
/// policy of Markdown, the call to action and the configuration).
fn check_url(source: &Source, key: &str, url: &Spanned<String>) -> Result<(), LoadError> {
    if crate::model::url::safe_url(url.get_ref()) {
        return Ok(());
    }
    Err(source
    .error_at(
        "unsafe-link",
        url.span().start,
        format!(
            "`{key}` is `{}`, which is not a web or mail link (mail apps block `javascript:` and `data:`, and a relative link leads nowhere); write the full https:// address",
            url.get_ref()
        ),
    )
    .into())
}

/// A post's `image`, as the files name it, with where it is written.
fn post_image(source: &Source, raw: &RawPost) -> Option<ImageSpec> {
    let image = raw.image.as_ref()?;
    let (line, column) = crate::model::toml_file::line_column(&source.text, image.span().start);
    Some(ImageSpec {
        key: "image",
        alt_key: "image-alt",
        width_key: None,
        src: image.get_ref().clone(),
        alt: raw.image_alt.clone(),
        width: None,
        height: None,
        file: source.path.clone(),
        line,
        column,
    })
}

fn check_id(source: &Source, id: &Spanned<String>) -> Result<(), LoadError> {
    let value = id.get_ref();
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(source
            .error_at(
                "invalid-id",
                id.span().start,
                format!("id `{value}` must use lowercase letters, digits and `-` only"),
            )
            .into());
    }
    Ok(())
}

fn zone(source: &Source, name: &Spanned<String>) -> Result<TimeZone, LoadError> {
    TimeZone::get(name.get_ref()).map_err(|_| {
        source
            .error_at(
                "unknown-time-zone",
                name.span().start,
                format!(
                    "unknown time zone `{}`; use a name like `Europe/London`",
                    name.get_ref()
                ),
            )
            .into()
    })
}

fn zoned(
    source: &Source,
    value: &Spanned<toml::value::Datetime>,
    tz: &TimeZone,
) -> Result<Zoned, LoadError> {
    let bad = |message: String| -> LoadError {
        source
            .error_at("invalid-date", value.span().start, message)
            .into()
    };
    let dt = value.get_ref();
    let (Some(d), Some(t), None) = (dt.date, dt.time, dt.offset) else {
        return Err(bad("write event times as local date-times without quotes or offset, like 2022-06-20T18:00:00 (the time zone comes from `time-zone`)".into()));
    };
    let civil = DateTime::new(
        d.year as i16,
        d.month as i8,
        d.day as i8,
        t.hour as i8,
        t.minute as i8,
        t.second.unwrap_or(0) as i8,
        0,
    )
    .map_err(|e| bad(format!("invalid date-time: {e}")))?;
    civil
        .to_zoned_datetime(tz.clone())
        .map_err(|e| bad(format!("invalid date-time: {e}")))
}

fn to_date(
    source: &Source,
    id: &Spanned<String>,
    value: toml::value::Datetime,
) -> Result<jiff::civil::Date, LoadError> {
    let bad = |message: String| -> LoadError {
        source
            .error_at("invalid-date", id.span().start, message)
            .into()
    };
    match (value.date, value.time) {
        (Some(d), None) => jiff::civil::Date::new(d.year as i16, d.month as i8, d.day as i8)
            .map_err(|e| bad(format!("invalid date: {e}"))),
        _ => Err(bad(format!(
            "post `{}` has a `date` that is not a plain date like 2022-07-13",
            id.get_ref()
        ))),
    }
}
