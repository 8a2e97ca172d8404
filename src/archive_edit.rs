//! Adding entries to an archive file (`posts.toml`, `events.toml`) as text,
//! so every byte already there (comments, hand edits, the order of keys)
//! stays as it was. Used by `posts import` and `events add`.
//!
//! One process changes a file at a time: [`update`] holds the lock
//! `FILE.lock` (see [`crate::lock`]) from before it reads the file until the
//! new one is in place, then replaces it atomically (a synced temporary file
//! renamed over it), and refuses when somebody saved the file meanwhile.
//! The archive is kept in version control, so no `.bak` is left beside it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};

/// Where new entries go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Above the first entry (posts: the archive is newest first).
    BeforeFirst,
    /// After everything (events: in the order they were added).
    AtEnd,
}

/// `text` with `block` (whole `[[table]]` entries, each ending in a blank
/// line) put at `position`; every other byte unchanged. With no entry yet,
/// the block goes at the end either way.
pub fn insert(text: &str, table: &str, block: &str, position: Position) -> String {
    let first = text
        .match_indices(table)
        .map(|(at, _)| at)
        .find(|&at| at == 0 || text[..at].ends_with('\n'));
    match (position, first) {
        (Position::BeforeFirst, Some(at)) => format!("{}{block}{}", &text[..at], &text[at..]),
        _ => {
            let sep = if text.is_empty() || text.ends_with("\n\n") {
                ""
            } else if text.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            format!("{text}{sep}{}\n", block.trim_end_matches('\n'))
        }
    }
}

/// A value as a TOML string (quoted, escaped).
pub fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// Changes the file at `path` under its lock: `edit` gets the current text
/// and returns the new one (which it must have checked), or `None` to leave
/// the file alone. Returns whether the file was replaced.
pub fn update(path: &Path, edit: impl FnOnce(&str) -> Result<Option<String>>) -> Result<bool> {
    let shown = path.display();
    // A missing file is reported as such, without a lock file beside it.
    std::fs::metadata(path).with_context(|| format!("cannot read `{shown}`"))?;
    let _lock = crate::lock::for_change(path)?;
    let mut file = File::open(path).with_context(|| format!("cannot read `{shown}`"))?;
    // The metadata of the file read, not of whatever the path names later.
    let before = file
        .metadata()
        .with_context(|| format!("cannot read `{shown}`"))?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .with_context(|| format!("cannot read `{shown}` (it must be UTF-8 text)"))?;
    let Some(updated) = edit(&text)? else {
        return Ok(false);
    };
    crate::replace_file::replace_without_backup(path, &before, |out| {
        out.write_all(updated.as_bytes())
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "[[post]]\nid = \"new\"\n\n";

    #[test]
    fn before_the_first_entry_keeps_the_rest() {
        let text = "# header\n\n[[post]]\nid = \"old\"\n";
        assert_eq!(
            insert(text, "[[post]]", BLOCK, Position::BeforeFirst),
            "# header\n\n[[post]]\nid = \"new\"\n\n[[post]]\nid = \"old\"\n"
        );
    }

    #[test]
    fn at_the_end_one_blank_line_separates() {
        for (text, expected) in [
            ("a = 1\n", "a = 1\n\n[[post]]\nid = \"new\"\n"),
            ("a = 1\n\n", "a = 1\n\n[[post]]\nid = \"new\"\n"),
            ("a = 1", "a = 1\n\n[[post]]\nid = \"new\"\n"),
            ("", "[[post]]\nid = \"new\"\n"),
        ] {
            assert_eq!(insert(text, "[[post]]", BLOCK, Position::AtEnd), expected);
            // With no entry yet, BeforeFirst appends too.
            assert_eq!(
                insert(text, "[[post]]", BLOCK, Position::BeforeFirst),
                expected
            );
        }
    }

    #[test]
    fn a_table_name_inside_a_value_is_not_an_entry() {
        let text = "note = \"[[post]]\"\n";
        assert_eq!(
            insert(text, "[[post]]", BLOCK, Position::BeforeFirst),
            "note = \"[[post]]\"\n\n[[post]]\nid = \"new\"\n"
        );
    }
}
