//! TLS and login against the test SMTP server (tests/support/smtp_server.py):
//! STARTTLS and implicit TLS with a private CA delivered; a certificate for
//! another name, or from a CA we do not trust, refused before anything is
//! sent or recorded; `tls = "starttls"` to a server without STARTTLS refused;
//! AUTH with `password-env` over TLS. And secrets (the SMTP password and the
//! unsubscribe secret) never appear in what the program prints or writes.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use base64::Engine as _;
use support::project::{Output, Project, SECRET};
use support::smtp::{ServerOptions, SmtpServer, TlsMode, python, server_script};

const ISSUE: &str = "issues/2022-07-13.toml";
const JOURNAL: &str = "journal/2022-07-13.journal";
const SUBSCRIBED: usize = 10;
const USER: &str = "newsletter";
const PASSWORD: &str = "Tls-test-Pa55word-7f3a9c";
const PASSWORD_ENV: &str = "NEWSLETTER_TLS_TEST_PASSWORD";

/// The example project sending to `port` with these `[smtp]` lines.
fn project(port: u16, smtp: &str) -> Project {
    let p = Project::example();
    let text = p.read("newsletter.toml");
    let head = &text[..text.find("[transport]").unwrap()];
    p.write(
        "newsletter.toml",
        &format!(
            "{head}[transport]\nkind = \"smtp\"\n\n[smtp]\nport = {port}\ntimeout-seconds = 10\n{smtp}\n\n[sending]\nper-second = 0\nconnections = 2\n"
        ),
    );
    p
}

fn send(p: &Project) -> Output {
    let out = p.run(&["send", ISSUE, "--yes"]);
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    out
}

fn send_with_password(p: &Project, password: &str) -> Output {
    let out = p
        .command(&["send", ISSUE, "--yes"])
        .env(PASSWORD_ENV, password)
        .output()
        .unwrap();
    let out = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    out
}

/// A refused connection: exit code 2, the reason and "Nothing was sent" in
/// stderr, nothing at the server, nothing in the journal.
#[track_caller]
fn assert_refused(p: &Project, out: &Output, server_arrivals: usize, reason: &[&str]) {
    out.expect_code(2);
    assert!(
        out.stderr.contains("cannot connect to the SMTP server")
            && out.stderr.contains("Nothing was sent"),
        "{}",
        out.stderr
    );
    for r in reason {
        assert_eq!(
            out.stderr.matches(r).count(),
            1,
            "stderr should say `{r}` once:\n{}",
            out.stderr
        );
    }
    assert_eq!(server_arrivals, 0, "the server received mail");
    let journal = fs::read_to_string(p.path(JOURNAL)).unwrap_or_default();
    assert!(journal.trim().is_empty(), "journaled:\n{journal}");
}

/// Delivered to every subscriber, over TLS.
#[track_caller]
fn assert_delivered_over_tls(server: &SmtpServer, out: &Output) {
    out.expect_code(0);
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), SUBSCRIBED, "{}", out.stderr);
    assert!(
        arrivals.iter().all(|a| a.tls),
        "every message over TLS: {arrivals:#?}"
    );
}

// ---------------------------------------------------------------------------
// Certificates of our own, for the refusals: a CA the client is told to
// trust but whose leaf names another host, and the reverse.
// ---------------------------------------------------------------------------

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA and a leaf for `name` (DNS) signed by it, made with openssl.
    fn new(name: &str) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl (scripts/setup-test-deps installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        fs::write(
            dir.path().join("ca.ext"),
            "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("leaf.ext"),
            format!(
                "subjectAltName=DNS:{name}\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n"
            ),
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.csr",
                "-subj",
                "/CN=other test CA",
            ],
        ]
        .concat());
        run(&[
            "x509", "-req", "-in", "ca.csr", "-signkey", "ca.key", "-out", "ca.pem", "-days", "30",
            "-extfile", "ca.ext",
        ]);
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
                "-subj",
                &format!("/CN={name}"),
            ],
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "4242",
            "-out",
            "leaf.pem",
            "-days",
            "30",
            "-extfile",
            "leaf.ext",
        ]);
        let chain = [
            fs::read(dir.path().join("leaf.pem")).unwrap(),
            fs::read(dir.path().join("ca.pem")).unwrap(),
        ]
        .concat();
        fs::write(dir.path().join("cert.pem"), chain).unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// smtp_server.py with our own certificate (the shared harness always
/// makes its own).
struct OwnCertServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
    _stdin: ChildStdin,
}

