//! Commands printed for people to paste: the program as it was started and
//! the same `--config`, each argument quoted for a POSIX shell.

use std::path::{Path, PathBuf};

/// How to write a `newsletter` command line for this run.
#[derive(Debug, Clone)]
pub struct Hint {
    program: String,
    config: Option<PathBuf>,
}

impl Hint {
    /// The program as started (`newsletter`, `./target/release/newsletter`)
    /// and the configuration unless it is the default.
    pub fn new(config: &Path) -> Hint {
        let program = std::env::args()
            .next()
            .filter(|p| p.contains('/'))
            .unwrap_or_else(|| "newsletter".into());
        let config = (config != Path::new("newsletter.toml")).then(|| config.to_path_buf());
        Hint { program, config }
    }

    /// `PROGRAM [--config FILE] COMMAND ARGS…`, quoted.
    pub fn command(&self, command: &str, args: &[String]) -> String {
        let mut words = vec![self.program.clone()];
        if let Some(config) = &self.config {
            words.extend(["--config".into(), config.display().to_string()]);
        }
        words.push(command.into());
        words.extend(args.iter().cloned());
        words
            .iter()
            .map(|w| shlex::try_quote(w).map_or_else(|_| w.clone(), |q| q.into_owned()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_for_the_shell() {
        let hint = Hint {
            program: "newsletter".into(),
            config: Some("my config.toml".into()),
        };
        assert_eq!(
            hint.command("send", &["issues/a b.toml".into(), "--yes".into()]),
            "newsletter --config 'my config.toml' send 'issues/a b.toml' --yes"
        );
    }
}
