//! The per-issue journal: an append-only JSON-lines file of every attempt
//! and outcome, made durable (fsync) before an outcome counts.
//!
//! An `attempt` written before a message goes out with no outcome after it
//! means the process died while the message was in flight: that recipient
//! is *uncertain*. Replaying the file tells a new run who is done.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One line of the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Unix time in seconds.
    pub t: f64,
    pub event: Kind,
    /// Lowercased address.
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reply: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// About to hand the message to the transport.
    Attempt,
    /// The server accepted it (250).
    Accepted,
    /// Permanent failure (5xx): not retried unless asked.
    Failed,
    /// Temporary failures used up this run's retries: pending next run.
    Deferred,
}

/// Where a recipient stands after replaying the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Accepted,
    Failed { email: String, reply: String },
    Uncertain { email: String },
    Deferred { email: String, reply: String },
}

/// The replayed journal.
#[derive(Debug, Default)]
pub struct Replay {
    pub states: HashMap<String, State>,
    /// Times of accepted messages, for the hourly and daily limits.
    pub accepted_times: Vec<f64>,
    /// Lines that could not be read (a torn last line after a crash).
    pub skipped_lines: u64,
}

impl Replay {
    pub fn count(&self, f: impl Fn(&State) -> bool) -> u64 {
        self.states.values().filter(|s| f(s)).count() as u64
    }
}

/// Path of an issue's journal.
pub fn path(dir: &Path, issue_id: &str) -> PathBuf {
    dir.join(format!("{issue_id}.journal"))
}

/// Reads a journal; a missing file is an empty journal.
pub fn replay(path: &Path) -> Result<Replay> {
    let mut replay = Replay::default();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(replay),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the journal `{}`", path.display()));
        }
    };
    for line in BufReader::new(file).split(b'\n') {
        let line = line.with_context(|| format!("cannot read the journal `{}`", path.display()))?;
        if line.is_empty() {
            continue;
        }
        let Ok(record) = serde_json::from_slice::<Record>(&line) else {
            replay.skipped_lines += 1;
            continue;
        };
        let state = match record.event {
            Kind::Attempt => match replay.states.get(&record.key) {
                // An attempt after acceptance is impossible unless forced.
                Some(State::Accepted) => continue,
                _ => State::Uncertain {
                    email: record.email,
                },
            },
            Kind::Accepted => {
                replay.accepted_times.push(record.t);
                State::Accepted
            }
            Kind::Failed => State::Failed {
                email: record.email,
                reply: record.reply,
            },
            Kind::Deferred => State::Deferred {
                email: record.email,
                reply: record.reply,
            },
        };
        replay.states.insert(record.key, state);
    }
    Ok(replay)
}

/// Appends records; `sync` makes everything written so far durable.
pub struct Journal {
    writer: BufWriter<File>,
}

impl Journal {
    /// Opens (creating, mode 0600) an issue's journal for appending.
    pub fn open(path: &Path) -> Result<Journal> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the journal folder `{}`", dir.display()))?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(path)
            .with_context(|| format!("cannot open the journal `{}`", path.display()))?;
        Ok(Journal {
            writer: BufWriter::with_capacity(64 * 1024, file),
        })
    }

    pub fn append(&mut self, record: &Record) -> Result<()> {
        serde_json::to_writer(&mut self.writer, record).context("cannot write the journal")?;
        self.writer
            .write_all(b"\n")
            .context("cannot write the journal")?;
        Ok(())
    }

    pub fn sync(&mut self) -> Result<()> {
        self.writer.flush().context("cannot write the journal")?;
        self.writer
            .get_ref()
            .sync_data()
            .context("cannot sync the journal to disk")
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
