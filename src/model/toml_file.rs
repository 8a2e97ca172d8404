//! Reading TOML files with errors that name the file, line, column and key.

use std::fs;
use std::path::Path;

use anyhow::Result;
use serde::de::DeserializeOwned;

use crate::model::finding::Finding;
use crate::model::load_error::LoadError;

/// A TOML source kept beside its path, so later checks can point at lines.
pub struct Source {
    pub path: std::path::PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Source, LoadError> {
        let text = fs::read_to_string(path).map_err(|error| LoadError::Unreadable {
            path: path.to_path_buf(),
            error,
            advice: "",
        })?;
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    /// Parses the whole file into `T`; errors are a [`Finding`] with the
    /// file, line and column.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, LoadError> {
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
                return finding.into();
            }
            if syntax
                && let Some(span) = error.span()
                && let Some((offset, plain)) = plain_syntax(&self.text, span.start, &message)
            {
                return self.error_at("invalid-toml", offset, plain).into();
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
            finding.into()
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
        let reading = crate::model::dates::read(value)?;
        let leading = self.text[value_start..].len() - self.text[value_start..].trim_start().len();
        let message = match &reading.time {
            Some(_) if key != "date" => format!(
                "`{key}`: write it as `{}` (year-month-day, `T`, then the time), with no quotes",
                reading.iso(true)
            ),
            // An event's start or end needs its time too.
            None if matches!(key, "start" | "end") => format!(
                "`{key}`: write it as `{date}T` and the time, like `{date}T19:00:00` (year-month-day, `T`, then the time), with no quotes",
                date = reading.date
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
            severity: crate::model::finding::Severity::Warning,
            ..self.error_at(code, offset, message)
        }
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        line_column(&self.text, offset).0
    }
}

/// The common TOML mistakes of someone who is not a programmer, for a
/// syntax error at `error`: where the mistake is and what to write, or
/// `None` to keep the parser's words.
///
/// - a text with no closing quote: at the quote that opens it (the parser
///   notices only later, sometimes lines later);
/// - a text with `"` inside it: how to write it;
/// - a text with no quotes at all: the line with them.
fn plain_syntax(text: &str, error: usize, message: &str) -> Option<(usize, String)> {
    let error = error.min(text.len());
    let line_start = text[..error].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    if let Some(advice) = quotes_inside(text, line_start, line_end) {
        return Some(advice);
    }
    if message.starts_with("string values must be quoted")
        && let Some(advice) = unquoted(text, line_start, line_end)
    {
        return Some(advice);
    }
    let open = unclosed_string(text)?;
    if open.start > line_end {
        return None;
    }
    let key = key_before(text, open.start);
    let message = match open.quote {
        "\"\"\"" | "'''" => format!(
            "{key}the text that starts here has no closing `{q}`; end it with `{q}` on a line of its own",
            q = open.quote
        ),
        q => format!(
            "{key}the text that starts here has no closing `{q}`; end it with `{q}` on the same line (a text over several lines starts and ends with `{q}{q}{q}`)"
        ),
    };
    Some((open.start, message))
}

/// `` `subject`: `` when a `key =` comes before `offset` on its line.
fn key_before(text: &str, offset: usize) -> String {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    match text[line_start..offset].trim_end().strip_suffix('=') {
        Some(key) if is_bare_key(key.trim()) => format!("`{}`: ", key.trim()),
        _ => String::new(),
    }
}

fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A line `key = "… "…" …"`: a one-line text with more `"` in it than the
/// two around it.
fn quotes_inside(text: &str, start: usize, end: usize) -> Option<(usize, String)> {
    let line = &text[start..end];
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    if !is_bare_key(key) {
        return None;
    }
    let value_at = start + key_len(line) + 1 + (value.len() - value.trim_start().len());
    let value = value.trim();
    let inner = value.strip_prefix('"')?;
    if inner.starts_with("\"\"") {
        return None;
    }
    let last = inner.rfind('"')?;
    let (inner, after) = (&inner[..last], inner[last + 1..].trim());
    if !(after.is_empty() || after.starts_with('#')) || unescaped_quotes(inner) == 0 {
        return None;
    }
    let rewritten = if inner.contains('\'') || inner.contains('\\') {
        let mut escaped = String::new();
        let mut previous = None;
        for c in inner.chars() {
            if c == '"' && previous != Some('\\') {
                escaped.push('\\');
            }
            escaped.push(c);
            previous = Some(c);
        }
        format!("{key} = \"{escaped}\"")
    } else {
        format!("{key} = '{inner}'")
    };
    Some((
        value_at,
        format!(
            "`{key}`: the text has `\"` inside it, which ends it early; put single quotes around it instead, or a `\\` before each `\"` inside: `{rewritten}`"
        ),
    ))
}

/// A line `key = words` whose value has no quotes.
fn unquoted(text: &str, start: usize, end: usize) -> Option<(usize, String)> {
    let line = &text[start..end];
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    let words = value.split(" #").next().unwrap_or(value).trim();
    if !is_bare_key(key) || words.is_empty() || words.contains(['"', '\'', '\\']) {
        return None;
    }
    let value_at = start + key_len(line) + 1 + (value.len() - value.trim_start().len());
    Some((
        value_at,
        format!("`{key}`: a text must be in quotes; write `{key} = \"{words}\"`"),
    ))
}

/// `"` in `text` that no `\` escapes.
fn unescaped_quotes(text: &str) -> usize {
    let mut count = 0;
    let mut escaped = false;
    for c in text.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => count += 1,
            _ => escaped = false,
        }
    }
    count
}

