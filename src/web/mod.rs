//! `newsletter web build`: the static site behind the "view in browser"
//! link of every email, with "Add to calendar" files for the events.
//!
//! Layout of the output folder (its root is the site's root, see
//! [`crate::ics::site_base`]):
//!
//! * `index.html`: every issue, newest first;
//! * `issues/ISSUE/index.html`: an issue as emailed, with no personal data;
//! * `events/EVENT.ics`: one calendar file per archived event;
//! * `assets/NAME.HASH.png`: the images the issues show ([`assets`]);
//! * `unsubscribe.html`: where the pages' "Unsubscribe" link leads.
//!
//! Everything written depends on the input files only, so building twice
//! gives the same bytes.

mod assets;
mod pages;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::archive::Archive;
use crate::cli::{WebAction, WebArgs};
use crate::config::Config;
use crate::ics;
use crate::new_issue::issue_files;

/// What the per-subscriber holes show on the public page.
const GENERIC_EMAIL: &str = "you";
/// The pages' "Unsubscribe" link, relative to an issue page.
const UNSUBSCRIBE_FROM_ISSUE: &str = "../../unsubscribe.html";

pub fn run(config: &Config, args: WebArgs) -> Result<ExitCode> {
    match args.action {
        WebAction::Build(build_args) => {
            let out = build_args
                .out
                .unwrap_or_else(|| config.path.parent().unwrap_or(Path::new("")).join("site"));
            let summary = build(config, &out)?;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", out.join("index.html").display())?;
            writeln!(
                stdout,
                "wrote {} issue page(s) and {} calendar file(s) to `{}`",
                summary.issues,
                summary.events,
                out.display()
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// How much a build wrote.
pub struct Summary {
    pub issues: usize,
    pub events: usize,
}

/// One issue as the index lists it.
pub struct Entry {
    pub id: String,
    pub subject: String,
    pub preheader: String,
    pub date: jiff::civil::Date,
}

/// Writes the whole site into `out`.
pub fn build(config: &Config, out: &Path) -> Result<Summary> {
    let mut entries = Vec::new();
    let mut images = std::collections::BTreeMap::new();
    for path in issue_files(&config.paths.issues)? {
        let loaded = crate::load_issue(config, &path).with_context(|| {
            format!(
                "cannot build the page of `{}`; `newsletter check` lists every problem",
                path.display()
            )
        })?;
        let r = &loaded.rendered;
        // No personal data: every merge field takes its fallback.
        let personal = r.personal(|_| None);
        let values = personal.values(UNSUBSCRIBE_FROM_ISSUE, GENERIC_EMAIL);
        // Sections with an audience were for some readers only: left out.
        let (public, _) = r.public_parts();
        let html = public.fill(&values);
        // The calendar files are on this site: link them relatively, so the
        // pages work before upload too.
        let html = html.replace(
            &format!(
                "href=\"{}events/",
                ics::site_base(&config.list.web_version_url)
            ),
            "href=\"../../events/",
        );
        // So are the images.
        let html = html.replace(
            &format!(
                "src=\"{}{}/",
                ics::site_base(&config.list.web_version_url),
                assets::FOLDER
            ),
            &format!("src=\"../../{}/", assets::FOLDER),
        );
        images.extend(assets::of_issue(config, &loaded)?);
        write(
            &out.join("issues").join(&r.issue_id).join("index.html"),
            &html,
        )?;
        entries.push(Entry {
            id: r.issue_id.clone(),
            subject: r.subject_for(&values),
            preheader: r.preheader_for(&values),
            date: loaded.issue.date,
        });
    }
    entries.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| b.id.cmp(&a.id)));

    let archive = Archive::load(
        &config.paths.posts,
        &config.paths.events,
        &config.list.post_url,
    )?;
    for event in &archive.events {
        let calendar = ics::event_calendar(event, &config.list.id, &config.list.name);
        write(&out.join(ics::calendar_path(&event.id)), &calendar)?;
    }

    assets::publish(out, &images)?;
    let theme = crate::theme::Theme::load(&config.paths.theme)?;
    write(
        &out.join("index.html"),
        &pages::index(config, &theme, &entries),
    )?;
    write(
        &out.join("unsubscribe.html"),
        &pages::unsubscribe(config, &theme),
    )?;
    Ok(Summary {
        issues: entries.len(),
        events: archive.events.len(),
    })
}

/// Writes a file, creating its folder.
fn write(path: &PathBuf, contents: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    fs::write(path, contents).with_context(|| format!("cannot write `{}`", path.display()))
}
