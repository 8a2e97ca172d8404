//! The survey: one pass over the whole file, in constant memory (external sort),
//! counting statuses and finding duplicates and conflicts.

use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result};

use super::address::shorten;
use super::columns::Columns;
use super::duplicates::{Duplicates, KeyHash, Repeat};
use super::reader::{RowProblem, SubscriberReader};
use super::{MAX_PROBLEMS, MAX_SHOWN_CHARS, Subscriber, SubscriptionStatus, open_list};
use crate::external_sort::{self, ExternalSorter};

/// Rows kept in memory by [`survey`] before a sorted run of them goes to disk: 2 MiB.
pub(super) const SURVEY_CHUNK: usize = 64 * 1024;

/// What [`survey`] sorts to find rows that share an address: one per valid row,
/// ordered by address hash, then line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct RowRecord {
    hash: KeyHash,
    /// Line << 2 | status code.
    line_status: u64,
    /// Where the row's address is in the [`EmailLog`].
    email_at: u64,
}

impl RowRecord {
    fn new(hash: KeyHash, line: u64, status: SubscriptionStatus, email_at: u64) -> RowRecord {
        let code = match status {
            SubscriptionStatus::Subscribed => 0,
            SubscriptionStatus::Unsubscribed => 1,
            SubscriptionStatus::Bounced => 2,
            SubscriptionStatus::Complained => 3,
        };
        RowRecord {
            hash,
            line_status: line << 3 | code,
            email_at,
        }
    }

    /// A row with a problem but a valid address: it keeps that address
    /// from being mailed (it is reported as a problem already).
    fn blocking(hash: KeyHash, line: u64) -> RowRecord {
        RowRecord {
            hash,
            line_status: line << 3 | 4 | 1,
            email_at: 0,
        }
    }

    fn is_blocking(&self) -> bool {
        self.line_status & 4 != 0
    }

    fn line(&self) -> u64 {
        self.line_status >> 3
    }

    fn status(&self) -> SubscriptionStatus {
        match self.line_status & 3 {
            0 => SubscriptionStatus::Subscribed,
            1 => SubscriptionStatus::Unsubscribed,
            2 => SubscriptionStatus::Bounced,
            _ => SubscriptionStatus::Complained,
        }
    }
}

impl external_sort::Record for RowRecord {
    const SIZE: usize = 32;

    fn encode(&self, out: &mut [u8]) {
        let fields = [self.hash.0, self.hash.1, self.line_status, self.email_at];
        for (slot, field) in out.chunks_exact_mut(8).zip(fields) {
            slot.copy_from_slice(&field.to_le_bytes());
        }
    }

    fn decode(bytes: &[u8]) -> Self {
        let field = |i: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(word)
        };
        RowRecord {
            hash: KeyHash(field(0), field(1)),
            line_status: field(2),
            email_at: field(3),
        }
    }
}

/// The addresses of the rows as written, in an anonymous temporary file, so that the
/// few quoted in problems can be read back after the sort.
pub(super) struct EmailLog {
    out: io::BufWriter<File>,
    written: u64,
}

impl EmailLog {
    fn new() -> io::Result<EmailLog> {
        Ok(EmailLog {
            out: io::BufWriter::with_capacity(64 * 1024, tempfile::tempfile()?),
            written: 0,
        })
    }

    /// Appends as much of `email` as [`shorten`] shows; returns where it is (offset
    /// << 16 | length).
    fn append(&mut self, email: &str) -> io::Result<u64> {
        // One character beyond what is shown, so that `shorten` still adds the `…`.
        let end = email
            .char_indices()
            .nth(MAX_SHOWN_CHARS + 1)
            .map_or(email.len(), |(i, _)| i);
        let at = self.written << 16 | end as u64;
        self.out.write_all(&email.as_bytes()[..end])?;
        self.written += end as u64;
        Ok(at)
    }

    fn finish(self) -> io::Result<File> {
        self.out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }
}

/// Reads back an address from the [`EmailLog`], shortened for a problem.
pub(super) fn read_email(log: &mut File, at: u64) -> io::Result<String> {
    let mut bytes = vec![0u8; (at & 0xFFFF) as usize];
    log.seek(SeekFrom::Start(at >> 16))?;
    log.read_exact(&mut bytes)?;
    Ok(shorten(&String::from_utf8_lossy(&bytes)))
}