impl OwnCertServer {
    fn start(pki: &Pki, implicit: bool) -> OwnCertServer {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(python());
        cmd.arg(server_script())
            .args(["--port", "0", "--dir"])
            .arg(dir.path().join("mail"))
            .arg(if implicit {
                "--implicit-tls"
            } else {
                "--starttls"
            })
            .arg("--cert")
            .arg(pki.path("cert.pem"))
            .arg("--key")
            .arg(pki.path("key.pem"))
            .arg("--exit-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("python3 (scripts/setup-test-deps)");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("server did not start: {line:?}"));
        OwnCertServer {
            port,
            dir,
            child,
            _stdin: stdin,
        }
    }

    fn arrivals(&self) -> usize {
        fs::read_to_string(self.dir.path().join("mail/arrivals.jsonl"))
            .unwrap_or_default()
            .lines()
            .count()
    }
}

impl Drop for OwnCertServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ca_line(path: &Path) -> String {
    format!("ca-file = \"{}\"", path.display())
}

// ---------------------------------------------------------------------------
// Delivered
// ---------------------------------------------------------------------------

/// Sends the example over STARTTLS with the private CA; `extra` lines go
/// into [smtp].
fn starttls_delivers(extra: &str) {
    let server = SmtpServer::start_with(ServerOptions {
        tls: TlsMode::RequireStartTls,
        ..Default::default()
    });
    let ca = server.ca_pem.clone().unwrap();
    let p = project(
        server.port,
        &format!(
            "host = \"127.0.0.1\"\ntls = \"starttls\"\n{extra}{}",
            ca_line(&ca)
        ),
    );
    assert_delivered_over_tls(&server, &send(&p));
}

/// Sends the example over implicit TLS, by name this time: the certificate
/// is for localhost and 127.0.0.1.
fn implicit_tls_delivers(extra: &str) {
    let server = SmtpServer::start_with(ServerOptions {
        tls: TlsMode::Implicit,
        ..Default::default()
    });
    let ca = server.ca_pem.clone().unwrap();
    let p = project(
        server.port,
        &format!(
            "host = \"localhost\"\ntls = \"implicit\"\n{extra}{}",
            ca_line(&ca)
        ),
    );
    let out = send(&p);
    out.expect_code(0);
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), SUBSCRIBED, "{}", out.stderr);
    // aiosmtpd does not see implicit TLS (it is the socket's), so ask the
    // client's side: it would have refused to speak in clear to port 465.
    assert!(out.stderr.contains("(implicit TLS)"), "{}", out.stderr);
}

#[test]
fn starttls_with_the_private_ca_delivers() {
    starttls_delivers("");
}

#[test]
fn implicit_tls_with_the_private_ca_delivers() {
    implicit_tls_delivers("");
}

/// The same two without pipelining: lettre's client, over our own socket.
#[test]
fn starttls_one_command_at_a_time_delivers() {
    starttls_delivers("pipelining = false\n");
}

#[test]
fn implicit_tls_one_command_at_a_time_delivers() {
    implicit_tls_delivers("pipelining = false\n");
}

// ---------------------------------------------------------------------------
// Refused before anything is sent
// ---------------------------------------------------------------------------

#[test]
fn a_certificate_for_another_host_is_refused() {
    let pki = Pki::new("mail.example.org");
    for implicit in [false, true] {
        let server = OwnCertServer::start(&pki, implicit);
        let p = project(
            server.port,
            &format!(
                "host = \"127.0.0.1\"\ntls = \"{}\"\n{}",
                if implicit { "implicit" } else { "starttls" },
                ca_line(&pki.path("ca.pem"))
            ),
        );
        let out = send(&p);
        assert_refused(
            &p,
            &out,
            server.arrivals(),
            &["invalid peer certificate: certificate not valid for name \"127.0.0.1\""],
        );
    }
}

#[test]
fn a_certificate_from_an_untrusted_ca_is_refused() {
    // The server's certificate is signed by its own throwaway CA; the client
    // trusts another one (and the public roots), not that one.
    let other = Pki::new("localhost");
    for tls in [TlsMode::RequireStartTls, TlsMode::Implicit] {
        let server = SmtpServer::start_with(ServerOptions {
            tls,
            ..Default::default()
        });
        for ca in [Some(other.path("ca.pem")), None] {
            let p = project(
                server.port,
                &format!(
                    "host = \"localhost\"\ntls = \"{}\"\n{}",
                    if tls == TlsMode::Implicit {
                        "implicit"
                    } else {
                        "starttls"
                    },
                    ca.as_deref().map(ca_line).unwrap_or_default()
                ),
            );
            let out = send(&p);
            assert_refused(
                &p,
                &out,
                server.arrivals().len(),
                &["invalid peer certificate: UnknownIssuer"],
            );
        }
    }
}

#[test]
fn starttls_to_a_server_without_it_is_refused() {
    let server = SmtpServer::start();
    let p = project(server.port, "host = \"127.0.0.1\"\ntls = \"starttls\"");
    let out = send(&p);
    assert_refused(
        &p,
        &out,
        server.arrivals().len(),
        &["`127.0.0.1` does not offer STARTTLS; refusing to send in clear text"],
    );
    assert!(
        server.events().is_empty(),
        "not even a RCPT: {:?}",
        server.events()
    );
}

#[test]
fn implicit_tls_to_a_plain_server_is_refused() {
    let server = SmtpServer::start();
    let p = project(server.port, "host = \"127.0.0.1\"\ntls = \"implicit\"");
    let out = send(&p);
    assert_refused(&p, &out, server.arrivals().len(), &[]);
}

// ---------------------------------------------------------------------------
// Login, and secrets kept secret
// ---------------------------------------------------------------------------

