//! `--test-to`: the issue to staff addresses, subject marked `[TEST] `,
//! nothing journaled. With `--as`, each is the message that subscriber
//! would get (their merge fields and sections), sent to the test address.

use std::process::ExitCode;

use anyhow::{Result, bail};

use super::deliver::{Job, Sender, runtime};
use super::transport::Outcome;
use crate::model::config::{Config, Transport};
use crate::model::subscribers::{Columns, Subscriber};
use crate::render::Rendered;
use crate::render::message::Composer;
use crate::token::Signer;

/// What `--test-to` sends.
pub(super) struct TestSend<'a> {
    pub addresses: &'a [String],
    /// `--as`: the subscriber whose message it is, and the file's columns.
    pub as_subscriber: Option<(Subscriber, Columns)>,
    pub dry_run: bool,
}

/// The row of `--as EMAIL` in the subscriber file.
pub(super) fn test_subscriber(
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

/// Builds the test messages and, unless a dry run, sends them.
pub(super) fn send_test(
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
    let jobs = build(&composer, test.addresses, template.as_ref())?;
    if test.dry_run {
        eprintln!(
            "Dry run: built {} test message(s); nothing was sent.",
            jobs.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let failed = hand_over(config, &jobs)?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One message per test address: `template`'s data (with `--as`) or a
/// neutral subscriber's, addressed (and its unsubscribe link) to the test
/// address.
fn build(
    composer: &Composer,
    addresses: &[String],
    template: Option<&Subscriber>,
) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let email = address.trim();
        if email.parse::<lettre::Address>().is_err() {
            bail!("--test-to `{email}` is not a valid address");
        }
        let test_row = Subscriber::test(email, i as u64 + 1);
        let subscriber = match template {
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
    Ok(jobs)
}

/// Sends the test messages one by one, saying what became of each;
/// returns how many failed.
fn hand_over(config: &Config, jobs: &[Job]) -> Result<u32> {
    let runtime = runtime()?;
    let mut failed = 0;
    runtime.block_on(async {
        let mut sender = Sender::open(config).await?;
        for job in jobs {
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
    Ok(failed)
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
