//! Where a message goes: an outbox folder, or an SMTP relay.
//!
//! SMTP uses lettre's low-level async connection over a TCP socket we open
//! ourselves, so we can set TCP_NODELAY: lettre writes the final `.` of DATA
//! as a separate small write, which otherwise waits for the server's delayed
//! ACK (about 40 ms per message). Sending one message per transaction keeps
//! one rejected recipient from failing others.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use super::pipeline::{handshake, open_socket};
use crate::journal::Stage;
use crate::model::config::{Smtp, Timeouts, Tls};

/// The result of handing over one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted(String),
    /// 5xx: the server will never take it; the step it refused at, when
    /// the server refused it (not when we did).
    Permanent(String, Option<Stage>),
    /// 4xx, a dropped connection or a timeout before the whole message was
    /// sent: try again later.
    Transient(String),
    /// The whole message was sent but no reply came in time: the server may
    /// have it. Sent again only when asked (`--resend-uncertain`).
    Uncertain(String),
    /// The whole message was sent, then the connection was lost before the
    /// reply: retried like a 451 (RFC 5321 §3.8), but the server may have
    /// kept it, so the recipient is reported as possibly getting two.
    Lost(String),
}

/// Settings to open SMTP connections, prepared once per run.
#[derive(Clone)]
pub struct SmtpSettings {
    smtp: Smtp,
    credentials: Option<Credentials>,
    tls: Option<TlsParameters>,
    /// Implicit TLS (port 465) over a socket we open.
    implicit: Option<Arc<rustls::ClientConfig>>,
    hello: ClientId,
}

impl SmtpSettings {
    pub fn new(smtp: &Smtp) -> Result<SmtpSettings> {
        let credentials = match (&smtp.username, smtp.password()?) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password)),
            _ => None,
        };
        let tls = match smtp.tls {
            Tls::None => None,
            Tls::Implicit | Tls::Starttls => {
                let mut builder = TlsParameters::builder(smtp.host.clone());
                if let Some(ca) = &smtp.ca_file {
                    let pem = fs::read(ca)
                        .with_context(|| format!("cannot read `ca-file` `{}`", ca.display()))?;
                    let cert = Certificate::from_pem(&pem)
                        .with_context(|| format!("`{}` is not a PEM certificate", ca.display()))?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(builder.build_rustls().context("cannot set up TLS")?)
            }
        };
        let hello = match &smtp.hello_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        let implicit = match smtp.tls {
            Tls::Implicit => Some(Arc::new(super::pipeline::tls_config(smtp)?)),
            _ => None,
        };
        Ok(SmtpSettings {
            smtp: smtp.clone(),
            credentials,
            tls,
            implicit,
            hello,
        })
    }

    /// Opens, secures and authenticates one connection.
    pub async fn connect(&self) -> Result<AsyncSmtpConnection> {
        let s = &self.smtp;
        let t = s.timeouts();
        let timeout = t.connect;
        let mut conn = match s.tls {
            Tls::Implicit => {
                // Our own socket, so that it has TCP_NODELAY too.
                let stream = open_socket(&s.host, s.port, timeout).await?;
                let Some(config) = &self.implicit else {
                    bail!("TLS settings missing");
                };
                let tls = handshake(config, &s.host, stream, t.greeting).await?;
                with_timeout(t.greeting, async {
                    AsyncSmtpConnection::connect_with_transport(
                        Box::new(Implicit(tls)),
                        &self.hello,
                    )
                    .await
                    .map_err(smtp_error)
                })
                .await?
            }
            Tls::Starttls | Tls::None => {
                let stream = open_socket(&s.host, s.port, timeout).await?;
                let mut conn = with_timeout(timeout, async {
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                        .await
                        .map_err(smtp_error)
                })
                .await?;
                let timeout = t.greeting;
                if s.tls == Tls::Starttls {
                    let Some(tls) = self.tls.clone() else {
                        bail!("TLS settings missing");
                    };
                    if !conn.can_starttls() {
                        bail!(
                            "`{}` does not offer STARTTLS; refusing to send in clear text. Use `tls = \"implicit\"` if it listens with TLS from the start (port 465)",
                            s.host
                        );
                    }
                    with_timeout(timeout, async {
                        conn.starttls(tls, &self.hello).await.map_err(smtp_error)
                    })
                    .await?;
                }
                conn
            }
        };
        if let Some(credentials) = &self.credentials {
            with_timeout(t.greeting, async {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    .map_err(|e| anyhow::anyhow!("the server refused the login: {e}"))
            })
            .await?;
        }
        Ok(conn)
    }

    pub fn timeouts(&self) -> Timeouts {
        self.smtp.timeouts()
    }

    pub fn describe(&self) -> String {
        format!(
            "{}:{} ({})",
            self.smtp.host,
            self.smtp.port,
            self.smtp.tls.describe()
        )
    }
}

