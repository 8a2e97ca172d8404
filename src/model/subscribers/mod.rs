//! Reading the subscriber list: a CSV exported from Excel, Google Sheets or a CRM.
//!
//! The file is read as a stream, so memory does not grow with its length. A first
//! pass over the raw bytes decides the encoding (UTF-8 or Windows-1252) and sniffs
//! the delimiter; the second pass parses records one at a time.

use std::fmt;
use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result, bail};

mod address;
mod columns;
mod decode;
mod dialect;
mod duplicates;
mod reader;
mod survey;
#[cfg(test)]
mod tests;

use columns::normalise_column;
pub use columns::{Columns, Field};
pub use duplicates::{DuplicateFilter, Duplicates, KeyHash};
pub use reader::{RowProblem, SubscriberReader};
pub use survey::{Joined, LineSet, Survey, survey, survey_joined};

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
pub enum SubscriptionStatus {
    Subscribed,
    Unsubscribed,
    Bounced,
    Complained,
}

impl SubscriptionStatus {
    /// The status as written in the file, lowercase.
    pub fn as_str(&self) -> &'static str {
        match self {
            SubscriptionStatus::Subscribed => "subscribed",
            SubscriptionStatus::Unsubscribed => "unsubscribed",
            SubscriptionStatus::Bounced => "bounced",
            SubscriptionStatus::Complained => "complained",
        }
    }

    /// Parses a status cell: trimmed, case-insensitive, empty means subscribed.
    pub fn parse(value: &str) -> Option<SubscriptionStatus> {
        let value = value.trim();
        if value.is_empty() {
            return Some(SubscriptionStatus::Subscribed);
        }
        [
            SubscriptionStatus::Subscribed,
            SubscriptionStatus::Unsubscribed,
            SubscriptionStatus::Bounced,
            SubscriptionStatus::Complained,
        ]
        .into_iter()
        .find(|status| value.eq_ignore_ascii_case(status.as_str()))
    }
}

impl fmt::Display for SubscriptionStatus {
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
    pub status: SubscriptionStatus,
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
            status: SubscriptionStatus::Subscribed,
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
