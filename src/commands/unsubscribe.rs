//! `newsletter unsubscribe`: the arguments, handed to [`crate::unsubscribe`].

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{UnsubscribeAction, UnsubscribeArgs};
use crate::model::config::Config;
use crate::unsubscribe::{self, Request, ServeOptions};

impl From<UnsubscribeArgs> for Request {
    fn from(a: UnsubscribeArgs) -> Self {
        match a.action {
            Some(UnsubscribeAction::Verify(v)) => Request::Verify { url: v.url },
            Some(UnsubscribeAction::Serve(s)) => Request::Serve(ServeOptions {
                bind: s.bind,
                log: s.log,
                allow_remote: s.allow_remote,
            }),
            None => Request::Apply {
                inputs: a.inputs,
                from_file: a.from_file,
                subscribers: a.list.subscribers,
            },
        }
    }
}

pub fn run(config: &Config, args: UnsubscribeArgs) -> Result<ExitCode> {
    unsubscribe::run(config, &args.into())
}