/// A text (string) the file opens and never closes.
#[derive(Debug, PartialEq, Eq)]
struct Unclosed {
    /// Byte offset of the opening quote.
    start: usize,
    /// `"`, `'`, `"""` or `'''`.
    quote: &'static str,
}

/// The first string in a TOML text that is not closed: a one-line string
/// at the end of its line, or a multi-line one at the end of the file or
/// at a "closing" `"""` that is really the opening of the next key's text
/// (`body = """`).
fn unclosed_string(text: &str) -> Option<Unclosed> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let quote = bytes[i];
        if quote == b'#' {
            i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            continue;
        }
        if quote != b'"' && quote != b'\'' {
            i += 1;
            continue;
        }
        let basic = quote == b'"';
        let (q1, q3) = if basic {
            ("\"", "\"\"\"")
        } else {
            ("'", "'''")
        };
        if bytes[i..].starts_with(q3.as_bytes()) {
            let mut j = i + 3;
            loop {
                if j >= bytes.len() {
                    return Some(Unclosed {
                        start: i,
                        quote: q3,
                    });
                }
                if basic && bytes[j] == b'\\' {
                    j += 2;
                    continue;
                }
                if bytes[j..].starts_with(q3.as_bytes()) {
                    let line_start = text[..j].rfind('\n').map_or(0, |n| n + 1);
                    let before = text[line_start..j].trim_end();
                    if line_start > i
                        && before
                            .strip_suffix('=')
                            .is_some_and(|k| is_bare_key(k.trim()))
                    {
                        return Some(Unclosed {
                            start: i,
                            quote: q3,
                        });
                    }
                    // `""""` and `"""""`: up to two quotes end the text.
                    j += 3;
                    let mut extra = 0;
                    while extra < 2 && bytes.get(j) == Some(&quote) {
                        j += 1;
                        extra += 1;
                    }
                    break;
                }
                j += 1;
            }
            i = j;
        } else {
            let mut j = i + 1;
            loop {
                match bytes.get(j) {
                    None | Some(b'\n') => {
                        return Some(Unclosed {
                            start: i,
                            quote: q1,
                        });
                    }
                    Some(b'\r') if bytes.get(j + 1) == Some(&b'\n') => {
                        return Some(Unclosed {
                            start: i,
                            quote: q1,
                        });
                    }
                    Some(b'\\') if basic => j += 2,
                    Some(&b) if b == quote => break,
                    Some(_) => j += 1,
                }
            }
            i = j + 1;
        }
    }
    None
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

/// The line of `table.key = …` in a TOML text (1-based), for errors.
pub fn key_line(text: &str, dotted: &str) -> Option<usize> {
    let (table, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.split(']').next()) {
            current = name.trim().to_string();
            continue;
        }
        if current == table
            && let Some((name, _)) = trimmed.split_once('=')
            && name.trim().trim_matches('"') == key
        {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unclosed(text: &str) -> Option<(usize, &'static str)> {
        unclosed_string(text).map(|u| (line_column(text, u.start).0, u.quote))
    }

    #[test]
    fn finds_the_string_that_is_not_closed() {
        assert_eq!(unclosed("a = \"x\"\nb = 'y'\n"), None);
        assert_eq!(unclosed("a = \"x\nb = 'y'\n"), Some((1, "\"")));
        assert_eq!(unclosed("a = \"x\"\nb = 'y\n"), Some((2, "'")));
        assert_eq!(unclosed("a = \"é \\\" “x\n"), Some((1, "\"")));
        assert_eq!(unclosed("# a \"quote\nb = 1\n"), None);
        assert_eq!(
            unclosed("a = \"\"\"\n“x”\n\"\"\"\nb = \"\"\"\ny\n"),
            Some((4, "\"\"\""))
        );
        // The letter's closing `"""` is missing: the next key's opening
        // one is not taken for it.
        assert_eq!(
            unclosed("a = \"\"\"\nx\n\nb = \"\"\"\ny\n\"\"\"\n"),
            Some((1, "\"\"\""))
        );
        assert_eq!(unclosed("a = \"\"\"x \"quoted\"\"\"\"\nb = 'c'\n"), None);
        assert_eq!(unclosed("a = '''\nx\n"), Some((1, "'''")));
        assert_eq!(unclosed("a = \"x\\"), Some((1, "\"")));
    }

    #[test]
    fn quotes_inside_are_written_for_the_reader() {
        let advice = |line: &str| quotes_inside(line, 0, line.len()).map(|(_, m)| m);
        assert!(
            advice("subject = \"Our \"big\" day\"")
                .unwrap()
                .ends_with("`subject = 'Our \"big\" day'`")
        );
        assert!(
            advice("subject = \"Our \"big\" day's end\" # note")
                .unwrap()
                .ends_with("`subject = \"Our \\\"big\\\" day's end\"`")
        );
        assert_eq!(advice("subject = \"plain\""), None);
        assert_eq!(advice("subject = \"say \\\"hi\\\"\""), None);
        assert_eq!(advice("letter = \"\"\"x\"\"\""), None);
    }

    #[test]
    fn words_without_quotes_get_them() {
        let advice = |line: &str| unquoted(line, 0, line.len()).map(|(_, m)| m);
        assert_eq!(
            advice("subject = Our day # note").unwrap(),
            "`subject`: a text must be in quotes; write `subject = \"Our day\"`"
        );
        assert_eq!(advice("subject = \"Our day"), None);
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("a\nbc\n", 0), (1, 1));
        assert_eq!(line_column("a\nbc\n", 3), (2, 2));
        assert_eq!(line_column("é\nx", 3), (2, 1));
    }
}
