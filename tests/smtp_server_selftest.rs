//! Self-test of the test SMTP server (tests/support/smtp_server.py) and its
//! Rust harness. Needs `scripts/setup-test-deps` to have been run.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use serde_json::json;
use support::smtp::{ServerOptions, SmtpServer, TlsMode};

fn transport(server: &SmtpServer) -> SmtpTransport {
    SmtpTransport::builder_dangerous("127.0.0.1")
        .port(server.port)
        .timeout(Some(Duration::from_secs(10)))
        .build()
}

fn tls_params(server: &SmtpServer) -> TlsParameters {
    let ca = Certificate::from_pem(&server.ca_pem_bytes().expect("tls server has a CA")).unwrap();
    TlsParameters::builder("localhost".to_string())
        .add_root_certificate(ca)
        .build_rustls()
        .unwrap()
}

fn message(to: &str, subject: &str, body: &str) -> Message {
    Message::builder()
        .from("Newsletter <news@example.com>".parse::<Mailbox>().unwrap())
        .to(to.parse::<Mailbox>().unwrap())
        .subject(subject)
        .body(body.to_string())
        .unwrap()
}

#[test]
fn three_messages_arrive_intact() {
    let server = SmtpServer::start();
    let t = transport(&server);
    let rcpts = ["alice@example.org", "bob@example.org", "carol@example.org"];
    for (i, r) in rcpts.iter().enumerate() {
        let body = format!("Hello {r}\n.leading dot line\nGrüße, message {i}\n");
        t.send(&message(r, &format!("Issue {i} – ünïcode"), &body))
            .unwrap();
    }

    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 3, "{arrivals:#?}");
    for (i, a) in arrivals.iter().enumerate() {
        assert_eq!(a.seq, i as u64 + 1);
        assert_eq!(a.mail_from, "news@example.com");
        assert_eq!(a.rcpt_tos, vec![rcpts[i].to_string()]);
        assert!(!a.tls);
        assert!(a.file.ends_with(".eml"));
    }
    assert!(arrivals.windows(2).all(|w| w[0].t <= w[1].t));
    // No connection pooling: one connection per send.
    assert!(arrivals.windows(2).all(|w| w[0].session != w[1].session));

    let msgs = server.messages();
    assert_eq!(msgs.len(), 3);
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.raw.len() as u64, arrivals[i].size);
        let parsed = mail_parser::MessageParser::default()
            .parse(&m.raw)
            .expect("parses as MIME");
        assert_eq!(
            parsed.subject(),
            Some(format!("Issue {i} – ünïcode").as_str())
        );
        let text = parsed.body_text(0).unwrap();
        // Dot-stuffing undone, content intact.
        assert!(text.contains(".leading dot line"), "{text:?}");
        assert!(text.contains(&format!("Grüße, message {i}")), "{text:?}");
        assert!(m.raw.ends_with(b"\r\n"), "raw DATA ends with CRLF");
    }
    server.stop();
}

#[test]
fn rcpt_550_is_permanent_and_stores_nothing() {
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"rcpt": {"Nobody@Example.org": "550 5.1.1 No such user"}})),
        ..Default::default()
    });
    let t = transport(&server);
    // Case-insensitive match.
    let err = t
        .send(&message("nobody@example.org", "x", "x"))
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(err.status().map(|c| c.to_string()), Some("550".to_string()));
    t.send(&message("somebody@example.org", "y", "y")).unwrap();

    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 1);
    assert_eq!(
        arrivals[0].rcpt_tos,
        vec!["somebody@example.org".to_string()]
    );
    let attempts = server.rcpt_attempts("NOBODY@example.org");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].code(), Some(550));
}

#[test]
fn rcpt_451_clears_after_rcpt_times() {
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({
            "rcpt": {"flaky@example.org": "451 4.7.1 Try again later"},
            "rcpt_times": {"flaky@example.org": 2}
        })),
        ..Default::default()
    });
    let t = transport(&server);
    for _ in 0..2 {
        let err = t.send(&message("flaky@example.org", "x", "x")).unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert_eq!(err.status().map(|c| c.to_string()), Some("451".to_string()));
    }
    assert!(server.arrivals().is_empty());
    t.send(&message("flaky@example.org", "x", "x")).unwrap();
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 1);
    let codes: Vec<_> = server
        .rcpt_attempts("flaky@example.org")
        .iter()
        .map(|e| e.code())
        .collect();
    assert_eq!(codes, vec![Some(451), Some(451), Some(250)]);
}

