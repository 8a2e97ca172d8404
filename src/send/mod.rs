//! `newsletter send`: one personalised message per subscribed address,
//! within the configured limits, with every outcome journaled.
//!
//! A run is four steps, each a function: [`plan`] (lock the issue, check
//! the issue, read the journal and the subscriber file, work out who is
//! mailed), [`confirm`] (after [`summary::show`]), [`deliver::deliver`]
//! (execute) and [`report::show`]. `--test-to` is [`test_send`].

mod deliver;
mod limiter;
mod pipeline;
pub mod plan;
mod report;
mod summary;
mod suppress;
mod test_send;
mod transport;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::hint::Hint;
use crate::model::config::Config;
use crate::model::finding::Severity;
use crate::model::subscribers::Subscriber;
use crate::preview::PREVIEW_SECRET;
use crate::render::message::Composer;
use crate::token::Signer;
use plan::{Plan, Policy};
use summary::{audience_prompt, audience_summary};
use test_send::{TestSend, send_test, test_subscriber};

/// What to send, resolved from the command line.
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    pub issue: PathBuf,
    pub subscribers: Option<PathBuf>,
    pub dry_run: bool,
    pub test_to: Vec<String>,
    pub limit: Option<u64>,
    pub yes: bool,
    pub skip_invalid: bool,
    pub retry_failed: bool,
    pub resend_uncertain: bool,
    pub accept_changes: bool,
    /// With `test_to`: build the test messages as this subscriber's.
    pub as_email: Option<String>,
}

impl SendRequest {
    /// `--subscribers FILE` as given, or nothing.
    fn list_args(&self) -> Vec<String> {
        self.subscribers
            .iter()
            .flat_map(|list| ["--subscribers".into(), list.display().to_string()])
            .collect()
    }

