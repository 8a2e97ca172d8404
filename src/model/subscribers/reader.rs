//! The streaming reader: one checked [`Subscriber`] or [`RowProblem`] per record.

use std::fmt;
use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::address::{check_address, clean_value, shorten};
use super::columns::Columns;
use super::decode::{self, Source};
use super::{
    MAX_EXTRA_CHARS, MAX_LINE_BREAKS, MAX_NAME_CHARS, Subscriber, SubscriptionStatus, open_list,
};
use crate::model::consent;

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
        status: SubscriptionStatus,
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
    pub fn open_file(path: &Path, file: File) -> Result<SubscriberReader> {
        let shown = path.display();
        let decode::Opened {
            source,
            delimiter,
            has_bom,
            warnings,
        } = decode::open(path, file)?;
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
        let Some(mut status) = SubscriptionStatus::parse(status_cell) else {
            return Err(RowProblem::UnknownStatus {
                line,
                value: shorten(status_cell.trim()),
            });
        };
        let mut opted_out_by = None;
        for (i, (index, name, meaning)) in columns.opt_outs.iter().enumerate() {
            let value = cell(Some(*index));
            match consent::opts_out(*meaning, value) {
                Ok(true) if status == SubscriptionStatus::Subscribed && opted_out_by.is_none() => {
                    status = SubscriptionStatus::Unsubscribed;
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
