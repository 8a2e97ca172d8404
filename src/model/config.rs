//! `newsletter.toml`: the list's identity, where the data lives, and how to send.
//!
//! Paths in the file are relative to the file itself. Secrets never live here:
//! the SMTP password and the unsubscribe secret are read from the environment
//! (or a command) named in the file.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lettre::message::Mailbox;
use serde::Deserialize;

use crate::model::finding::Finding;
use crate::model::load_error::LoadError;
use crate::model::toml_file::{Source, key_line};

/// The resolved configuration every command works from.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub list: List,
    pub paths: Paths,
    pub transport: Transport,
    pub sending: Sending,
    pub dkim: Option<Dkim>,
}

/// DKIM signing: every message is signed with relaxed/relaxed
/// canonicalization over the headers that matter to receivers.
#[derive(Debug, Clone)]
pub struct Dkim {
    pub selector: String,
    pub domain: String,
    pub private_key_file: PathBuf,
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DkimAlgorithm {
    /// RSA-SHA256; the key file is a PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`).
    Rsa,
    /// Ed25519-SHA256; the key file holds the base64 32-byte seed.
    Ed25519,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDkim {
    selector: String,
    domain: String,
    private_key_file: PathBuf,
    #[serde(default = "default_dkim_algorithm")]
    algorithm: DkimAlgorithm,
}

fn default_dkim_algorithm() -> DkimAlgorithm {
    DkimAlgorithm::Rsa
}

/// Who the newsletter is from and what every message's footer says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct List {
    /// Human name of the list, shown in `List-Id` and the footer.
    pub name: String,
    /// `List-Id` identifier (RFC 2919), a domain-like string.
    pub id: String,
    #[serde(deserialize_with = "de_mailbox")]
    pub from: Mailbox,
    #[serde(default, deserialize_with = "de_opt_mailbox")]
    pub reply_to: Option<Mailbox>,
    pub site_url: String,
    /// Pattern of an archived post's URL: `{id}` is the post id.
    pub post_url: String,
    pub donate_url: String,
    /// Pattern of the web version's URL: `{issue}` is the issue id.
    pub web_version_url: String,
    /// Pattern of the unsubscribe URL: `{token}` is the signed token.
    pub unsubscribe_url: String,
    /// Address for `mailto:` unsubscribes in `List-Unsubscribe`.
    pub unsubscribe_mailto: String,
    /// Environment variable holding the unsubscribe signing secret.
    #[serde(default = "default_secret_env")]
    pub unsubscribe_secret_env: String,
    pub charity_name: String,
    pub charity_number: String,
    pub postal_address: String,
    /// Language of the issues, for `<html lang>`.
    #[serde(default = "default_language")]
    pub language: String,
}

fn default_secret_env() -> String {
    "NEWSLETTER_UNSUBSCRIBE_SECRET".into()
}

fn default_language() -> String {
    "en-GB".into()
}

/// Where the data files are, resolved against the configuration's folder.
#[derive(Debug, Clone)]
pub struct Paths {
    pub issues: PathBuf,
    pub posts: PathBuf,
    pub events: PathBuf,
    pub theme: PathBuf,
    pub subscribers: PathBuf,
    pub journal: PathBuf,
    /// Where `unsubscribe serve` logs one-click unsubscribes; `send` honours
    /// them before they reach the subscriber file.
    pub unsubscribe_log: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPaths {
    issues: Option<PathBuf>,
    posts: Option<PathBuf>,
    events: Option<PathBuf>,
    theme: Option<PathBuf>,
    subscribers: Option<PathBuf>,
    journal: Option<PathBuf>,
    unsubscribe_log: Option<PathBuf>,
}

/// How messages leave the machine.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Writes one `.eml` file per message into a folder; sends nothing.
    Outbox {
        dir: PathBuf,
    },
    Smtp(Smtp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tls {
    /// TLS from the first byte (usually port 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS, which is required (usually port 587).
    Starttls,
    /// No encryption: only allowed to a loopback address.
    None,
}

impl Tls {
    /// How the connection is protected, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Tls::Implicit => "implicit TLS",
            Tls::Starttls => "STARTTLS",
            Tls::None => "no TLS",
        }
    }
}

/// An SMTP relay. The password is never stored here, only where to find it.
#[derive(Debug, Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub username: Option<String>,
    pub password: PasswordSource,
    pub ca_file: Option<PathBuf>,
    /// `timeout-seconds`: one limit for every step instead of RFC 5321's.
    pub timeout: Option<Duration>,
    pub hello_name: Option<String>,
    /// Pipeline commands (RFC 2920) when the server offers it.
    pub pipelining: bool,
}

