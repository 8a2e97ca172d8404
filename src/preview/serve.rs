//! `newsletter preview --serve`: a local page that shows an issue as it
//! would be received — first its row in an inbox (sender, subject,
//! preheader, date) and the findings of `check`, then the email at desktop
//! and phone widths, its text part, and its headers and size folded away —
//! and reloads itself when an input file changes.
//!
//! On the shared HTTP layer ([`crate::http`]): 127.0.0.1 only, `GET` only,
//! requests bounded in size and time. Pages are rendered from the files as
//! they are, on a blocking thread, so a broken file shows its error on the
//! page and the next save recovers. Requests for the same page that come
//! while it is being rendered, or within a second of that, share that
//! rendering, so a burst of them costs one. A watcher thread polls the
//! inputs' modification times and bumps a generation counter (a new
//! generation is always rendered afresh); open pages listen on `/events`
//! (Server-Sent Events) and reload when it moves.
//!
//! The frames show the issue's images from the project's files: the server
//! answers `/assets/NAME` with the file of that hashed name, for the images
//! the issue last rendered shows ([`super::images`]) and nothing else, and
//! the HTML in the frames (and at `/email.html`) asks for them there. The
//! message, and the size the page reports, are the ones sent.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use base64::Engine;
use hyper::body::{Bytes, Incoming};
use hyper::header;
use hyper::{Method, Request};
use maud::{Markup, PreEscaped, html};
use tokio::sync::{OnceCell, Semaphore, watch};

use super::images::Local;
use super::{Composed, Preview, compose};
use crate::check::{self, CheckRequest, Format};
use crate::http::{self, Channel, Limits, Reply, Settings};
use crate::model::config::Config;
use crate::model::finding::{Finding, Severity};
use crate::model::subscribers::{SubscriberReader, SubscriptionStatus};
use crate::render::page::{Shell, page as shell};

/// The longest request head accepted; a preview needs far less.
const MAX_REQUEST: usize = 8 * 1024;
/// Connections served at once; more get a 503 at once. A waiting
/// connection costs a few kilobytes.
const MAX_CONNECTIONS: usize = 4096;
/// Time a client has to send its request, and for the whole exchange.
const REQUEST_TIME: Duration = Duration::from_secs(10);
const EXCHANGE_TIME: Duration = Duration::from_secs(30);
/// Pages rendered at once (each on a blocking thread).
const RENDERS: usize = 2;
/// How long a rendering serves further requests for the same view of the
/// same files: a burst of requests costs one rendering a second.
const REUSE: Duration = Duration::from_secs(1);
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
/// Characters of a message's first words an inbox row can show.
const INBOX_LINE: usize = 140;
/// Gmail clips a message whose HTML is larger than about this.
const GMAIL_CLIP: usize = 102 * 1024;

/// Serves the preview page until Ctrl-C; prints its address first.
pub fn run(config: &Config, p: &Preview, port: u16) -> Result<ExitCode> {
    let runtime = http::runtime().context("cannot start the preview server")?;
    runtime.block_on(async {
        let listener = http::listen((Ipv4Addr::LOCALHOST, port).into()).with_context(|| {
                format!(
                    "cannot listen on 127.0.0.1:{port} (is another preview running? `--port 0` picks a free port)"
                )
            })?;
        let port = listener.local_addr()?.port();
        // Ctrl-C is ours before the address is printed.
        let stop = http::stop_on_signal()?;
        let server = Arc::new(Server {
            config: config.path.clone(),
            issue: p.issue.clone(),
            as_email: p.as_email.clone(),
            subscribers: p.subscribers.clone(),
            port,
            generation: watch::Sender::new(1),
            stop: stop.clone(),
            rendering: Mutex::new(HashMap::new()),
            renders: Arc::new(Semaphore::new(RENDERS)),
            images: Mutex::new(Local::default()),
        });
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
        http::serve(listener, settings(), stop, move |request, _| {
            Arc::clone(&server).handle(request)
        })
        .await;
        anyhow::Ok(())
    })?;
    // A page still rendering is not waited for.
    runtime.shutdown_timeout(Duration::from_millis(500));
    eprintln!("Stopped.");
    Ok(ExitCode::SUCCESS)
}

