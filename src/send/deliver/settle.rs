//! What an outcome does: its journal record, a throttling relay slowed
//! down for, a temporary failure retried, a final outcome counted once it
//! is on disk, and too many failures in a row stopping the run.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::shared::Shared;
use super::throttle::{BURST_WINDOW, MAX_THROTTLED, Throttle, pace_note, slow_down, throttling};
use super::worker::Ready;
use super::{Job, Stop};
use crate::journal::{Kind, Line};
use crate::progress::Progress;
use crate::send::transport::Outcome;

/// Records an outcome and counts it once it is on disk. Returns when to
/// try the message again, if it should be.
pub(super) fn settle(
    shared: &Shared,
    ready: &mut Ready,
    outcome: Outcome,
    progress: &Progress,
) -> Result<Option<Duration>> {
    pace_note(shared, progress);
    if matches!(outcome, Outcome::Lost(_)) {
        shared
            .lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ready.job.email.clone());
    }
    let (kind, reply, record) = record(&ready.job, &outcome);
    let throttle = match &outcome {
        Outcome::Transient(reply) => throttling(reply),
        _ => None,
    };
    if let Some(throttle) = throttle {
        match throttled(shared, ready, throttle, reply, &record, progress)? {
            Throttled::Stop => return Ok(None),
            Throttled::Retry(pause) => return Ok(Some(pause)),
            Throttled::Ordinary => {}
        }
    } else {
        watch_bursts(shared, &outcome, reply, progress);
    }
    ready.tries += u32::from(matches!(kind, Kind::Deferred | Kind::Lost));
    let retry = matches!(kind, Kind::Deferred | Kind::Lost)
        && ready.tries < shared.retries
        && !shared.stopped();
    if retry {
        // Not an outcome yet: the next attempt follows.
        shared.journal.commit(&record, || {})?;
        let delay = shared.retry_base * 2u32.saturating_pow(ready.tries - 1);
        return Ok(Some(delay.min(Duration::from_secs(300))));
    }
    record_final(shared, &ready.job, kind, reply, &record, progress)?;
    streak(shared, outcome);
    Ok(None)
}

/// The journal record of an outcome, with its kind and the server's reply.
fn record<'o>(job: &Job, outcome: &'o Outcome) -> (Kind, &'o str, Line) {
    let (kind, reply, stage) = match outcome {
        Outcome::Accepted(reply) => (Kind::Accepted, reply, None),
        Outcome::Permanent(reply, stage) => (Kind::Failed, reply, *stage),
        Outcome::Transient(reply) => (Kind::Deferred, reply, None),
        Outcome::Uncertain(reply) => (Kind::Uncertain, reply, None),
        Outcome::Lost(reply) => (Kind::Lost, reply, None),
    };
    // The attempt has the address as written; an acceptance needs only the
    // key.
    let email = if kind == Kind::Accepted {
        ""
    } else {
        &job.email
    };
    let record = Line {
        stage,
        ..Line::event(kind, &job.key, email, reply)
    };
    (kind, reply, record)
}

/// What a throttling reply means for its message.
enum Throttled {
    /// The run stops; the message is still to send, by a later run.
    Stop,
    /// Sent again after this pause.
    Retry(Duration),
    /// Throttled too often (or the run is stopping): an ordinary
    /// temporary failure.
    Ordinary,
}

/// A relay's throttling: its daily quota or our patience used up stops
/// the run; otherwise the run slows down and the message waits its turn
/// again. None of these is an outcome: the record is written, not counted.
fn throttled(
    shared: &Shared,
    ready: &mut Ready,
    throttle: Throttle,
    reply: &str,
    record: &Line,
    progress: &Progress,
) -> Result<Throttled> {
    if throttle == Throttle::Quota {
        // Not an outcome: the message is still to send, another day.
        shared.journal.write(record)?;
        shared.halt(Stop::RelayQuota(reply.to_string()));
        return Ok(Throttled::Stop);
    }
    let since = shared
        .last_accepted
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .elapsed();
    if since >= shared.patience {
        // Not an outcome: the message is still to send, later.
        shared.journal.write(record)?;
        shared.halt(Stop::Throttled(reply.to_string()));
        return Ok(Throttled::Stop);
    }
    if ready.throttled < MAX_THROTTLED && !shared.stopped() {
        ready.throttled += 1;
        slow_down(shared, throttle, reply, progress);
        shared.journal.write(record)?;
        let pause = if throttle == Throttle::Connections {
            Duration::from_secs(1)
        } else {
            Duration::ZERO
        };
        return Ok(Throttled::Retry(pause));
    }
    Ok(Throttled::Ordinary)
}

/// Slows down when most recent replies were temporary failures, though
/// none said it was throttling.
fn watch_bursts(shared: &Shared, outcome: &Outcome, reply: &str, progress: &Progress) {
    let temporary = matches!(outcome, Outcome::Transient(r) if r.starts_with('4'));
    if shared.outcomes.push(temporary) {
        let why = format!(
            "most replies in the last {} seconds were temporary failures, the last `{reply}`",
            BURST_WINDOW.as_secs()
        );
        slow_down(shared, Throttle::Rate, &why, progress);
    }
}

/// A final outcome: on disk, then counted and shown beside the progress
/// bar.
fn record_final(
    shared: &Shared,
    job: &Job,
    kind: Kind,
    reply: &str,
    record: &Line,
    progress: &Progress,
) -> Result<()> {
    let counts = shared.counts.clone();
    let progress_done = progress.clone();
    let note = match kind {
        Kind::Failed => Some(format!("failed {}: {reply}", job.email)),
        Kind::Deferred | Kind::Lost => Some(format!("deferred {}: {reply}", job.email)),
        Kind::Uncertain => Some(format!("uncertain {}: {reply}", job.email)),
        _ => None,
    };
    shared.journal.commit(record, move || {
        let counter = match kind {
            Kind::Accepted => &counts.accepted,
            Kind::Failed => &counts.failed,
            Kind::Uncertain => &counts.uncertain,
            _ => &counts.deferred,
        };
        counter.fetch_add(1, Ordering::SeqCst);
        progress_done.inc();
        if let Some(note) = note {
            progress_done.note(&note);
        }
    })
}

/// Failures in a row: an acceptance ends the streak, too long a streak
/// stops the run.
fn streak(shared: &Shared, outcome: Outcome) {
    match outcome {
        Outcome::Accepted(_) => {
            shared.consecutive_failures.store(0, Ordering::SeqCst);
            *shared
                .last_accepted
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Instant::now();
        }
        Outcome::Permanent(reply, _)
        | Outcome::Transient(reply)
        | Outcome::Uncertain(reply)
        | Outcome::Lost(reply) => {
            let n = shared.consecutive_failures.fetch_add(1, Ordering::SeqCst) + 1;
            if n >= shared.max_consecutive_failures {
                shared.halt(Stop::TooManyFailures(reply));
            }
        }
    }
}

/// Puts a message back to be tried after `delay`, when [`settle`] says so.
pub(super) fn requeue(
    queue: &mut std::collections::VecDeque<Ready>,
    mut ready: Ready,
    delay: Option<Duration>,
) {
    if let Some(delay) = delay {
        ready.not_before = Instant::now() + delay;
        ready.permit = None;
        queue.push_back(ready);
    }
}
