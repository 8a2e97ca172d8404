//! The HTTP layer of `newsletter unsubscribe serve` and `newsletter preview
//! --serve`: one small HTTP/1.1 server on hyper and tokio.
//!
//! Why it exists: both servers were hand-written on `std::net`, a thread
//! per connection and at most 32 of them, each with its own request parser
//! and percent-decoder. Thirty-two slow clients held the one-click endpoint
//! down, and its 503 for a full server read the request inside the accept
//! loop, so one slow client stalled everyone (issue 13). The guide is to
//! write by hand only what no crate does, so HTTP itself is hyper's: request
//! parsing, the header size limit (431) and the header read deadline; tokio
//! makes a waiting connection cost a few kilobytes instead of a thread; the
//! handlers decode with `form_urlencoded`, `percent-encoding` and `multer`.
//!
//! What is left here is what those crates do not do for us:
//!
//! * a cap on connections served at once. When it is reached, a new
//!   connection gets a canned `503` from a task of its own, without its
//!   request being read and without the accept loop waiting for it (and
//!   when even those tasks are at their cap, it is closed at once);
//! * a total deadline per request (one request per connection): the
//!   client has `send_time` to send its request, head and body, and the
//!   whole exchange ends at `total_time` (an event stream is exempt once
//!   it has been answered);
//! * bodies read only when a handler asks, within a size limit (413) and
//!   before the deadline (408);
//! * a lingering close, so that a client whose request was not read whole
//!   sees the answer rather than a reset;
//! * the access log (`METHOD STATUS NOTE`, one line per answer, 503s and
//!   hyper's own 400 and 431 included) written by a thread of its own, so
//!   a slow stderr never holds up a connection;
//! * stopping on Ctrl-C or SIGTERM: requests in progress are answered (for
//!   a few seconds), connections still waiting for one are closed.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body as _;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

pub use http_body_util::channel::{Channel, Sender};

/// A response body: a whole one, or a stream ([`Reply::stream`]).
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Connections that get a canned 503 at once; past this they are closed.
const REFUSING: usize = 256;
/// How long a canned answer (503, 408) may take to write.
const CANNED_TIME: Duration = Duration::from_secs(1);
/// How long a closing connection is read for, and how much, so that the
/// client sees the answer rather than a reset.
const LINGER_TIME: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 64 * 1024;
/// How long answers in progress may take to finish after Ctrl-C.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long the accept loop rests when accepting fails (out of files).
const ACCEPT_REST: Duration = Duration::from_millis(20);
/// Connections the kernel holds for us until they are accepted (the system
/// may allow fewer: `net.core.somaxconn`). A burst larger than this has
/// connections dropped and tried again by the client a second later.
const BACKLOG: u32 = 4096;
/// Access log lines waiting for stderr; past this they are counted and dropped.
const LOG_QUEUE: usize = 16 * 1024;

/// Overrides [`Limits::connections`], for tests of a full server.
pub const CONNECTIONS_VARIABLE: &str = "NEWSLETTER_HTTP_MAX_CONNECTIONS";

/// What a server allows.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; more get 503.
    pub connections: usize,
    /// Time a client has to send its whole request, head and body.
    pub send_time: Duration,
    /// Time a whole exchange may take, answer included.
    pub total_time: Duration,
    /// Largest request head (request line and headers); more is 431.
    pub head_bytes: usize,
}

/// How a server answers besides its handler.
pub struct Settings {
    pub limits: Limits,
    /// Headers added to every answer that does not set them.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The text of the 503 for a full server.
    pub busy: &'static str,
}

impl Settings {
    /// A server of private pages: answers never cached, sniffed or sent on as
    /// a referrer, under the content security policy `csp`, plus `extra`
    /// headers.
    pub fn private(
        limits: Limits,
        csp: &'static str,
        extra: Vec<(HeaderName, HeaderValue)>,
        busy: &'static str,
    ) -> Settings {
        let fixed = |name, value| (name, HeaderValue::from_static(value));
        let mut headers = vec![
            fixed(header::CACHE_CONTROL, "no-store"),
            fixed(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            fixed(header::REFERRER_POLICY, "no-referrer"),
        ];
        headers.extend(extra);
        headers.push(fixed(header::CONTENT_SECURITY_POLICY, csp));
        Settings {
            limits,
            headers,
            busy,
        }
    }
}

/// A handler's answer, and what the access log says of it.
pub struct Reply {
    pub response: Response<Body>,
    /// The access log's third field (`-` when none).
    pub note: Option<String>,
    /// The body is a stream that may outlive the request deadline.
    streaming: bool,
}

impl Reply {
    /// A whole answer.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        let body: Bytes = body.into();
        let length = body.len();
        let mut response = Response::new(Full::new(body).boxed_unsync());
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        Reply {
            response,
            note: None,
            streaming: false,
        }
    }