fn settings() -> Settings {
    let limits = Limits {
        connections: MAX_CONNECTIONS,
        send_time: REQUEST_TIME,
        total_time: EXCHANGE_TIME,
        head_bytes: MAX_REQUEST,
    };
    Settings::private(
        limits,
        CSP,
        Vec::new(),
        "too many connections; try again in a moment",
    )
}

/// What is rendered for a request: the page, or the email alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum View {
    Page,
    Email,
}

/// A rendering in progress or just done, shared by the requests for it.
type Rendering = Arc<OnceCell<Rendered>>;
/// What a rendering is of: the view, the generation and the subscriber.
type RenderKey = (View, u64, Option<String>);

/// A rendered answer.
#[derive(Clone)]
struct Rendered {
    status: u16,
    content_type: &'static str,
    body: Bytes,
}

impl Rendered {
    fn text(status: u16, text: &str) -> Rendered {
        Rendered {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::copy_from_slice(text.as_bytes()),
        }
    }
}

struct Server {
    config: PathBuf,
    issue: PathBuf,
    as_email: Option<String>,
    subscribers: Option<PathBuf>,
    port: u16,
    /// Bumped whenever an input changes; pages reload when it moves.
    generation: watch::Sender<u64>,
    /// True once Ctrl-C came.
    stop: watch::Receiver<bool>,
    /// Renderings in progress or just done, by view, generation and
    /// subscriber, with when they started.
    rendering: Mutex<HashMap<RenderKey, (Rendering, Instant)>>,
    renders: Arc<Semaphore>,
    /// The images of the last issue rendered, served at `/assets/NAME`.
    images: Mutex<Local>,
}

