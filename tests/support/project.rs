//! Shared by several test binaries; each uses part of it.
#![allow(dead_code)]

//! A copy of the example project in a temporary folder, and a builder that
//! runs the real `newsletter` binary in it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The secret the tests sign unsubscribe links with.
pub const SECRET: &str = "test-unsubscribe-secret-0123456789";

/// A scratch copy of the example configuration, archive, issues, theme and
/// subscribers.
pub struct Project {
    pub dir: tempfile::TempDir,
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl Project {
    /// The example project as shipped in the repository.
    pub fn example() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo();
        for folder in ["archive", "issues", "templates"] {
            copy_dir(&repo.join(folder), &dir.path().join(folder));
        }
        for file in ["newsletter.toml", "subscribers.example.csv"] {
            fs::copy(repo.join(file), dir.path().join(file)).unwrap();
        }
        Project { dir }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path(relative)).unwrap()
    }

    /// Writes a file (creating folders).
    pub fn write(&self, relative: &str, contents: &str) -> &Self {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
        self
    }

    /// Replaces `old` by `new` in a file; panics if `old` is not there.
    pub fn edit(&self, relative: &str, old: &str, new: &str) -> &Self {
        let text = self.read(relative);
        assert!(text.contains(old), "`{old}` not in {relative}");
        self.write(relative, &text.replacen(old, new, 1))
    }

    /// Points the configuration at a plain SMTP server on 127.0.0.1 and
    /// sets the `[sending]` table to `sending` (TOML lines).
    pub fn use_smtp(&self, port: u16, sending: &str) -> &Self {
        let text = self.read("newsletter.toml");
        let head = &text[..text.find("[transport]").unwrap()];
        let config = format!(
            "{head}[transport]\nkind = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout-seconds = 10\n\n[sending]\n{sending}\n"
        );
        self.write("newsletter.toml", &config)
    }

    /// A `newsletter` command in this folder with the test secret set,
    /// short retry delays, and today's real date (`NEWSLETTER_TODAY` unset).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_newsletter"));
        cmd.current_dir(self.dir.path())
            .args(args)
            .env("NEWSLETTER_UNSUBSCRIBE_SECRET", SECRET)
            .env("NEWSLETTER_RETRY_BASE_MS", "50")
            .env_remove("NEWSLETTER_CONFIG")
            .env_remove("NO_COLOR")
            .env_remove("NEWSLETTER_TODAY")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `newsletter ARGS` to the end.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `newsletter status ISSUE --subscribers LIST` as (name, value) lines.
pub fn status_lines(p: &Project, issue: &str, list: &str) -> Vec<(String, String)> {
    let out = p.run(&["status", issue, "--subscribers", list]);
    out.expect_code(0);
    out.stdout
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The count called `name` in [`status_lines`] (not a line naming an address).
pub fn status_count(status: &[(String, String)], name: &str) -> u64 {
    status
        .iter()
        .find(|(k, v)| k == name && !v.contains('@'))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or_else(|| panic!("no `{name}` in {status:?}"))
}
