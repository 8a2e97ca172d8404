//! `newsletter send`: one personalised message per subscribed address,
//! within the configured limits, with every outcome journaled.
//!
//! A run is four steps, each a function: [`plan`] (lock the issue, check
//! the issue, read the journal and the subscriber file, work out who is
//! mailed), [`confirm`], [`deliver::deliver`] (execute) and [`report`].

mod deliver;
mod limiter;
mod pipeline;
pub mod plan;
mod suppress;
mod transport;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::hint::Hint;
use crate::model::config::{Config, Transport};
use crate::model::finding::Severity;
use crate::model::subscribers::{Columns, Subscriber};
use crate::preview::PREVIEW_SECRET;
use crate::render::Rendered;
use crate::render::message::Composer;
use crate::token::Signer;
use deliver::{Job, Report, Sender, Stop, runtime};
use plan::{Plan, Policy};
use transport::Outcome;

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
    summarise(config, req, &hint, rendered, &plan, planned);
    if planned == 0 {
        eprintln!("Nothing to send.");
        return Ok(ExitCode::SUCCESS);
    }
    if !req.yes {
        confirm(&rendered.issue_id, &audience_prompt(rendered, &plan))?;
    }
    let started = Instant::now();
    let report = deliver::deliver(config, &plan, &composer, req.limit, planned)?;
    Ok(self::report(config, req, &hint, &report, started.elapsed()))
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

/// What the run will do, before it asks.
fn summarise(
    config: &Config,
    req: &SendRequest,
    hint: &Hint,
    rendered: &Rendered,
    plan: &Plan,
    planned: u64,
) {
    let t = &plan.tally;
    let survey = &plan.survey;
    eprintln!(
        "Issue `{}`: \"{}\"\nSubscribers: `{}`",
        rendered.issue_id,
        rendered.subject,
        plan.list_path.display()
    );
    for line in audience_summary(rendered, plan) {
        eprintln!("{line}");
    }
    eprintln!(
        "  to mail now: {} ({} new, {} deferred earlier{}{})",
        t.to_send(),
        t.new,
        t.deferred,
        if t.failed_retried > 0 {
            format!(", {} failed earlier (--retry-failed)", t.failed_retried)
        } else {
            String::new()
        },
        if t.uncertain_resent > 0 {
            format!(", {} uncertain (--resend-uncertain)", t.uncertain_resent)
        } else {
            String::new()
        },
    );
    let opted_out: u64 = survey.opted_out.iter().map(|(_, n)| n).sum();
    let mut left_out = vec![format!("already sent {}", t.sent)];
    if !rendered.audiences.issue.is_everyone() {
        left_out.push(format!("outside the audience {}", t.outside_audience));
    }
    left_out.extend([
        format!(
            "unsubscribed {}",
            (survey.unsubscribed + survey.complained).saturating_sub(opted_out)
        ),
        format!("bounced {}", survey.bounced),
        format!(
            "invalid {}",
            survey.invalid + survey.unknown_status + survey.malformed
        ),
        format!("duplicates {}", survey.duplicates),
    ]);
    for (column, n) in survey.opted_out.iter().filter(|(_, n)| *n > 0) {
        left_out.push(format!("opted out in `{column}` {n}"));
    }
    if t.failed > t.failed_retried {
        left_out.push(format!("failed earlier {}", t.failed - t.failed_retried));
    }
    if t.uncertain > t.uncertain_resent {
        left_out.push(format!("uncertain {}", t.uncertain - t.uncertain_resent));
    }
    if t.one_click > 0 {
        left_out.push(format!(
            "unsubscribed by one-click, not yet in the file {}",
            t.one_click
        ));
    }
    if t.opted_out_since > 0 {
        left_out.push(format!(
            "in the journal but no longer subscribed {}",
            t.opted_out_since
        ));
    }
    left_out.push(format!(
        "in the journal but no longer in this file {}",
        t.not_in_file
    ));
    eprintln!("  left out: {}", left_out.join(", "));
    if t.one_click > 0 {
        let mut args = vec![
            "--from-file".to_string(),
            config.paths.unsubscribe_log.display().to_string(),
        ];
        args.extend(req.list_args());
        eprintln!(
            "note: {} address(es) unsubscribed with the one-click link (`{}`) are still `subscribed` in `{}`: they are not mailed. Apply them to the file with\n  {}",
            t.one_click,
            config.paths.unsubscribe_log.display(),
            plan.list_path.display(),
            hint.command("unsubscribe", &args)
        );
    }
    if !plan.uncertain_sample.is_empty() {
        eprintln!(
            "{} recipient(s) are uncertain: a message was in flight when an earlier run stopped, so they may or may not have it:",
            t.uncertain
        );
        for email in &plan.uncertain_sample {
            eprintln!("  {email}");
        }
        if t.uncertain > plan.uncertain_sample.len() as u64 {
            eprintln!(
                "  … and {} more (see `newsletter status`)",
                t.uncertain - plan.uncertain_sample.len() as u64
            );
        }
        if req.resend_uncertain {
            eprintln!("they will be sent again (--resend-uncertain)");
        } else {
            eprintln!("they are skipped; pass --resend-uncertain to send to them again");
        }
    }
    if plan.twice > 0 {
        eprintln!(
            "{} recipient(s) may have two copies already (see `newsletter status`).",
            plan.twice
        );
    }
    eprintln!(
        "This run: {planned} message(s) via {}\nLimits: {}",
        describe_transport(config),
        describe_limits(config)
    );
    if let Some(estimate) = estimate(config, planned) {
        eprintln!("Estimated duration: {estimate}");
    }
}

