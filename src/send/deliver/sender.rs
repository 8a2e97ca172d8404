//! One connection's worth of transport: the outbox, lettre's lockstep SMTP,
//! or our pipelining client, each opening (and renewing) its connection.

use std::time::Duration;

use anyhow::{Context, Result};
use lettre::transport::smtp::client::AsyncSmtpConnection;

use super::Job;
use crate::model::config::{Config, Transport};
use crate::send::pipeline::{self, Begun, Connection};
use crate::send::transport::{self, After, Outbox, Outcome, SmtpSettings};

/// One connection's worth of transport.
#[allow(clippy::large_enum_variant)] // one per connection, never moved in bulk
pub enum Sender {
    Outbox(Outbox),
    /// Lockstep SMTP (lettre): for servers without PIPELINING, or
    /// `pipelining = false`.
    Smtp(Lockstep),
    /// Pipelined SMTP ([`pipeline`]).
    Pipelined(Piped),
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
        Ok(Sender::Smtp(Lockstep {
            settings: lockstep,
            conn: Some(Box::new(conn)),
            sent_on_conn: 0,
            max_per_conn,
        }))
    }

    /// Another sender of the same kind, not connected yet.
    pub(super) fn sibling(&self) -> Sender {
        match self {
            Sender::Outbox(o) => Sender::Outbox(Outbox { dir: o.dir.clone() }),
            Sender::Smtp(lockstep) => Sender::Smtp(lockstep.sibling()),
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
            Sender::Smtp(lockstep) => lockstep.send(job).await,
        }
    }

    pub async fn close(&mut self) {
        match self {
            Sender::Smtp(lockstep) => lockstep.close().await,
            Sender::Pipelined(piped) => piped.close().await,
            Sender::Outbox(_) => {}
        }
    }
}

/// A lockstep SMTP connection (lettre) and when to renew it.
pub struct Lockstep {
    settings: SmtpSettings,
    conn: Option<Box<AsyncSmtpConnection>>,
    sent_on_conn: u64,
    max_per_conn: u64,
}

impl Lockstep {
    fn sibling(&self) -> Lockstep {
        Lockstep {
            settings: self.settings.clone(),
            conn: None,
            sent_on_conn: 0,
            max_per_conn: self.max_per_conn,
        }
    }

    /// The open connection, opening one if there is none (or it is used up
    /// or broken).
    async fn ready(&mut self) -> Result<&mut AsyncSmtpConnection, String> {
        if self.sent_on_conn >= self.max_per_conn {
            self.close().await;
        }
        if self.conn.as_ref().is_some_and(|c| c.has_broken()) {
            self.conn = None;
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

    async fn send(&mut self, job: &Job) -> Outcome {
        let timeouts = self.settings.timeouts();
        let conn = match self.ready().await {
            Ok(conn) => conn,
            Err(why) => return Outcome::Transient(why),
        };
        let (outcome, after) =
            transport::smtp_send(conn, &job.envelope, &job.bytes, timeouts).await;
        self.sent_on_conn += 1;
        self.after(after).await;
        outcome
    }

    /// Leaves the connection as a transaction's end says.
    async fn after(&mut self, after: After) {
        match after {
            After::Keep => {}
            // A fresh connection clears a half-finished transaction.
            // QUIT is a courtesy: a server that does not answer it at once
            // must not hold up the run.
            After::Quit => {
                if let Some(mut c) = self.conn.take() {
                    let wait = self
                        .settings
                        .timeouts()
                        .greeting
                        .min(Duration::from_secs(2));
                    let _ = tokio::time::timeout(wait, c.abort()).await;
                }
            }
            // The server may still be busy with the last command: close
            // without waiting for it.
            After::Drop => self.conn = None,
        }
    }

    async fn close(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), c.quit()).await;
        }
        self.sent_on_conn = 0;
    }
}

/// A pipelining connection and when to renew it.
pub struct Piped {
    settings: pipeline::Settings,
    /// For a server met later that does not offer PIPELINING.
    lockstep: SmtpSettings,
    pub(super) conn: Option<Box<Connection>>,
    pub(super) sent_on_conn: u64,
    pub(super) max_per_conn: u64,
}

impl Piped {
    /// The open connection, opening one if there is none (or it is used up
    /// or broken).
    pub(super) async fn ready(&mut self) -> Result<&mut Connection, String> {
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

    /// Opens a transaction for `job` on the connection [`Piped::ready`]
    /// opened: its MAIL, RCPT and DATA written, their replies still to
    /// read. A connection that fails meanwhile is dropped.
    pub(super) async fn begin(&mut self, job: &Job) -> Result<Begun, Outcome> {
        let conn = self
            .conn
            .as_deref_mut()
            .ok_or_else(|| Outcome::Transient("no connection".into()))?;
        let begun = conn.begin(&job.envelope, &job.bytes)?;
        let (_, written) = conn.send_queued().await;
        if let Err(e) = written {
            self.conn = None;
            return Err(Outcome::Transient(format!("the connection failed: {e}")));
        }
        Ok(begun)
    }

    /// Leaves the connection as a transaction's end says.
    pub(super) async fn after(&mut self, after: After) {
        match after {
            After::Keep => {}
            After::Quit => self.close().await,
            After::Drop => self.conn = None,
        }
    }

    pub(super) async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.quit(Duration::from_secs(2)).await;
        }
        self.sent_on_conn = 0;
    }

    /// The lockstep sender to go on with after a new connection reached a
    /// server that does not offer PIPELINING.
    pub(super) fn fallback(&self) -> Sender {
        Sender::Smtp(Lockstep {
            settings: self.lockstep.clone(),
            conn: None,
            sent_on_conn: 0,
            max_per_conn: self.max_per_conn,
        })
    }

    /// Sends one message on its own (two round trips).
    async fn send(&mut self, job: &Job) -> Outcome {
        if let Err(why) = self.ready().await {
            return Outcome::Transient(why);
        }
        let begun = match self.begin(job).await {
            Ok(begun) => begun,
            Err(outcome) => return outcome,
        };
        let Some(conn) = self.conn.as_deref_mut() else {
            // Never: a begun transaction keeps its connection.
            return Outcome::Transient("no connection".into());
        };
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
pub(super) fn unsent(dot_left: bool, e: &std::io::Error) -> (Outcome, After) {
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
