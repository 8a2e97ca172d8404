//! `newsletter`: compose a charity's supporter newsletter from TOML issue
//! files and an archive of posts and events, and send one personalised
//! message per subscriber.
//!
//! Data flows one way: `Cli → Config → (Issue, Archive, Subscribers) →
//! Rendered → preview | send → Journal`.

pub mod archive;
pub mod assets;
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

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::archive::Archive;
use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::issue::Issue;
use crate::render::Rendered;
use crate::theme::Theme;

/// Runs one command. Errors are for the caller to print (exit code 2).
pub fn run(cli: Cli) -> Result<ExitCode> {
    let found = cli.config.is_none() && std::env::var_os("NEWSLETTER_CONFIG").is_none();
    let config_path = config_path(cli.config.clone());
    let missing = || -> Result<()> {
        if found && !config_path.exists() {
            bail!(
                "no `{CONFIG_FILE}` in this folder or any folder above it; run newsletter from the project folder (the one with `{CONFIG_FILE}`), or name the file with --config"
            );
        }
        Ok(())
    };
    let load = || {
        missing()?;
        Config::load(&config_path)
    };
    match cli.command {
        // `check` reports a broken configuration as a finding, so it loads it itself.
        Command::Check(args) => {
            missing()?;
            check::run(&config_path, &args.into())
        }
        Command::Preview(mut args) => {
            let config = load()?;
            args.issue = issue_path(&config, args.issue);
            preview::run(&config, &args.into())
        }
        Command::Send(mut args) => {
            let config = load()?;
            args.issue = issue_path(&config, args.issue);
            send::run(&config, &args.into())
        }
        Command::Status(mut args) => {
            let config = load()?;
            args.issue = issue_path(&config, args.issue);
            status::run(&config, &args.into())
        }
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

/// The configuration file's name, looked for from the current folder up.
pub const CONFIG_FILE: &str = "newsletter.toml";

/// `--config`, else `$NEWSLETTER_CONFIG`, else the nearest
/// `newsletter.toml` in the current folder or a folder above it (as
/// `../newsletter.toml`, so paths shown stay short), else `newsletter.toml`
/// (whose absence the loader reports).
pub fn config_path(given: Option<PathBuf>) -> PathBuf {
    if let Some(path) = given {
        return path;
    }
    if let Some(path) = std::env::var_os("NEWSLETTER_CONFIG").filter(|p| !p.is_empty()) {
        return path.into();
    }
    let depth = std::env::current_dir().map_or(0, |dir| dir.ancestors().count());
    let mut up = PathBuf::new();
    for _ in 0..depth {
        let candidate = up.join(CONFIG_FILE);
        if candidate.is_file() {
            return candidate;
        }
        up.push("..");
    }
    PathBuf::from(CONFIG_FILE)
}

/// An issue named by its id (`2022-07-13`) is the file of that name in the
/// issues folder, when there is no file by the name as given.
pub fn issue_path(config: &Config, given: PathBuf) -> PathBuf {
    if given.exists() {
        return given;
    }
    let is_id = given.components().count() == 1 && given.extension().is_none();
    let by_id = config
        .paths
        .issues
        .join(format!("{}.toml", given.display()));
    if is_id && by_id.is_file() {
        by_id
    } else {
        given
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