/// A file's modification time and size, or `None` when it is missing.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Server {
    fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Polls the inputs and bumps the generation when any changes. The
    /// list comes from the configuration, re-read when it changes; while it
    /// is broken the last good list is watched.
    fn watch(&self) {
        let mut inputs = vec![self.config.clone(), self.issue.clone()];
        let mut config_stamp = None;
        let mut last: Option<Vec<Stamp>> = None;
        // The images' files, as they were when first seen (the list follows
        // the renderings).
        let mut images: HashMap<PathBuf, Stamp> = HashMap::new();
        while !self.stopped() {
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
            let mut changed = last.as_ref().is_some_and(|last| *last != stamps);
            for file in self.images().files() {
                let now = stamp(file);
                changed |= images
                    .insert(file.to_path_buf(), now)
                    .is_some_and(|was| was != now);
            }
            if changed {
                self.generation.send_modify(|generation| *generation += 1);
            }
            last = Some(stamps);
            std::thread::sleep(POLL);
        }
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Reply {
        let path = request.uri().path().to_string();
        let reply = self.answer(&request).await;
        reply.note(path)
    }

    async fn answer(self: &Arc<Self>, request: &Request<Incoming>) -> Reply {
        // Only pages opened as 127.0.0.1 or localhost: a web site that
        // rebinds its own name to 127.0.0.1 must not read subscribers.
        let host_ok = request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .is_some_and(|host| {
                host == format!("127.0.0.1:{}", self.port)
                    || host == format!("localhost:{}", self.port)
            });
        if !host_ok {
            return Reply::text(421, "wrong Host header\n");
        }
        if request.method() != Method::GET {
            return Reply::text(405, "only GET is served\n").header(header::ALLOW, "GET");
        }
        let as_email = request
            .uri()
            .query()
            .and_then(|query| query_value(query, "as"))
            .filter(|e| !e.trim().is_empty());
        let path = request.uri().path();
        let view = match path {
            "/" => View::Page,
            "/email.html" => View::Email,
            "/events" => return self.events(),
            _ => match path.strip_prefix("/assets/") {
                Some(name) => return self.image(name).await,
                None => return Reply::text(404, "not found\n"),
            },
        };
        let rendered = self.rendered(view, as_email).await;
        Reply::new(rendered.status, rendered.content_type, rendered.body)
    }

    /// A view rendered from the files on a blocking thread. A request
    /// that comes while the same view is being rendered, or within
    /// [`REUSE`] of the start of its rendering, gets that rendering rather
    /// than starting another.
    async fn rendered(self: &Arc<Self>, view: View, as_email: Option<String>) -> Rendered {
        let key = (view, self.generation(), as_email.clone());
        let cell = {
            let mut rendering = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
            let fresh = |(cell, started): &(Rendering, Instant)| {
                !cell.initialized() || started.elapsed() < REUSE
            };
            rendering.retain(|_, entry| fresh(entry));
            let entry = rendering
                .entry(key)
                .or_insert_with(|| (Rendering::default(), Instant::now()));
            Arc::clone(&entry.0)
        };
        let server = Arc::clone(self);
        cell.get_or_init(|| async move {
            let Ok(slot) = Arc::clone(&server.renders).acquire_owned().await else {
                return Rendered::text(503, "stopping\n");
            };
            let render = Arc::clone(&server);
            tokio::task::spawn_blocking(move || {
                let _slot = slot;
                render.render(view, as_email)
            })
            .await
            .unwrap_or_else(|_| Rendered::text(500, "the page could not be rendered\n"))
        })
        .await
        .clone()
    }

    /// The images of the last issue rendered.
    fn images(&self) -> Local {
        self.images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `/assets/NAME`: an image the issue shows, from its project file.
    async fn image(&self, name: &str) -> Reply {
        let images = self.images();
        let name = name.to_string();
        match tokio::task::spawn_blocking(move || images.read(&name)).await {
            Ok(Some((bytes, content_type))) => Reply::new(200, content_type, bytes),
            _ => Reply::text(404, "not an image of this issue\n"),
        }
    }

    fn render(&self, view: View, as_email: Option<String>) -> Rendered {
        let html = |body: String| Rendered {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: body.into(),
        };
        match view {
            View::Page => html(self.page(as_email)),
            View::Email => match self.compose(as_email) {
                Ok(c) => html(c.images.rewrite(&c.html, IMAGES)),
                Err(e) => Rendered::text(500, &error_text(&e)),
            },
        }
    }

    /// A Server-Sent Events stream of the generation: the current one at
    /// once, then each new one, and a comment when nothing happened for a
    /// while (which finds out whether the page is still there).
    fn events(&self) -> Reply {
        let (mut sender, body) = Channel::new(1);
        let mut generation = self.generation.subscribe();
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            if sender
                .send_data(Bytes::from_static(b"retry: 500\n\n"))
                .await
                .is_err()
            {
                return;
            }
            let mut sent = None;
            loop {
                let current = *generation.borrow_and_update();
                let event = match sent == Some(current) {
                    true => Bytes::from_static(b": still here\n\n"),
                    false => Bytes::from(format!("data: {current}\n\n")),
                };
                sent = Some(current);
                if sender.send_data(event).await.is_err() {
                    return;
                }
                tokio::select! {
                    changed = generation.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(KEEP_ALIVE) => {}
                    () = http::stopped(&mut stop) => return,
                }
            }
        });
        Reply::stream("text/event-stream", body)
    }

    /// The message for `as_email`; keeps its images for `/assets/`.
    fn compose(&self, as_email: Option<String>) -> Result<Composed> {
        let config = Config::load(&self.config)?;
        let composed = compose(
            &config,
            &Preview {
                issue: self.issue.clone(),
                out: None,
                as_email: as_email.or_else(|| self.as_email.clone()),
                subscribers: self.subscribers.clone(),
                serve: None,
            },
        )?;
        *self.images.lock().unwrap_or_else(|e| e.into_inner()) = composed.images.clone();
        Ok(composed)
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
            .filter(|s| s.status == SubscriptionStatus::Subscribed)
            .map(|s| s.email)
            .take(PICKER_ROWS)
            .collect()
    }

    /// The whole page, rendered from the files as they are now.
    fn page(&self, as_email: Option<String>) -> String {
        // Read first: a change while rendering makes the page reload again.
        let generation = self.generation();
        let composed = self.compose(as_email.clone());
        let (findings, reached) = self.check();
        let picker = self.picker(as_email);
        let (composed, error) = match composed {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(error_text(&e))),
        };
        let headers = composed
            .as_ref()
            .map(|c| headers(&c.message))
            .unwrap_or_default();
        shell(
            Shell {
                language: "en",
                title: &self.title(&headers),
                style: PAGE_STYLE,
                head: html! {},
            },
            html! {
            (self.bar(&picker, &findings))
            main {
                @if let Some(error) = &error {
                    section id="error" class="error" role="alert" {
                        h2 { "This issue cannot be rendered" }
                        pre { (error) }
                        p { "Fix the file and save it; this page updates itself." }
                    }
                }
                @if let Some(c) = &composed {
                    (inbox_row(c, &headers))
                    @let notes = c.audience_notes();
                    @if !notes.is_empty() {
                        ul id="sections" {
                            @for note in &notes { li { (note) } }
                        }
                    }
                }
                (findings_section(&findings))
                @if let Some(c) = &composed {
                    (message_sections(c, &headers))
                }
                @if !reached.is_empty() {
                    details id="reach" {
                        summary { "Audiences: who gets the issue and its sections" }
                        pre { (check::reach_text(&reached)) }
                    }
                }
            }
            script { (PreEscaped(live_script(generation))) }
            },
        )
    }

    /// "Preview: " and the subject, or the issue's file when it cannot be rendered.
    fn title(&self, headers: &[(String, String)]) -> String {
        let subject = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("Subject"))
            .map(|(_, value)| value);
        match subject {
            Some(subject) => format!("Preview: {subject}"),
            None => format!("Preview: {}", self.issue.display()),
        }
    }

    /// What `newsletter check` finds in the issue, and whom its audiences reach.
    fn check(&self) -> (Result<Vec<Finding>>, Vec<check::Reached>) {
        let checked = check::check_with_reach(
            &self.config,
            &CheckRequest {
                issues: vec![self.issue.clone()],
                subscribers: self.subscribers.clone(),
                format: Format::Text,
                strict: false,
            },
        );
        match checked {
            Ok((findings, reached)) => (Ok(findings), reached),
            Err(e) => (Err(e), Vec::new()),
        }
    }

    /// The addresses the picker offers, and the one shown: asked for, given
    /// on the command line, or the first subscribed (an address not in the
    /// file is offered first).
    fn picker(&self, as_email: Option<String>) -> Picker {
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
        Picker { choices, selected }
    }

    /// The bar that stays at the top: the issue, the picker, the findings counted.
    fn bar(&self, picker: &Picker, findings: &Result<Vec<Finding>>) -> Markup {
        let Picker { choices, selected } = picker;
        html! {
            header class="bar" {
                h1 { span class="lead" { "Preview of " } code { (self.issue.display()) } }
                form method="get" action="/" {
                    label for="as" { "Personalised for " }
                    select id="as" name="as" onchange="this.form.submit()" {
                        @for email in choices {
                            option value=(email) selected[email.eq_ignore_ascii_case(selected.trim())] { (email) }
                        }
                    }
                    noscript { " " button type="submit" { "Show" } }
                }
                (findings_count(findings))
                p id="live" class="live" { "Updates itself when you save a file." }
            }
        }
    }
}