/// How long to wait for each step of an SMTP conversation.
///
/// Without `timeout-seconds` these are RFC 5321 §4.5.3.2's minimums: a
/// relay under load may take minutes to answer, and giving up on the
/// end-of-data reply too early is how duplicates are made. With it, every
/// step uses that one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// The greeting, EHLO, STARTTLS, AUTH, RSET and QUIT.
    pub greeting: Duration,
    pub mail: Duration,
    pub rcpt: Duration,
    /// The reply to DATA (354).
    pub data_start: Duration,
    /// Writing one block of the message.
    pub data_block: Duration,
    /// The reply after the final dot.
    pub data_end: Duration,
}

impl Smtp {
    pub fn timeouts(&self) -> Timeouts {
        let minutes = |m: u64| self.timeout.unwrap_or(Duration::from_secs(m * 60));
        Timeouts {
            connect: self.timeout.unwrap_or(Duration::from_secs(60)),
            greeting: minutes(5),
            mail: minutes(5),
            rcpt: minutes(5),
            data_start: minutes(2),
            data_block: minutes(3),
            data_end: minutes(10),
        }
    }
}

#[derive(Debug, Clone)]
pub enum PasswordSource {
    None,
    Env(String),
    Command(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTransport {
    kind: TransportKind,
    outbox: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum TransportKind {
    Outbox,
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSmtp {
    host: String,
    port: Option<u16>,
    tls: Tls,
    username: Option<String>,
    password_env: Option<String>,
    password_command: Option<String>,
    /// Present only so a password in the file gets a helpful refusal.
    password: Option<toml::Value>,
    ca_file: Option<PathBuf>,
    timeout_seconds: Option<u64>,
    hello_name: Option<String>,
    pipelining: Option<bool>,
}

/// Limits that a send honours exactly. Zero or absent means no limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Sending {
    pub per_second: f64,
    pub per_hour: u64,
    pub per_day: u64,
    /// Messages per batch; a pause of `batch_pause_seconds` follows each batch.
    pub batch_size: u64,
    pub batch_pause_seconds: f64,
    /// Concurrent SMTP connections.
    pub connections: usize,
    /// Messages on one connection before it is closed and reopened.
    pub max_per_connection: u64,
    /// Attempts for a message that meets a temporary (4xx) failure.
    pub retries: u32,
    /// Stop the run after this many failures in a row.
    pub max_consecutive_failures: u32,
}

impl Default for Sending {
    fn default() -> Self {
        Sending {
            per_second: 0.0,
            per_hour: 0,
            per_day: 0,
            batch_size: 0,
            batch_pause_seconds: 0.0,
            connections: 4,
            max_per_connection: 100,
            retries: 5,
            max_consecutive_failures: 10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    list: List,
    #[serde(default)]
    paths: RawPaths,
    transport: RawTransport,
    smtp: Option<RawSmtp>,
    #[serde(default)]
    sending: Sending,
    dkim: Option<RawDkim>,
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

/// The folder a configuration file is in — the project folder, against
/// which every relative path in it is read (`""` for the current folder).
pub fn project_folder(config_path: &Path) -> &Path {
    config_path.parent().unwrap_or(Path::new(""))
}

impl Config {
    /// An issue named by its id (`2022-07-13`) is the file of that name in the
    /// issues folder, when there is no file by the name as given.
    pub fn issue_path(&self, given: PathBuf) -> PathBuf {
        if given.exists() {
            return given;
        }
        let is_id = given.components().count() == 1 && given.extension().is_none();
        let by_id = self.paths.issues.join(format!("{}.toml", given.display()));
        if is_id && by_id.is_file() {
            by_id
        } else {
            given
        }
    }

    /// A path in the project folder: `relative` read against the folder the
    /// configuration file is in, the way every path in it is read.
    pub fn beside(&self, relative: impl AsRef<Path>) -> PathBuf {
        project_folder(&self.path).join(relative)
    }

    /// Reads and validates the configuration file.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let source = Source::read(path).map_err(|error| {
            error.advise(
                "\n  (pass --config FILE, or run newsletter in the folder that holds `newsletter.toml`)",
            )
        })?;
        let raw: RawConfig = source.parse()?;
        let base = project_folder(path).to_path_buf();
        let at = |p: Option<PathBuf>, default: &str| base.join(p.unwrap_or_else(|| default.into()));
        let paths = Paths {
            issues: at(raw.paths.issues, "issues"),
            posts: at(raw.paths.posts, "archive/posts.toml"),
            events: at(raw.paths.events, "archive/events.toml"),
            theme: at(raw.paths.theme, "templates/theme.toml"),
            subscribers: at(raw.paths.subscribers, "subscribers.csv"),
            journal: at(raw.paths.journal, "journal"),
            unsubscribe_log: at(raw.paths.unsubscribe_log, "unsubscribes.log"),
        };
        let transport = match raw.transport.kind {
            TransportKind::Outbox => Transport::Outbox {
                dir: at(raw.transport.outbox, "outbox"),
            },
            TransportKind::Smtp => {
                let Some(smtp) = raw.smtp else {
                    return Err(Finding::error("invalid-config", path, "`transport.kind` is `smtp` but there is no [smtp] table; add one with `host`, `port` and `tls`".to_string()).into());
                };
                Transport::Smtp(resolve_smtp(smtp, &base, path, &source.text)?)
            }
        };
        let config = Config {
            path: path.to_path_buf(),
            list: raw.list,
            paths,
            transport,
            sending: raw.sending,
            dkim: raw.dkim.map(|d| Dkim {
                selector: d.selector,
                domain: d.domain.to_ascii_lowercase(),
                private_key_file: base.join(d.private_key_file),
                algorithm: d.algorithm,
            }),
        };
        config.validate(&source.text)?;
        Ok(config)
    }

    fn validate(&self, text: &str) -> Result<(), LoadError> {
        // `FILE:LINE` of a key, for errors that point at it.
        let at = |key: &str| invalid_at(&self.path, text, key);
        for (key, value) in [
            ("list.site-url", &self.list.site_url),
            ("list.post-url", &self.list.post_url),
            ("list.donate-url", &self.list.donate_url),
            ("list.web-version-url", &self.list.web_version_url),
            ("list.unsubscribe-url", &self.list.unsubscribe_url),
        ] {
            if !value.starts_with("https://") {
                return Err(at(key)
                    .says(format!(
                        "`{key}` is `{value}`; it must be an absolute https:// URL"
                    ))
                    .into());
            }
        }
        for (key, value, placeholder) in [
            ("list.post-url", &self.list.post_url, "{id}"),
            (
                "list.web-version-url",
                &self.list.web_version_url,
                "{issue}",
            ),
            (
                "list.unsubscribe-url",
                &self.list.unsubscribe_url,
                "{token}",
            ),
        ] {
            if !value.contains(placeholder) {
                return Err(at(key)
                    .says(format!(
                        "`{key}` must contain `{placeholder}`, which is replaced per item"
                    ))
                    .into());
            }
        }
        if self.list.id.is_empty()
            || !self
                .list
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(at("list.id")
                .says(format!(
                    "`list.id` is `{}`; use a domain-like id such as `supporters.example.org`",
                    self.list.id
                ))
                .into());
        }
        if self
            .list
            .unsubscribe_mailto
            .parse::<lettre::Address>()
            .is_err()
        {
            return Err(at("list.unsubscribe-mailto")
                .says(format!(
                    "`list.unsubscribe-mailto` is `{}`, which is not an email address",
                    self.list.unsubscribe_mailto
                ))
                .into());
        }
        let s = &self.sending;
        if s.connections == 0 || s.connections > 64 {
            return Err(at("sending.connections")
                .says("`sending.connections` must be between 1 and 64".to_string())
                .into());
        }
        let valid = |v: f64| v.is_finite() && v >= 0.0;
        if !valid(s.per_second) || !valid(s.batch_pause_seconds) {
            return Err(at(if valid(s.per_second) {
                "sending.batch-pause-seconds"
            } else {
                "sending.per-second"
            })
            .says(
                "`sending.per-second` and `sending.batch-pause-seconds` must be zero or more"
                    .to_string(),
            )
            .into());
        }
        if s.retries == 0 {
            return Err(at("sending.retries")
                .says("`sending.retries` must be at least 1 (it counts attempts)".to_string())
                .into());
        }
        if s.max_consecutive_failures == 0 {
            return Err(at("sending.max-consecutive-failures")
                .says("`sending.max-consecutive-failures` must be at least 1".to_string())
                .into());
        }
        self.validate_header_values(&at)?;
        self.validate_numbers(&at)
    }

    /// The unsubscribe secret from the environment, if set and non-empty.
    /// Values that reach a header or a link: no line breaks or other
    /// control characters, and nothing that would end a `<…>` in
    /// `List-Unsubscribe`.
    fn validate_header_values(&self, at: &dyn Fn(&str) -> Finding) -> Result<(), LoadError> {
        let l = &self.list;
        let from = l.from.to_string();
        let reply_to = l
            .reply_to
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default();
        for (key, value) in [
            ("list.name", l.name.as_str()),
            ("list.id", &l.id),
            ("list.from", &from),
            ("list.reply-to", &reply_to),
            ("list.unsubscribe-mailto", &l.unsubscribe_mailto),
            ("list.site-url", &l.site_url),
            ("list.post-url", &l.post_url),
            ("list.donate-url", &l.donate_url),
            ("list.web-version-url", &l.web_version_url),
            ("list.unsubscribe-url", &l.unsubscribe_url),
        ] {
            if let Some(c) = value.chars().find(|c| c.is_control()) {
                return Err(at(key).says(format!("`{key}` contains the control character {:?} (a line break would start a new header); remove it", c)).into());
            }
        }
        for (key, value) in [
            ("list.site-url", &l.site_url),
            ("list.post-url", &l.post_url),
            ("list.donate-url", &l.donate_url),
            ("list.web-version-url", &l.web_version_url),
            ("list.unsubscribe-url", &l.unsubscribe_url),
        ] {
            // A `,` would separate another target in `List-Unsubscribe`.
            let list_header = key == "list.unsubscribe-url";
            if let Some(c) = value.chars().find(|c| {
                c.is_whitespace()
                    || matches!(c, '<' | '>' | '"' | '\\' | '`')
                    || (list_header && *c == ',')
            }) {
                return Err(at(key).says(format!("`{key}` `{value}` contains `{c}`, which a URL may not (in `List-Unsubscribe` it would add another target); percent-encode it or remove it")).into());
            }
        }
        Ok(())
    }

    /// Every number within a range that makes sense, so none can overflow.
    fn validate_numbers(&self, at: &dyn Fn(&str) -> Finding) -> Result<(), LoadError> {
        let s = &self.sending;
        if !(s.per_second == 0.0 || (0.01..=100_000.0).contains(&s.per_second)) {
            return Err(at("sending.per-second")
                .says(format!(
                    "`sending.per-second` is {}; use 0 (no limit) or 0.01 to 100000",
                    s.per_second
                ))
                .into());
        }
        if !(0.0..=86_400.0).contains(&s.batch_pause_seconds) {
            return Err(at("sending.batch-pause-seconds")
                .says(format!(
                    "`sending.batch-pause-seconds` is {}; use 0 to 86400 (a day)",
                    s.batch_pause_seconds
                ))
                .into());
        }
        if s.retries > 100 {
            return Err(at("sending.retries")
                .says(format!("`sending.retries` is {}; use 1 to 100", s.retries))
                .into());
        }
        if s.max_per_connection == 0 {
            return Err(at("sending.max-per-connection")
                .says("`sending.max-per-connection` must be at least 1".to_string())
                .into());
        }
        Ok(())
    }

    pub fn unsubscribe_secret(&self) -> Option<String> {
        std::env::var(&self.list.unsubscribe_secret_env)
            .ok()
            .filter(|s| !s.is_empty())
    }

    /// The error for a missing unsubscribe secret: what cannot be done
    /// (`cannot`), which variable is read and where the configuration
    /// names it, how to make a secret (unless `checking` links already
    /// sent, which need the one they were made with) and where to keep it.
    pub fn missing_secret(&self, cannot: &str, checking: bool) -> String {
        let var = &self.list.unsubscribe_secret_env;
        let file = self.path.display();
        let named = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| key_line(&text, "list.unsubscribe-secret-env"))
            .map_or_else(
                || format!("the default of `unsubscribe-secret-env` in [list] of `{file}`"),
                |line| format!("named by `unsubscribe-secret-env` at {file}:{line}"),
            );
        let make = if checking {
            format!(
                "export it with the secret the issues were sent with (`export {var}=…`); if none were sent yet, make one with `openssl rand -base64 32`"
            )
        } else {
            format!(
                "make a secret once with `openssl rand -base64 32` and export it before you run this (`export {var}=…`); use the same one for every issue, as the links in issues already sent are checked with it"
            )
        };
        format!(
            "the unsubscribe secret `{var}` is not set, so {cannot}. `{var}` is an environment variable ({named}); {make}. Keep the secret out of the project folder (in a password manager, or the sending machine's environment), never in `{file}` or the repository"
        )
    }

    /// Whether the From domain aligns with the DKIM domain (DMARC relaxed
    /// alignment: the same domain or a subdomain of it).
    pub fn dkim_aligned(&self) -> bool {
        self.dkim.as_ref().is_none_or(|d| {
            let from = self.from_domain().to_ascii_lowercase();
            from == d.domain || from.ends_with(&format!(".{}", d.domain))
        })
    }

    /// Domain of the From address, used in Message-IDs.
    pub fn from_domain(&self) -> &str {
        self.list.from.email.domain()
    }
}

fn resolve_smtp(raw: RawSmtp, base: &Path, path: &Path, text: &str) -> Result<Smtp, LoadError> {
    let at = |key: &str| invalid_at(path, text, key);
    if raw.password.is_some() {
        return Err(Finding::error(
            "password-in-file",
            path,
            "[smtp] has a `password`; never store it in the file. Remove it, set `password-env = \"NEWSLETTER_SMTP_PASSWORD\"` and export that variable (or use `password-command`)",
        )
        .into());
    }
    let password = match (raw.password_env, raw.password_command) {
        (Some(_), Some(_)) => {
            return Err(Finding::error(
                "invalid-config",
                path,
                "[smtp] has both `password-env` and `password-command`; keep one",
            )
            .into());
        }
        (Some(env), None) => PasswordSource::Env(env),
        (None, Some(cmd)) => PasswordSource::Command(cmd),
        (None, None) => PasswordSource::None,
    };
    if raw.username.is_some() && matches!(password, PasswordSource::None) {
        return Err(Finding::error(
            "missing-password",
            path,
            "[smtp] has a `username` but no `password-env` or `password-command`",
        )
        .into());
    }
    if raw.tls == Tls::None && !is_loopback(&raw.host) {
        return Err(Finding::error(
            "tls-disabled",
            path,
            format!(
                "[smtp] `tls = \"none\"` to `{}` would send passwords and addresses in clear text; use `tls = \"starttls\"` (port 587) or `\"implicit\"` (port 465). Plain SMTP is only allowed to 127.0.0.1 or localhost",
                raw.host
            ),
        )
        .into());
    }
    if let Some(name) = &raw.hello_name
        && !is_host_name(name)
    {
        return Err(at("smtp.hello-name").says(format!("`smtp.hello-name` is `{}`; it is sent in the SMTP greeting, so it must be a host name like `mail.example.org` (letters, digits, `-` and `.`) or an address literal like `[192.0.2.1]`", name.escape_debug())).into());
    }
    if let Some(seconds) = raw.timeout_seconds
        && !(1..=3600).contains(&seconds)
    {
        return Err(at("smtp.timeout-seconds")
            .says(format!(
                "`smtp.timeout-seconds` is {seconds}; use 1 to 3600"
            ))
            .into());
    }
    let port = raw.port.unwrap_or(match raw.tls {
        Tls::Implicit => 465,
        Tls::Starttls => 587,
        Tls::None => 25,
    });
    Ok(Smtp {
        host: raw.host,
        port,
        tls: raw.tls,
        username: raw.username,
        password,
        ca_file: raw.ca_file.map(|p| base.join(p)),
        timeout: raw.timeout_seconds.map(|s| Duration::from_secs(s.max(1))),
        hello_name: raw.hello_name,
        pipelining: raw.pipelining.unwrap_or(true),
    })
}

/// A host name (RFC 5321 `Domain`) or an address literal `[…]`.
fn is_host_name(name: &str) -> bool {
    if let Some(literal) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        let ip = literal.strip_prefix("IPv6:").unwrap_or(literal);
        return ip.parse::<IpAddr>().is_ok();
    }
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// An `invalid-config` finding at `key`'s line (or the file when the key is
/// not written), for [`Finding::says`] to give its message.
fn invalid_at(path: &Path, text: &str, key: &str) -> Finding {
    let finding = Finding::error("invalid-config", path, "");
    match key_line(text, key) {
        Some(line) => finding.at_line(line),
        None => finding,
    }
}

/// True for `localhost` and loopback IP addresses.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Smtp {
    /// Reads the password from its source. The value is never logged.
    pub fn password(&self) -> Result<Option<String>> {
        match &self.password {
            PasswordSource::None => Ok(None),
            PasswordSource::Env(name) => std::env::var(name).map(Some).map_err(|_| {
                anyhow::anyhow!(
                    "the SMTP password variable `{name}` is not set; export it before sending"
                )
            }),
            PasswordSource::Command(command) => {
                let output = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .with_context(|| format!("cannot run the password command `{command}`"))?;
                if !output.status.success() {
                    bail!(
                        "the password command `{command}` failed ({})",
                        output.status
                    );
                }
                let text = String::from_utf8(output.stdout)
                    .context("the password command printed something that is not UTF-8")?;
                Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
            }
        }
    }
}

