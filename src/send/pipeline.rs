//! A pipelining SMTP client (RFC 2920): one round trip per message.
//!
//! Written by hand because no maintained Rust SMTP crate pipelines: lettre
//! and mail-send send each command and wait for its reply, so a message
//! costs four round trips (MAIL, RCPT, DATA, end of data) — 5 messages a
//! second per connection to a relay 50 ms away. RFC 2920 lets the client
//! send MAIL, RCPT and DATA together, and lets a message's content open the
//! next group, so a steady stream is
//!
//! ```text
//! [MAIL, RCPT, DATA] → 250 250 354
//! [content, ".", MAIL, RCPT, DATA] → 250 | 250 250 354
//! [content, ".", MAIL, RCPT, DATA] → …
//! ```
//!
//! one write and one round trip per message. Everything else (greeting,
//! EHLO, STARTTLS, AUTH, RSET, QUIT) goes one command at a time, and a
//! server that does not offer PIPELINING never reaches this module (lettre
//! keeps that path).
//!
//! What this module guarantees, per message, as the lockstep path does:
//! content is written only after the server answered 354 to this very
//! transaction (so never without an accepted recipient: a 354 after every
//! RCPT was refused gets a lone dot, §3.1); every reply of a group is read
//! and checked in order; a failure is placed ([`Outcome`]): before the
//! final dot has left, the server cannot have the message (temporary);
//! after it, silence is *uncertain* and a lost connection *lost* (RFC 5321
//! §4.5.3.2.6: retrying then can make a duplicate).
//!
//! No deadlock (RFC 2920 §3.1's warning): at most one transaction's
//! commands are outstanding when content is written, and their replies are
//! a few dozen bytes, which the server's socket buffer always takes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use lettre::address::Envelope;
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::transport::{After, Outcome};
use crate::journal::Stage;
use crate::model::config::{Smtp, Timeouts, Tls};

/// A reply line longer than this, or a reply of more lines, is not SMTP.
const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 200;

/// What a connection runs over: TCP, or TLS over TCP.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// What the server said in its EHLO reply that matters here.
#[derive(Debug, Default, Clone)]
pub struct Extensions {
    pub pipelining: bool,
    pub smtputf8: bool,
    pub eight_bit_mime: bool,
    pub starttls: bool,
    pub auth: Vec<String>,
}

impl Extensions {
    fn parse(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "8BITMIME" => ext.eight_bit_mime = true,
                "STARTTLS" => ext.starttls = true,
                "AUTH" => ext.auth = words.map(|w| w.to_ascii_uppercase()).collect(),
                _ => {}
            }
        }
        ext
    }
}

/// One SMTP reply: its code and its text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// 2xx: the only success for MAIL, RCPT and the final dot (a 3xx
    /// there is a reply out of step, never an acceptance).
    fn positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The reply as the server sent it, on one line: `550 5.1.1 No such user`.
    pub fn text(&self) -> String {
        let text = self.lines.join(" ");
        format!("{} {}", self.code, text.trim()).trim().to_string()
    }
}

/// Why a reply did not come.
#[derive(Debug)]
enum NoReply {
    TimedOut,
    /// Closed, reset, or not SMTP.
    Broken(String),
}

/// Settings to open pipelining connections, prepared once per run.
#[derive(Clone)]
pub struct Settings {
    smtp: Smtp,
    timeouts: Timeouts,
    tls: Option<Arc<rustls::ClientConfig>>,
    hello: String,
    password: Option<String>,
}

impl Settings {
    pub fn new(smtp: &Smtp) -> Result<Settings> {
        let tls = match smtp.tls {
            Tls::None => None,
            Tls::Implicit | Tls::Starttls => Some(Arc::new(tls_config(smtp)?)),
        };
        let hello = match &smtp.hello_name {
            Some(name) => ClientId::Domain(name.clone()).to_string(),
            None => ClientId::default().to_string(),
        };
        Ok(Settings {
            smtp: smtp.clone(),
            timeouts: smtp.timeouts(),
            tls,
            hello,
            password: smtp.password()?,
        })
    }

