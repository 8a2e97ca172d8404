//! `newsletter unsubscribe serve`: the one-click unsubscribe endpoint
//! (RFC 8058), meant to sit behind the charity's HTTPS reverse proxy.
//!
//! It answers on the path of `unsubscribe-url`. A POST with
//! `List-Unsubscribe=One-Click` and a valid token appends the address to the
//! log (synced) and answers 200; a GET only shows a page with a button that
//! makes that POST, so link scanners unsubscribe nobody. The subscriber CSV
//! is never touched here: `newsletter unsubscribe --from-file LOG` applies
//! the log.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hyper::header::{self, HeaderValue};
use tokio::sync::oneshot;

use crate::http::{self, Limits, Settings};
use crate::model::config::{Config, List};
use crate::token::Signer;
use crate::unsubscribe::log::Log;

/// Connections served at once; more get a 503 at once. A waiting
/// connection costs a few kilobytes and is closed when its request has not
/// come in [`REQUEST_TIME`], so slow clients need thousands at once to fill
/// this.
const MAX_CONNECTIONS: usize = 4096;
/// Largest request head (request line and headers).
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its whole request.
const REQUEST_TIME: Duration = Duration::from_secs(10);
/// Time a whole exchange may take, the answer included.
const EXCHANGE_TIME: Duration = Duration::from_secs(15);

/// What `serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: SocketAddr,
    /// The log [default: `unsubscribes.log` next to the configuration].
    pub log: Option<PathBuf>,
    pub allow_remote: bool,
}

/// Where the token sits in the request, from `unsubscribe-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/prefix/{token}/suffix`.
    InPath { prefix: String, suffix: String },
    /// `/path?key={token}`.
    InQuery { path: String, key: String },
}

impl Route {
    /// Reads the route from an `unsubscribe-url` pattern.
    pub fn parse(pattern: &str) -> Result<Route> {
        let rest = pattern.split_once("://").map_or(pattern, |(_, rest)| rest);
        let rest = rest.split('#').next().unwrap_or(rest);
        let target = rest.find('/').map_or("/", |i| &rest[i..]);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if let Some((prefix, suffix)) = path.split_once("{token}") {
            return Ok(Route::InPath {
                prefix: prefix.to_string(),
                suffix: suffix.to_string(),
            });
        }
        if let Some(key) = query
            .split('&')
            .find_map(|pair| pair.strip_suffix("={token}"))
        {
            return Ok(Route::InQuery {
                path: path.to_string(),
                key: key.to_string(),
            });
        }
        bail!(
            "`list.unsubscribe-url` is `{pattern}`; for `unsubscribe serve` `{{token}}` must be a path segment or a query value"
        )
    }

    /// The token of a request for `path` and `query` on this route (maybe
    /// empty); None for another path.
    pub fn token(&self, path: &str, query: &str) -> Option<String> {
        match self {
            Route::InPath { prefix, suffix } => {
                let middle = path.strip_prefix(prefix.as_str())?;
                let middle = middle.strip_suffix(suffix.as_str())?;
                let middle = match suffix.is_empty() {
                    true => middle.strip_suffix('/').unwrap_or(middle),
                    false => middle,
                };
                (!middle.contains('/')).then(|| {
                    percent_encoding::percent_decode_str(middle)
                        .decode_utf8_lossy()
                        .into_owned()
                })
            }
            Route::InQuery { path: on, key } => (path == on)
                .then(|| super::http::form_value(query.as_bytes(), key).unwrap_or_default()),
        }
    }

    /// The route with `{token}` in it, for people.
    pub fn shown(&self) -> String {
        match self {
            Route::InPath { prefix, suffix } => format!("{prefix}{{token}}{suffix}"),
            Route::InQuery { path, key } => format!("{path}?{key}={{token}}"),
        }
    }
}

/// What the answers need.
pub struct Endpoint {
    pub list: List,
    pub signer: Signer,
    pub route: Route,
    recorder: mpsc::Sender<(String, oneshot::Sender<Result<(), String>>)>,
}

impl Endpoint {
    /// Appends `address` to the log and syncs it, on the log's own thread
    /// (so that a slow disk holds up no other connection).
    pub async fn record(&self, address: &str) -> Result<(), String> {
        let (done, result) = oneshot::channel();
        self.recorder
            .send((address.to_string(), done))
            .map_err(|_| "the unsubscribe log is closed".to_string())?;
        result
            .await
            .map_err(|_| "the unsubscribe log is closed".to_string())?
    }
}

