//! Reading TOML files with errors that name the file, line, column and key.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

use crate::finding::Finding;

/// A TOML source kept beside its path, so later checks can point at lines.
pub struct Source {
    pub path: std::path::PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Source> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    /// Parses the whole file into `T`; errors are a [`Finding`] with the
    /// file, line and column.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        toml::from_str(&self.text).map_err(|error| {
            let message = error.message().trim_end().to_string();
            let syntax = !(message.starts_with("unknown field")
                || message.starts_with("missing field")
                || message.starts_with("invalid type")
                || message.starts_with("invalid value")
                || message.starts_with("duplicate key"));
            if let Some(span) = error.span()
                && (message.contains("datetime") || syntax)
                && let Some(finding) = self.date_advice(span.start, !syntax)
            {
                return anyhow::Error::new(finding);
            }
            let code = if message.starts_with("unknown field") {
                "unknown-key"
            } else if message.starts_with("missing field") {
                "missing-key"
            } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
                "wrong-type"
            } else if message.starts_with("duplicate key") {
                "duplicate-key"
            } else {
                "invalid-toml"
            };
            // The message names the key only when the key itself is wrong;
            // for a bad value, say whose value it is.
            let message = match error.span().and_then(|s| key_at(&self.text, s.start)) {
                Some(key) => format!("`{key}`: {message}"),
                None => message,
            };
            let finding = Finding::error(code, &self.path, message);
            let finding = match error.span() {
                Some(span) => {
                    let (line, column) = line_column(&self.text, span.start);
                    finding.at(line, column)
                }
                None => finding,
            };
            anyhow::Error::new(finding)
        })
    }

    /// For an error on a line `key = value` whose value is a date in a
    /// common wrong shape (`13/07/2022`, `"2022-07-13"`): an `invalid-date`
    /// finding at the value saying exactly what to write.
    ///
    /// Unless `expected` (the key is known to take a date), only for keys
    /// that name a date (`date`, `start`, `end`, `…-date`).
    fn date_advice(&self, offset: usize, expected: bool) -> Option<Finding> {
        let offset = offset.min(self.text.len());
        let start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line = &self.text[start..end];
        let (key, value) = line.split_once('=')?;
        let key = key.trim().trim_matches('"');
        let value_start = start + key_len(line) + 1;
        let value = value.split(" #").next().unwrap_or(value).trim();
        let date_key = matches!(key, "date" | "start" | "end")
            || key.ends_with("-date")
            || key.ends_with("_date");
        if key.is_empty() || value.is_empty() || !(expected || date_key) {
            return None;
        }
        let reading = crate::dates::read(value)?;
        let leading = self.text[value_start..].len() - self.text[value_start..].trim_start().len();
        let message = match &reading.time {
            Some(_) if key != "date" => format!(
                "`{key}`: write it as `{}` (year-month-day, `T`, then the time), with no quotes",
                reading.iso(true)
            ),
            _ => format!(
                "`{key}`: write the date as `{}` (year-month-day), with no quotes{}{}",
                reading.iso(false),
                if reading.time.is_some() {
                    " and no time"
                } else {
                    ""
                },
                reading.ambiguity()
            ),
        };
        Some(self.error_at("invalid-date", value_start + leading, message))
    }

    /// A finding at a byte offset of this file.
    pub fn error_at(
        &self,
        code: &'static str,
        offset: usize,
        message: impl Into<String>,
    ) -> Finding {
        let (line, column) = line_column(&self.text, offset);
        Finding::error(code, &self.path, message).at(line, column)
    }

    /// A warning at a byte offset of this file.
    pub fn warning_at(
        &self,
        code: &'static str,
        offset: usize,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            severity: crate::finding::Severity::Warning,
            ..self.error_at(code, offset, message)
        }
    }

    /// `file:line:column` (1-based) for a byte offset.
    pub fn location(&self, offset: usize) -> String {
        let (line, column) = line_column(&self.text, offset);
        format!("{}:{line}:{column}", self.path.display())
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        line_column(&self.text, offset).0
    }
}

/// Bytes of `line` before its first `=`.
fn key_len(line: &str) -> usize {
    line.find('=').unwrap_or(line.len())
}

/// The dotted key whose value holds `offset`, such as `sign-off.name`;
/// `None` when the offset is on a key, or at the top level.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let root = toml::Spanned::new(root.span(), toml::de::DeValue::Table(root.into_inner()));
    let mut path = Vec::new();
    match search(&root, offset, &mut path) {
        Hit::Value if !path.is_empty() => Some(path.join(".")),
        _ => None,
    }
}

enum Hit {
    Miss,
    Key,
    Value,
}

/// Depth first, because the span of a `[table]` covers only its header.
fn search(value: &toml::Spanned<toml::de::DeValue>, offset: usize, path: &mut Vec<String>) -> Hit {
    match value.get_ref() {
        toml::de::DeValue::Table(table) => {
            for (key, item) in table.iter() {
                if key.span().contains(&offset) {
                    return Hit::Key;
                }
                path.push(key.get_ref().to_string());
                match search(item, offset, path) {
                    Hit::Miss => path.truncate(path.len() - 1),
                    hit => return hit,
                }
            }
        }
        toml::de::DeValue::Array(items) => {
            for item in items.iter() {
                match search(item, offset, path) {
                    Hit::Miss => {}
                    hit => return hit,
                }
            }
        }
        _ => {}
    }
    if value.span().contains(&offset) {
        Hit::Value
    } else {
        Hit::Miss
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("a\nbc\n", 0), (1, 1));
        assert_eq!(line_column("a\nbc\n", 3), (2, 2));
        assert_eq!(line_column("é\nx", 3), (2, 1));
    }
}