#[test]
fn drop_after_data_stores_nothing_then_recovers() {
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"drop_after_data": {"drop@example.org": 1}})),
        ..Default::default()
    });
    let t = transport(&server);
    let err = t.send(&message("drop@example.org", "x", "x")).unwrap_err();
    assert!(
        !err.is_permanent() && !err.is_transient(),
        "no SMTP reply expected: {err:?}"
    );
    assert!(server.arrivals().is_empty());
    let eml: Vec<_> = std::fs::read_dir(&server.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".eml"))
        .collect();
    assert!(eml.is_empty(), "no message file may be left: {eml:?}");
    let data_events: Vec<_> = server
        .events()
        .into_iter()
        .filter(|e| e.event == "data")
        .collect();
    assert_eq!(data_events.len(), 1);
    assert!(data_events[0].dropped && data_events[0].reply.is_none());

    // Second attempt (N = 1) goes through.
    t.send(&message("drop@example.org", "x", "x")).unwrap();
    assert_eq!(server.arrivals().len(), 1);
}

#[test]
fn set_faults_mid_run_data_reply_and_delay() {
    let server = SmtpServer::start();
    let t = transport(&server);
    t.send(&message("a@example.org", "1", "1")).unwrap();

    server.set_faults(json!({"data_reply": {"a@example.org": "554 5.7.1 Rejected"}}));
    let err = t.send(&message("a@example.org", "2", "2")).unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(err.status().map(|c| c.to_string()), Some("554".to_string()));

    server.set_faults(json!({"delay_data_reply_seconds": {"*": 0.5}}));
    let start = Instant::now();
    t.send(&message("a@example.org", "3", "3")).unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(450),
        "{:?}",
        start.elapsed()
    );

    server.set_faults(json!({}));
    t.send(&message("a@example.org", "4", "4")).unwrap();

    let subjects: Vec<String> = server
        .messages()
        .iter()
        .map(|m| {
            mail_parser::MessageParser::default()
                .parse(&m.raw)
                .unwrap()
                .subject()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(subjects, vec!["1", "3", "4"]);
}

#[test]
fn random_faults_are_deterministic() {
    let faults = json!({"random": {"seed": 7, "p_4xx": 0.3, "p_5xx": 0.2, "p_drop": 0.3}});
    let run = || {
        let server = SmtpServer::start_with(ServerOptions {
            faults: Some(faults.clone()),
            ..Default::default()
        });
        let t = transport(&server);
        let outcomes: Vec<String> = (0..30)
            .map(
                |i| match t.send(&message(&format!("user{}@example.org", i % 10), "r", "r")) {
                    Ok(_) => "ok".to_string(),
                    Err(e) => e.status().map_or("drop".to_string(), |c| c.to_string()),
                },
            )
            .collect();
        assert_eq!(
            server.arrivals().len(),
            outcomes.iter().filter(|o| *o == "ok").count()
        );
        outcomes
    };
    let a = run();
    assert_eq!(a, run());
    for kind in ["ok", "451", "550", "drop"] {
        assert!(a.iter().any(|o| o == kind), "expected some {kind} in {a:?}");
    }
}

/// Read one (possibly multi-line) SMTP reply.
fn read_reply(r: &mut impl BufRead) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        assert!(l.len() >= 4, "short reply line {l:?}");
        let last = l.as_bytes()[3] == b' ';
        lines.push(l.trim_end().to_string());
        if last {
            return lines;
        }
    }
}

