//! Test harness around `tests/support/smtp_server.py`, a real (aiosmtpd)
//! SMTP server process listening on 127.0.0.1 only.
//!
//! ```ignore
//! let server = SmtpServer::start();
//! // ... point the CLI at 127.0.0.1:server.port ...
//! let msgs = server.messages();
//! ```
//!
//! Needs `python3` with aiosmtpd: run `scripts/setup-test-deps` once.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

/// How long to wait for the server's `READY <port>` line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful shutdown may take before the child is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The script, found from the crate root.
pub fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py")
}

/// The Python interpreter: `$NEWSLETTER_TEST_PYTHON` or `python3`.
pub fn python() -> String {
    std::env::var("NEWSLETTER_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// TLS flavour of the test server. Certificates are generated per server
/// (a throwaway CA in `ca.pem` signs a leaf for `localhost`/127.0.0.1);
/// clients should trust [`SmtpServer::ca_pem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain SMTP, no STARTTLS offered.
    #[default]
    None,
    /// STARTTLS offered but optional.
    StartTls,
    /// STARTTLS offered and required before MAIL.
    RequireStartTls,
    /// TLS from the first byte (SMTPS, "port 465 style").
    Implicit,
}

#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Fault plan written to the faults file before start (see the docs at
    /// the top of smtp_server.py); `None` means no faults.
    pub faults: Option<Value>,
    pub tls: TlsMode,
    /// Require SMTP AUTH (PLAIN/LOGIN) with these credentials.
    pub auth: Option<(String, String)>,
    /// Only offer AUTH once the connection is TLS (STARTTLS mode).
    pub auth_require_tls: bool,
    /// Interpreter to use instead of [`python()`].
    pub python: Option<String>,
}

/// One line of `arrivals.jsonl`: a message the server accepted (250 after DATA).
#[derive(Debug, Clone, Deserialize)]
pub struct Arrival {
    pub seq: u64,
    /// Unix time (seconds) at the end of DATA.
    pub t: f64,
    #[serde(default)]
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// File name inside [`SmtpServer::dir`].
    pub file: String,
    /// Connection number (1-based, in accept order).
    pub session: u64,
    #[serde(default)]
    pub mail_options: Vec<String>,
    #[serde(default)]
    pub rcpt_options: Vec<String>,
    #[serde(default)]
    pub tls: bool,
    #[serde(default)]
    pub auth_user: Option<String>,
    #[serde(default)]
    pub size: u64,
}

/// One line of `events.jsonl`: every RCPT answer and every DATA outcome,
/// including rejections and dropped connections.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// `"rcpt"` or `"data"`.
    pub event: String,
    pub t: f64,
    pub session: u64,
    /// RCPT: the address.
    #[serde(default)]
    pub addr: Option<String>,
    /// DATA: the recipients of the transaction.
    #[serde(default)]
    pub rcpt_tos: Vec<String>,
    /// The reply sent (`None` when the connection was dropped).
    #[serde(default)]
    pub reply: Option<String>,
    #[serde(default)]
    pub dropped: bool,
    /// DATA: sequence number of the stored message, if stored.
    #[serde(default)]
    pub seq: Option<u64>,
    /// RCPT: the MAIL before it came with more commands in the same burst
    /// (the client pipelined it; see smtp_server.py).
    #[serde(default)]
    pub mail_pipelined: bool,
    /// DATA: the next transaction had already arrived with the final dot.
    #[serde(default)]
    pub next_pipelined: bool,
    /// DATA: the transaction had no accepted recipient (a 354 anyway).
    #[serde(default)]
    pub no_rcpt: bool,
    /// The fault that made the reply (`throttle`, `quota`).
    #[serde(default)]
    pub fault: Option<String>,
}

impl Event {
    /// The 3-digit reply code, if a reply was sent.
    pub fn code(&self) -> Option<u16> {
        self.reply
            .as_deref()
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
    }
}

/// An accepted message with its raw DATA bytes.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub seq: u64,
    pub t: f64,
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub session: u64,
    pub tls: bool,
    pub auth_user: Option<String>,
    /// Exactly the bytes received in DATA (after dot-unstuffing).
    pub raw: Vec<u8>,
}

