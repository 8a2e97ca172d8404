//! Who a run mails: the subscribed, deduplicated addresses of *this*
//! subscriber file minus those the journal has settled, as a set
//! difference of two sorted streams (the survey's external sort of the
//! file and the journal's of its records), never a subtraction of counts.
//!
//! Memory is the two sorts' fixed buffers plus one bit per line of the
//! file, however long the list and the journal.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::journal::{self, Entry, Final, Fingerprint, Header, Line, Lookup, Replay};
use crate::model::audience::{Audiences, LineMarks, Reach};
use crate::model::config::project_folder;
use crate::model::subscribers::{self, Joined, KeyHash, LineSet, Survey};
use crate::render::template::Part;
use crate::render::{Rendered, Template};

/// Which earlier outcomes a run sends to again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    pub retry_failed: bool,
    pub resend_uncertain: bool,
}

impl Policy {
    /// Whether a subscribed address with this journal entry is mailed.
    pub fn wants(&self, entry: Option<&Entry>) -> bool {
        match entry.map(|e| e.state) {
            None | Some(Final::Deferred) => true,
            Some(Final::Accepted) => false,
            Some(Final::Failed) => self.retry_failed,
            Some(Final::Uncertain) => self.resend_uncertain,
        }
    }
}

/// How the subscribed addresses of the file and the journal's recipients
/// divide up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Mailed for the first time.
    pub new: u64,
    /// Deferred earlier: mailed again.
    pub deferred: u64,
    /// Failed permanently earlier.
    pub failed: u64,
    pub failed_retried: u64,
    /// Uncertain earlier.
    pub uncertain: u64,
    pub uncertain_resent: u64,
    /// Already accepted.
    pub sent: u64,
    /// Subscribed in the file, unsubscribed in the one-click log.
    pub one_click: u64,
    /// In the journal, subscribed no more (a row opts out).
    pub opted_out_since: u64,
    /// In the journal, not in this file at all.
    pub not_in_file: u64,
    /// Subscribed, but the issue's audience leaves them out (and they do
    /// not have it already): not pending.
    pub outside_audience: u64,
}

/// Everything a run needs to know before it sends.
pub struct Plan {
    pub list_path: PathBuf,
    /// The file surveyed, open: the run reads this one, whatever is renamed
    /// over the path meanwhile.
    pub list_file: File,
    pub list_meta: std::fs::Metadata,
    pub survey: Survey,
    pub selection: LineSet,
    pub tally: Tally,
    /// How many subscribed addresses the audience and each audienced
    /// section reach, whether sent already or not.
    pub reach: Reach,
    /// The first uncertain recipients the tally counts (of this file,
    /// subscribed, in the audience) and the first possibly-twice ones, for
    /// the summary.
    pub uncertain_sample: Vec<String>,
    pub twice_sample: Vec<String>,
    pub twice: u64,
    pub recent_attempts: Vec<f64>,
    /// Lines to write at the top of the journal before sending: the header
    /// of a new journal, or the record of accepted changes.
    pub first_lines: Vec<Line>,
    /// One-click unsubscribes not applied to the file yet, and where the
    /// log was read up to.
    pub one_click: HashSet<KeyHash>,
    pub one_click_read: u64,
    pub torn_journal: bool,
    pub journal_path: PathBuf,
}

/// What the plan needs from the run.
pub struct Inputs<'a> {
    pub rendered: &'a Rendered,
    pub config: &'a crate::model::config::Config,
    pub list_path: &'a Path,
    pub policy: Policy,
    pub accept_changes: bool,
    /// How many accepted times the limits need (0: none).
    pub keep_times: usize,
    /// `newsletter status ISSUE` for this issue, for the journal's refusals.
    pub inspect: &'a str,
}

/// The fingerprint of what the messages say.
pub fn fingerprint(config: &crate::model::config::Config, rendered: &Rendered) -> Fingerprint {
    let mut f = Fingerprint::default();
    f.add(
        "subject",
        format!("{}\n{}", rendered.subject, rendered.preheader).as_bytes(),
    );
    f.add("html", &template_bytes(&rendered.html));
    f.add("text", &template_bytes(&rendered.text));
    f.add("greeting", format!("{:?}", rendered.greeting).as_bytes());
    // Only with audiences, so an issue without them keeps its fingerprint.
    if let Some(audience) = rendered.audiences.describe() {
        f.add("audience", audience.as_bytes());
    }
    let list = &config.list;
    f.add(
        "sender",
        format!(
            "{}\n{:?}\n{}\n{}\n{}\n{}",
            list.from,
            list.reply_to,
            list.id,
            list.name,
            list.unsubscribe_url,
            list.unsubscribe_mailto
        )
        .as_bytes(),
    );
    f
}

fn template_bytes(t: &Template) -> Vec<u8> {
    let mut out = Vec::new();
    for part in t.parts() {
        match part {
            Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
            Part::Hole(slot) => out.extend_from_slice(format!("\0{slot:?}\0").as_bytes()),
        }
    }
    out
}

