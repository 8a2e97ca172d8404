//! `newsletter completions SHELL` and `newsletter man`: shell completion
//! scripts and the roff man page, generated from the command-line definition.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, Shell};

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: Shell) -> Result<ExitCode> {
    let mut script = Vec::new();
    let mut command = Cli::command();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut command, "newsletter", &mut script);
    write_stdout(&script)
}

/// Writes the man page (roff) to stdout.
pub fn man() -> Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("cannot render the man page")?;
    write_stdout(&page)
}

/// Writes to stdout; a closed pipe comes back as an error the caller
/// recognises (`is_broken_pipe`), never a panic.
fn write_stdout(bytes: &[u8]) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("cannot write to standard output")?;
    Ok(ExitCode::SUCCESS)
}
