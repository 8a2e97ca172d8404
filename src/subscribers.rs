//! Reading the subscriber list: a CSV exported from Excel, Google Sheets or a CRM.
//!
//! The file is read as a stream, so memory does not grow with its length. A first
//! pass over the raw bytes decides the encoding (UTF-8 or Windows-1252) and sniffs
//! the delimiter; the second pass parses records one at a time.

use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::consent;
use crate::external_sort::{self, ExternalSorter};

/// Longest first or last name kept, in characters.
const MAX_NAME_CHARS: usize = 256;
/// Longest extra merge field value kept, in characters.
const MAX_EXTRA_CHARS: usize = 1024;
/// Longest cell value quoted back in a [`RowProblem`], in characters.
const MAX_SHOWN_CHARS: usize = 100;
/// [`Survey::problems`] keeps only this many entries; the counts stay exact.
const MAX_PROBLEMS: usize = 1000;
/// A record with more line breaks than this almost always comes from a stray `"`.
const MAX_LINE_BREAKS: u64 = 100;
/// Buffer size for the encoding pass.
const SCAN_BUFFER: usize = 64 * 1024;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Subscription status of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Subscribed,
    Unsubscribed,
    Bounced,
    Complained,
}

impl Status {
    /// The status as written in the file, lowercase.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Subscribed => "subscribed",
            Status::Unsubscribed => "unsubscribed",
            Status::Bounced => "bounced",
            Status::Complained => "complained",
        }
    }

    /// Parses a status cell: trimmed, case-insensitive, empty means subscribed.
    pub fn parse(value: &str) -> Option<Status> {
        let value = value.trim();
        if value.is_empty() {
            return Some(Status::Subscribed);
        }
        [
            Status::Subscribed,
            Status::Unsubscribed,
            Status::Bounced,
            Status::Complained,
        ]
        .into_iter()
        .find(|status| value.eq_ignore_ascii_case(status.as_str()))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One valid row of the subscriber list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// 1-based physical line where the record starts.
    pub line: u64,
    /// Address as written, trimmed and validated.
    pub email: String,
    /// Lowercased address, for duplicate detection and the journal.
    pub key: String,
    pub first_name: String,
    pub last_name: String,
    pub status: Status,
    /// Values aligned with [`SubscriberReader::extra_columns`].
    pub extra: Vec<String>,
    /// The opt-out or consent column (index into [`Columns::opt_outs`]) that
    /// made a row `subscribed` in its `status` not to be mailed.
    pub opted_out_by: Option<usize>,
}

impl Subscriber {
    /// Value of a merge field by normalised column name: email, first_name, last_name,
    /// status, or an extra column; None if no such column.
    ///
    /// The four standard fields always have a value (empty when the file lacks the
    /// column); use [`Columns::has`] to know whether the file has them.
    pub fn field(&self, columns: &Columns, name: &str) -> Option<&str> {
        self.lookup(columns, name).or_else(|| {
            let normalised = normalise_column(name);
            (normalised != name)
                .then(|| self.lookup(columns, &normalised))
                .flatten()
        })
    }

    fn lookup(&self, columns: &Columns, name: &str) -> Option<&str> {
        match name {
            "email" => Some(&self.email),
            "first_name" => Some(&self.first_name),
            "last_name" => Some(&self.last_name),
            "status" => Some(self.status.as_str()),
            _ => {
                let index = columns.extra.iter().position(|n| n == name)?;
                Some(self.extra.get(index).map_or("", String::as_str))
            }
        }
    }

    /// The value of a column resolved with [`Columns::field`].
    pub fn get(&self, field: Field) -> &str {
        match field {
            Field::Email => &self.email,
            Field::FirstName => &self.first_name,
            Field::LastName => &self.last_name,
            Field::Status => self.status.as_str(),
            Field::Extra(index) => self.extra.get(index).map_or("", String::as_str),
        }
    }

    /// A subscriber made from an address alone, e.g. for test sends; `email` is taken
    /// as given (trimmed), so validate it first.
    pub fn test(email: &str, line: u64) -> Subscriber {
        let email = email.trim();
        Subscriber {
            line,
            email: email.to_string(),
            key: email.to_lowercase(),
            first_name: String::new(),
            last_name: String::new(),
            status: Status::Subscribed,
            extra: Vec::new(),
            opted_out_by: None,
        }
    }

    /// "First Last" trimmed; may be empty.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_string()
    }
}

/// Where a column's value sits in a [`Subscriber`], resolved once per file
/// by [`Columns::field`] so that reading it per row is an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Email,
    FirstName,
    LastName,
    Status,
    Extra(usize),
}

/// The columns of the file: normalised names in file order, and where each value sits.
///
/// Columns with an empty header cell are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    names: Vec<String>,
    extra: Vec<String>,
    email: usize,
    first_name: Option<usize>,
    last_name: Option<usize>,
    status: Option<usize>,
    /// Field index in the record of each extra column.
    extra_index: Vec<usize>,
    /// Opt-out and consent columns: field index, name as written, meaning.
    opt_outs: Vec<(usize, String, consent::Meaning)>,
    /// Fields in the header line; every row must have as many.
    width: usize,
}

impl Columns {
    /// Columns of a list that has only `email`, for messages not built from a file.
    pub fn minimal() -> Columns {
        Columns {
            names: vec!["email".to_string()],
            extra: Vec::new(),
            email: 0,
            first_name: None,
            last_name: None,
            status: None,
            extra_index: Vec::new(),
            opt_outs: Vec::new(),
            width: 1,
        }
    }

    /// The opt-out and consent columns, by name as written in the header.
    pub fn opt_outs(&self) -> impl Iterator<Item = &str> {
        self.opt_outs.iter().map(|(_, name, _)| name.as_str())
    }

    /// Whether the file has this column (name normalised like the header).
    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name) || {
            let normalised = normalise_column(name);
            self.names.contains(&normalised)
        }
    }

    /// Where the column `name` (normalised like the header) sits; None when
    /// the file has no such column.
    pub fn field(&self, name: &str) -> Option<Field> {
        let name = if self.names.iter().any(|n| n == name) {
            name.to_string()
        } else {
            normalise_column(name)
        };
        if !self.names.contains(&name) {
            return None;
        }
        Some(match name.as_str() {
            "email" => Field::Email,
            "first_name" => Field::FirstName,
            "last_name" => Field::LastName,
            "status" => Field::Status,
            _ => Field::Extra(self.extra.iter().position(|n| *n == name)?),
        })
    }

    /// Normalised names of all named columns, in file order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Normalised names of the extra merge-field columns, in file order.
    pub fn extra(&self) -> &[String] {
        &self.extra
    }

    /// Builds the column map from the header record; `Err` holds the user message.
    fn from_header(path: &Path, header: &csv::StringRecord) -> Result<Columns> {
        let mut columns = Columns {
            names: Vec::new(),
            ..Columns::minimal()
        };
        let mut email = None;
        let mut written: HashMap<String, &str> = HashMap::new();
        for (index, raw) in header.iter().enumerate() {
            let name = normalise_column(raw);
            if name.is_empty() {
                continue;
            }
            if let Some(first) = written.insert(name.clone(), raw.trim()) {
                bail!(
                    "`{}` has two `{name}` columns (`{first}` and `{}`); delete or rename one of them",
                    path.display(),
                    raw.trim()
                );
            }
            match name.as_str() {
                "email" => email = Some(index),
                "first_name" => columns.first_name = Some(index),
                "last_name" => columns.last_name = Some(index),
                "status" => columns.status = Some(index),
                _ => {
                    if let Some(meaning) = consent::meaning(&name) {
                        columns
                            .opt_outs
                            .push((index, raw.trim().to_string(), meaning));
                    }
                    columns.extra.push(name.clone());
                    columns.extra_index.push(index);
                }
            }
            columns.names.push(name);
        }
        columns.width = header.len();
        match email {
            Some(index) => columns.email = index,
            None => bail!("{}", no_email_message(path, header)),
        }
        Ok(columns)
    }
}

/// Error text for a header without an `email` column.
fn no_email_message(path: &Path, header: &csv::StringRecord) -> String {
    const SHOWN: usize = 20;
    let named: Vec<&str> = header
        .iter()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let mut message = format!("`{}` has no `email` column; ", path.display());
    if named.is_empty() {
        message.push_str("its first line has no column names.");
    } else {
        let list: Vec<String> = named
            .iter()
            .take(SHOWN)
            .map(|h| format!("`{}`", shorten(h)))
            .collect();
        message.push_str(&format!("its columns are {}", list.join(", ")));
        if named.len() > SHOWN {
            message.push_str(&format!(" and {} more", named.len() - SHOWN));
        }
        message.push('.');
    }
    if named.iter().any(|h| h.contains('@')) {
        message.push_str(
            " The first line looks like data: add a header line such as \
             `email,first_name,last_name,status` above it",
        );
    } else {
        message.push_str(" Rename the column that holds addresses to `email`");
    }
    message
}

/// Normalises a column name: trimmed, lowercase, runs of spaces, `-` and `_` become
/// one `_`; common spellings of the standard columns map to `email`, `first_name`,
/// `last_name`.
fn normalise_column(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut separator = false;
    for c in raw.trim().chars() {
        if c.is_whitespace() || c == '-' || c == '_' {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('_');
            }
            separator = false;
            out.extend(c.to_lowercase());
        }
    }
    match out.as_str() {
        "e_mail" | "email_address" | "e_mail_address" => "email".to_string(),
        "firstname" => "first_name".to_string(),
        "lastname" => "last_name".to_string(),
        _ => out,
    }
}

