//! Sets the `status` of some addresses in the subscriber CSV, in place.
//!
//! Only the status cells of the matched rows change: every other byte of the
//! file (other rows and columns, the delimiter, quoting, line ends, a BOM) is
//! copied as it is. A file without a `status` column gets one at the end,
//! `subscribed` for everyone else. The new file replaces the old one
//! atomically (a synced temporary file in the same folder, renamed) after the
//! old one is copied to `FILE.bak`; when nothing changes, nothing is written.
//!
//! A status only moves up `subscribed → bounced → unsubscribed → complained`:
//! an unsubscribe request overrides a bounce, a bounce never hides an
//! unsubscribe or a complaint.
//!
//! One process changes a file at a time: [`set`] holds the lock `FILE.lock`
//! (see [`crate::lock`]) from before it reads the file until the new one is
//! in place, so a second `newsletter` process waits and then reads the first
//! one's result. Writers that do not lock (a person saving in Excel) are
//! caught by [`crate::replace_file::replace`], which refuses to rename over a file that changed
//! since it was read.

mod layout;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::lock;
use crate::model::subscribers::{SubscriberReader, SubscriptionStatus};

use crate::replace_file::replace;
use layout::Layout;

/// What [`set`] did, by address (lowercased, sorted).
#[derive(Debug)]
pub struct Outcome {
    /// The status set on the matched rows.
    pub target: SubscriptionStatus,
    /// Addresses with at least one row changed.
    pub changed: Vec<String>,
    /// Addresses found whose rows already had this status or a stronger one.
    pub already: Vec<(String, SubscriptionStatus)>,
    /// Addresses not in the file (never added).
    pub unknown: Vec<String>,
    /// Rows rewritten (an address may have several).
    pub rows: u64,
    /// The file had no `status` column and got one.
    pub added_column: bool,
    /// Where the previous version was copied, when the file was rewritten.
    pub backup: Option<PathBuf>,
}

impl Outcome {
    /// Nothing done yet.
    fn empty(target: SubscriptionStatus) -> Outcome {
        Outcome {
            target,
            changed: Vec::new(),
            already: Vec::new(),
            unknown: Vec::new(),
            rows: 0,
            added_column: false,
            backup: None,
        }
    }

    /// Prints the summary and the lists for people.
    pub fn print(&self, path: &Path) {
        let target = self.target.as_str();
        println!(
            "`{}`: changed {}, already {target} {}, unknown {}",
            path.display(),
            self.changed.len(),
            self.already.len(),
            self.unknown.len()
        );
        if !self.changed.is_empty() {
            println!("  now {target}: {}", self.changed.join(", "));
        }
        if self.rows > self.changed.len() as u64 {
            println!(
                "  {} rows changed: some addresses are on more than one row",
                self.rows
            );
        }
        if !self.already.is_empty() {
            let list: Vec<String> = self
                .already
                .iter()
                .map(|(address, status)| format!("{address} ({status})"))
                .collect();
            println!("  already: {}", list.join(", "));
        }
        if !self.unknown.is_empty() {
            println!(
                "  unknown (not in the file, not added): {}",
                self.unknown.join(", ")
            );
        }
        if self.added_column {
            println!(
                "  the file had no `status` column: added one at the end, `subscribed` for everyone else"
            );
        }
        if let Some(backup) = &self.backup {
            println!("  the previous version is in `{}`", backup.display());
        }
    }
}

/// Gives `status` to every row whose address (trimmed, any case) is in
/// `addresses`, unless the row already has it or a stronger one.
///
/// Holds the file's lock from the first read to the rename, waiting up to
/// [`lock::LOCK_PATIENCE`] for another process that holds it.
pub fn set(
    path: &Path,
    addresses: &BTreeSet<String>,
    status: SubscriptionStatus,
) -> Result<Outcome> {
    let wanted: BTreeSet<String> = addresses.iter().map(|a| a.trim().to_lowercase()).collect();
    if wanted.is_empty() {
        return Ok(Outcome::empty(status));
    }
    // A missing file is reported as such, without creating a lock file (or
    // its folder) beside it.
    fs::metadata(path).with_context(|| {
        format!(
            "cannot open `{}`: check the path and the permissions",
            path.display()
        )
    })?;
    let _lock = lock::for_change(path)?;
    mark_locked(path, &wanted, status)
}