    /// Opens, secures and authenticates one connection.
    pub async fn connect(&self) -> Result<Connection> {
        let s = &self.smtp;
        let t = self.timeouts;
        let tcp = open_socket(&s.host, s.port, t.connect).await?;
        let stream = match s.tls {
            Tls::Implicit => Stream::Tls(Box::new(self.secure(tcp).await?)),
            Tls::Starttls | Tls::None => Stream::Plain(tcp),
        };
        let mut conn = Connection::new(stream, t, self.hello.clone());
        conn.expect("the greeting", t.greeting, 220).await?;
        conn.hello().await?;
        if s.tls == Tls::Starttls {
            if !conn.ext.starttls {
                bail!(
                    "`{}` does not offer STARTTLS; refusing to send in clear text. Use `tls = \"implicit\"` if it listens with TLS from the start (port 465)",
                    s.host
                );
            }
            conn.queue(b"STARTTLS\r\n");
            conn.expect("STARTTLS", t.greeting, 220).await?;
            if conn.pos < conn.rbuf.len() {
                // Bytes sent before the TLS handshake would be read as if
                // they came over TLS (CVE-2011-0411's command injection).
                bail!("the server sent data after agreeing to STARTTLS; refusing to go on");
            }
            let Stream::Plain(tcp) = conn.io else {
                bail!("cannot start TLS twice on one connection");
            };
            let tls = Stream::Tls(Box::new(self.secure(tcp).await?));
            conn = Connection::new(tls, t, self.hello.clone());
            conn.hello().await?;
        }
        if let (Some(user), Some(password)) = (&s.username, &self.password) {
            conn.login(user, password)
                .await
                .map_err(|e| anyhow::anyhow!("the server refused the login: {e:#}"))?;
        }
        Ok(conn)
    }

    async fn secure(&self, tcp: TcpStream) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let Some(config) = &self.tls else {
            bail!("TLS settings missing");
        };
        handshake(config, &self.smtp.host, tcp, self.timeouts.greeting).await
    }
}

/// A TCP connection to the relay, with TCP_NODELAY: a message's last
/// small write must not wait for the server's delayed ACK.
pub(super) async fn open_socket(host: &str, port: u16, limit: Duration) -> Result<TcpStream> {
    let tcp = within(limit, "connecting", async {
        TcpStream::connect((host, port))
            .await
            .map_err(anyhow::Error::from)
    })
    .await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// TLS over `tcp`, checking the certificate against `host`.
pub(super) async fn handshake(
    config: &Arc<rustls::ClientConfig>,
    host: &str,
    tcp: TcpStream,
    limit: Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .with_context(|| format!("`{host}` is not a host name TLS can check"))?;
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    within(limit, "the TLS handshake", async {
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| anyhow::anyhow!("TLS: {e}"))
    })
    .await
}

