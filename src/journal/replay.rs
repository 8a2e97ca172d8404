//! Reading a journal back: every line checked, then each recipient's story
//! reduced to where they stand, in memory that does not grow with the file.
//!
//! The lines are read once, in order; each recipient event becomes a small
//! record (address hash, line number, where the line is) for an external
//! sort, so a recipient's events come out together and in order, and are
//! reduced one recipient at a time into an [`Entry`]. Addresses and replies
//! stay in the file: [`Lookup`] reads the few a caller shows.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::format::{Fingerprint, Header, Kind, Line, VERSION};
use crate::external_sort::{self, ExternalSorter, Sorted};
use crate::model::subscribers::KeyHash;

/// Records kept in memory before a sorted run goes to disk (2.2 MB).
const SORT_CHUNK: usize = 64 * 1024;

/// What the journal must belong to.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub issue: &'a str,
    pub list: &'a str,
}

/// A journal path that is not a plain file (a link, a device, a folder, a
/// pipe): what it is, in words.
#[derive(Debug)]
pub struct NotAFile(pub &'static str);

impl std::fmt::Display for NotAFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for NotAFile {}

/// Opens a journal without following a symbolic link, and only if it is a
/// plain file; `None` when it does not exist and `create` is false.
pub fn open_checked(path: &Path, create: bool) -> Result<Option<File>> {
    if create && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the journal folder `{}`", dir.display()))?;
    }
    let mut options = OpenOptions::new();
    if create {
        options.create(true).append(true).read(true);
    } else {
        options.read(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(0o600)
            // A FIFO must not hang the open before it can be refused.
            .custom_flags(crate::lock::open_flags(
                rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK,
            ));
    }
    let shown = path.display();
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(anyhow::Error::new(NotAFile("it is a symbolic link")))
                .with_context(|| format!("the journal `{shown}` must be a plain file"));
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot open the journal `{shown}`"));
        }
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read the journal `{shown}`"))?;
    if !meta.file_type().is_file() {
        return Err(anyhow::Error::new(NotAFile(
            "it is not a plain file but a device, a folder or a pipe",
        )))
        .with_context(|| format!("the journal `{shown}` must be a plain file"));
    }
    Ok(Some(file))
}

/// A journal's lines as they are in the file, damaged ones included.
pub struct RawLines {
    reader: BufReader<File>,
    buf: Vec<u8>,
    number: u64,
    offset: u64,
}

/// One line of [`RawLines`].
pub struct RawLine<'a> {
    /// 1-based.
    pub number: u64,
    /// Byte offset of its start.
    pub at: u64,
    /// Without its line end.
    pub body: &'a [u8],
    /// It has its line end (a line cut short by a crash has not).
    pub complete: bool,
}

impl RawLines {
    pub fn new(file: File) -> RawLines {
        RawLines {
            reader: BufReader::with_capacity(64 * 1024, file),
            buf: Vec::new(),
            number: 0,
            offset: 0,
        }
    }

    pub fn next_line(&mut self) -> std::io::Result<Option<RawLine<'_>>> {
        self.buf.clear();
        let read = self.reader.read_until(b'\n', &mut self.buf)?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        let at = self.offset;
        self.offset += read as u64;
        let complete = self.buf.last() == Some(&b'\n');
        Ok(Some(RawLine {
            number: self.number,
            at,
            body: self.buf.strip_suffix(b"\n").unwrap_or(&self.buf),
            complete,
        }))
    }
}

/// The replayed journal: what it is bound to and, once read, where each
/// recipient stands.
pub struct Replay {
    pub path: PathBuf,
    /// `None` when there is no journal yet (or an empty one).
    pub header: Option<Header>,
    /// The fingerprint in force: the header's, or the last accepted change.
    pub fingerprint: Option<Fingerprint>,
    /// Times of attempts in the last 24 hours, the most recent `keep` of
    /// them, for the hourly and daily limits.
    pub recent_attempts: Vec<f64>,
    /// Accepted events in the whole file.
    pub accepted_events: u64,
    /// The last line was cut short by a crash and was ignored.
    pub torn: bool,
    /// Recipient events read.
    pub events: u64,
    sorted: Option<Sorted<Event>>,
    file: Option<File>,
}

