//! `newsletter`: compose a charity's supporter newsletter from TOML issue
//! files and an archive of posts and events, and send one personalised
//! message per subscriber.
//!
//! Data flows one way: `Cli → Config → (Issue, Archive, Subscribers) →
//! Rendered → preview | send → Journal`.

pub mod archive;
pub mod audience;
pub mod bounces;
pub mod check;
pub mod cli;
pub mod completions;
pub mod config;
pub mod consent;
pub mod dates;
mod external_sort;
pub mod feed_import;
pub mod finding;
pub mod hint;
pub mod http;
pub mod ics;
pub mod issue;
pub mod journal;
pub mod lock;
pub mod mark;
pub mod merge;
pub mod message;
pub mod new_issue;
pub mod preview;
pub mod progress;
pub mod qp;
pub mod render;
pub mod send;
pub mod slug;
pub mod status;
pub mod subscribers;
pub mod theme;
pub mod token;
mod toml_file;
pub mod unsubscribe;
pub mod web;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::archive::Archive;
use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::issue::Issue;
use crate::render::Rendered;
use crate::theme::Theme;

/// Runs one command. Errors are for the caller to print (exit code 2).
pub fn run(cli: Cli) -> Result<ExitCode> {
    let load = || Config::load(&cli.config);
    match cli.command {
        // `check` reports a broken configuration as a finding, so it loads it itself.
        Command::Check(args) => check::run(&cli.config, &args.into()),
        Command::Preview(args) => preview::run(&load()?, &args.into()),
        Command::Send(args) => send::run(&load()?, &args.into()),
        Command::Status(args) => status::run(&load()?, &args.into()),
        Command::Unsubscribe(args) => unsubscribe::run(&load()?, &args.into()),
        Command::Bounces(args) => bounces::run(&load()?, &args.into()),
        Command::Completions(args) => completions::completions(args.shell),
        Command::Man(_) => completions::man(),
        Command::New(args) => new_issue::run(&load()?, &args),
        Command::Web(args) => web::run(&load()?, args),
        Command::Posts(args) => match args.action {
            cli::PostsAction::Import(import) => feed_import::run(&load()?, &import.feed),
        },
    }
}

/// An issue with everything it needs, rendered.
pub struct Loaded {
    pub issue: Issue,
    pub archive: Archive,
    pub theme: Theme,
    pub rendered: Rendered,
}

/// Loads the archive, the theme and an issue, and renders it.
pub fn load_issue(config: &Config, path: &Path) -> Result<Loaded> {
    let archive = Archive::load(
        &config.paths.posts,
        &config.paths.events,
        &config.list.post_url,
    )?;
    let theme = Theme::load(&config.paths.theme)?;
    let issue = Issue::load(path)?;
    let rendered = render::render(config, &theme, &issue, &archive)?;
    Ok(Loaded {
        issue,
        archive,
        theme,
        rendered,
    })
}

/// True when the error comes from writing to a closed pipe (`| head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