#[test]
fn ehlo_advertises_smtputf8_and_8bitmime_and_accepts_utf8_addresses() {
    let server = SmtpServer::start();
    let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let cmd = |w: &mut TcpStream, r: &mut BufReader<TcpStream>, c: &str| {
        w.write_all(c.as_bytes()).unwrap();
        read_reply(r)
    };
    assert!(read_reply(&mut r)[0].starts_with("220"));
    let ehlo = cmd(&mut w, &mut r, "EHLO client.test\r\n");
    assert!(ehlo.iter().any(|l| l[4..] == *"SMTPUTF8"), "{ehlo:?}");
    assert!(ehlo.iter().any(|l| l[4..] == *"8BITMIME"), "{ehlo:?}");
    assert!(
        !ehlo.iter().any(|l| l[4..].starts_with("AUTH")),
        "no AUTH without --auth: {ehlo:?}"
    );
    assert!(
        !ehlo.iter().any(|l| l[4..].starts_with("STARTTLS")),
        "{ehlo:?}"
    );
    assert!(
        cmd(
            &mut w,
            &mut r,
            "MAIL FROM:<news@example.com> SMTPUTF8 BODY=8BITMIME\r\n"
        )[0]
        .starts_with("250")
    );
    assert!(cmd(&mut w, &mut r, "RCPT TO:<jürgen@exämple.org>\r\n")[0].starts_with("250"));
    assert!(cmd(&mut w, &mut r, "DATA\r\n")[0].starts_with("354"));
    let body = "Subject: Grüße\r\n\r\n..dotted\r\nbäh\r\n.\r\n";
    assert!(cmd(&mut w, &mut r, body)[0].starts_with("250"));
    assert!(cmd(&mut w, &mut r, "QUIT\r\n")[0].starts_with("221"));

    let msgs = server.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].rcpt_tos, vec!["jürgen@exämple.org".to_string()]);
    assert_eq!(
        msgs[0].raw,
        "Subject: Grüße\r\n\r\n.dotted\r\nbäh\r\n".as_bytes()
    );
    let a = &server.arrivals()[0];
    assert!(
        a.mail_options.iter().any(|o| o == "SMTPUTF8"),
        "{:?}",
        a.mail_options
    );
}

#[test]
fn starttls_required() {
    let server = SmtpServer::start_with(ServerOptions {
        tls: TlsMode::RequireStartTls,
        ..Default::default()
    });
    // Without TLS the server refuses MAIL.
    let err = transport(&server)
        .send(&message("a@example.org", "plain", "x"))
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");

    let t = SmtpTransport::builder_dangerous("127.0.0.1")
        .port(server.port)
        .tls(Tls::Required(tls_params(&server)))
        .timeout(Some(Duration::from_secs(10)))
        .build();
    t.send(&message("a@example.org", "over starttls", "x"))
        .unwrap();
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 1);
    assert!(arrivals[0].tls);
}

#[test]
fn implicit_tls_with_auth() {
    let server = SmtpServer::start_with(ServerOptions {
        tls: TlsMode::Implicit,
        auth: Some(("newsletter".into(), "s3cret".into())),
        ..Default::default()
    });
    let build = |pass: &str| {
        SmtpTransport::builder_dangerous("127.0.0.1")
            .port(server.port)
            .tls(Tls::Wrapper(tls_params(&server)))
            .credentials(lettre::transport::smtp::authentication::Credentials::new(
                "newsletter".into(),
                pass.into(),
            ))
            .timeout(Some(Duration::from_secs(10)))
            .build()
    };
    let err = build("wrong")
        .send(&message("a@example.org", "x", "x"))
        .unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    build("s3cret")
        .send(&message("a@example.org", "over smtps", "x"))
        .unwrap();
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 1);
    assert!(arrivals[0].tls);
    assert_eq!(arrivals[0].auth_user.as_deref(), Some("newsletter"));
}

#[test]
fn many_concurrent_connections() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 40;
    let server = SmtpServer::start();
    let start = Instant::now();
    std::thread::scope(|s| {
        for th in 0..THREADS {
            let t = transport(&server);
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    t.send(&message(&format!("u{th}-{i}@example.org"), "load", "x"))
                        .unwrap();
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), THREADS * PER_THREAD);
    let mut seqs: Vec<_> = arrivals.iter().map(|a| a.seq).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), THREADS * PER_THREAD);
    eprintln!(
        "{} messages over {THREADS} connections-at-a-time in {elapsed:?} ({:.0}/s)",
        arrivals.len(),
        arrivals.len() as f64 / elapsed.as_secs_f64()
    );
    assert!(elapsed < Duration::from_secs(30), "too slow: {elapsed:?}");
}

