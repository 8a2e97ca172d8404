//! `newsletter bounces`: the arguments, handed to [`crate::bounces`].

use std::process::ExitCode;

use anyhow::Result;

use crate::bounces::{self, ImportRequest};
use crate::cli::{BouncesAction, BouncesArgs};
use crate::model::config::Config;

impl From<BouncesArgs> for ImportRequest {
    fn from(a: BouncesArgs) -> Self {
        match a.action {
            BouncesAction::Import(i) => ImportRequest {
                paths: i.paths,
                subscribers: i.list.subscribers,
            },
        }
    }
}

pub fn run(config: &Config, args: BouncesArgs) -> Result<ExitCode> {
    bounces::run(config, &args.into())
}
