//! One worker (one connection): which message it sends next, when it may
//! start it, the last unsubscribe check, and the lockstep loop (the outbox,
//! and SMTP servers that do not pipeline).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::sender::Sender;
use super::settle::{requeue, settle};
use super::shared::Shared;
use super::{Job, Stop};
use crate::journal::{Kind, Line};
use crate::progress::Progress;
use crate::send::limiter::{Permit, Ticket};
use crate::send::transport::Outcome;

/// A message waiting to be (re)tried by one worker.
pub(super) struct Ready {
    pub job: Job,
    /// Attempts that met a temporary failure so far.
    pub tries: u32,
    /// Of which the relay throttled (they do not count against `retries`).
    pub throttled: u32,
    pub not_before: Instant,
    /// A start time already reserved for it.
    pub permit: Option<(Instant, Ticket)>,
}

impl Ready {
    pub fn new(job: Job) -> Ready {
        Ready {
            job,
            tries: 0,
            throttled: 0,
            not_before: Instant::now(),
            permit: None,
        }
    }
}

/// What one worker holds: the run's shared state, its place among the
/// connections, and its own queue of messages to try again.
pub(super) struct Worker<'a> {
    pub shared: &'a Shared,
    pub index: usize,
    pub progress: &'a Progress,
    /// Its retries, and messages put back, before the shared queue's.
    pub queue: VecDeque<Ready>,
}

/// What a worker starts with next.
#[allow(clippy::large_enum_variant)] // one at a time, moved once
pub(super) enum Start {
    /// This message, at this time (its ticket held), not unsubscribed.
    Go(Ready, Instant, Ticket),
    /// Too many connections for the relay: close this one and wait.
    Rest,
    /// That one was unsubscribed meanwhile: take the next.
    Again,
    Done,
}

/// What a worker does next.
enum Next {
    Send(Ready),
    /// Too many connections for the relay: close this one and wait.
    Rest,
    Done,
}

/// Whether a message may still go out.
pub(super) enum Check {
    Send,
    /// Unsubscribed during the run: counted, never sent.
    Skip,
    /// The run halted: a file it must watch cannot be read.
    Halt,
}

/// How long a worker told to rest waits before looking again.
pub(super) const REST: Duration = Duration::from_millis(200);

impl Worker<'_> {
    /// The next message, its start time waited for and its unsubscribe
    /// checked.
    pub async fn start(&mut self) -> Start {
        let mut ready = match self.next_job().await {
            Next::Send(ready) => ready,
            Next::Rest => return Start::Rest,
            Next::Done => return Start::Done,
        };
        let Some((at, ticket)) = permit(self.shared, &mut ready).await else {
            return Start::Done;
        };
        match self.suppression(&ready.job) {
            Check::Send => Start::Go(ready, at, ticket),
            Check::Skip => {
                self.shared.release(ticket, false);
                Start::Again
            }
            Check::Halt => {
                self.shared.release(ticket, false);
                Start::Done
            }
        }
    }

    /// The next message for this worker: its own retries first, then the
    /// shared queue.
    async fn next_job(&mut self) -> Next {
        let shared = self.shared;
        if shared.stopped() {
            return Next::Done;
        }
        if let Some(ready) = self.queue.pop_front() {
            sleep_until(shared, ready.not_before).await;
            if shared.stopped() {
                return Next::Done;
            }
            return Next::Send(ready);
        }
        if !shared.connections.may_use(self.index) {
            if shared.jobs.is_closed() && shared.jobs.is_empty() {
                return Next::Done;
            }
            return Next::Rest;
        }
        match shared.jobs.recv().await {
            Ok(job) => Next::Send(Ready::new(job)),
            Err(_) => Next::Done,
        }
    }

    /// The last moment to honour an unsubscribe: nothing is handed over
    /// after it is in the file or the log.
    pub fn suppression(&self, job: &Job) -> Check {
        match self.shared.suppressions.blocks(&job.key) {
            Ok(false) => Check::Send,
            Ok(true) => {
                self.progress.inc();
                self.progress.note(&format!(
                    "not sent to {}: unsubscribed during the run",
                    job.email
                ));
                Check::Skip
            }
            Err(e) => {
                self.shared.halt(Stop::Unreadable {
                    why: format!("{:#}", e.error),
                    path: e.path,
                });
                Check::Halt
            }
        }
    }

    /// Journals that the message is being handed over, before it is.
    pub fn attempt(&self, job: &Job) -> Result<()> {
        self.shared
            .journal
            .write(&Line::event(Kind::Attempt, &job.key, &job.email, ""))
    }

    /// Settles an outcome, and queues the message again if it is retried.
    pub fn record(&mut self, mut ready: Ready, outcome: Outcome) -> Result<()> {
        let again = settle(self.shared, &mut ready, outcome, self.progress)?;
        requeue(&mut self.queue, ready, again);
        Ok(())
    }

    /// A message that never left: its ticket back, its outcome settled.
    pub fn give_back(&mut self, ready: Ready, ticket: Ticket, outcome: Outcome) -> Result<()> {
        self.shared.release(ticket, false);
        self.record(ready, outcome)
    }

    /// A message to send first on the next connection, its start time kept.
    pub fn put_back(&mut self, mut ready: Ready, at: Instant, ticket: Ticket) {
        ready.permit = Some((at, ticket));
        self.queue.push_front(ready);
    }
}

/// Sleeps until `at`, waking early if the run stops.
pub(super) async fn sleep_until(shared: &Shared, at: Instant) {
    while Instant::now() < at && !shared.stopped() {
        let step = at
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        tokio::time::sleep(step).await;
    }
}

/// Waits for a start time (or takes the one reserved). `None` when the run
/// stops first (the daily limit stops it here).
async fn permit(shared: &Shared, ready: &mut Ready) -> Option<(Instant, Ticket)> {
    if let Some((at, ticket)) = ready.permit.take() {
        sleep_until(shared, at).await;
        return Some((at, ticket));
    }
    loop {
        let permit = shared.limiter().reserve(Instant::now());
        match permit {
            Permit::At(at, ticket) => {
                // The timer ticks in whole milliseconds: sleeping until
                // a moment already here would still cost one.
                if at > Instant::now() {
                    tokio::time::sleep_until(at.into()).await;
                }
                return Some((at, ticket));
            }
            Permit::Busy => {
                // Sends as slow as a second each: wait for one to end.
                // (A worker that failed may never hand its ticket back:
                // stop waiting when the run stops; the job stays pending.)
                if shared.stopped() {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Permit::DailyLimit(wait) => {
                shared.halt(Stop::DailyLimit(wait));
                return None;
            }
        }
    }
}

/// One message at a time: the outbox, and SMTP servers that do not
/// pipeline.
pub(super) async fn lockstep_worker(mut worker: Worker<'_>, mut sender: Sender) -> Result<()> {
    loop {
        let (ready, ticket) = match worker.start().await {
            Start::Go(ready, _, ticket) => (ready, ticket),
            Start::Rest => {
                sender.close().await;
                tokio::time::sleep(REST).await;
                continue;
            }
            Start::Again => continue,
            Start::Done => break,
        };
        worker.attempt(&ready.job)?;
        let outcome = sender.send(&ready.job).await;
        worker
            .shared
            .release(ticket, matches!(outcome, Outcome::Accepted(_)));
        worker.record(ready, outcome)?;
    }
    sender.close().await;
    Ok(())
}