/// Why a journal is refused: what is wrong, and how to look at it.
/// `inspect` is the `newsletter status ISSUE` command for this issue.
fn refuse(path: &Path, inspect: &str, what: String) -> anyhow::Error {
    let shown = path.display().to_string();
    let quoted = |p: &str| shlex::try_quote(p).map_or_else(|_| p.to_string(), |q| q.into_owned());
    let aside = format!("{shown}.damaged");
    anyhow::anyhow!(
        "the journal `{shown}` cannot be trusted: {what}. Nothing was sent. Move it aside (`mv {} {}`), see what it held with `{inspect} --journal {} --records`, then decide who still needs the issue",
        quoted(&shown),
        quoted(&aside),
        quoted(&aside),
    )
}

/// The refusal of a journal path that is not a plain file.
fn refuse_special(path: &Path, inspect: &str, what: &str) -> anyhow::Error {
    let shown = path.display().to_string();
    anyhow::anyhow!(
        "the journal `{shown}` cannot be trusted: {what}; a journal must be a plain file. Nothing was sent. Move it aside, and look at a journal file it leads to with `{inspect} --journal FILE --records`"
    )
}

/// Reads and checks a journal; a missing or empty file is an empty journal.
///
/// Refused: a file that is not a plain file or is a link, a first line
/// that does not name this issue and list, any damaged line except a last
/// line cut short by a crash, and values out of range.
pub fn replay(path: &Path, expect: Option<Expect>, keep: usize, inspect: &str) -> Result<Replay> {
    let replay = Replay::empty(path);
    let opened = open_checked(path, false).map_err(|e| match e.downcast_ref::<NotAFile>() {
        Some(NotAFile(what)) => refuse_special(path, inspect, what),
        None => e,
    })?;
    let Some(file) = opened else {
        return Ok(replay);
    };
    let read_error = || format!("cannot read the journal `{}`", path.display());
    let mut pass = Pass {
        path,
        expect,
        inspect,
        keep,
        now: super::now(),
        replay,
        sorter: ExternalSorter::new(SORT_CHUNK),
        recent: VecDeque::new(),
    };
    let mut lines = RawLines::new(file.try_clone().with_context(read_error)?);
    while let Some(raw) = lines.next_line().with_context(read_error)? {
        let Some(line) = pass.decode(&raw)? else {
            break;
        };
        if raw.number == 1 {
            pass.header(&line)?;
        } else {
            pass.event(&line, raw.number, raw.at)?;
        }
    }
    pass.finish(file)
}

/// What to say when the sort's temporary file fails: where, and what to do.
fn temp_error() -> String {
    format!(
        "cannot use a temporary file in `{}` to read the journal; check the free space there, or set TMPDIR to another folder",
        std::env::temp_dir().display()
    )
}

impl Replay {
    /// No journal yet: nothing read.
    fn empty(path: &Path) -> Replay {
        Replay {
            path: path.to_path_buf(),
            header: None,
            fingerprint: None,
            recent_attempts: Vec::new(),
            accepted_events: 0,
            torn: false,
            events: 0,
            sorted: None,
            file: None,
        }
    }
}

/// The one pass of [`replay`] over a journal's lines, in order: each line
/// checked, the header against what is expected, and each recipient event
/// counted and handed to the sort.
struct Pass<'a> {
    path: &'a Path,
    expect: Option<Expect<'a>>,
    inspect: &'a str,
    keep: usize,
    now: f64,
    replay: Replay,
    sorter: ExternalSorter<Event>,
    /// The most recent `keep` attempts of the last 24 hours.
    recent: VecDeque<f64>,
}

