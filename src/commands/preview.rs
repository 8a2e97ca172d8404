//! `newsletter preview`: the arguments, handed to [`crate::preview`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::PreviewArgs;
use crate::model::config::Config;
use crate::preview::{self, Preview};

impl From<PreviewArgs> for Preview {
    fn from(a: PreviewArgs) -> Self {
        Preview {
            issue: a.issue,
            out: a.out,
            as_email: a.as_email,
            subscribers: a.list.subscribers,
            serve: a.serve.then_some(a.port),
        }
    }
}

pub fn run(config: &Config, mut args: PreviewArgs) -> Result<ExitCode> {
    args.issue = config.issue_path(args.issue);
    preview::run(config, &args.into())
}