/// The picker's addresses, and the one the page is personalised for.
struct Picker {
    choices: Vec<String>,
    selected: String,
}

/// The message itself: at desktop and phone widths, its text part, and its
/// headers and size folded away.
fn message_sections(c: &Composed, headers: &[(String, String)]) -> Markup {
    let shown = c.images.rewrite(&c.html, IMAGES);
    html! {
        @if !c.images.is_empty() {
            p id="images-note" class="note" {
                "Images are shown from the project's files. The sent email loads them from the site: run "
                code { "newsletter web build" } ", then upload " code { "site/" } "."
            }
        }
        section id="frames" {
            (frame("desktop", "Desktop", DESKTOP_WIDTH, &shown))
            (frame("phone", "Phone", PHONE_WIDTH, &shown))
        }
        section id="text-part" {
            h2 { "Text part" }
            pre id="text" { (c.text) }
        }
        details id="message" {
            summary { "Headers and size " span class="note" { "(" (kilobytes(c.message.len())) ")" } }
            table id="headers" {
                @for (name, value) in headers {
                    tr { th scope="row" { (name) } td data-header=(name) { (value) } }
                }
            }
            p id="size" { (size_line(c)) }
        }
    }
}

/// The message as a mail app lists it: sender, subject, preheader, date.
fn inbox_row(c: &Composed, headers: &[(String, String)]) -> Markup {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or("", |(_, value)| value.as_str())
    };
    let date = header("Date");
    let (shown, instant) = match inbox_date(date) {
        Some((shown, instant)) => (shown, Some(instant)),
        None => (date.to_string(), None),
    };
    let initial = c.sender.chars().next().unwrap_or('?').to_uppercase();
    html! {
        section id="inbox" aria-labelledby="inbox-title" {
            h2 id="inbox-title" { "In the inbox" }
            div class="row" {
                span class="avatar" aria-hidden="true" { (initial) }
                span class="from" { (c.sender) }
                span class="line" {
                    span class="subject" { (header("Subject")) }
                    span class="sep" aria-hidden="true" { " – " }
                    @if c.preheader.is_empty() {
                        span class="preheader" title="No preheader: a mail app shows the email's first words" {
                            (first_words(&c.text))
                        }
                    } @else {
                        span class="preheader" { (c.preheader) }
                    }
                }
                time class="date" datetime=[instant] title=(date) { (shown) }
            }
        }
    }
}