    pub fn text(status: u16, text: &str) -> Reply {
        Reply::new(
            status,
            "text/plain; charset=utf-8",
            Bytes::copy_from_slice(text.as_bytes()),
        )
    }

    pub fn html(status: u16, html: String) -> Reply {
        Reply::new(status, "text/html; charset=utf-8", html)
    }

    /// A 200 whose body is sent as it comes through the channel; it ends
    /// when the channel's [`Sender`] is dropped.
    pub fn stream(content_type: &'static str, body: Channel<Bytes>) -> Reply {
        let mut response = Response::new(body.boxed_unsync());
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        Reply {
            response,
            note: None,
            streaming: true,
        }
    }

    /// The answer with a header set.
    pub fn header(mut self, name: HeaderName, value: &'static str) -> Reply {
        self.response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
        self
    }

    /// The answer with the access log's note.
    pub fn note(mut self, note: impl Into<String>) -> Reply {
        self.note = Some(note.into());
        self
    }

    pub fn status(&self) -> u16 {
        self.response.status().as_u16()
    }
}

/// Why a body was not read: the status to answer.
pub type Refused = u16;

/// Reads a request's body, at most `limit` bytes, before `by`: 411 for a
/// body without a `Content-Length`, 413 for a larger one, 408 when the
/// client is too slow, 400 when it goes away.
pub async fn read_body(
    body: Incoming,
    headers: &hyper::HeaderMap,
    limit: usize,
    by: Instant,
) -> Result<Bytes, Refused> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(411);
    }
    // hyper has checked that a Content-Length is a number.
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if length > limit as u64 {
        return Err(413);
    }
    match tokio::time::timeout_at(by, Limited::new(body, limit).collect()).await {
        Err(_) => Err(408),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => Err(413),
        Ok(Err(_)) => Err(400),
    }
}

/// The short text of a refusal.
pub fn reason(status: u16) -> &'static str {
    match status {
        400 => "bad request",
        408 => "the request took too long",
        411 => "send a Content-Length",
        413 => "the request body is too large",
        431 => "the request headers are too large",
        503 => "busy; try again in a minute",
        _ => "error",
    }
}

/// A new runtime for a server: a few worker threads for the connections;
/// slow work (rendering, syncing a file) goes to its blocking threads.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    raise_file_limit();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("newsletter-http")
        .max_blocking_threads(32)
        .build()
}

/// Listens on `address`, with room for a burst of connections; inside a
/// runtime.
pub fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As std's listener does: a restarted server can listen at once.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// Takes over Ctrl-C (SIGINT) and SIGTERM now, inside a runtime; the
/// receiver turns true when one comes.
pub fn stop_on_signal() -> std::io::Result<watch::Receiver<bool>> {
    let (stop, stopped) = watch::channel(false);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            let _ = stop.send(true);
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stop.send(true);
        }
    });
    Ok(stopped)
}

/// Each open connection is a file: lets this process open as many as its
/// hard limit allows (often 1024 by default, fewer than a busy server needs).
fn raise_file_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let wanted = limit.maximum.map_or(65_536, |max| max.min(65_536));
        if limit.current.is_some_and(|current| current < wanted) {
            let _ = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(wanted),
                    maximum: limit.maximum,
                },
            );
        }
    }
}

