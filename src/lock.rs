//! Advisory locks between `newsletter` processes: one sender per issue, one
//! writer of a subscriber file at a time.
//!
//! A lock is `flock` on a small lock file beside what it guards (std's
//! `File::lock`), so the kernel releases it when the process ends, however
//! it ends: a kill -9 never leaves a stale lock. The lock file holds who has
//! it (pid, host, start time), for the message the next process prints. It is
//! never deleted: deleting a lock file lets two processes lock two different
//! files of the same name.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

/// Who holds a lock, as its lock file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder(pub String);

/// How long a process that finds the lock held waits for the holder's
/// record (a holder writes it right after taking the lock, but on a busy
/// machine it can be descheduled in between) before it reports the holder
/// without one. Only that rare moment waits; a written record is read at once.
pub const RECORD_GRACE: Duration = Duration::from_secs(2);

impl Holder {
    /// False when the record names a process of this machine that is gone
    /// (a record left by a holder that was killed).
    fn is_alive(&self) -> bool {
        let mut words = self.0.split_whitespace();
        let (Some("process"), Some(pid), Some("on"), Some(host)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return true;
        };
        let host = host.trim_end_matches(',');
        host != host_name() || Path::new("/proc").join(pid).exists()
    }

    /// Whether the whole record is there (it ends with a line end).
    fn is_complete(&self) -> bool {
        self.0.ends_with('\n')
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.trim().is_empty() {
            f.write_str("another process (it has not written its details yet)")
        } else {
            f.write_str(self.0.trim())
        }
    }
}

impl Lock {
    /// Takes the lock at `path` if nobody holds it; `Ok(Err(holder))` if
    /// somebody does. `what` says what the lock is for, in the holder record.
    pub fn try_acquire(path: &Path, what: &str) -> Result<std::result::Result<Lock, Holder>> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Ok(Lock::record(file, path, what)?)),
            Err(TryLockError::WouldBlock) => Ok(Err(settled_holder(path))),
            Err(TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock `{}`", path.display()))
            }
        }
    }

    /// Takes the lock at `path`, waiting for its holder for up to `patience`;
    /// `on_wait` is called once, with the holder, if it has to wait. A holder
    /// that has only just taken the lock may not have written its record yet:
    /// `on_wait` waits for the record for up to [`RECORD_GRACE`].
    pub fn acquire(
        path: &Path,
        what: &str,
        patience: Duration,
        on_wait: impl FnOnce(&Holder),
    ) -> Result<std::result::Result<Lock, Holder>> {
        let file = open(path)?;
        let deadline = Instant::now() + patience;
        let mut on_wait = Some(on_wait);
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Ok(Lock::record(file, path, what)?)),
                Err(TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Ok(Err(read_holder(path)));
                    }
                    if let Some(f) = on_wait.take() {
                        f(&settled_holder(path));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock `{}`", path.display()));
                }
            }
        }
    }

    /// Writes the holder record into the locked file.
    fn record(mut file: File, path: &Path, what: &str) -> Result<Lock> {
        let started = jiff::Timestamp::now()
            .round(jiff::TimestampRound::new().smallest(jiff::Unit::Second))
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let text = format!(
            "process {} on {}, {what}, since {started}\n",
            std::process::id(),
            host_name()
        );
        let written = (|| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(text.as_bytes())
        })();
        written.with_context(|| format!("cannot write the lock file `{}`", path.display()))?;
        Ok(Lock {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Unlocked by the kernel on close anyway; this just says so early.
        let _ = self.file.unlock();
    }
}

/// Opens (creating, mode 0600) a lock file; a symlink is refused.
fn open(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder `{}`", dir.display()))?;
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(0o600)
            .custom_flags(open_flags(rustix::fs::OFlags::NOFOLLOW));
    }
    options.open(path).with_context(|| {
        format!(
            "cannot open the lock file `{}` (it must be a plain file you can write, not a link)",
            path.display()
        )
    })
}

/// Open flags of this platform, for `OpenOptionsExt::custom_flags`.
#[cfg(unix)]
pub(crate) fn open_flags(flags: rustix::fs::OFlags) -> i32 {
    flags.bits() as i32
}

