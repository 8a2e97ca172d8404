//! Executing a plan: a producer thread streams the surveyed subscriber file
//! and builds the selected messages; a few async workers (one per
//! connection) hand them to the transport; a journal thread makes records
//! durable in groups (one fsync for many records).
//!
//! [`sender`] opens the transport; [`worker`] takes the next message and
//! runs the lockstep loop, [`pipelined`] the pipelining one; [`settle`]
//! records each outcome, slowing down for a relay that throttles
//! ([`throttle`]); [`shared`] is the state the workers share.

mod pipelined;
mod sender;
mod settle;
mod shared;
mod throttle;
mod worker;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use lettre::address::Envelope;
use tokio::task::JoinHandle;

use super::plan::Plan;
use crate::journal;
use crate::model::config::{Config, Transport};
use crate::model::subscribers::{Subscriber, SubscriberReader};
use crate::progress::Progress;
use crate::render::message::Composer;
use pipelined::pipelined_worker;
pub use sender::Sender;
use shared::{Counts, Shared};
use worker::{Worker, lockstep_worker};

/// One message ready for the transport.
pub struct Job {
    pub key: String,
    pub email: String,
    pub message_id: String,
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
}

impl Job {
    pub fn new(subscriber: Subscriber, built: crate::render::message::Built) -> Job {
        Job {
            key: subscriber.key,
            email: subscriber.email,
            message_id: built.message_id,
            envelope: built.message.envelope().clone(),
            bytes: built.message.formatted(),
        }
    }
}

/// Streams the surveyed file and yields the messages the plan selected.
pub fn produce(
    plan: &Plan,
    composer: &Composer,
    limit: Option<u64>,
    stop: &AtomicBool,
    mut emit: impl FnMut(Job) -> bool,
) -> Result<u64> {
    let file = plan
        .list_file
        .try_clone()
        .with_context(|| format!("cannot read `{}`", plan.list_path.display()))?;
    let reader = SubscriberReader::open_file(&plan.list_path, file)?;
    let mut count = 0u64;
    for row in reader {
        if stop.load(Ordering::Relaxed) || limit.is_some_and(|l| count >= l) {
            break;
        }
        let Ok(subscriber) = row else { continue };
        if !plan.selection.contains(subscriber.line) {
            continue;
        }
        let built = composer.build(&subscriber)?;
        let job = Job::new(subscriber, built);
        count += 1;
        if !emit(job) {
            break;
        }
    }
    Ok(count)
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Why a run ended early.
#[derive(Debug, Clone)]
pub enum Stop {
    Interrupted,
    DailyLimit(Duration),
    TooManyFailures(String),
    /// The subscriber file or the unsubscribe log cannot be read any more.
    Unreadable {
        path: std::path::PathBuf,
        why: String,
    },
    /// The relay's own daily quota is used up (its reply).
    RelayQuota(String),
    /// The relay refused everything as too fast for a long time (its last
    /// reply).
    Throttled(String),
}

#[derive(Debug, Default)]
pub struct Report {
    pub accepted: u64,
    pub failed: u64,
    pub deferred: u64,
    pub uncertain: u64,
    /// Not sent: unsubscribed while the run was going.
    pub suppressed: u64,
    /// Sent again after the connection was lost once they had been sent.
    pub lost: Named,
    pub stop: Option<Stop>,
}

/// Recipients named in the summary (few: they come from rare failures).
pub type Named = std::collections::BTreeSet<String>;

/// Sends what the plan selected (at most `planned`) and returns the counts.
pub fn deliver(
    config: &Config,
    plan: &Plan,
    composer: &Composer,
    limit: Option<u64>,
    planned: u64,
) -> Result<Report> {
    let runtime = runtime()?;
    // Connect first: an unreachable server is an error with nothing recorded.
    let first = runtime.block_on(Sender::open(config))?;

    let (journal_writer, journal) = journal::Writer::spawn(&plan.journal_path, &plan.first_lines)?;
    let connections = match config.transport {
        Transport::Outbox { .. } => 1,
        Transport::Smtp(_) => config.sending.connections,
    };
    let (job_tx, job_rx) = async_channel::bounded::<Job>(connections * 4);
    let shared = Arc::new(Shared::new(config, plan, journal, job_rx, connections));
    let progress = Progress::new(planned);

    let produced = std::thread::scope(|scope| -> Result<u64> {
        let stop = shared.stop_flag();
        let producer = scope.spawn(move || {
            produce(plan, composer, limit, stop, |job| {
                job_tx.send_blocking(job).is_ok()
            })
        });
        runtime.block_on(run_workers(first, &shared, &progress, connections))?;
        // Workers are gone: unblock the producer if it is waiting to send.
        shared.jobs.close();
        producer
            .join()
            .map_err(|_| anyhow::anyhow!("the message builder crashed"))?
    });
    // Dropping the runtime drops its aborted tasks, and with them their
    // handles on the journal, so the journal threads can finish.
    drop(runtime);
    let ended = Ended::take(shared);
    journal_writer.finish()?;
    progress.finish();
    let report = ended.report();
    produced?;
    Ok(report)
}

/// One worker per connection until all are done; Ctrl-C stops them.
async fn run_workers(
    first: Sender,
    shared: &Arc<Shared>,
    progress: &Progress,
    connections: usize,
) -> Result<()> {
    let tasks = spawn_workers(first, shared, progress, connections);
    let signal = on_interrupt(shared.clone());
    let ticker = progress.spawn_ticker();
    let joined = join_workers(tasks, shared).await;
    signal.abort();
    ticker.abort();
    joined
}

/// Starts `connections` workers: `first`, connected, and siblings of it
/// that connect when they start.
fn spawn_workers(
    first: Sender,
    shared: &Arc<Shared>,
    progress: &Progress,
    connections: usize,
) -> Vec<JoinHandle<Result<()>>> {
    let mut senders = vec![first];
    while senders.len() < connections {
        let sibling = senders[0].sibling();
        senders.push(sibling);
    }
    let mut tasks = Vec::new();
    for (index, sender) in senders.into_iter().enumerate() {
        let shared = shared.clone();
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            let worker = Worker {
                shared: &shared,
                index,
                progress: &progress,
                queue: VecDeque::new(),
            };
            match sender {
                Sender::Pipelined(piped) => pipelined_worker(worker, piped).await,
                other => lockstep_worker(worker, other).await,
            }
        }));
    }
    tasks
}