fn de_mailbox<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Mailbox, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|e| {
        serde::de::Error::custom(format!(
            "`{text}` is not an address like `Name <name@example.org>` ({e})"
        ))
    })
}

fn de_opt_mailbox<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Mailbox>, D::Error> {
    de_mailbox(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]"));
        assert!(!is_loopback("smtp.example.org"));
        assert!(!is_loopback("10.0.0.1"));
    }

    #[test]
    fn host_names_and_address_literals() {
        assert!(is_host_name("mail.example.org"));
        assert!(is_host_name("[192.0.2.1]") && is_host_name("[IPv6:::1]"));
        for bad in [
            "",
            "a b",
            "x\r\nRSET",
            "-a.org",
            "a..org",
            "[nope]",
            "a_b.org",
        ] {
            assert!(!is_host_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn key_lines_are_found_in_their_table() {
        let text = "[list]\nname = 1\n\n[sending]\n# name = 2\nper-second = 3\n";
        assert_eq!(key_line(text, "list.name"), Some(2));
        assert_eq!(key_line(text, "sending.per-second"), Some(6));
        assert_eq!(key_line(text, "sending.name"), None);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        const EXAMPLE: &str = include_str!("../../newsletter.toml");

        /// The example configuration with one value replaced.
        fn with(key: &str, value: &str) -> String {
            let mut out = String::new();
            for line in EXAMPLE.lines() {
                if line.starts_with(&format!("{key} =")) {
                    out.push_str(&format!("{key} = {value}\n"));
                } else {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out
        }

        fn load(text: &str) -> Result<Config> {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("newsletter.toml");
            std::fs::write(&path, text).unwrap();
            Ok(Config::load(&path)?)
        }

        fn toml_string(s: &str) -> String {
            toml::Value::String(s.to_string()).to_string()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            /// Whatever string a header value holds, the configuration
            /// either refuses it or holds no line break, and an accepted
            /// unsubscribe URL cannot add a `List-Unsubscribe` target.
            #[test]
            fn accepted_header_values_are_header_safe(
                key in prop::sample::select(vec!["name", "id", "unsubscribe-url", "web-version-url", "unsubscribe-mailto", "from"]),
                value in "(https://[a-z.]{1,10}/)?[ -~\r\n\t\u{0}\u{85}\u{2028}<>,\"{}]{0,40}(\\{token\\}|\\{issue\\})?",
            ) {
                if let Ok(config) = load(&with(key, &toml_string(&value))) {
                    let l = &config.list;
                    for v in [&l.name, &l.id, &l.unsubscribe_url, &l.web_version_url, &l.unsubscribe_mailto] {
                        prop_assert!(!v.chars().any(char::is_control), "{v:?}");
                    }
                    prop_assert!(!l.unsubscribe_url.contains(['<', '>', ',', ' ']), "{:?}", l.unsubscribe_url);
                }
            }

            /// Any number for a rate or a pause loads or is refused; none
            /// panics, and an accepted one is in range.
            #[test]
            fn numbers_load_or_are_refused(
                key in prop::sample::select(vec!["per-second", "batch-pause-seconds"]),
                value in prop_oneof![any::<f64>(), -1e3..1e6f64, Just(1e-30), Just(f64::MAX)],
            ) {
                let text = format!("{value:?}");
                if let Ok(config) = load(&with(key, &text)) {
                    let s = &config.sending;
                    prop_assert!(s.per_second == 0.0 || (0.01..=100_000.0).contains(&s.per_second));
                    prop_assert!((0.0..=86_400.0).contains(&s.batch_pause_seconds));
                }
            }
        }
    }
}
