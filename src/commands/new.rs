//! `newsletter new`: start an issue file from the skeleton
//! `templates/issue.toml`, listing the posts and events it could reference.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use jiff::civil::Date;

use super::usage::Usage;
use crate::cli::NewArgs;
use crate::model::archive::{Archive, Event, Post};
use crate::model::config::Config;

/// The skeleton used when the project has no `issue.toml` beside its theme.
const BUILT_IN_SKELETON: &str = include_str!("../../templates/issue.toml");

/// The most posts listed for a new issue.
const MAX_POSTS: usize = 10;

/// The comment under the posts: where to find the others.
const FIND_POSTS: &str = "# Find any other post with\n#   newsletter posts list --search WORDS";

pub fn run(config: &Config, args: &NewArgs) -> Result<ExitCode> {
    let date = match args.date {
        Some(date) => date,
        None => crate::model::dates::today()?,
    };
    let path = config.paths.issues.join(format!("{date}.toml"));
    if path.exists() {
        bail!(
            "`{}` already exists; edit it, or pass --date for another day",
            path.display()
        );
    }
    let archive = Archive::load(
        &config.paths.posts,
        &config.paths.events,
        &config.list.post_url,
    )?;
    let existing = existing_issues(&config.paths.issues)?;
    let text = fill(&skeleton(config)?, config, &archive, &existing, date);

    fs::create_dir_all(&config.paths.issues)
        .with_context(|| format!("cannot create `{}`", config.paths.issues.display()))?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write `{}`", path.display()))?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", path.display())?;
    writeln!(
        out,
        "next: replace each TODO, then `newsletter preview {}`",
        path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The project's skeleton (`issue.toml` beside the theme), or the built-in
/// one. Lines starting with `#!` are notes about the skeleton itself.
fn skeleton(config: &Config) -> Result<String> {
    let path = config.paths.theme.with_file_name("issue.toml");
    match fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BUILT_IN_SKELETON.into()),
        Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    }
}

/// What the existing issues tell a new one.
#[derive(Debug, Default)]
pub struct Existing {
    /// The newest issue date.
    pub newest: Option<Date>,
    /// Every post id some issue references.
    pub posts: HashSet<String>,
}

/// What the issues under `dir` already hold (see [`Usage::scan`]).
fn existing_issues(dir: &Path) -> Result<Existing> {
    let usage = Usage::scan(dir)?;
    Ok(Existing {
        newest: usage.newest,
        posts: usage.used_posts().cloned().collect(),
    })
}

/// Posts new since the last issue, in archive order (newest first): dated
/// posts after the newest issue, undated ones that no issue references.
pub fn new_posts<'a>(archive: &'a Archive, existing: &Existing) -> Vec<&'a Post> {
    archive
        .posts
        .iter()
        .filter(|post| match (post.date, existing.newest) {
            (Some(date), Some(newest)) => date > newest,
            _ => !existing.posts.contains(&post.id),
        })
        .take(MAX_POSTS)
        .collect()
}

/// Events starting on or after `date`, soonest first.
pub fn upcoming_events(archive: &Archive, date: Date) -> Vec<&Event> {
    let mut events: Vec<&Event> = archive
        .events
        .iter()
        .filter(|e| e.start.date() >= date)
        .collect();
    events.sort_by_key(|e| e.start.timestamp());
    events
}

fn fill(
    skeleton: &str,
    config: &Config,
    archive: &Archive,
    existing: &Existing,
    date: Date,
) -> String {
    let posts = new_posts(archive, existing);
    let since = existing
        .newest
        .map_or_else(String::new, |d| format!(" since the last issue ({d})"));
    let posts_block = if posts.is_empty() {
        format!("# No new posts{since}.\n{FIND_POSTS}")
    } else {
        let lines: Vec<String> = posts
            .iter()
            .map(|p| format!("#     \"{}\", # {}", p.id, one_line(&p.title)))
            .collect();
        format!(
            "# New posts{since}, newest first. To use them, uncomment\n\
             # the section and delete the ones you do not want.\n\
             # [[section]]\n\
             # heading = \"From the blog\"\n\
             # posts = [\n{}\n# ]\n{FIND_POSTS}",
            lines.join("\n")
        )
    };

    let events = upcoming_events(archive, date);
    let events_block = if events.is_empty() {
        format!(
            "# No events on or after {date} in the archive. List the coming ones with\n\
             #   newsletter events list --upcoming\n\
             {}",
            add_event(date)
        )
    } else {
        let lines: Vec<String> = events
            .iter()
            .map(|e| {
                format!(
                    "#     \"{}\", # {} {}",
                    e.id,
                    e.start.strftime("%Y-%m-%d %H:%M"),
                    one_line(&e.title)
                )
            })
            .collect();
        format!(
            "# Upcoming events, soonest first. To use them, uncomment\n\
             # the section and delete the ones you do not want.\n\
             # [[section]]\n\
             # heading = \"Coming up\"\n\
             # events = [\n{}\n# ]\n{}",
            lines.join("\n"),
            add_event(date)
        )
    };

    let skeleton: String = skeleton
        .split_inclusive('\n')
        .filter(|line| !line.starts_with("#!"))
        .collect();
    skeleton
        .replace("${date}", &date.to_string())
        .replace(
            "${donate_url}",
            &toml::Value::String(config.list.donate_url.clone()).to_string(),
        )
        .replace("${posts}", &posts_block)
        .replace("${events}", &events_block)
}

/// The comment saying how to add an event to the archive.
fn add_event(date: Date) -> String {
    format!(
        "# Add an event to the archive with (see `newsletter events add --help`)\n\
         #   newsletter events add --title \"…\" --start {date}T18:00 --online"
    )
}

/// A title on one comment line: control characters become spaces.
fn one_line(title: &str) -> String {
    title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
