//! `newsletter status`: how far an issue's sending has got.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::StatusArgs;
use crate::config::Config;
use crate::mark;
use crate::send::{Replay, State};
use crate::subscribers::{self, Status, SubscriberReader};

pub struct StatusRequest {
    pub issue: PathBuf,
    pub subscribers: Option<PathBuf>,
    pub failed_csv: Option<PathBuf>,
    pub apply_failures: bool,
}

impl From<StatusArgs> for StatusRequest {
    fn from(a: StatusArgs) -> Self {
        StatusRequest {
            issue: a.issue,
            subscribers: a.subscribers,
            failed_csv: a.failed_csv,
            apply_failures: a.apply_failures,
        }
    }
}

pub fn run(config: &Config, req: &StatusRequest) -> Result<ExitCode> {
    let issue = crate::issue::Issue::load(&req.issue)?;
    let replay = crate::send::replay(config, &issue.id)?;
    let list_path = req
        .subscribers
        .clone()
        .unwrap_or_else(|| config.paths.subscribers.clone());
    let reader = SubscriberReader::open(&list_path)?;
    let duplicates = subscribers::survey(&list_path)?.duplicates_index;
    let (mut accepted, mut failed, mut uncertain, mut deferred, mut pending) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    for subscriber in reader.flatten() {
        if subscriber.status != Status::Subscribed || duplicates.earlier(&subscriber).is_some() {
            continue;
        }
        match replay.states.get(&subscriber.key) {
            Some(State::Accepted) => accepted += 1,
            Some(State::Failed { .. }) => failed += 1,
            Some(State::Uncertain { .. }) => uncertain += 1,
            Some(State::Deferred { .. }) => deferred += 1,
            None => pending += 1,
        }
    }
    println!("issue:      {}", issue.id);
    println!(
        "journal:    {}",
        crate::send::journal_path(config, &issue.id).display()
    );
    println!("accepted:   {accepted}");
    println!("failed:     {failed}");
    println!("uncertain:  {uncertain}");
    println!("deferred:   {deferred}");
    println!("pending:    {pending}");
    for state in replay.states.values() {
        if let State::Uncertain { email } = state {
            println!("uncertain: {email}");
        }
    }
    if let Some(path) = &req.failed_csv {
        let mut writer = csv::Writer::from_path(path)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        writer.write_record(["email", "outcome", "reply"])?;
        let mut rows: Vec<(&str, &str, &str)> = replay
            .states
            .values()
            .filter_map(|s| match s {
                State::Failed { email, reply } => Some((email.as_str(), "failed", reply.as_str())),
                State::Deferred { email, reply } => {
                    Some((email.as_str(), "deferred", reply.as_str()))
                }
                _ => None,
            })
            .collect();
        rows.sort();
        for (email, outcome, reply) in &rows {
            writer.write_record([email, outcome, reply])?;
        }
        writer.flush()?;
        eprintln!("wrote {} row(s) to {}", rows.len(), path.display());
    }
    if req.apply_failures {
        apply_failures(&list_path, &replay)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Marks recipients that failed permanently as `bounced`, except policy
/// refusals (5.7.x), which are listed instead.
fn apply_failures(list: &Path, replay: &Replay) -> Result<()> {
    let mut addresses = BTreeSet::new();
    let mut refused = Vec::new();
    for state in replay.states.values() {
        if let State::Failed { email, reply } = state {
            if crate::bounces::is_policy_refusal(reply) {
                refused.push((email.as_str(), reply.as_str()));
            } else {
                addresses.insert(email.to_lowercase());
            }
        }
    }
    refused.sort();
    for (email, reply) in refused {
        println!(
            "not marked: {email}: {reply} (a policy refusal, about the sender or the content rather than the address)"
        );
    }
    let outcome = mark::mark(list, &addresses, Status::Bounced)?;
    outcome.print(list);
    Ok(())
}
