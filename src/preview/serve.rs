//! `newsletter preview --serve`: a local page that shows an issue as it
//! would be sent — at desktop and phone widths, with its text part, headers,
//! size and the findings of `check` — and reloads itself when an input
//! file changes.
//!
//! A small `std::net` server: 127.0.0.1 only, a thread per connection,
//! `GET` only, requests bounded in size and time. Every page is rendered
//! afresh from the files, so a broken file shows its error on the page and
//! the next save recovers. A watcher thread polls the inputs' modification
//! times and bumps a generation counter; open pages listen on `/events`
//! (Server-Sent Events) and reload when it moves.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use base64::Engine;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{Composed, Preview, compose};
use crate::check::{self, CheckRequest, Format};
use crate::config::Config;
use crate::finding::{Finding, Severity};
use crate::subscribers::{Status, SubscriberReader};

/// The longest request head accepted; a preview needs far less.
const MAX_REQUEST: usize = 8 * 1024;
/// Connections served at once; more get 503.
const MAX_CONNECTIONS: usize = 32;
/// How often the watcher looks at the inputs.
const POLL: Duration = Duration::from_millis(250);
/// How long an idle `/events` stream waits before a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Subscribed rows offered in the picker.
const PICKER_ROWS: usize = 50;
/// The frames: wide enough for the 600 px container and its page margin,
/// and a common phone.
const DESKTOP_WIDTH: u32 = 680;
const PHONE_WIDTH: u32 = 375;
/// Gmail clips a message whose HTML is larger than about this.
const GMAIL_CLIP: usize = 102 * 1024;

/// Serves the preview page until Ctrl-C; prints its address first.
pub fn run(config: &Config, p: &Preview, port: u16) -> Result<ExitCode> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).with_context(|| {
        format!(
            "cannot listen on 127.0.0.1:{port} (is another preview running? `--port 0` picks a free port)"
        )
    })?;
    let port = listener.local_addr()?.port();
    let server = Arc::new(Server {
        config: config.path.clone(),
        issue: p.issue.clone(),
        as_email: p.as_email.clone(),
        subscribers: p.subscribers.clone(),
        port,
        generation: Mutex::new(1),
        changed: Condvar::new(),
        stop: AtomicBool::new(false),
        connections: AtomicUsize::new(0),
    });
    server.stop_on_ctrl_c()?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "http://127.0.0.1:{port}/")?;
        out.flush()?;
    }
    eprintln!(
        "Previewing `{}`; the page updates when you save a file. Ctrl-C stops.",
        p.issue.display()
    );
    let watcher = Arc::clone(&server);
    std::thread::spawn(move || watcher.watch());

    for stream in listener.incoming() {
        if server.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let Some(guard) = ConnectionGuard::enter(&server) else {
            let _ = respond(stream, 503, "text/plain", b"too many connections\n");
            continue;
        };
        let server = Arc::clone(&server);
        std::thread::spawn(move || {
            let _guard = guard;
            // A client that goes away mid-answer is not worth reporting.
            let _ = server.handle(stream);
        });
    }
    eprintln!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

struct Server {
    config: PathBuf,
    issue: PathBuf,
    as_email: Option<String>,
    subscribers: Option<PathBuf>,
    port: u16,
    /// Bumped whenever an input changes; pages reload when it moves.
    generation: Mutex<u64>,
    changed: Condvar,
    stop: AtomicBool,
    connections: AtomicUsize,
}

/// Counts a connection while it is being served.
struct ConnectionGuard(Arc<Server>);

