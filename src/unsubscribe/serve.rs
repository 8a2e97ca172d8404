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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::config::{Config, List};
use crate::token::Signer;
use crate::unsubscribe::http::{self, Request, Response};
use crate::unsubscribe::link;
use crate::unsubscribe::log::Log;
use crate::unsubscribe::pages;

/// Connections served at once; more get 503.
const MAX_CONNECTIONS: usize = 32;
/// How long Ctrl-C waits for requests in progress.
const STOP_GRACE: Duration = Duration::from_secs(5);

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

    /// The token of a request on this route (maybe empty); None for another path.
    pub fn token(&self, request: &Request) -> Option<String> {
        match self {
            Route::InPath { prefix, suffix } => {
                let middle = request.path().strip_prefix(prefix.as_str())?;
                let middle = middle.strip_suffix(suffix.as_str())?;
                let middle = match suffix.is_empty() {
                    true => middle.strip_suffix('/').unwrap_or(middle),
                    false => middle,
                };
                (!middle.contains('/')).then(|| link::percent_decode(middle))
            }
            Route::InQuery { path, key } => (request.path() == path)
                .then(|| http::form_value(request.query(), key).unwrap_or_default()),
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

struct Server {
    list: List,
    signer: Signer,
    route: Route,
    log: Log,
    stop: AtomicBool,
    connections: AtomicUsize,
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
    let listener = TcpListener::bind(bind).with_context(|| {
        format!("cannot listen on {bind}: is another server using it? (`--bind 127.0.0.1:0` picks a free port)")
    })?;
    let local = listener.local_addr()?;
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
    let server = Arc::new(Server {
        list: config.list.clone(),
        signer,
        route,
        log,
        stop: AtomicBool::new(false),
        connections: AtomicUsize::new(0),
    });
    let signal = Arc::clone(&server);
    std::thread::spawn(move || signal.stop_on_signal(local));

    for stream in listener.incoming() {
        if server.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if server.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            server.connections.fetch_sub(1, Ordering::SeqCst);
            let _ = Response::text(503, "busy; try again in a minute\n").send(stream, true);
            continue;
        }
        let server = Arc::clone(&server);
        std::thread::spawn(move || {
            server.handle(stream);
            server.connections.fetch_sub(1, Ordering::SeqCst);
        });
    }
    let waited = Instant::now();
    while server.connections.load(Ordering::SeqCst) > 0 && waited.elapsed() < STOP_GRACE {
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

impl Server {
    /// Waits for Ctrl-C or SIGTERM, then wakes the accept loop to stop it.
    fn stop_on_signal(&self, local: SocketAddr) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
        else {
            return;
        };
        let stopped = runtime.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut term) = signal(SignalKind::terminate()) else {
                    return tokio::signal::ctrl_c().await.is_ok();
                };
                tokio::select! {
                    result = tokio::signal::ctrl_c() => result.is_ok(),
                    _ = term.recv() => true,
                }
            }
            #[cfg(not(unix))]
            {
                tokio::signal::ctrl_c().await.is_ok()
            }
        });
        if stopped {
            self.stop.store(true, Ordering::SeqCst);
            let wake = match local.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
                ip => ip,
            };
            let _ = TcpStream::connect_timeout(&SocketAddr::new(wake, local.port()), STOP_GRACE);
        }
    }

    /// Answers one connection and writes its access log line: method,
    /// status and the verified address only.
    fn handle(&self, mut stream: TcpStream) {
        let mut address = None;
        let mut method = "-".to_string();
        let mut head_only = false;
        let response = match http::read(&mut stream, |request| {
            // Only a POST on the route has a body worth reading.
            request.method == "POST" && self.route.token(request).is_some()
        }) {
            Ok(request) => {
                method = request.method.clone();
                head_only = request.method == "HEAD";
                self.answer(&request, &mut address)
            }
            Err(refusal) if refusal.status == http::SILENT => return,
            Err(refusal) => {
                method = refusal.method.unwrap_or(method);
                let status = refusal.status;
                Response::text(status, &format!("{}\n", short_reason(status)))
            }
        };
        eprintln!(
            "{method} {} {}",
            response.status,
            address.as_deref().unwrap_or("-")
        );
        // A client that goes away mid-answer is not worth reporting.
        let _ = response.send(stream, !head_only);
    }

    fn answer(&self, request: &Request, verified: &mut Option<String>) -> Response {
        let Some(token) = self.route.token(request) else {
            return Response::text(404, "not found\n");
        };
        if !matches!(request.method.as_str(), "GET" | "HEAD" | "POST") {
            return Response::text(405, "only GET and POST are answered here\n");
        }
        let address = match link::check(&self.signer, &token) {
            Ok(address) => address,
            Err(_) => return Response::html(400, pages::invalid(&self.list)),
        };
        *verified = Some(address.clone());
        if request.method != "POST" {
            return Response::html(200, pages::confirm(&self.list, &address));
        }
        match one_click(request) {
            Ok(true) => {}
            Ok(false) => {
                return Response::text(
                    400,
                    "this request did not ask to unsubscribe: send `List-Unsubscribe=One-Click` in the body\n",
                );
            }
            Err(status) => return Response::text(status, "send the body as a form\n"),
        }
        if let Err(error) = self.log.record(&address) {
            eprintln!("error: {error:#}");
            return Response::html(500, pages::failed(&self.list));
        }
        let browser = request
            .header("accept")
            .is_some_and(|accept| accept.contains("text/html"));
        if browser {
            Response::html(200, pages::done(&self.list, &address))
        } else {
            Response::text(200, "You are unsubscribed.\n")
        }
    }
}

/// Whether a POST body says `List-Unsubscribe=One-Click` (RFC 8058), as a
/// URL-encoded or multipart form; `Err` for another content type (415).
fn one_click(request: &Request) -> Result<bool, u16> {
    let content_type = request.header("content-type").unwrap_or_default();
    let kind = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let value = match kind.as_str() {
        "" | "application/x-www-form-urlencoded" => {
            http::form_value(&String::from_utf8_lossy(&request.body), "List-Unsubscribe")
        }
        "multipart/form-data" => {
            http::multipart_value(&request.body, content_type, "List-Unsubscribe")
        }
        _ => return Err(415),
    };
    Ok(value.is_some_and(|v| v.trim().eq_ignore_ascii_case("One-Click")))
}

fn short_reason(status: u16) -> &'static str {
    match status {
        408 => "the request took too long",
        411 => "send a Content-Length",
        413 => "the request body is too large",
        431 => "the request headers are too large",
        _ => "bad request",
    }
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
}
