//! `newsletter status`: how far an issue's sending has got, from the journal.
//!
//! Outcome counts come from the journal alone, whatever subscriber file is
//! given; `pending` compares the journal with a subscriber file (the one the
//! journal's first run used, or `--subscribers`) and names it. Recipients who
//! may hold two copies are listed from the journal, so a kill -9 that lost a
//! run's summary loses nothing here.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cli::StatusArgs;
use crate::journal::{self, Entry, Final, Kind, Line, Lookup, Settled, Stage};
use crate::model::audience::LineMarks;
use crate::model::config::Config;
use crate::model::issue::Issue;
use crate::model::subscribers::{self, Joined, KeyHash, SubscriptionStatus};
use crate::status_column;

pub struct StatusRequest {
    pub issue: PathBuf,
    pub subscribers: Option<PathBuf>,
    pub failed_csv: Option<PathBuf>,
    pub apply_failures: bool,
    pub force: bool,
    pub journal: Option<PathBuf>,
    pub records: bool,
}

impl From<StatusArgs> for StatusRequest {
    fn from(a: StatusArgs) -> Self {
        StatusRequest {
            issue: a.issue,
            subscribers: a.list.subscribers,
            failed_csv: a.failed_csv,
            apply_failures: a.apply_failures,
            force: a.force,
            journal: a.journal,
            records: a.records,
        }
    }
}

/// What the journal says, counted.
#[derive(Debug, Default)]
struct Counts {
    accepted: u64,
    failed: u64,
    deferred: u64,
    uncertain: u64,
    twice: u64,
    pending: u64,
    /// Never mailed, subscribed in the file, unsubscribed in the one-click log.
    one_click: u64,
    not_in_file: u64,
    /// Subscribed, never mailed, but outside the issue's audience.
    outside_audience: u64,
    /// The issue's audience in words, when it has one.
    audience: Option<String>,
}

/// A permanent failure as the journal has it.
struct Failure {
    email: String,
    reply: String,
    stage: Option<Stage>,
}

