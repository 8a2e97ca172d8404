//! Executing a plan: a producer thread streams the surveyed subscriber file
//! and builds the selected messages; a few async workers (one per
//! connection) hand them to the transport; a journal thread makes records
//! durable in groups (one fsync for many records).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lettre::address::Envelope;

use super::limiter::{Limiter, Permit, Ticket};
use super::pipeline::{self, Connection};
use super::plan::Plan;
use super::suppress::Suppressions;
use super::transport::{self, After, Outbox, Outcome, SmtpSettings};
use crate::journal::{self, Kind, Line};
use crate::model::config::{Config, Transport};
use crate::model::subscribers::{Subscriber, SubscriberReader};
use crate::render::message::Composer;

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

/// One connection's worth of transport.
#[allow(clippy::large_enum_variant)] // one per connection, never moved in bulk
pub enum Sender {
    Outbox(Outbox),
    /// Lockstep SMTP (lettre): for servers without PIPELINING, or
    /// `pipelining = false`.
    Smtp {
        settings: SmtpSettings,
        conn: Option<Box<lettre::transport::smtp::client::AsyncSmtpConnection>>,
        sent_on_conn: u64,
        max_per_conn: u64,
    },
    /// Pipelined SMTP ([`pipeline`]).
    Pipelined(Piped),
}

/// A pipelining connection and when to renew it.
pub struct Piped {
    settings: pipeline::Settings,
    /// For a server met later that does not offer PIPELINING.
    lockstep: SmtpSettings,
    conn: Option<Box<Connection>>,
    sent_on_conn: u64,
    max_per_conn: u64,
}

impl Piped {
    /// The open connection, opening one if there is none (or it is used up
    /// or broken).
    async fn ready(&mut self) -> Result<&mut Connection, String> {
        if self.sent_on_conn >= self.max_per_conn
            || self.conn.as_ref().is_some_and(|c| c.has_broken())
        {
            self.close().await;
        }
        if self.conn.is_none() {
            let conn = self
                .settings
                .connect()
                .await
                .map_err(|e| format!("cannot connect: {e:#}"))?;
            self.conn = Some(Box::new(conn));
            self.sent_on_conn = 0;
        }
        self.conn
            .as_deref_mut()
            .ok_or_else(|| "no connection".to_string())
    }

    /// Leaves the connection as a transaction's end says.
    async fn after(&mut self, after: After) {
        match after {
            After::Keep => {}
            After::Quit => self.close().await,
            After::Drop => self.conn = None,
        }
    }

    async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.quit(Duration::from_secs(2)).await;
        }
        self.sent_on_conn = 0;
    }

    /// Sends one message on its own (two round trips).
    async fn send(&mut self, job: &Job) -> Outcome {
        let conn = match self.ready().await {
            Ok(conn) => conn,
            Err(why) => return Outcome::Transient(why),
        };
        let begun = match conn.begin(&job.envelope, &job.bytes) {
            Ok(begun) => begun,
            Err(outcome) => return outcome,
        };
        let (_, written) = conn.send_queued().await;
        if let Err(e) = written {
            self.conn = None;
            return Outcome::Transient(format!("the connection failed: {e}"));
        }
        if let Err((outcome, after)) = conn.envelope_replies(begun).await {
            self.after(after).await;
            return outcome;
        }
        conn.queue_message(&job.bytes);
        let end = conn.queued();
        let (done, written) = conn.send_queued().await;
        let (outcome, after) = match written {
            Ok(()) => conn.data_reply().await,
            Err(e) => unsent(done >= end, &e),
        };
        self.sent_on_conn += 1;
        self.after(after).await;
        outcome
    }
}

/// The outcome of a message whose write failed: lost if its final dot had
/// left, else temporary (the server cannot have it).
fn unsent(dot_left: bool, e: &std::io::Error) -> (Outcome, After) {
    let outcome = if dot_left {
        Outcome::Lost(format!(
            "the connection was lost after the whole message was sent ({e}); it may have been delivered"
        ))
    } else {
        Outcome::Transient(format!(
            "the connection failed while sending the message: {e}"
        ))
    };
    (outcome, After::Drop)
}