#[test]
fn start_failure_mentions_setup_script() {
    let r = std::panic::catch_unwind(|| {
        SmtpServer::start_with(ServerOptions {
            python: Some("/nonexistent/python3".into()),
            ..Default::default()
        })
    });
    let msg = match r {
        Err(e) => e.downcast_ref::<String>().cloned().unwrap_or_default(),
        Ok(_) => panic!("start with a missing interpreter must panic"),
    };
    assert!(msg.contains("scripts/setup-test-deps"), "{msg}");
}

// ---------------------------------------------------------------------------
// Pipelining (RFC 2920) and the throttling faults
// ---------------------------------------------------------------------------

/// A raw SMTP client: writes exactly what it is given, in one write.
struct Raw {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            w: stream.try_clone().unwrap(),
            r: BufReader::new(stream),
        }
    }

    /// Connect, read the greeting and say EHLO; returns the EHLO lines.
    fn ehlo(port: u16) -> (Raw, Vec<String>) {
        let mut c = Raw::connect(port);
        assert!(c.reply()[0].starts_with("220"));
        c.send("EHLO client.test\r\n");
        let ehlo = c.reply();
        (c, ehlo)
    }

    fn send(&mut self, bytes: &str) {
        self.w.write_all(bytes.as_bytes()).unwrap();
    }

    fn reply(&mut self) -> Vec<String> {
        read_reply(&mut self.r)
    }

    /// The reply's first line, or `None` if the server closed the connection.
    fn reply_or_eof(&mut self) -> Option<String> {
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(0) => None,
            Ok(_) => {
                let mut first = l.trim_end().to_string();
                while first.as_bytes().get(3) == Some(&b'-') {
                    first = self.reply()[0].clone();
                }
                Some(first)
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// The first line of each of `n` replies, in order.
    fn replies(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.reply()[0].clone()).collect()
    }
}

const GROUP: &str = "MAIL FROM:<news@example.com>\r\nRCPT TO:<{to}>\r\nDATA\r\n";
const CONTENT: &str = "Subject: pipelined\r\n\r\nHello\r\n.\r\n";

fn group(to: &str) -> String {
    GROUP.replace("{to}", to)
}

fn codes(replies: &[String]) -> Vec<&str> {
    replies.iter().map(|r| &r[..3]).collect()
}