/// TLS as lettre sets it up: the web's root certificates, plus `ca-file`.
pub(super) fn tls_config(smtp: &Smtp) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &smtp.ca_file {
        use rustls::pki_types::pem::PemObject;
        let pem = std::fs::read(ca)
            .with_context(|| format!("cannot read `ca-file` `{}`", ca.display()))?;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| anyhow::anyhow!("`{}` is not a PEM certificate", ca.display()))?;
        if certs.is_empty() {
            bail!("`{}` is not a PEM certificate", ca.display());
        }
        for cert in certs {
            roots
                .add(cert)
                .with_context(|| format!("`{}` is not a usable certificate", ca.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

async fn within<T>(
    limit: Duration,
    what: &str,
    future: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result,
        Err(_) => bail!("no answer to {what} within {} seconds", limit.as_secs()),
    }
}

/// A transaction whose commands are queued or written; its replies are
/// read with [`Connection::envelope_replies`].
#[must_use]
pub struct Begun {
    recipients: usize,
}

/// One open SMTP session.
pub struct Connection {
    io: Stream,
    hello: String,
    rbuf: Vec<u8>,
    pos: usize,
    wbuf: Vec<u8>,
    timeouts: Timeouts,
    pub ext: Extensions,
    broken: bool,
}

impl Connection {
    fn new(io: Stream, timeouts: Timeouts, hello: String) -> Connection {
        Connection {
            io,
            hello,
            rbuf: Vec::with_capacity(1024),
            pos: 0,
            wbuf: Vec::with_capacity(64 * 1024),
            timeouts,
            ext: Extensions::default(),
            broken: false,
        }
    }

    pub fn has_broken(&self) -> bool {
        self.broken
    }

    fn queue(&mut self, bytes: &[u8]) {
        self.wbuf.extend_from_slice(bytes);
    }

    /// Writes what is queued. Returns how many bytes reached the socket
    /// even when it fails, so a caller can tell whether a message's final
    /// dot left.
    async fn flush(&mut self) -> (usize, io::Result<()>) {
        let mut done = 0;
        let result = loop {
            if done == self.wbuf.len() {
                break self.io.flush().await;
            }
            match tokio::time::timeout(self.timeouts.data_block, self.io.write(&self.wbuf[done..]))
                .await
            {
                Ok(Ok(0)) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => done += n,
                Ok(Err(e)) => break Err(e),
                Err(_) => break Err(io::ErrorKind::TimedOut.into()),
            }
        };
        self.wbuf.clear();
        if result.is_err() {
            self.broken = true;
        }
        (done, result)
    }

    /// Reads one reply (all of its lines).
    async fn reply(&mut self, limit: Duration) -> Result<Reply, NoReply> {
        match tokio::time::timeout(limit, self.read_reply()).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(why)) => {
                self.broken = true;
                Err(NoReply::Broken(why))
            }
            Err(_) => {
                self.broken = true;
                Err(NoReply::TimedOut)
            }
        }
    }

    async fn read_reply(&mut self) -> Result<Reply, String> {
        let mut lines = Vec::new();
        let mut code = None;
        loop {
            let line = self.read_line().await?;
            let bytes = line.as_bytes();
            let valid = bytes.len() >= 3
                && bytes[..3].iter().all(u8::is_ascii_digit)
                && matches!(bytes.get(3), None | Some(b' ' | b'-'));
            if !valid {
                return Err(format!(
                    "the server sent something that is not an SMTP reply: `{}`",
                    line.escape_debug()
                ));
            }
            let this: u16 = line[..3]
                .parse()
                .map_err(|_| "bad reply code".to_string())?;
            if code.is_some_and(|c| c != this) {
                return Err(format!(
                    "the server mixed reply codes in one reply: `{}`",
                    line.escape_debug()
                ));
            }
            code = Some(this);
            lines.push(line.get(4..).unwrap_or("").to_string());
            if bytes.get(3) != Some(&b'-') {
                return Ok(Reply { code: this, lines });
            }
            if lines.len() >= MAX_LINES {
                return Err("the server sent a reply of too many lines".into());
            }
        }
    }

    async fn read_line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.rbuf[self.pos..].iter().position(|b| *b == b'\n') {
                let raw = &self.rbuf[self.pos..self.pos + end];
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                let line = String::from_utf8_lossy(raw).into_owned();
                self.pos += end + 1;
                if self.pos == self.rbuf.len() {
                    self.rbuf.clear();
                    self.pos = 0;
                }
                return Ok(line);
            }
            if self.rbuf.len() - self.pos > MAX_LINE {
                return Err("the server sent a reply line that is too long".into());
            }
            if self.pos > 0 {
                self.rbuf.drain(..self.pos);
                self.pos = 0;
            }
            let mut chunk = [0u8; 4096];
            match self.io.read(&mut chunk).await {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => self.rbuf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("the connection failed: {e}")),
            }
        }
    }

    /// Writes what is queued and reads one reply that must have `code`.
    async fn expect(&mut self, what: &str, limit: Duration, code: u16) -> Result<Reply> {
        let (_, written) = self.flush().await;
        written.with_context(|| format!("cannot send {what}"))?;
        match self.reply(limit).await {
            Ok(reply) if reply.code == code => Ok(reply),
            Ok(reply) => bail!("{}", reply.text()),
            Err(NoReply::TimedOut) => {
                bail!("no answer to {what} within {} seconds", limit.as_secs())
            }
            Err(NoReply::Broken(why)) => bail!("{why}"),
        }
    }

    async fn hello(&mut self) -> Result<()> {
        let line = format!("EHLO {}\r\n", self.hello);
        self.queue(line.as_bytes());
        let reply = self.expect("EHLO", self.timeouts.greeting, 250).await?;
        self.ext = Extensions::parse(&reply);
        Ok(())
    }

    async fn login(&mut self, user: &str, password: &str) -> Result<()> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let limit = self.timeouts.greeting;
        if self.ext.auth.iter().any(|m| m == "PLAIN") {
            let token = b64.encode(format!("\0{user}\0{password}"));
            self.queue(format!("AUTH PLAIN {token}\r\n").as_bytes());
            self.expect("AUTH", limit, 235).await?;
        } else if self.ext.auth.iter().any(|m| m == "LOGIN") {
            self.queue(b"AUTH LOGIN\r\n");
            self.expect("AUTH", limit, 334).await?;
            self.queue(format!("{}\r\n", b64.encode(user)).as_bytes());
            self.expect("AUTH", limit, 334).await?;
            self.queue(format!("{}\r\n", b64.encode(password)).as_bytes());
            self.expect("AUTH", limit, 235).await?;
        } else {
            bail!("it offers no login method this tool speaks (PLAIN or LOGIN)");
        }
        Ok(())
    }

    /// Queues MAIL, RCPT… and DATA for one message, or says why the
    /// server cannot take it at all.
    pub fn begin(&mut self, envelope: &Envelope, bytes: &[u8]) -> Result<Begun, Outcome> {
        let mut params = String::new();
        let non_ascii = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii {
            if !self.ext.smtputf8 {
                return Err(Outcome::Permanent(
                    "the address has characters outside ASCII and the server does not offer SMTPUTF8, so it cannot take it".into(),
                    None,
                ));
            }
            params.push_str(" SMTPUTF8");
        }
        if !bytes.is_ascii() {
            if !self.ext.eight_bit_mime {
                return Err(Outcome::Permanent(
                    "the message has 8-bit headers and the server does not offer 8BITMIME".into(),
                    None,
                ));
            }
            params.push_str(" BODY=8BITMIME");
        }
        let from = envelope.from().map(|a| a.to_string()).unwrap_or_default();
        self.queue(format!("MAIL FROM:<{from}>{params}\r\n").as_bytes());
        for to in envelope.to() {
            self.queue(format!("RCPT TO:<{to}>\r\n").as_bytes());
        }
        self.queue(b"DATA\r\n");
        Ok(Begun {
            recipients: envelope.to().len(),
        })
    }

    /// Writes what is queued (a group of commands, or a message and the
    /// next group). `Err` only when the connection failed; the count says
    /// how much of the queue left first.
    pub async fn send_queued(&mut self) -> (usize, io::Result<()>) {
        self.flush().await
    }

    /// Bytes queued so far: after queueing a message, the offset its final
    /// dot ends at.
    pub fn queued(&self) -> usize {
        self.wbuf.len()
    }

    /// Reads the replies to a begun transaction's MAIL, RCPT… and DATA.
    /// `Ok` means the server answered 354: the content may follow. On
    /// `Err` the transaction is over and the connection is left as
    /// [`After`] says.
    pub async fn envelope_replies(&mut self, begun: Begun) -> Result<(), (Outcome, After)> {
        let t = self.timeouts;
        let mail = self.step_reply("MAIL FROM", t.mail).await?;
        let mut refused: Option<(Reply, Stage)> = (!mail.positive()).then_some((mail, Stage::Mail));
        let mut accepted = 0;
        for _ in 0..begun.recipients {
            let rcpt = self.step_reply("RCPT TO", t.rcpt).await?;
            if rcpt.positive() {
                accepted += 1;
            } else if refused.is_none() {
                refused = Some((rcpt, Stage::Rcpt));
            }
        }
        let data = self.step_reply("DATA", t.data_start).await?;
        if data.code == 354 && accepted == 0 {
            // §3.1: some servers say 354 though no recipient was accepted.
            // A lone dot ends the transaction with nothing in it.
            self.queue(b".\r\n");
            let (_, written) = self.flush().await;
            if written.is_err() {
                return Err((refusal(refused, &data), After::Drop));
            }
            if let Err(e) = self.step_reply("the end of data", t.data_end).await {
                return Err((refusal(refused, &data), e.1));
            }
        }
        if data.code == 354 && accepted > 0 && refused.is_none() {
            if self.pos < self.rbuf.len() {
                // Every command sent has its reply, so the server has
                // nothing to say until the content's end: bytes already
                // here are replies out of step, which would be read as
                // this message's end-of-data reply and the next ones'.
                self.broken = true;
                return Err((
                    Outcome::Transient(
                        "the server sent more replies than commands were sent; nothing of the message was sent on that connection".into(),
                    ),
                    After::Drop,
                ));
            }
            return Ok(());
        }
        if data.code == 354 {
            // A message with several recipients, some refused: never here
            // (one recipient per message), but never send it half-addressed.
            self.broken = true;
            return Err((refusal(refused, &data), After::Drop));
        }
        let outcome = refusal(refused, &data);
        let after = match &outcome {
            Outcome::Permanent(..) => self.reset().await,
            _ => After::Quit,
        };
        Err((outcome, after))
    }

    /// One reply of a transaction; a time-out or a broken connection ends
    /// the transaction as temporary (nothing of the message was sent).
    async fn step_reply(&mut self, what: &str, limit: Duration) -> Result<Reply, (Outcome, After)> {
        match self.reply(limit).await {
            // 421: the server is closing the connection (RFC 5321 §3.8),
            // so the replies still due will not come. Its text is what
            // counts (`421 4.7.28 … rate` is throttling), not the close.
            Ok(reply) if reply.code == 421 => {
                self.broken = true;
                Err((Outcome::Transient(reply.text()), After::Drop))
            }
            Ok(reply) => Ok(reply),
            Err(NoReply::TimedOut) => Err((
                Outcome::Transient(format!(
                    "no answer to {what} within {} seconds",
                    limit.as_secs()
                )),
                After::Drop,
            )),
            Err(NoReply::Broken(why)) => Err((Outcome::Transient(why), After::Drop)),
        }
    }

    /// RSET after a refused transaction, so the connection can carry the
    /// next one.
    async fn reset(&mut self) -> After {
        self.queue(b"RSET\r\n");
        let limit = self.timeouts.greeting;
        match self.expect("RSET", limit, 250).await {
            Ok(_) => After::Keep,
            Err(_) => After::Drop,
        }
    }

    /// Queues a message's content, dot-stuffed, and its final dot.
    pub fn queue_message(&mut self, bytes: &[u8]) {
        stuff(bytes, &mut self.wbuf);
        if !bytes.ends_with(b"\r\n") {
            self.wbuf.extend_from_slice(b"\r\n");
        }
        self.wbuf.extend_from_slice(b".\r\n");
    }

    /// Reads the reply to a message's final dot, which has been written.
    pub async fn data_reply(&mut self) -> (Outcome, After) {
        let limit = self.timeouts.data_end;
        match self.reply(limit).await {
            Ok(reply) if reply.positive() => (Outcome::Accepted(reply.text()), After::Keep),
            Ok(reply) if reply.code >= 500 => (
                Outcome::Permanent(reply.text(), Some(Stage::Data)),
                After::Keep,
            ),
            Ok(reply) if reply.code >= 400 => (Outcome::Transient(reply.text()), After::Quit),
            Ok(reply) => {
                // 1xx/3xx to a final dot: out of step; whether the server
                // took the message cannot be told.
                self.broken = true;
                (
                    Outcome::Uncertain(format!(
                        "the server answered the end of the message with `{}`, which is no end-of-data reply; it may have accepted it",
                        reply.text()
                    )),
                    After::Drop,
                )
            }
            Err(NoReply::TimedOut) => (
                Outcome::Uncertain(format!(
                    "no answer within {} seconds after the whole message was sent; the server may have accepted it",
                    limit.as_secs()
                )),
                After::Drop,
            ),
            Err(NoReply::Broken(why)) => (
                Outcome::Lost(format!(
                    "the connection was lost after the whole message was sent ({why}); it may have been delivered"
                )),
                After::Drop,
            ),
        }
    }

    /// Says QUIT and waits briefly for the answer.
    pub async fn quit(mut self, wait: Duration) {
        if self.broken {
            return;
        }
        self.queue(b"QUIT\r\n");
        let _ = tokio::time::timeout(wait, async {
            let _ = self.flush().await;
            let _ = self.read_reply().await;
            let _ = self.io.shutdown().await;
        })
        .await;
    }
}

