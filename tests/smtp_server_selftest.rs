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
