//! `newsletter check`: the arguments, handed to [`crate::check`].

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::check::{self, CheckRequest, Format};
use crate::cli::{CheckArgs, CheckFormat};

impl From<CheckArgs> for CheckRequest {
    fn from(a: CheckArgs) -> Self {
        CheckRequest {
            issues: a.issues,
            subscribers: a.list.subscribers,
            format: match a.format {
                CheckFormat::Text => Format::Text,
                CheckFormat::Json => Format::Json,
                CheckFormat::Github => Format::Github,
            },
            strict: a.strict,
        }
    }
}

/// `check` reports a broken configuration as a finding, so it is given the
/// configuration's path, not the loaded configuration.
pub fn run(config_path: &Path, args: CheckArgs) -> Result<ExitCode> {
    check::run(config_path, &args.into())
}