/// `events.jsonl` with every field (the harness's `Event` has only the
/// common ones).
fn raw_events(server: &SmtpServer) -> Vec<serde_json::Value> {
    std::fs::read_to_string(server.dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events_of<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

fn advertises_pipelining(ehlo: &[String]) -> bool {
    ehlo.iter().any(|l| l[4..] == *"PIPELINING")
}

#[test]
fn ehlo_advertises_pipelining_unless_told_not_to() {
    let server = SmtpServer::start();
    let (_c, ehlo) = Raw::ehlo(server.port);
    assert!(advertises_pipelining(&ehlo), "{ehlo:?}");
    assert!(ehlo.last().unwrap().starts_with("250 "), "{ehlo:?}");
    assert!(ehlo[..ehlo.len() - 1].iter().all(|l| l.starts_with("250-")));

    // The faults file can turn it off (the harness passes no flags) ...
    server.set_faults(json!({"advertise_pipelining": false}));
    let (_c, ehlo) = Raw::ehlo(server.port);
    assert!(!advertises_pipelining(&ehlo), "{ehlo:?}");
    server.stop();

    // ... and so does --no-pipelining.
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(support::smtp::python())
        .arg(support::smtp::server_script())
        .args([
            "--port",
            "0",
            "--no-pipelining",
            "--exit-on-stdin-eof",
            "--dir",
        ])
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().strip_prefix("READY ").unwrap().parse().unwrap();
    let (mut c, ehlo) = Raw::ehlo(port);
    assert!(!advertises_pipelining(&ehlo), "{ehlo:?}");
    // Pipelined input is still answered in order.
    c.send(&group("a@example.org"));
    assert_eq!(codes(&c.replies(3)), ["250", "250", "354"]);
    c.send(CONTENT);
    assert_eq!(codes(&c.replies(1)), ["250"]);
    drop(child.stdin.take());
    child.wait().unwrap();
}

#[test]
fn a_pipelined_stream_is_answered_in_order_and_recorded_as_pipelined() {
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"log_mail": true})),
        ..Default::default()
    });
    let (mut c, ehlo) = Raw::ehlo(server.port);
    assert!(advertises_pipelining(&ehlo));
    // MAIL + RCPT + DATA in one write: three replies, in order.
    c.send(&group("one@example.org"));
    assert_eq!(codes(&c.replies(3)), ["250", "250", "354"]);
    // Content, dot and the next MAIL + RCPT + DATA in one write.
    c.send(&format!("{CONTENT}{}", group("two@example.org")));
    let r = c.replies(4);
    assert_eq!(codes(&r), ["250", "250", "250", "354"], "{r:?}");
    assert!(r[0].contains("queued as 1"), "{r:?}");
    c.send(CONTENT);
    assert!(c.reply()[0].contains("queued as 2"));
    // Then one message in lockstep.
    for (cmd, code) in [
        ("MAIL FROM:<news@example.com>\r\n", "250"),
        ("RCPT TO:<three@example.org>\r\n", "250"),
        ("DATA\r\n", "354"),
        (CONTENT, "250"),
        ("QUIT\r\n", "221"),
    ] {
        c.send(cmd);
        assert!(c.reply()[0].starts_with(code), "{cmd:?}");
    }
    let rcpts: Vec<String> = server
        .arrivals()
        .iter()
        .map(|a| a.rcpt_tos[0].clone())
        .collect();
    assert_eq!(
        rcpts,
        ["one@example.org", "two@example.org", "three@example.org"]
    );

    let events = raw_events(&server);
    let flags = |kind: &str, field: &str| -> Vec<bool> {
        events_of(&events, kind)
            .iter()
            .map(|e| e[field].as_bool().unwrap())
            .collect()
    };
    assert_eq!(flags("mail", "pipelined"), [true, true, false]);
    assert_eq!(flags("rcpt", "mail_pipelined"), [true, true, false]);
    assert_eq!(flags("rcpt", "pipelined"), [true, true, false]);
    // Only the first message's dot was followed by the next MAIL.
    assert_eq!(flags("data", "next_pipelined"), [true, false, false]);
    // Nobody sent content before the 354.
    assert_eq!(flags("data", "data_cmd_pipelined"), [false, false, false]);
    // The harness's Event still parses these lines.
    assert_eq!(server.events().len(), events.len());
}

#[test]
fn a_lockstep_client_is_never_recorded_as_pipelined() {
    let server = SmtpServer::start();
    let t = transport(&server);
    for i in 0..3 {
        t.send(&message(&format!("l{i}@example.org"), "x", "x"))
            .unwrap();
    }
    let events = raw_events(&server);
    // No "mail" lines unless asked for: tests count events.jsonl lines.
    assert!(events_of(&events, "mail").is_empty());
    for e in &events {
        for field in ["mail_pipelined", "pipelined", "next_pipelined"] {
            assert_ne!(e[field], true, "{e}");
        }
    }
    assert_eq!(events.len(), 6, "{events:#?}");
}

