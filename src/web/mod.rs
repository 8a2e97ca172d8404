//! `newsletter web build`: the static site behind the "view in browser"
//! link of every email, with "Add to calendar" files for the events.
//!
//! Layout of the output folder (its root is the site's root, see
//! [`crate::render::ics::site_base`]):
//!
//! * `index.html`: every issue, newest first;
//! * `issues/ISSUE/index.html`: an issue as emailed, with no personal data
//!   and without the email's own lines ("view in your browser", "you are
//!   receiving this"), linking back to the index;
//! * `feed.xml`: an Atom feed of the issues ([`feed`]);
//! * `events/EVENT.ics`: one calendar file per archived event;
//! * `assets/NAME.HASH.png`: the images the issues show ([`assets`]);
//! * `unsubscribe.html`: how to unsubscribe, linked from every issue page.
//!
//! Everything written depends on the input files only, so building twice
//! gives the same bytes.

mod assets;
mod feed;
mod pages;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::model::archive::Archive;
use crate::model::config::Config;
use crate::model::issue::issue_files;
use crate::render::{Loaded, ics};

/// What the per-subscriber holes show on the public page.
const GENERIC_EMAIL: &str = "you";
/// The site's pages, relative to an issue page.
const UNSUBSCRIBE_FROM_ISSUE: &str = "../../unsubscribe.html";
const INDEX_FROM_ISSUE: &str = "../../index.html";

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
    /// The page's address (`web-version-url`).
    pub url: String,
}

/// Writes the whole site into `out`.
pub fn build(config: &Config, out: &Path) -> Result<Summary> {
    let mut site = Site {
        config,
        out,
        entries: Vec::new(),
        event_pages: HashMap::new(),
        images: BTreeMap::new(),
    };
    for path in issue_files(&config.paths.issues)? {
        site.add_issue(&path)?;
    }
    site.entries
        .sort_by(|a, b| b.date.cmp(&a.date).then_with(|| b.id.cmp(&a.id)));
    let events = site.write_calendars()?;
    site.write_shared()?;
    Ok(Summary {
        issues: site.entries.len(),
        events,
    })
}

/// The site as it is built: the issue pages written so far, and what the
/// calendar files, the assets and the index need from them.
struct Site<'a> {
    config: &'a Config,
    out: &'a Path,
    entries: Vec<Entry>,
    /// Each event's newest public issue page: its calendar file's URL.
    event_pages: HashMap<String, (jiff::civil::Date, String, String)>,
    /// The images the pages show, by hashed name.
    images: BTreeMap<String, PathBuf>,
}

impl Site<'_> {
    /// Renders an issue's public page and writes it.
    fn add_issue(&mut self, path: &Path) -> Result<()> {
        let config = self.config;
        let loaded = crate::render::load_issue(config, path).with_context(|| {
            format!(
                "cannot build the page of `{}`; `newsletter check` lists every problem",
                path.display()
            )
        })?;
        let r = &loaded.rendered;
        // No personal data: every merge field takes its fallback, and
        // sections with an audience (for some readers only) are left out.
        let personal = r.personal(|_| None);
        let values = personal.values(UNSUBSCRIBE_FROM_ISSUE, GENERIC_EMAIL);
        let subject = r.subject_for(&values);
        let preheader = r.preheader_for(&values);
        let html = crate::render::web_page(
            config,
            &loaded.theme,
            &loaded.issue,
            &loaded.archive,
            crate::render::WebPage {
                index_href: INDEX_FROM_ISSUE.into(),
                unsubscribe_href: UNSUBSCRIBE_FROM_ISSUE.into(),
                feed_href: format!("../../{}", feed::FEED_PATH),
                title: subject.clone(),
                description: preheader.clone(),
            },
        )?;
        self.note_events(&loaded);
        let html = relative_links(config, &html);
        self.images.extend(assets::of_issue(config, &loaded)?);
        write(
            &self.out.join("issues").join(&r.issue_id).join("index.html"),
            &html,
        )?;
        self.entries.push(Entry {
            id: r.issue_id.clone(),
            subject,
            preheader,
            date: loaded.issue.date,
            url: r.web_url.clone(),
        });
        Ok(())
    }

    /// Keeps this issue's page for each event it shows to every reader,
    /// when it is the newest so far.
    fn note_events(&mut self, loaded: &Loaded) {
        let r = &loaded.rendered;
        let audienced = &loaded.issue.audiences.sections;
        for (index, section) in loaded.issue.content.sections.iter().enumerate() {
            if audienced.iter().any(|a| a.index == index) {
                continue;
            }
            for id in &section.events {
                let page = (loaded.issue.date, r.issue_id.clone(), r.web_url.clone());
                let newest = self
                    .event_pages
                    .entry(id.get_ref().clone())
                    .or_insert_with(|| page.clone());
                if (page.0, &page.1) > (newest.0, &newest.1) {
                    *newest = page;
                }
            }
        }
    }

    /// One calendar file per archived event, linking its newest page;
    /// returns how many.
    fn write_calendars(&self) -> Result<usize> {
        let config = self.config;
        let archive = Archive::load(
            &config.paths.posts,
            &config.paths.events,
            &config.list.post_url,
        )?;
        for event in &archive.events {
            let page = self
                .event_pages
                .get(&event.id)
                .map(|(_, _, url)| url.as_str());
            let calendar = ics::event_calendar(event, &config.list.id, &config.list.name, page);
            write(&self.out.join(ics::calendar_path(&event.id)), &calendar)?;
        }
        Ok(archive.events.len())
    }

    /// The assets, the index, the feed and the unsubscribe page.
    fn write_shared(&self) -> Result<()> {
        let (config, out) = (self.config, self.out);
        assets::publish(out, &self.images)?;
        let theme = crate::model::theme::Theme::load(&config.paths.theme)?;
        write(
            &out.join("index.html"),
            &pages::index(config, &theme, &self.entries),
        )?;
        write(
            &out.join(feed::FEED_PATH),
            &feed::atom(config, &self.entries),
        )?;
        write(
            &out.join("unsubscribe.html"),
            &pages::unsubscribe(config, &theme),
        )
    }
}

/// The calendar files and the images are on this site: an issue page links
/// them relatively, so the pages work before upload too.
fn relative_links(config: &Config, html: &str) -> String {
    let base = ics::site_base(&config.list.web_version_url);
    html.replace(&format!("href=\"{base}events/"), "href=\"../../events/")
        .replace(
            &format!("src=\"{base}{}/", assets::FOLDER),
            &format!("src=\"../../{}/", assets::FOLDER),
        )
}

/// Writes a file, creating its folder.
fn write(path: &PathBuf, contents: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    fs::write(path, contents).with_context(|| format!("cannot write `{}`", path.display()))
}