impl Pass<'_> {
    fn refuse(&self, what: String) -> anyhow::Error {
        refuse(self.path, self.inspect, what)
    }

    /// The line, checked; `None` for a last line cut short by a crash.
    fn decode(&mut self, raw: &RawLine) -> Result<Option<Line>> {
        match Line::decode(raw.body, self.now) {
            Ok(line) => Ok(Some(line)),
            // A crash can cut the last write short; its message never left
            // (an attempt is written before sending) or its outcome is
            // unknown (the attempt before it makes the recipient uncertain).
            Err(_) if !raw.complete => {
                self.replay.torn = true;
                Ok(None)
            }
            Err(why) if raw.number == 1 => Err(self.refuse(format!(
                "its first line is not a journal header of this version ({why}); it may have been written by an older version of newsletter, or it is not a journal"
            ))),
            Err(why) => Err(self.refuse(format!("line {} is damaged: {why}", raw.number))),
        }
    }

    /// The first line: the header, which must name this issue and list.
    fn header(&mut self, line: &Line) -> Result<()> {
        let header = header_of(line).ok_or_else(|| {
            self.refuse(
                "its first line does not say which issue it belongs to (it may have been written by an older version)".into(),
            )
        })?;
        if let Some(expect) = self.expect {
            if header.issue != expect.issue {
                return Err(self.refuse(format!(
                    "it belongs to the issue `{}`, not `{}` (was it copied from another issue?)",
                    header.issue, expect.issue
                )));
            }
            if header.list != expect.list {
                return Err(self.refuse(format!(
                    "it was written for the list `{}`, not `{}`",
                    header.list, expect.list
                )));
            }
        }
        self.replay.fingerprint = Some(header.fingerprint.clone());
        self.replay.header = Some(header);
        Ok(())
    }

    /// Any line after the header: a change of fingerprint, or a recipient
    /// event for the sort.
    fn event(&mut self, line: &Line, number: u64, at: u64) -> Result<()> {
        let kind = line.kind();
        match kind {
            Kind::Journal => {
                return Err(self.refuse(format!("line {number} starts another journal")));
            }
            Kind::ChangesAccepted => {
                self.replay.fingerprint = line.fingerprint.clone();
                return Ok(());
            }
            Kind::Accepted => self.replay.accepted_events += 1,
            // Every attempt may have reached the server (accepted, lost,
            // uncertain or cut off by a crash): all count against the limits,
            // as the run's own attempts do.
            Kind::Attempt if self.now - line.t < 86_400.0 && self.keep > 0 => {
                if self.recent.len() == self.keep {
                    self.recent.pop_front();
                }
                self.recent.push_back(line.t);
            }
            _ => {}
        }
        self.replay.events += 1;
        let event = Event {
            hash: KeyHash::of(&line.key),
            number,
            at,
            code: kind as u8,
            has_email: !line.email.is_empty(),
        };
        self.sorter.push(event).with_context(temp_error)
    }

    /// The journal read: the recent attempts in time order, the sorted events.
    fn finish(self, file: File) -> Result<Replay> {
        let mut replay = self.replay;
        let mut times: Vec<f64> = self.recent.into();
        times.sort_by(f64::total_cmp);
        replay.recent_attempts = times;
        replay.sorted = Some(self.sorter.finish().with_context(temp_error)?);
        replay.file = Some(file);
        Ok(replay)
    }
}

fn header_of(line: &Line) -> Option<Header> {
    if line.kind() != Kind::Journal || line.version != Some(VERSION) {
        return None;
    }
    Some(Header {
        issue: line.issue.clone()?,
        list: line.list.clone()?,
        subscribers: line.subscribers.clone().unwrap_or_default(),
        fingerprint: line.fingerprint.clone()?,
        t: line.t,
    })
}

impl Replay {
    /// Where each recipient stands, sorted by address hash, and a way to
    /// read their addresses and replies. Call once.
    pub fn settled(&mut self) -> Result<(Settled, Lookup)> {
        let sorted = self.sorted.take();
        let file = match &self.file {
            Some(f) => Some(f.try_clone().context("cannot read the journal")?),
            None => None,
        };
        Ok((
            Settled {
                events: sorted,
                next: None,
            },
            Lookup {
                file,
                path: self.path.clone(),
            },
        ))
    }
}

/// One recipient event, for the sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    hash: KeyHash,
    /// Line number: the order of events.
    number: u64,
    /// Byte offset of the line.
    at: u64,
    code: u8,
    has_email: bool,
}

impl external_sort::Record for Event {
    const SIZE: usize = 34;

    fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.hash.0.to_le_bytes());
        out[8..16].copy_from_slice(&self.hash.1.to_le_bytes());
        out[16..24].copy_from_slice(&self.number.to_le_bytes());
        out[24..32].copy_from_slice(&self.at.to_le_bytes());
        out[32] = self.code;
        out[33] = u8::from(self.has_email);
    }

    fn decode(bytes: &[u8]) -> Self {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i..i + 8]);
            u64::from_le_bytes(w)
        };
        Event {
            hash: KeyHash(word(0), word(8)),
            number: word(16),
            at: word(24),
            code: bytes[32],
            has_email: bytes[33] != 0,
        }
    }
}

fn kind_of(code: u8) -> Kind {
    [
        Kind::Journal,
        Kind::ChangesAccepted,
        Kind::Attempt,
        Kind::Accepted,
        Kind::Failed,
        Kind::Deferred,
        Kind::Lost,
        Kind::Uncertain,
    ]
    .get(code as usize)
    .copied()
    .unwrap_or(Kind::Attempt)
}

/// Where a recipient ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Final {
    Accepted,
    /// 5xx: not retried unless asked.
    Failed,
    /// Temporary failures: sent again by the next run.
    Deferred,
    /// The last attempt may or may not have arrived.
    Uncertain,
}

/// One recipient's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub hash: KeyHash,
    pub state: Final,
    /// Two attempts may each have delivered a copy: an attempt with no
    /// outcome, a time-out or a connection lost after the message was
    /// written, followed by another attempt that may have delivered.
    pub twice: bool,
    /// Offset of the last line that has the address as written.
    pub email_at: Option<u64>,
    /// Offset of the outcome line (with the server's reply).
    pub outcome_at: Option<u64>,
}

/// Recipients in address-hash order.
pub struct Settled {
    events: Option<Sorted<Event>>,
    next: Option<Event>,
}

impl Iterator for Settled {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        let events = self.events.as_mut()?;
        let first = match self.next.take() {
            Some(e) => e,
            None => match events.next()? {
                Ok(e) => e,
                Err(e) => {
                    return Some(Err(
                        anyhow::Error::new(e).context("cannot read the journal's sorted records")
                    ));
                }
            },
        };
        let mut story = Story::default();
        story.add(&first);
        loop {
            match events.next() {
                Some(Ok(e)) if e.hash == first.hash => story.add(&e),
                Some(Ok(e)) => {
                    self.next = Some(e);
                    break;
                }
                Some(Err(e)) => {
                    return Some(Err(
                        anyhow::Error::new(e).context("cannot read the journal's sorted records")
                    ));
                }
                None => break,
            }
        }
        Some(Ok(story.finish(first.hash)))
    }
}

/// One recipient's events so far.
#[derive(Debug, Default)]
struct Story {
    state: Option<Final>,
    in_flight: bool,
    /// Attempts that may have delivered a copy.
    maybe_delivered: u32,
    email_at: Option<u64>,
    outcome_at: Option<u64>,
}

impl Story {
    fn add(&mut self, e: &Event) {
        if e.has_email {
            self.email_at = Some(e.at);
        }
        let kind = kind_of(e.code);
        if kind == Kind::Attempt {
            if self.in_flight {
                // The one before never got an outcome: it may have arrived.
                self.maybe_delivered += 1;
            }
            self.in_flight = true;
            return;
        }
        self.in_flight = false;
        self.outcome_at = Some(e.at);
        let (state, delivered) = match kind {
            Kind::Accepted => (Final::Accepted, true),
            Kind::Failed => (Final::Failed, false),
            Kind::Deferred => (Final::Deferred, false),
            Kind::Lost => (Final::Deferred, true),
            _ => (Final::Uncertain, true),
        };
        self.maybe_delivered += u32::from(delivered);
        // Acceptance is final: a later outcome cannot take the copy back.
        if self.state != Some(Final::Accepted) {
            self.state = Some(state);
        }
    }

    fn finish(mut self, hash: KeyHash) -> Entry {
        if self.in_flight {
            self.maybe_delivered += 1;
            if self.state != Some(Final::Accepted) {
                self.state = Some(Final::Uncertain);
                self.outcome_at = None;
            }
        }
        Entry {
            hash,
            state: self.state.unwrap_or(Final::Uncertain),
            twice: self.maybe_delivered >= 2,
            email_at: self.email_at,
            outcome_at: self.outcome_at,
        }
    }
}

