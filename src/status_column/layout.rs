//! The subscriber CSV at the byte level: records split as the `csv` crate
//! splits them, with each field's byte range, so one cell can be replaced
//! and every other byte copied.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

use anyhow::{Result, bail};

use crate::model::subscribers::{SubscriberReader, SubscriptionStatus};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The byte-level shape of the file.
pub(super) struct Layout {
    /// Length of the BOM (0 or 3).
    pub(super) bom: usize,
    delimiter: u8,
    /// `\n`, or `\r` for a file with no `\n` at all (as `send` reads it).
    terminator: u8,
    /// The most fields in any non-blank record.
    widest: usize,
    /// The header record's fields.
    header: Vec<String>,
}

/// Where the columns this module needs are, by field index.
pub(super) struct Columns {
    email: usize,
    pub(super) status: Option<usize>,
    /// Where a missing status column goes.
    new_status: usize,
}

/// One data row, as the callbacks see it.
pub(super) struct Row {
    /// The address, trimmed and lowercased; None when the row has none.
    pub(super) key: Option<String>,
    /// The status cell; None for a value `send` does not know.
    pub(super) status: Option<SubscriptionStatus>,
}

impl Layout {
    pub(super) fn scan(file: &mut File, reader: &SubscriberReader) -> io::Result<Layout> {
        let bom = if reader.has_bom() { UTF8_BOM.len() } else { 0 };
        let has_lf = {
            let mut buffered = BufReader::new(&mut *file);
            loop {
                let buf = buffered.fill_buf()?;
                if buf.is_empty() {
                    break false;
                }
                if buf.contains(&b'\n') {
                    break true;
                }
                let n = buf.len();
                buffered.consume(n);
            }
        };
        let mut layout = Layout {
            bom,
            delimiter: reader.delimiter(),
            terminator: if has_lf { b'\n' } else { b'\r' },
            widest: 0,
            header: Vec::new(),
        };
        let mut records = layout.records(file)?;
        let mut record = Record::default();
        let mut in_header = true;
        while records.next(&mut record)? {
            if record.is_blank() {
                continue;
            }
            if in_header {
                layout.header = (0..record.fields.len()).map(|i| record.value(i)).collect();
                in_header = false;
            }
            layout.widest = layout.widest.max(record.fields.len());
        }
        Ok(layout)
    }

    /// Finds the email and status columns as `send` names them.
    pub(super) fn columns(&self, path: &Path, reader: &SubscriberReader) -> Result<Columns> {
        // `send` skips header cells whose name is empty once normalised.
        let named: Vec<usize> = (0..self.header.len())
            .filter(|&i| {
                self.header[i]
                    .chars()
                    .any(|c| !(c.is_whitespace() || c == '-' || c == '_'))
            })
            .collect();
        let names = reader.columns().names();
        if named.len() != names.len() {
            bail!(
                "cannot match the header of `{}` to its columns; save it as CSV UTF-8 and try again",
                path.display()
            );
        }
        let index = |name: &str| {
            names
                .iter()
                .position(|n| n == name)
                .map(|position| named[position])
        };
        let Some(email) = index("email") else {
            bail!("`{}` has no `email` column", path.display());
        };
        Ok(Columns {
            email,
            status: index("status"),
            new_status: self.widest,
        })
    }

    fn records<'f>(&self, file: &'f mut File) -> io::Result<Records<BufReader<&'f mut File>>> {
        file.seek(SeekFrom::Start(self.bom as u64))?;
        Ok(Records {
            reader: BufReader::with_capacity(64 * 1024, file),
            delimiter: self.delimiter,
            terminator: self.terminator,
        })
    }

    /// Calls `f` for every data row.
    pub(super) fn each_row(
        &self,
        file: &mut File,
        columns: &Columns,
        f: impl FnMut(Row) -> io::Result<Option<&'static str>>,
    ) -> io::Result<()> {
        self.each_row_raw(file, columns, &mut io::sink(), f)
    }

    /// Copies every record to `out`; a data row for which `f` returns a value
    /// gets it as its status cell.
    pub(super) fn each_row_raw(
        &self,
        file: &mut File,
        columns: &Columns,
        out: &mut dyn Write,
        mut f: impl FnMut(Row) -> io::Result<Option<&'static str>>,
    ) -> io::Result<()> {
        let mut records = self.records(file)?;
        let mut record = Record::default();
        let mut seen_header = false;
        while records.next(&mut record)? {
            if record.is_blank() {
                out.write_all(&record.bytes)?;
                continue;
            }
            if !seen_header {
                seen_header = true;
                match columns.status {
                    Some(_) => out.write_all(&record.bytes)?,
                    None => record.write_with(out, columns.new_status, "status", self.delimiter)?,
                }
                continue;
            }
            let key = record
                .fields
                .get(columns.email)
                .map(|_| record.value(columns.email).trim().to_lowercase())
                .filter(|k| !k.is_empty());
            let status = match columns.status {
                Some(i) if i < record.fields.len() => SubscriptionStatus::parse(&record.value(i)),
                _ => Some(SubscriptionStatus::Subscribed),
            };
            match f(Row { key, status })? {
                Some(value) => record.write_with(
                    out,
                    columns.status.unwrap_or(columns.new_status),
                    value,
                    self.delimiter,
                )?,
                None => out.write_all(&record.bytes)?,
            }
        }
        Ok(())
    }
}

