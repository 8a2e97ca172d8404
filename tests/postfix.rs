//! `newsletter send` through a real MTA: Postfix's smtpd from Debian, a
//! private instance per test on a loopback port delivering to Maildirs
//! (tests/support/postfix.rs). Our Python test server agrees with our
//! client by construction; Postfix is an independent peer with its own
//! PIPELINING, replies and queue, which the pipelining client (issue 14)
//! must meet — with pipelining on and, through `pipelining = false`, off.
//! Postfix also judges the client: it logs (and refuses DATA after) bytes
//! sent ahead where RFC 2920 forbids it — after EHLO, STARTTLS or AUTH, or
//! the message before the 354 to DATA — and every send test asserts that
//! it logged none.
//! Needs root and `scripts/setup-test-deps`.

mod support;

use std::collections::BTreeSet;

use mail_parser::{MimeHeaders, PartType};
use support::postfix::{DOMAIN, Delivered, Postfix, PostfixOptions, assert_delivered_once};
use support::project::{Output, Project, SECRET};

const ISSUE: &str = "issues/2022-07-13.toml";
const LIST_ID: &str = "supporters.renecassin.example.org";
const FROM: &str = "newsletter@renecassin.example.org";
const SUBSCRIBERS: usize = 20;
const USER: &str = "newsletter";
const PASSWORD: &str = "Postfix-test-Pa55word-91c2";
const PASSWORD_ENV: &str = "NEWSLETTER_POSTFIX_TEST_PASSWORD";

/// `reader01@example.test` … `reader{n}@example.test`.
fn readers(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("reader{i:02}@{DOMAIN}")).collect()
}

/// The example project sending to `port` with these `[smtp]` lines, to
/// exactly these subscribers (all subscribed).
fn project(port: u16, smtp: &str, addresses: &[String]) -> Project {
    let p = Project::example();
    let text = p.read("newsletter.toml");
    let head = &text[..text.find("[transport]").unwrap()];
    p.write(
        "newsletter.toml",
        &format!(
            "{head}[transport]\nkind = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntimeout-seconds = 10\n{smtp}\n\n[sending]\nper-second = 0\nconnections = 2\n"
        ),
    );
    let mut csv = String::from("email,first_name,last_name,status\n");
    for (i, a) in addresses.iter().enumerate() {
        csv.push_str(&format!("{a},Reader{},Example,subscribed\n", i + 1));
    }
    p.write("subscribers.example.csv", &csv);
    p
}