/// A TLS connection as lettre's transport: lettre's own implicit TLS opens
/// a socket without TCP_NODELAY.
#[derive(Debug)]
struct Implicit(tokio_rustls::client::TlsStream<tokio::net::TcpStream>);

impl tokio::io::AsyncRead for Implicit {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Implicit {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for Implicit {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// A lettre error as one message, its innermost cause: lettre repeats each
/// cause in its own message, so the whole chain would read three times over.
fn smtp_error<E: std::error::Error>(e: E) -> anyhow::Error {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message = cause.to_string();
        source = cause.source();
    }
    anyhow::anyhow!(message)
}

async fn with_timeout<T>(
    limit: Duration,
    future: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result,
        Err(_) => bail!("no answer within {} seconds", limit.as_secs()),
    }
}

/// What to do with the connection after a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// The transaction ended normally: the connection can carry the next one.
    Keep,
    /// A negative reply: say QUIT (briefly) and open a fresh connection.
    Quit,
    /// Timed out or broken in the middle of a command: the server may still
    /// answer it, so close the socket without another word.
    Drop,
}

/// Sends one message on an open connection, classifying the result.
///
/// The transaction is sent step by step (MAIL, RCPT, DATA, then the message
/// and its final dot), each step with its own time-out, so that a failure
/// can be placed: until the whole message has been written the server
/// cannot have it, so any failure is temporary; once it has been written a
/// time-out waiting for the reply is *uncertain*, because the server may
/// have stored the message and be slow to say so (RFC 5321 §4.5.3.2.6 warns
/// that retrying then makes duplicates). A connection lost at that point
/// counts as a 451 (RFC 5321 §3.8) and is retried, but is reported as
/// [`Outcome::Lost`] so the recipient can be named as possibly having two.
pub async fn smtp_send(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    bytes: &[u8],
    t: Timeouts,
) -> (Outcome, After) {
    let options = match mail_options(conn, envelope, bytes) {
        Ok(options) => options,
        Err(refused) => return (refused, After::Keep),
    };
    if let Err(failed) = send_envelope(conn, envelope, options, t).await {
        return failed;
    }
    send_content(conn, bytes, t).await
}