impl ReceivedMessage {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

pub struct SmtpServer {
    pub port: u16,
    /// Where the `.eml` files, `arrivals.jsonl` and `events.jsonl` are.
    pub dir: PathBuf,
    /// The faults file the server watches (see [`SmtpServer::set_faults`]).
    pub faults_path: PathBuf,
    /// The CA that signed the server certificate, in TLS modes.
    pub ca_pem: Option<PathBuf>,
    pub tls: TlsMode,
    stderr_path: PathBuf,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    // Last: dropped after the child is stopped.
    _tmp: tempfile::TempDir,
}

impl SmtpServer {
    /// A plain server with no faults.
    pub fn start() -> SmtpServer {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(opts: ServerOptions) -> SmtpServer {
        let tmp = tempfile::Builder::new()
            .prefix("newsletter-smtp-")
            .tempdir()
            .expect("create tempdir for the test SMTP server");
        let dir = tmp.path().join("mail");
        fs::create_dir_all(&dir).expect("create mail dir");
        let faults_path = tmp.path().join("faults.json");
        let stderr_path = tmp.path().join("server.stderr");
        if let Some(f) = &opts.faults {
            write_atomic(
                &faults_path,
                serde_json::to_vec_pretty(f).unwrap().as_slice(),
            );
        }

        let script = server_script();
        let py = opts.python.clone().unwrap_or_else(python);
        let mut cmd = Command::new(&py);
        cmd.arg(&script)
            .arg("--port")
            .arg("0")
            .arg("--dir")
            .arg(&dir)
            .arg("--faults")
            .arg(&faults_path)
            .arg("--exit-on-stdin-eof");

        let mut ca_pem = None;
        if opts.tls != TlsMode::None {
            let cert_dir = tmp.path().join("certs");
            let out = Command::new(&py)
                .arg(&script)
                .arg("--make-cert")
                .arg(&cert_dir)
                .output()
                .unwrap_or_else(|e| panic!("{}", spawn_hint(&py, &e)));
            if !out.status.success() {
                panic!(
                    "smtp_server.py --make-cert failed ({}):\n{}\nrun scripts/setup-test-deps",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            match opts.tls {
                TlsMode::StartTls => {
                    cmd.arg("--starttls");
                }
                TlsMode::RequireStartTls => {
                    cmd.arg("--starttls").arg("--require-starttls");
                }
                TlsMode::Implicit => {
                    cmd.arg("--implicit-tls");
                }
                TlsMode::None => unreachable!(),
            }
            cmd.arg("--cert").arg(cert_dir.join("cert.pem"));
            cmd.arg("--key").arg(cert_dir.join("key.pem"));
            ca_pem = Some(cert_dir.join("ca.pem"));
        }
        if let Some((user, pass)) = &opts.auth {
            cmd.arg("--auth").arg(format!("{user}:{pass}"));
            if opts.auth_require_tls {
                cmd.arg("--auth-require-tls");
            }
        }

        let stderr_file = fs::File::create(&stderr_path).expect("create server stderr file");
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{}", spawn_hint(&py, &e)));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");

        // Read the READY line on a thread so we can time out; keep draining
        // stdout afterwards so the child never blocks on a full pipe.
        let (tx, rx) = mpsc::channel::<Option<String>>();
        thread::Builder::new()
            .name("smtp-server-stdout".into())
            .spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                match lines.next() {
                    Some(Ok(line)) => {
                        let _ = tx.send(Some(line));
                    }
                    _ => {
                        let _ = tx.send(None);
                        return;
                    }
                }
                for _ in lines.by_ref() {}
            })
            .expect("spawn stdout reader thread");

        let deadline = Instant::now() + READY_TIMEOUT;
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Some(line)) => line,
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                // stdout closed: the server exited. Give it a moment to finish.
                let status = wait_until(&mut child, deadline.min(Instant::now() + STOP_GRACE));
                let _ = child.kill();
                let _ = child.wait();
                fail_start(&stderr_path, &format!("exited before READY ({status:?})"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                fail_start(
                    &stderr_path,
                    &format!("no READY line within {} s", READY_TIMEOUT.as_secs()),
                );
            }
        };
        let port: u16 = match line.trim().strip_prefix("READY ").map(|p| p.trim().parse()) {
            Some(Ok(p)) => p,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                fail_start(
                    &stderr_path,
                    &format!("unexpected first stdout line {line:?}"),
                );
            }
        };

        SmtpServer {
            port,
            dir,
            faults_path,
            ca_pem,
            tls: opts.tls,
            stderr_path,
            child: Some(child),
            stdin,
            _tmp: tmp,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Replace the fault plan (atomically). The server checks the file before
    /// every RCPT and DATA, so this takes effect for the next command; all
    /// per-address attempt counters restart when the plan changes.
    pub fn set_faults(&self, faults: Value) {
        write_atomic(
            &self.faults_path,
            serde_json::to_vec_pretty(&faults).unwrap().as_slice(),
        );
    }

    /// Parsed `arrivals.jsonl` (accepted messages), in seq order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        let mut v: Vec<Arrival> = read_jsonl(&self.dir.join("arrivals.jsonl"));
        v.sort_by_key(|a| a.seq);
        v
    }

    /// Parsed `events.jsonl` (every RCPT answer and DATA outcome), in order.
    pub fn events(&self) -> Vec<Event> {
        read_jsonl(&self.dir.join("events.jsonl"))
    }