/// Runs `send`; panics unless it exits with `code`, with both streams and
/// the tail of Postfix's log.
#[track_caller]
fn send(mta: &Postfix, p: &Project, env: &[(&str, &str)], code: i32) -> Output {
    let mut cmd = p.command(&["send", ISSUE, "--yes"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run newsletter send");
    let out = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        out.code == code && !out.stderr.contains("panicked"),
        "exit code {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}\n--- Postfix maillog (last 30 lines)\n{}",
        out.code,
        out.stdout,
        out.stderr,
        mta.log_tail(30)
    );
    out
}

/// `newsletter status`: (accepted, failed, uncertain, deferred, pending).
fn status(p: &Project) -> (u64, u64, u64, u64, u64) {
    let out = p.run(&["status", ISSUE]);
    out.expect_code(0);
    let count = |key: &str| -> u64 {
        out.stdout
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, v)| *k == key && !v.contains('@'))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{key}: N` line in status:\n{}", out.stdout))
    };
    (
        count("accepted"),
        count("failed"),
        count("uncertain"),
        count("deferred"),
        count("pending"),
    )
}

fn unsubscribe_url(address: &str) -> String {
    let token = newsletter::token::Signer::new(LIST_ID, SECRET.as_bytes()).token(address);
    format!("https://news.renecassin.example.org/unsubscribe/{token}")
}

/// Each delivered message is the one meant for its mailbox and complete:
/// To, a distinct Message-ID, multipart/alternative (text, then HTML, both
/// with the recipient's own unsubscribe link), the List-Unsubscribe pair,
/// and Postfix's own trace headers (Delivered-To, our envelope sender).
#[track_caller]
fn assert_well_formed(delivered: &[Delivered]) {
    let mut ids = BTreeSet::new();
    for d in delivered {
        let rcpt = d.rcpt.as_str();
        assert_eq!(d.header("Delivered-To").as_deref(), Some(rcpt));
        assert_eq!(
            d.header("Return-Path"),
            Some(format!("<{FROM}>")),
            "{rcpt}: envelope sender"
        );
        let msg = d.parsed();
        let to: Vec<_> = msg.to().expect("To").iter().collect();
        assert_eq!(to.len(), 1, "{rcpt}: one To address");
        assert_eq!(to[0].address(), Some(rcpt), "{rcpt}: To");
        let id = msg.message_id().expect("Message-ID").to_string();
        assert!(id.ends_with("@renecassin.example.org"), "{rcpt}: {id}");
        assert!(ids.insert(id.clone()), "{rcpt}: Message-ID {id} twice");

        let url = unsubscribe_url(rcpt);
        assert_eq!(
            d.header("List-Unsubscribe"),
            Some(format!(
                "<{url}>, <mailto:unsubscribe@renecassin.example.org?subject=unsubscribe>"
            )),
            "{rcpt}: List-Unsubscribe"
        );
        assert_eq!(
            d.header("List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );

        let root = msg.root_part();
        let ct = root.content_type().expect("Content-Type");
        assert_eq!(
            (ct.ctype(), ct.subtype()),
            ("multipart", Some("alternative")),
            "{rcpt}"
        );
        let PartType::Multipart(children) = &root.body else {
            panic!("{rcpt}: root is not multipart");
        };
        assert_eq!(children.len(), 2, "{rcpt}: two alternatives");
        let PartType::Text(text) = &msg.parts[children[0] as usize].body else {
            panic!("{rcpt}: the first part is not text/plain");
        };
        let PartType::Html(html) = &msg.parts[children[1] as usize].body else {
            panic!("{rcpt}: the second part is not text/html");
        };
        assert!(
            text.contains(&url),
            "{rcpt}: text lacks its unsubscribe link"
        );
        assert!(
            html.contains(&url),
            "{rcpt}: HTML lacks its unsubscribe link"
        );
    }
}

/// Everyone gets exactly one complete message, status says all accepted,
/// and a second send sends nothing.
fn send_to_twenty(smtp: &str) {
    let addresses = readers(SUBSCRIBERS);
    let mta = Postfix::start(&addresses);
    let p = project(mta.port, &format!("tls = \"none\"\n{smtp}"), &addresses);

    send(&mta, &p, &[], 0);
    let delivered = mta.wait_for_delivery(SUBSCRIBERS);
    assert_delivered_once(&delivered, &addresses);
    assert_well_formed(&delivered);
    assert_eq!(status(&p), (SUBSCRIBERS as u64, 0, 0, 0, 0));

    let again = send(&mta, &p, &[], 0);
    // The queue is empty again, so anything the second run handed over
    // would be in a Maildir by now.
    let after = mta.wait_for_delivery(SUBSCRIBERS);
    assert_eq!(
        after.len(),
        SUBSCRIBERS,
        "a second send must not mail anyone again; stderr:\n{}",
        again.stderr
    );
    assert_eq!(status(&p), (SUBSCRIBERS as u64, 0, 0, 0, 0));
    mta.assert_no_improper_pipelining();
}

#[test]
fn twenty_subscribers_each_get_one_message_through_postfix() {
    send_to_twenty("");
}

/// The lockstep path, forced (issue 14's `[smtp] pipelining = false`).
#[test]
fn twenty_subscribers_through_postfix_without_pipelining() {
    send_to_twenty("pipelining = false");
}

/// A server that does not offer PIPELINING (the client must take its
/// lockstep path) still gets every message once. (Postfix 3.7 does not log
/// MAIL or RCPT sent ahead here, only what follows EHLO, DATA and the other
/// commands that end a group.)
#[test]
fn a_postfix_without_pipelining_gets_everything_once() {
    let addresses = readers(SUBSCRIBERS);
    let mta = Postfix::start_with(PostfixOptions {
        mailboxes: addresses.clone(),
        no_pipelining: true,
        ..Default::default()
    });
    let p = project(mta.port, "tls = \"none\"", &addresses);
    send(&mta, &p, &[], 0);
    let delivered = mta.wait_for_delivery(SUBSCRIBERS);
    assert_delivered_once(&delivered, &addresses);
    assert_well_formed(&delivered);
    assert_eq!(status(&p), (SUBSCRIBERS as u64, 0, 0, 0, 0));
    mta.assert_no_improper_pipelining();
}

#[test]
fn an_address_postfix_refuses_at_rcpt_fails_alone() {
    let addresses = readers(SUBSCRIBERS);
    let bad = addresses[9].clone();
    let others: Vec<String> = addresses.iter().filter(|a| **a != bad).cloned().collect();
    let mta = Postfix::start_with(PostfixOptions {
        mailboxes: others.clone(),
        ..Default::default()
    });
    let p = project(mta.port, "tls = \"none\"", &addresses);

    let out = send(&mta, &p, &[], 1);
    assert!(
        out.stderr.contains(&bad) && out.stderr.contains("550 5.1.1"),
        "stderr names {bad} and Postfix's reply:\n{}",
        out.stderr
    );
    let delivered = mta.wait_for_delivery(others.len());
    assert_delivered_once(&delivered, &others);
    assert_well_formed(&delivered);
    assert_eq!(status(&p), (others.len() as u64, 1, 0, 0, 0));

    let csv = p.path("failed.csv");
    p.run(&["status", ISSUE, "--failed-csv", csv.to_str().unwrap()])
        .expect_code(0);
    let mut reader = csv::Reader::from_path(&csv).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 1, "one failed row: {rows:?}");
    let row: Vec<&str> = rows[0].iter().collect();
    assert_eq!(row.len(), 4, "address, outcome, reply, stage: {row:?}");
    assert_eq!(
        (row[0], row[1], row[3]),
        (bad.as_str(), "failed", "RCPT TO")
    );
    assert!(
        row[2].starts_with(&format!(
            "550 5.1.1 <{bad}>: Recipient address rejected: User unknown"
        )),
        "Postfix's reply as it was sent: {row:?}"
    );
    let log = mta.wait_for_log(&format!("to=<{bad}>"), 1);
    assert_eq!(
        log.matches(&format!("to=<{bad}>")).count(),
        1,
        "RCPT {bad} once (5xx is not retried); maillog:\n{log}"
    );
    mta.assert_no_improper_pipelining();
}

/// Every message came over TLS: Postfix says so in its Received header
/// ("with ESMTPS", "using TLS…"; "ESMTPSA" when also authenticated).
#[track_caller]
fn assert_received_over_tls(delivered: &[Delivered], with: &str) {
    for d in delivered {
        let received = d.header("Received").expect("Received");
        assert!(
            received.contains(&format!("with {with} ")) && received.contains("(using TLS"),
            "{}: not received {with} over TLS: {received}",
            d.rcpt
        );
    }
}

#[test]
fn starttls_through_postfix_delivers() {
    let addresses = readers(SUBSCRIBERS);
    let mta = Postfix::start_with(PostfixOptions {
        mailboxes: addresses.clone(),
        starttls: true,
        ..Default::default()
    });
    let ca = mta.ca_pem.clone().unwrap();
    let p = project(
        mta.port,
        &format!("tls = \"starttls\"\nca-file = \"{}\"", ca.display()),
        &addresses,
    );
    send(&mta, &p, &[], 0);
    let delivered = mta.wait_for_delivery(SUBSCRIBERS);
    assert_delivered_once(&delivered, &addresses);
    assert_well_formed(&delivered);
    assert_received_over_tls(&delivered, "ESMTPS");
    assert_eq!(status(&p), (SUBSCRIBERS as u64, 0, 0, 0, 0));
    mta.assert_no_improper_pipelining();
}

/// An instance that requires AUTH (after STARTTLS) for every recipient,
/// and a project that logs in with `password-env`.
fn with_auth(addresses: &[String]) -> (Postfix, Project) {
    let mta = Postfix::start_with(PostfixOptions {
        mailboxes: addresses.to_vec(),
        starttls: true,
        auth: Some((USER.into(), PASSWORD.into())),
        ..Default::default()
    });
    let ca = mta.ca_pem.clone().unwrap();
    let p = project(
        mta.port,
        &format!(
            "tls = \"starttls\"\nca-file = \"{}\"\nusername = \"{USER}\"\npassword-env = \"{PASSWORD_ENV}\"",
            ca.display()
        ),
        addresses,
    );
    (mta, p)
}

#[test]
fn auth_plain_over_starttls_through_postfix_delivers() {
    let addresses = readers(SUBSCRIBERS);
    let (mta, p) = with_auth(&addresses);
    send(&mta, &p, &[(PASSWORD_ENV, PASSWORD)], 0);
    let delivered = mta.wait_for_delivery(SUBSCRIBERS);
    assert_delivered_once(&delivered, &addresses);
    assert_received_over_tls(&delivered, "ESMTPSA");
    for d in &delivered {
        let received = d.header("Received").unwrap();
        assert!(
            received.contains(&format!("(Authenticated sender: {USER}@{DOMAIN})")),
            "{}: {received}",
            d.rcpt
        );
    }
    // One line per accepted message, naming the mechanism and the user
    // (the realm is Postfix's smtpd_sasl_local_domain).
    let log = mta.wait_for_log("client=localhost[127.0.0.1]", SUBSCRIBERS);
    let clients: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("client=localhost[127.0.0.1]"))
        .collect();
    assert!(
        clients
            .iter()
            .all(|l| l.ends_with(&format!("sasl_method=PLAIN, sasl_username={USER}@{DOMAIN}"))),
        "every message after AUTH PLAIN: {clients:#?}"
    );
    assert_eq!(status(&p), (SUBSCRIBERS as u64, 0, 0, 0, 0));
    mta.assert_no_improper_pipelining();
}

/// Postfix, not our client, decides: a wrong password is answered 535 and
/// nothing is handed over.
#[test]
fn a_wrong_password_is_refused_by_postfix() {
    let addresses = readers(SUBSCRIBERS);
    let (mta, p) = with_auth(&addresses);
    let out = send(&mta, &p, &[(PASSWORD_ENV, "Wrong-Pa55word-0000")], 2);
    assert!(
        out.stderr.contains("the server refused the login") && out.stderr.contains("535"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("Wrong-Pa55word"), "{}", out.stderr);
    assert!(mta.wait_for_delivery(0).is_empty());
}

/// The check is not vacuous: a client that sends the message before the
/// 354 to DATA (RFC 2920 §3.1: DATA ends a group) is logged by Postfix and
/// refused.
#[test]
fn postfix_catches_a_client_that_sends_ahead() {
    use std::io::{BufRead, BufReader, Write};
    let rcpt = readers(1).remove(0);
    let mta = Postfix::start(std::slice::from_ref(&rcpt));
    let stream = std::net::TcpStream::connect(mta.addr()).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    // The last line of each reply.
    let mut reply = || loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "Postfix closed the connection");
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.trim_end().to_string();
        }
    };
    assert!(reply().starts_with("220 "));
    writer.write_all(b"EHLO client.example.org\r\n").unwrap();
    assert!(reply().starts_with("250 "));
    writer
        .write_all(
            format!(
                "MAIL FROM:<{FROM}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\nSubject: early\r\n\r\nToo early.\r\n.\r\nQUIT\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let replies: Vec<String> = (0..3).map(|_| reply()).collect();
    assert!(
        replies[2].starts_with("503 5.5.0") && replies[2].contains("pipelining"),
        "DATA with the message sent ahead: {replies:?}\n{}",
        mta.log_tail(20)
    );
    drop(writer);
    mta.wait_for_log("improper command pipelining after DATA", 1);
    let check = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        mta.assert_no_improper_pipelining()
    }));
    assert!(check.is_err(), "assert_no_improper_pipelining let it pass");
    assert!(mta.wait_for_delivery(0).is_empty(), "delivered anyway");
}
