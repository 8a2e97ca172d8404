//! `newsletter send`: one personalised message per subscribed address,
//! within the configured limits, with every outcome journaled.
//!
//! A producer thread streams the subscriber file and builds messages; a few
//! async workers (one per connection) hand them to the transport; a journal
//! thread makes records durable in groups (one fsync for many records).

mod journal;
mod limiter;
mod transport;

pub use journal::{Kind, Record, Replay, State};

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lettre::address::Envelope;
use tokio::sync::mpsc;

use crate::cli::SendArgs;
use crate::config::{Config, Transport};
use crate::message::Composer;
use crate::preview::PREVIEW_SECRET;
use crate::render::Rendered;
use crate::subscribers::{self, Columns, Duplicates, Status, Subscriber, SubscriberReader};
use crate::token::Signer;
use limiter::{Limiter, Permit};
use transport::{After, Outbox, Outcome, SmtpSettings};

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
}

impl From<SendArgs> for SendRequest {
    fn from(a: SendArgs) -> Self {
        SendRequest {
            issue: a.issue,
            subscribers: a.subscribers,
            dry_run: a.dry_run,
            test_to: a.test_to,
            limit: a.limit,
            yes: a.yes,
            skip_invalid: a.skip_invalid,
            retry_failed: a.retry_failed,
            resend_uncertain: a.resend_uncertain,
        }
    }
}

/// Path of an issue's journal under the configured folder.
pub fn journal_path(config: &Config, issue_id: &str) -> PathBuf {
    journal::path(&config.paths.journal, issue_id)
}

/// Replays an issue's journal.
pub fn replay(config: &Config, issue_id: &str) -> Result<Replay> {
    journal::replay(&journal_path(config, issue_id))
}

