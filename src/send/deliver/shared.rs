//! What the workers of one run share: the pace, the journal, the queue of
//! messages, why the run stops, and the outcomes counted so far.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::throttle::Recent;
use super::{Job, Named, Stop};
use crate::journal;
use crate::model::config::Config;
use crate::send::limiter::{Limiter, Ticket};
use crate::send::plan::Plan;
use crate::send::suppress::Suppressions;

/// State the workers share.
pub(super) struct Shared {
    limiter: Mutex<Limiter>,
    pub journal: journal::Handle,
    pub suppressions: Suppressions,
    pub jobs: async_channel::Receiver<Job>,
    stop: AtomicBool,
    pub stop_reason: Mutex<Option<Stop>>,
    pub consecutive_failures: AtomicU32,
    /// Outcomes, counted once they are on disk.
    pub counts: Arc<Counts>,
    /// Recipients whose connection was lost after their message was sent.
    pub lost: Mutex<Named>,
    /// How many connections may be open: fewer than configured after the
    /// relay said "too many connections".
    pub connections: Connections,
    /// Recent outcomes: mostly temporary failures is throttling too.
    pub outcomes: Recent,
    /// When the relay last accepted a message (or the run started).
    pub last_accepted: Mutex<Instant>,
    /// How long the relay may throttle every message before the run stops.
    pub patience: Duration,
    pub retries: u32,
    pub max_consecutive_failures: u32,
    pub retry_base: Duration,
}

impl Shared {
    /// The state at the start of a run over `connections` connections.
    pub fn new(
        config: &Config,
        plan: &Plan,
        journal: journal::Handle,
        jobs: async_channel::Receiver<Job>,
        connections: usize,
    ) -> Shared {
        let now = Instant::now();
        let wall = journal::now();
        let history = plan
            .recent_attempts
            .iter()
            .map(|t| Duration::from_secs_f64((wall - t).max(0.0)));
        Shared {
            limiter: Mutex::new(Limiter::new(&config.sending, history, now)),
            journal,
            suppressions: Suppressions::new(
                &plan.list_path,
                &plan.list_meta,
                &config.paths.unsubscribe_log,
                plan.one_click_read,
                plan.one_click.clone(),
            ),
            jobs,
            stop: AtomicBool::new(false),
            stop_reason: Mutex::new(None),
            consecutive_failures: AtomicU32::new(0),
            counts: Arc::new(Counts::default()),
            lost: Mutex::new(Named::default()),
            connections: Connections::new(connections),
            outcomes: Recent::default(),
            last_accepted: Mutex::new(Instant::now()),
            patience: super::throttle_patience(),
            retries: config.sending.retries,
            max_consecutive_failures: config.sending.max_consecutive_failures,
            retry_base: super::retry_base(),
        }
    }

    pub fn halt(&self, reason: Stop) {
        let mut slot = self.stop_reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stopped for too many consecutive failures.
    pub fn gave_up(&self) -> bool {
        matches!(
            *self.stop_reason.lock().unwrap_or_else(|e| e.into_inner()),
            Some(Stop::TooManyFailures(_))
        )
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The flag the producer watches.
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }

    pub fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A send is over: hands its ticket back.
    pub fn release(&self, ticket: Ticket, accepted: bool) {
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
pub(super) struct Connections {
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
    pub fn may_use(&self, index: usize) -> bool {
        let mut allowed = self.allowed.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if allowed.0 < self.configured && now.duration_since(allowed.1) >= CONNECTION_RECOVERY {
            *allowed = (allowed.0 + 1, now);
        }
        index < allowed.0
    }

    /// Halves the count (at most once a second); returns the new count.
    pub fn cut(&self) -> Option<usize> {
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

/// Outcomes on disk so far.
#[derive(Default)]
pub(super) struct Counts {
    pub accepted: AtomicU64,
    pub failed: AtomicU64,
    pub deferred: AtomicU64,
    pub uncertain: AtomicU64,
}