/// One problem found in a row. Not an error of the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowProblem {
    InvalidAddress {
        line: u64,
        value: String,
        reason: String,
    },
    UnknownStatus {
        line: u64,
        value: String,
    },
    Duplicate {
        line: u64,
        email: String,
        first_line: u64,
    },
    /// An opt-out or consent cell that is neither yes nor no.
    UnreadableConsent {
        line: u64,
        column: String,
        value: String,
        hint: &'static str,
    },
    /// A record the CSV reader could not read.
    Malformed {
        line: u64,
        message: String,
    },
    /// The address is subscribed on one row and unsubscribed, bounced or complained on
    /// another; only [`survey`] finds these.
    StatusConflict {
        line: u64,
        email: String,
        subscribed_line: u64,
        status: Status,
        status_line: u64,
    },
}

impl RowProblem {
    /// 1-based physical line of the row.
    pub fn line(&self) -> u64 {
        match self {
            RowProblem::InvalidAddress { line, .. }
            | RowProblem::UnknownStatus { line, .. }
            | RowProblem::UnreadableConsent { line, .. }
            | RowProblem::Duplicate { line, .. }
            | RowProblem::Malformed { line, .. }
            | RowProblem::StatusConflict { line, .. } => *line,
        }
    }
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowProblem::InvalidAddress {
                line,
                value,
                reason,
            } => write!(f, "line {line}: invalid address `{value}`: {reason}"),
            RowProblem::UnknownStatus { line, value } => write!(
                f,
                "line {line}: unknown status `{value}`: use `subscribed`, `unsubscribed`, \
                 `bounced` or `complained` (empty means subscribed); this row is not mailed"
            ),
            RowProblem::Duplicate {
                line,
                email,
                first_line,
            } => write!(
                f,
                "line {line}: `{email}` is already on line {first_line}; this row is skipped"
            ),
            RowProblem::UnreadableConsent {
                line,
                column,
                value,
                hint,
            } => write!(
                f,
                "line {line}: `{column}` is `{value}`, which says neither yes nor no: {hint}; \
                 this row is not mailed"
            ),
            RowProblem::Malformed { line, message } => {
                write!(f, "line {line}: cannot read this row: {message}")
            }
            RowProblem::StatusConflict {
                line,
                email,
                subscribed_line,
                status,
                status_line,
            } => write!(
                f,
                "line {line}: `{email}` is subscribed on line {subscribed_line} but {status} \
                 on line {status_line}, so it would still be mailed; delete the subscribed row \
                 or set its status to `{status}`"
            ),
        }
    }
}

impl std::error::Error for RowProblem {}

/// Streams the rows of a subscriber list.
pub struct SubscriberReader {
    csv: csv::Reader<Source>,
    record: csv::StringRecord,
    columns: Columns,
    warnings: Vec<String>,
    delimiter: u8,
    has_bom: bool,
    done: bool,
}

impl fmt::Debug for SubscriberReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriberReader")
            .field("columns", &self.columns)
            .field("warnings", &self.warnings)
            .field("delimiter", &(self.delimiter as char))
            .field("has_bom", &self.has_bom)
            .finish_non_exhaustive()
    }
}

impl SubscriberReader {
    /// Opens the file, decides the encoding, sniffs the delimiter, reads the header.
    pub fn open(path: &Path) -> Result<SubscriberReader> {
        Self::open_file(path, open_list(path)?)
    }

    /// Reads an already open file from its start; `path` is for messages.
    pub fn open_file(path: &Path, mut file: File) -> Result<SubscriberReader> {
        let shown = path.display();
        let read_error = || format!("cannot read `{shown}`");
        file.seek(SeekFrom::Start(0)).with_context(read_error)?;

        let mut head = [0u8; 3];
        let head_len = read_up_to(&mut file, &mut head).with_context(read_error)?;
        let head = &head[..head_len];
        if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
            bail!(
                "`{shown}` is saved as UTF-16 (\"Unicode Text\"): save it as CSV UTF-8 \
                 (in Excel: File → Save As → CSV UTF-8)"
            );
        }
        let has_bom = head == UTF8_BOM;
        let start = if has_bom { UTF8_BOM.len() as u64 } else { 0 };
        file.seek(SeekFrom::Start(start)).with_context(read_error)?;

        let scan = scan(&mut file).with_context(read_error)?;
        let mut warnings = Vec::new();
        let cp1252 = match scan.first_invalid_line {
            None => false,
            Some(line) if has_bom || scan.cp1252_undefined => bail!(
                "`{shown}` line {line} is not valid UTF-8: save it as CSV UTF-8 \
                 (in Excel: File → Save As → CSV UTF-8)"
            ),
            Some(_) => {
                warnings.push(format!(
                    "`{shown}` is not UTF-8; read it as Windows-1252. \
                     Save it as \"CSV UTF-8\" to silence this warning"
                ));
                true
            }
        };
        file.seek(SeekFrom::Start(start)).with_context(read_error)?;

        let buffered = BufReader::new(file);
        let source = Source {
            decoder: if cp1252 {
                Decoder::Cp1252(Cp1252Reader::new(buffered))
            } else {
                Decoder::Utf8(buffered)
            },
            cr_to_lf: scan.has_cr && !scan.has_lf,
            total: 0,
            last: 0,
            eof: false,
        };
        let delimiter = scan.delimiter;
        // Records end at LF only, so that csv counts lines where records start; a CR
        // before it stays at the end of the last cell, and every cell is trimmed.
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            .has_headers(false)
            .flexible(true)
            .from_reader(source);
        // The header is the first line with a name in it; Excel writes `,,,` for
        // empty rows above it.
        let mut header = csv::StringRecord::new();
        loop {
            let found = csv.read_record(&mut header).with_context(|| {
                format!(
                    "cannot read the first line of `{shown}`: save it as CSV UTF-8 and try again"
                )
            })?;
            if !found {
                bail!("`{shown}` is empty: it needs a header line with an `email` column");
            }
            if header.iter().any(|h| !h.trim().is_empty()) {
                break;
            }
        }
        let columns = Columns::from_header(path, &header)?;
        Ok(SubscriberReader {
            csv,
            record: csv::StringRecord::new(),
            columns,
            warnings,
            delimiter,
            has_bom,
            done: false,
        })
    }

    /// The columns found in the header.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// Names of the extra merge-field columns; [`Subscriber::extra`] is aligned with it.
    pub fn extra_columns(&self) -> &[String] {
        self.columns.extra()
    }

    /// Notes for the user about the file, e.g. that it was read as Windows-1252.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The field delimiter found in the header line.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Whether the file starts with a UTF-8 byte order mark (stripped).
    pub fn has_bom(&self) -> bool {
        self.has_bom
    }

    /// Physical line where the record just read starts.
    ///
    /// csv's record position is where it started looking, before any blank lines it
    /// skipped, so count back from where the record ended instead.
    fn start_line(&self, breaks: u64) -> u64 {
        let end = self.csv.position();
        let source = self.csv.get_ref();
        let ended_by_eof = source.eof && end.byte() == source.total && source.last != b'\n';
        let looked_from = self.record.position().map_or(1, csv::Position::line);
        end.line()
            .saturating_sub(breaks + u64::from(!ended_by_eof))
            .max(looked_from)
    }

    /// A line inside a multi-line cell of the current record that reads like a
    /// row of its own (its `email` field is an address): what a `"` that is
    /// never closed does to the rows after it. The long cases are caught by
    /// [`MAX_LINE_BREAKS`]; this catches a few swallowed rows.
    fn swallowed_row(&self) -> Option<&str> {
        let delimiter = char::from(self.delimiter);
        let single_column = self.columns.names.len() <= 1;
        self.record
            .iter()
            .flat_map(|cell| cell.split('\n').skip(1))
            .map(str::trim)
            .find(|line| {
                (single_column || line.contains(delimiter))
                    && line
                        .split(delimiter)
                        .nth(self.columns.email)
                        .map(|field| field.trim().trim_matches('"'))
                        .is_some_and(|field| check_address(field).is_ok())
            })
    }

    /// Turns the current record into a subscriber, or the row's problem.
    fn row(&self, line: u64, breaks: u64) -> Result<Subscriber, RowProblem> {
        let record = &self.record;
        let columns = &self.columns;
        let cell = |index: Option<usize>| index.and_then(|i| record.get(i)).unwrap_or("");

        if breaks > MAX_LINE_BREAKS {
            return Err(RowProblem::Malformed {
                line,
                message: format!(
                    "it runs over {} lines, probably because of a `\"` without its closing \
                     `\"`; check the quotes on this line",
                    breaks + 1
                ),
            });
        }

        if breaks > 0
            && let Some(swallowed) = self.swallowed_row()
        {
            return Err(RowProblem::Malformed {
                line,
                message: format!(
                    "a `\"` in it is not closed, so the next line(s), from `{}`, were read as part \
                     of this row and would not be mailed; check the quotes on this line",
                    shorten(swallowed)
                ),
            });
        }

        if record.len() != columns.width {
            return Err(RowProblem::Malformed {
                line,
                message: format!(
                    "it has {} fields but the header has {}, so its values may be in the wrong \
                     columns (an extra or a missing `{}`?); make it match the header",
                    record.len(),
                    columns.width,
                    self.delimiter as char
                ),
            });
        }
        let email = cell(Some(columns.email)).trim();
        if let Err(reason) = check_address(email) {
            return Err(RowProblem::InvalidAddress {
                line,
                value: shorten(email),
                reason,
            });
        }
        let status_cell = cell(columns.status);
        let Some(mut status) = Status::parse(status_cell) else {
            return Err(RowProblem::UnknownStatus {
                line,
                value: shorten(status_cell.trim()),
            });
        };
        let mut opted_out_by = None;
        for (i, (index, name, meaning)) in columns.opt_outs.iter().enumerate() {
            let value = cell(Some(*index));
            match consent::opts_out(*meaning, value) {
                Ok(true) if status == Status::Subscribed && opted_out_by.is_none() => {
                    status = Status::Unsubscribed;
                    opted_out_by = Some(i);
                }
                Ok(_) => {}
                Err(hint) => {
                    return Err(RowProblem::UnreadableConsent {
                        line,
                        column: name.clone(),
                        value: shorten(value.trim()),
                        hint,
                    });
                }
            }
        }
        Ok(Subscriber {
            opted_out_by,
            line,
            email: email.to_string(),
            key: email.to_lowercase(),
            first_name: clean_value(cell(columns.first_name), MAX_NAME_CHARS),
            last_name: clean_value(cell(columns.last_name), MAX_NAME_CHARS),
            status,
            extra: columns
                .extra_index
                .iter()
                .map(|&i| clean_value(cell(Some(i)), MAX_EXTRA_CHARS))
                .collect(),
        })
    }
}

