//! Reading TOML files with errors that name the file, line, column and key.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;

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

    /// Parses the whole file into `T`; errors carry `file:line:column`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        toml::from_str(&self.text).map_err(|error| {
            let location = error
                .span()
                .map(|span| self.location(span.start))
                .unwrap_or_else(|| self.path.display().to_string());
            anyhow::anyhow!("{location}: {}", error.message().trim_end())
        })
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
