//! The endpoint's log of unsubscribes: one line per request, appended and
//! synced before the request is answered.
//!
//! A line is `RFC 3339 time TAB address TAB how`, e.g.
//! `2024-05-01T09:30:00Z\tzoe@example.org\tone-click`. The addresses were
//! verified before they were written, so `newsletter unsubscribe --from-file`
//! applies them as they are.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::model::subscribers::KeyHash;

/// How a request asked to unsubscribe, as written in the log.
pub const ONE_CLICK: &str = "one-click";

/// The log, open for appending.
pub struct Log {
    path: PathBuf,
    file: Mutex<File>,
}

impl Log {
    /// Opens (creating, mode 0600) the log for appending.
    pub fn open(path: &Path) -> Result<Log> {
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).with_context(|| {
            format!(
                "cannot open the unsubscribe log `{}`: check the folder exists and can be written",
                path.display()
            )
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata().map_or(0, |m| m.permissions().mode());
            if mode & 0o077 != 0 {
                eprintln!(
                    "warning: `{}` holds addresses but other users can read it; run `chmod 600 {}`",
                    path.display(),
                    path.display()
                );
            }
        }
        Ok(Log {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line for `address` and syncs it to disk.
    pub fn record(&self, address: &str) -> Result<()> {
        let line = format!("{}\t{address}\t{ONE_CLICK}\n", now());
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot write the unsubscribe log `{}`", self.path.display()))
    }
}

/// The current time in RFC 3339, UTC, to the second.
fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string())
}

/// The address on a log line, if the line has the log's shape.
pub fn address_in(line: &str) -> Option<&str> {
    let mut fields = line.split('\t');
    let time = fields.next()?;
    let address = fields.next()?.trim();
    time.parse::<jiff::Timestamp>().ok()?;
    Some(address)
}

/// Reads the one-click log: the hashes of its addresses and its length.
pub fn read_all(path: &Path) -> Result<(HashSet<KeyHash>, u64)> {
    let mut set = HashSet::new();
    let read = read_from(path, 0, &mut set)?;
    Ok((set, read))
}

/// Adds the addresses of the log's complete lines from `from` on; returns
/// where the last complete line ends. A missing log is an empty one.
pub fn read_from(path: &Path, from: u64, set: &mut HashSet<KeyHash>) -> Result<u64> {
    let shown = path.display();
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A named pipe must not block the open before it can be refused.
        options.custom_flags(crate::lock::open_flags(rustix::fs::OFlags::NONBLOCK));
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the unsubscribe log `{shown}`"));
        }
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read the unsubscribe log `{shown}`"))?;
    if !meta.is_file() {
        anyhow::bail!("the unsubscribe log `{shown}` is not a plain file");
    }
    // A shorter log was replaced (rotated): read it from the start.
    let from = if meta.len() < from { 0 } else { from };
    file.seek(SeekFrom::Start(from))
        .with_context(|| format!("cannot read the unsubscribe log `{shown}`"))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut at = from;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read the unsubscribe log `{shown}`"))?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        at += n as u64;
        let text = String::from_utf8_lossy(&line);
        // `TIME<TAB>ADDRESS<TAB>how`; a bare address also counts.
        let mut fields = text.trim_end().split('\t');
        let address = match (fields.next(), fields.next()) {
            (Some(_), Some(address)) => address,
            (Some(address), None) => address,
            _ => continue,
        };
        let key = address.trim().to_lowercase();
        if key.contains('@') {
            set.insert(KeyHash::of(&key));
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_pipe_as_the_log_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unsubscribes.log");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        let err = read_all(&path).unwrap_err().to_string();
        assert!(err.contains("is not a plain file"), "{err}");
    }

    #[test]
    fn lines_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unsubscribes.log");
        let log = Log::open(&path).unwrap();
        log.record("zoe@example.org").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let line = text.lines().next().unwrap();
        assert!(line.ends_with("\tzoe@example.org\tone-click"), "{line}");
        assert_eq!(address_in(line), Some("zoe@example.org"));
        assert_eq!(address_in("zoe@example.org"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