impl SubscriberReader {
    /// After a row came back as a problem: its address, lowercased, when the
    /// row has a valid one (an unreadable status or a row of the wrong
    /// width). Such an address is never mailed, whatever its other rows say.
    pub fn problem_key(&self) -> Option<String> {
        let email = self.record.get(self.columns.email)?.trim();
        check_address(email).ok().map(|()| email.to_lowercase())
    }
}

impl Iterator for SubscriberReader {
    type Item = Result<Subscriber, RowProblem>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.csv.read_record(&mut self.record) {
                Ok(false) => self.done = true,
                Ok(true) => {
                    if self.record.iter().all(|f| f.trim().is_empty()) {
                        continue;
                    }
                    let breaks = self
                        .record
                        .iter()
                        .map(|f| f.bytes().filter(|&b| b == b'\n').count() as u64)
                        .sum();
                    let line = self.start_line(breaks);
                    return Some(self.row(line, breaks));
                }
                Err(err) => {
                    let line = err
                        .position()
                        .map_or_else(|| self.csv.position().line(), csv::Position::line);
                    let message = match err.kind() {
                        csv::ErrorKind::Io(io) => {
                            self.done = true;
                            format!("the rest of the file could not be read ({io}); try again")
                        }
                        csv::ErrorKind::Utf8 { .. } => {
                            "it is not valid UTF-8: save the file as CSV UTF-8".to_string()
                        }
                        _ => err.to_string().to_lowercase(),
                    };
                    return Some(Err(RowProblem::Malformed { line, message }));
                }
            }
        }
        None
    }
}

/// Checks an address (already trimmed); `Err` holds the reason, for the user.
fn check_address(email: &str) -> Result<(), String> {
    if email.is_empty() {
        return Err("the `email` cell is empty; fill it in or delete the row".into());
    }
    if let (Some(open), Some(close)) = (email.find('<'), email.rfind('>'))
        && open < close
    {
        let inner = email[open + 1..close].trim();
        return Err(format!(
            "it has a name and `<…>` around the address; keep only the address `{}`",
            shorten(inner)
        ));
    }
    if email.contains(['<', '>']) {
        return Err("it contains `<` or `>`; remove them".into());
    }
    if email.chars().any(invisible) {
        return Err("it contains a line break or another invisible character; retype it".into());
    }
    if email.chars().any(char::is_whitespace) {
        return Err("it contains a space (maybe an invisible one); remove it".into());
    }
    let Some((user, domain)) = email.split_once('@') else {
        return Err("it has no `@`".into());
    };
    if domain.contains('@') {
        return Err("it has more than one `@`".into());
    }
    if user.is_empty() {
        return Err("nothing comes before the `@`".into());
    }
    if domain.is_empty() {
        return Err("nothing comes after the `@`".into());
    }
    if domain.ends_with('.') {
        return Err(format!(
            "the domain `{}` ends with a dot; remove it",
            shorten(domain)
        ));
    }
    if domain.starts_with('.') || domain.contains("..") {
        return Err(format!(
            "the domain `{}` has two dots in a row or starts with a dot",
            shorten(domain)
        ));
    }
    if let Some(bad) = domain
        .chars()
        .find(|c| c.is_ascii() && !c.is_ascii_alphanumeric() && !matches!(c, '.' | '-'))
    {
        return Err(format!(
            "the domain `{}` contains `{bad}`, which no domain name has; check it for typos",
            shorten(domain)
        ));
    }
    if !domain.contains('.') && !domain.eq_ignore_ascii_case("localhost") {
        return Err(format!(
            "the domain `{}` has no dot; it should look like `example.org`",
            shorten(domain)
        ));
    }
    match lettre::Address::from_str(email) {
        Ok(_) => Ok(()),
        Err(lettre::address::AddressError::InvalidUser) => Err(format!(
            "the part before the `@` (`{}`) is not valid; check it for typos",
            shorten(user)
        )),
        Err(lettre::address::AddressError::InvalidDomain) => Err(format!(
            "the domain `{}` is not valid; check it for typos",
            shorten(domain)
        )),
        Err(_) => Err("it is not a valid address; check it for typos".into()),
    }
}

/// Control, zero-width and bidi characters: never part of a real address, often
/// pasted along with one.
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Makes a cell safe for mail headers: every control character (Unicode category Cc,
/// which includes CR, LF, TAB and U+0085) and U+2028/U+2029 becomes one space, the
/// result is trimmed and cut to `max` characters.
///
/// This is what prevents header injection through names and merge fields: no line
/// break can reach a header. lettre also encodes header values, but we do not rely on
/// that alone.
fn clean_value(raw: &str, max: usize) -> String {
    let mut out = String::new();
    let mut chars = 0;
    let mut after_control = false;
    for c in raw.chars() {
        // Bidi controls reorder what follows them (a name could make the
        // greeting or `To` read backwards): dropped.
        if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
        {
            continue;
        }
        let control = c.is_control() || c == '\u{2028}' || c == '\u{2029}';
        if control && after_control {
            continue;
        }
        after_control = control;
        let c = if control { ' ' } else { c };
        if out.is_empty() && c.is_whitespace() {
            continue;
        }
        if chars == max {
            break;
        }
        out.push(c);
        chars += 1;
    }
    out.truncate(out.trim_end().len());
    out
}

/// A cell value short enough to quote in a message, with controls made visible.
fn shorten(value: &str) -> String {
    let mut out = String::new();
    for (count, c) in value.chars().enumerate() {
        if count == MAX_SHOWN_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Opens a subscriber file for reading; refuses what is not a plain file
/// (`/dev/zero`, a pipe, a folder), which would never end or never start.
pub fn open_list(path: &Path) -> Result<File> {
    let shown = path.display();
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A named pipe must not block the open before it can be refused.
        options.custom_flags(crate::lock::open_flags(rustix::fs::OFlags::NONBLOCK));
    }
    let file = options
        .open(path)
        .with_context(|| format!("cannot open `{shown}`: check the path and the permissions"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read `{shown}`"))?;
    if !meta.is_file() {
        bail!("`{shown}` is not a plain file: give the path of the subscriber CSV file");
    }
    Ok(file)
}

/// Remembers the addresses seen so far, to find duplicates.
///
/// Memory: a 128-bit hash (SHA-256, truncated) and a line number per distinct address
/// (about 50 MB per million), not the address itself. For whole lists use
/// [`Survey::duplicates_index`] instead, whose memory does not grow with the list. Feed
/// it the rows that would be mailed (status subscribed), in file order, so the counts
/// match [`survey`].
#[derive(Debug, Default)]
pub struct DuplicateFilter {
    seen: HashMap<KeyHash, u64, BuildHasherDefault<PassThrough>>,
}

impl DuplicateFilter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Some(first_line) if this address (by [`Subscriber::key`]) was seen before.
    pub fn check(&mut self, s: &Subscriber) -> Option<u64> {
        match self.seen.entry(KeyHash::of(&s.key)) {
            Entry::Occupied(first) => Some(*first.get()),
            Entry::Vacant(slot) => {
                slot.insert(s.line);
                None
            }
        }
    }
}

/// The first 128 bits of a SHA-256 of an address: collisions are negligible (about
/// 10^-25 for 10^7 addresses), and nobody can craft one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyHash(pub u64, pub u64);

impl KeyHash {
    /// The hash of a lowercased address ([`Subscriber::key`]).
    pub fn of(key: &str) -> KeyHash {
        let digest = Sha256::digest(key.as_bytes());
        let half = |range: std::ops::Range<usize>| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest[range]);
            u64::from_le_bytes(bytes)
        };
        KeyHash(half(0..8), half(8..16))
    }
}

impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already uniformly distributed: no need to hash it again.
        state.write_u64(self.0);
    }
}

/// A [`Hasher`] that passes a `u64` through unchanged.
#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Which rows repeat an earlier subscribed row's address; built by [`survey`], consulted
/// while streaming the same file again.
///
/// Memory: 24 bytes per duplicate row, nothing for the others.
#[derive(Debug, Clone, Default)]
pub struct Duplicates {
    /// Sorted by line.
    repeats: Vec<Repeat>,
}

#[derive(Debug, Clone, Copy)]
struct Repeat {
    line: u64,
    first_line: u64,
    /// Part of the address's hash, so that a row is skipped only for its own address.
    check: u64,
}

impl Duplicates {
    /// Some(first_line) if this row repeats the address of an earlier subscribed row
    /// (by [`Subscriber::key`]): the row is then not mailed.
    pub fn earlier(&self, s: &Subscriber) -> Option<u64> {
        let index = self
            .repeats
            .binary_search_by_key(&s.line, |r| r.line)
            .ok()?;
        let repeat = self.repeats[index];
        (KeyHash::of(&s.key).0 == repeat.check).then_some(repeat.first_line)
    }

    /// How many rows repeat an earlier one ([`Survey::duplicates`]).
    pub fn count(&self) -> u64 {
        self.repeats.len() as u64
    }
}

/// Rows kept in memory by [`survey`] before a sorted run of them goes to disk: 2 MiB.
const SURVEY_CHUNK: usize = 64 * 1024;

/// What [`survey`] sorts to find rows that share an address: one per valid row,
/// ordered by address hash, then line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RowRecord {
    hash: KeyHash,
    /// Line << 2 | status code.
    line_status: u64,
    /// Where the row's address is in the [`EmailLog`].
    email_at: u64,
}

