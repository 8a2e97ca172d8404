//! Which column holds what: the header matched against the names exports use.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Result, bail};

use super::address::shorten;
use crate::model::consent;

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
    pub(super) names: Vec<String>,
    pub(super) extra: Vec<String>,
    pub(super) email: usize,
    pub(super) first_name: Option<usize>,
    pub(super) last_name: Option<usize>,
    pub(super) status: Option<usize>,
    /// Field index in the record of each extra column.
    pub(super) extra_index: Vec<usize>,
    /// Opt-out and consent columns: field index, name as written, meaning.
    pub(super) opt_outs: Vec<(usize, String, consent::Meaning)>,
    /// Fields in the header line; every row must have as many.
    pub(super) width: usize,
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
    pub(super) fn from_header(path: &Path, header: &csv::StringRecord) -> Result<Columns> {
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
pub(super) fn no_email_message(path: &Path, header: &csv::StringRecord) -> String {
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
pub(super) fn normalise_column(raw: &str) -> String {
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