/// The thread that writes the log: one line, synced, per request, in the
/// order they come.
fn recorder(log: Log) -> mpsc::Sender<(String, oneshot::Sender<Result<(), String>>)> {
    let (jobs, queue) = mpsc::channel::<(String, oneshot::Sender<Result<(), String>>)>();
    std::thread::spawn(move || {
        for (address, done) in queue {
            let _ = done.send(log.record(&address).map_err(|e| format!("{e:#}")));
        }
    });
    jobs
}

/// Serves until Ctrl-C (or SIGTERM); the first line printed is the address.
pub fn run(config: &Config, signer: Signer, options: &ServeOptions) -> Result<ExitCode> {
    let bind = options.bind;
    if !bind.ip().is_loopback() && !options.allow_remote {
        bail!(
            "`--bind {bind}` would take requests from other machines; the endpoint is meant to sit behind your HTTPS reverse proxy on this machine. Bind 127.0.0.1, or pass --allow-remote if the proxy runs elsewhere (and keep the port closed to everyone else)"
        );
    }
    let route = Route::parse(&config.list.unsubscribe_url)?;
    let log_path = options
        .log
        .clone()
        .unwrap_or_else(|| config.paths.unsubscribe_log.clone());
    let log = Log::open(&log_path)?;
    let runtime = http::runtime().context("cannot start the server")?;
    runtime.block_on(async {
        let listener = http::listen(bind).with_context(|| {
            format!("cannot listen on {bind}: is another server using it? (`--bind 127.0.0.1:0` picks a free port)")
        })?;
        let local = listener.local_addr()?;
        let stop = http::stop_on_signal()?;
        {
            let mut out = io::stdout().lock();
            writeln!(out, "http://{local}{}", route.shown())?;
            out.flush()?;
        }
        eprintln!(
            "Serving `{}` on http://{local}; unsubscribes go to `{}`. Ctrl-C stops.",
            config.list.unsubscribe_url,
            log.path().display()
        );
        let endpoint = Arc::new(Endpoint {
            list: config.list.clone(),
            signer,
            route,
            recorder: recorder(log),
        });
        http::serve(listener, settings(), stop, move |request, send_by| {
            super::http::answer(Arc::clone(&endpoint), request, send_by)
        })
        .await;
        anyhow::Ok(())
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    eprintln!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

/// Styles inline only, forms only to this site, no framing.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn settings() -> Settings {
    let limits = Limits {
        connections: MAX_CONNECTIONS,
        send_time: REQUEST_TIME,
        total_time: EXCHANGE_TIME,
        head_bytes: MAX_HEAD,
    };
    let no_index = (
        header::HeaderName::from_static("x-robots-tag"),
        HeaderValue::from_static("noindex"),
    );
    Settings::private(limits, CSP, vec![no_index], "busy; try again in a minute")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_from_patterns() {
        let route = Route::parse("https://news.example.org/unsubscribe/{token}").unwrap();
        assert_eq!(
            route,
            Route::InPath {
                prefix: "/unsubscribe/".into(),
                suffix: String::new()
            }
        );
        assert_eq!(route.shown(), "/unsubscribe/{token}");
        let route = Route::parse("https://news.example.org/u?list=a&t={token}").unwrap();
        assert_eq!(
            route,
            Route::InQuery {
                path: "/u".into(),
                key: "t".into()
            }
        );
        assert!(Route::parse("https://news.example.org/u#{token}").is_err());
    }

    #[test]
    fn tokens_from_requests() {
        let route = Route::parse("https://news.example.org/unsubscribe/{token}").unwrap();
        assert_eq!(
            route.token("/unsubscribe/em9l.c2ln%2D", "").as_deref(),
            Some("em9l.c2ln-")
        );
        assert_eq!(
            route.token("/unsubscribe/em9l/", "").as_deref(),
            Some("em9l")
        );
        assert_eq!(route.token("/unsubscribe/a/b", ""), None);
        assert_eq!(route.token("/other/em9l", ""), None);
        let route = Route::parse("https://news.example.org/u?list=a&t={token}").unwrap();
        assert_eq!(
            route.token("/u", "list=a&t=em9l%2Ec").as_deref(),
            Some("em9l.c")
        );
        assert_eq!(route.token("/u", "list=a").as_deref(), Some(""));
        assert_eq!(route.token("/v", "t=em9l"), None);
    }
}