impl Sender {
    /// Opens the transport; for SMTP this connects, so an unreachable
    /// server is an error before anything is recorded. A server that
    /// offers PIPELINING gets the pipelining client, unless `pipelining =
    /// false`.
    pub async fn open(config: &Config) -> Result<Sender> {
        let smtp = match &config.transport {
            Transport::Outbox { dir } => return Ok(Sender::Outbox(Outbox::create(dir.clone())?)),
            Transport::Smtp(smtp) => smtp,
        };
        let unreachable = |describe: String| {
            format!(
                "cannot connect to the SMTP server {describe}; check [smtp] in `{}`. Nothing was sent",
                config.path.display()
            )
        };
        let max_per_conn = config.sending.max_per_connection.max(1);
        let lockstep = SmtpSettings::new(smtp)?;
        if smtp.pipelining {
            let settings = pipeline::Settings::new(smtp)?;
            let conn = settings
                .connect()
                .await
                .with_context(|| unreachable(lockstep.describe()))?;
            if conn.ext.pipelining {
                return Ok(Sender::Pipelined(Piped {
                    settings,
                    lockstep,
                    conn: Some(Box::new(conn)),
                    sent_on_conn: 0,
                    max_per_conn,
                }));
            }
            conn.quit(Duration::from_secs(2)).await;
        }
        let conn = lockstep
            .connect()
            .await
            .with_context(|| unreachable(lockstep.describe()))?;
        Ok(Sender::Smtp {
            settings: lockstep,
            conn: Some(Box::new(conn)),
            sent_on_conn: 0,
            max_per_conn,
        })
    }

    fn sibling(&self) -> Sender {
        match self {
            Sender::Outbox(o) => Sender::Outbox(Outbox { dir: o.dir.clone() }),
            Sender::Smtp {
                settings,
                max_per_conn,
                ..
            } => Sender::Smtp {
                settings: settings.clone(),
                conn: None,
                sent_on_conn: 0,
                max_per_conn: *max_per_conn,
            },
            Sender::Pipelined(p) => Sender::Pipelined(Piped {
                settings: p.settings.clone(),
                lockstep: p.lockstep.clone(),
                conn: None,
                sent_on_conn: 0,
                max_per_conn: p.max_per_conn,
            }),
        }
    }