/// The holder's record once it is written: a process that has only just
/// taken the lock may not have replaced the last holder's record yet, so
/// wait up to [`RECORD_GRACE`] for a complete record naming a live process.
fn settled_holder(path: &Path) -> Holder {
    let started = Instant::now();
    loop {
        let holder = read_holder(path);
        if (holder.is_complete() && holder.is_alive()) || started.elapsed() >= RECORD_GRACE {
            return holder;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read_holder(path: &Path) -> Holder {
    let mut text = String::new();
    if let Ok(f) = File::open(path) {
        let _ = f.take(1024).read_to_string(&mut text);
    }
    Holder(text)
}

/// This machine's name, for holder records.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "this machine".into())
}

/// The lock file guarding `path`: `path` with `.lock` added.
pub fn beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// How long a process changing a file ([`for_change`]) waits for another
/// process changing the same file before it gives up.
pub const LOCK_PATIENCE: Duration = Duration::from_secs(60);

/// An environment variable that replaces [`LOCK_PATIENCE`], in milliseconds
/// (`NEWSLETTER_LOCK_PATIENCE_MS=200`). For tests, which cannot wait a minute.
pub const LOCK_PATIENCE_ENV: &str = "NEWSLETTER_LOCK_PATIENCE_MS";

/// The lock patience: [`LOCK_PATIENCE`], or [`LOCK_PATIENCE_ENV`] if set.
fn patience() -> Result<Duration> {
    let Ok(value) = std::env::var(LOCK_PATIENCE_ENV) else {
        return Ok(LOCK_PATIENCE);
    };
    match value.trim().parse::<u64>() {
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => bail!(
            "`{LOCK_PATIENCE_ENV}` is `{value}`: set it to a number of milliseconds, or unset it"
        ),
    }
}

/// Takes the lock for changing the file `path` (the subscriber file, an
/// archive file), waiting up to [`LOCK_PATIENCE`] (or [`LOCK_PATIENCE_ENV`])
/// for its holder; says once on stderr who it is waiting for.
pub(crate) fn for_change(path: &Path) -> Result<Lock> {
    let patience = patience()?;
    let shown = path.display();
    let waited = seconds(patience);
    let got = Lock::acquire(
        &beside(path),
        &format!("changing `{shown}`"),
        patience,
        |holder| {
            eprintln!("waiting up to {waited} for `{shown}`: it is locked by {holder}");
        },
    )?;
    got.map_err(|holder| {
        anyhow!(
            "`{shown}` is still locked by {holder} after {waited}: run the command again \
             when that process has finished (if it is stuck, stop it first)"
        )
    })
}

/// `60 s`, or `250 ms` for a patience that is not whole seconds.
fn seconds(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder_and_a_dropped_one_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = Lock::try_acquire(&path, "sending `x`").unwrap().unwrap();
        let holder = Lock::try_acquire(&path, "sending `x`")
            .unwrap()
            .unwrap_err();
        assert!(
            holder
                .to_string()
                .contains(&format!("process {}", std::process::id())),
            "{holder}"
        );
        assert!(holder.to_string().contains("sending `x`"), "{holder}");
        drop(first);
        assert!(Lock::try_acquire(&path, "again").unwrap().is_ok());
    }

    #[test]
    fn acquire_waits_then_gives_up_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let _held = Lock::try_acquire(&path, "held").unwrap().unwrap();
        let mut waited = false;
        let got = Lock::acquire(&path, "w", Duration::from_millis(50), |_| waited = true).unwrap();
        assert!(waited);
        assert!(got.unwrap_err().to_string().contains("held"));
    }

    #[test]
    fn the_wait_note_names_a_holder_that_writes_its_record_late() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        // Locked, but the record is not written yet.
        let raw = open(&path).unwrap();
        raw.lock().unwrap();
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                std::fs::write(&path, "process 1 on host, late, since now\n").unwrap();
                std::thread::sleep(Duration::from_millis(50));
                drop(raw);
            })
        };
        let mut seen = None;
        let got = Lock::acquire(&path, "w", Duration::from_secs(10), |h| {
            seen = Some(h.to_string())
        })
        .unwrap();
        writer.join().unwrap();
        assert!(got.is_ok());
        assert_eq!(seen.as_deref(), Some("process 1 on host, late, since now"));
    }

    #[test]
    fn the_wait_note_comes_after_the_grace_without_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let raw = open(&path).unwrap();
        raw.lock().unwrap();
        let mut seen = None;
        let got =
            Lock::acquire(&path, "w", RECORD_GRACE * 2, |h| seen = Some(h.to_string())).unwrap();
        assert!(got.is_err());
        assert!(seen.unwrap().contains("has not written its details yet"));
    }

    #[test]
    fn a_symlinked_lock_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "").unwrap();
        let path = dir.path().join("x.lock");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(Lock::try_acquire(&path, "x").is_err());
    }

    #[test]
    fn beside_adds_lock_to_the_name() {
        assert_eq!(
            beside(Path::new("a/subscribers.csv")),
            Path::new("a/subscribers.csv.lock")
        );
    }
}