/// MAIL FROM's parameters for this message, or why the server cannot take
/// it at all (it does not offer what the message needs).
fn mail_options(
    conn: &AsyncSmtpConnection,
    envelope: &Envelope,
    bytes: &[u8],
) -> Result<Vec<MailParameter>, Outcome> {
    let mut options = Vec::new();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(Outcome::Permanent(
                "the address has characters outside ASCII and the server does not offer SMTPUTF8, so it cannot take it".into(),
                None,
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !bytes.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(Outcome::Permanent(
                "the message has 8-bit headers and the server does not offer 8BITMIME".into(),
                None,
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(options)
}

/// MAIL FROM, RCPT TO for each recipient, and DATA, each answered in turn.
async fn send_envelope(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    options: Vec<MailParameter>,
    t: Timeouts,
) -> Result<(), (Outcome, After)> {
    let mail = Mail::new(envelope.from().cloned(), options);
    step("MAIL FROM", Stage::Mail, t.mail, conn.command(mail)).await?;
    for to in envelope.to() {
        let rcpt = Rcpt::new(to.clone(), Vec::new());
        step("RCPT TO", Stage::Rcpt, t.rcpt, conn.command(rcpt)).await?;
    }
    step("DATA", Stage::Data, t.data_start, conn.command(Data)).await
}

/// One command's reply within its time-out: a refusal is placed at its
/// step; no answer is temporary (the server cannot have the message yet).
async fn step<T>(
    what: &str,
    stage: Stage,
    timeout: Duration,
    command: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<(), (Outcome, After)> {
    let seconds = timeout.as_secs();
    match tokio::time::timeout(timeout, command).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(refused(&e, stage)),
        Err(_) => Err((
            Outcome::Transient(format!("no answer to {what} within {seconds} seconds")),
            After::Drop,
        )),
    }
}

/// The message and its final dot, and the reply: once the whole message
/// is written, silence is uncertain and a lost connection lost.
async fn send_content(
    conn: &mut AsyncSmtpConnection,
    bytes: &[u8],
    t: Timeouts,
) -> (Outcome, After) {
    let seconds = t.data_end.as_secs();
    let written = AtomicBool::new(false);
    let body = WholeBody {
        bytes: Some(bytes),
        written: &written,
    };
    match tokio::time::timeout(t.data_end, conn.message_iter(body)).await {
        Ok(Ok(response)) => (
            Outcome::Accepted(reply_text(
                response.code().to_string(),
                response.message().collect::<Vec<_>>().join(" "),
            )),
            After::Keep,
        ),
        Ok(Err(e)) if written.load(Ordering::SeqCst) && !e.is_permanent() && !e.is_transient() => (
            Outcome::Lost(format!(
                "the connection was lost after the whole message was sent ({}); it may have been delivered",
                error_text(&e)
            )),
            After::Drop,
        ),
        Ok(Err(e)) => refused(&e, Stage::Data),
        Err(_) if written.load(Ordering::SeqCst) => (
            Outcome::Uncertain(format!(
                "no answer within {seconds} seconds after the whole message was sent; the server may have accepted it"
            )),
            After::Drop,
        ),
        Err(_) => (
            Outcome::Transient(format!(
                "the server took more than {seconds} seconds to read the message"
            )),
            After::Drop,
        ),
    }
}

/// A failed step: a 5xx reply is permanent, anything else (a 4xx reply, a
/// connection closed or reset) temporary.
fn refused(e: &lettre::transport::smtp::Error, stage: Stage) -> (Outcome, After) {
    if e.is_permanent() {
        (Outcome::Permanent(error_text(e), Some(stage)), After::Quit)
    } else if e.is_transient() {
        (Outcome::Transient(error_text(e)), After::Quit)
    } else {
        (Outcome::Transient(error_text(e)), After::Drop)
    }
}

/// The message as one part for [`AsyncSmtpConnection::message_iter`], which
/// asks for the next part only once the previous one is written: when it
/// asks past the end, the whole message is out and only the final dot is
/// left to write.
struct WholeBody<'a> {
    bytes: Option<&'a [u8]>,
    written: &'a AtomicBool,
}

impl<'a> Iterator for WholeBody<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let next = self.bytes.take();
        if next.is_none() {
            self.written.store(true, Ordering::SeqCst);
        }
        next
    }
}

fn reply_text(code: String, message: String) -> String {
    format!("{code} {message}").trim().to_string()
}

/// A negative reply as the server sent it (`550 5.1.1 No such user`), so the
/// journal and `status --failed-csv` quote the server; other errors (a
/// dropped connection) as lettre describes them.
fn error_text(e: &lettre::transport::smtp::Error) -> String {
    use std::error::Error as _;
    match (e.status(), e.source()) {
        (Some(code), Some(message)) => reply_text(code.to_string(), message.to_string()),
        (Some(code), None) => code.to_string(),
        (None, _) => e.to_string(),
    }
}

/// Writes each message as one `.eml` file, named after its Message-ID so a
/// re-send replaces the same file.
pub struct Outbox {
    pub dir: PathBuf,
}

impl Outbox {
    pub fn create(dir: PathBuf) -> Result<Outbox> {
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the outbox `{}`", dir.display()))?;
        Ok(Outbox { dir })
    }

    pub fn deliver(&self, message_id: &str, bytes: &[u8]) -> Outcome {
        let name: String = message_id
            .trim_matches(['<', '>'])
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("{name}.eml"));
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let result = (|| -> std::io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            fs::rename(&tmp, &path)
        })();
        match result {
            Ok(()) => Outcome::Accepted(format!("written to {}", path.display())),
            Err(e) => Outcome::Transient(format!("cannot write `{}`: {e}", path.display())),
        }
    }
}