    /// Sends one message and waits for the outcome.
    pub async fn send(&mut self, job: &Job) -> Outcome {
        match self {
            Sender::Outbox(outbox) => outbox.deliver(&job.message_id, &job.bytes),
            Sender::Pipelined(piped) => piped.send(job).await,
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
                    transport::smtp_send(c, &job.envelope, &job.bytes, settings.timeouts()).await;
                *sent_on_conn += 1;
                match after {
                    After::Keep => {}
                    // A fresh connection clears a half-finished transaction.
                    // QUIT is a courtesy: a server that does not answer it
                    // at once must not hold up the run.
                    After::Quit => {
                        if let Some(mut c) = conn.take() {
                            let wait = settings.timeouts().greeting.min(Duration::from_secs(2));
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
        match self {
            Sender::Smtp { conn, .. } => {
                if let Some(mut c) = conn.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(5), c.quit()).await;
                }
            }
            Sender::Pipelined(piped) => piped.close().await,
            Sender::Outbox(_) => {}
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

/// State the workers share.
struct Shared {
    limiter: Mutex<Limiter>,
    journal: journal::Handle,
    suppressions: Suppressions,
    jobs: async_channel::Receiver<Job>,
    stop: AtomicBool,
    stop_reason: Mutex<Option<Stop>>,
    consecutive_failures: AtomicU32,
    /// Outcomes, counted once they are on disk.
    counts: Arc<Counts>,
    /// Recipients whose connection was lost after their message was sent.
    lost: Mutex<Named>,
    /// How many connections may be open: fewer than configured after the
    /// relay said "too many connections".
    connections: Connections,
    /// Recent outcomes: mostly temporary failures is throttling too.
    outcomes: Recent,
    /// When the relay last accepted a message (or the run started).
    last_accepted: Mutex<Instant>,
    /// How long the relay may throttle every message before the run stops.
    patience: Duration,
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

    /// Stopped for too many consecutive failures.
    fn gave_up(&self) -> bool {
        matches!(
            *self.stop_reason.lock().unwrap_or_else(|e| e.into_inner()),
            Some(Stop::TooManyFailures(_))
        )
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A send is over: hands its ticket back.
    fn release(&self, ticket: Ticket, accepted: bool) {
        let now = Instant::now();
        let mut limiter = self.limiter();
        limiter.finish(ticket, now);
        if accepted {
            limiter.accepted(now);
        }
    }
}

/// The connection count, halved on "too many connections" and raised by
/// one every [`CONNECTION_RECOVERY`] without another.
struct Connections {
    configured: usize,
    allowed: Mutex<(usize, Instant)>,
}

const CONNECTION_RECOVERY: Duration = Duration::from_secs(10);

impl Connections {
    fn new(configured: usize) -> Connections {
        Connections {
            configured,
            allowed: Mutex::new((configured, Instant::now())),
        }
    }

    /// Whether the worker with this index may have a connection now.
    fn may_use(&self, index: usize) -> bool {
        let mut allowed = self.allowed.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if allowed.0 < self.configured && now.duration_since(allowed.1) >= CONNECTION_RECOVERY {
            *allowed = (allowed.0 + 1, now);
        }
        index < allowed.0
    }

    /// Halves the count (at most once a second); returns the new count.
    fn cut(&self) -> Option<usize> {
        let mut allowed = self.allowed.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if now.duration_since(allowed.1) < Duration::from_secs(1) && allowed.0 < self.configured {
            return None;
        }
        let fewer = (allowed.0 / 2).max(1);
        *allowed = (fewer, now);
        Some(fewer)
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
    let connections = match config.transport {
        Transport::Outbox { .. } => 1,
        Transport::Smtp(_) => config.sending.connections,
    };
    let (job_tx, job_rx) = async_channel::bounded::<Job>(connections * 4);
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
        jobs: job_rx,
        stop: AtomicBool::new(false),
        stop_reason: Mutex::new(None),
        consecutive_failures: AtomicU32::new(0),
        counts: Arc::new(Counts::default()),
        lost: Mutex::new(Named::default()),
        connections: Connections::new(connections),
        outcomes: Recent::default(),
        last_accepted: Mutex::new(Instant::now()),
        patience: throttle_patience(),
        retries: config.sending.retries,
        max_consecutive_failures: config.sending.max_consecutive_failures,
        retry_base: retry_base(),
    });
    let progress = crate::progress::Progress::new(planned);

    let produced = std::thread::scope(|scope| -> Result<u64> {
        let shared_ref = &shared;
        let producer = scope.spawn(move || {
            produce(plan, composer, limit, &shared_ref.stop, |job| {
                job_tx.send_blocking(job).is_ok()
            })
        });
        runtime.block_on(async {
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
                    match sender {
                        Sender::Pipelined(piped) => {
                            pipelined_worker(&shared, index, piped, &progress).await
                        }
                        other => {
                            lockstep_worker(&shared, index, other, &progress, Default::default())
                                .await
                        }
                    }
                }));
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
        shared.jobs.close();
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

/// A message waiting to be (re)tried by one worker.
struct Ready {
    job: Job,
    /// Attempts that met a temporary failure so far.
    tries: u32,
    /// Of which the relay throttled (they do not count against `retries`).
    throttled: u32,
    not_before: Instant,
    /// A start time already reserved for it.
    permit: Option<(Instant, Ticket)>,
}

impl Ready {
    fn new(job: Job) -> Ready {
        Ready {
            job,
            tries: 0,
            throttled: 0,
            not_before: Instant::now(),
            permit: None,
        }
    }
}

/// Throttled tries of one message before it counts as an ordinary failure.
const MAX_THROTTLED: u32 = 50;

/// Sleeps until `at`, waking early if the run stops.
async fn sleep_until(shared: &Shared, at: Instant) {
    while Instant::now() < at && !shared.stopped() {
        let step = at
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        tokio::time::sleep(step).await;
    }
}

/// What a worker does next.
enum Next {
    Send(Ready),
    /// Too many connections for the relay: close this one and wait.
    Rest,
    Done,
}

/// The next message for this worker: its own retries first, then the
/// shared queue.
async fn next_job(
    shared: &Shared,
    index: usize,
    queue: &mut std::collections::VecDeque<Ready>,
) -> Next {
    if shared.stopped() {
        return Next::Done;
    }
    if let Some(ready) = queue.pop_front() {
        sleep_until(shared, ready.not_before).await;
        if shared.stopped() {
            return Next::Done;
        }
        return Next::Send(ready);
    }
    if !shared.connections.may_use(index) {
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

/// How long a worker told to rest waits before looking again.
const REST: Duration = Duration::from_millis(200);

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

/// Whether a message may still go out.
enum Check {
    Send,
    /// Unsubscribed during the run: counted, never sent.
    Skip,
    /// The run halted: a file it must watch cannot be read.
    Halt,
}

/// The last moment to honour an unsubscribe: nothing is handed over after
/// it is in the file or the log.
fn suppression(shared: &Shared, job: &Job, progress: &crate::progress::Progress) -> Check {
    match shared.suppressions.blocks(&job.key) {
        Ok(false) => Check::Send,
        Ok(true) => {
            progress.inc();
            progress.note(&format!(
                "not sent to {}: unsubscribed during the run",
                job.email
            ));
            Check::Skip
        }
        Err(e) => {
            shared.halt(Stop::Unreadable {
                why: format!("{:#}", e.error),
                path: e.path,
            });
            Check::Halt
        }
    }
}

/// What the relay meant by a temporary reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Throttle {
    /// Slow down (SES `454 Throttling failure: Maximum sending rate
    /// exceeded`, `421 … rate`).
    Rate,
    /// Fewer connections (`421 Too many connections`).
    Connections,
    /// Nothing more today (SES `454 Throttling failure: Daily message
    /// quota exceeded`).
    Quota,
}

/// Reads a temporary reply for throttling.
fn throttling(reply: &str) -> Option<Throttle> {
    let reply = reply.strip_prefix("cannot connect: ").unwrap_or(reply);
    let code = reply.get(..3)?;
    let text = reply.to_ascii_lowercase();
    if !code.starts_with('4') {
        return None;
    }
    if text.contains("quota") && (text.contains("daily") || text.contains("day")) {
        return Some(Throttle::Quota);
    }
    match code {
        "454" if text.contains("throttl") || text.contains("rate") => Some(Throttle::Rate),
        "421" | "451" | "454" if text.contains("too many connections") => {
            Some(Throttle::Connections)
        }
        "421" | "451" if text.contains("too many") || text.contains("rate") => Some(Throttle::Rate),
        _ => None,
    }
}

/// Many 4xx replies in a short time are throttling too: at least [`BURST`]
/// in [`BURST_WINDOW`], and most of the outcomes in it (a few unlucky
/// recipients on a busy list are not; nor is a relay that is down, which
/// does not answer at all).
const BURST: usize = 10;
const BURST_WINDOW: Duration = Duration::from_secs(5);

/// Recent outcomes, as temporary or not.
#[derive(Default)]
struct Recent {
    window: Mutex<std::collections::VecDeque<(Instant, bool)>>,
}

impl Recent {
    /// Adds an outcome; true when temporary failures make a burst (and
    /// then starts counting afresh).
    fn push(&self, temporary: bool) -> bool {
        let now = Instant::now();
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        window.push_back((now, temporary));
        while window
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > BURST_WINDOW)
        {
            window.pop_front();
        }
        let temporary = window.iter().filter(|(_, t)| *t).count();
        let burst = temporary >= BURST && temporary * 2 > window.len();
        if burst {
            window.clear();
        }
        burst
    }
}

/// Lowers the pace (and for `Connections` the connection count) and says
/// so on the progress line.
fn slow_down(shared: &Shared, kind: Throttle, why: &str, progress: &crate::progress::Progress) {
    let now = Instant::now();
    if kind == Throttle::Connections
        && let Some(count) = shared.connections.cut()
    {
        progress.note(&format!(
            "the relay allows fewer connections: using {count} (it said `{why}`)"
        ));
    }
    let cut = shared.limiter().throttled(now, why);
    if let Some(rate) = cut {
        progress.note(&format!("slowed to {rate:.1}/s: the relay said `{why}`"));
    }
    pace_note(shared, progress);
}

/// The learnt pace beside the progress bar, while there is one.
fn pace_note(shared: &Shared, progress: &crate::progress::Progress) {
    let note = match shared.limiter().pace() {
        Some((rate, why)) => format!("paced at {rate:.0}/s, the relay said `{why}`"),
        None => String::new(),
    };
    progress.set_message(&note);
}

/// Records an outcome and counts it once it is on disk. Returns when to
/// try the message again, if it should be.
fn settle(
    shared: &Shared,
    ready: &mut Ready,
    outcome: Outcome,
    progress: &crate::progress::Progress,
) -> Result<Option<Duration>> {
    pace_note(shared, progress);
    let job = &ready.job;
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
    let throttle = match &outcome {
        Outcome::Transient(reply) => throttling(reply),
        _ => None,
    };
    if let Some(kind) = throttle {
        if kind == Throttle::Quota {
            // Not an outcome: the message is still to send, another day.
            shared.journal.write(&record)?;
            shared.halt(Stop::RelayQuota(reply.clone()));
            return Ok(None);
        }
        let since = shared
            .last_accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        if since >= shared.patience {
            // Not an outcome: the message is still to send, later.
            shared.journal.write(&record)?;
            shared.halt(Stop::Throttled(reply.clone()));
            return Ok(None);
        }
        if ready.throttled < MAX_THROTTLED && !shared.stopped() {
            ready.throttled += 1;
            slow_down(shared, kind, reply, progress);
            shared.journal.write(&record)?;
            let pause = if kind == Throttle::Connections {
                Duration::from_secs(1)
            } else {
                Duration::ZERO
            };
            return Ok(Some(pause));
        }
    } else if shared
        .outcomes
        .push(matches!(&outcome, Outcome::Transient(r) if r.starts_with('4')))
    {
        let why = format!(
            "most replies in the last {} seconds were temporary failures, the last `{reply}`",
            BURST_WINDOW.as_secs()
        );
        slow_down(shared, Throttle::Rate, &why, progress);
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
    let counts = shared.counts.clone();
    let progress_done = progress.clone();
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
        progress_done.inc();
        if let Some(note) = note {
            progress_done.note(&note);
        }
    })?;
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
        | Outcome::Lost(reply) => failure(shared, reply),
    }
    Ok(None)
}

/// Puts a message back to be tried after `delay`, when [`settle`] says so.
fn requeue(
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

/// What a worker starts with next.
#[allow(clippy::large_enum_variant)] // one at a time, moved once
enum Start {
    /// This message, at this time (its ticket held), not unsubscribed.
    Go(Ready, Instant, Ticket),
    /// Too many connections for the relay: close this one and wait.
    Rest,
    /// That one was unsubscribed meanwhile: take the next.
    Again,
    Done,
}

/// The next message, its start time waited for and its unsubscribe
/// checked.
async fn start(
    shared: &Shared,
    index: usize,
    queue: &mut std::collections::VecDeque<Ready>,
    progress: &crate::progress::Progress,
) -> Start {
    let mut ready = match next_job(shared, index, queue).await {
        Next::Send(ready) => ready,
        Next::Rest => return Start::Rest,
        Next::Done => return Start::Done,
    };
    let Some((at, ticket)) = permit(shared, &mut ready).await else {
        return Start::Done;
    };
    match suppression(shared, &ready.job, progress) {
        Check::Send => Start::Go(ready, at, ticket),
        Check::Skip => {
            shared.release(ticket, false);
            Start::Again
        }
        Check::Halt => {
            shared.release(ticket, false);
            Start::Done
        }
    }
}

/// One message at a time: the outbox, and SMTP servers that do not
/// pipeline.
async fn lockstep_worker(
    shared: &Shared,
    index: usize,
    mut sender: Sender,
    progress: &crate::progress::Progress,
    mut queue: std::collections::VecDeque<Ready>,
) -> Result<()> {
    loop {
        let (mut ready, ticket) = match start(shared, index, &mut queue, progress).await {
            Start::Go(ready, _, ticket) => (ready, ticket),
            Start::Rest => {
                sender.close().await;
                tokio::time::sleep(REST).await;
                continue;
            }
            Start::Again => continue,
            Start::Done => break,
        };
        let job = &ready.job;
        shared
            .journal
            .write(&Line::event(Kind::Attempt, &job.key, &job.email, ""))?;
        let outcome = sender.send(job).await;
        shared.release(ticket, matches!(outcome, Outcome::Accepted(_)));
        let again = settle(shared, &mut ready, outcome, progress)?;
        requeue(&mut queue, ready, again);
    }
    sender.close().await;
    Ok(())
}

/// A message whose MAIL, RCPT and DATA are on their way.
struct InFlight {
    ready: Ready,
    at: Instant,
    ticket: Ticket,
    begun: pipeline::Begun,
}

/// How far ahead a reserved start time may be for the next transaction to
/// ride along with a message: the server holds it open meanwhile.
const RIDE_ALONG: Duration = Duration::from_secs(2);

/// The next message to open alongside the current one, reserved and
/// checked, or `None` (nothing waiting, not yet allowed, or unsuitable;
/// whatever was taken is put back).
fn ride_along(
    shared: &Shared,
    index: usize,
    queue: &mut std::collections::VecDeque<Ready>,
    conn: &mut Connection,
    progress: &crate::progress::Progress,
) -> Option<InFlight> {
    if shared.stopped() || !shared.connections.may_use(index) {
        return None;
    }
    let now = Instant::now();
    let mut ready = match queue.front() {
        Some(front) if front.not_before <= now => queue.pop_front()?,
        Some(_) => return None,
        None => Ready::new(shared.jobs.try_recv().ok()?),
    };
    let (at, ticket) = match ready.permit.take() {
        Some(permit) => permit,
        None => match shared.limiter().reserve(now) {
            Permit::At(at, ticket) => (at, ticket),
            Permit::Busy => {
                queue.push_front(ready);
                return None;
            }
            Permit::DailyLimit(wait) => {
                shared.halt(Stop::DailyLimit(wait));
                return None;
            }
        },
    };
    if at > now + RIDE_ALONG {
        ready.permit = Some((at, ticket));
        queue.push_front(ready);
        return None;
    }
    match suppression(shared, &ready.job, progress) {
        Check::Send => {}
        Check::Skip | Check::Halt => {
            shared.release(ticket, false);
            return None;
        }
    }
    match conn.begin(&ready.job.envelope, &ready.job.bytes) {
        Ok(begun) => Some(InFlight {
            ready,
            at,
            ticket,
            begun,
        }),
        Err(_) => {
            // The normal path records why the server cannot take it.
            ready.permit = Some((at, ticket));
            queue.push_front(ready);
            None
        }
    }
}

/// Pipelining (RFC 2920): each message's content, its final dot and the
/// next message's MAIL, RCPT and DATA go out in one write, so a steady
/// stream costs one round trip per message.
async fn pipelined_worker(
    shared: &Shared,
    index: usize,
    mut piped: Piped,
    progress: &crate::progress::Progress,
) -> Result<()> {
    let mut queue = std::collections::VecDeque::new();
    'next: loop {
        let (mut ready, at, ticket) = match start(shared, index, &mut queue, progress).await {
            Start::Go(ready, at, ticket) => (ready, at, ticket),
            Start::Rest => {
                piped.close().await;
                tokio::time::sleep(REST).await;
                continue;
            }
            Start::Again => continue,
            Start::Done => break,
        };
        let conn = match piped.ready().await {
            Ok(conn) => conn,
            Err(why) => {
                shared.release(ticket, false);
                let again = settle(shared, &mut ready, Outcome::Transient(why), progress)?;
                requeue(&mut queue, ready, again);
                continue;
            }
        };
        if !conn.ext.pipelining {
            // A new connection reached a server that does not offer it (a
            // pool of servers behind one name): one command at a time from
            // here on.
            piped.close().await;
            ready.permit = Some((at, ticket));
            queue.push_front(ready);
            let sender = Sender::Smtp {
                settings: piped.lockstep.clone(),
                conn: None,
                sent_on_conn: 0,
                max_per_conn: piped.max_per_conn,
            };
            return lockstep_worker(shared, index, sender, progress, queue).await;
        }
        let begun = match conn.begin(&ready.job.envelope, &ready.job.bytes) {
            Ok(begun) => begun,
            Err(outcome) => {
                shared.release(ticket, false);
                let again = settle(shared, &mut ready, outcome, progress)?;
                requeue(&mut queue, ready, again);
                continue;
            }
        };
        let (_, written) = conn.send_queued().await;
        if let Err(e) = written {
            piped.conn = None;
            shared.release(ticket, false);
            let outcome = Outcome::Transient(format!("the connection failed: {e}"));
            let again = settle(shared, &mut ready, outcome, progress)?;
            requeue(&mut queue, ready, again);
            continue;
        }
        let mut current = InFlight {
            ready,
            at,
            ticket,
            begun,
        };
        loop {
            let InFlight {
                mut ready,
                at,
                ticket,
                begun,
            } = current;
            let Some(conn) = piped.conn.as_deref_mut() else {
                // Never: a transaction in flight keeps its connection.
                ready.permit = Some((at, ticket));
                queue.push_front(ready);
                continue 'next;
            };
            if let Err((outcome, after)) = conn.envelope_replies(begun).await {
                piped.after(after).await;
                shared.release(ticket, false);
                let again = settle(shared, &mut ready, outcome, progress)?;
                requeue(&mut queue, ready, again);
                continue 'next;
            }
            // 354: the server waits for the content (a message in flight,
            // finished even when the run is stopping: it holds a start
            // time within the limits). Its start time comes first (a
            // ride-along's may be ahead), then the last checks before the
            // attempt: one unsubscribed meanwhile (even while waiting for
            // that start time) is not mailed; and a ride-along opened
            // before the outcome that made the run give up
            // (max-consecutive-failures) is not sent, as the lockstep path
            // would not have started it. Either is abandoned by closing
            // the connection: a transaction without its final dot is never
            // delivered.
            sleep_until(shared, at).await;
            if shared.gave_up() {
                piped.conn = None;
                shared.release(ticket, false);
                queue.push_front(ready);
                continue 'next;
            }
            if !matches!(suppression(shared, &ready.job, progress), Check::Send) {
                piped.conn = None;
                shared.release(ticket, false);
                continue 'next;
            }
            let job = &ready.job;
            shared
                .journal
                .write(&Line::event(Kind::Attempt, &job.key, &job.email, ""))?;
            conn.queue_message(&job.bytes);
            let end = conn.queued();
            let following = if piped.sent_on_conn + 1 < piped.max_per_conn {
                ride_along(shared, index, &mut queue, conn, progress)
            } else {
                None
            };
            let (done, written) = conn.send_queued().await;
            let (outcome, after) = match written {
                Ok(()) => conn.data_reply().await,
                Err(e) => unsent(done >= end, &e),
            };
            piped.sent_on_conn += 1;
            shared.release(ticket, matches!(outcome, Outcome::Accepted(_)));
            let go_on = after == After::Keep && following.is_some();
            if !go_on {
                match (&following, after) {
                    // QUIT now would be read as the next message's content.
                    (Some(_), _) | (None, After::Drop) => piped.conn = None,
                    (None, after) => piped.after(after).await,
                }
            }
            let again = settle(shared, &mut ready, outcome, progress)?;
            requeue(&mut queue, ready, again);
            match following {
                Some(next) if go_on => current = next,
                Some(InFlight {
                    mut ready,
                    at,
                    ticket,
                    ..
                }) => {
                    // Its commands went out on a connection now closed;
                    // nothing of it was sent. It goes first on the next.
                    ready.permit = Some((at, ticket));
                    queue.push_front(ready);
                    continue 'next;
                }
                None => continue 'next,
            }
        }
    }
    piped.close().await;
    Ok(())
}

fn failure(shared: &Shared, reply: String) {
    let n = shared.consecutive_failures.fetch_add(1, Ordering::SeqCst) + 1;
    if n >= shared.max_consecutive_failures {
        shared.halt(Stop::TooManyFailures(reply));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_replies_are_told_apart() {
        let cases = [
            (
                "454 Throttling failure: Maximum sending rate exceeded.",
                Some(Throttle::Rate),
            ),
            (
                "454 Throttling failure: Daily message quota exceeded.",
                Some(Throttle::Quota),
            ),
            (
                "cannot connect: 421 4.7.0 Too many connections, try again later",
                Some(Throttle::Connections),
            ),
            (
                "421 4.7.28 Our system has detected an unusual rate of unsolicited mail",
                Some(Throttle::Rate),
            ),
            (
                "451 4.7.500 Server busy, too many messages",
                Some(Throttle::Rate),
            ),
            ("451 4.3.0 Random temporary failure", None),
            ("550 5.7.1 rate limit", None),
            ("the server closed the connection", None),
        ];
        for (reply, want) in cases {
            assert_eq!(throttling(reply), want, "{reply}");
        }
    }

    #[test]
    fn a_burst_is_mostly_temporary_failures() {
        let few = Recent::default();
        for i in 0..100 {
            assert!(!few.push(i % 5 == 0), "one in five is not a burst");
        }
        let many = Recent::default();
        let bursts = (0..12).filter(|_| many.push(true)).count();
        assert_eq!(bursts, 1);
    }
}
