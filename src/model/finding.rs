//! A problem found in an input file: what `check` reports, and what the
//! loaders return as an error, so both say the same thing.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, with a stable code and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier, e.g. `unknown-post` or `http-link`.
    pub code: &'static str,
    pub file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What is wrong and what to do, lowercase.
    pub message: String,
}

impl Finding {
    pub fn error(code: &'static str, file: &Path, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Error,
            code,
            file: file.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub fn warning(code: &'static str, file: &Path, message: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(code, file, message)
        }
    }

    pub fn at(mut self, line: usize, column: usize) -> Finding {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub fn at_line(mut self, line: usize) -> Finding {
        self.line = Some(line);
        self
    }

    /// The same finding, saying `message`.
    pub fn says(mut self, message: impl Into<String>) -> Finding {
        self.message = message.into();
        self
    }

    /// `file:line:column` as far as known.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file.display()),
            (Some(l), None) => format!("{}:{l}", self.file.display()),
            _ => self.file.display().to_string(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)
    }
}

impl std::error::Error for Finding {}
