//! The pipelining worker (RFC 2920): each message's content, its final dot
//! and the next message's MAIL, RCPT and DATA go out in one write, so a
//! steady stream costs one round trip per message.
//!
//! A worker opens a transaction ([`Pipelined::open`]), then finishes one
//! message after another on that connection ([`Pipelined::finish`]) while
//! the next one rides along; when none does, it opens the next afresh.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::Stop;
use super::sender::{Piped, unsent};
use super::worker::{Check, REST, Ready, Start, Worker, lockstep_worker, sleep_until};
use crate::send::limiter::{Permit, Ticket};
use crate::send::pipeline::{Begun, Connection};
use crate::send::transport::{After, Outcome};

/// A message whose MAIL, RCPT and DATA are on their way.
struct InFlight {
    ready: Ready,
    at: Instant,
    ticket: Ticket,
    begun: Begun,
}

/// How far ahead a reserved start time may be for the next transaction to
/// ride along with a message: the server holds it open meanwhile.
const RIDE_ALONG: Duration = Duration::from_secs(2);

/// A pipelining worker: the worker's state and its connection.
struct Pipelined<'a> {
    worker: Worker<'a>,
    piped: Piped,
}

/// How opening a transaction went.
#[allow(clippy::large_enum_variant)] // one at a time, moved once
enum Opened {
    /// Its commands are written; their replies are to read.
    InFlight(InFlight),
    /// Nothing opened (settled, unsubscribed, or resting): take the next.
    Again,
    /// The server does not offer PIPELINING: go on one command at a time.
    Lockstep,
    Done,
}

/// Why a message the server waits for is abandoned.
#[derive(PartialEq, Eq)]
enum Abandon {
    /// The run gave up meanwhile: the message stays pending.
    GaveUp,
    /// Unsubscribed meanwhile (or the file cannot be read any more).
    Unsubscribed,
}

/// Pipelining (RFC 2920): see the module's head.
pub(super) async fn pipelined_worker(worker: Worker<'_>, piped: Piped) -> Result<()> {
    let mut this = Pipelined { worker, piped };
    loop {
        match this.open().await? {
            Opened::InFlight(first) => this.stream(first).await?,
            Opened::Again => {}
            Opened::Lockstep => {
                let sender = this.piped.fallback();
                return lockstep_worker(this.worker, sender).await;
            }
            Opened::Done => break,
        }
    }
    this.piped.close().await;
    Ok(())
}

impl Pipelined<'_> {
    /// The next message's transaction, opened on a ready connection.
    async fn open(&mut self) -> Result<Opened> {
        let (ready, at, ticket) = match self.worker.start().await {
            Start::Go(ready, at, ticket) => (ready, at, ticket),
            Start::Rest => {
                self.piped.close().await;
                tokio::time::sleep(REST).await;
                return Ok(Opened::Again);
            }
            Start::Again => return Ok(Opened::Again),
            Start::Done => return Ok(Opened::Done),
        };
        match self.piped.ready().await {
            Ok(conn) if !conn.ext.pipelining => {
                // A new connection reached a server that does not offer it
                // (a pool of servers behind one name): one command at a
                // time from here on.
                self.piped.close().await;
                self.worker.put_back(ready, at, ticket);
                return Ok(Opened::Lockstep);
            }
            Ok(_) => {}
            Err(why) => {
                self.worker
                    .give_back(ready, ticket, Outcome::Transient(why))?;
                return Ok(Opened::Again);
            }
        }
        match self.piped.begin(&ready.job).await {
            Ok(begun) => Ok(Opened::InFlight(InFlight {
                ready,
                at,
                ticket,
                begun,
            })),
            Err(outcome) => {
                self.worker.give_back(ready, ticket, outcome)?;
                Ok(Opened::Again)
            }
        }
    }

    /// Finishes messages on this connection for as long as the next one
    /// rides along.
    async fn stream(&mut self, first: InFlight) -> Result<()> {
        let mut current = first;
        while let Some(next) = self.finish(current).await? {
            current = next;
        }
        Ok(())
    }

    /// One message from its envelope's replies to its settled outcome;
    /// returns the transaction that rode along, if it goes on.
    async fn finish(&mut self, current: InFlight) -> Result<Option<InFlight>> {
        let InFlight {
            ready,
            at,
            ticket,
            begun,
        } = current;
        let Some(conn) = self.piped.conn.as_deref_mut() else {
            // Never: a transaction in flight keeps its connection.
            self.worker.put_back(ready, at, ticket);
            return Ok(None);
        };
        if let Err((outcome, after)) = conn.envelope_replies(begun).await {
            self.piped.after(after).await;
            self.worker.give_back(ready, ticket, outcome)?;
            return Ok(None);
        }
        // 354: the server waits for the content (a message in flight,
        // finished even when the run is stopping: it holds a start time
        // within the limits). A message abandoned at the last checks is
        // abandoned by closing the connection: a transaction without its
        // final dot is never delivered.
        if let Some(abandon) = self.worker.last_checks(&ready, at).await {
            self.piped.conn = None;
            self.worker.shared.release(ticket, false);
            if abandon == Abandon::GaveUp {
                self.worker.queue.push_front(ready);
            }
            return Ok(None);
        }
        self.worker.attempt(&ready.job)?;
        let rides = self.piped.sent_on_conn + 1 < self.piped.max_per_conn;
        let (outcome, after, following) = self.worker.transmit(conn, &ready.job, rides).await;
        self.piped.sent_on_conn += 1;
        let accepted = matches!(outcome, Outcome::Accepted(_));
        self.worker.shared.release(ticket, accepted);
        self.conclude(ready, outcome, after, following).await
    }

    /// Leaves the connection to the transaction that rode along, or closes
    /// it; settles the outcome; returns the transaction that goes on.
    async fn conclude(
        &mut self,
        ready: Ready,
        outcome: Outcome,
        after: After,
        following: Option<InFlight>,
    ) -> Result<Option<InFlight>> {
        let go_on = after == After::Keep && following.is_some();
        if !go_on {
            match (&following, after) {
                // QUIT now would be read as the next message's content.
                (Some(_), _) | (None, After::Drop) => self.piped.conn = None,
                (None, after) => self.piped.after(after).await,
            }
        }
        self.worker.record(ready, outcome)?;
        match following {
            Some(next) if go_on => Ok(Some(next)),
            Some(InFlight {
                ready, at, ticket, ..
            }) => {
                // Its commands went out on a connection now closed;
                // nothing of it was sent. It goes first on the next.
                self.worker.put_back(ready, at, ticket);
                Ok(None)
            }
            None => Ok(None),
        }
    }
}