/// Serves connections from `listener` with `handler` until `stop` turns
/// true, then lets the answers in progress finish (for a few seconds).
///
/// The handler gets each request and the instant by which its body must
/// have arrived (for [`read_body`]).
pub async fn serve<H, F>(
    listener: TcpListener,
    settings: Settings,
    mut stop: watch::Receiver<bool>,
    handler: H,
) where
    H: Fn(Request<Incoming>, Instant) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let log = AccessLog::start();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(settings.limits.send_time)
        .keep_alive(false)
        .title_case_headers(true)
        .max_header_size(settings.limits.head_bytes)
        .max_buf_size(16 * 1024);
    let capacity = std::env::var(CONNECTIONS_VARIABLE)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(settings.limits.connections);
    let busy = canned(503, settings.busy);
    let shared = Arc::new(Shared {
        stop: stop.clone(),
        settings,
        handler,
        http,
        log: log.clone(),
        busy,
    });
    let serving = Arc::new(Semaphore::new(capacity));
    let refusing = Arc::new(Semaphore::new(REFUSING));
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of files, most likely: the connections wait in the
                // kernel's queue meanwhile. Said at most once a minute.
                if last_accept_error.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                    last_accept_error = Some(Instant::now());
                    log.say(format!("warning: cannot accept a connection: {error}"));
                }
                tokio::time::sleep(ACCEPT_REST).await;
                continue;
            }
        };
        match Arc::clone(&serving).try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(connection(stream, permit, Arc::clone(&shared)));
            }
            Err(_) => {
                log.line("-", 503, None);
                if let Ok(permit) = Arc::clone(&refusing).try_acquire_owned() {
                    tokio::spawn(refuse(stream, permit, Arc::clone(&shared)));
                }
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(STOP_GRACE, serving.acquire_many(capacity as u32)).await;
    let _ = tokio::task::spawn_blocking(move || log.flush()).await;
}

/// Resolves when `stop` turns true (never, if its sender goes without).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

struct Shared<H> {
    stop: watch::Receiver<bool>,
    settings: Settings,
    handler: H,
    http: http1::Builder,
    log: AccessLog,
    busy: Bytes,
}

/// What the service saw of its connection.
#[derive(Default)]
struct Seen {
    /// The client sent at least a byte.
    bytes: AtomicBool,
    /// A whole request head came.
    started: AtomicBool,
    /// ... without a body.
    bodiless: AtomicBool,
    /// The handler answered.
    answered: AtomicBool,
    /// ... with a stream.
    streaming: AtomicBool,
}

/// Serves one connection: one request, then close.
async fn connection<H, F>(
    mut stream: TcpStream,
    permit: OwnedSemaphorePermit,
    shared: Arc<Shared<H>>,
) where
    H: Fn(Request<Incoming>, Instant) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let _permit = permit;
    let _ = stream.set_nodelay(true);
    let start = Instant::now();
    let send_by = start + shared.settings.limits.send_time;
    let end_by = start + shared.settings.limits.total_time;
    let seen = Arc::new(Seen::default());
    let outcome = {
        let service = {
            let shared = Arc::clone(&shared);
            let seen = Arc::clone(&seen);
            service_fn(move |request: Request<Incoming>| {
                let shared = Arc::clone(&shared);
                let seen = Arc::clone(&seen);
                async move {
                    seen.started.store(true, Ordering::SeqCst);
                    seen.bodiless
                        .store(request.body().is_end_stream(), Ordering::SeqCst);
                    let method = request.method().as_str().to_string();
                    let mut reply = (shared.handler)(request, send_by).await;
                    shared
                        .log
                        .line(&method, reply.status(), reply.note.as_deref());
                    seen.streaming.store(reply.streaming, Ordering::SeqCst);
                    seen.answered.store(true, Ordering::SeqCst);
                    let headers = reply.response.headers_mut();
                    for (name, value) in &shared.settings.headers {
                        if !headers.contains_key(name) {
                            headers.insert(name.clone(), value.clone());
                        }
                    }
                    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
                    Ok::<_, Infallible>(reply.response)
                }
            })
        };
        let io = TokioIo::new(Counted {
            stream: &mut stream,
            seen: &seen.bytes,
        });
        let conn = shared.http.serve_connection(io, service);
        tokio::pin!(conn);
        let mut stop = shared.stop.clone();
        let mut stopping = false;
        loop {
            tokio::select! {
                result = tokio::time::timeout_at(end_by, conn.as_mut()) => break match result {
                    Ok(result) => Some(result),
                    Err(_) if seen.streaming.load(Ordering::SeqCst) => Some(conn.await),
                    Err(_) => None,
                },
                // Stopping: a request in progress is answered; a connection
                // still waiting for one is closed now.
                () = stopped(&mut stop), if !stopping => {
                    stopping = true;
                    if !seen.started.load(Ordering::SeqCst) {
                        return;
                    }
                }
            }
        }
    };
    let answered = seen.answered.load(Ordering::SeqCst);
    match outcome {
        // The whole request was read, and answered: nothing is left
        // unread to make the close a reset.
        Some(Ok(())) if seen.bodiless.load(Ordering::SeqCst) => return,
        Some(Ok(())) => {}
        // hyper answered these itself.
        Some(Err(error)) if error.is_parse_too_large() => shared.log.line("-", 431, None),
        Some(Err(error)) if error.is_parse() && !error.is_parse_version_h2() => {
            shared.log.line("-", 400, None)
        }
        // The head did not come in time: 408, unless nothing came at all
        // (a browser's spare connection), which is closed without a word.
        Some(Err(error))
            if error.is_timeout() && !answered && seen.bytes.load(Ordering::SeqCst) =>
        {
            shared.log.line("-", 408, None);
            write_canned(&mut stream, &canned(408, reason(408))).await;
        }
        // The exchange ran out of time before the handler answered.
        None if !answered => {
            shared.log.line("-", 503, None);
            write_canned(&mut stream, &shared.busy).await;
        }
        // The client went away, or would not take the answer.
        _ => {}
    }
    linger(&mut stream).await;
}