/// Step 4: the outcome, and what to do next; the exit code.
fn report(
    config: &Config,
    req: &SendRequest,
    hint: &Hint,
    report: &Report,
    elapsed: Duration,
) -> ExitCode {
    let elapsed = elapsed.as_secs_f64();
    eprintln!(
        "Accepted {} · failed {} · deferred {}{}{} in {:.1} s ({:.0} messages/s)",
        report.accepted,
        report.failed,
        report.deferred,
        if report.uncertain > 0 {
            format!(" · uncertain {}", report.uncertain)
        } else {
            String::new()
        },
        if report.suppressed > 0 {
            format!(
                " · not sent, unsubscribed during the run {}",
                report.suppressed
            )
        } else {
            String::new()
        },
        elapsed,
        report.accepted as f64 / elapsed.max(0.001)
    );
    let status = req.status(hint, &[]);
    if !report.lost.is_empty() {
        eprintln!(
            "{} message(s) lost their connection after they had been sent and were sent again (RFC 5321 treats that as a temporary failure); if the server had kept the first copy, these recipients have two (`{status}` lists them as possibly twice):",
            report.lost.len(),
        );
        for email in report.lost.iter().take(20) {
            eprintln!("  {email}");
        }
        if report.lost.len() > 20 {
            eprintln!("  … and {} more", report.lost.len() - 20);
        }
    }
    if report.uncertain > 0 {
        let mut resend = req.clone();
        resend.yes = false;
        eprintln!(
            "{} message(s) got no answer after they were sent, so the server may have them: they are uncertain and not sent again unless you run\n  {} --resend-uncertain\n(which may deliver them twice; `{status}` lists them).",
            report.uncertain,
            resend.resume(hint)
        );
    }
    let resume = req.resume(hint);
    match &report.stop {
        Some(Stop::Interrupted) => {
            eprintln!(
                "Interrupted. Messages in flight were finished and recorded. Run the same command again to continue:\n  {resume}"
            );
            ExitCode::from(130)
        }
        Some(Stop::DailyLimit(wait)) => {
            eprintln!(
                "The daily limit of {} messages is reached. Run the same command again in {} to continue:\n  {resume}",
                config.sending.per_day,
                human_duration(*wait)
            );
            ExitCode::SUCCESS
        }
        Some(Stop::TooManyFailures(reply)) => {
            // Those refused in this run were most likely refused for the
            // same reason: they are tried again.
            let mut retry = req.clone();
            retry.retry_failed = true;
            eprintln!(
                "Stopped after {} failures in a row; the last reply was:\n  {reply}\nThis usually means the login, the sender address or a sending policy is refused; the command below also tries again the recipients refused permanently (in this run and earlier ones, --retry-failed). Fix it, then continue with:\n  {}",
                config.sending.max_consecutive_failures,
                retry.resume(hint)
            );
            ExitCode::from(1)
        }
        Some(Stop::RelayQuota(reply)) => {
            eprintln!(
                "The relay's daily sending quota is used up; it said:\n  {reply}\nNothing is lost: run the same command again tomorrow (or once the relay's quota is raised) to continue:\n  {resume}"
            );
            ExitCode::SUCCESS
        }
        Some(Stop::Throttled(reply)) => {
            eprintln!(
                "Stopped: the relay has refused every message as sent too fast for {} minutes; the last reply was:\n  {reply}\nNothing is lost. Ask the relay's provider about your sending limits (or lower `per-second` in [sending]), then continue with:\n  {resume}",
                deliver::throttle_patience_minutes()
            );
            ExitCode::from(1)
        }
        Some(Stop::Unreadable { path, why }) => {
            eprintln!(
                "Stopped: {why}. Messages in flight were finished and recorded. Fix `{}`, then continue with:\n  {resume}",
                path.display()
            );
            ExitCode::from(2)
        }
        None if report.failed > 0 || report.deferred > 0 || report.uncertain > 0 => {
            eprintln!(
                "Some recipients were not accepted; see `{}`. Deferred ones are retried by:\n  {resume}",
                req.status(hint, &["--failed-csv", "failed.csv"])
            );
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
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

/// What `--test-to` sends.
struct TestSend<'a> {
    addresses: &'a [String],
    /// `--as`: the subscriber whose message it is, and the file's columns.
    as_subscriber: Option<(Subscriber, Columns)>,
    dry_run: bool,
}

/// The row of `--as EMAIL` in the subscriber file.
fn test_subscriber(
    email: Option<&str>,
    list_path: &std::path::Path,
) -> Result<Option<(Subscriber, Columns)>> {
    let Some(email) = email else {
        return Ok(None);
    };
    let key = email.trim().to_lowercase();
    let mut reader = crate::model::subscribers::SubscriberReader::open(list_path)?;
    let columns = reader.columns().clone();
    let found = reader
        .by_ref()
        .filter_map(Result::ok)
        .find(|s| s.key == key);
    match found {
        Some(subscriber) => Ok(Some((subscriber, columns))),
        None => bail!(
            "--as `{}`: no subscriber with that address in `{}`; give an address from the file",
            email.trim(),
            list_path.display()
        ),
    }
}

/// `--test-to`: the issue to staff addresses, subject marked, no journal.
/// With `--as`, each is the message that subscriber would get (their
/// merge fields and sections), sent to the test address.
fn send_test(
    config: &Config,
    rendered: &Rendered,
    secret: &[u8],
    test: TestSend,
) -> Result<ExitCode> {
    let (template, columns) = match test.as_subscriber {
        Some((subscriber, columns)) => (Some(subscriber), columns),
        None => (None, Columns::minimal()),
    };
    let signer = Signer::new(&config.list.id, secret);
    let composer = Composer::new(config, rendered, &columns, signer, "[TEST] ")?;
    if let Some(subscriber) = &template {
        describe_test_subscriber(rendered, &composer, &columns, subscriber);
    }
    let mut jobs = Vec::new();
    for (i, address) in test.addresses.iter().enumerate() {
        let email = address.trim();
        if email.parse::<lettre::Address>().is_err() {
            bail!("--test-to `{email}` is not a valid address");
        }
        let test_row = Subscriber::test(email, i as u64 + 1);
        let subscriber = match &template {
            // Their data, the test address (and its unsubscribe link).
            Some(row) => Subscriber {
                email: test_row.email,
                key: test_row.key,
                ..row.clone()
            },
            None => test_row,
        };
        let built = composer.build(&subscriber)?;
        jobs.push(Job::new(subscriber, built));
    }
    if test.dry_run {
        eprintln!(
            "Dry run: built {} test message(s); nothing was sent.",
            jobs.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = runtime()?;
    let mut failed = 0;
    runtime.block_on(async {
        let mut sender = Sender::open(config).await?;
        for job in &jobs {
            let outcome = sender.send(job).await;
            match &outcome {
                Outcome::Accepted(reply) => match &config.transport {
                    Transport::Outbox { .. } => eprintln!(
                        "test message for {} written to `{}`; nothing was sent (`kind = \"outbox\"` in [transport] of `{}`: set `kind = \"smtp\"` and fill in [smtp] to send)",
                        job.email,
                        reply.strip_prefix("written to ").unwrap_or(reply),
                        config.path.display()
                    ),
                    Transport::Smtp(_) => eprintln!("test message sent to {}", job.email),
                },
                Outcome::Permanent(reply, _)
                | Outcome::Transient(reply)
                | Outcome::Uncertain(reply)
                | Outcome::Lost(reply) => {
                    failed += 1;
                    eprintln!("test message to {} failed: {reply}", job.email);
                }
            }
        }
        sender.close().await;
        anyhow::Ok(())
    })?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What `--as` shows: whether the issue goes to them, and their sections.
fn describe_test_subscriber(
    rendered: &Rendered,
    composer: &Composer,
    columns: &Columns,
    subscriber: &Subscriber,
) {
    let audiences = &rendered.audiences;
    let selector = crate::model::audience::Selector::new(audiences, columns);
    if !selector.in_audience(subscriber) {
        eprintln!(
            "note: `{}` is outside the issue's audience ({}): a real send does not mail them",
            subscriber.email, audiences.issue
        );
    }
    if audiences.sections.is_empty() {
        return;
    }
    let mask = composer.sections_for(subscriber);
    for (bit, section) in audiences.sections.iter().enumerate() {
        let gets = if mask & (1 << bit) != 0 {
            "included"
        } else {
            "left out"
        };
        eprintln!(
            "section {} `{}` ({}): {gets} for `{}`",
            section.index + 1,
            section.heading,
            section.audience,
            subscriber.email
        );
    }
}

/// The summary's lines on audiences: how many the issue's audience
/// selects and how many each audienced section reaches. None without.
fn audience_summary(rendered: &Rendered, plan: &Plan) -> Vec<String> {
    let audiences = &rendered.audiences;
    let reach = &plan.reach;
    let mut lines = Vec::new();
    if !audiences.issue.is_everyone() {
        lines.push(format!(
            "Audience: {}: selects {} of {} subscribed",
            audiences.issue, reach.audience, reach.subscribed
        ));
    }
    for (section, n) in audiences.sections.iter().zip(&reach.sections) {
        lines.push(format!(
            "  section {} `{}` ({}): seen by {n} of {}",
            section.index + 1,
            section.heading,
            section.audience,
            reach.audience
        ));
    }
    lines
}

/// The confirmation's words on the audience, when the issue has one.
fn audience_prompt(rendered: &Rendered, plan: &Plan) -> String {
    let audience = &rendered.audiences.issue;
    if audience.is_everyone() {
        return String::new();
    }
    format!(
        " to its audience ({audience}: {} of {} subscribed)",
        plan.reach.audience, plan.reach.subscribed
    )
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

fn describe_transport(config: &Config) -> String {
    match &config.transport {
        Transport::Outbox { dir } => format!(
            "the outbox folder `{}` (nothing leaves this machine)",
            dir.display()
        ),
        Transport::Smtp(smtp) => format!(
            "SMTP {}:{} ({}), {} connection(s)",
            smtp.host,
            smtp.port,
            smtp.tls.describe(),
            config.sending.connections
        ),
    }
}

fn describe_limits(config: &Config) -> String {
    let s = &config.sending;
    let mut parts = Vec::new();
    if s.per_second > 0.0 {
        parts.push(format!("{} per second", s.per_second));
    }
    if s.per_hour > 0 {
        parts.push(format!("{} per hour", s.per_hour));
    }
    if s.per_day > 0 {
        parts.push(format!("{} per day", s.per_day));
    }
    if s.batch_size > 0 {
        parts.push(format!(
            "batches of {} with {} s pauses",
            s.batch_size, s.batch_pause_seconds
        ));
    }
    if parts.is_empty() {
        "none (as fast as the server takes them)".into()
    } else {
        parts.join(", ")
    }
}

fn estimate(config: &Config, planned: u64) -> Option<String> {
    let s = &config.sending;
    let mut seconds = 0.0;
    if s.per_second > 0.0 {
        seconds += planned as f64 / s.per_second;
    }
    if let Some(batches) = planned.saturating_sub(1).checked_div(s.batch_size) {
        seconds += batches as f64 * s.batch_pause_seconds;
    }
    if let Some(hours) = planned.saturating_sub(1).checked_div(s.per_hour) {
        seconds = seconds.max(hours as f64 * 3600.0);
    }
    (seconds > 0.0).then(|| {
        let mut text = human_duration(Duration::from_secs_f64(seconds));
        if s.per_day > 0 && planned > s.per_day {
            text.push_str(&format!(
                " over {} days (daily limit {})",
                planned.div_ceil(s.per_day),
                s.per_day
            ));
        }
        text
    })
}

fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
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
