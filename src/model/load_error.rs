//! What a loader returns when it cannot give its value: the file cannot be
//! read (a problem of the machine, not of the file: `check` exits 2), or
//! what the file says is wrong — a [`Finding`] with file, line, column,
//! stable code and advice, which `check` reports as it is and the other
//! commands print the same way. Callers match on it; nothing is re-read
//! or downcast to tell the two apart.

use std::path::PathBuf;

use crate::model::finding::Finding;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read at all.
    #[error("cannot read `{}`: {error}{advice}", path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
        /// What to do, after the reason (may be empty).
        advice: &'static str,
    },
    /// The file was read, and something in it is wrong.
    #[error("{0}")]
    Invalid(Box<Finding>),
}

impl From<Finding> for LoadError {
    fn from(finding: Finding) -> Self {
        LoadError::Invalid(Box::new(finding))
    }
}

impl LoadError {
    /// The same error with `advice` after an unreadable file's reason.
    pub fn advise(self, advice: &'static str) -> LoadError {
        match self {
            LoadError::Unreadable { path, error, .. } => LoadError::Unreadable {
                path,
                error,
                advice,
            },
            invalid => invalid,
        }
    }
}