pub fn run(config: &Config, req: &StatusRequest) -> Result<ExitCode> {
    let issue = Issue::load(&req.issue)?;
    let journal_path = req
        .journal
        .clone()
        .unwrap_or_else(|| journal::path(&config.paths.journal, &issue.id));
    if req.records {
        print_records(&journal_path)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Changing the subscriber file from the journal needs the journal to
    // hold still: no send of this issue at the same time.
    let _lock = if req.apply_failures {
        Some(journal::lock(
            &config.paths.journal,
            &issue.id,
            &format!("applying the failures of `{}`", issue.id),
        )?)
    } else {
        None
    };
    let mut replay = read_journal(config, req, &issue, &journal_path)?;
    let list_path = match (&req.subscribers, &replay.header) {
        (Some(path), _) => path.clone(),
        // Recorded relative to the configuration's folder, or absolute.
        (None, Some(header)) if !header.subscribers.is_empty() => {
            config.beside(&header.subscribers)
        }
        _ => config.paths.subscribers.clone(),
    };
    let (settled, lookup) = replay.settled()?;
    let (one_click, _) = crate::unsubscribe::log::read_all(&config.paths.unsubscribe_log)?;
    let standing = Standing::compare(&issue, &list_path, settled, &lookup, &one_click)?;
    print_counts(
        &issue.id,
        &journal_path,
        &list_path,
        &standing.counts,
        &standing.uncertain,
        &standing.twice,
    )?;
    if let Some(path) = &req.failed_csv {
        write_failed_csv(path, &lookup, &standing.failed, &standing.deferred)?;
    }
    if req.apply_failures {
        let failures: Vec<Failure> = standing
            .failed
            .iter()
            .map(|at| failure_at(&lookup, *at))
            .collect::<Result<_>>()?;
        return apply_failures(&list_path, &failures, req.force);
    }
    Ok(ExitCode::SUCCESS)
}

/// Replays the journal. A journal named with --journal is read for what it
/// holds, wherever it came from; the issue's own must belong to it.
fn read_journal(
    config: &Config,
    req: &StatusRequest,
    issue: &Issue,
    journal_path: &Path,
) -> Result<journal::Replay> {
    let expect = journal::Expect {
        issue: &issue.id,
        list: &config.list.id,
    };
    let inspect =
        crate::hint::Hint::new(&config.path).command("status", &[req.issue.display().to_string()]);
    journal::replay(
        journal_path,
        req.journal.is_none().then_some(expect),
        0,
        &inspect,
    )
}

/// The journal's recipients beside the subscriber file: the counts, the
/// addresses listed, and the outcome lines `--failed-csv` and
/// `--apply-failures` read.
#[derive(Default)]
struct Standing {
    counts: Counts,
    uncertain: Vec<String>,
    twice: Vec<String>,
    /// Offsets of the outcome lines of permanent failures.
    failed: Vec<u64>,
    /// Offsets of the outcome lines of deferrals.
    deferred: Vec<u64>,
    /// The first error of the walk, which cannot return it.
    error: Option<anyhow::Error>,
}

impl Standing {
    /// Walks the journal's recipients and the subscriber file together, by
    /// address, in the survey's constant memory.
    fn compare(
        issue: &Issue,
        list_path: &Path,
        settled: Settled,
        lookup: &Lookup,
        one_click: &HashSet<KeyHash>,
    ) -> Result<Standing> {
        let mut standing = Standing::default();
        let marks = std::cell::RefCell::new(LineMarks::default());
        subscribers::survey_joined(
            list_path,
            subscribers::open_list(list_path)?,
            settled.map(|r| r.map(|e| (e.hash, e))),
            |columns, subscriber| {
                marks
                    .borrow_mut()
                    .note(&issue.audiences, columns, subscriber)
            },
            |joined| {
                let outside = |line: u64| marks.borrow().outside(line);
                standing.meet(&joined, lookup, one_click, outside);
                false
            },
        )?;
        if let Some(e) = standing.error.take() {
            return Err(e);
        }
        standing.counts.audience =
            (!issue.audiences.issue.is_everyone()).then(|| issue.audiences.issue.to_string());
        Ok(standing)
    }

    /// One address of either side: a journal recipient is counted by its
    /// outcome; a subscriber the journal has not mailed yet is pending,
    /// outside the audience, or unsubscribed by one-click.
    fn meet(
        &mut self,
        joined: &Joined<Entry>,
        lookup: &Lookup,
        one_click: &HashSet<KeyHash>,
        outside: impl Fn(u64) -> bool,
    ) {
        match joined {
            Joined::Address { hash, line, other } => {
                if let Some(entry) = other {
                    self.note(entry, lookup);
                } else if line.is_some_and(outside) {
                    self.counts.outside_audience += 1;
                } else if line.is_some() && one_click.contains(hash) {
                    self.counts.one_click += 1;
                } else if line.is_some() {
                    self.counts.pending += 1;
                }
            }
            Joined::Missing { other } => {
                self.counts.not_in_file += 1;
                self.note(other, lookup);
            }
        }
    }

    /// Counts one journal recipient and keeps what the lists need.
    fn note(&mut self, entry: &Entry, lookup: &Lookup) {
        if let Err(e) = self.try_note(entry, lookup) {
            self.error.get_or_insert(e);
        }
    }

    fn try_note(&mut self, entry: &Entry, lookup: &Lookup) -> Result<()> {
        let counts = &mut self.counts;
        match entry.state {
            Final::Accepted => counts.accepted += 1,
            Final::Failed => {
                counts.failed += 1;
                self.failed.extend(entry.outcome_at);
            }
            Final::Deferred => {
                counts.deferred += 1;
                self.deferred.extend(entry.outcome_at);
            }
            Final::Uncertain => {
                counts.uncertain += 1;
                self.uncertain.push(lookup.email(entry)?);
            }
        }
        if entry.twice {
            counts.twice += 1;
            self.twice.push(lookup.email(entry)?);
        }
        Ok(())
    }
}

fn print_counts(
    issue: &str,
    journal_path: &Path,
    list_path: &Path,
    counts: &Counts,
    uncertain: &[String],
    twice: &[String],
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "issue:      {issue}")?;
    writeln!(out, "journal:    {}", journal_path.display())?;
    writeln!(out, "accepted:   {}", counts.accepted)?;
    writeln!(out, "failed:     {}", counts.failed)?;
    writeln!(out, "uncertain:  {}", counts.uncertain)?;
    writeln!(out, "deferred:   {}", counts.deferred)?;
    writeln!(out, "possibly twice: {}", counts.twice)?;
    writeln!(out, "subscribers: {}", list_path.display())?;
    writeln!(out, "pending:    {}", counts.pending)?;
    if let Some(audience) = &counts.audience {
        writeln!(out, "audience:   {audience}")?;
        writeln!(
            out,
            "outside the audience (not pending): {}",
            counts.outside_audience
        )?;
    }
    if counts.one_click > 0 {
        writeln!(
            out,
            "unsubscribed by one-click, not yet in the file (not mailed): {}",
            counts.one_click
        )?;
    }
    if counts.not_in_file > 0 {
        writeln!(
            out,
            "in the journal but not in this file: {}",
            counts.not_in_file
        )?;
    }
    let mut uncertain = uncertain.to_vec();
    uncertain.sort();
    for email in &uncertain {
        writeln!(out, "uncertain: {email}")?;
    }
    let mut twice = twice.to_vec();
    twice.sort();
    for email in &twice {
        writeln!(out, "possibly twice: {email}")?;
    }
    Ok(())
}

fn failure_at(lookup: &Lookup, at: u64) -> Result<Failure> {
    let line = lookup.line(at)?;
    Ok(Failure {
        email: if line.email.is_empty() {
            line.key
        } else {
            line.email
        },
        reply: line.reply,
        stage: line.stage,
    })
}

