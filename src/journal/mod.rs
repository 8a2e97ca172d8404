//! The per-issue journal: an append-only file of every attempt and outcome,
//! made durable (fsync) before an outcome counts, and never trusted blindly.
//!
//! Each line is a JSON object ending in `"crc":"…"`, the CRC-32 of the line
//! without that field, so a flipped byte is found, not replayed. The first
//! line binds the file to one issue and one list and records a fingerprint
//! of the rendered messages, so a journal copied from another issue, or an
//! issue edited after some were sent, is refused rather than obeyed.
//!
//! An `attempt` written before a message goes out with no outcome after it
//! means the process died while the message was in flight: that recipient
//! is *uncertain*. Replaying the file ([`replay`]) tells a new run who is done.

mod format;
mod replay;
mod writer;

pub use format::{Fingerprint, Header, Kind, Line, Stage};
pub use replay::{
    Entry, Expect, Final, Lookup, RawLine, RawLines, Replay, Settled, open_checked, replay,
};
pub use writer::{Handle, Writer};

use std::path::{Path, PathBuf};

/// Path of an issue's journal.
pub fn path(dir: &Path, issue_id: &str) -> PathBuf {
    dir.join(format!("{issue_id}.journal"))
}

/// Path of the lock a sender of the issue holds.
pub fn lock_path(dir: &Path, issue_id: &str) -> PathBuf {
    dir.join(format!("{issue_id}.lock"))
}

/// Takes an issue's send lock (see [`lock_path`]), or says who has it.
/// `what` is what the holder is doing, for the next one's message.
pub fn lock(dir: &Path, issue_id: &str, what: &str) -> anyhow::Result<crate::lock::Lock> {
    match crate::lock::Lock::try_acquire(&lock_path(dir, issue_id), what)? {
        Ok(lock) => Ok(lock),
        Err(holder) => anyhow::bail!(
            "the issue `{issue_id}` is being sent by {holder}; only one run may send an issue at a time. Nothing was done. Wait for that run to finish (`newsletter status` shows its progress), or stop it with Ctrl-C, then run this again"
        ),
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