impl ConnectionGuard {
    fn enter(server: &Arc<Server>) -> Option<ConnectionGuard> {
        let before = server.connections.fetch_add(1, Ordering::SeqCst);
        let guard = ConnectionGuard(Arc::clone(server));
        (before < MAX_CONNECTIONS).then_some(guard)
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A file's modification time and size, or `None` when it is missing.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Server {
    fn generation(&self) -> u64 {
        *self.generation.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Polls the inputs and bumps the generation when any changes. The
    /// list comes from the configuration, re-read when it changes; while it
    /// is broken the last good list is watched.
    fn watch(&self) {
        let mut inputs = vec![self.config.clone(), self.issue.clone()];
        let mut config_stamp = None;
        let mut last: Option<Vec<Stamp>> = None;
        while !self.stop.load(Ordering::SeqCst) {
            let now = stamp(&self.config);
            if config_stamp != Some(now) {
                config_stamp = Some(now);
                if let Ok(config) = Config::load(&self.config) {
                    let subscribers = self.subscribers.clone().unwrap_or(config.paths.subscribers);
                    inputs = vec![
                        self.config.clone(),
                        self.issue.clone(),
                        config.paths.posts,
                        config.paths.events,
                        config.paths.theme,
                        subscribers,
                    ];
                }
            }
            let stamps: Vec<Stamp> = inputs.iter().map(|p| stamp(p)).collect();
            if last.as_ref().is_some_and(|last| *last != stamps) {
                *self.generation.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                self.changed.notify_all();
            }
            last = Some(stamps);
            std::thread::sleep(POLL);
        }
    }

    /// Takes over Ctrl-C (SIGINT) now, so that it is ours before the
    /// address is printed; when it comes, stops the accept loop (by
    /// connecting to it) and the event streams.
    fn stop_on_ctrl_c(self: &Arc<Self>) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        #[cfg(unix)]
        let mut interrupt = runtime.block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        })?;
        let server = Arc::clone(self);
        std::thread::spawn(move || {
            #[cfg(unix)]
            let interrupted = runtime.block_on(interrupt.recv()).is_some();
            #[cfg(not(unix))]
            let interrupted = runtime.block_on(tokio::signal::ctrl_c()).is_ok();
            if interrupted {
                server.stop.store(true, Ordering::SeqCst);
                server.changed.notify_all();
                let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, server.port));
            }
        });
        Ok(())
    }

    fn handle(&self, mut stream: TcpStream) -> io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        let request = match read_request(&mut stream)? {
            Ok(request) => request,
            Err((status, why)) => return respond(stream, status, "text/plain", why.as_bytes()),
        };
        // Only pages opened as 127.0.0.1 or localhost: a web site that
        // rebinds its own name to 127.0.0.1 must not read subscribers.
        let host_ok = request.host.as_deref().is_some_and(|host| {
            host == format!("127.0.0.1:{}", self.port) || host == format!("localhost:{}", self.port)
        });
        if !host_ok {
            return respond(stream, 421, "text/plain", b"wrong Host header\n");
        }
        if request.method != "GET" {
            return respond(stream, 405, "text/plain", b"only GET is served\n");
        }
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((&request.target, ""));
        let as_email = query_value(query, "as").filter(|e| !e.trim().is_empty());
        match path {
            "/" => {
                let page = self.page(as_email);
                respond(stream, 200, "text/html; charset=utf-8", page.as_bytes())
            }
            "/email.html" => match self.compose(as_email) {
                Ok(c) => respond(stream, 200, "text/html; charset=utf-8", c.html.as_bytes()),
                Err(e) => respond(
                    stream,
                    500,
                    "text/plain; charset=utf-8",
                    error_text(&e).as_bytes(),
                ),
            },
            "/events" => self.events(stream),
            _ => respond(stream, 404, "text/plain", b"not found\n"),
        }
    }

    /// A Server-Sent Events stream of the generation: the current one at
    /// once, then each new one.
    fn events(&self, mut stream: TcpStream) -> io::Result<()> {
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\n\r\nretry: 500\n\n"
        )?;
        let mut sent = None;
        let mut generation = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            let current = *generation;
            drop(generation);
            if sent != Some(current) {
                write!(stream, "data: {current}\n\n")?;
                sent = Some(current);
            } else {
                // Finds out whether the page is still there.
                stream.write_all(b": still here\n\n")?;
            }
            stream.flush()?;
            generation = self.generation.lock().unwrap_or_else(|e| e.into_inner());
            if *generation == current && !self.stop.load(Ordering::SeqCst) {
                generation = self
                    .changed
                    .wait_timeout(generation, KEEP_ALIVE)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }

    fn compose(&self, as_email: Option<String>) -> Result<Composed> {
        let config = Config::load(&self.config)?;
        compose(
            &config,
            &Preview {
                issue: self.issue.clone(),
                out: None,
                as_email: as_email.or_else(|| self.as_email.clone()),
                subscribers: self.subscribers.clone(),
                serve: None,
            },
        )
    }

    /// The first subscribed addresses, for the picker.
    fn subscribed(&self) -> Vec<String> {
        let path = match &self.subscribers {
            Some(path) => path.clone(),
            None => match Config::load(&self.config) {
                Ok(config) => config.paths.subscribers,
                Err(_) => return Vec::new(),
            },
        };
        let Ok(reader) = SubscriberReader::open(&path) else {
            return Vec::new();
        };
        reader
            .filter_map(Result::ok)
            .filter(|s| s.status == Status::Subscribed)
            .map(|s| s.email)
            .take(PICKER_ROWS)
            .collect()
    }

    /// The whole page, rendered from the files as they are now.
    fn page(&self, as_email: Option<String>) -> String {
        // Read first: a change while rendering makes the page reload again.
        let generation = self.generation();
        let composed = self.compose(as_email.clone());
        let findings = check::check(
            &self.config,
            &CheckRequest {
                issues: vec![self.issue.clone()],
                subscribers: self.subscribers.clone(),
                format: Format::Text,
                strict: false,
            },
        );
        let mut choices = self.subscribed();
        let selected = as_email
            .or_else(|| self.as_email.clone())
            .or_else(|| choices.first().cloned())
            .unwrap_or_default();
        if !selected.is_empty()
            && !choices
                .iter()
                .any(|c| c.eq_ignore_ascii_case(selected.trim()))
        {
            choices.insert(0, selected.clone());
        }
        let (composed, error) = match composed {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(error_text(&e))),
        };
        let headers = composed
            .as_ref()
            .map(|c| headers(&c.message))
            .unwrap_or_default();
        let subject = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("Subject"))
            .map(|(_, value)| value.clone());
        let title = match &subject {
            Some(subject) => format!("Preview: {subject}"),
            None => format!("Preview: {}", self.issue.display()),
        };
        let page = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) }
                    style { (PreEscaped(PAGE_STYLE)) }
                }
                body {
                    header class="bar" {
                        h1 { "Preview of " code { (self.issue.display()) } }
                        form method="get" action="/" {
                            label for="as" { "Personalised for " }
                            select id="as" name="as" onchange="this.form.submit()" {
                                @for email in &choices {
                                    option value=(email) selected[email.eq_ignore_ascii_case(selected.trim())] { (email) }
                                }
                            }
                            noscript { " " button type="submit" { "Show" } }
                        }
                        p id="live" class="live" { "Updates itself when you save a file." }
                    }
                    main {
                        @if let Some(error) = &error {
                            section id="error" class="error" role="alert" {
                                h2 { "This issue cannot be rendered" }
                                pre { (error) }
                                p { "Fix the file and save it; this page updates itself." }
                            }
                        }
                        (findings_section(&findings))
                        @if let Some(c) = &composed {
                            section id="message" {
                                h2 { "Headers" }
                                table id="headers" {
                                    @for (name, value) in &headers {
                                        tr { th scope="row" { (name) } td data-header=(name) { (value) } }
                                    }
                                }
                                p id="size" { (size_line(c)) }
                            }
                            section id="frames" {
                                (frame("desktop", "Desktop", DESKTOP_WIDTH, &c.html))
                                (frame("phone", "Phone", PHONE_WIDTH, &c.html))
                            }
                            section id="text-part" {
                                h2 { "Text part" }
                                pre id="text" { (c.text) }
                            }
                        }
                    }
                    script { (PreEscaped(live_script(generation))) }
                }
            }
        };
        page.into_string()
    }
}