impl Worker<'_> {
    /// The last checks before a message's content goes out. Its start
    /// time comes first (a ride-along's may be ahead); then one
    /// unsubscribed meanwhile (even while waiting for that start time) is
    /// not mailed; and a ride-along opened before the outcome that made the
    /// run give up (max-consecutive-failures) is not sent, as the lockstep
    /// path would not have started it. `None`: send it.
    async fn last_checks(&self, ready: &Ready, at: Instant) -> Option<Abandon> {
        sleep_until(self.shared, at).await;
        if self.shared.gave_up() {
            return Some(Abandon::GaveUp);
        }
        if !matches!(self.suppression(&ready.job), Check::Send) {
            return Some(Abandon::Unsubscribed);
        }
        None
    }

    /// Writes a message's content and final dot, with the next message's
    /// MAIL, RCPT and DATA riding along when `rides`, and reads the reply
    /// to the dot.
    async fn transmit(
        &mut self,
        conn: &mut Connection,
        job: &super::Job,
        rides: bool,
    ) -> (Outcome, After, Option<InFlight>) {
        conn.queue_message(&job.bytes);
        let end = conn.queued();
        let following = if rides { self.ride_along(conn) } else { None };
        let (done, written) = conn.send_queued().await;
        let (outcome, after) = match written {
            Ok(()) => conn.data_reply().await,
            Err(e) => unsent(done >= end, &e),
        };
        (outcome, after, following)
    }

    /// The next message to open alongside the current one, reserved and
    /// checked, or `None` (nothing waiting, not yet allowed, or unsuitable;
    /// whatever was taken is put back).
    fn ride_along(&mut self, conn: &mut Connection) -> Option<InFlight> {
        if self.shared.stopped() || !self.shared.connections.may_use(self.index) {
            return None;
        }
        let now = Instant::now();
        let (ready, at, ticket) = self.reserve_next(now)?;
        if at > now + RIDE_ALONG {
            self.put_back(ready, at, ticket);
            return None;
        }
        match self.suppression(&ready.job) {
            Check::Send => {}
            Check::Skip | Check::Halt => {
                self.shared.release(ticket, false);
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
                self.put_back(ready, at, ticket);
                None
            }
        }
    }

    /// The next message waiting, if it may start now, and its start time
    /// (reserved now, unless it holds one).
    fn reserve_next(&mut self, now: Instant) -> Option<(Ready, Instant, Ticket)> {
        let mut ready = match self.queue.front() {
            Some(front) if front.not_before <= now => self.queue.pop_front()?,
            Some(_) => return None,
            None => Ready::new(self.shared.jobs.try_recv().ok()?),
        };
        let (at, ticket) = match ready.permit.take() {
            Some(permit) => permit,
            None => match self.shared.limiter().reserve(now) {
                Permit::At(at, ticket) => (at, ticket),
                Permit::Busy => {
                    self.queue.push_front(ready);
                    return None;
                }
                Permit::DailyLimit(wait) => {
                    self.shared.halt(Stop::DailyLimit(wait));
                    return None;
                }
            },
        };
        Some((ready, at, ticket))
    }
}
