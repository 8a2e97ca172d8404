//! Executing a plan: a producer thread streams the surveyed subscriber file
//! and builds the selected messages; a few async workers (one per
//! connection) hand them to the transport; a journal thread makes records
//! durable in groups (one fsync for many records).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lettre::address::Envelope;
use tokio::sync::mpsc;

use super::limiter::{Limiter, Permit};
use super::plan::Plan;
use super::suppress::Suppressions;
use super::transport::{self, After, Outbox, Outcome, SmtpSettings};
use crate::config::{Config, Transport};
use crate::journal::{self, Kind, Line};
use crate::message::Composer;
use crate::subscribers::{Subscriber, SubscriberReader};

/// One message ready for the transport.
pub struct Job {
    pub key: String,
    pub email: String,
    pub message_id: String,
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
}

impl Job {
    pub fn new(subscriber: Subscriber, built: crate::message::Built) -> Job {
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

/// One connection's worth of transport.
#[allow(clippy::large_enum_variant)] // one per connection, never moved in bulk
pub enum Sender {
    Outbox(Outbox),
    Smtp {
        settings: SmtpSettings,
        conn: Option<Box<lettre::transport::smtp::client::AsyncSmtpConnection>>,
        sent_on_conn: u64,
        max_per_conn: u64,
    },
}

impl Sender {
    /// Opens the transport; for SMTP this connects, so an unreachable
    /// server is an error before anything is recorded.
    pub async fn open(config: &Config) -> Result<Sender> {
        match &config.transport {
            Transport::Outbox { dir } => Ok(Sender::Outbox(Outbox::create(dir.clone())?)),
            Transport::Smtp(smtp) => {
                let settings = SmtpSettings::new(smtp)?;
                let conn = settings.connect().await.with_context(|| {
                    format!(
                        "cannot connect to the SMTP server {}; check [smtp] in `{}`. Nothing was sent",
                        settings.describe(),
                        config.path.display()
                    )
                })?;
                Ok(Sender::Smtp {
                    settings,
                    conn: Some(Box::new(conn)),
                    sent_on_conn: 0,
                    max_per_conn: config.sending.max_per_connection.max(1),
                })
            }
        }
    }

    fn sibling(&self, config: &Config) -> Sender {
        match self {
            Sender::Outbox(o) => Sender::Outbox(Outbox { dir: o.dir.clone() }),
            Sender::Smtp { settings, .. } => Sender::Smtp {
                settings: settings.clone(),
                conn: None,
                sent_on_conn: 0,
                max_per_conn: config.sending.max_per_connection.max(1),
            },
        }
    }

    pub async fn send(&mut self, job: &Job) -> Outcome {
        match self {
            Sender::Outbox(outbox) => outbox.deliver(&job.message_id, &job.bytes),
            Sender::Smtp {
                settings,
                conn,
                sent_on_conn,
                max_per_conn,
            } => {
                if *sent_on_conn >= *max_per_conn {
                    if let Some(mut c) = conn.take() {
                        let _ = tokio::time::timeout(Duration::from_secs(5), c.quit()).await;
                    }
                    *sent_on_conn = 0;
                }
                if conn.as_ref().is_some_and(|c| c.has_broken()) {
                    *conn = None;
                }
                if conn.is_none() {
                    match settings.connect().await {
                        Ok(c) => {
                            *conn = Some(Box::new(c));
                            *sent_on_conn = 0;
                        }
                        Err(e) => return Outcome::Transient(format!("cannot connect: {e:#}")),
                    }
                }
                let Some(c) = conn.as_mut() else {
                    return Outcome::Transient("no connection".into());
                };
                let (outcome, after) =
                    transport::smtp_send(c, &job.envelope, &job.bytes, settings.timeout()).await;
                *sent_on_conn += 1;
                match after {
                    After::Keep => {}
                    // A fresh connection clears a half-finished transaction.
                    // QUIT is a courtesy: a server that does not answer it
                    // at once must not hold up the run.
                    After::Quit => {
                        if let Some(mut c) = conn.take() {
                            let wait = settings.timeout().min(Duration::from_secs(2));
                            let _ = tokio::time::timeout(wait, c.abort()).await;
                        }
                    }
                    // The server may still be busy with the last command:
                    // close without waiting for it.
                    After::Drop => *conn = None,
                }
                outcome
            }
        }
    }

    pub async fn close(&mut self) {
        if let Sender::Smtp { conn, .. } = self
            && let Some(mut c) = conn.take()
        {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.quit()).await;
        }
    }
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

/// State the workers share.
struct Shared {
    limiter: Mutex<Limiter>,
    journal: journal::Handle,
    suppressions: Suppressions,
    stop: AtomicBool,
    stop_reason: Mutex<Option<Stop>>,
    consecutive_failures: AtomicU32,
    /// Outcomes, counted once they are on disk.
    counts: Arc<Counts>,
    /// Recipients whose connection was lost after their message was sent.
    lost: Mutex<Named>,
    retries: u32,
    max_consecutive_failures: u32,
    retry_base: Duration,
}

impl Shared {
    fn halt(&self, reason: Stop) {
        let mut slot = self.stop_reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Recipients named in the summary (few: they come from rare failures).
pub type Named = std::collections::BTreeSet<String>;

/// Outcomes on disk so far.
#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    failed: AtomicU64,
    deferred: AtomicU64,
    uncertain: AtomicU64,
}

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

    let now = Instant::now();
    let wall = journal::now();
    let history = plan
        .recent_attempts
        .iter()
        .map(|t| Duration::from_secs_f64((wall - t).max(0.0)));
    let shared = Arc::new(Shared {
        limiter: Mutex::new(Limiter::new(&config.sending, history, now)),
        journal,
        suppressions: Suppressions::new(
            &plan.list_path,
            &plan.list_meta,
            &config.paths.unsubscribe_log,
            plan.one_click_read,
            plan.one_click.clone(),
        ),
        stop: AtomicBool::new(false),
        stop_reason: Mutex::new(None),
        consecutive_failures: AtomicU32::new(0),
        counts: Arc::new(Counts::default()),
        lost: Mutex::new(Named::default()),
        retries: config.sending.retries,
        max_consecutive_failures: config.sending.max_consecutive_failures,
        retry_base: retry_base(),
    });

    let connections = match config.transport {
        Transport::Outbox { .. } => 1,
        Transport::Smtp(_) => config.sending.connections,
    };
    let (job_tx, job_rx) = mpsc::channel::<Job>(connections * 4);
    let job_rx = Arc::new(tokio::sync::Mutex::new(job_rx));
    let progress = crate::progress::Progress::new(planned);

    let produced = std::thread::scope(|scope| -> Result<u64> {
        let shared_ref = &shared;
        let producer = scope.spawn(move || {
            produce(plan, composer, limit, &shared_ref.stop, |job| {
                job_tx.blocking_send(job).is_ok()
            })
        });
        runtime.block_on(async {
            let mut senders = vec![first];
            while senders.len() < connections {
                let sibling = senders[0].sibling(config);
                senders.push(sibling);
            }
            let mut tasks = Vec::new();
            for sender in senders {
                tasks.push(tokio::spawn(worker(
                    shared.clone(),
                    job_rx.clone(),
                    sender,
                    progress.clone(),
                )));
            }
            let signal_shared = shared.clone();
            let signal = tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!(
                        "\nstopping: finishing messages in flight (press Ctrl-C again to force)"
                    );
                    signal_shared.halt(Stop::Interrupted);
                    // A second Ctrl-C exits at once; the journal stays consistent.
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(130);
                    }
                }
            });
            let ticker = progress.spawn_ticker();
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
            signal.abort();
            ticker.abort();
            match first_error {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })?;
        // Workers are gone: unblock the producer if it is waiting to send.
        drop(job_rx);
        producer
            .join()
            .map_err(|_| anyhow::anyhow!("the message builder crashed"))?
    });
    // Dropping the runtime drops its aborted tasks, and with them their
    // handles on the journal, so the journal threads can finish.
    drop(runtime);
    let stop = shared
        .stop_reason
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let counts = shared.counts.clone();
    let lost = std::mem::take(&mut *shared.lost.lock().unwrap_or_else(|e| e.into_inner()));
    let suppressed = shared.suppressions.skipped();
    drop(shared);
    journal_writer.finish()?;
    progress.finish();
    let report = Report {
        accepted: counts.accepted.load(Ordering::SeqCst),
        failed: counts.failed.load(Ordering::SeqCst),
        deferred: counts.deferred.load(Ordering::SeqCst),
        uncertain: counts.uncertain.load(Ordering::SeqCst),
        suppressed,
        lost,
        stop,
    };
    produced?;
    Ok(report)
}