/// A duplicate or a status conflict found by the sort, waiting for its address.
#[derive(Debug)]
pub(super) struct Found {
    line: u64,
    email_at: u64,
    /// The problem, with an empty `email`.
    problem: RowProblem,
}

impl PartialEq for Found {
    fn eq(&self, other: &Self) -> bool {
        self.line == other.line
    }
}

impl Eq for Found {}

impl PartialOrd for Found {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Found {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.line.cmp(&other.line)
    }
}

/// One full pass for pre-flight: counts and every problem, in line order.
///
/// Each non-blank row counts once in `rows` and in exactly one of `subscribed`,
/// `unsubscribed`, `bounced`, `complained`, `duplicates`, `invalid`, `unknown_status`
/// or `malformed`. Duplicates are looked for among subscribed rows, as the send loop
/// does; `conflicts` counts addresses that are also subscribed on another row.
#[derive(Debug, Clone)]
pub struct Survey {
    pub rows: u64,
    /// Rows that will be mailed: status subscribed, valid, not a duplicate.
    pub subscribed: u64,
    pub unsubscribed: u64,
    pub bounced: u64,
    pub complained: u64,
    /// The first 1000 problems, in line order.
    pub problems: Vec<RowProblem>,
    pub duplicates: u64,
    pub invalid: u64,
    pub unknown_status: u64,
    pub malformed: u64,
    /// Rows that are unsubscribed, bounced or complained while another row with the
    /// same address is subscribed (and would be mailed).
    pub conflicts: u64,
    pub columns: Columns,
    pub warnings: Vec<String>,
    /// Rows counted in `unsubscribed` because an opt-out or consent column
    /// says so although `status` does not: by column, as written.
    pub opted_out: Vec<(String, u64)>,
    /// The rows counted in `duplicates`, for streaming the file again.
    pub duplicates_index: Duplicates,
}

impl Survey {
    pub(super) fn bucket(&mut self, status: SubscriptionStatus) -> &mut u64 {
        match status {
            SubscriptionStatus::Subscribed => &mut self.subscribed,
            SubscriptionStatus::Unsubscribed => &mut self.unsubscribed,
            SubscriptionStatus::Bounced => &mut self.bounced,
            SubscriptionStatus::Complained => &mut self.complained,
        }
    }

    fn count(&mut self, problem: &RowProblem) {
        *match problem {
            RowProblem::InvalidAddress { .. } => &mut self.invalid,
            RowProblem::UnknownStatus { .. } | RowProblem::UnreadableConsent { .. } => {
                &mut self.unknown_status
            }
            RowProblem::Duplicate { .. } => &mut self.duplicates,
            RowProblem::Malformed { .. } => &mut self.malformed,
            RowProblem::StatusConflict { .. } => &mut self.conflicts,
        } += 1;
    }

    pub(super) fn problem(&mut self, problem: RowProblem) {
        self.count(&problem);
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        }
    }
}

/// What [`survey_joined`] says about each address, in address-hash order.
#[derive(Debug)]
pub enum Joined<S> {
    /// An address of the file, with what the other side has on it. `line` is
    /// the row that would be mailed: the first subscribed row, or `None` when
    /// no row is subscribed or another row of the same address opts out.
    /// Answer `true` to select that row.
    Address {
        hash: KeyHash,
        line: Option<u64>,
        other: Option<S>,
    },
    /// What the other side has on an address the file does not have.
    Missing { other: S },
}

/// A set of line numbers, one bit each: the rows a run mails.
#[derive(Debug, Clone, Default)]
pub struct LineSet {
    bits: Vec<u64>,
    len: u64,
}

impl LineSet {
    pub fn insert(&mut self, line: u64) {
        let (word, bit) = ((line / 64) as usize, line % 64);
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & (1 << bit) == 0 {
            self.bits[word] |= 1 << bit;
            self.len += 1;
        }
    }

