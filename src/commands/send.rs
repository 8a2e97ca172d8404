//! `newsletter send`: the arguments, handed to [`crate::send`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::SendArgs;
use crate::model::config::Config;
use crate::send::{self, SendRequest};

impl From<SendArgs> for SendRequest {
    fn from(a: SendArgs) -> Self {
        SendRequest {
            issue: a.issue,
            subscribers: a.list.subscribers,
            dry_run: a.dry_run,
            test_to: a.test_to,
            limit: a.limit,
            yes: a.yes,
            skip_invalid: a.skip_invalid,
            retry_failed: a.retry_failed,
            resend_uncertain: a.resend_uncertain,
            accept_changes: a.accept_changes,
            as_email: a.as_email,
        }
    }
}

pub fn run(config: &Config, mut args: SendArgs) -> Result<ExitCode> {
    args.issue = config.issue_path(args.issue);
    send::run(config, &args.into())
}