    /// The command that continues this run, for resume hints: the same
    /// configuration, subscriber file and choices, but never
    /// `--resend-uncertain` (that is a decision to take again).
    fn resume(&self, hint: &Hint) -> String {
        let mut args = vec![self.issue.display().to_string()];
        args.extend(self.list_args());
        for (on, flag) in [
            (self.skip_invalid, "--skip-invalid"),
            (self.retry_failed, "--retry-failed"),
            (self.yes, "--yes"),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        if let Some(limit) = self.limit {
            args.extend(["--limit".into(), limit.to_string()]);
        }
        hint.command("send", &args)
    }

    /// `newsletter status` for this issue and file.
    fn status(&self, hint: &Hint, extra: &[&str]) -> String {
        let mut args = vec![self.issue.display().to_string()];
        args.extend(self.list_args());
        args.extend(extra.iter().map(|s| s.to_string()));
        hint.command("status", &args)
    }
}

pub fn run(config: &Config, req: &SendRequest) -> Result<ExitCode> {
    let loaded = crate::render::load_issue(config, &req.issue)?;
    let rendered = &loaded.rendered;
    let hint = Hint::new(&config.path);
    let list_path = req
        .subscribers
        .clone()
        .unwrap_or_else(|| config.paths.subscribers.clone());
    let secret = secret(config, req.dry_run)?;

    if !req.test_to.is_empty() {
        for f in crate::check::sending::for_test_send(config, &loaded)? {
            eprintln!("warning: {f} [{}]", f.code);
        }
        let test = TestSend {
            addresses: &req.test_to,
            as_subscriber: test_subscriber(req.as_email.as_deref(), &list_path)?,
            dry_run: req.dry_run,
        };
        return send_test(config, rendered, &secret, test);
    }
    // One sender per issue, from before the journal is read until the
    // last outcome is on disk.
    let _lock = if req.dry_run {
        None
    } else {
        Some(crate::journal::lock(
            &config.paths.journal,
            &rendered.issue_id,
            &format!("sending `{}`", rendered.issue_id),
        )?)
    };
    let plan = plan(config, req, &loaded, &list_path)?;
    let columns = plan.survey.columns.clone();
    let signer = Signer::new(&config.list.id, &secret);
    let composer = Composer::new(config, rendered, &columns, signer, "")?;
    let planned = req
        .limit
        .map_or(plan.tally.to_send(), |l| l.min(plan.tally.to_send()));
    if req.dry_run {
        for line in audience_summary(rendered, &plan) {
            eprintln!("{line}");
        }
        return dry_run(&plan, &composer, req.limit);
    }
    summary::show(config, req, &hint, rendered, &plan, planned);
    if planned == 0 {
        eprintln!("Nothing to send.");
        return Ok(ExitCode::SUCCESS);
    }
    if !req.yes {
        confirm(&rendered.issue_id, &audience_prompt(rendered, &plan))?;
    }
    let started = Instant::now();
    let report = deliver::deliver(config, &plan, &composer, req.limit, planned)?;
    Ok(report::show(config, req, &hint, &report, started.elapsed()))
}

/// The unsubscribe secret; a dry run without it uses a placeholder.
fn secret(config: &Config, dry_run: bool) -> Result<Vec<u8>> {
    match (config.unsubscribe_secret(), dry_run) {
        (Some(s), _) => Ok(s.into_bytes()),
        (None, true) => {
            eprintln!(
                "warning: {}. This dry run uses a placeholder",
                config.missing_secret("a real send would refuse to start", false)
            );
            Ok(PREVIEW_SECRET.to_vec())
        }
        (None, false) => bail!(
            "{}",
            config.missing_secret(
                "unsubscribe links cannot be signed and nothing was sent",
                false
            )
        ),
    }
}

/// Step 1: everything that can refuse the run, and who it mails.
fn plan(
    config: &Config,
    req: &SendRequest,
    loaded: &crate::render::Loaded,
    list_path: &std::path::Path,
) -> Result<Plan> {
    let policy = Policy {
        retry_failed: req.retry_failed,
        resend_uncertain: req.resend_uncertain,
    };
    let s = &config.sending;
    let keep_times = if s.per_day > 0 || s.per_hour > 0 {
        s.per_day.max(s.per_hour) as usize
    } else {
        0
    };
    let inspect = req.status(&Hint::new(&config.path), &[]);
    let plan = plan::make(&plan::Inputs {
        rendered: &loaded.rendered,
        config,
        list_path,
        policy,
        accept_changes: req.accept_changes,
        keep_times,
        inspect: &inspect,
    })?;
    refuse_check_errors(config, loaded, &plan)?;
    refuse_invalid_rows(req, &plan)?;
    if plan.torn_journal {
        eprintln!(
            "note: the last line of `{}` was cut short by a crash and is ignored; the recipient it was about is uncertain",
            plan.journal_path.display()
        );
    }
    Ok(plan)
}

/// `send` refuses what `check` calls an error for this issue and list.
fn refuse_check_errors(config: &Config, loaded: &crate::render::Loaded, plan: &Plan) -> Result<()> {
    // A neutral subscriber: what is refused is the issue, not one row's data
    // (the survey reports rows).
    let sample = Subscriber::test("supporter@example.org", 0);
    let mut findings =
        crate::check::findings_for_send(config, loaded, &plan.survey.columns, &sample, &plan.reach);
    let now = crate::model::dates::now()?;
    findings.extend(crate::check::started::at_send(
        &loaded.issue,
        &loaded.archive,
        &now,
    ));
    let shown: Vec<_> = findings
        .iter()
        .filter(|f| f.code != "missing-password")
        .collect();
    for f in shown.iter().filter(|f| f.severity == Severity::Warning) {
        eprintln!("warning: {f} [{}]", f.code);
    }
    let errors: Vec<_> = shown
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    for f in &errors {
        eprintln!("error: {f} [{}]", f.code);
    }
    bail!(
        "`newsletter check` finds {} error(s) in what would be sent (listed above); nothing was sent and nothing was connected to. Fix them, run `newsletter check {}`, then send again",
        errors.len(),
        loaded.issue.source.path.display()
    )
}

/// Rows that are invalid, unreadable or both subscribed and not stop the
/// run unless `--skip-invalid`.
fn refuse_invalid_rows(req: &SendRequest, plan: &Plan) -> Result<()> {
    let survey = &plan.survey;
    let list_path = &plan.list_path;
    for warning in &survey.warnings {
        eprintln!("warning: {warning}");
    }
    for problem in &survey.problems {
        eprintln!("{}: {problem}", list_path.display());
    }
    let problem_count = survey.invalid
        + survey.unknown_status
        + survey.duplicates
        + survey.conflicts
        + survey.malformed;
    if (survey.problems.len() as u64) < problem_count {
        eprintln!(
            "(only the first {} of {problem_count} problems are listed)",
            survey.problems.len()
        );
    }
    // An unreadable row may hide addresses (a `"` never closed swallows the
    // rows after it): like an invalid one, it stops the run.
    let blocking = survey.invalid + survey.unknown_status + survey.conflicts + survey.malformed;
    if blocking > 0 && !req.skip_invalid {
        let found = counted(&[
            (survey.invalid, "invalid address(es)"),
            (survey.unknown_status, "unknown status value(s)"),
            (
                survey.conflicts,
                "address(es) listed as both subscribed and not",
            ),
            (survey.malformed, "unreadable row(s)"),
        ]);
        bail!(
            "`{}` has {found}; nothing was sent. Fix those lines, or pass --skip-invalid to send to the rest",
            list_path.display(),
        );
    }
    if survey.duplicates > 0 {
        eprintln!(
            "note: {} duplicate address(es) will be sent once",
            survey.duplicates
        );
    }
    Ok(())
}

fn dry_run(plan: &Plan, composer: &Composer, limit: Option<u64>) -> Result<ExitCode> {
    let started = Instant::now();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut bytes = 0u64;
    let count = deliver::produce(plan, composer, limit, &stop, |job| {
        bytes += job.bytes.len() as u64;
        true
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "Dry run: built {count} message(s), {:.1} KB on average, in {elapsed:.2} s ({:.0} messages/s). Nothing was sent or recorded.",
        bytes as f64 / count.max(1) as f64 / 1024.0,
        count as f64 / elapsed.max(0.000_001)
    );
    Ok(ExitCode::SUCCESS)
}

/// Asks the user to type the issue id.
fn confirm(issue_id: &str, audience: &str) -> Result<()> {
    eprint!("Type the issue id `{issue_id}` to send{audience}, or anything else to cancel: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the confirmation")?;
    if read == 0 {
        bail!("not confirmed: no input (pass --yes to send without asking). Nothing was sent");
    }
    if line.trim() != issue_id {
        bail!(
            "not confirmed: you typed `{}`, not `{issue_id}`. Nothing was sent",
            line.trim()
        );
    }
    Ok(())
}

/// The counts that are not zero, in words: `2 invalid address(es) and 1
/// unreadable row(s)`.
fn counted(parts: &[(u64, &str)]) -> String {
    let said: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    match said.split_last() {
        None => "no problems".to_string(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_names_only_what_was_found() {
        let parts = |a, b, c| [(a, "invalid"), (b, "unknown"), (c, "unreadable")];
        assert_eq!(counted(&parts(0, 1, 0)), "1 unknown");
        assert_eq!(counted(&parts(2, 0, 1)), "2 invalid and 1 unreadable");
        assert_eq!(
            counted(&parts(1, 1, 1)),
            "1 invalid, 1 unknown and 1 unreadable"
        );
        assert_eq!(counted(&parts(0, 0, 0)), "no problems");
    }
}
