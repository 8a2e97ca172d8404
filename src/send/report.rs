//! What a run did, and what to do next: the totals, the recipients who may
//! have two copies or none, why it stopped, and the exit code.

use std::process::ExitCode;
use std::time::Duration;

use super::SendRequest;
use super::deliver::{self, Report, Stop};
use super::summary::human_duration;
use crate::hint::Hint;
use crate::model::config::Config;

/// Step 4: the outcome, and what to do next; the exit code.
pub(super) fn show(
    config: &Config,
    req: &SendRequest,
    hint: &Hint,
    report: &Report,
    elapsed: Duration,
) -> ExitCode {
    eprintln!("{}", totals(report, elapsed));
    let status = req.status(hint, &[]);
    if !report.lost.is_empty() {
        lost_note(report, &status);
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
    match &report.stop {
        Some(stop) => stopped(config, req, hint, stop),
        None if report.failed > 0 || report.deferred > 0 || report.uncertain > 0 => {
            eprintln!(
                "Some recipients were not accepted; see `{}`. Deferred ones are retried by:\n  {}",
                req.status(hint, &["--failed-csv", "failed.csv"]),
                req.resume(hint)
            );
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}

/// `Accepted 3 · failed 0 · deferred 1 in 0.4 s (8 messages/s)`.
fn totals(report: &Report, elapsed: Duration) -> String {
    let elapsed = elapsed.as_secs_f64();
    format!(
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
    )
}

/// The recipients sent again after a connection lost once their message
/// was sent: they may have two copies.
fn lost_note(report: &Report, status: &str) {
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

/// Why the run stopped early, and the command that continues it.
fn stopped(config: &Config, req: &SendRequest, hint: &Hint, stop: &Stop) -> ExitCode {
    let resume = req.resume(hint);
    match stop {
        Stop::Interrupted => {
            eprintln!(
                "Interrupted. Messages in flight were finished and recorded. Run the same command again to continue:\n  {resume}"
            );
            ExitCode::from(130)
        }
        Stop::DailyLimit(wait) => {
            eprintln!(
                "The daily limit of {} messages is reached. Run the same command again in {} to continue:\n  {resume}",
                config.sending.per_day,
                human_duration(*wait)
            );
            ExitCode::SUCCESS
        }
        Stop::TooManyFailures(reply) => {
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
        Stop::RelayQuota(reply) => {
            eprintln!(
                "The relay's daily sending quota is used up; it said:\n  {reply}\nNothing is lost: run the same command again tomorrow (or once the relay's quota is raised) to continue:\n  {resume}"
            );
            ExitCode::SUCCESS
        }
        Stop::Throttled(reply) => {
            eprintln!(
                "Stopped: the relay has refused every message as sent too fast for {} minutes; the last reply was:\n  {reply}\nNothing is lost. Ask the relay's provider about your sending limits (or lower `per-second` in [sending]), then continue with:\n  {resume}",
                deliver::throttle_patience_minutes()
            );
            ExitCode::from(1)
        }
        Stop::Unreadable { path, why } => {
            eprintln!(
                "Stopped: {why}. Messages in flight were finished and recorded. Fix `{}`, then continue with:\n  {resume}",
                path.display()
            );
            ExitCode::from(2)
        }
    }
}