/// Reads the journal and the subscriber file and works out the run.
pub fn make(inputs: &Inputs) -> Result<Plan> {
    let Inputs {
        rendered,
        config,
        list_path,
        policy,
        ..
    } = *inputs;
    let (journal_path, mut replay, first_lines) = open_journal(inputs)?;
    let (one_click, one_click_read) =
        crate::unsubscribe::log::read_all(&config.paths.unsubscribe_log)?;
    let (list_file, list_meta) = snapshot(list_path)?;
    let (settled, lookup) = replay.settled()?;
    let mut tally = Tally::default();
    let mut samples = Samples::default();
    let audiences = &rendered.audiences;
    let mut reach = Reach::new(audiences);
    let marks = std::cell::RefCell::new(LineMarks::default());
    let entries = settled.map(|r| r.map(|e| (e.hash, e)));
    let (survey, selection) = subscribers::survey_joined(
        list_path,
        list_file.try_clone()?,
        entries,
        |columns, subscriber| marks.borrow_mut().note(audiences, columns, subscriber),
        |joined| {
            let marks = marks.borrow();
            let audience = Audience {
                marks: &marks,
                reach: &mut reach,
            };
            let uncertain = tally.uncertain;
            let (selected, entry) = decide(&joined, policy, &one_click, audience, &mut tally);
            if let Some(entry) = entry {
                // Named as uncertain only if counted as such: a recipient
                // of this file, subscribed and in the audience.
                samples.note(entry, tally.uncertain > uncertain, &lookup);
            }
            selected
        },
    )?;
    if let Some(e) = samples.error.take() {
        return Err(e);
    }
    Ok(Plan {
        list_path: list_path.to_path_buf(),
        list_file,
        list_meta,
        survey,
        selection,
        tally,
        reach,
        uncertain_sample: samples.uncertain,
        twice_sample: samples.twice,
        twice: samples.twice_count,
        recent_attempts: std::mem::take(&mut replay.recent_attempts),
        first_lines,
        one_click,
        one_click_read,
        torn_journal: replay.torn,
        journal_path,
    })
}

/// Reads the issue's journal and checks it belongs to what is sent now;
/// returns its path, what it holds and the lines that start or continue it.
fn open_journal(inputs: &Inputs) -> Result<(PathBuf, Replay, Vec<Line>)> {
    let Inputs {
        rendered, config, ..
    } = *inputs;
    let journal_path = journal::path(&config.paths.journal, &rendered.issue_id);
    let expect = journal::Expect {
        issue: &rendered.issue_id,
        list: &config.list.id,
    };
    let replay = journal::replay(
        &journal_path,
        Some(expect),
        inputs.keep_times,
        inputs.inspect,
    )?;
    let current = fingerprint(config, rendered);
    let first_lines = bind(
        &replay,
        &current,
        inputs.list_path,
        rendered,
        config,
        inputs.accept_changes,
    )?;
    Ok((journal_path, replay, first_lines))
}

/// A private copy of the subscriber file, and the original's metadata.
///
/// The run reads the copy twice (the survey, then the messages), so a file
/// saved in place meanwhile (an editor rewriting it, rows added at the top)
/// cannot shift the rows under the selection, which is by line. Changes to
/// the original are still seen, by [`super::suppress`]. Disk: the file's
/// size, in the temporary folder, freed when the run ends.
fn snapshot(path: &Path) -> Result<(File, std::fs::Metadata)> {
    use std::io::{Seek, SeekFrom};
    let shown = path.display();
    let mut original = subscribers::open_list(path)?;
    let meta = original
        .metadata()
        .map_err(|e| anyhow::anyhow!("cannot read `{shown}`: {e}"))?;
    let temp_error = || {
        format!(
            "cannot copy `{shown}` to a temporary file in `{}`; check the free space there, or set TMPDIR to another folder",
            std::env::temp_dir().display()
        )
    };
    let mut copy = tempfile::tempfile().with_context(temp_error)?;
    std::io::copy(&mut original, &mut copy).with_context(temp_error)?;
    copy.seek(SeekFrom::Start(0)).with_context(temp_error)?;
    Ok((copy, meta))
}

/// Checks the journal belongs to what is being sent now; returns the lines
/// that start or continue it.
fn bind(
    replay: &Replay,
    current: &Fingerprint,
    list_path: &Path,
    rendered: &Rendered,
    config: &crate::model::config::Config,
    accept_changes: bool,
) -> Result<Vec<Line>> {
    let audience = journal_audience(&rendered.audiences);
    let Some(recorded) = &replay.fingerprint else {
        let mut header = Line::header(&Header {
            issue: rendered.issue_id.clone(),
            list: config.list.id.clone(),
            subscribers: recorded_path(list_path, &config.path),
            fingerprint: current.clone(),
            t: journal::now(),
        });
        header.audience = audience;
        return Ok(vec![header]);
    };
    let changed = recorded.changed(current);
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    if replay.events == 0 || accept_changes {
        let mut accepted = Line::changes_accepted(current);
        accepted.audience = audience;
        return Ok(vec![accepted]);
    }
    bail!(
        "the issue changed after it was partly sent: the {} of the messages differ from what the journal `{}` recorded, so the rest of the list would get a different newsletter. Nothing was sent. Undo the change to send the same issue to the rest, or run again with --accept-changes to send the changed version (the decision is journaled)",
        names(&changed),
        replay.path.display()
    )
}