#[test]
fn throttle_at_data_over_all_sessions_then_recovers() {
    let reply = "454 Throttling failure: Maximum sending rate exceeded.";
    let server = SmtpServer::start_with(ServerOptions {
        // A four-second window, so that a loaded machine sends the twelve
        // within it (a one-second one failed at 1.5 s with load 16).
        faults: Some(json!({"throttle": {"rate": 5, "reply": reply, "at": "data", "window": 4}})),
        ..Default::default()
    });
    // lettre opens a connection per send: the window spans sessions.
    let t = transport(&server);
    let start = Instant::now();
    let outcomes: Vec<Option<String>> = (0..12)
        .map(|i| {
            t.send(&message(&format!("t{i}@example.org"), "x", "x"))
                .err()
                .map(|e| {
                    assert!(e.is_transient(), "{e:?}");
                    e.to_string()
                })
        })
        .collect();
    assert!(
        start.elapsed() < Duration::from_millis(3600),
        "too slow to test a four-second window: {:?}",
        start.elapsed()
    );
    assert!(outcomes[..5].iter().all(Option::is_none), "{outcomes:?}");
    assert!(
        outcomes[5..].iter().all(|o| o
            .as_deref()
            .is_some_and(|e| e.contains("Throttling failure"))),
        "{outcomes:?}"
    );
    assert_eq!(
        server.arrivals().len(),
        5,
        "throttled messages are not stored"
    );
    std::thread::sleep(Duration::from_millis(4100));
    t.send(&message("late@example.org", "x", "x")).unwrap();
    assert_eq!(server.arrivals().len(), 6);

    let events = raw_events(&server);
    let throttled: Vec<_> = events_of(&events, "data")
        .into_iter()
        .filter(|e| e["fault"] == "throttle")
        .collect();
    assert_eq!(throttled.len(), 7);
    assert!(
        throttled
            .iter()
            .all(|e| e["reply"] == reply && e["seq"].is_null())
    );
    let sessions: std::collections::BTreeSet<_> =
        throttled.iter().map(|e| e["session"].as_u64()).collect();
    assert_eq!(sessions.len(), 7, "one session per lettre send");
}

#[test]
fn throttle_at_rcpt_and_at_mail() {
    let server = SmtpServer::start_with(ServerOptions {
        // A long window: the third must meet the throttle however slow the machine.
        faults: Some(json!({"throttle": {"rate": 2, "at": "rcpt", "window": 60}})),
        ..Default::default()
    });
    let (mut c, _) = Raw::ehlo(server.port);
    for i in 0..2 {
        c.send(&group(&format!("r{i}@example.org")));
        assert_eq!(codes(&c.replies(3)), ["250", "250", "354"]);
        c.send(CONTENT);
        assert_eq!(codes(&c.replies(1)), ["250"]);
    }
    c.send(&group("r2@example.org"));
    let r = c.replies(3);
    assert_eq!(codes(&r), ["250", "454", "503"], "{r:?}");
    assert_eq!(
        r[1],
        "454 Throttling failure: Maximum sending rate exceeded."
    );
    c.send("RSET\r\n");
    c.reply();

    server.set_faults(json!({"throttle": {"rate": 0, "at": "mail", "reply": "421 4.7.0 Rate"}}));
    c.send(&group("m@example.org"));
    let r = c.replies(3);
    assert_eq!(codes(&r), ["421", "503", "503"], "{r:?}");
    let events = raw_events(&server);
    let mail = events_of(&events, "mail");
    assert_eq!(mail.len(), 1, "refused MAILs are logged: {events:#?}");
    assert_eq!(mail[0]["fault"], "throttle");
    assert_eq!(mail[0]["pipelined"], true);
    let rcpt = events_of(&events, "rcpt");
    assert_eq!(rcpt[2]["fault"], "throttle");
    assert_eq!(server.arrivals().len(), 2);
}

#[test]
fn quota_refuses_every_message_after_max() {
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"quota": {"max": 3}})),
        ..Default::default()
    });
    let t = transport(&server);
    for i in 0..3 {
        t.send(&message(&format!("q{i}@example.org"), "x", "x"))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    for i in 3..5 {
        let e = t
            .send(&message(&format!("q{i}@example.org"), "x", "x"))
            .unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        assert!(
            e.to_string().contains("Daily message quota exceeded"),
            "{e}"
        );
    }
    assert_eq!(server.arrivals().len(), 3);
    let events = raw_events(&server);
    let refused = events_of(&events, "data")
        .into_iter()
        .filter(|e| e["fault"] == "quota")
        .count();
    assert_eq!(refused, 2);
}