impl RowRecord {
    fn new(hash: KeyHash, line: u64, status: Status, email_at: u64) -> RowRecord {
        let code = match status {
            Status::Subscribed => 0,
            Status::Unsubscribed => 1,
            Status::Bounced => 2,
            Status::Complained => 3,
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

    fn status(&self) -> Status {
        match self.line_status & 3 {
            0 => Status::Subscribed,
            1 => Status::Unsubscribed,
            2 => Status::Bounced,
            _ => Status::Complained,
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
struct EmailLog {
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
fn read_email(log: &mut File, at: u64) -> io::Result<String> {
    let mut bytes = vec![0u8; (at & 0xFFFF) as usize];
    log.seek(SeekFrom::Start(at >> 16))?;
    log.read_exact(&mut bytes)?;
    Ok(shorten(&String::from_utf8_lossy(&bytes)))
}

/// A duplicate or a status conflict found by the sort, waiting for its address.
#[derive(Debug)]
struct Found {
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
    fn bucket(&mut self, status: Status) -> &mut u64 {
        match status {
            Status::Subscribed => &mut self.subscribed,
            Status::Unsubscribed => &mut self.unsubscribed,
            Status::Bounced => &mut self.bounced,
            Status::Complained => &mut self.complained,
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

    fn problem(&mut self, problem: RowProblem) {
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

fn survey_in_chunks(path: &Path, chunk: usize) -> Result<Survey> {
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
fn drain_below<S, I: Iterator<Item = Result<(KeyHash, S)>>>(
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
struct Group {
    hash: Option<KeyHash>,
    first_subscribed: Option<u64>,
    first_other: Option<(u64, Status)>,
    /// A row of this address has a problem: it is not mailed.
    blocked: bool,
}

fn survey_core<S>(
    path: &Path,
    file: File,
    chunk: usize,
    other: impl Iterator<Item = Result<(KeyHash, S)>>,
    mut inspect: impl FnMut(&Columns, &Subscriber),
    mut visit: impl FnMut(Joined<S>) -> bool,
) -> Result<(Survey, LineSet)> {
    let temp_error = || {
        format!(
            "cannot use a temporary file in `{}` to look for duplicate addresses; \
             check the free space there, or set TMPDIR to another folder",
            std::env::temp_dir().display()
        )
    };
    let reader = SubscriberReader::open_file(path, file)?;
    let mut survey = Survey {
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
    };
    let mut sorter = ExternalSorter::new(chunk);
    let mut emails = EmailLog::new().with_context(temp_error)?;
    let mut reader = reader;
    while let Some(item) = reader.next() {
        survey.rows += 1;
        if item.is_err()
            && let Some(key) = reader.problem_key()
        {
            let line = item.as_ref().err().map_or(0, RowProblem::line);
            sorter
                .push(RowRecord::blocking(KeyHash::of(&key), line))
                .with_context(temp_error)?;
        }
        match item {
            Ok(subscriber) => {
                inspect(&survey.columns, &subscriber);
                // Duplicates are taken out of `subscribed` once the sort has found them.
                *survey.bucket(subscriber.status) += 1;
                if let Some(by) = subscriber.opted_out_by {
                    survey.opted_out[by].1 += 1;
                }
                let email_at = emails.append(&subscriber.email).with_context(temp_error)?;
                let hash = KeyHash::of(&subscriber.key);
                let record = RowRecord::new(hash, subscriber.line, subscriber.status, email_at);
                sorter.push(record).with_context(temp_error)?;
            }
            Err(problem) => survey.problem(problem),
        }
    }

    let mut other = other.peekable();
    let mut selection = LineSet::default();
    // Hands a finished address, and whatever of `other` sorts before it, to
    // `visit`; at the end (`last`), all that is left of `other` too.
    let mut close = |group: &Group, last: bool| -> Result<()> {
        if let Some(hash) = group.hash {
            drain_below(&mut other, Some(hash), &mut visit)?;
            let mine = match other.peek() {
                Some(Ok((h, _))) if *h == hash => other.next().and_then(Result::ok).map(|(_, v)| v),
                _ => None,
            };
            let line = group
                .first_subscribed
                .filter(|_| group.first_other.is_none() && !group.blocked);
            if visit(Joined::Address {
                hash,
                line,
                other: mine,
            }) && let Some(line) = line
            {
                selection.insert(line);
            }
        }
        if last {
            drain_below(&mut other, None, &mut visit)?;
        }
        Ok(())
    };

    // Rows sharing an address are now adjacent, in line order. Within one address this
    // is the same walk as a single pass over the file with a set of seen addresses.
    let mut found: BinaryHeap<Found> = BinaryHeap::new();
    let mut repeats = Vec::new();
    let mut group = Group::default();
    for record in sorter.finish().with_context(temp_error)? {
        let record = record.with_context(temp_error)?;
        if group.hash != Some(record.hash) {
            close(&group, false)?;
            group = Group {
                hash: Some(record.hash),
                ..Group::default()
            };
        }
        let (line, status) = (record.line(), record.status());
        if record.is_blocking() {
            group.blocked = true;
            continue;
        }
        let problem = match (status, group.first_subscribed, group.first_other) {
            (Status::Subscribed, None, other) => {
                group.first_subscribed = Some(line);
                other.map(|(status_line, status)| RowProblem::StatusConflict {
                    line,
                    email: String::new(),
                    subscribed_line: line,
                    status,
                    status_line,
                })
            }
            (Status::Subscribed, Some(first_line), _) => {
                repeats.push(Repeat {
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
        };
        if let Some(problem) = problem {
            survey.count(&problem);
            // Keep the first problems by line only: a max-heap drops the last one.
            found.push(Found {
                line,
                email_at: record.email_at,
                problem,
            });
            if found.len() > MAX_PROBLEMS {
                found.pop();
            }
        }
    }
    close(&group, true)?;
    survey.subscribed -= survey.duplicates;
    repeats.sort_unstable_by_key(|r| r.line);
    survey.duplicates_index = Duplicates { repeats };

    // Merge the problems of the sort with those of the pass, by line.
    let mut log = emails.finish().with_context(temp_error)?;
    let mut merged = Vec::with_capacity(MAX_PROBLEMS.min(survey.problems.len() + found.len()));
    let mut read = std::mem::take(&mut survey.problems).into_iter().peekable();
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
    survey.problems = merged;
    Ok((survey, selection))
}

/// What the first pass over the raw bytes found.
struct Scan {
    /// Line of the first byte sequence that is not UTF-8, if any.
    first_invalid_line: Option<u64>,
    /// Whether a byte undefined in Windows-1252 occurs (checked once UTF-8 failed).
    cp1252_undefined: bool,
    delimiter: u8,
    has_cr: bool,
    has_lf: bool,
}

/// Streams over the bytes once with a small buffer: checks UTF-8, looks for bytes
/// undefined in Windows-1252 and sniffs the delimiter of the header line.
fn scan(input: &mut impl Read) -> io::Result<Scan> {
    let mut buf = vec![0u8; SCAN_BUFFER];
    let mut carry = 0; // bytes of an incomplete UTF-8 sequence kept from the last read
    let mut line = 1u64;
    let mut first_invalid_line = None;
    let mut cp1252_undefined = false;
    let mut sniffer = Sniffer::default();
    let (mut has_cr, mut has_lf) = (false, false);
    loop {
        let n = match input.read(&mut buf[carry..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let fresh = &buf[carry..carry + n];
        sniffer.feed(fresh);
        has_cr |= fresh.contains(&b'\r');
        has_lf |= fresh.contains(&b'\n');
        cp1252_undefined |= fresh
            .iter()
            .any(|b| matches!(b, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D));
        let eof = n == 0;
        let data = &buf[..carry + n];
        carry = 0;
        if first_invalid_line.is_none() {
            match std::str::from_utf8(data) {
                Ok(_) => line += count_newlines(data),
                Err(e) => {
                    let valid = e.valid_up_to();
                    line += count_newlines(&data[..valid]);
                    if e.error_len().is_none() && !eof {
                        carry = data.len() - valid;
                        buf.copy_within(valid..valid + carry, 0);
                    } else {
                        first_invalid_line = Some(line);
                    }
                }
            }
        }
        if eof || first_invalid_line.is_some() && cp1252_undefined {
            break;
        }
    }
    Ok(Scan {
        first_invalid_line,
        cp1252_undefined,
        delimiter: sniffer.delimiter(),
        has_cr,
        has_lf,
    })
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Counts candidate delimiters outside quotes in the first line with a name in it.
#[derive(Default)]
struct Sniffer {
    in_quotes: bool,
    /// Whether the current line has anything but delimiters and spaces.
    content: bool,
    done: bool,
    counts: [u64; 3],
}

impl Sniffer {
    const CANDIDATES: [u8; 3] = [b',', b';', b'\t'];

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.done {
                return;
            }
            match b {
                b'"' => {
                    self.in_quotes = !self.in_quotes;
                    self.content = true;
                }
                _ if self.in_quotes => {}
                b'\r' | b'\n' if self.content => self.done = true,
                // A blank line, or one like `,,,`: the header comes later.
                b'\r' | b'\n' => self.counts = [0; 3],
                _ => match Self::CANDIDATES.iter().position(|&c| c == b) {
                    Some(i) => self.counts[i] += 1,
                    None => self.content |= !b.is_ascii_whitespace(),
                },
            }
        }
    }

    /// The most frequent candidate; `,` on a tie or when there is none.
    fn delimiter(&self) -> u8 {
        let mut best = 0;
        for i in 1..Self::CANDIDATES.len() {
            if self.counts[i] > self.counts[best] {
                best = i;
            }
        }
        Self::CANDIDATES[best]
    }
}

/// Reads until `buf` is full or the input ends; returns the number of bytes read.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The byte stream the CSV reader parses: UTF-8, or Windows-1252 decoded; lone CRs
/// (old Mac files) turned into LFs. It remembers how far it got, for line numbers.
struct Source {
    decoder: Decoder,
    cr_to_lf: bool,
    /// Bytes handed out so far.
    total: u64,
    /// The last byte handed out.
    last: u8,
    /// Whether the input has ended.
    eof: bool,
}

enum Decoder {
    Utf8(BufReader<File>),
    Cp1252(Cp1252Reader<BufReader<File>>),
}

impl Read for Source {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.decoder {
            Decoder::Utf8(inner) => inner.read(out)?,
            Decoder::Cp1252(inner) => inner.read(out)?,
        };
        if n == 0 && !out.is_empty() {
            self.eof = true;
        }
        let read = &mut out[..n];
        if self.cr_to_lf {
            read.iter_mut()
                .filter(|b| **b == b'\r')
                .for_each(|b| *b = b'\n');
        }
        if let Some(&last) = read.last() {
            self.last = last;
        }
        self.total += n as u64;
        Ok(n)
    }
}

/// A `Read` adapter that decodes Windows-1252 bytes into UTF-8, streaming.
struct Cp1252Reader<R> {
    inner: R,
    raw: Vec<u8>,
    /// Encoded bytes of a character that did not fit in the caller's buffer.
    pending: [u8; 4],
    pending_start: usize,
    pending_end: usize,
}

impl<R: Read> Cp1252Reader<R> {
    fn new(inner: R) -> Self {
        Cp1252Reader {
            inner,
            raw: vec![0; 8 * 1024],
            pending: [0; 4],
            pending_start: 0,
            pending_end: 0,
        }
    }
}

impl<R: Read> Read for Cp1252Reader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pending_start < self.pending_end {
            let pending = &self.pending[self.pending_start..self.pending_end];
            let n = pending.len().min(out.len());
            out[..n].copy_from_slice(&pending[..n]);
            self.pending_start += n;
            return Ok(n);
        }
        // Each byte becomes at most 3 UTF-8 bytes, so this many always fit.
        let want = (out.len() / 3).clamp(1, self.raw.len());
        let n = self.inner.read(&mut self.raw[..want])?;
        let mut written = 0;
        for &b in &self.raw[..n] {
            let mut encoded = [0u8; 4];
            let encoded = cp1252_char(b).encode_utf8(&mut encoded).as_bytes();
            let fits = encoded.len().min(out.len() - written);
            out[written..written + fits].copy_from_slice(&encoded[..fits]);
            written += fits;
            if fits < encoded.len() {
                // Only when `out` is shorter than 3 bytes, so this is the last byte.
                let rest = &encoded[fits..];
                self.pending[..rest.len()].copy_from_slice(rest);
                self.pending_start = 0;
                self.pending_end = rest.len();
            }
        }
        Ok(written)
    }
}

/// The character of a Windows-1252 byte; U+FFFD for the five undefined bytes.
fn cp1252_char(b: u8) -> char {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{FFFD}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{FFFD}',
        '\u{017D}', '\u{FFFD}', '\u{FFFD}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}',
        '\u{2022}', '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}',
        '\u{0153}', '\u{FFFD}', '\u{017E}', '\u{0178}',
    ];
    match b {
        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    fn read_all(bytes: &[u8]) -> (SubscriberReader, Vec<Result<Subscriber, RowProblem>>) {
        let f = file(bytes);
        let reader = SubscriberReader::open(f.path()).unwrap();
        let columns = reader.columns().clone();
        let warnings = reader.warnings().to_vec();
        let rows: Vec<_> = reader.collect();
        // Reopen for the metadata (the first reader was consumed).
        let reader = SubscriberReader::open(f.path()).unwrap();
        assert_eq!(reader.columns(), &columns);
        assert_eq!(reader.warnings(), warnings.as_slice());
        (reader, rows)
    }

    fn ok(rows: &[Result<Subscriber, RowProblem>]) -> Vec<&Subscriber> {
        rows.iter().filter_map(|r| r.as_ref().ok()).collect()
    }

    fn open_error(bytes: &[u8]) -> String {
        let f = file(bytes);
        let err = SubscriberReader::open(f.path()).unwrap_err();
        format!("{err:#}")
    }

    #[test]
    fn plain_file() {
        let (reader, rows) = read_all(
            b"email,first_name,last_name,status\nann@example.org,Ann,Lee,subscribed\n\
              bob@example.org,Bob,,Unsubscribed\n",
        );
        assert_eq!(reader.delimiter(), b',');
        assert!(!reader.has_bom());
        assert!(reader.warnings().is_empty());
        let subs = ok(&rows);
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0].line, 2);
        assert_eq!(subs[0].display_name(), "Ann Lee");
        assert_eq!(subs[0].status, Status::Subscribed);
        assert_eq!(subs[1].display_name(), "Bob");
        assert_eq!(subs[1].status, Status::Unsubscribed);
        assert_eq!(subs[1].line, 3);
    }

    #[test]
    fn bom_is_stripped() {
        let (reader, rows) = read_all(b"\xEF\xBB\xBFEmail,First Name\nann@example.org,Ann\n");
        assert!(reader.has_bom());
        assert_eq!(reader.columns().names(), ["email", "first_name"]);
        assert_eq!(ok(&rows)[0].first_name, "Ann");
        assert!(reader.warnings().is_empty());
    }

    #[test]
    fn semicolon_and_tab_delimiters() {
        let (reader, rows) =
            read_all(b"\"E-mail\";\"Vorname, Name\"\nann@example.org;\"Ann, A.\"\n");
        assert_eq!(reader.delimiter(), b';');
        assert_eq!(reader.columns().names(), ["email", "vorname,_name"]);
        assert_eq!(ok(&rows)[0].extra, ["Ann, A."]);

        let (reader, rows) = read_all(b"Email Address\tLast-Name\nann@example.org\tLee\n");
        assert_eq!(reader.delimiter(), b'\t');
        assert_eq!(ok(&rows)[0].last_name, "Lee");
    }

    #[test]
    fn crlf_and_blank_lines() {
        let (_, rows) = read_all(
            b"email,first_name\r\n\r\nann@example.org,Ann\r\n,\r\n  ,  \r\nbob@example.org,Bob\r\n",
        );
        let subs = ok(&rows);
        assert_eq!(rows.len(), 2);
        assert_eq!((subs[0].line, subs[0].first_name.as_str()), (3, "Ann"));
        assert_eq!((subs[1].line, subs[1].first_name.as_str()), (6, "Bob"));
    }

    #[test]
    fn line_numbers_in_many_layouts() {
        let lines = |bytes: &[u8]| -> Vec<u64> {
            let (_, rows) = read_all(bytes);
            rows.iter()
                .map(|r| match r {
                    Ok(s) => s.line,
                    Err(p) => p.line(),
                })
                .collect()
        };
        let body =
            "email,first_name\n\na@example.org,A\n\n\nb@example.org,\"B\n\nB\"\nc@example.org,C";
        assert_eq!(lines(body.as_bytes()), [3, 6, 9]);
        assert_eq!(lines(format!("{body}\n").as_bytes()), [3, 6, 9]);
        assert_eq!(lines(format!("{body}\n\n\n").as_bytes()), [3, 6, 9]);
        let crlf = body.replace('\n', "\r\n");
        assert_eq!(lines(crlf.as_bytes()), [3, 6, 9]);
        assert_eq!(lines(format!("{crlf}\r\n").as_bytes()), [3, 6, 9]);
        // Old Mac files end lines with CR alone.
        let cr = body.replace('\n', "\r");
        assert_eq!(lines(cr.as_bytes()), [3, 6, 9]);
        assert_eq!(lines(b"\n\nemail\n\na@example.org"), [5]);
        assert_eq!(lines(b"email\nbad\nbad\n"), [2, 3]);
        // A quote left open at the end of the file.
        assert_eq!(lines(b"email,n\na@example.org,\"x\n"), [2]);
    }

    #[test]
    fn quoted_newline_keeps_physical_line_numbers() {
        let (_, rows) = read_all(
            b"email,first_name,address\nann@example.org,\"Ann\nMarie\",\"1 Main St\r\nTown\"\n\
              bob@@example.org,Bob,x\n",
        );
        let ann = rows[0].as_ref().unwrap();
        assert_eq!(ann.line, 2);
        assert_eq!(ann.first_name, "Ann Marie");
        assert_eq!(ann.extra, ["1 Main St Town"]);
        assert_eq!(rows[1].as_ref().unwrap_err().line(), 5);
    }

    #[test]
    fn windows_1252_is_decoded_with_a_warning() {
        let (reader, rows) =
            read_all(b"email;first_name;last_name\nzoe@example.org;Zo\xeb;\x93Smith\x94 \x80\n");
        assert_eq!(reader.delimiter(), b';');
        assert_eq!(reader.warnings().len(), 1);
        assert!(reader.warnings()[0].contains("is not UTF-8; read it as Windows-1252"));
        let zoe = ok(&rows)[0];
        assert_eq!(zoe.first_name, "Zoë");
        assert_eq!(zoe.last_name, "\u{201C}Smith\u{201D} €");
    }

    #[test]
    fn cp1252_reader_with_tiny_buffers() {
        let input: Vec<u8> = (0x20..=0xFF)
            .filter(|b| ![0x81, 0x8D, 0x8F, 0x90, 0x9D].contains(b))
            .collect();
        let expected: String = input.iter().map(|&b| cp1252_char(b)).collect();
        for size in 1..8 {
            let mut reader = Cp1252Reader::new(input.as_slice());
            let mut out = Vec::new();
            let mut buf = vec![0u8; size];
            loop {
                let n = reader.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            assert_eq!(String::from_utf8(out).unwrap(), expected, "buffer {size}");
        }
        assert_eq!(cp1252_char(0x9F), 'Ÿ');
        assert_eq!(cp1252_char(0xE9), 'é');
    }

    /// Hands out at most `chunk` bytes per read.
    struct Chunked<'a> {
        bytes: &'a [u8],
        chunk: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.chunk.min(out.len()).min(self.bytes.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn scan_in_chunks(bytes: &[u8], chunk: usize) -> Scan {
        scan(&mut Chunked { bytes, chunk }).unwrap()
    }

    #[test]
    fn utf8_split_across_buffers() {
        // A 3-byte character across the boundary of the scan buffer.
        let mut bytes = b"email,first_name\na@example.org,".to_vec();
        bytes.resize(SCAN_BUFFER - 1, b'x');
        bytes.extend_from_slice("€\n".as_bytes());
        assert_eq!(&bytes[SCAN_BUFFER - 1..SCAN_BUFFER + 2], "€".as_bytes());
        for chunk in [1, 2, 5, SCAN_BUFFER] {
            let found = scan_in_chunks(&bytes, chunk);
            assert_eq!(found.first_invalid_line, None, "chunk {chunk}");
        }
        let (reader, rows) = read_all(&bytes);
        assert!(reader.warnings().is_empty());
        assert_eq!(ok(&rows).len(), 1);

        let bad = b"email\n\xE2\x82\xAC\n\xC3\xA9\xE2\x82";
        for chunk in [1, 2, 5, SCAN_BUFFER] {
            let found = scan_in_chunks(bad, chunk);
            assert_eq!(found.first_invalid_line, Some(3), "chunk {chunk}");
            assert!(!found.cp1252_undefined);
        }
        let found = scan_in_chunks(b"a\n\xE9\n\x9D", 1);
        assert_eq!(found.first_invalid_line, Some(2));
        assert!(found.cp1252_undefined);
    }

    #[test]
    fn invalid_utf8_that_is_not_cp1252_is_an_error() {
        let message =
            open_error(b"email,first_name\nann@example.org,Ann\nbob@example.org,B\x81b\n");
        assert!(message.contains("line 3 is not valid UTF-8"), "{message}");
        assert!(message.contains("CSV UTF-8"), "{message}");

        // cp1252 text after a UTF-8 byte order mark is a mix: refuse it too.
        let message = open_error(b"\xEF\xBB\xBFemail\nzo\xeb@example.org\n");
        assert!(message.contains("line 2 is not valid UTF-8"), "{message}");
    }

    #[test]
    fn utf16_is_an_error() {
        let message = open_error(b"\xFF\xFEe\0m\0a\0i\0l\0");
        assert!(message.contains("UTF-16"), "{message}");
        assert!(message.contains("CSV UTF-8"), "{message}");
    }

    #[test]
    fn missing_email_column() {
        let message = open_error(b"Name,Mail\nAnn,ann@example.org\n");
        assert!(message.contains("has no `email` column"), "{message}");
        assert!(message.contains("`Name`, `Mail`"), "{message}");
        assert!(message.contains("Rename the column"), "{message}");

        let message = open_error(b"ann@example.org,Ann\n");
        assert!(message.contains("looks like data"), "{message}");
    }

    #[test]
    fn duplicate_column_names() {
        let message = open_error(b"Email,E-mail\na@example.org,b@example.org\n");
        assert!(
            message.contains("two `email` columns (`Email` and `E-mail`)"),
            "{message}"
        );
    }

    #[test]
    fn blank_rows_above_the_header_are_skipped() {
        let (reader, rows) = read_all(b";;;\r\n\r\n;;\r\nEmail;Name\r\n;\r\na@example.org;Ann\r\n");
        assert_eq!(reader.delimiter(), b';');
        assert_eq!(reader.columns().names(), ["email", "name"]);
        assert_eq!(ok(&rows)[0].line, 6);
        assert_eq!(ok(&rows)[0].extra, ["Ann"]);
    }

    #[test]
    fn header_only_has_no_rows() {
        let (_, rows) = read_all(b"email,first_name\n");
        assert!(rows.is_empty());
        let (_, rows) = read_all(b"email");
        assert!(rows.is_empty());
    }

    #[test]
    fn empty_file_is_an_error() {
        for bytes in [&b""[..], b"\xEF\xBB\xBF", b"\r\n\n"] {
            let message = open_error(bytes);
            assert!(
                message.contains("is empty: it needs a header line with an `email` column"),
                "{message}"
            );
        }
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = SubscriberReader::open(Path::new("/nonexistent/list.csv")).unwrap_err();
        assert!(format!("{err:#}").contains("cannot open `/nonexistent/list.csv`"));
    }

    #[test]
    fn invalid_addresses() {
        let (_, rows) = read_all(
            "email,first_name\n\
              bob.example.org,no at\n\
              bob@@example.org,two at\n\
              bob smith@example.org,space\n\
              Bob <bob@example.org>,display name\n\
              bob@example.org.,trailing dot\n\
              ,empty\n\
              bob@example,no dot\n\
              @example.org,no user\n\
              bob@,no domain\n\
              \"bob@exa\nmple.org\",line break\n\
              bob\u{a0}@example.org,nbsp\n\
              bob..x@example.org,double dot user\n\
              bob@-example.org,hyphen\n\
              <bob@example.org,lone bracket\n\
              bob@exam!ple.org,bang\n\
              bob@gmail.com',quote\n\
              \"bob\u{200B}@gmail.com\",zero width\n\
              bob@localhost,ok\n"
                .as_bytes(),
        );
        let problems: Vec<(u64, String)> = rows
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|p| (p.line(), p.to_string()))
            .collect();
        let expect = [
            (2, "invalid address `bob.example.org`: it has no `@`"),
            (
                3,
                "invalid address `bob@@example.org`: it has more than one `@`",
            ),
            (4, "`bob smith@example.org`: it contains a space"),
            (5, "keep only the address `bob@example.org`"),
            (6, "the domain `example.org.` ends with a dot"),
            (7, "invalid address ``: the `email` cell is empty"),
            (8, "the domain `example` has no dot"),
            (9, "nothing comes before the `@`"),
            (10, "nothing comes after the `@`"),
            (11, "line break"),
            (13, "space (maybe an invisible one)"),
            (14, "the part before the `@` (`bob..x`) is not valid"),
            (15, "the domain `-example.org` is not valid"),
            (16, "it contains `<` or `>`"),
            (
                17,
                "the domain `exam!ple.org` contains `!`, which no domain name has",
            ),
            (18, "contains `'`"),
            (19, "invisible character"),
        ];
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
        for ((line, text), (want_line, want)) in problems.iter().zip(expect) {
            assert_eq!(*line, want_line, "{text}");
            assert!(text.starts_with(&format!("line {want_line}: ")), "{text}");
            assert!(text.contains(want), "{text} should contain {want}");
        }
        assert_eq!(
            problems[9].1,
            "line 11: invalid address `bob@exa\\nmple.org`: it contains a line break or another invisible character; retype it"
        );
        let subs = ok(&rows);
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].email, "bob@localhost");
        assert_eq!(subs[0].line, 20);
    }

    #[test]
    fn addresses_are_trimmed_and_keyed() {
        let (_, rows) = read_all(b"email\n  Ann.Lee@Example.ORG  \n");
        let ann = ok(&rows)[0];
        assert_eq!(ann.email, "Ann.Lee@Example.ORG");
        assert_eq!(ann.key, "ann.lee@example.org");
    }

    #[test]
    fn idn_domain_is_valid() {
        let (_, rows) = read_all("email\nuser@bücher.example\nÜser@BÜCHER.example\n".as_bytes());
        let subs = ok(&rows);
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0].email, "user@bücher.example");
        assert_eq!(subs[1].key, "üser@bücher.example");
    }

    #[test]
    fn duplicates() {
        let (_, rows) = read_all(
            b"email\nann@example.org\nann+news@example.org\nANN@Example.org\nann+news@example.org\n",
        );
        let mut filter = DuplicateFilter::new();
        let found: Vec<Option<u64>> = ok(&rows).iter().map(|s| filter.check(s)).collect();
        assert_eq!(found, [None, None, Some(2), Some(3)]);
    }

    #[test]
    fn a_row_with_more_or_fewer_fields_than_the_header_is_malformed() {
        let (_, rows) = read_all(
            b"email,first_name,last_name,status\na@example.org,Ann,Lee,,unsubscribed\nb@example.org,Bob\nc@example.org,Cy,Roe,\n",
        );
        let lines: Vec<String> = rows
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|p| p.to_string())
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0]
                .starts_with("line 2: cannot read this row: it has 5 fields but the header has 4"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with("line 3: cannot read this row: it has 2 fields"),
            "{}",
            lines[1]
        );
        assert_eq!(ok(&rows).len(), 1);
    }

    #[test]
    fn an_opt_out_column_keeps_a_row_from_being_mailed() {
        let (reader, rows) = read_all(
            b"email,Unsubscribed,Email Opt Out\na@example.org,yes,\nb@example.org,no,false\nc@example.org,,TRUE\nd@example.org,maybe,\n",
        );
        assert_eq!(
            reader.columns().opt_outs().collect::<Vec<_>>(),
            ["Unsubscribed", "Email Opt Out"]
        );
        let subs = ok(&rows);
        let statuses: Vec<(&str, Status, Option<usize>)> = subs
            .iter()
            .map(|s| (s.email.as_str(), s.status, s.opted_out_by))
            .collect();
        assert_eq!(
            statuses,
            [
                ("a@example.org", Status::Unsubscribed, Some(0)),
                ("b@example.org", Status::Subscribed, None),
                ("c@example.org", Status::Unsubscribed, Some(1)),
            ]
        );
        let problem = rows
            .iter()
            .find_map(|r| r.as_ref().err())
            .unwrap()
            .to_string();
        assert!(
            problem.starts_with("line 5: `Unsubscribed` is `maybe`, which says neither yes nor no"),
            "{problem}"
        );
    }

    #[test]
    fn a_consent_column_says_no_means_not_mailed() {
        let (_, rows) = read_all(b"email,consent\na@example.org,no\nb@example.org,yes\n");
        let subs = ok(&rows);
        assert_eq!(subs[0].status, Status::Unsubscribed);
        assert_eq!(subs[1].status, Status::Subscribed);
    }

    #[test]
    fn names_lose_control_characters() {
        let (_, rows) = read_all(
            "email,first_name,last_name,note\n\
             ann@example.org,\"Ann\r\nBcc: evil@example.org\",\"\tLee\u{0085}\u{2028}X \u{0007}\",\"a\u{202E}b\u{2029}c\"\n"
                .as_bytes(),
        );
        let ann = ok(&rows)[0];
        assert_eq!(ann.first_name, "Ann Bcc: evil@example.org");
        assert_eq!(ann.last_name, "Lee X");
        // Cc and U+2028/2029 become spaces; bidi overrides go.
        assert_eq!(ann.extra, ["ab c"]);
    }

    #[test]
    fn long_values_are_truncated() {
        assert_eq!(
            clean_value(&"é".repeat(300), MAX_NAME_CHARS)
                .chars()
                .count(),
            256
        );
        assert_eq!(clean_value(&"x".repeat(2000), MAX_EXTRA_CHARS).len(), 1024);
        assert_eq!(clean_value("  \n a b \u{1} ", 10), "a b");
    }

    #[test]
    fn unknown_status() {
        let (_, rows) = read_all(
            b"email,status\na@example.org,Active\nb@example.org, BOUNCED \nc@example.org,\nd@example.org,complained\ne@example.org,unsubscribed\n",
        );
        let p = rows[0].as_ref().unwrap_err();
        assert_eq!(
            p,
            &RowProblem::UnknownStatus {
                line: 2,
                value: "Active".into()
            }
        );
        assert!(
            p.to_string()
                .starts_with("line 2: unknown status `Active`: use")
        );
        let statuses: Vec<Status> = ok(&rows).iter().map(|s| s.status).collect();
        assert_eq!(
            statuses,
            [
                Status::Bounced,
                Status::Subscribed,
                Status::Complained,
                Status::Unsubscribed
            ]
        );
    }

    #[test]
    fn missing_status_column_means_subscribed() {
        let (reader, rows) = read_all(b"email\na@example.org\n");
        assert!(!reader.columns().has("status"));
        assert_eq!(ok(&rows)[0].status, Status::Subscribed);
    }

    #[test]
    fn extra_columns_and_field() {
        let (reader, rows) = read_all(
            b"Email,First Name,Member Since,City\na@example.org,Ann,2020,\nb@example.org,Bob,2021,Oslo\n",
        );
        let columns = reader.columns();
        assert_eq!(
            columns.names(),
            ["email", "first_name", "member_since", "city"]
        );
        assert_eq!(columns.extra(), ["member_since", "city"]);
        assert_eq!(reader.extra_columns(), columns.extra());
        assert!(columns.has("member_since") && columns.has("Member Since"));
        assert!(!columns.has("last_name"));
        let subs = ok(&rows);
        assert_eq!(subs[0].field(columns, "member_since"), Some("2020"));
        assert_eq!(subs[0].field(columns, "city"), Some(""));
        assert_eq!(subs[1].field(columns, "City"), Some("Oslo"));
        assert_eq!(subs[1].field(columns, "email"), Some("b@example.org"));
        assert_eq!(subs[1].field(columns, "first_name"), Some("Bob"));
        assert_eq!(subs[1].field(columns, "last_name"), Some(""));
        assert_eq!(subs[1].field(columns, "status"), Some("subscribed"));
        assert_eq!(subs[1].field(columns, "nope"), None);
    }

    #[test]
    fn huge_field_does_not_panic() {
        let mut bytes = b"email,first_name,note\n".to_vec();
        let big = "é".repeat(512 * 1024); // 1 MiB
        bytes.extend_from_slice(format!("a@example.org,{big},{big}\n").as_bytes());
        bytes.extend_from_slice(format!("{big}@example.org,x\n").as_bytes());
        bytes.extend_from_slice(format!("\"{big}\n{big}\",x\n").as_bytes());
        let (_, rows) = read_all(&bytes);
        let a = rows[0].as_ref().unwrap();
        assert_eq!(a.first_name.chars().count(), MAX_NAME_CHARS);
        assert_eq!(a.extra[0].chars().count(), MAX_EXTRA_CHARS);
        let p = rows[1].as_ref().unwrap_err();
        assert_eq!(p.line(), 3);
        assert!(p.to_string().chars().count() < 400);
        assert_eq!(rows[2].as_ref().unwrap_err().line(), 4);
    }

    #[test]
    fn stray_quote_is_reported() {
        let mut bytes = b"email,first_name\na@example.org,\"Ann\n".to_vec();
        for i in 0..200 {
            bytes.extend_from_slice(format!("u{i}@example.org,x\n").as_bytes());
        }
        let (_, rows) = read_all(&bytes);
        assert_eq!(rows.len(), 1);
        let p = rows[0].as_ref().unwrap_err();
        assert!(matches!(p, RowProblem::Malformed { line: 2, .. }), "{p:?}");
        assert!(p.to_string().contains("check the quotes"), "{p}");
    }

    #[test]
    fn survey_counts() {
        let f = file(
            b"email,status\n\
              a@example.org,\n\
              A@example.org,subscribed\n\
              b@example.org,unsubscribed\n\
              b@example.org,unsubscribed\n\
              c@example.org,bounced\n\
              d@example.org,complained\n\
              nope,\n\
              e@example.org,weird\n\
              f+x@example.org,subscribed\n\
              \"broken\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n",
        );
        let s = survey(f.path()).unwrap();
        assert_eq!(s.rows, 10);
        assert_eq!(
            (s.subscribed, s.unsubscribed, s.bounced, s.complained),
            (2, 2, 1, 1)
        );
        assert_eq!(
            (
                s.duplicates,
                s.invalid,
                s.unknown_status,
                s.malformed,
                s.conflicts
            ),
            (1, 1, 1, 1, 0)
        );
        let lines: Vec<u64> = s.problems.iter().map(RowProblem::line).collect();
        assert_eq!(lines, [3, 8, 9, 11]);
        assert_eq!(
            s.problems[0].to_string(),
            "line 3: `A@example.org` is already on line 2; this row is skipped"
        );
        assert_eq!(s.columns.names(), ["email", "status"]);
    }

    #[test]
    fn survey_finds_status_conflicts() {
        let f = file(
            b"email,status\n\
              a@example.org,unsubscribed\n\
              A@example.org,subscribed\n\
              b@example.org,subscribed\n\
              B@Example.org,bounced\n\
              c@example.org,complained\n\
              c@example.org,unsubscribed\n",
        );
        let s = survey(f.path()).unwrap();
        assert_eq!(
            (s.rows, s.subscribed, s.conflicts, s.duplicates),
            (6, 2, 2, 0)
        );
        let shown: Vec<String> = s.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "line 3: `A@example.org` is subscribed on line 3 but unsubscribed on line 2, \
                 so it would still be mailed; delete the subscribed row or set its status to \
                 `unsubscribed`",
                "line 5: `B@Example.org` is subscribed on line 4 but bounced on line 5, \
                 so it would still be mailed; delete the subscribed row or set its status to \
                 `bounced`",
            ]
        );
    }

    #[test]
    fn helpers_for_test_sends() {
        let columns = Columns::minimal();
        assert_eq!(columns.names(), ["email"]);
        let s = Subscriber::test(" Staff@Example.org ", 1);
        assert_eq!(
            (s.email.as_str(), s.key.as_str()),
            ("Staff@Example.org", "staff@example.org")
        );
        assert_eq!(s.field(&columns, "first_name"), Some(""));
        assert_eq!(s.field(&columns, "city"), None);
        assert_eq!(s.display_name(), "");
    }

    #[test]
    fn survey_caps_problems() {
        let mut bytes = b"email\n".to_vec();
        for _ in 0..1500 {
            bytes.extend_from_slice(b"bad\n");
        }
        let f = file(&bytes);
        let s = survey(f.path()).unwrap();
        assert_eq!(s.invalid, 1500);
        assert_eq!(s.problems.len(), MAX_PROBLEMS);
        assert_eq!(s.problems[999].line(), 1001);
    }

    /// The single pass with in-memory sets that `survey` replaced: the reference for
    /// the counts and the problems.
    fn survey_in_memory(path: &Path) -> Survey {
        let reader = SubscriberReader::open(path).unwrap();
        let mut survey = survey_in_chunks(path, 1 << 20).unwrap();
        survey.problems.clear();
        let counts = (survey.rows, survey.unsubscribed, survey.bounced);
        (survey.subscribed, survey.duplicates, survey.conflicts) = (0, 0, 0);
        (survey.invalid, survey.unknown_status, survey.malformed) = (0, 0, 0);
        (
            survey.rows,
            survey.unsubscribed,
            survey.bounced,
            survey.complained,
        ) = (0, 0, 0, 0);
        let mut mailed = DuplicateFilter::new();
        let mut not_mailed: HashMap<String, (u64, Status)> = HashMap::new();
        for item in reader {
            survey.rows += 1;
            let s = match item {
                Ok(s) => s,
                Err(problem) => {
                    survey.problem(problem);
                    continue;
                }
            };
            let conflict = |subscribed_line, status, status_line| RowProblem::StatusConflict {
                line: s.line,
                email: shorten(&s.email),
                subscribed_line,
                status,
                status_line,
            };
            if s.status == Status::Subscribed {
                if let Some(first_line) = mailed.check(&s) {
                    survey.problem(RowProblem::Duplicate {
                        line: s.line,
                        email: shorten(&s.email),
                        first_line,
                    });
                    continue;
                }
                *survey.bucket(Status::Subscribed) += 1;
                if let Some(&(status_line, status)) = not_mailed.get(&s.key) {
                    survey.problem(conflict(s.line, status, status_line));
                }
            } else {
                *survey.bucket(s.status) += 1;
                not_mailed
                    .entry(s.key.clone())
                    .or_insert((s.line, s.status));
                if let Some(&first) = mailed.seen.get(&KeyHash::of(&s.key)) {
                    survey.problem(conflict(first, s.status, s.line));
                }
            }
        }
        assert_eq!(counts, (survey.rows, survey.unsubscribed, survey.bounced));
        survey
    }

    fn assert_same(a: &Survey, b: &Survey, what: &str) {
        let counts = |s: &Survey| {
            [
                s.rows,
                s.subscribed,
                s.unsubscribed,
                s.bounced,
                s.complained,
                s.duplicates,
                s.invalid,
                s.unknown_status,
                s.malformed,
                s.conflicts,
            ]
        };
        assert_eq!(counts(a), counts(b), "{what}");
        assert_eq!(a.problems, b.problems, "{what}");
    }

    /// A list with repeats far apart, case variants, all statuses and bad rows.
    fn messy_list(rows: u64, distinct: u64) -> Vec<u8> {
        let mut bytes = b"email,status\n".to_vec();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..rows {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = state % distinct;
            let email = match state >> 60 {
                0 => format!("User{n}@Example.ORG"),
                1 => format!("bad{n}"),
                _ => format!("user{n}@example.org"),
            };
            let status = match (state >> 56) & 15 {
                0 => "unsubscribed",
                1 => "bounced",
                2 => "complained",
                3 => "weird",
                _ => "",
            };
            bytes.extend_from_slice(format!("{email},{status}\n").as_bytes());
        }
        bytes
    }

    #[test]
    fn survey_matches_a_single_pass_whatever_the_chunk() {
        for (rows, distinct) in [(50, 10), (3000, 700), (3000, 2900)] {
            let f = file(&messy_list(rows, distinct));
            let reference = survey_in_memory(f.path());
            assert!(reference.duplicates > 0 && reference.conflicts > 0);
            for chunk in [1, 2, 7, 64, 1000, SURVEY_CHUNK] {
                let s = survey_in_chunks(f.path(), chunk).unwrap();
                assert_same(&s, &reference, &format!("{rows} rows, chunk {chunk}"));
                assert_eq!(s.duplicates_index.count(), s.duplicates);
            }
        }
    }

    #[test]
    fn duplicates_across_spill_boundaries() {
        // With 2 rows a chunk, every pair of rows below lands in a different run.
        let f = file(
            b"email,status\n\
              a@example.org,\n\
              b@example.org,\n\
              c@example.org,\n\
              d@example.org,\n\
              e@example.org,\n\
              B@EXAMPLE.ORG,\n\
              a@example.org,\n\
              x@example.org,\n\
              A@example.org,subscribed\n\
              e@example.org,\n",
        );
        let s = survey_in_chunks(f.path(), 2).unwrap();
        assert_eq!((s.rows, s.subscribed, s.duplicates), (10, 6, 4));
        let found: Vec<(u64, String, u64)> = s
            .problems
            .iter()
            .map(|p| match p {
                RowProblem::Duplicate {
                    line,
                    email,
                    first_line,
                } => (*line, email.clone(), *first_line),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            found,
            [
                (7, "B@EXAMPLE.ORG".into(), 3),
                (8, "a@example.org".into(), 2),
                (10, "A@example.org".into(), 2),
                (11, "e@example.org".into(), 6),
            ]
        );

        // The index answers for the same rows when the file is streamed again.
        let reader = SubscriberReader::open(f.path()).unwrap();
        let earlier: Vec<Option<u64>> = reader
            .flatten()
            .map(|row| s.duplicates_index.earlier(&row))
            .collect();
        assert_eq!(
            earlier,
            [
                None,
                None,
                None,
                None,
                None,
                Some(3),
                Some(2),
                None,
                Some(2),
                Some(6)
            ]
        );
        assert_eq!(s.duplicates_index.count(), 4);
        // A row at a duplicate's line but with another address is not skipped.
        assert_eq!(
            s.duplicates_index
                .earlier(&Subscriber::test("zed@example.org", 7)),
            None
        );
        assert_eq!(
            s.duplicates_index
                .earlier(&Subscriber::test("b@example.org", 7)),
            Some(3)
        );
    }

    #[test]
    fn index_agrees_with_the_filter() {
        let f = file(&messy_list(5000, 1500));
        let s = survey_in_chunks(f.path(), 100).unwrap();
        let mut filter = DuplicateFilter::new();
        let mut skipped = 0;
        for row in SubscriberReader::open(f.path()).unwrap().flatten() {
            let by_index = s.duplicates_index.earlier(&row);
            if row.status == Status::Subscribed {
                assert_eq!(by_index, filter.check(&row), "line {}", row.line);
                skipped += u64::from(by_index.is_some());
            } else {
                assert_eq!(by_index, None, "line {}", row.line);
            }
        }
        assert_eq!(skipped, s.duplicates);
    }

    #[test]
    fn conflicts_across_spill_boundaries() {
        let f = file(
            b"email,status\n\
              a@example.org,unsubscribed\n\
              pad1@example.org,\n\
              pad2@example.org,\n\
              A@example.org,subscribed\n\
              a@example.org,\n\
              b@example.org,\n\
              pad3@example.org,\n\
              b@example.org,complained\n\
              pad4@example.org,\n\
              B@example.org,bounced\n\
              c@example.org,bounced\n\
              c@example.org,unsubscribed\n",
        );
        let s = survey_in_chunks(f.path(), 3).unwrap();
        assert_eq!(
            (s.rows, s.subscribed, s.duplicates, s.conflicts),
            (12, 6, 1, 3)
        );
        assert_eq!((s.unsubscribed, s.bounced, s.complained), (2, 2, 1));
        let shown: Vec<String> = s.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "line 5: `A@example.org` is subscribed on line 5 but unsubscribed on line 2, \
                 so it would still be mailed; delete the subscribed row or set its status to \
                 `unsubscribed`",
                "line 6: `a@example.org` is already on line 5; this row is skipped",
                "line 9: `b@example.org` is subscribed on line 7 but complained on line 9, \
                 so it would still be mailed; delete the subscribed row or set its status to \
                 `complained`",
                "line 11: `B@example.org` is subscribed on line 7 but bounced on line 11, \
                 so it would still be mailed; delete the subscribed row or set its status to \
                 `bounced`",
            ]
        );
        assert_same(&s, &survey_in_memory(f.path()), "conflicts");
    }

    #[test]
    fn no_false_duplicates() {
        let mut bytes = b"email,status\n".to_vec();
        for i in 0..20_000 {
            let status = if i % 3 == 0 { "unsubscribed" } else { "" };
            bytes.extend_from_slice(format!("user{i}@example.org,{status}\n").as_bytes());
        }
        let f = file(&bytes);
        let s = survey_in_chunks(f.path(), 1000).unwrap();
        assert_eq!((s.rows, s.duplicates, s.conflicts), (20_000, 0, 0));
        assert_eq!((s.subscribed, s.unsubscribed), (13_333, 6_667));
        assert!(s.problems.is_empty());
        assert_eq!(s.duplicates_index.count(), 0);
    }

    #[test]
    fn problem_cap_counts_sorted_and_read_rows_by_line() {
        // Invalid rows and duplicates alternate; the first 1000 problems are kept.
        let long = format!("{}@{}.example.org", "u".repeat(60), "d".repeat(60));
        let mut bytes = format!("email\n{long}\n").into_bytes();
        for i in 0..1500 {
            bytes.extend_from_slice(b"bad\n");
            let email = if i % 2 == 0 {
                long.to_uppercase()
            } else {
                long.clone()
            };
            bytes.extend_from_slice(format!("{email}\n").as_bytes());
        }
        let f = file(&bytes);
        let s = survey_in_chunks(f.path(), 16).unwrap();
        assert_eq!((s.invalid, s.duplicates, s.subscribed), (1500, 1500, 1));
        assert_eq!(s.problems.len(), MAX_PROBLEMS);
        let lines: Vec<u64> = s.problems.iter().map(RowProblem::line).collect();
        assert_eq!(lines, (3..3 + MAX_PROBLEMS as u64).collect::<Vec<_>>());
        assert!(
            s.problems[1].to_string().starts_with(&format!(
                "line 4: `{}…` is already on line 2",
                &long.to_uppercase()[..100]
            )),
            "{}",
            s.problems[1]
        );
        assert_same(&s, &survey_in_memory(f.path()), "cap");

        // Only duplicates: all 1000 come from the sort.
        let mut bytes = b"email\n".to_vec();
        for _ in 0..1200 {
            bytes.extend_from_slice(b"ann@example.org\n");
        }
        let f = file(&bytes);
        let s = survey_in_chunks(f.path(), 16).unwrap();
        assert_eq!((s.duplicates, s.problems.len()), (1199, MAX_PROBLEMS));
        assert_eq!(s.problems[999].line(), 1002);
        assert_same(&s, &survey_in_memory(f.path()), "only duplicates");
    }

    #[test]
    fn sniffer() {
        let sniff = |s: &[u8]| {
            let mut sniffer = Sniffer::default();
            sniffer.feed(s);
            sniffer.delimiter()
        };
        assert_eq!(sniff(b"email"), b',');
        assert_eq!(sniff(b"\r\n\"a;b\",c\nx;y;z"), b',');
        assert_eq!(sniff(b"a;b,c;d"), b';');
        assert_eq!(sniff(b"a\tb;c\td"), b'\t');
        assert_eq!(sniff(b"a;b,c"), b',');
        assert_eq!(sniff(b",,,\r\n ; ;\n\"x\";y;z,"), b';');
    }

    /// A million rows, in release mode: `cargo test --release -- --ignored million`.
    #[test]
    #[ignore]
    fn million_rows() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        {
            let mut w = io::BufWriter::new(f.as_file_mut());
            writeln!(w, "email,first_name,last_name,status,city").unwrap();
            for i in 0..1_000_000 {
                writeln!(w, "user{i}@example.org,First{i},Last{i},subscribed,Town").unwrap();
            }
        }
        let s = survey(f.path()).unwrap();
        assert_eq!((s.rows, s.subscribed), (1_000_000, 1_000_000));
    }
}
