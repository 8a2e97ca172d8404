//! `newsletter unsubscribe`: applies unsubscribe requests to the subscriber
//! CSV, checks unsubscribe links, and serves the one-click endpoint.

pub mod apply;
mod http;
pub mod link;
pub mod log;
mod pages;
pub mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::model::config::Config;
use crate::token::Signer;

pub use serve::ServeOptions;

/// What `newsletter unsubscribe` was asked to do.
#[derive(Debug, Clone)]
pub enum Request {
    /// Set `unsubscribed` for addresses, links and log lines.
    Apply {
        inputs: Vec<String>,
        from_file: Option<PathBuf>,
        subscribers: Option<PathBuf>,
    },
    /// Print the address a link was made for.
    Verify {
        url: String,
    },
    Serve(ServeOptions),
}

pub fn run(config: &Config, req: &Request) -> Result<ExitCode> {
    match req {
        Request::Verify { url } => {
            let signer = signer(config)?;
            match link::check(&signer, &link::token_in(url)) {
                Ok(address) => {
                    println!("{address}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(refused) => {
                    eprintln!("error: {refused}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Request::Serve(options) => serve::run(config, signer(config)?, options),
        Request::Apply {
            inputs,
            from_file,
            subscribers,
        } => {
            let list = subscribers
                .clone()
                .unwrap_or_else(|| config.paths.subscribers.clone());
            let signer = config
                .unsubscribe_secret()
                .map(|secret| Signer::new(&config.list.id, secret.as_bytes()));
            let all_applied = apply::run(&list, inputs, from_file.as_deref(), signer.as_ref())?;
            Ok(if all_applied {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// The list's signer; links cannot be checked without the secret.
fn signer(config: &Config) -> Result<Signer> {
    let Some(secret) = config.unsubscribe_secret() else {
        bail!(
            "{}",
            config.missing_secret("unsubscribe links cannot be checked", true)
        );
    };
    Ok(Signer::new(&config.list.id, secret.as_bytes()))
}