/// Reads lines of the journal back by offset.
pub struct Lookup {
    file: Option<File>,
    path: PathBuf,
}

impl Lookup {
    /// The line at `at`, checked again.
    pub fn line(&self, at: u64) -> Result<Line> {
        use std::os::unix::fs::FileExt;
        let error = || format!("cannot read the journal `{}`", self.path.display());
        let file = self.file.as_ref().with_context(error)?;
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 1024];
        let mut pos = at;
        loop {
            let n = file.read_at(&mut chunk, pos).with_context(error)?;
            if n == 0 {
                break;
            }
            if let Some(end) = chunk[..n].iter().position(|b| *b == b'\n') {
                bytes.extend_from_slice(&chunk[..end]);
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
            pos += n as u64;
        }
        Line::decode(&bytes, super::now()).map_err(|why| {
            anyhow::anyhow!(
                "`{}`: a line changed while it was read: {why}",
                self.path.display()
            )
        })
    }

    /// The address of a recipient, as written, or the key if no line has it.
    pub fn email(&self, entry: &Entry) -> Result<String> {
        match entry.email_at.or(entry.outcome_at) {
            Some(at) => {
                let line = self.line(at)?;
                Ok(if line.email.is_empty() {
                    line.key
                } else {
                    line.email
                })
            }
            None => Ok(String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::format::Stage;

    fn header() -> Header {
        let mut fingerprint = Fingerprint::default();
        fingerprint.add("subject", b"s");
        Header {
            issue: "2022-07-13".into(),
            list: "list.example.org".into(),
            subscribers: "subscribers.csv".into(),
            fingerprint,
            t: super::super::now(),
        }
    }

    const EXPECT: Expect = Expect {
        issue: "2022-07-13",
        list: "list.example.org",
    };

    fn write(lines: &[Line]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.journal");
        let mut bytes = Line::header(&header()).encode();
        for line in lines {
            bytes.extend(line.encode());
        }
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    fn ev(kind: Kind, email: &str) -> Line {
        Line::event(kind, &email.to_lowercase(), email, "")
    }

    fn entries(path: &Path) -> Vec<Entry> {
        let mut replay = replay(path, Some(EXPECT), 10, "newsletter status x").unwrap();
        let (settled, _) = replay.settled().unwrap();
        settled.map(Result::unwrap).collect()
    }

    #[test]
    fn each_recipient_ends_in_its_last_outcome() {
        let (_d, path) = write(&[
            ev(Kind::Attempt, "a@example.org"),
            ev(Kind::Attempt, "b@example.org"),
            Line::event(Kind::Accepted, "a@example.org", "", "250 ok"),
            Line {
                stage: Some(Stage::Rcpt),
                ..Line::event(Kind::Failed, "b@example.org", "b@example.org", "550 no")
            },
            ev(Kind::Attempt, "c@example.org"),
        ]);
        let mut replay = replay(&path, Some(EXPECT), 10, "newsletter status x").unwrap();
        assert_eq!(replay.recent_attempts.len(), 3, "every attempt counts");
        let (settled, lookup) = replay.settled().unwrap();
        let mut found: Vec<(String, Final, bool)> = settled
            .map(Result::unwrap)
            .map(|e| (lookup.email(&e).unwrap(), e.state, e.twice))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            found,
            [
                ("a@example.org".into(), Final::Accepted, false),
                ("b@example.org".into(), Final::Failed, false),
                ("c@example.org".into(), Final::Uncertain, false),
            ]
        );
    }

    #[test]
    fn a_lost_connection_then_a_resend_is_possibly_twice() {
        let (_d, path) = write(&[
            ev(Kind::Attempt, "a@example.org"),
            ev(Kind::Lost, "a@example.org"),
            ev(Kind::Attempt, "a@example.org"),
            ev(Kind::Accepted, "a@example.org"),
        ]);
        let e = entries(&path);
        assert_eq!((e[0].state, e[0].twice), (Final::Accepted, true));
    }

    #[test]
    fn an_attempt_without_outcome_then_a_resend_is_possibly_twice() {
        let (_d, path) = write(&[
            ev(Kind::Attempt, "a@example.org"),
            ev(Kind::Attempt, "a@example.org"),
            ev(Kind::Accepted, "a@example.org"),
        ]);
        assert!(entries(&path)[0].twice);
    }

    #[test]
    fn a_deferral_then_acceptance_is_once() {
        let (_d, path) = write(&[
            ev(Kind::Attempt, "a@example.org"),
            ev(Kind::Deferred, "a@example.org"),
            ev(Kind::Attempt, "a@example.org"),
            ev(Kind::Accepted, "a@example.org"),
        ]);
        let e = entries(&path);
        assert_eq!((e[0].state, e[0].twice), (Final::Accepted, false));
    }

    #[test]
    fn a_torn_last_line_is_ignored() {
        let (_d, path) = write(&[ev(Kind::Attempt, "a@example.org")]);
        let mut bytes = std::fs::read(&path).unwrap();
        let accepted = ev(Kind::Accepted, "a@example.org").encode();
        bytes.extend_from_slice(&accepted[..accepted.len() / 2]);
        std::fs::write(&path, bytes).unwrap();
        let mut r = replay(&path, Some(EXPECT), 10, "newsletter status x").unwrap();
        assert!(r.torn);
        let (settled, _) = r.settled().unwrap();
        let e: Vec<Entry> = settled.map(Result::unwrap).collect();
        assert_eq!(e[0].state, Final::Uncertain);
    }

    #[test]
    fn a_torn_header_is_an_empty_journal_and_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.journal");
        let header = Line::header(&header()).encode();
        std::fs::write(&path, &header[..20]).unwrap();
        let r = replay(&path, Some(EXPECT), 10, "newsletter status x").unwrap();
        assert!(r.torn && r.header.is_none());
        let journal = super::super::writer::Journal::open(&path, &[Line::header(&self::header())]);
        drop(journal.unwrap());
        let r = replay(&path, Some(EXPECT), 10, "newsletter status x").unwrap();
        assert!(!r.torn && r.header.is_some());
    }

    #[test]
    fn a_damaged_line_before_the_last_is_refused() {
        let (_d, path) = write(&[
            ev(Kind::Attempt, "a@example.org"),
            ev(Kind::Accepted, "a@example.org"),
        ]);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 60;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        // The damaged line still ends in a newline: not a torn write.
        let err = replay(&path, Some(EXPECT), 10, "newsletter status x")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("line 3 is damaged"), "{err}");
    }

    #[test]
    fn a_journal_of_another_issue_or_list_is_refused() {
        let (_d, path) = write(&[]);
        let other = Expect {
            issue: "2020-12-10",
            ..EXPECT
        };
        let err = replay(&path, Some(other), 10, "newsletter status x")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("belongs to the issue `2022-07-13`"), "{err}");
        let other = Expect {
            list: "other.example.org",
            ..EXPECT
        };
        let err = replay(&path, Some(other), 10, "newsletter status x")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("list `list.example.org`"), "{err}");
    }

    #[test]
    fn a_symlink_and_a_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("x.journal");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let err = replay(&link, Some(EXPECT), 10, "newsletter status x")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let folder = dir.path().join("y.journal");
        std::fs::create_dir(&folder).unwrap();
        let err = replay(&folder, Some(EXPECT), 10, "newsletter status x")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a plain file"), "{err}");
    }

    #[test]
    fn garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.journal");
        std::fs::write(&path, b"\x00\x01garbage\ngarbage\n").unwrap();
        assert!(replay(&path, Some(EXPECT), 10, "newsletter status x").is_err());
    }

    #[test]
    fn only_the_most_recent_attempts_times_are_kept() {
        let lines: Vec<Line> = (0..50)
            .flat_map(|i| {
                let who = format!("u{i}@example.org");
                [ev(Kind::Attempt, &who), ev(Kind::Accepted, &who)]
            })
            .collect();
        let (_d, path) = write(&lines);
        let r = replay(&path, Some(EXPECT), 7, "newsletter status x").unwrap();
        assert_eq!(r.recent_attempts.len(), 7);
        assert_eq!(r.accepted_events, 50);
    }
}
