//! Appending to a journal from many tasks without making them wait for the disk.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

use super::format::Line;

/// Appends records to an issue's journal.
pub struct Journal {
    writer: BufWriter<File>,
}

impl Journal {
    /// Opens (creating, mode 0600) an issue's journal for appending; a new
    /// or empty journal first gets `first` (its header), synced to disk.
    pub fn open(path: &Path, first: &[Line]) -> Result<Journal> {
        let file = super::replay::open_checked(path, true)?
            .with_context(|| format!("cannot create the journal `{}`", path.display()))?;
        let mut empty = file
            .metadata()
            .with_context(|| format!("cannot read the journal `{}`", path.display()))?
            .len()
            == 0;
        // The next record must not be glued onto a last line without its
        // line end: one cut short by a crash (which the replay ignored) is
        // cut off, a whole one (which the replay read) is ended.
        if !empty {
            end_last_line(&file)
                .with_context(|| format!("cannot write the journal `{}`", path.display()))?;
        }
        // Asked for a header, the journal had none: all it can hold is a
        // first line cut short by a crash, before anything was sent.
        if !empty && first.iter().any(|l| l.kind() == super::Kind::Journal) {
            file.set_len(0)
                .with_context(|| format!("cannot write the journal `{}`", path.display()))?;
            empty = true;
        }
        let mut journal = Journal {
            writer: BufWriter::with_capacity(64 * 1024, file),
        };
        // A header only starts an empty journal; other lines always go.
        let lines: Vec<&Line> = first
            .iter()
            .filter(|l| empty || l.kind() != super::Kind::Journal)
            .collect();
        if !lines.is_empty() {
            for line in lines {
                journal.append(line)?;
            }
            journal.writer.flush().context("cannot write the journal")?;
            journal
                .writer
                .get_ref()
                .sync_all()
                .context("cannot sync the journal to disk")?;
        }
        Ok(journal)
    }

    pub fn append(&mut self, line: &Line) -> Result<()> {
        self.writer
            .write_all(&line.encode())
            .context("cannot write the journal")
    }
}

/// Makes the file end with a line end: a last line that reads as a record
/// gets one; one that does not (cut short) is cut off.
fn end_last_line(mut file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = [0u8; 4096];
    let mut tail = Vec::new();
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        if let Some(at) = part.iter().rposition(|b| *b == b'\n') {
            tail.splice(0..0, part[at + 1..].iter().copied());
            break start + at as u64 + 1;
        }
        tail.splice(0..0, part.iter().copied());
        end = start;
    };
    if keep == len {
        return Ok(());
    }
    if Line::decode(&tail, super::now()).is_ok() {
        file.write_all(b"\n")
    } else {
        file.set_len(keep)
    }
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
    /// Opens an issue's journal (mode 0600), writes `first` as
    /// [`Journal::open`] does, and starts the sync thread.
    pub fn spawn(path: &Path, first: &[Line]) -> Result<(Writer, Handle)> {
        let journal = Journal::open(path, first)?;
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
    pub fn write(&self, record: &Line) -> Result<()> {
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        journal.append(record)?;
        journal.writer.flush().context("cannot write the journal")
    }

    /// Appends a record; `on_durable` runs once it is on disk.
    pub fn commit(&self, record: &Line, on_durable: impl FnOnce() + Send + 'static) -> Result<()> {
        self.write(record)?;
        self.actions
            .send(Box::new(on_durable))
            .map_err(|_| anyhow::anyhow!("the journal could not be synced to disk"))
    }
}