/// The audiences as the journal's header records them, in words: at most
/// 2000 bytes (a journal line's fields are limited), cut on a character.
fn journal_audience(audiences: &Audiences) -> Option<String> {
    const MAX: usize = 2000;
    let mut text = audiences.describe()?;
    if text.len() > MAX {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    Some(text)
}

/// The subscriber file as the journal records it: relative to the
/// configuration's folder when it is inside it (so a copied project folder
/// reads its own copy), absolute otherwise.
fn recorded_path(list: &Path, config: &Path) -> String {
    let list = std::fs::canonicalize(list).unwrap_or_else(|_| list.to_path_buf());
    let dir = Some(project_folder(config)).filter(|d| !d.as_os_str().is_empty());
    let dir = std::fs::canonicalize(dir.unwrap_or(Path::new(".")));
    match dir
        .ok()
        .and_then(|d| list.strip_prefix(d).ok().map(Path::to_path_buf))
    {
        Some(relative) => relative.display().to_string(),
        None => list.display().to_string(),
    }
}

fn names(parts: &[String]) -> String {
    let words: Vec<&str> = parts
        .iter()
        .map(|p| match p.as_str() {
            "subject" => "subject or preheader",
            "html" => "HTML part",
            "text" => "text part",
            "greeting" => "greeting",
            "sender" => "sender and list details",
            "audience" => "audience (who gets the issue or a section)",
            other => other,
        })
        .collect();
    match words.as_slice() {
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        [] => "contents".into(),
    }
}

/// What the audience says of the file's rows, and its counts.
struct Audience<'a> {
    marks: &'a LineMarks,
    reach: &'a mut Reach,
}

/// Whether to mail an address of the file; counts it either way. Returns
/// the journal entry, if any, for the samples.
fn decide<'e>(
    joined: &'e Joined<Entry>,
    policy: Policy,
    one_click: &HashSet<KeyHash>,
    audience: Audience,
    tally: &mut Tally,
) -> (bool, Option<&'e Entry>) {
    match joined {
        Joined::Missing { other } => {
            tally.not_in_file += 1;
            (false, Some(other))
        }
        Joined::Address {
            line: None,
            other: Some(entry),
            ..
        } => {
            tally.opted_out_since += 1;
            (false, Some(entry))
        }
        Joined::Address {
            line: None,
            other: None,
            ..
        } => (false, None),
        Joined::Address {
            hash,
            line: Some(line),
            other,
        } => {
            let entry = other.as_ref();
            let outside = audience.marks.outside(*line);
            audience
                .reach
                .count(!outside, audience.marks.sections(*line));
            // Out of the audience: not pending (unless they have it).
            if outside && entry.is_none_or(|e| e.state != Final::Accepted) {
                tally.outside_audience += 1;
                return (false, entry);
            }
            // Unsubscribed with the one-click link, not in the file yet.
            let clicked = policy.wants(entry) && one_click.contains(hash);
            let wanted = policy.wants(entry) && !clicked;
            match entry.map(|e| e.state) {
                None => tally.new += u64::from(!clicked),
                Some(Final::Deferred) => tally.deferred += u64::from(!clicked),
                Some(Final::Accepted) => tally.sent += 1,
                Some(Final::Failed) => {
                    tally.failed += 1;
                    tally.failed_retried += u64::from(wanted);
                }
                Some(Final::Uncertain) => {
                    tally.uncertain += 1;
                    tally.uncertain_resent += u64::from(wanted);
                }
            }
            tally.one_click += u64::from(clicked);
            (wanted, entry)
        }
    }
}

impl Tally {
    /// Messages this run sends (before `--limit`).
    pub fn to_send(&self) -> u64 {
        self.new + self.deferred + self.failed_retried + self.uncertain_resent
    }
}

/// The first few uncertain and possibly-twice recipients, by address.
#[derive(Default)]
struct Samples {
    uncertain: Vec<String>,
    twice: Vec<String>,
    twice_count: u64,
    error: Option<anyhow::Error>,
}

const SAMPLE: usize = 20;

impl Samples {
    /// Notes a journal entry; `uncertain` when the tally counts it as an
    /// uncertain recipient of this run.
    fn note(&mut self, entry: &Entry, uncertain: bool, lookup: &Lookup) {
        if entry.twice {
            self.twice_count += 1;
        }
        let wants_uncertain = uncertain && self.uncertain.len() < SAMPLE;
        let wants_twice = entry.twice && self.twice.len() < SAMPLE;
        if !(wants_uncertain || wants_twice) || self.error.is_some() {
            return;
        }
        match lookup.email(entry) {
            Ok(email) => {
                if wants_uncertain {
                    self.uncertain.push(email.clone());
                }
                if wants_twice {
                    self.twice.push(email);
                }
            }
            Err(e) => self.error = Some(e),
        }
    }
}

#[cfg(test)]
mod tests;
