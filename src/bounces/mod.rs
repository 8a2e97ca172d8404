//! `newsletter bounces import`: reads bounce reports and marks bounced
//! addresses in the subscriber CSV.
//!
//! A hard bounce (5.x.x, action `failed`, and a status that says the address
//! is bad: [`classify::is_address_failure`]) marks its address at once; soft
//! bounces (4.x.x) are counted per issue in `bounces.toml` and mark it after
//! [`soft::ISSUES_TO_BOUNCE`] issues. Other permanent failures (a policy
//! refusal, 5.7.x; a message too big, 5.3.4; refused content, 5.6.x) are
//! about the sender or the message, so they are listed and mark nobody.

pub mod classify;
pub mod dsn;
pub mod soft;
pub mod source;

pub use classify::{Stage, is_address_failure, shared_replies};

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::model::config::Config;
use crate::model::subscribers::SubscriptionStatus;
use crate::status_column;

use dsn::Kind;
use soft::SoftBounces;

/// What `newsletter bounces import` was asked to do.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub paths: Vec<PathBuf>,
    pub subscribers: Option<PathBuf>,
}

/// Where soft bounces are counted: `bounces.toml` next to the configuration.
pub fn state_path(config: &Config) -> PathBuf {
    config.beside("bounces.toml")
}

/// Whether an SMTP reply or status is a policy refusal (5.7.x), which says
/// nothing about the address.
pub fn is_policy_refusal(reply: &str) -> bool {
    dsn::enhanced_status(reply).is_some_and(|s| s.starts_with("5.7."))
}

pub fn run(config: &Config, req: &ImportRequest) -> Result<ExitCode> {
    let list = req
        .subscribers
        .clone()
        .unwrap_or_else(|| config.paths.subscribers.clone());
    let state = state_path(config);
    let mut soft = SoftBounces::load(&state)?;
    let before = soft.clone();

    let mut hard: BTreeMap<String, String> = BTreeMap::new();
    let (mut messages, mut reports, mut skipped) = (0u64, 0u64, 0u64);
    let ignored = source::each(&req.paths, |item| {
        messages += 1;
        let report = match dsn::read(&item.bytes) {
            Ok(report) => report,
            Err(why) => {
                skipped += 1;
                eprintln!("skipped {}: {why}", item.name);
                return;
            }
        };
        reports += 1;
        for why in &report.problems {
            eprintln!("{}: {why}; that recipient is skipped", item.name);
        }
        for r in &report.recipients {
            let what = format!("{} {}", r.status, r.diagnostic);
            let what = what.trim_end();
            match (r.kind, &report.issue) {
                (Kind::Hard, _) => {
                    println!("hard bounce  {}  {what}", r.address);
                    hard.entry(r.address.clone()).or_insert(what.to_string());
                }
                (Kind::Soft, Some(issue)) => {
                    let count = soft.add(&r.address, issue).len();
                    println!(
                        "soft bounce  {}  {what}  (issue {issue}; {count} of {} issues)",
                        r.address,
                        soft::ISSUES_TO_BOUNCE
                    );
                }
                (Kind::Soft, None) => println!(
                    "soft bounce  {}  {what}  (not counted: the returned headers have no newsletter Message-ID)",
                    r.address
                ),
                (Kind::NotAddress, _) => println!(
                    "not marked   {}  {what}  ({})",
                    r.address,
                    classify::why_not_address(None, what)
                ),
                (Kind::NotFailure, _) => println!(
                    "not a bounce {}  {}  (not a failure: nothing to do)",
                    r.address, r.status
                ),
            }
        }
    })?;
    for path in &ignored {
        eprintln!("ignored {}: not an .eml or .mbox file", path.display());
    }
    println!("read {messages} message(s): {reports} bounce report(s), {skipped} skipped");

    let reached: BTreeSet<String> = soft.reached().map(|(a, _)| a.clone()).collect();
    for (address, issues) in soft.reached() {
        let issues: Vec<&str> = issues.iter().map(String::as_str).collect();
        println!(
            "{address}: soft bounces in {} issues ({}): marking it bounced",
            issues.len(),
            issues.join(", ")
        );
    }
    let addresses: BTreeSet<String> = hard.keys().cloned().chain(reached).collect();
    let outcome = status_column::set(&list, &addresses, SubscriptionStatus::Bounced)?;
    outcome.print(&list);

    // Addresses now marked need no more counting.
    for address in outcome
        .changed
        .iter()
        .chain(outcome.already.iter().map(|(a, _)| a))
    {
        soft.remove(address);
    }
    if soft != before {
        soft.save(&state)?;
    }
    Ok(ExitCode::SUCCESS)
}