/// The first Ctrl-C stops the run once messages in flight are finished;
/// a second one exits at once.
fn on_interrupt(shared: Arc<Shared>) -> JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping: finishing messages in flight (press Ctrl-C again to force)");
            shared.halt(Stop::Interrupted);
            // A second Ctrl-C exits at once; the journal stays consistent.
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    })
}

/// Waits for every worker; the first error is the run's (and stops the
/// others).
async fn join_workers(tasks: Vec<JoinHandle<Result<()>>>, shared: &Shared) -> Result<()> {
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                shared.halt(Stop::Interrupted);
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(anyhow::anyhow!("a sending task failed: {e}"));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What the workers leave for the report. Taken from the shared state,
/// which is then dropped: the journal can finish only once nothing holds
/// it.
struct Ended {
    stop: Option<Stop>,
    counts: Arc<Counts>,
    lost: Named,
    suppressed: u64,
}

impl Ended {
    fn take(shared: Arc<Shared>) -> Ended {
        let stop = shared
            .stop_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let lost = std::mem::take(&mut *shared.lost.lock().unwrap_or_else(|e| e.into_inner()));
        Ended {
            stop,
            counts: shared.counts.clone(),
            lost,
            suppressed: shared.suppressions.skipped(),
        }
    }

    /// The report. Read once the journal has finished: outcomes are
    /// counted as they reach the disk.
    fn report(self) -> Report {
        let counts = &self.counts;
        Report {
            accepted: counts.accepted.load(Ordering::SeqCst),
            failed: counts.failed.load(Ordering::SeqCst),
            deferred: counts.deferred.load(Ordering::SeqCst),
            uncertain: counts.uncertain.load(Ordering::SeqCst),
            suppressed: self.suppressed,
            lost: self.lost,
            stop: self.stop,
        }
    }
}

/// Base delay before retrying a temporary failure (doubles each time).
/// `NEWSLETTER_RETRY_BASE_MS` shortens it for tests.
fn retry_base() -> Duration {
    std::env::var("NEWSLETTER_RETRY_BASE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_millis)
}

/// How long a relay may refuse every message as too fast before the run
/// stops (it may be over its quota in all but name). Ten minutes;
/// `NEWSLETTER_THROTTLE_PATIENCE_MS` shortens it for tests.
fn throttle_patience() -> Duration {
    std::env::var("NEWSLETTER_THROTTLE_PATIENCE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(600), Duration::from_millis)
}

/// [`throttle_patience`] in whole minutes (at least one), for messages.
pub fn throttle_patience_minutes() -> u64 {
    (throttle_patience().as_secs() / 60).max(1)
}
