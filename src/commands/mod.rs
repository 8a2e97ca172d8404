//! One module per subcommand: each takes its arguments, loads the model,
//! and wires the stages together. Nothing below `commands` imports it.

pub mod bounces;
pub mod check;
pub mod completions;
pub mod events;
pub mod new;
pub mod posts_import;
pub mod posts_list;
pub mod preview;
pub mod send;
pub mod status;
pub mod unsubscribe;
mod usage;
pub mod web;

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::{Cli, Command, EventsAction, PostsAction};
use crate::model::config::{CONFIG_FILE, Config, config_path};

/// Runs one command. Errors are for the caller to print (exit code 2).
pub fn run(cli: Cli) -> Result<ExitCode> {
    let given = cli.config_given();
    let found = given.is_none() && std::env::var_os("NEWSLETTER_CONFIG").is_none();
    let config_path = config_path(given);
    let missing = || -> Result<()> {
        if found && !config_path.exists() {
            bail!(
                "no `{CONFIG_FILE}` in this folder or any folder above it; run newsletter from the project folder (the one with `{CONFIG_FILE}`), or name the file with --config"
            );
        }
        Ok(())
    };
    let load = || -> Result<Config> {
        missing()?;
        Ok(Config::load(&config_path)?)
    };
    match cli.command {
        Command::Check(args) => {
            missing()?;
            check::run(&config_path, args)
        }
        Command::Preview(args) => preview::run(&load()?, args),
        Command::Send(args) => send::run(&load()?, args),
        Command::Status(mut args) => {
            let config = load()?;
            args.issue = config.issue_path(args.issue);
            status::run(&config, &args.into())
        }
        Command::Unsubscribe(args) => unsubscribe::run(&load()?, args),
        Command::Bounces(args) => bounces::run(&load()?, args),
        Command::Completions(args) => completions::completions(args.shell),
        Command::Man(_) => completions::man(),
        Command::New(args) => new::run(&load()?, &args),
        Command::Web(args) => web::run(&load()?, args),
        Command::Posts(args) => match args.action {
            PostsAction::Import(import) => posts_import::run(&load()?, &import.feed),
            PostsAction::List(list) => posts_list::run(&load()?, &list),
        },
        Command::Events(args) => match args.action {
            EventsAction::List(list) => events::list(&load()?, &list),
            EventsAction::Add(add) => events::add(&load()?, &add),
        },
    }
}

/// True when the error comes from writing to a closed pipe (`| head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
