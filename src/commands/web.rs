//! `newsletter web build`: writes the site with [`crate::web`] and says where.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{WebAction, WebArgs};
use crate::model::config::Config;
use crate::web;

pub fn run(config: &Config, args: WebArgs) -> Result<ExitCode> {
    match args.action {
        WebAction::Build(build_args) => {
            let out = build_args.out.unwrap_or_else(|| config.beside("site"));
            let summary = web::build(config, &out)?;
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", out.join("index.html").display())?;
            writeln!(
                stdout,
                "wrote {} issue page(s) and {} calendar file(s) to `{}`",
                summary.issues,
                summary.events,
                out.display()
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