/// The start of the text part on one line, without its `<URL>`s and
/// heading underlines: near what an inbox shows of a message without a
/// preheader (the first words of the HTML part).
fn first_words(text: &str) -> String {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| !(w.starts_with('<') && w.ends_with('>')))
        .filter(|w| !w.chars().all(|c| c == '=' || c == '-'))
        .collect();
    let line = words.join(" ");
    match line.char_indices().nth(INBOX_LINE) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

/// A Date header as a mail app's list shows it, in this computer's time
/// zone, and the instant for `<time datetime>`.
fn inbox_date(value: &str) -> Option<(String, String)> {
    let zoned = jiff::fmt::rfc2822::parse(value).ok()?;
    let local = zoned.with_time_zone(jiff::tz::TimeZone::system());
    Some((
        local.strftime("%-d %b, %H:%M").to_string(),
        local.timestamp().to_string(),
    ))
}

fn frame(id: &str, name: &str, width: u32, html: &str) -> Markup {
    html! {
        figure class="frame" id=(format!("{id}-frame")) {
            figcaption { (name) ", " (width) " px" }
            // As tall as the email once it has loaded (the page's script
            // measures it), so it never scrolls and no scroll bar takes
            // from its width. No scripts run in it; same origin only so
            // that the page can measure it.
            div class="box" {
                iframe id=(id) title=(format!("The HTML part at {width} px ({name})"))
                    width=(width) height="600" style=(format!("width:{width}px"))
                    scrolling="no"
                    sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"
                    srcdoc=(html) {}
            }
        }
    }
}