pub fn run(config: &Config, req: &SendRequest) -> Result<ExitCode> {
    let loaded = crate::load_issue(config, &req.issue)?;
    let rendered = &loaded.rendered;
    let list_path = req
        .subscribers
        .clone()
        .unwrap_or_else(|| config.paths.subscribers.clone());

    let secret = config.unsubscribe_secret();
    let secret = match (secret, req.dry_run) {
        (Some(s), _) => s.into_bytes(),
        (None, true) => {
            eprintln!(
                "warning: `{}` is not set; a real send would refuse to start. This dry run uses a placeholder",
                config.list.unsubscribe_secret_env
            );
            PREVIEW_SECRET.to_vec()
        }
        (None, false) => bail!(
            "the unsubscribe secret `{}` is not set, so unsubscribe links cannot be signed; export it (a long random string, kept the same for every issue) and run again",
            config.list.unsubscribe_secret_env
        ),
    };

    if !req.test_to.is_empty() {
        return send_test(config, rendered, &secret, &req.test_to, req.dry_run);
    }

    let surveyed = file_stamp(&list_path)?;
    let survey = subscribers::survey(&list_path)?;
    for warning in &survey.warnings {
        eprintln!("warning: {warning}");
    }
    // An unreadable row may hide addresses (a `"` never closed swallows the
    // rows after it): like an invalid one, it stops the run.
    let blocking = survey.invalid + survey.unknown_status + survey.conflicts + survey.malformed;
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
    if blocking > 0 && !req.skip_invalid {
        bail!(
            "`{}` has {} invalid address(es), {} unknown status value(s), {} address(es) listed as both subscribed and not and {} unreadable row(s); nothing was sent. Fix those lines, or pass --skip-invalid to send to the rest",
            list_path.display(),
            survey.invalid,
            survey.unknown_status,
            survey.conflicts,
            survey.malformed
        );
    }
    if survey.duplicates > 0 {
        eprintln!(
            "note: {} duplicate address(es) will be sent once",
            survey.duplicates
        );
    }

    let journal_file = journal_path(config, &rendered.issue_id);
    let replay = journal::replay(&journal_file)?;
    if replay.skipped_lines > 0 {
        eprintln!(
            "warning: {} unreadable line(s) in `{}` were ignored (a crash can leave a torn last line)",
            replay.skipped_lines,
            journal_file.display()
        );
    }
    let uncertain: Vec<&String> = replay
        .states
        .values()
        .filter_map(|s| match s {
            State::Uncertain { email } => Some(email),
            _ => None,
        })
        .collect();
    if !uncertain.is_empty() {
        eprintln!(
            "{} recipient(s) are uncertain: a message was in flight when an earlier run stopped, so they may or may not have it:",
            uncertain.len()
        );
        for email in uncertain.iter().take(20) {
            eprintln!("  {email}");
        }
        if uncertain.len() > 20 {
            eprintln!(
                "  … and {} more (see `newsletter status`)",
                uncertain.len() - 20
            );
        }
        if req.resend_uncertain {
            eprintln!("they will be sent again (--resend-uncertain)");
        } else {
            eprintln!("they are skipped; pass --resend-uncertain to send to them again");
        }
    }

    let policy = Policy {
        retry_failed: req.retry_failed,
        resend_uncertain: req.resend_uncertain,
    };
    let done = replay.count(|s| matches!(s, State::Accepted));
    let skipped_failed = if policy.retry_failed {
        0
    } else {
        replay.count(|s| matches!(s, State::Failed { .. }))
    };
    let skipped_uncertain = if policy.resend_uncertain {
        0
    } else {
        uncertain.len() as u64
    };
    let pending_estimate = survey
        .subscribed
        .saturating_sub(done + skipped_failed + skipped_uncertain);
    let planned = req
        .limit
        .map_or(pending_estimate, |l| l.min(pending_estimate));

    let columns = survey.columns.clone();
    let signer = Signer::new(&config.list.id, &secret);
    let composer = Composer::new(config, rendered, &columns, signer, "")?;

    let plan = Plan {
        composer: &composer,
        list_path: &list_path,
        duplicates: &survey.duplicates_index,
        replay: &replay,
        policy,
        limit: req.limit,
    };
    if req.dry_run {
        return dry_run(&plan);
    }

    eprintln!(
        "Issue `{}`: \"{}\"\nSubscribers: `{}`: {} to mail, {} already sent, {} failed earlier{}, {} uncertain{}\nThis run: {} message(s) via {}\nLimits: {}",
        rendered.issue_id,
        rendered.subject,
        list_path.display(),
        survey.subscribed,
        done,
        replay.count(|s| matches!(s, State::Failed { .. })),
        if policy.retry_failed {
            " (retried)"
        } else {
            ""
        },
        uncertain.len(),
        if policy.resend_uncertain {
            " (re-sent)"
        } else {
            ""
        },
        planned,
        describe_transport(config),
        describe_limits(config),
    );
    if let Some(estimate) = estimate(config, planned) {
        eprintln!("Estimated duration: {estimate}");
    }
    if planned == 0 {
        eprintln!("Nothing to send.");
        return Ok(ExitCode::SUCCESS);
    }
    if !req.yes {
        confirm(&rendered.issue_id)?;
    }

    // Duplicates are known by line number from the survey: the file must be
    // the one surveyed (the confirmation may have waited a long time).
    if file_stamp(&list_path)? != surveyed {
        bail!(
            "`{}` changed while this run was starting; nothing was sent. Run the command again",
            list_path.display()
        );
    }
    let started = Instant::now();
    let report = deliver(config, &plan, &journal_file, planned)?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "Accepted {} · failed {} · deferred {}{} in {:.1} s ({:.0} messages/s)",
        report.accepted,
        report.failed,
        report.deferred,
        if report.uncertain > 0 {
            format!(" · uncertain {}", report.uncertain)
        } else {
            String::new()
        },
        elapsed,
        report.accepted as f64 / elapsed.max(0.001)
    );
    let issue_arg = req.issue.display();
    if !report.lost.is_empty() {
        eprintln!(
            "{} message(s) lost their connection after they had been sent and were sent again (RFC 5321 treats that as a temporary failure); if the server had kept the first copy, these recipients have two (the journal `{}` has every one):",
            report.lost.len(),
            journal_file.display()
        );
        for email in report.lost.iter().take(20) {
            eprintln!("  {email}");
        }
        if report.lost.len() > 20 {
            eprintln!("  … and {} more", report.lost.len() - 20);
        }
    }
    if report.uncertain > 0 {
        eprintln!(
            "{} message(s) got no answer after they were sent, so the server may have them: they are uncertain and not sent again unless you run\n  newsletter send {issue_arg} --resend-uncertain\n(which may deliver them twice; `newsletter status {issue_arg}` lists them).",
            report.uncertain
        );
    }
    match report.stop {
        Some(Stop::Interrupted) => {
            eprintln!(
                "Interrupted. Messages in flight were finished and recorded. Run the same command again to continue:\n  newsletter send {issue_arg}"
            );
            Ok(ExitCode::from(130))
        }
        Some(Stop::DailyLimit(wait)) => {
            eprintln!(
                "The daily limit of {} messages is reached. Run the same command again in {} to continue.",
                config.sending.per_day,
                human_duration(wait)
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Stop::TooManyFailures(reply)) => {
            eprintln!(
                "Stopped after {} failures in a row; the last reply was:\n  {reply}\nThis usually means the login, the sender address or a sending policy is refused. Fix it, then run the same command again to continue.",
                config.sending.max_consecutive_failures
            );
            Ok(ExitCode::from(1))
        }
        None if report.failed > 0 || report.deferred > 0 || report.uncertain > 0 => {
            eprintln!(
                "Some recipients were not accepted; see `newsletter status {issue_arg} --failed-csv failed.csv`. Deferred ones are retried by running send again."
            );
            Ok(ExitCode::from(1))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Size and modification time, to notice a file changed under us.
fn file_stamp(path: &std::path::Path) -> Result<(u64, Option<std::time::SystemTime>)> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok((meta.len(), meta.modified().ok()))
}

/// Which earlier outcomes this run sends to again.
#[derive(Debug, Clone, Copy)]
struct Policy {
    retry_failed: bool,
    resend_uncertain: bool,
}

impl Policy {
    fn wants(&self, state: Option<&State>) -> bool {
        match state {
            None | Some(State::Deferred { .. }) => true,
            Some(State::Accepted) => false,
            Some(State::Failed { .. }) => self.retry_failed,
            Some(State::Uncertain { .. }) => self.resend_uncertain,
        }
    }
}

/// One message ready for the transport.
struct Job {
    key: String,
    email: String,
    message_id: String,
    envelope: Envelope,
    bytes: Vec<u8>,
}

impl Job {
    fn new(subscriber: Subscriber, built: crate::message::Built) -> Job {
        Job {
            key: subscriber.key,
            email: subscriber.email,
            message_id: built.message_id,
            envelope: built.message.envelope().clone(),
            bytes: built.message.formatted(),
        }
    }
}

/// What a run sends: who, from which file, and how each message is built.
struct Plan<'a> {
    composer: &'a Composer<'a>,
    list_path: &'a std::path::Path,
    duplicates: &'a Duplicates,
    replay: &'a Replay,
    policy: Policy,
    limit: Option<u64>,
}

/// Streams the subscriber file and yields the messages this run sends.
fn produce(plan: &Plan, stop: &AtomicBool, mut emit: impl FnMut(Job) -> bool) -> Result<u64> {
    let Plan {
        composer,
        list_path,
        duplicates,
        replay,
        policy,
        limit,
    } = plan;
    let reader = SubscriberReader::open(list_path)?;
    let mut count = 0u64;
    for row in reader {
        if stop.load(Ordering::Relaxed) || limit.is_some_and(|l| count >= l) {
            break;
        }
        let Ok(subscriber) = row else { continue };
        if subscriber.status != Status::Subscribed || duplicates.earlier(&subscriber).is_some() {
            continue;
        }
        if !policy.wants(replay.states.get(&subscriber.key)) {
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

fn dry_run(plan: &Plan) -> Result<ExitCode> {
    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let mut bytes = 0u64;
    let count = produce(plan, &stop, |job| {
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

/// `--test-to`: the issue to staff addresses, subject marked, no journal.
fn send_test(
    config: &Config,
    rendered: &Rendered,
    secret: &[u8],
    addresses: &[String],
    dry_run: bool,
) -> Result<ExitCode> {
    let columns = Columns::minimal();
    let signer = Signer::new(&config.list.id, secret);
    let composer = Composer::new(config, rendered, &columns, signer, "[TEST] ")?;
    let mut jobs = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let email = address.trim();
        if email.parse::<lettre::Address>().is_err() {
            bail!("--test-to `{email}` is not a valid address");
        }
        let subscriber = Subscriber::test(email, i as u64 + 1);
        let built = composer.build(&subscriber)?;
        jobs.push(Job::new(subscriber, built));
    }
    if dry_run {
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
                Outcome::Accepted(_) => eprintln!("test message sent to {}", job.email),
                Outcome::Permanent(reply)
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

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// One connection's worth of transport.
#[allow(clippy::large_enum_variant)] // one per connection, never moved in bulk
enum Sender {
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
    async fn open(config: &Config) -> Result<Sender> {
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

    async fn send(&mut self, job: &Job) -> Outcome {
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

    async fn close(&mut self) {
        if let Sender::Smtp { conn, .. } = self
            && let Some(mut c) = conn.take()
        {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.quit()).await;
        }
    }
}

/// Why a run ended early.
#[derive(Debug, Clone)]
enum Stop {
    Interrupted,
    DailyLimit(Duration),
    TooManyFailures(String),
}

#[derive(Debug, Default)]
struct Report {
    accepted: u64,
    failed: u64,
    deferred: u64,
    uncertain: u64,
    /// Sent again after the connection was lost once they had been sent.
    lost: Named,
    stop: Option<Stop>,
}

/// State the workers share.
struct Shared {
    limiter: Mutex<Limiter>,
    journal: journal::Handle,
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
type Named = std::collections::BTreeSet<String>;

/// Outcomes on disk so far.
#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    failed: AtomicU64,
    deferred: AtomicU64,
    uncertain: AtomicU64,
}

/// Sends everything pending and returns the counts.
#[allow(clippy::too_many_arguments)]
fn deliver(
    config: &Config,
    plan: &Plan,
    journal_file: &std::path::Path,
    planned: u64,
) -> Result<Report> {
    let runtime = runtime()?;
    // Connect first: an unreachable server is an error with nothing recorded.
    let first = runtime.block_on(Sender::open(config))?;

    let (journal_writer, journal) = journal::Writer::spawn(journal_file)?;

    let now = Instant::now();
    let wall = journal::now();
    let history = plan
        .replay
        .accepted_times
        .iter()
        .map(|t| Duration::from_secs_f64((wall - t).max(0.0)));
    let shared = Arc::new(Shared {
        limiter: Mutex::new(Limiter::new(&config.sending, history, now)),
        journal,
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
            produce(plan, &shared_ref.stop, |job| {
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
    drop(shared);
    journal_writer.finish()?;
    progress.finish();
    let report = Report {
        accepted: counts.accepted.load(Ordering::SeqCst),
        failed: counts.failed.load(Ordering::SeqCst),
        deferred: counts.deferred.load(Ordering::SeqCst),
        uncertain: counts.uncertain.load(Ordering::SeqCst),
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
            shared.journal.write(&Record {
                t: journal::now(),
                event: Kind::Attempt,
                key: job.key.clone(),
                email: job.email.clone(),
                reply: String::new(),
            })?;
            let outcome = sender.send(&job).await;
            shared
                .limiter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .finish(ticket, Instant::now());
            let (kind, reply) = match &outcome {
                Outcome::Accepted(reply) => (Kind::Accepted, reply),
                Outcome::Permanent(reply) => (Kind::Failed, reply),
                Outcome::Transient(reply) => (Kind::Deferred, reply),
                Outcome::Uncertain(reply) => (Kind::Uncertain, reply),
                Outcome::Lost(reply) => {
                    shared
                        .lost
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(job.email.clone());
                    (Kind::Deferred, reply)
                }
            };
            let record = Record {
                t: journal::now(),
                event: kind,
                key: job.key.clone(),
                email: if kind == Kind::Accepted {
                    String::new()
                } else {
                    job.email.clone()
                },
                reply: reply.clone(),
            };
            let retry = kind == Kind::Deferred
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
                Kind::Deferred => Some(format!("deferred {}: {reply}", job.email)),
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
                Outcome::Permanent(reply)
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

/// Asks the user to type the issue id.
fn confirm(issue_id: &str) -> Result<()> {
    eprint!("Type the issue id `{issue_id}` to send, or anything else to cancel: ");
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