/// A canned answer for a full server, from a task of its own: written
/// without reading the request.
async fn refuse<H>(mut stream: TcpStream, permit: OwnedSemaphorePermit, shared: Arc<Shared<H>>) {
    let _permit = permit;
    write_canned(&mut stream, &shared.busy).await;
    linger(&mut stream).await;
}

async fn write_canned(stream: &mut TcpStream, answer: &[u8]) {
    let _ = tokio::time::timeout(CANNED_TIME, stream.write_all(answer)).await;
}

/// Closes our side, then reads what the client still sends for a moment,
/// so that it sees the answer rather than a reset.
async fn linger(stream: &mut TcpStream) {
    let _ = tokio::time::timeout(CANNED_TIME, stream.shutdown()).await;
    let mut sink = vec![0u8; 4096];
    let _ = tokio::time::timeout(LINGER_TIME, async {
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

/// An answer written by hand, for when hyper has no request to answer.
fn canned(status: u16, text: &str) -> Bytes {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let body = format!("{text}\n");
    let retry = if status == 503 {
        "Retry-After: 10\r\n"
    } else {
        ""
    };
    Bytes::from(format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{retry}Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// The connection, noting whether the client sent anything.
struct Counted<'a> {
    stream: &'a mut TcpStream,
    seen: &'a AtomicBool,
}

impl AsyncRead for Counted<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut *self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.seen.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Counted<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.stream).poll_shutdown(cx)
    }
}

/// The access log: lines go to a thread that writes them to stderr.
#[derive(Clone)]
struct AccessLog {
    lines: SyncSender<Message>,
    dropped: Arc<AtomicUsize>,
}

enum Message {
    Line(String),
    Flush(mpsc::Sender<()>),
}

impl AccessLog {
    fn start() -> AccessLog {
        let (lines, queue) = mpsc::sync_channel::<Message>(LOG_QUEUE);
        let dropped = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&dropped);
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut flushed = Vec::new();
            while let Ok(first) = queue.recv() {
                // What has come meanwhile goes out in the same write.
                for message in std::iter::once(first).chain(queue.try_iter()) {
                    match message {
                        Message::Line(line) => {
                            text.push_str(&line);
                            text.push('\n');
                        }
                        Message::Flush(done) => flushed.push(done),
                    }
                }
                let lost = counted.swap(0, Ordering::SeqCst);
                if lost > 0 {
                    text.push_str(&format!(
                        "warning: {lost} access log lines were dropped: stderr was not read fast enough\n"
                    ));
                }
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(text.as_bytes());
                let _ = err.flush();
                drop(err);
                text.clear();
                for done in flushed.drain(..) {
                    let _ = done.send(());
                }
            }
        });
        AccessLog { lines, dropped }
    }

    /// `METHOD STATUS NOTE`.
    fn line(&self, method: &str, status: u16, note: Option<&str>) {
        self.say(format!("{method} {status} {}", note.unwrap_or("-")));
    }

    fn say(&self, line: String) {
        if let Err(TrySendError::Full(_)) = self.lines.try_send(Message::Line(line)) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Waits (a little) until the lines so far are written.
    fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.lines.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_answers_are_whole() {
        let busy = canned(503, "busy; try again in a minute");
        let text = std::str::from_utf8(&busy).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{text}"
        );
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{text}"
        );
        assert!(head.contains("Retry-After: 10"));
        assert_eq!(body, "busy; try again in a minute\n");
    }
}