/// The findings counted, in the bar that stays at the top; leads to them.
fn findings_count(findings: &Result<Vec<Finding>>) -> Markup {
    let (text, class) = match findings {
        Err(_) => ("check could not run".to_string(), "count errors"),
        Ok(findings) => {
            let count = |severity| findings.iter().filter(|f| f.severity == severity).count();
            let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
            let plural =
                |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
            let mut parts = Vec::new();
            if errors > 0 {
                parts.push(plural(errors, "error"));
            }
            if warnings > 0 {
                parts.push(plural(warnings, "warning"));
            }
            match (errors, warnings) {
                (0, 0) => ("no findings".to_string(), "count clean"),
                (0, _) => (parts.join(", "), "count warnings"),
                _ => (parts.join(", "), "count errors"),
            }
        }
    };
    html! { a id="count" class=(class) href="#findings" { (text) } }
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

fn kilobytes(n: usize) -> String {
    format!("{:.1} KB", n as f64 / 1024.0)
}

fn size_line(c: &Composed) -> String {
    let kb = kilobytes;
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
        "q" | "Q" => q_decode(text)?,
        _ => return None,
    };
    Some((bytes, 2 + charset.len() + 1 + encoding.len() + 1 + end + 2))
}

/// Decodes the `=XX` escapes of an RFC 2047 Q-encoded word; `None` on a
/// bad escape.
fn q_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let digit = |b: u8| char::from(b).to_digit(16);
                out.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
                i += 3;
            }
            b'_' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Some(out)
}