/// Base delay before retrying a temporary failure (doubles each time).
/// `NEWSLETTER_RETRY_BASE_MS` shortens it for tests.
fn retry_base() -> Duration {
    std::env::var("NEWSLETTER_RETRY_BASE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(2), Duration::from_millis)
}

async fn worker(
    shared: Arc<Shared>,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    mut sender: Sender,
    progress: crate::progress::Progress,
) -> Result<()> {
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let job = { jobs.lock().await.recv().await };
        let Some(job) = job else { break };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let permit = shared
                .limiter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .reserve(Instant::now());
            let ticket = match permit {
                Permit::At(at, ticket) => {
                    // The timer ticks in whole milliseconds: sleeping until
                    // a moment already here would still cost one.
                    if at > Instant::now() {
                        tokio::time::sleep_until(at.into()).await;
                    }
                    ticket
                }
                Permit::Busy => {
                    // Sends as slow as a second each: wait for one to end.
                    // (A worker that failed may never hand its ticket back:
                    // stop waiting when the run stops; the job stays pending.)
                    if shared.stop.load(Ordering::SeqCst) {
                        sender.close().await;
                        return Ok(());
                    }
                    attempt -= 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                Permit::DailyLimit(wait) => {
                    shared.halt(Stop::DailyLimit(wait));
                    sender.close().await;
                    return Ok(());
                }
            };
            // The last moment to honour an unsubscribe: nothing is handed
            // over after it is in the file or the log.
            match shared.suppressions.blocks(&job.key) {
                Ok(false) => {}
                Ok(true) => {
                    shared
                        .limiter
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .finish(ticket, Instant::now());
                    progress.inc();
                    progress.note(&format!(
                        "not sent to {}: unsubscribed during the run",
                        job.email
                    ));
                    break;
                }
                Err(e) => {
                    shared
                        .limiter
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .finish(ticket, Instant::now());
                    shared.halt(Stop::Unreadable {
                        why: format!("{:#}", e.error),
                        path: e.path,
                    });
                    sender.close().await;
                    return Ok(());
                }
            }
            shared
                .journal
                .write(&Line::event(Kind::Attempt, &job.key, &job.email, ""))?;
            let outcome = sender.send(&job).await;
            shared
                .limiter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .finish(ticket, Instant::now());
            let (kind, reply, stage) = match &outcome {
                Outcome::Accepted(reply) => (Kind::Accepted, reply, None),
                Outcome::Permanent(reply, stage) => (Kind::Failed, reply, *stage),
                Outcome::Transient(reply) => (Kind::Deferred, reply, None),
                Outcome::Uncertain(reply) => (Kind::Uncertain, reply, None),
                Outcome::Lost(reply) => {
                    shared
                        .lost
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(job.email.clone());
                    (Kind::Lost, reply, None)
                }
            };
            // The attempt has the address as written; an acceptance needs
            // only the key.
            let email = if kind == Kind::Accepted {
                ""
            } else {
                &job.email
            };
            let record = Line {
                stage,
                ..Line::event(kind, &job.key, email, reply)
            };
            let retry = matches!(kind, Kind::Deferred | Kind::Lost)
                && attempt < shared.retries
                && !shared.stop.load(Ordering::SeqCst);
            if retry {
                // Not an outcome yet: the next attempt follows.
                shared.journal.commit(&record, || {})?;
                let delay = shared.retry_base * 2u32.saturating_pow(attempt - 1);
                tokio::time::sleep(delay.min(Duration::from_secs(300))).await;
                continue;
            }
            let counts = shared.counts.clone();
            let progress = progress.clone();
            let note = match kind {
                Kind::Failed => Some(format!("failed {}: {reply}", job.email)),
                Kind::Deferred | Kind::Lost => Some(format!("deferred {}: {reply}", job.email)),
                Kind::Uncertain => Some(format!("uncertain {}: {reply}", job.email)),
                _ => None,
            };
            shared.journal.commit(&record, move || {
                let counter = match kind {
                    Kind::Accepted => &counts.accepted,
                    Kind::Failed => &counts.failed,
                    Kind::Uncertain => &counts.uncertain,
                    _ => &counts.deferred,
                };
                counter.fetch_add(1, Ordering::SeqCst);
                progress.inc();
                if let Some(note) = note {
                    progress.note(&note);
                }
            })?;
            match outcome {
                Outcome::Accepted(_) => shared.consecutive_failures.store(0, Ordering::SeqCst),
                Outcome::Permanent(reply, _)
                | Outcome::Transient(reply)
                | Outcome::Uncertain(reply)
                | Outcome::Lost(reply) => failure(&shared, reply),
            }
            break;
        }
    }
    sender.close().await;
    Ok(())
}

fn failure(shared: &Shared, reply: String) {
    let n = shared.consecutive_failures.fetch_add(1, Ordering::SeqCst) + 1;
    if n >= shared.max_consecutive_failures {
        shared.halt(Stop::TooManyFailures(reply));
    }
}