/// One record's bytes, terminator included, and where its fields are.
#[derive(Default)]
struct Record {
    bytes: Vec<u8>,
    /// Where the content ends: before the terminator and a CR just before it.
    end: usize,
    fields: Vec<Range<usize>>,
}

impl Record {
    /// A record `send` skips: every cell empty once trimmed.
    fn is_blank(&self) -> bool {
        (0..self.fields.len()).all(|i| self.value(i).trim().is_empty())
    }

    /// A field's value, unquoted (not trimmed).
    fn value(&self, index: usize) -> String {
        let raw = &self.bytes[self.fields[index].clone()];
        let Some(rest) = raw.strip_prefix(b"\"") else {
            return String::from_utf8_lossy(raw).into_owned();
        };
        let mut out = Vec::with_capacity(raw.len());
        let mut quoted = true;
        let mut i = 0;
        while i < rest.len() {
            let b = rest[i];
            if quoted && b == b'"' {
                if rest.get(i + 1) == Some(&b'"') {
                    out.push(b'"');
                    i += 2;
                    continue;
                }
                quoted = false;
            } else {
                out.push(b);
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The part of a field a new value replaces: a quoted value with its
    /// quotes, or an unquoted one without the spaces around it.
    fn core(&self, index: usize) -> (Range<usize>, bool) {
        let range = self.fields[index].clone();
        let raw = &self.bytes[range.clone()];
        if raw.first() == Some(&b'"') {
            let mut i = 1;
            while i < raw.len() {
                if raw[i] == b'"' {
                    if raw.get(i + 1) == Some(&b'"') {
                        i += 2;
                        continue;
                    }
                    return (range.start..range.start + i + 1, true);
                }
                i += 1;
            }
            return (range, true);
        }
        let start = raw
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        let end = raw
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(start, |i| i + 1);
        (range.start + start..range.start + end, false)
    }

    /// Writes the record with `value` in field `index`, adding empty fields
    /// before it when the record is shorter.
    fn write_with(
        &self,
        out: &mut dyn Write,
        index: usize,
        value: &str,
        delimiter: u8,
    ) -> io::Result<()> {
        if index < self.fields.len() {
            let (core, quoted) = self.core(index);
            out.write_all(&self.bytes[..core.start])?;
            if quoted {
                write!(out, "\"{value}\"")?;
            } else {
                out.write_all(value.as_bytes())?;
            }
            return out.write_all(&self.bytes[core.end..]);
        }
        // A trailing CR stays with the line end.
        let end = self.fields.last().map_or(self.end, |f| f.end.min(self.end));
        out.write_all(&self.bytes[..end])?;
        for _ in self.fields.len()..index {
            out.write_all(&[delimiter])?;
        }
        out.write_all(&[delimiter])?;
        out.write_all(value.as_bytes())?;
        out.write_all(&self.bytes[end..])
    }
}

/// Splits a CSV stream into records the way the `csv` crate does (a quote
/// opens a quoted field only as its first byte; `""` inside is a quote).
struct Records<R> {
    reader: R,
    delimiter: u8,
    terminator: u8,
}

#[derive(Clone, Copy)]
enum State {
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

impl<R: BufRead> Records<R> {
    /// Reads the next record into `record`; false at the end of the stream.
    fn next(&mut self, record: &mut Record) -> io::Result<bool> {
        record.bytes.clear();
        record.fields.clear();
        let mut state = State::StartField;
        let mut field_start = 0;
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                if record.bytes.is_empty() {
                    return Ok(false);
                }
                let end = record.bytes.len();
                record.fields.push(field_start..end);
                record.end = end;
                return Ok(true);
            }
            let mut used = 0;
            let mut done = false;
            for &b in buf {
                used += 1;
                let at = record.bytes.len();
                record.bytes.push(b);
                let ends_field = |state: State| match state {
                    State::StartField | State::InField | State::QuoteInQuoted => {
                        if b == self.delimiter {
                            Some(false)
                        } else if b == self.terminator {
                            Some(true)
                        } else {
                            None
                        }
                    }
                    State::InQuoted => None,
                };
                match ends_field(state) {
                    Some(false) => {
                        record.fields.push(field_start..at);
                        field_start = at + 1;
                        state = State::StartField;
                    }
                    Some(true) => {
                        record.fields.push(field_start..at);
                        record.end = if at > 0 && record.bytes[at - 1] == b'\r' {
                            at - 1
                        } else {
                            at
                        };
                        done = true;
                        break;
                    }
                    None => {
                        state = match (state, b) {
                            (State::StartField, b'"') => State::InQuoted,
                            (State::InQuoted, b'"') => State::QuoteInQuoted,
                            (State::QuoteInQuoted, b'"') => State::InQuoted,
                            (State::InQuoted, _) => State::InQuoted,
                            _ => State::InField,
                        };
                    }
                }
            }
            self.reader.consume(used);
            if done {
                return Ok(true);
            }
        }
    }
}