/// A query parameter, form-decoded.
fn query_value(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// Where the frames ask for the project's images.
const IMAGES: &str = "/assets/";

/// Inline styles and scripts only; images from anywhere (as a mail app
/// shows them) and this server's `/assets/`; nothing may frame the page. The frames' `srcdoc` documents
/// inherit this.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' https: http: data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Follows the server's generation and reloads on a new one, keeping the
/// open `<details>` and the scroll position; makes each frame as tall as
/// its email. A `srcdoc` frame first holds an empty document, so a frame is
/// measured on its load event (and at once, if the email is already in
/// it), and again whenever the email's size or the window changes.
fn live_script(generation: u64) -> String {
    format!(
        r#"const generation = "{generation}";
const live = document.getElementById("live");
const kept = JSON.parse(sessionStorage.getItem("preview-kept") || "null");
sessionStorage.removeItem("preview-kept");
if (kept) {{
  for (const id of kept.open) {{ const d = document.getElementById(id); if (d) d.open = true; }}
  addEventListener("load", () => scrollTo(0, kept.y));
}}
const events = new EventSource("/events");
events.onmessage = (e) => {{
  if (e.data !== generation) {{
    events.close();
    live.textContent = "Updating…";
    const open = [...document.querySelectorAll("details[open][id]")].map((d) => d.id);
    sessionStorage.setItem("preview-kept", JSON.stringify({{ open, y: scrollY }}));
    history.scrollRestoration = "manual";
    location.reload();
  }}
}};
events.onopen = () => {{ live.textContent = "Updates itself when you save a file."; live.className = "live"; }};
events.onerror = () => {{ live.textContent = "Not connected to newsletter preview --serve; retrying…"; live.className = "live lost"; }};
const observed = new WeakSet();
const fit = (frame) => {{
  const doc = frame.contentDocument;
  if (!doc || doc.URL !== "about:srcdoc" || !doc.documentElement) return;
  frame.style.height = doc.documentElement.scrollHeight + "px";
  if (!observed.has(doc)) {{
    observed.add(doc);
    new ResizeObserver(() => fit(frame)).observe(doc.documentElement);
  }}
}};
const frames = [...document.querySelectorAll("iframe")];
for (const frame of frames) {{
  frame.addEventListener("load", () => fit(frame));
  fit(frame);
}}
addEventListener("resize", () => frames.forEach(fit));
"#
    )
}

const PAGE_STYLE: &str = "\
body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#1f2328;background:#f6f8fa}\
code{font-family:ui-monospace,monospace;font-size:0.95em}\
.bar{display:flex;flex-wrap:wrap;gap:6px 20px;align-items:center;padding:8px 20px;background:#fff;border-bottom:1px solid #d0d7de;position:sticky;top:0;z-index:1}\
.bar h1{font-size:16px;margin:0}\
.bar form{margin:0;min-width:0;max-width:100%}\
select{font:inherit;padding:2px 4px;max-width:100%}\
.count{font-weight:600;text-decoration:none;border-radius:12px;padding:1px 10px;border:1px solid}\
.count.clean{color:#1a7f37}\
.count.warnings{color:#7d4e00;background:#fff8c5}\
.count.errors{color:#b42318;background:#fff1f0}\
.live{margin:0;color:#1a7f37;font-size:14px}\
.live.lost{color:#b42318}\
main{padding:8px 20px 40px}\
h2{font-size:15px;margin:14px 0 6px}\
#inbox h2{font-size:13px;font-weight:normal;color:#57606a;margin:6px 0 4px}\
.row{display:flex;align-items:center;gap:12px;max-width:1100px;box-sizing:border-box;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:8px 14px}\
.avatar{flex:none;width:34px;height:34px;border-radius:50%;background:#57606a;color:#fff;display:grid;place-items:center;font-weight:600}\
.from{flex:0 0 170px;font-weight:700;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}\
.line{flex:1;min-width:0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}\
.subject{font-weight:700}\
.preheader,.sep{color:#57606a}\
.date{flex:none;font-size:13px;font-weight:600}\
#sections{margin:6px 0 0;padding-left:20px;font-size:14px;color:#57606a}\
section.error{background:#fff1f0;border:2px solid #b42318;border-radius:6px;padding:4px 16px;margin:12px 0}\
section.error pre{white-space:pre-wrap;font:14px/1.4 ui-monospace,monospace}\
#findings{scroll-margin-top:70px}\
#findings h2{margin-top:10px}\
#findings ul{margin:0;padding-left:20px;font-size:14px;max-height:9.5em;overflow-y:auto}\
#findings p{margin:0;font-size:14px}\
#findings li.error strong,p.error{color:#b42318}\
#findings li.warning strong{color:#7d4e00}\
#images-note{margin:12px 0 0;font-size:14px;color:#57606a}\
#frames{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start;margin-top:16px}\
.frame{margin:0;max-width:100%;overflow-x:auto}\
.frame figcaption{color:#57606a;font-size:14px;margin-bottom:4px}\
.frame .box{width:fit-content;border:1px solid #d0d7de;background:#fff}\
.frame iframe{display:block;border:0}\
#text{background:#fff;border:1px solid #d0d7de;padding:12px;max-width:80ch;white-space:pre-wrap;overflow-wrap:anywhere;font:14px/1.4 ui-monospace,monospace}\
details{margin-top:16px}\
summary{cursor:pointer;font-weight:600}\
summary .note{font-weight:normal;color:#57606a}\
#headers{border-collapse:collapse;font-size:14px;margin-top:8px}\
#headers th{text-align:right;padding:2px 12px 2px 0;color:#57606a;font-weight:normal;vertical-align:top;white-space:nowrap}\
#headers td{padding:2px 0;word-break:break-all}\
#reach pre{font:14px/1.4 ui-monospace,monospace;white-space:pre-wrap}\
@media (max-width:640px){\
.bar{padding:4px 8px;gap:2px 12px}\
#inbox h2{margin:4px 0 2px}\
.bar h1{font-size:14px}\
.bar h1 .lead{display:none}\
.bar form{order:1;display:flex;gap:6px;align-items:center;width:100%}\
.bar select{flex:1;min-width:0}\
.live{display:none}\
.live.lost{display:block}\
main{padding:4px 6px 32px}\
.row{display:grid;grid-template-columns:34px minmax(0,1fr) auto;column-gap:10px;row-gap:1px;align-items:start;padding:6px 10px;line-height:1.35}\
.avatar{grid-row:1/4}\
.from{grid-column:2}\
.date{grid-column:3;grid-row:1}\
.line{display:contents}\
.subject{grid-column:2/4;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}\
.sep{display:none}\
.preheader{grid-column:2/4;display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:2;overflow:hidden;white-space:normal}\
#phone-frame{order:-1}\
}";

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
