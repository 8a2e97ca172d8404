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
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::config::{Smtp, Tls};

/// The result of handing over one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted(String),
    /// 5xx: the server will never take it.
    Permanent(String),
    /// 4xx, a dropped connection or a timeout: try again later.
    Transient(String),
}

/// Settings to open SMTP connections, prepared once per run.
#[derive(Clone)]
pub struct SmtpSettings {
    smtp: Smtp,
    credentials: Option<Credentials>,
    tls: Option<TlsParameters>,
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
        Ok(SmtpSettings {
            smtp: smtp.clone(),
            credentials,
            tls,
            hello,
        })
    }

    /// Opens, secures and authenticates one connection.
    pub async fn connect(&self) -> Result<AsyncSmtpConnection> {
        let s = &self.smtp;
        let timeout = s.timeout;
        let mut conn = match s.tls {
            Tls::Implicit => {
                let tls = self.tls.clone();
                with_timeout(timeout, async {
                    AsyncSmtpConnection::connect_tokio1(
                        (s.host.as_str(), s.port),
                        Some(timeout),
                        &self.hello,
                        tls,
                        None,
                    )
                    .await
                    .map_err(anyhow::Error::from)
                })
                .await?
            }
            Tls::Starttls | Tls::None => {
                let stream = with_timeout(timeout, async {
                    tokio::net::TcpStream::connect((s.host.as_str(), s.port))
                        .await
                        .map_err(anyhow::Error::from)
                })
                .await?;
                stream.set_nodelay(true)?;
                let mut conn = with_timeout(timeout, async {
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                        .await
                        .map_err(anyhow::Error::from)
                })
                .await?;
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
                        conn.starttls(tls, &self.hello)
                            .await
                            .map_err(anyhow::Error::from)
                    })
                    .await?;
                }
                conn
            }
        };
        if let Some(credentials) = &self.credentials {
            with_timeout(timeout, async {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    .map_err(|e| anyhow::anyhow!("the server refused the login: {e}"))
            })
            .await?;
        }
        Ok(conn)
    }

    pub fn timeout(&self) -> Duration {
        self.smtp.timeout
    }

    pub fn describe(&self) -> String {
        format!(
            "{}:{} ({:?} TLS)",
            self.smtp.host, self.smtp.port, self.smtp.tls
        )
    }
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

/// Sends one message on an open connection, classifying the result.
pub async fn smtp_send(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    bytes: &[u8],
    timeout: Duration,
) -> Outcome {
    match tokio::time::timeout(timeout, conn.send(envelope, bytes)).await {
        Ok(Ok(response)) => Outcome::Accepted(reply_text(
            response.code().to_string(),
            response.message().collect::<Vec<_>>().join(" "),
        )),
        Ok(Err(e)) if e.is_permanent() => Outcome::Permanent(error_text(&e)),
        Ok(Err(e)) => Outcome::Transient(error_text(&e)),
        Err(_) => Outcome::Transient(format!("no answer within {} seconds", timeout.as_secs())),
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