fn auth_server() -> SmtpServer {
    SmtpServer::start_with(ServerOptions {
        tls: TlsMode::RequireStartTls,
        auth: Some((USER.into(), PASSWORD.into())),
        auth_require_tls: true,
        ..Default::default()
    })
}

fn auth_project(server: &SmtpServer) -> Project {
    let ca = server.ca_pem.clone().unwrap();
    project(
        server.port,
        &format!(
            "host = \"127.0.0.1\"\ntls = \"starttls\"\n{}\nusername = \"{USER}\"\npassword-env = \"{PASSWORD_ENV}\"",
            ca_line(&ca)
        ),
    )
}

/// The secret strings and their encodings that must never be written: as
/// they are, base64 and base64url (with and without padding), and the
/// AUTH PLAIN blob.
fn secret_forms() -> Vec<String> {
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let mut forms = Vec::new();
    for secret in [
        PASSWORD.to_string(),
        SECRET.to_string(),
        format!("\0{USER}\0{PASSWORD}"),
    ] {
        if !secret.starts_with('\0') {
            forms.push(secret.clone());
        }
        for engine in &engines {
            forms.push(engine.encode(secret.as_bytes()));
        }
    }
    forms
}

/// Every file under `dir` (recursively) with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push((path.clone(), fs::read(&path).unwrap()));
        }
    }
    found
}

#[track_caller]
fn assert_no_secret(what: &str, haystack: &[u8]) {
    let text = String::from_utf8_lossy(haystack);
    for form in secret_forms() {
        assert!(!text.contains(&form), "{what} contains a secret (`{form}`)");
    }
}

#[test]
fn login_with_password_env_over_starttls_delivers() {
    let server = auth_server();
    let p = auth_project(&server);
    let out = send_with_password(&p, PASSWORD);
    assert_delivered_over_tls(&server, &out);
    assert!(
        server
            .arrivals()
            .iter()
            .all(|a| a.auth_user.as_deref() == Some(USER)),
        "{:#?}",
        server.arrivals()
    );
}

#[test]
fn a_wrong_password_is_refused_and_not_shown() {
    let server = auth_server();
    let p = auth_project(&server);
    let out = send_with_password(&p, "Wrong-Pa55word-0000");
    assert_refused(
        &p,
        &out,
        server.arrivals().len(),
        &["the server refused the login", "535"],
    );
    assert!(!out.stderr.contains("Wrong-Pa55word"), "{}", out.stderr);
}

#[test]
fn secrets_never_appear_in_output_journal_or_messages() {
    let server = auth_server();
    let p = auth_project(&server);
    // A real send over TLS with login, a status, a test send, a dry run and
    // a failing login: every stream they print must be clean.
    let mut outputs = vec![
        ("send", send_with_password(&p, PASSWORD)),
        ("send again", send_with_password(&p, PASSWORD)),
    ];
    outputs[0].1.expect_code(0);
    for (name, args) in [
        ("status", vec!["status", ISSUE]),
        ("dry run", vec!["send", ISSUE, "--dry-run"]),
        ("check", vec!["check"]),
    ] {
        let out = p
            .command(&args)
            .env(PASSWORD_ENV, PASSWORD)
            .output()
            .unwrap();
        outputs.push((
            name,
            Output {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
        ));
    }
    let test_send = p
        .command(&["send", ISSUE, "--test-to", "staff@example.org"])
        .env(PASSWORD_ENV, PASSWORD)
        .output()
        .unwrap();
    assert!(test_send.status.success(), "{test_send:?}");
    assert_no_secret("test send stdout", &test_send.stdout);
    assert_no_secret("test send stderr", &test_send.stderr);
    for (name, out) in &outputs {
        assert_no_secret(&format!("{name} stdout"), out.stdout.as_bytes());
        assert_no_secret(&format!("{name} stderr"), out.stderr.as_bytes());
    }
    // The journal and everything else the runs left in the project.
    let journal = fs::read(p.path(JOURNAL)).unwrap();
    assert!(!journal.is_empty());
    for (path, bytes) in files_under(p.dir.path()) {
        assert_no_secret(&path.display().to_string(), &bytes);
    }
    // What the server received (the login itself aside, which it checked).
    assert_eq!(server.messages().len(), SUBSCRIBED + 1);
    for m in server.messages() {
        assert_no_secret(&format!("message to {:?}", m.rcpt_tos), &m.raw);
    }

    // The outbox transport writes files: none holds the unsubscribe secret.
    let outbox = Project::example();
    outbox.run(&["send", ISSUE, "--yes"]).expect_code(0);
    let written = files_under(&outbox.path("outbox"));
    assert_eq!(written.len(), SUBSCRIBED);
    for (path, bytes) in files_under(outbox.dir.path()) {
        assert_no_secret(&path.display().to_string(), &bytes);
    }
}

#[test]
fn the_secret_check_can_fail() {
    // The search above would see a secret written in any of its forms.
    let leaked = format!(
        "x {} y",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET)
    );
    assert!(std::panic::catch_unwind(|| assert_no_secret("probe", leaked.as_bytes())).is_err());
}