    pub fn contains(&self, line: u64) -> bool {
        self.bits
            .get((line / 64) as usize)
            .is_some_and(|w| w & (1 << (line % 64)) != 0)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Reads the whole list once and counts what [`SubscriberReader`] would yield.
///
/// Rows that share an address are found by an external sort of one small record per
/// row (see [`external_sort`]), so memory does not grow with the list, only with the
/// number of duplicate rows; the records and the addresses go to anonymous temporary
/// files (about 60 bytes a row), deleted when this returns.
pub fn survey(path: &Path) -> Result<Survey> {
    survey_in_chunks(path, SURVEY_CHUNK)
}

pub(super) fn survey_in_chunks(path: &Path, chunk: usize) -> Result<Survey> {
    let nothing = std::iter::empty::<Result<(KeyHash, ())>>();
    survey_core(path, open_list(path)?, chunk, nothing, |_, _| {}, |_| true)
        .map(|(survey, _)| survey)
}

/// [`survey`] of an open file, joined with `other`, a stream of values by
/// address hash in ascending order (e.g. a journal's recipients): `visit`
/// sees every address of either side once, in hash order, and picks the
/// rows to mail. Memory stays that of [`survey`], plus a bit per line.
///
/// `inspect` sees every valid row during the first pass, before any
/// `visit` (e.g. to note which rows an audience selects, by line).
pub fn survey_joined<S>(
    path: &Path,
    file: File,
    other: impl Iterator<Item = Result<(KeyHash, S)>>,
    inspect: impl FnMut(&Columns, &Subscriber),
    visit: impl FnMut(Joined<S>) -> bool,
) -> Result<(Survey, LineSet)> {
    survey_core(path, file, SURVEY_CHUNK, other, inspect, visit)
}

/// Hands `visit` what `other` has below `bound` (all of it for `None`).
pub(super) fn drain_below<S, I: Iterator<Item = Result<(KeyHash, S)>>>(
    other: &mut std::iter::Peekable<I>,
    bound: Option<KeyHash>,
    visit: &mut impl FnMut(Joined<S>) -> bool,
) -> Result<()> {
    loop {
        let hash = match other.peek() {
            None => return Ok(()),
            Some(Ok((hash, _))) => *hash,
            Some(Err(_)) => match other.next() {
                Some(Err(e)) => return Err(e),
                _ => continue,
            },
        };
        if bound.is_some_and(|b| hash >= b) {
            return Ok(());
        }
        if let Some(Ok((_, value))) = other.next() {
            visit(Joined::Missing { other: value });
        }
    }
}
/// The rows of one address, as the sorted walk meets them.
#[derive(Debug, Default)]
pub(super) struct Group {
    hash: Option<KeyHash>,
    first_subscribed: Option<u64>,
    first_other: Option<(u64, SubscriptionStatus)>,
    /// A row of this address has a problem: it is not mailed.
    blocked: bool,
}

impl Group {
    /// The row [`Joined::Address`] offers to mail: the first subscribed one,
    /// unless another row of the address opts out or has a problem.
    fn mailed_line(&self) -> Option<u64> {
        self.first_subscribed
            .filter(|_| self.first_other.is_none() && !self.blocked)
    }
}

/// What to say when a temporary file of the survey fails: where, and what to do.
fn temp_error() -> String {
    format!(
        "cannot use a temporary file in `{}` to look for duplicate addresses; \
         check the free space there, or set TMPDIR to another folder",
        std::env::temp_dir().display()
    )
}

pub(super) fn survey_core<S>(
    path: &Path,
    file: File,
    chunk: usize,
    other: impl Iterator<Item = Result<(KeyHash, S)>>,
    inspect: impl FnMut(&Columns, &Subscriber),
    visit: impl FnMut(Joined<S>) -> bool,
) -> Result<(Survey, LineSet)> {
    let reader = SubscriberReader::open_file(path, file)?;
    let mut survey = Survey::empty(&reader);
    let mut rows = RowPass::new(chunk)?;
    rows.read(reader, &mut survey, inspect)?;
    let mut join = Join {
        other: other.peekable(),
        visit,
        selection: LineSet::default(),
    };
    let found = AddressWalk::default().walk(rows.sorter, &mut survey, &mut join)?;
    let log = rows.emails.finish().with_context(temp_error)?;
    let read = std::mem::take(&mut survey.problems);
    survey.problems = merge_problems(read, found, log)?;
    Ok((survey, join.selection))
}

impl Survey {
    /// Nothing counted yet, for the file `reader` has opened.
    fn empty(reader: &SubscriberReader) -> Survey {
        Survey {
            rows: 0,
            subscribed: 0,
            unsubscribed: 0,
            bounced: 0,
            complained: 0,
            problems: Vec::new(),
            duplicates: 0,
            invalid: 0,
            unknown_status: 0,
            malformed: 0,
            conflicts: 0,
            columns: reader.columns().clone(),
            warnings: reader.warnings().to_vec(),
            opted_out: reader
                .columns()
                .opt_outs()
                .map(|name| (name.to_string(), 0))
                .collect(),
            duplicates_index: Duplicates::default(),
        }
    }
}

/// The first pass, in file order: counts every row and hands one record per
/// row with an address to the sort, and its address to the [`EmailLog`].
struct RowPass {
    sorter: ExternalSorter<RowRecord>,
    emails: EmailLog,
}

impl RowPass {
    fn new(chunk: usize) -> Result<RowPass> {
        Ok(RowPass {
            sorter: ExternalSorter::new(chunk),
            emails: EmailLog::new().with_context(temp_error)?,
        })
    }

    fn read(
        &mut self,
        mut reader: SubscriberReader,
        survey: &mut Survey,
        mut inspect: impl FnMut(&Columns, &Subscriber),
    ) -> Result<()> {
        while let Some(item) = reader.next() {
            survey.rows += 1;
            if item.is_err()
                && let Some(key) = reader.problem_key()
            {
                let line = item.as_ref().err().map_or(0, RowProblem::line);
                self.sorter
                    .push(RowRecord::blocking(KeyHash::of(&key), line))
                    .with_context(temp_error)?;
            }
            match item {
                Ok(subscriber) => {
                    inspect(&survey.columns, &subscriber);
                    self.count(survey, &subscriber)?;
                }
                Err(problem) => survey.problem(problem),
            }
        }
        Ok(())
    }

    /// A valid row: counted by status, its record sorted, its address logged.
    fn count(&mut self, survey: &mut Survey, subscriber: &Subscriber) -> Result<()> {
        // Duplicates are taken out of `subscribed` once the sort has found them.
        *survey.bucket(subscriber.status) += 1;
        if let Some(by) = subscriber.opted_out_by {
            survey.opted_out[by].1 += 1;
        }
        let email_at = self
            .emails
            .append(&subscriber.email)
            .with_context(temp_error)?;
        let hash = KeyHash::of(&subscriber.key);
        let record = RowRecord::new(hash, subscriber.line, subscriber.status, email_at);
        self.sorter.push(record).with_context(temp_error)
    }
}

/// The file's addresses joined with `other`, both in hash order: each
/// finished address, and whatever of `other` sorts before it, goes to
/// `visit`, which picks the rows to mail into `selection`.
struct Join<I: Iterator, V> {
    other: std::iter::Peekable<I>,
    visit: V,
    selection: LineSet,
}

impl<S, I, V> Join<I, V>
where
    I: Iterator<Item = Result<(KeyHash, S)>>,
    V: FnMut(Joined<S>) -> bool,
{
    /// Hands a finished address to `visit`, after what `other` has below it.
    fn close(&mut self, group: &Group) -> Result<()> {
        let Some(hash) = group.hash else {
            return Ok(());
        };
        drain_below(&mut self.other, Some(hash), &mut self.visit)?;
        let mine = match self.other.peek() {
            Some(Ok((h, _))) if *h == hash => {
                self.other.next().and_then(Result::ok).map(|(_, v)| v)
            }
            _ => None,
        };
        let line = group.mailed_line();
        if (self.visit)(Joined::Address {
            hash,
            line,
            other: mine,
        }) && let Some(line) = line
        {
            self.selection.insert(line);
        }
        Ok(())
    }

    /// Hands `visit` all that is left of `other`, after the file's last address.
    fn drain_rest(&mut self) -> Result<()> {
        drain_below(&mut self.other, None, &mut self.visit)
    }
}

/// The second pass, over the sorted records: rows sharing an address are now
/// adjacent, in line order. Within one address this is the same walk as a
/// single pass over the file with a set of seen addresses.
#[derive(Default)]
struct AddressWalk {
    group: Group,
    /// The first [`MAX_PROBLEMS`] problems by line: a max-heap drops the last one.
    found: BinaryHeap<Found>,
    repeats: Vec<Repeat>,
}

impl AddressWalk {
    /// Walks the sorted records, counting duplicates and conflicts into
    /// `survey`; returns the first problems found, still without addresses.
    fn walk<S, I, V>(
        mut self,
        sorter: ExternalSorter<RowRecord>,
        survey: &mut Survey,
        join: &mut Join<I, V>,
    ) -> Result<BinaryHeap<Found>>
    where
        I: Iterator<Item = Result<(KeyHash, S)>>,
        V: FnMut(Joined<S>) -> bool,
    {
        for record in sorter.finish().with_context(temp_error)? {
            let record = record.with_context(temp_error)?;
            if self.group.hash != Some(record.hash) {
                join.close(&self.group)?;
                self.group = Group {
                    hash: Some(record.hash),
                    ..Group::default()
                };
            }
            if let Some(problem) = self.meet(&record) {
                survey.count(&problem);
                self.found.push(Found {
                    line: record.line(),
                    email_at: record.email_at,
                    problem,
                });
                if self.found.len() > MAX_PROBLEMS {
                    self.found.pop();
                }
            }
        }
        join.close(&self.group)?;
        join.drain_rest()?;
        survey.subscribed -= survey.duplicates;
        self.repeats.sort_unstable_by_key(|r| r.line);
        survey.duplicates_index = Duplicates {
            repeats: self.repeats,
        };
        Ok(self.found)
    }

    /// One more row of the current address: a duplicate, a conflict or
    /// nothing, with an empty `email` for now.
    fn meet(&mut self, record: &RowRecord) -> Option<RowProblem> {
        let group = &mut self.group;
        let (line, status) = (record.line(), record.status());
        if record.is_blocking() {
            group.blocked = true;
            return None;
        }
        match (status, group.first_subscribed, group.first_other) {
            (SubscriptionStatus::Subscribed, None, other) => {
                group.first_subscribed = Some(line);
                other.map(|(status_line, status)| RowProblem::StatusConflict {
                    line,
                    email: String::new(),
                    subscribed_line: line,
                    status,
                    status_line,
                })
            }
            (SubscriptionStatus::Subscribed, Some(first_line), _) => {
                self.repeats.push(Repeat {
                    line,
                    first_line,
                    check: record.hash.0,
                });
                Some(RowProblem::Duplicate {
                    line,
                    email: String::new(),
                    first_line,
                })
            }
            (status, subscribed, other) => {
                if other.is_none() {
                    group.first_other = Some((line, status));
                }
                subscribed.map(|subscribed_line| RowProblem::StatusConflict {
                    line,
                    email: String::new(),
                    subscribed_line,
                    status,
                    status_line: line,
                })
            }
        }
    }
}

/// The problems of the first pass and those of the sort, merged by line (the
/// first [`MAX_PROBLEMS`]), the sort's with their addresses read back from `log`.
fn merge_problems(
    read: Vec<RowProblem>,
    found: BinaryHeap<Found>,
    mut log: File,
) -> Result<Vec<RowProblem>> {
    let mut merged = Vec::with_capacity(MAX_PROBLEMS.min(read.len() + found.len()));
    let mut read = read.into_iter().peekable();
    let mut sorted = found.into_sorted_vec().into_iter().peekable();
    while merged.len() < MAX_PROBLEMS {
        let take_read = match (read.peek(), sorted.peek()) {
            (Some(a), Some(b)) => a.line() <= b.line,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if take_read {
            merged.extend(read.next());
            continue;
        }
        let Some(Found {
            email_at,
            mut problem,
            ..
        }) = sorted.next()
        else {
            break;
        };
        if let RowProblem::Duplicate { email, .. } | RowProblem::StatusConflict { email, .. } =
            &mut problem
        {
            *email = read_email(&mut log, email_at).with_context(temp_error)?;
        }
        merged.push(problem);
    }
    Ok(merged)
}
