//! `newsletter events list [--upcoming]` and `newsletter events add`: the
//! archived events with the issues that use them, and a new event added to
//! `archive/events.toml` from flags.
//!
//! `add` checks each flag first, so an error names the flag and says what
//! to write; then, under the archive's lock (see [`crate::archive_edit`]), it
//! makes the id by the slug rule, appends the entry as text and loads the
//! whole new archive as every command does before anything is written, so
//! it never leaves a file that the other commands refuse.

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use jiff::civil::DateTime;

use super::usage::{Usage, cell, in_issues};
use crate::archive_edit::{self, Position, toml_string};
use crate::cli::{EventsAddArgs, EventsListArgs, ListFormat};
use crate::model::archive::{Archive, Event};
use crate::model::config::Config;
use crate::model::slug::slug;
use crate::model::toml_file::Source;

/// The example of `events add` the messages give.
fn add_example(date: jiff::civil::Date) -> String {
    format!("newsletter events add --title \"…\" --start {date}T18:00 --online")
}

pub fn list(config: &Config, args: &EventsListArgs) -> Result<ExitCode> {
    let archive = load(config)?;
    let usage = Usage::scan(&config.paths.issues)?;
    let today = crate::model::dates::today()?;
    let events: Vec<&Event> = if args.upcoming {
        crate::commands::new::upcoming_events(&archive, today)
    } else {
        let mut all: Vec<&Event> = archive.events.iter().collect();
        all.sort_by_key(|e| e.start.timestamp());
        all
    };

    let mut out = std::io::stdout().lock();
    if args.format == ListFormat::Tsv {
        writeln!(out, "id\tstart\tend\ttime-zone\ttitle\twhere\tissues")?;
        for event in &events {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                event.id,
                event.start.datetime(),
                event
                    .end
                    .as_ref()
                    .map(|e| e.datetime().to_string())
                    .unwrap_or_default(),
                zone_name(event),
                cell(&event.title),
                cell(event.place.as_deref().unwrap_or_default()),
                usage.of_event(&event.id).join(",")
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    let shown = config.paths.events.display();
    if events.is_empty() {
        let which = if args.upcoming && !archive.events.is_empty() {
            format!("no event in `{shown}` starts on or after today ({today})")
        } else {
            format!("no events in `{shown}` yet")
        };
        writeln!(out, "{which}; add one with")?;
        writeln!(out, "  {}", add_example(today))?;
        writeln!(out, "(see `newsletter events add --help` for every flag)")?;
        if args.upcoming && !archive.events.is_empty() {
            writeln!(out, "or list the past ones with `newsletter events list`")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    for event in &events {
        writeln!(out, "{}", event.id)?;
        writeln!(out, "  {}", cell(&event.title))?;
        writeln!(
            out,
            "  {} · {} · {}",
            when(event),
            event
                .place
                .as_deref()
                .map_or_else(|| "place not given".into(), cell),
            in_issues(usage.of_event(&event.id))
        )?;
    }
    let n = events.len();
    let s = if n == 1 { "" } else { "s" };
    if args.upcoming {
        writeln!(
            out,
            "{n} upcoming event{s} (on or after today, {today}), soonest first"
        )?;
    } else {
        writeln!(
            out,
            "{n} event{s} in `{shown}`, by start; add one with `newsletter events add` (see --help)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `Mon 2022-09-05 15:00–16:30 Europe/London`.
fn when(event: &Event) -> String {
    let mut text = event.start.strftime("%a %Y-%m-%d %H:%M").to_string();
    if let Some(end) = &event.end {
        if end.date() == event.start.date() {
            let _ = write!(text, "–{}", end.strftime("%H:%M"));
        } else {
            let _ = write!(text, " to {}", end.strftime("%a %Y-%m-%d %H:%M"));
        }
    }
    format!("{text} {}", zone_name(event))
}

/// `Europe/London`, or the offset for a zone with no name.
fn zone_name(event: &Event) -> String {
    match event.start.time_zone().iana_name() {
        Some(name) => name.to_string(),
        None => event.start.strftime("%:z").to_string(),
    }
}

fn load(config: &Config) -> Result<Archive> {
    Ok(Archive::load(
        &config.paths.posts,
        &config.paths.events,
        &config.list.post_url,
    )?)
}

/// The flags of `events add`, checked.
struct NewEvent {
    title: String,
    start: DateTime,
    end: Option<DateTime>,
    time_zone: Option<String>,
    partner: Option<String>,
    place: String,
    booking_url: Option<String>,
    summary: Option<String>,
}

impl NewEvent {
    fn from_args(args: &EventsAddArgs) -> Result<NewEvent> {
        let title = one_line("--title", &args.title)?;
        if slug(&title).is_empty() {
            bail!(
                "`--title {title}` has no letter or digit to make the event's id from; write the title supporters should read"
            );
        }
        let end = args.end.map(|end| end.on(args.start));
        if let Some(end) = end
            && end <= args.start
        {
            let later = args
                .start
                .checked_add(jiff::Span::new().hours(2))
                .unwrap_or(args.start);
            bail!(
                "`--end {}` is not after `--start {}`; write when it ends, like `--end {}`",
                short(&end),
                short(&args.start),
                later.strftime("%H:%M")
            );
        }
        let place = match &args.place {
            Some(place) => one_line("--place", place)?,
            None => "Online".to_string(),
        };
        let booking_url = args.booking_url.as_deref().map(booking_url).transpose()?;
        Ok(NewEvent {
            title,
            start: args.start,
            end,
            time_zone: args.time_zone.clone(),
            partner: args
                .partner
                .as_deref()
                .map(|p| one_line("--partner", p))
                .transpose()?,
            place,
            booking_url,
            summary: args
                .summary
                .as_deref()
                .map(|s| text("--summary", s))
                .transpose()?,
        })
    }

    /// The `[[event]]` entry, keys in the order the archive writes them.
    fn entry(&self, id: &str) -> String {
        let mut block = String::from("[[event]]\n");
        let mut key = |key: &str, value: String| {
            let _ = writeln!(block, "{key} = {value}");
        };
        key("id", toml_string(id));
        key("title", toml_string(&self.title));
        key("start", self.start.to_string());
        if let Some(end) = self.end {
            key("end", end.to_string());
        }
        if let Some(zone) = &self.time_zone {
            key("time-zone", toml_string(zone));
        }
        if let Some(partner) = &self.partner {
            key("partner", toml_string(partner));
        }
        key("where", toml_string(&self.place));
        if let Some(url) = &self.booking_url {
            key("booking-url", toml_string(url));
        }
        if let Some(summary) = &self.summary {
            key("summary", toml_string(summary));
        }
        block.push('\n');
        block
    }

    /// The slug of the title; with the start date when another event has
    /// that id, and a number after it when that is taken too.
    fn id(&self, archive: &Archive) -> String {
        let base = slug(&self.title);
        if archive.event(&base).is_none() {
            return base;
        }
        let dated = format!("{base}-{}", self.start.date());
        let mut id = dated.clone();
        let mut n = 2;
        while archive.event(&id).is_some() {
            id = format!("{dated}-{n}");
            n += 1;
        }
        id
    }
}

/// A value on one line, trimmed; empty is refused.
fn one_line(flag: &str, value: &str) -> Result<String> {
    let value = text(flag, value)?;
    if value.contains(['\n', '\r']) {
        bail!("`{flag}` must be one line; write it without line breaks");
    }
    Ok(value)
}

/// A text value, trimmed; empty is refused.
fn text(flag: &str, value: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        bail!("`{flag}` is empty; write what supporters should read, or leave the flag out");
    }
    Ok(trimmed.to_string())
}

/// A booking link: an https:// address (or a mailto: one).
fn booking_url(url: &str) -> Result<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let host = lower
        .strip_prefix("https://")
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(host) if host.contains('.') && !host.contains(char::is_whitespace) => {
            return Ok(url.to_string());
        }
        _ if lower.starts_with("mailto:") && url.contains('@') => return Ok(url.to_string()),
        _ => {}
    }
    let advice = if let Some(rest) = lower.strip_prefix("http://") {
        format!("it is not https://; write the https address, `https://{rest}`")
    } else if !lower.contains("://") && lower.contains('.') && !lower.contains(' ') {
        format!("write the full address, `https://{url}`")
    } else {
        "write the full https:// address of the booking page, like `https://www.example.org/events/book/`"
            .to_string()
    };
    bail!("`--booking-url {url}` is not a web address supporters can open: {advice}")
}

/// `2027-03-04T18:00`.
fn short(at: &DateTime) -> String {
    at.strftime("%Y-%m-%dT%H:%M").to_string()
}

pub fn add(config: &Config, args: &EventsAddArgs) -> Result<ExitCode> {
    let new = NewEvent::from_args(args)?;
    let path = &config.paths.events;
    let shown = path.display();
    let posts = Source::read(&config.paths.posts)?;
    let post_url = &config.list.post_url;
    let mut added: Option<Event> = None;
    archive_edit::update(path, |text| {
        let source = Source {
            path: path.clone(),
            text: text.to_string(),
        };
        let archive = Archive::from_sources(&posts, &source, post_url).with_context(|| {
            format!("`{shown}` must load before an event is added; nothing was changed")
        })?;
        if let Some(same) = archive
            .events
            .iter()
            .find(|e| e.title == new.title && e.start.datetime() == new.start)
        {
            bail!(
                "`{shown}` already has this event, as `{}` ({}); nothing was added. Use that id, or change --title or --start",
                same.id,
                when(same)
            );
        }
        let id = new.id(&archive);
        let updated = archive_edit::insert(text, "[[event]]", &new.entry(&id), Position::AtEnd);
        let checked = Source {
            path: path.clone(),
            text: updated,
        };
        // Checked exactly as every command loads the file.
        let archive = Archive::from_sources(&posts, &checked, post_url)
            .context("the new event would not load, so nothing was changed")?;
        added = archive.event(&id).cloned();
        Ok(Some(checked.text))
    })?;
    let Some(event) = added else {
        bail!("the new event is not in `{shown}` after all; run the command again");
    };

    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", event.id)?;
    writeln!(
        out,
        "added to `{shown}`: {}, {}, {}",
        event.title,
        when(&event),
        event.place.as_deref().unwrap_or("place not given")
    )?;
    writeln!(out, "to announce it, list its id in a section of an issue:")?;
    writeln!(out, "  [[section]]")?;
    writeln!(out, "  heading = \"Coming up\"")?;
    writeln!(out, "  events = [\"{}\"]", event.id)?;
    let today = crate::model::dates::today()?;
    if event.start.date() < today {
        eprintln!(
            "note: `{}` started before today ({today}); an issue can only report on it, in a section with `past-events = true`",
            event.id
        );
    }
    Ok(ExitCode::SUCCESS)
}