/// [`set`] once the lock is held; `wanted` is lowercased and not empty.
fn mark_locked(
    path: &Path,
    wanted: &BTreeSet<String>,
    status: SubscriptionStatus,
) -> Result<Outcome> {
    let mut outcome = Outcome::empty(status);
    // Checks the file as `send` reads it (encoding, header, columns) and
    // gives the delimiter.
    let reader = SubscriberReader::open(path)?;
    let shown = path.display();
    let read_error = || format!("cannot read `{shown}`");
    let mut file = File::open(path).with_context(read_error)?;
    // The metadata of the file read, not of whatever the path names later.
    let before = file.metadata().with_context(read_error)?;
    let layout = Layout::scan(&mut file, &reader).with_context(read_error)?;
    let columns = layout.columns(path, &reader)?;

    // First pass: what would change.
    let mut found: BTreeMap<String, (bool, SubscriptionStatus)> = BTreeMap::new();
    layout.each_row(&mut file, &columns, |row| {
        if let Some(key) = row.key.filter(|k| wanted.contains(k)) {
            let entry = found
                .entry(key)
                .or_insert((false, SubscriptionStatus::Subscribed));
            if rank(row.status) < rank(Some(status)) {
                entry.0 = true;
            } else if let Some(current) = row.status
                && rank(Some(current)) > rank(Some(entry.1))
            {
                entry.1 = current;
            }
        }
        Ok(None)
    })?;
    for address in wanted {
        match found.get(address) {
            Some((true, _)) => outcome.changed.push(address.clone()),
            Some((false, current)) => outcome.already.push((address.clone(), *current)),
            None => outcome.unknown.push(address.clone()),
        }
    }
    if outcome.changed.is_empty() {
        return Ok(outcome);
    }

    // Second pass: copy the file, rewriting only what changes.
    outcome.added_column = columns.status.is_none();
    let mut rows = 0;
    let mut rewritten = BTreeSet::new();
    let backup = replace(path, &before, |out| {
        file.seek(SeekFrom::Start(0))?;
        let mut bom = vec![0; layout.bom];
        file.read_exact(&mut bom)?;
        out.write_all(&bom)?;
        layout.each_row_raw(&mut file, &columns, out, |row| {
            let value = match row.key {
                Some(key) if wanted.contains(&key) && rank(row.status) < rank(Some(status)) => {
                    rows += 1;
                    rewritten.insert(key);
                    status.as_str()
                }
                _ if outcome.added_column => SubscriptionStatus::Subscribed.as_str(),
                _ => return Ok(None),
            };
            Ok(Some(value))
        })?;
        // The report must say what the new file holds: if the two passes
        // disagree, the file changed under them and nothing is replaced.
        if !rewritten.iter().eq(outcome.changed.iter()) {
            return Err(std::io::Error::other(format!(
                "`{shown}` changed while it was being read; run the command again"
            )));
        }
        Ok(())
    })?;
    outcome.rows = rows;
    outcome.backup = Some(backup);
    Ok(outcome)
}

/// How strong a status is; an unknown value counts as subscribed.
fn rank(status: Option<SubscriptionStatus>) -> u8 {
    match status {
        None | Some(SubscriptionStatus::Subscribed) => 0,
        Some(SubscriptionStatus::Bounced) => 1,
        Some(SubscriptionStatus::Unsubscribed) => 2,
        Some(SubscriptionStatus::Complained) => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: &[u8], addresses: &[&str], status: SubscriptionStatus) -> (Vec<u8>, Outcome) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subscribers.csv");
        fs::write(&path, bytes).unwrap();
        let chosen: BTreeSet<String> = addresses.iter().map(|a| a.to_string()).collect();
        let outcome = set(&path, &chosen, status).unwrap();
        (fs::read(&path).unwrap(), outcome)
    }

    #[test]
    fn only_the_status_cell_changes() {
        let before = b"\xEF\xBB\xBFE-mail;Name;Status\r\n\"a@example.org\";\"Ann; \"\"A\"\"\";\"subscribed\"\r\nB@Example.org;\"multi\r\nline\";  subscribed \r\n\r\n;;\r\nc@example.org;Cy\r\n";
        let (after, outcome) = run(
            before,
            &[
                "a@example.org",
                "b@example.org",
                "C@EXAMPLE.ORG",
                "x@example.org",
            ],
            SubscriptionStatus::Unsubscribed,
        );
        assert_eq!(
            String::from_utf8_lossy(&after),
            "\u{feff}E-mail;Name;Status\r\n\"a@example.org\";\"Ann; \"\"A\"\"\";\"unsubscribed\"\r\nB@Example.org;\"multi\r\nline\";  unsubscribed \r\n\r\n;;\r\nc@example.org;Cy;unsubscribed\r\n"
        );
        assert_eq!(outcome.changed.len(), 3);
        assert_eq!(outcome.unknown, ["x@example.org"]);
        assert_eq!(outcome.rows, 3);
    }

    #[test]
    fn adds_a_status_column() {
        let (after, outcome) = run(
            b"email,name\na@example.org,Ann\nb@example.org\n",
            &["b@example.org"],
            SubscriptionStatus::Bounced,
        );
        assert_eq!(
            String::from_utf8(after).unwrap(),
            "email,name,status\na@example.org,Ann,subscribed\nb@example.org,,bounced\n"
        );
        assert!(outcome.added_column);
    }

    #[test]
    fn never_weakens_a_status_and_writes_nothing_when_nothing_changes() {
        let before = b"email,status\na@example.org,complained\nb@example.org,unsubscribed\nc@example.org,bounced";
        let (after, outcome) = run(
            before,
            &["a@example.org", "b@example.org", "c@example.org"],
            SubscriptionStatus::Bounced,
        );
        assert_eq!(after, before);
        assert!(outcome.changed.is_empty() && outcome.backup.is_none());
        assert_eq!(outcome.already.len(), 3);

        let (after, outcome) = run(before, &["c@example.org"], SubscriptionStatus::Unsubscribed);
        assert_eq!(
            String::from_utf8(after).unwrap(),
            "email,status\na@example.org,complained\nb@example.org,unsubscribed\nc@example.org,unsubscribed"
        );
        assert_eq!(outcome.changed, ["c@example.org"]);
    }

    #[test]
    fn cr_only_files_and_quotes_inside_fields() {
        let before =
            b"email,note,status\ra@example.org,say \"hi\",\rb@example.org,\"x\"y,subscribed\r";
        let (after, _) = run(
            before,
            &["a@example.org", "b@example.org"],
            SubscriptionStatus::Unsubscribed,
        );
        assert_eq!(
            String::from_utf8(after).unwrap(),
            "email,note,status\ra@example.org,say \"hi\",unsubscribed\rb@example.org,\"x\"y,unsubscribed\r"
        );
    }
}
