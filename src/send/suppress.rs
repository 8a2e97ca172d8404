//! Unsubscribes that arrive while a run is sending.
//!
//! Before each message is handed to the transport the sender asks
//! [`Suppressions::blocks`], which looks (two `stat` calls) whether the
//! subscriber file was replaced or changed, or the one-click log grew, since
//! it last looked. A changed file is read again for the addresses that are
//! no longer subscribed; new log lines are read from where reading stopped.
//! So no message is handed over for an address once its unsubscribe is in
//! the file or the log: only a message already handed over can still arrive.
//!
//! Memory: a hash per unsubscribed address, and only once the file changes
//! during the run (the plan already left out those unsubscribed before).

use std::collections::HashSet;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::model::subscribers::{KeyHash, SubscriberReader, SubscriptionStatus};
use crate::unsubscribe::log;

/// What identifies a version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Version {
    fn of(meta: &Metadata) -> Version {
        Version {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }

    fn now(path: &Path) -> Option<Version> {
        std::fs::metadata(path).ok().map(|m| Version::of(&m))
    }
}

/// The addresses a running send must not mail any more.
pub struct Suppressions {
    inner: Mutex<Inner>,
}

struct Inner {
    list: PathBuf,
    list_seen: Option<Version>,
    log: PathBuf,
    /// The version of the log read so far; another file renamed over it
    /// (a rotation) is read from its start.
    log_seen: Option<Version>,
    log_read: u64,
    blocked: HashSet<KeyHash>,
    /// Blocked during this run, for the report.
    skipped: u64,
}

impl Suppressions {
    /// Starts watching from the surveyed version of the list and the log
    /// as read by the plan.
    pub fn new(
        list: &Path,
        surveyed: &Metadata,
        log: &Path,
        log_read: u64,
        one_click: HashSet<KeyHash>,
    ) -> Suppressions {
        Suppressions {
            inner: Mutex::new(Inner {
                list: list.to_path_buf(),
                list_seen: Some(Version::of(surveyed)),
                log: log.to_path_buf(),
                log_seen: Version::now(log).filter(|v| v.len == log_read),
                log_read,
                blocked: one_click,
                skipped: 0,
            }),
        }
    }

    /// Whether `key` (a lowercased address) must not be mailed now. An error
    /// means the list or the log cannot be read any more: the run must stop.
    pub fn blocks(&self, key: &str) -> Result<bool, Unreadable> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.refresh()?;
        // Hashing the address is the cost of a lookup: none while nobody is blocked.
        let blocked = !inner.blocked.is_empty() && inner.blocked.contains(&KeyHash::of(key));
        inner.skipped += u64::from(blocked);
        Ok(blocked)
    }

    /// How many messages were not sent because of a change during the run.
    pub fn skipped(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).skipped
    }
}

/// A file the run must watch and cannot read.
#[derive(Debug)]
pub struct Unreadable {
    pub path: PathBuf,
    pub error: anyhow::Error,
}

impl Inner {
    fn refresh(&mut self) -> Result<(), Unreadable> {
        let list_now = Version::now(&self.list);
        if list_now != self.list_seen {
            self.read_list().map_err(|error| Unreadable {
                path: self.list.clone(),
                error,
            })?;
            self.list_seen = list_now;
        }
        let log_now = Version::now(&self.log);
        if log_now != self.log_seen {
            let same_file = match (log_now, self.log_seen) {
                (Some(now), Some(seen)) => (now.dev, now.ino) == (seen.dev, seen.ino),
                (Some(_), None) => self.log_read == 0,
                _ => false,
            };
            let from = if same_file { self.log_read } else { 0 };
            self.log_read =
                log::read_from(&self.log, from, &mut self.blocked).map_err(|error| Unreadable {
                    path: self.log.clone(),
                    error,
                })?;
            // Seen only once read to its end: a half-written line is read again.
            self.log_seen = log_now.filter(|v| v.len == self.log_read);
        }
        Ok(())
    }

    /// Adds every address that is no longer subscribed in the list.
    fn read_list(&mut self) -> Result<()> {
        let reader = SubscriberReader::open(&self.list).with_context(|| {
            format!(
                "`{}` changed during the run and cannot be read now, so new unsubscribes in it cannot be honoured; the run stops",
                self.list.display()
            )
        })?;
        let mut reader = reader;
        while let Some(row) = reader.next() {
            match row {
                Ok(subscriber) if subscriber.status != SubscriptionStatus::Subscribed => {
                    self.blocked.insert(KeyHash::of(&subscriber.key));
                }
                Ok(_) => {}
                // A row that cannot be read now may say that its address
                // opted out: that address is not mailed.
                Err(_) => {
                    if let Some(key) = reader.problem_key() {
                        self.blocked.insert(KeyHash::of(&key));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_change_and_a_log_line_block_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("s.csv");
        let log = dir.path().join("u.log");
        std::fs::write(
            &list,
            "email,status\na@example.org,subscribed\nb@example.org,\n",
        )
        .unwrap();
        let meta = std::fs::metadata(&list).unwrap();
        let s = Suppressions::new(&list, &meta, &log, 0, HashSet::new());
        assert!(!s.blocks("a@example.org").unwrap());
        // Replaced by rename, as `newsletter unsubscribe` does.
        let new = dir.path().join("s.new");
        std::fs::write(
            &new,
            "email,status\na@example.org,unsubscribed\nb@example.org,\n",
        )
        .unwrap();
        std::fs::rename(&new, &list).unwrap();
        assert!(s.blocks("a@example.org").unwrap());
        assert!(!s.blocks("b@example.org").unwrap());
        std::fs::write(&log, "2026-01-01T00:00:00Z\tB@example.org\tone-click\n").unwrap();
        assert!(s.blocks("b@example.org").unwrap());
        assert_eq!(s.skipped(), 2);
    }

    #[test]
    fn a_half_written_log_line_waits_for_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("u.log");
        std::fs::write(
            &log,
            "2026-01-01T00:00:00Z\ta@example.org\tone-click\n2026-01-01\tb@exa",
        )
        .unwrap();
        let (set, read) = log::read_all(&log).unwrap();
        assert!(set.contains(&KeyHash::of("a@example.org")));
        assert_eq!(set.len(), 1);
        assert_eq!(read, 45);
    }
}