fn write_failed_csv(path: &Path, lookup: &Lookup, failed: &[u64], deferred: &[u64]) -> Result<()> {
    let mut rows = Vec::new();
    for (outcome, offsets) in [("failed", failed), ("deferred", deferred)] {
        for at in offsets {
            let f = failure_at(lookup, *at)?;
            let stage = f.stage.map_or("", Stage::as_str);
            rows.push((f.email, outcome, f.reply, stage));
        }
    }
    rows.sort();
    let mut writer = csv::Writer::from_path(path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    writer.write_record(["email", "outcome", "reply", "stage"])?;
    for (email, outcome, reply, stage) in &rows {
        writer.write_record([email.as_str(), outcome, reply, stage])?;
    }
    writer.flush()?;
    eprintln!("wrote {} row(s) to {}", rows.len(), path.display());
    Ok(())
}

/// Marks `bounced` the recipients whose address was refused at RCPT TO;
/// refusals of the message (DATA) or the sender (MAIL FROM), and policy
/// refusals, are listed instead. A reply shared by many failures is a
/// sending problem: nothing is applied without `force`.
fn apply_failures(list: &Path, failures: &[Failure], force: bool) -> Result<ExitCode> {
    let mut addresses = BTreeSet::new();
    let mut listed = Vec::new();
    for f in failures {
        if crate::bounces::is_address_failure(f.stage, &f.reply) {
            addresses.insert(f.email.to_lowercase());
        } else {
            listed.push(f);
        }
    }
    listed.sort_by(|a, b| a.email.cmp(&b.email));
    for f in &listed {
        let why = crate::bounces::classify::why_not_address(f.stage, &f.reply);
        println!("not marked: {}: {} ({why})", f.email, f.reply);
    }
    let pairs: Vec<(String, String)> = failures
        .iter()
        .filter(|f| addresses.contains(&f.email.to_lowercase()))
        .map(|f| (f.email.clone(), f.reply.clone()))
        .collect();
    let shared = crate::bounces::shared_replies(&pairs);
    if !shared.is_empty() && !force {
        for (reply, count) in &shared {
            println!("{count} failures share the reply: {reply}");
        }
        bail!(
            "{} of the {} address refusals share one reply, which looks like a problem with the sending rather than with the addresses; nothing was marked. Look at the replies above (`newsletter status ISSUE --failed-csv failed.csv` lists them all); if they really are bad addresses, run again with --force",
            shared.iter().map(|(_, n)| n).sum::<usize>(),
            pairs.len()
        );
    }
    let outcome = status_column::set(list, &addresses, SubscriptionStatus::Bounced)?;
    outcome.print(list);
    Ok(ExitCode::SUCCESS)
}

/// Prints every line of a journal in words, damaged ones included.
fn print_records(path: &Path) -> Result<()> {
    let Some(file) = journal::open_checked(path, false)? else {
        bail!("there is no journal `{}`", path.display());
    };
    let now = journal::now();
    let mut out = std::io::stdout().lock();
    let mut lines = journal::RawLines::new(file);
    while let Some(journal::RawLine {
        number,
        body,
        complete,
        ..
    }) = lines
        .next_line()
        .with_context(|| format!("cannot read `{}`", path.display()))?
    {
        match Line::decode(body, now) {
            Ok(line) => writeln!(out, "{number:>6}  {}", describe(&line))?,
            Err(why) => writeln!(
                out,
                "{number:>6}  DAMAGED{}: {why}: {}",
                if complete { "" } else { " (cut short)" },
                String::from_utf8_lossy(&body[..body.len().min(200)]).escape_debug()
            )?,
        }
    }
    Ok(())
}

/// `; audience: …` when the line records audiences.
fn audience_words(line: &Line) -> String {
    line.audience
        .as_deref()
        .map(|a| format!("; audience: {}", a.replace('\n', "; ")))
        .unwrap_or_default()
}

fn describe(line: &Line) -> String {
    let time = jiff::Timestamp::from_microsecond((line.t * 1e6) as i64)
        .map_or_else(|_| line.t.to_string(), |t| t.to_string());
    match line.kind() {
        Kind::Journal => format!(
            "{time}  journal of issue `{}` for list `{}`, subscribers `{}`{}",
            line.issue.as_deref().unwrap_or(""),
            line.list.as_deref().unwrap_or(""),
            line.subscribers.as_deref().unwrap_or(""),
            audience_words(line)
        ),
        Kind::ChangesAccepted => {
            format!(
                "{time}  changes to the issue accepted{}",
                audience_words(line)
            )
        }
        kind => {
            let who = if line.email.is_empty() {
                &line.key
            } else {
                &line.email
            };
            let mut text = format!("{time}  {:<9} {who}", format!("{kind:?}").to_lowercase());
            if let Some(stage) = line.stage {
                text.push_str(&format!("  at {}", stage.as_str()));
            }
            if !line.reply.is_empty() {
                text.push_str(&format!("  {}", line.reply));
            }
            text
        }
    }
}