#[test]
fn too_many_connections_are_refused_at_the_greeting() {
    let reply = "421 4.7.0 Too many connections, try again later";
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"too_many_connections": {"max": 2}})),
        ..Default::default()
    });
    let (a, _) = Raw::ehlo(server.port);
    let (_b, _) = Raw::ehlo(server.port);
    let mut c = Raw::connect(server.port);
    assert_eq!(c.reply_or_eof().as_deref(), Some(reply));
    assert_eq!(c.reply_or_eof(), None, "closed after the 421");
    drop(a);
    // Once one has gone, a new connection is greeted normally.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut d = Raw::connect(server.port);
        let greeting = d.reply_or_eof().unwrap();
        if greeting.starts_with("220") {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {greeting}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let events = raw_events(&server);
    let refused = events_of(&events, "connection");
    assert!(!refused.is_empty());
    assert!(
        refused
            .iter()
            .all(|e| e["refused"] == true && e["reply"] == reply && e["live"] == 2)
    );
}

#[test]
fn drop_at_rcpt_closes_in_the_middle_of_a_pipelined_group() {
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"drop_at_rcpt": {"Drop@example.org": 1}})),
        ..Default::default()
    });
    let (mut c, _) = Raw::ehlo(server.port);
    c.send("MAIL FROM:<news@example.com>\r\nRCPT TO:<ok@example.org>\r\nRCPT TO:<drop@example.org>\r\nDATA\r\n");
    assert_eq!(c.reply_or_eof().as_deref().map(|r| &r[..3]), Some("250"));
    assert_eq!(c.reply_or_eof().as_deref().map(|r| &r[..3]), Some("250"));
    assert_eq!(c.reply_or_eof(), None, "no reply to the second RCPT");
    assert!(server.arrivals().is_empty());

    // N = 1: the next attempt goes through.
    let (mut c, _) = Raw::ehlo(server.port);
    c.send(&group("drop@example.org"));
    assert_eq!(codes(&c.replies(3)), ["250", "250", "354"]);
    c.send(CONTENT);
    assert_eq!(codes(&c.replies(1)), ["250"]);
    assert_eq!(server.arrivals().len(), 1);

    let events = raw_events(&server);
    let rcpt = events_of(&events, "rcpt");
    assert_eq!(rcpt.len(), 3, "{events:#?}");
    assert_eq!(rcpt[1]["addr"], "drop@example.org");
    assert!(rcpt[1]["reply"].is_null() && rcpt[1]["dropped"] == true);
    assert_eq!(rcpt[1]["pipelined"], true, "DATA was already buffered");
}

#[test]
fn data_354_without_rcpt_reads_the_content_and_stores_nothing() {
    // Without the fault aiosmtpd answers 503 to DATA.
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"rcpt": {"bad@example.org": "550 5.1.1 No such user"}})),
        ..Default::default()
    });
    let (mut c, _) = Raw::ehlo(server.port);
    c.send(&group("bad@example.org"));
    assert_eq!(codes(&c.replies(3)), ["250", "550", "503"]);

    server.set_faults(json!({
        "rcpt": {"bad@example.org": "550 5.1.1 No such user"},
        "data_354_without_rcpt": true
    }));
    c.send("RSET\r\n");
    c.reply();
    c.send(&group("bad@example.org"));
    assert_eq!(codes(&c.replies(3)), ["250", "550", "354"]);
    c.send(".\r\n");
    assert_eq!(c.reply()[0], "554 5.5.1 No valid recipients");
    // The connection goes on: a good recipient next is stored.
    c.send(&group("good@example.org"));
    assert_eq!(codes(&c.replies(3)), ["250", "250", "354"]);
    c.send(CONTENT);
    assert_eq!(codes(&c.replies(1)), ["250"]);
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 1);
    assert_eq!(arrivals[0].rcpt_tos, ["good@example.org"]);
    let events = raw_events(&server);
    let data = events_of(&events, "data");
    assert_eq!(data.len(), 2, "{events:#?}");
    assert_eq!(data[0]["no_rcpt"], true);
    assert_eq!(data[0]["rcpt_tos"], json!([]));
    assert!(data[0]["seq"].is_null());
}