/// What a refused transaction tells: the first refusal, else DATA's reply.
fn refusal(refused: Option<(Reply, Stage)>, data: &Reply) -> Outcome {
    let (reply, stage) = refused.unwrap_or_else(|| (data.clone(), Stage::Data));
    if reply.code >= 500 {
        Outcome::Permanent(reply.text(), Some(stage))
    } else {
        Outcome::Transient(reply.text())
    }
}

/// Dot-stuffing (RFC 5321 §4.5.2): a line that starts with `.` gets another.
fn stuff(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 16);
    let mut start = 0;
    if bytes.first() == Some(&b'.') {
        out.push(b'.');
    }
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(3).position(|w| w == b"\r\n.") {
        let dot = i + at + 2;
        out.extend_from_slice(&bytes[start..dot]);
        out.push(b'.');
        start = dot;
        i = dot + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuffed(s: &str) -> String {
        let mut out = Vec::new();
        stuff(s.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn stuffing_doubles_a_dot_at_the_start_of_every_line() {
        assert_eq!(stuffed(".a\r\n.b\r\nc.\r\n..d"), "..a\r\n..b\r\nc.\r\n...d");
        assert_eq!(stuffed("plain\r\ntext\r\n"), "plain\r\ntext\r\n");
        assert_eq!(stuffed("\r\n.\r\n"), "\r\n..\r\n");
    }

    #[test]
    fn extensions_are_read_from_the_ehlo_reply() {
        let reply = Reply {
            code: 250,
            lines: vec![
                "mail.example.test".into(),
                "pipelining".into(),
                "AUTH LOGIN plain".into(),
                "8BITMIME".into(),
            ],
        };
        let ext = Extensions::parse(&reply);
        assert!(ext.pipelining && ext.eight_bit_mime && !ext.smtputf8 && !ext.starttls);
        assert_eq!(ext.auth, vec!["LOGIN", "PLAIN"]);
    }
}