fn frame(id: &str, name: &str, width: u32, html: &str) -> Markup {
    html! {
        figure class="frame" {
            figcaption { (name) ", " (width) " px" }
            // The frame is as tall as the email, inside a box that scrolls,
            // so no scroll bar takes from its width. No scripts run in it;
            // same origin only so that the page can measure it.
            div class="scroll" {
                iframe id=(id) title=(format!("The HTML part at {width} px ({name})"))
                    width=(width) height="600" style=(format!("width:{width}px"))
                    sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"
                    srcdoc=(html) {}
            }
        }
    }
}

fn findings_section(findings: &Result<Vec<Finding>>) -> Markup {
    html! {
        section id="findings" {
            h2 { "Findings of " code { "newsletter check" } }
            @match findings {
                Err(e) => p class="error" { "check could not run: " (error_text(e)) },
                Ok(findings) if findings.is_empty() => p { "No findings." },
                Ok(findings) => ul {
                    @for f in findings {
                        @let severity = match f.severity { Severity::Error => "error", Severity::Warning => "warning" };
                        li class=(severity) data-code=(f.code) {
                            strong { (severity) } " " code { (f.code) } " " (f.location()) ": " (f.message)
                        }
                    }
                },
            }
        }
    }
}

fn size_line(c: &Composed) -> String {
    let kb = |n: usize| format!("{:.1} KB", n as f64 / 1024.0);
    format!(
        "Message size: {} ({} bytes); HTML part {} of the {} at which Gmail clips a message.",
        kb(c.message.len()),
        c.message.len(),
        kb(c.html.len()),
        kb(GMAIL_CLIP)
    )
}