// ---------------------------------------------------------------------------
// The delaying proxy (tests/support/latency_proxy.py)
// ---------------------------------------------------------------------------

/// The proxy in front of `target`, adding `rtt_ms`; stops when dropped.
struct Proxy {
    port: u16,
    child: std::process::Child,
}

impl Proxy {
    fn start(target: u16, rtt_ms: u32) -> Proxy {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/latency_proxy.py");
        let mut child = std::process::Command::new(support::smtp::python())
            .arg(script)
            .args([
                "--rtt-ms",
                &rtt_ms.to_string(),
                "--target",
                &target.to_string(),
            ])
            .arg("--exit-on-stdin-eof")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("proxy said {line:?}"))
            .parse()
            .unwrap();
        Proxy { port, child }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

#[test]
fn the_proxy_adds_one_round_trip_per_exchange_not_per_chunk() {
    // Long enough that a loaded machine's scheduling delays (a group took
    // 300 ms of a 100 ms RTT at load 12) stay well under one round trip.
    const RTT: Duration = Duration::from_millis(300);
    let server = SmtpServer::start();
    let proxy = Proxy::start(server.port, 300);
    let start = Instant::now();
    let mut c = Raw::connect(proxy.port);
    assert!(c.reply()[0].starts_with("220"));
    // The greeting travels one way.
    assert!(start.elapsed() >= RTT / 2, "{:?}", start.elapsed());

    let timed = |c: &mut Raw, bytes: &str, replies: usize| {
        let t = Instant::now();
        c.send(bytes);
        let r = c.replies(replies);
        (t.elapsed(), r)
    };
    let (took, _) = timed(&mut c, "EHLO client.test\r\n", 1);
    assert!(took >= RTT && took < RTT * 3, "EHLO took {took:?}");
    // A pipelined group costs one round trip, like a single command.
    let (took, r) = timed(&mut c, &group("far@example.org"), 3);
    assert_eq!(codes(&r), ["250", "250", "354"]);
    assert!(took >= RTT && took < RTT * 3, "the group took {took:?}");
    // 300 KB in 30 writes: each chunk is delayed by RTT/2, not RTT/2 more
    // than the one before it (that would take 4.5 s).
    let line = format!("{}\r\n", "x".repeat(998));
    let chunk = line.repeat(10);
    let t = Instant::now();
    c.send("Subject: far\r\n\r\n");
    for _ in 0..30 {
        c.send(&chunk);
    }
    c.send(".\r\n");
    assert!(c.reply()[0].starts_with("250"));
    let took = t.elapsed();
    assert!(took >= RTT && took < RTT * 5, "the content took {took:?}");
    let (_, r) = timed(&mut c, "QUIT\r\n", 1);
    assert!(r[0].starts_with("221"));
    // The server's close reaches the client.
    assert_eq!(c.reply_or_eof(), None);

    let msgs = server.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0].raw,
        format!("Subject: far\r\n\r\n{}", chunk.repeat(30)).as_bytes()
    );
}

#[test]
fn the_proxy_carries_16_connections_at_once() {
    let server = SmtpServer::start();
    let proxy = Proxy::start(server.port, 100);
    let start = Instant::now();
    std::thread::scope(|s| {
        for th in 0..16 {
            let t = SmtpTransport::builder_dangerous("127.0.0.1")
                .port(proxy.port)
                .timeout(Some(Duration::from_secs(20)))
                .build();
            s.spawn(move || {
                for i in 0..2 {
                    t.send(&message(&format!("p{th}-{i}@example.org"), "far", "x"))
                        .unwrap();
                }
            });
        }
    });
    let took = start.elapsed();
    assert_eq!(server.arrivals().len(), 32);
    // Two lockstep sends of ~8 round trips each: ~1.6 s when the 16
    // connections run side by side, ~26 s if the proxy served one at a time.
    assert!(took < Duration::from_secs(8), "{took:?}");
    eprintln!("32 messages over 16 connections at 100 ms in {took:?}");
}
