use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = newsletter::cli::Cli::parse();
    match newsletter::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            if newsletter::commands::is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