fn error_text(error: &anyhow::Error) -> String {
    format!("{error:#}")
}

/// The top-level headers of a message, unfolded, encoded words decoded.
fn headers(message: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    for (_, value) in &mut out {
        *value = decode_words(value);
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`); the space between two
/// of them is dropped, as the RFC says.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut bytes: Vec<u8> = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        let (before, word) = rest.split_at(start);
        match encoded_word(word) {
            Some((decoded, len)) => {
                if bytes.is_empty() || !before.trim().is_empty() {
                    out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut bytes)));
                    out.push_str(before);
                }
                bytes.extend(decoded);
                rest = &word[len..];
            }
            None => {
                out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut bytes)));
                out.push_str(before);
                out.push_str("=?");
                rest = &word[2..];
            }
        }
    }
    out.push_str(&String::from_utf8_lossy(&bytes));
    out.push_str(rest);
    out
}

/// One encoded word at the start of `s`: its bytes and its length.
fn encoded_word(s: &str) -> Option<(Vec<u8>, usize)> {
    let body = s.strip_prefix("=?")?;
    let (charset, body) = body.split_once('?')?;
    let (encoding, body) = body.split_once('?')?;
    let end = body.find("?=")?;
    let text = &body[..end];
    if text.contains(char::is_whitespace) || charset.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "b" | "B" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
        "q" | "Q" => percent_decode(&text.replace('_', " "), b'=')?,
        _ => return None,
    };
    Some((bytes, 2 + charset.len() + 1 + encoding.len() + 1 + end + 2))
}

/// Decodes `MARK` followed by two hex digits; `None` on a bad escape.
fn percent_decode(text: &str, mark: u8) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == mark {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// A query parameter, form-decoded.
fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| {
            let bytes = percent_decode(&v.replace('+', " "), b'%').unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        })
    })
}

struct Request {
    method: String,
    target: String,
    host: Option<String>,
}

/// Reads a request head; an `Err` inside is the status and reason to send.
fn read_request(stream: &mut TcpStream) -> io::Result<Result<Request, (u16, &'static str)>> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if head.len() > MAX_REQUEST {
            return Ok(Err((431, "request too large\n")));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(Err((400, "incomplete request\n")));
        }
        head.extend_from_slice(&chunk[..n]);
    };
    let Ok(head) = std::str::from_utf8(&head[..end]) else {
        return Ok(Err((400, "request is not UTF-8\n")));
    };
    let mut lines = head.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Ok(Err((400, "bad request line\n")));
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Ok(Err((400, "bad request line\n")));
    }
    let host = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("host")
            .then(|| value.trim().to_string())
    });
    Ok(Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        host,
    }))
}

fn respond(mut stream: TcpStream, status: u16, content_type: &str, body: &[u8]) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nContent-Security-Policy: {CSP}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 405 {
        head.push_str("Allow: GET\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Inline styles and scripts only; images from anywhere (as a mail app
/// shows them); nothing may frame the page. The frames' `srcdoc` documents
/// inherit this.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src https: http: data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn live_script(generation: u64) -> String {
    format!(
        r#"const generation = "{generation}";
const live = document.getElementById("live");
const events = new EventSource("/events");
events.onmessage = (e) => {{
  if (e.data !== generation) {{ events.close(); live.textContent = "Updating…"; location.reload(); }}
}};
events.onopen = () => {{ live.textContent = "Updates itself when you save a file."; live.className = "live"; }};
events.onerror = () => {{ live.textContent = "Not connected to newsletter preview --serve; retrying…"; live.className = "live lost"; }};
for (const frame of document.querySelectorAll("iframe")) {{
  const fit = () => {{
    const root = frame.contentDocument.documentElement;
    frame.style.height = root.scrollHeight + "px";
    new ResizeObserver(() => {{ frame.style.height = root.scrollHeight + "px"; }}).observe(root);
  }};
  if (frame.contentDocument && frame.contentDocument.readyState === "complete") fit();
  else frame.addEventListener("load", fit, {{ once: true }});
}}
"#
    )
}

const PAGE_STYLE: &str = "\
body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#1f2328;background:#f6f8fa}\
code{font-family:ui-monospace,monospace;font-size:0.95em}\
.bar{display:flex;flex-wrap:wrap;gap:8px 24px;align-items:center;padding:10px 20px;background:#fff;border-bottom:1px solid #d0d7de;position:sticky;top:0;z-index:1}\
.bar h1{font-size:17px;margin:0}\
.bar form{margin:0}\
select{font:inherit;padding:2px 4px}\
.live{margin:0;color:#1a7f37}\
.live.lost{color:#b42318}\
main{padding:12px 20px 40px}\
h2{font-size:16px;margin:16px 0 8px}\
section.error{background:#fff1f0;border:2px solid #b42318;border-radius:6px;padding:4px 16px;margin:12px 0}\
section.error pre{white-space:pre-wrap;font:14px/1.4 ui-monospace,monospace}\
#findings ul{margin:0;padding-left:20px}\
#findings li.error strong,p.error{color:#b42318}\
#findings li.warning strong{color:#9a6700}\
#headers{border-collapse:collapse;font-size:14px}\
#headers th{text-align:right;padding:2px 12px 2px 0;color:#57606a;font-weight:normal;vertical-align:top;white-space:nowrap}\
#headers td{padding:2px 0;word-break:break-all}\
#frames{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}\
.frame{margin:0}\
.frame figcaption{color:#57606a;font-size:14px;margin-bottom:4px}\
.frame .scroll{height:80vh;overflow-y:scroll;overflow-x:hidden;border:1px solid #d0d7de;background:#fff}\
.frame iframe{display:block;border:0}\
#text{background:#fff;border:1px solid #d0d7de;padding:12px;max-width:80ch;white-space:pre-wrap;font:14px/1.4 ui-monospace,monospace}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encoded_words() {
        assert_eq!(decode_words("plain"), "plain");
        assert_eq!(
            decode_words("=?utf-8?b?Wm/Dqw==?= Brightman <z@example.com>"),
            "Zoë Brightman <z@example.com>"
        );
        // Two adjacent words join without the space; a character split
        // between them survives.
        assert_eq!(decode_words("=?utf-8?b?w6k=?= =?utf-8?q?t=C3=A9?="), "été");
        assert_eq!(decode_words("=?utf-8?b?w6nD?= =?utf-8?b?qQ==?= x"), "éé x");
        assert_eq!(decode_words("=?bogus"), "=?bogus");
    }

    #[test]
    fn reads_query_values() {
        assert_eq!(
            query_value("x=1&as=zo%C3%AB%40example.org", "as").as_deref(),
            Some("zoë@example.org")
        );
        assert_eq!(query_value("as=a+b", "as").as_deref(), Some("a b"));
        assert_eq!(query_value("x=1", "as"), None);
    }

    #[test]
    fn unfolds_headers() {
        let message = b"Subject: a\r\n long one\r\nTo: x@example.org\r\n\r\nbody: no\r\n";
        assert_eq!(
            headers(message),
            vec![
                ("Subject".to_string(), "a long one".to_string()),
                ("To".to_string(), "x@example.org".to_string())
            ]
        );
    }
}
