//! What a run will do, before it asks: the issue, who is mailed and who is
//! left out (and why), the uncertain recipients, the transport, the limits
//! and how long it will take.

use std::time::Duration;

use super::SendRequest;
use super::plan::{Plan, Tally};
use crate::hint::Hint;
use crate::model::config::{Config, Transport};
use crate::render::Rendered;

/// Prints the summary of the run about to start.
pub(super) fn show(
    config: &Config,
    req: &SendRequest,
    hint: &Hint,
    rendered: &Rendered,
    plan: &Plan,
    planned: u64,
) {
    eprintln!(
        "Issue `{}`: \"{}\"\nSubscribers: `{}`",
        rendered.issue_id,
        rendered.subject,
        plan.list_path.display()
    );
    for line in audience_summary(rendered, plan) {
        eprintln!("{line}");
    }
    eprintln!("{}", to_mail_now(&plan.tally));
    eprintln!("  left out: {}", left_out(rendered, plan).join(", "));
    if plan.tally.one_click > 0 {
        one_click_note(config, req, hint, plan);
    }
    if !plan.uncertain_sample.is_empty() {
        uncertain_note(req, plan);
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

/// `  to mail now: 5 (3 new, 2 deferred earlier)`, with the earlier
/// failures and uncertain recipients sent again when there are any.
fn to_mail_now(t: &Tally) -> String {
    format!(
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
    )
}

/// Who is not mailed, and why, as counts.
fn left_out(rendered: &Rendered, plan: &Plan) -> Vec<String> {
    let t = &plan.tally;
    let survey = &plan.survey;
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
    left_out
}

/// One-click unsubscribes not applied to the file yet, and the command
/// that applies them.
fn one_click_note(config: &Config, req: &SendRequest, hint: &Hint, plan: &Plan) {
    let mut args = vec![
        "--from-file".to_string(),
        config.paths.unsubscribe_log.display().to_string(),
    ];
    args.extend(req.list_args());
    eprintln!(
        "note: {} address(es) unsubscribed with the one-click link (`{}`) are still `subscribed` in `{}`: they are not mailed. Apply them to the file with\n  {}",
        plan.tally.one_click,
        config.paths.unsubscribe_log.display(),
        plan.list_path.display(),
        hint.command("unsubscribe", &args)
    );
}

/// The recipients an earlier run left uncertain, and whether this one
/// sends to them again.
fn uncertain_note(req: &SendRequest, plan: &Plan) {
    let t = &plan.tally;
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

/// The summary's lines on audiences: how many the issue's audience
/// selects and how many each audienced section reaches. None without.
pub(super) fn audience_summary(rendered: &Rendered, plan: &Plan) -> Vec<String> {
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
pub(super) fn audience_prompt(rendered: &Rendered, plan: &Plan) -> String {
    let audience = &rendered.audiences.issue;
    if audience.is_everyone() {
        return String::new();
    }
    format!(
        " to its audience ({audience}: {} of {} subscribed)",
        plan.reach.audience, plan.reach.subscribed
    )
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

pub(super) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}
