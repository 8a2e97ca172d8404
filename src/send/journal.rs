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
    /// The whole message was sent but no reply came: the server may have
    /// it. Like an attempt without an outcome, sent again only when asked.
    Uncertain,
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
            Kind::Uncertain => State::Uncertain {
                email: record.email,
            },
        };
        replay.states.insert(record.key, state);
    }
    Ok(replay)
}

/// Appends records to an issue's journal.
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
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs once its record is on disk.
type Action = Box<dyn FnOnce() + Send>;

/// Appends records from many tasks without making them wait for the disk.
///
/// A record is appended with one `write` at once, so it survives the
/// process being killed; a sync thread then syncs the file (`fdatasync`)
/// for everything written so far and only after that runs the records'
/// actions, which is where outcomes are counted. One sync covers every
/// record written before it, so a busy run syncs a few hundred times a
/// second, not twice per message.
pub struct Writer {
    syncer: std::thread::JoinHandle<Result<()>>,
}

/// The appending side of a [`Writer`]; cheap to clone.
#[derive(Clone)]
pub struct Handle {
    journal: std::sync::Arc<std::sync::Mutex<Journal>>,
    actions: std::sync::mpsc::Sender<Action>,
}

/// How long the sync thread gathers records before a sync.
const SYNC_GATHER: std::time::Duration = std::time::Duration::from_millis(2);

impl Writer {
    /// Opens an issue's journal (mode 0600) and starts the sync thread.
    pub fn spawn(path: &Path) -> Result<(Writer, Handle)> {
        let journal = Journal::open(path)?;
        let file = journal
            .writer
            .get_ref()
            .try_clone()
            .context("cannot open the journal twice")?;
        let (actions, pending) = std::sync::mpsc::channel::<Action>();
        let syncer = std::thread::spawn(move || -> Result<()> {
            while let Ok(first) = pending.recv() {
                std::thread::sleep(SYNC_GATHER);
                let mut ready = vec![first];
                ready.extend(pending.try_iter());
                file.sync_data()
                    .context("cannot sync the journal to disk")?;
                for action in ready {
                    action();
                }
            }
            file.sync_data().context("cannot sync the journal to disk")
        });
        let handle = Handle {
            journal: std::sync::Arc::new(std::sync::Mutex::new(journal)),
            actions,
        };
        Ok((Writer { syncer }, handle))
    }

    /// Waits until every handle is dropped and everything is on disk.
    pub fn finish(self) -> Result<()> {
        self.syncer
            .join()
            .map_err(|_| anyhow::anyhow!("the journal writer crashed"))?
    }
}

impl Handle {
    /// Appends a record; once this returns it survives the process being
    /// killed (the disk sync follows within milliseconds).
    pub fn write(&self, record: &Record) -> Result<()> {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        journal.append(record)?;
        journal.writer.flush().context("cannot write the journal")
    }

    /// Appends a record; `on_durable` runs once it is on disk.
    pub fn commit(
        &self,
        record: &Record,
        on_durable: impl FnOnce() + Send + 'static,
    ) -> Result<()> {
        self.write(record)?;
        self.actions
            .send(Box::new(on_durable))
            .map_err(|_| anyhow::anyhow!("the journal could not be synced to disk"))
    }
}