    /// RCPT events for one address (case-insensitive), in order: useful to
    /// count attempts/retries.
    pub fn rcpt_attempts(&self, addr: &str) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| {
                e.event == "rcpt"
                    && e.addr
                        .as_deref()
                        .is_some_and(|a| a.eq_ignore_ascii_case(addr))
            })
            .collect()
    }

    /// Accepted messages with their raw bytes, sorted by seq.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.arrivals()
            .into_iter()
            .map(|a| {
                let path = self.dir.join(&a.file);
                let raw =
                    fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                ReceivedMessage {
                    seq: a.seq,
                    t: a.t,
                    mail_from: a.mail_from,
                    rcpt_tos: a.rcpt_tos,
                    session: a.session,
                    tls: a.tls,
                    auth_user: a.auth_user,
                    raw,
                }
            })
            .collect()
    }

    /// Accepted messages addressed to `rcpt` (case-insensitive).
    pub fn messages_to(&self, rcpt: &str) -> Vec<ReceivedMessage> {
        self.messages()
            .into_iter()
            .filter(|m| m.rcpt_tos.iter().any(|r| r.eq_ignore_ascii_case(rcpt)))
            .collect()
    }

    /// Poll until at least `n` messages have arrived; panics after `timeout`.
    pub fn wait_for_arrivals(&self, n: usize, timeout: Duration) -> Vec<Arrival> {
        let deadline = Instant::now() + timeout;
        loop {
            let a = self.arrivals();
            if a.len() >= n {
                return a;
            }
            if Instant::now() >= deadline {
                panic!(
                    "expected {n} arrivals within {timeout:?}, got {}:\n{a:#?}\nserver stderr:\n{}",
                    a.len(),
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// PEM bytes of the CA to trust in TLS modes.
    pub fn ca_pem_bytes(&self) -> Option<Vec<u8>> {
        self.ca_pem
            .as_ref()
            .map(|p| fs::read(p).expect("read ca.pem"))
    }

    /// What the server wrote to stderr so far (warnings, tracebacks).
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Stop the server (graceful, then forced). Files stay readable until
    /// `self` is dropped, which this consumes, so read what you need first.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Graceful: closing stdin makes the server shut down like on SIGTERM
        // (std has no portable way to send SIGTERM without another crate).
        drop(self.stdin.take());
        if wait_until(&mut child, Instant::now() + STOP_GRACE).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

fn spawn_hint(py: &str, e: &std::io::Error) -> String {
    format!(
        "cannot run `{py}` for the test SMTP server ({}): {e}; run scripts/setup-test-deps",
        server_script().display()
    )
}

fn fail_start(stderr_path: &Path, what: &str) -> ! {
    let err = fs::read_to_string(stderr_path).unwrap_or_default();
    let hint = if err.contains("aiosmtpd")
        && (err.contains("No module named") || err.contains("cannot import"))
    {
        "\n\naiosmtpd is not installed for python3: run scripts/setup-test-deps"
    } else {
        "\n\n(if a Python package is missing: run scripts/setup-test-deps)"
    };
    panic!(
        "test SMTP server ({}) {what}; its stderr:\n{err}{hint}",
        server_script().display()
    );
}

fn write_atomic(path: &Path, data: &[u8]) {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, data).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

/// Complete lines only: a last line without its newline is still being written.
fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Vec<T> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    };
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes[..end]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l).unwrap_or_else(|e| {
                panic!(
                    "bad line in {}: {e}: {}",
                    path.display(),
                    String::from_utf8_lossy(l)
                )
            })
        })
        .collect()
}

/// How many accepted messages each envelope recipient got (lowercased).
pub fn per_recipient(server: &SmtpServer) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for a in server.arrivals() {
        assert_eq!(a.rcpt_tos.len(), 1, "one recipient per message: {a:?}");
        *counts.entry(a.rcpt_tos[0].to_lowercase()).or_insert(0) += 1;
    }
    counts
}

/// Asserts every address got exactly one message and nobody else got any.
#[track_caller]
pub fn assert_exactly_once(server: &SmtpServer, addresses: &[String]) {
    let counts = per_recipient(server);
    let extra: Vec<&String> = counts
        .keys()
        .filter(|k| !addresses.iter().any(|a| a == *k))
        .collect();
    assert!(
        extra.is_empty(),
        "messages to unexpected recipients: {extra:?}"
    );
    let wrong: Vec<(&String, usize)> = addresses
        .iter()
        .map(|a| (a, counts.get(a).copied().unwrap_or(0)))
        .filter(|(_, n)| *n != 1)
        .collect();
    assert!(
        wrong.is_empty(),
        "recipients without exactly one message (address, count): {wrong:?}"
    );
}
