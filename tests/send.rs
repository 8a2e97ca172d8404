//! `newsletter send` and `newsletter status` against a real SMTP server
//! (tests/support/smtp_server.py, aiosmtpd): what arrives, what the journal
//! remembers, and how failures, crashes and Ctrl-C are handled.
//! Needs `scripts/setup-test-deps` to have been run.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde_json::json;
use support::project::{Output, Project, SECRET};
use support::smtp::{ServerOptions, SmtpServer, assert_exactly_once, per_recipient};

const ISSUE: &str = "issues/2022-07-13.toml";
const SUBJECT: &str = "Rwanda, Refugees, and Our Rights under threat";
const LIST_ID: &str = "supporters.renecassin.example.org";
const JOURNAL: &str = "journal/2022-07-13.journal";
/// Generous limit for any single run of the binary.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The subscribed rows of `subscribers.example.csv`: address, the display
/// name in `To`, and the name in the greeting. The unsubscribed
/// (chaim.levy) and bounced (amara.okafor) rows are not here.
const EXAMPLE_SUBSCRIBED: &[(&str, &str, &str)] = &[
    ("ruth.abrahams@example.org", "Ruth Abrahams", "Ruth"),
    ("zoe.brightman@example.com", "Zoë Brightman", "Zoë"),
    ("jose.garcia@example.org", "José García", "José"),
    ("lukasz.wojcik@example.com", "Łukasz Wójcik", "Łukasz"),
    ("li.wei@example.org", "李 伟", "李"),
    ("anonymous.supporter@example.com", "Cohen", "Supporter"),
    ("siobhan.oconnor@example.org", "Siobhán O'Connor", "Siobhán"),
    ("fatima.rahman@example.com", "Fatima Rahman", "Fatima"),
    ("rahel.tesfaye@supporters.test", "Rahel Tesfaye", "Rahel"),
    ("bjorn.sorensen@example.org", "Björn Sørensen", "Björn"),
];
const EXAMPLE_NOT_SUBSCRIBED: &[&str] = &["chaim.levy@example.org", "amara.okafor@example.com"];

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn example_addresses() -> Vec<String> {
    EXAMPLE_SUBSCRIBED
        .iter()
        .map(|(a, _, _)| a.to_string())
        .collect()
}

/// `user0001@example.org` … `user{n}@example.org`.
fn users(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("user{i:04}@example.org")).collect()
}

/// A subscriber CSV for these addresses, all subscribed.
fn csv_for(addresses: &[String]) -> String {
    let mut text = String::from("email,first_name,last_name,status\n");
    for (i, a) in addresses.iter().enumerate() {
        let n = i + 1;
        text.push_str(&format!("{a},First{n},Last{n},subscribed\n"));
    }
    text
}

/// The example project, sending to `server` with these `[sending]` lines.
fn project(server: &SmtpServer, sending: &str) -> Project {
    let p = Project::example();
    p.use_smtp(server.port, sending);
    p
}

fn send_args<'a>(list: Option<&'a str>, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["send", ISSUE];
    if let Some(list) = list {
        args.extend(["--subscribers", list]);
    }
    args.extend_from_slice(extra);
    args
}

/// `newsletter status` parsed.
#[derive(Debug, Default)]
struct StatusReport {
    accepted: u64,
    failed: u64,
    uncertain: u64,
    deferred: u64,
    pending: u64,
    uncertain_list: BTreeSet<String>,
}

fn status(p: &Project, list: Option<&str>) -> StatusReport {
    let mut args = vec!["status", ISSUE];
    if let Some(list) = list {
        args.extend(["--subscribers", list]);
    }
    let out = p.run(&args);
    out.expect_code(0);
    parse_status(&out.stdout)
}

fn parse_status(stdout: &str) -> StatusReport {
    let mut r = StatusReport::default();
    let mut seen = BTreeSet::new();
    for line in stdout.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let count = || -> u64 {
            value
                .parse()
                .unwrap_or_else(|_| panic!("bad status line {line:?}"))
        };
        match key {
            "accepted" => r.accepted = count(),
            "failed" => r.failed = count(),
            "uncertain" if value.contains('@') => {
                r.uncertain_list.insert(value.to_lowercase());
                continue;
            }
            "uncertain" => r.uncertain = count(),
            "deferred" => r.deferred = count(),
            "pending" => r.pending = count(),
            _ => continue,
        }
        seen.insert(key.to_string());
    }
    assert_eq!(
        seen.len(),
        5,
        "status should print all five counts:\n{stdout}"
    );
    assert_eq!(
        r.uncertain_list.len() as u64,
        r.uncertain,
        "status should list every uncertain address:\n{stdout}"
    );
    r
}

/// Runs a prepared command to the end (killing it after [`RUN_TIMEOUT`]).
fn run_command(mut cmd: Command) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_logged(&mut cmd, dir.path());
    wait_output(child, dir.path(), RUN_TIMEOUT)
}

/// Spawns with stdout and stderr going to files in `dir` (no pipe can fill).
fn spawn_logged(cmd: &mut Command, dir: &Path) -> Child {
    let stdout = fs::File::create(dir.join("stdout")).unwrap();
    let stderr = fs::File::create(dir.join("stderr")).unwrap();
    cmd.stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn newsletter")
}

/// Waits for a child started by [`spawn_logged`]; panics after `timeout`.
fn wait_output(mut child: Child, dir: &Path, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "newsletter did not finish within {timeout:?}; stderr:\n{}",
                fs::read_to_string(dir.join("stderr")).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code().unwrap_or(-1),
        stdout: fs::read_to_string(dir.join("stdout")).unwrap_or_default(),
        stderr: fs::read_to_string(dir.join("stderr")).unwrap_or_default(),
    }
}

/// Polls until `f` is true; panics with `what` after `timeout`.
fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// The issue's journal, if it exists.
fn journal_text(p: &Project) -> Option<String> {
    fs::read_to_string(p.path(JOURNAL)).ok()
}

fn unsubscribe_url(address: &str) -> String {
    let token = newsletter::token::Signer::new(LIST_ID, SECRET.as_bytes()).token(address);
    format!("https://news.renecassin.example.org/unsubscribe/{token}")
}

/// The header section of a raw message (up to the first empty line).
fn raw_headers(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header section ending in an empty line");
    &raw[..end + 2]
}

/// The unfolded value of the one header called `name` in a raw header block.
fn raw_header(headers: &str, name: &str) -> String {
    let unfolded = headers.replace("\r\n ", " ").replace("\r\n\t", "\t");
    let prefix = format!("{}:", name.to_lowercase());
    let found: Vec<&str> = unfolded
        .split("\r\n")
        .filter(|l| l.to_lowercase().starts_with(&prefix))
        .collect();
    assert_eq!(found.len(), 1, "exactly one `{name}` header in:\n{headers}");
    found[0][prefix.len()..].trim().to_string()
}

fn message_id_of(raw: &[u8]) -> String {
    let msg = MessageParser::default().parse(raw).expect("parse message");
    msg.message_id().expect("a Message-ID header").to_string()
}

// ---------------------------------------------------------------------------
// 1. Happy path
// ---------------------------------------------------------------------------

#[test]
fn sends_one_complete_message_to_each_subscriber() {
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 0\nconnections = 2");
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    let out = p.run(&send_args(None, &["--yes"]));
    out.expect_code(0);

    let messages = server.messages();
    assert_eq!(
        messages.len(),
        EXAMPLE_SUBSCRIBED.len(),
        "one message per subscribed row; stderr:\n{}",
        out.stderr
    );
    assert_exactly_once(&server, &example_addresses());
    for not in EXAMPLE_NOT_SUBSCRIBED {
        assert!(server.messages_to(not).is_empty(), "{not} was mailed");
    }

    let mut message_ids = BTreeSet::new();
    for (address, name, first) in EXAMPLE_SUBSCRIBED {
        let got = server.messages_to(address);
        assert_eq!(got.len(), 1);
        let m = &got[0];
        assert_eq!(m.rcpt_tos, vec![address.to_string()], "envelope RCPT");
        assert_eq!(m.mail_from, "newsletter@renecassin.example.org");

        // The header section is plain ASCII: non-ASCII names are encoded.
        let headers = raw_headers(&m.raw);
        assert!(
            headers.is_ascii(),
            "{address}: raw 8-bit bytes in the headers:\n{}",
            String::from_utf8_lossy(headers)
        );
        let headers = std::str::from_utf8(headers).unwrap();
        let raw_to = raw_header(headers, "To");
        if !name.is_ascii() {
            assert!(
                raw_to.to_lowercase().contains("=?utf-8?"),
                "{address}: To should be RFC 2047 encoded: {raw_to}"
            );
        }
        assert_eq!(raw_header(headers, "MIME-Version"), "1.0");
        assert_eq!(
            raw_header(headers, "List-Unsubscribe"),
            format!(
                "<{}>, <mailto:unsubscribe@renecassin.example.org?subject=unsubscribe>",
                unsubscribe_url(address)
            ),
            "{address}: List-Unsubscribe"
        );
        assert_eq!(
            raw_header(headers, "List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click"
        );
        let list_id = raw_header(headers, "List-Id");
        assert!(
            list_id.ends_with(&format!("<{LIST_ID}>")),
            "List-Id: {list_id}"
        );

        let msg = MessageParser::default().parse(&m.raw).expect("parse");
        let from = msg.from().and_then(|a| a.first()).expect("From");
        assert_eq!(from.name(), Some("René Cassin"));
        assert_eq!(from.address(), Some("newsletter@renecassin.example.org"));
        let reply_to = msg.reply_to().and_then(|a| a.first()).expect("Reply-To");
        assert_eq!(reply_to.name(), Some("Mia Hasenson-Gross"));
        assert_eq!(reply_to.address(), Some("office@renecassin.example.org"));
        let to: Vec<_> = msg.to().expect("To").iter().collect();
        assert_eq!(to.len(), 1, "{address}: one To address");
        assert_eq!(to[0].address(), Some(*address));
        assert_eq!(to[0].name(), Some(*name), "{address}: To display name");
        assert_eq!(msg.subject(), Some(SUBJECT));
        let date = msg.date().expect("Date").to_timestamp();
        assert!(
            (started - 300..=started + 300).contains(&date),
            "{address}: Date {date} is not about now ({started})"
        );
        let id = msg.message_id().expect("Message-ID");
        assert!(
            id.ends_with("@renecassin.example.org"),
            "Message-ID {id} should use the From domain"
        );
        message_ids.insert(id.to_string());

        // multipart/alternative: text/plain first, then text/html.
        let root = msg.root_part();
        let ct = root.content_type().expect("Content-Type");
        assert_eq!(
            (ct.ctype(), ct.subtype()),
            ("multipart", Some("alternative"))
        );
        let PartType::Multipart(children) = &root.body else {
            panic!("{address}: root is not multipart");
        };
        assert_eq!(children.len(), 2, "{address}: two alternatives");
        let text_part = &msg.parts[children[0] as usize];
        let html_part = &msg.parts[children[1] as usize];
        let kind = |part: &mail_parser::MessagePart| {
            let ct = part.content_type().expect("part Content-Type");
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
        };
        assert_eq!(kind(text_part), "text/plain");
        assert_eq!(kind(html_part), "text/html");
        let PartType::Text(text) = &text_part.body else {
            panic!("{address}: the first part is not text");
        };
        let PartType::Html(html) = &html_part.body else {
            panic!("{address}: the second part is not HTML");
        };
        let greeting = format!("Dear {first}");
        assert!(
            text.contains(&greeting),
            "{address}: text lacks `{greeting}`"
        );
        assert!(
            html.contains(&greeting),
            "{address}: HTML lacks `{greeting}`"
        );
        let url = unsubscribe_url(address);
        assert!(text.contains(&url), "{address}: text lacks {url}");
        assert!(html.contains(&url), "{address}: HTML lacks {url}");
        // Nobody else's link.
        for (other, _, _) in EXAMPLE_SUBSCRIBED.iter().filter(|o| o.0 != *address) {
            assert!(
                !text.contains(&unsubscribe_url(other)),
                "{address}'s message has {other}'s unsubscribe link"
            );
        }
    }
    assert_eq!(
        message_ids.len(),
        EXAMPLE_SUBSCRIBED.len(),
        "Message-IDs must differ between recipients"
    );

    let s = status(&p, None);
    assert_eq!(
        (s.accepted, s.failed, s.uncertain, s.deferred, s.pending),
        (EXAMPLE_SUBSCRIBED.len() as u64, 0, 0, 0, 0)
    );

    // A second send finds nothing to do.
    let again = p.run(&send_args(None, &["--yes"]));
    again.expect_code(0);
    assert_eq!(
        server.arrivals().len(),
        EXAMPLE_SUBSCRIBED.len(),
        "a second send must not mail anyone again; stderr:\n{}",
        again.stderr
    );
    assert!(
        server.events().len() == 2 * EXAMPLE_SUBSCRIBED.len(),
        "the second send must not even try: {:#?}",
        server.events()
    );
}

// ---------------------------------------------------------------------------
// 2. Deterministic Message-ID
// ---------------------------------------------------------------------------

#[test]
fn message_id_is_the_same_for_the_same_recipient_across_runs() {
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 0\nconnections = 2");
    p.run(&send_args(None, &["--yes"])).expect_code(0);
    let first: BTreeMap<String, String> = server
        .messages()
        .iter()
        .map(|m| (m.rcpt_tos[0].clone(), message_id_of(&m.raw)))
        .collect();
    assert_eq!(first.len(), EXAMPLE_SUBSCRIBED.len());

    // Forget what was sent, as if the journal folder were lost, and send again.
    fs::remove_dir_all(p.path("journal")).unwrap();
    p.run(&send_args(None, &["--yes"])).expect_code(0);
    let mut second: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in server.messages() {
        second
            .entry(m.rcpt_tos[0].clone())
            .or_default()
            .push(message_id_of(&m.raw));
    }
    for (address, ids) in &second {
        assert_eq!(ids.len(), 2, "{address}: two runs, two messages");
        assert_eq!(
            ids[0], ids[1],
            "{address}: the Message-ID changed between runs"
        );
        assert_eq!(first[address], ids[0]);
    }
    let distinct: BTreeSet<&String> = first.values().collect();
    assert_eq!(
        distinct.len(),
        first.len(),
        "Message-IDs must differ between recipients: {first:#?}"
    );
}

// ---------------------------------------------------------------------------
// 3. Permanent failure
// ---------------------------------------------------------------------------

#[test]
fn permanent_failure_is_recorded_and_only_retried_when_asked() {
    let bad = "jose.garcia@example.org";
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"rcpt": {bad: "550 5.1.1 No such user here"}})),
        ..Default::default()
    });
    let p = project(&server, "per-second = 0\nconnections = 2");

    let out = p.run(&send_args(None, &["--yes"]));
    out.expect_code(1);
    assert!(
        out.stderr.contains(bad) && out.stderr.contains("550 5.1.1 No such user here"),
        "stderr names {bad} and the reply:\n{}",
        out.stderr
    );
    let others: Vec<String> = example_addresses()
        .into_iter()
        .filter(|a| a != bad)
        .collect();
    assert_exactly_once(&server, &others);
    assert_eq!(server.rcpt_attempts(bad).len(), 1, "5xx is not retried");

    let s = status(&p, None);
    assert_eq!(
        (s.accepted, s.failed, s.pending),
        (others.len() as u64, 1, 0)
    );
    let csv = p.path("failed.csv");
    let out = p.run(&["status", ISSUE, "--failed-csv", csv.to_str().unwrap()]);
    out.expect_code(0);
    let text = fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "one failed row:\n{text}");
    assert_eq!(
        rows[0],
        format!("{bad},failed,550 5.1.1 No such user here,RCPT TO"),
        "the row has the address, the server's reply as sent and the step it refused at"
    );

    // Running again does not retry the failed address.
    let out = p.run(&send_args(None, &["--yes"]));
    assert!(out.code == 0 || out.code == 1, "{out:?}");
    assert_eq!(server.rcpt_attempts(bad).len(), 1, "retried without asking");
    assert_eq!(server.arrivals().len(), others.len());

    // With --retry-failed, once the server takes it, it is delivered.
    server.set_faults(json!({}));
    let out = p.run(&send_args(None, &["--yes", "--retry-failed"]));
    out.expect_code(0);
    assert_exactly_once(&server, &example_addresses());
    let s = status(&p, None);
    assert_eq!(
        (s.accepted, s.failed, s.pending),
        (EXAMPLE_SUBSCRIBED.len() as u64, 0, 0)
    );
}

// ---------------------------------------------------------------------------
// 4. Temporary failures
// ---------------------------------------------------------------------------

#[test]
fn temporary_rcpt_failure_is_retried_until_delivered_once() {
    let flaky = "zoe.brightman@example.com";
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({
            "rcpt": {flaky: "451 4.7.1 Try again later"},
            "rcpt_times": {flaky: 2},
        })),
        ..Default::default()
    });
    let p = project(&server, "per-second = 0\nconnections = 2\nretries = 5");
    let out = p.run(&send_args(None, &["--yes"]));
    out.expect_code(0);
    assert_exactly_once(&server, &example_addresses());
    let attempts: Vec<Option<u16>> = server
        .rcpt_attempts(flaky)
        .iter()
        .map(|e| e.code())
        .collect();
    assert_eq!(attempts, [Some(451), Some(451), Some(250)]);
    let s = status(&p, None);
    assert_eq!(
        (s.accepted, s.deferred, s.pending),
        (EXAMPLE_SUBSCRIBED.len() as u64, 0, 0)
    );
}

#[test]
fn dropped_connection_is_reopened_and_the_message_delivered_once() {
    let dropped = "li.wei@example.org";
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"drop_after_data": {dropped: 1}})),
        ..Default::default()
    });
    let p = project(&server, "per-second = 0\nconnections = 1\nretries = 5");
    let out = p.run(&send_args(None, &["--yes"]));
    out.expect_code(0);
    assert_exactly_once(&server, &example_addresses());
    let data: Vec<_> = server
        .events()
        .into_iter()
        .filter(|e| e.event == "data" && e.rcpt_tos.iter().any(|r| r == dropped))
        .collect();
    assert_eq!(data.len(), 2, "dropped once, then accepted: {data:#?}");
    assert!(data[0].dropped && !data[1].dropped);
    assert_ne!(
        data[0].session, data[1].session,
        "the retry uses a new connection"
    );
    let s = status(&p, None);
    assert_eq!(
        (s.accepted, s.pending),
        (EXAMPLE_SUBSCRIBED.len() as u64, 0)
    );
}

// ---------------------------------------------------------------------------
// 5. Too many failures in a row
// ---------------------------------------------------------------------------

#[test]
fn stops_after_too_many_failures_in_a_row() {
    let all = users(60);
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"rcpt": {"*": "550 5.7.1 Sender address rejected by policy"}})),
        ..Default::default()
    });
    let p = project(
        &server,
        "per-second = 0\nconnections = 2\nmax-consecutive-failures = 3",
    );
    p.write("big.csv", &csv_for(&all));

    let out = p.run(&send_args(Some("big.csv"), &["--yes"]));
    out.expect_code(1);
    assert!(
        out.stderr.contains("failures in a row")
            && out
                .stderr
                .contains("550 5.7.1 Sender address rejected by policy"),
        "stderr should say why it stopped and quote the last reply:\n{}",
        out.stderr
    );
    let attempted: BTreeSet<String> = server
        .events()
        .into_iter()
        .filter(|e| e.event == "rcpt")
        .filter_map(|e| e.addr)
        .collect();
    assert!(
        (3..=6).contains(&attempted.len()),
        "stopping after 3 failures with 2 connections should attempt 3 to 6 addresses, not {}: {attempted:?}",
        attempted.len()
    );
    assert!(server.arrivals().is_empty());

    // Fixed: a re-run with --retry-failed completes everyone exactly once.
    server.set_faults(json!({}));
    let out = p.run(&send_args(Some("big.csv"), &["--yes", "--retry-failed"]));
    out.expect_code(0);
    assert_exactly_once(&server, &all);
    let s = status(&p, Some("big.csv"));
    assert_eq!((s.accepted, s.failed, s.pending), (all.len() as u64, 0, 0));
}

// ---------------------------------------------------------------------------
// 6. Unreachable server
// ---------------------------------------------------------------------------

#[test]
fn unreachable_server_is_an_error_before_anything_is_recorded() {
    // A port that was just free: nothing listens on it.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let p = Project::example();
    p.use_smtp(port, "per-second = 0\nconnections = 2");
    let out = p.run(&send_args(None, &["--yes"]));
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("cannot connect") && out.stderr.contains(&port.to_string()),
        "stderr should say it cannot connect to the server:\n{}",
        out.stderr
    );
    if let Some(journal) = journal_text(&p) {
        assert!(
            !journal.contains("\"accepted\"") && !journal.contains("\"attempt\""),
            "nothing may be recorded:\n{journal}"
        );
    }
    let s = status(&p, None);
    assert_eq!(
        (s.accepted, s.pending),
        (0, EXAMPLE_SUBSCRIBED.len() as u64)
    );
}

// ---------------------------------------------------------------------------
// 7. Invalid addresses and duplicates
// ---------------------------------------------------------------------------

#[test]
fn invalid_address_stops_the_run_unless_skipped_and_duplicates_go_once() {
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 0\nconnections = 2");
    p.write(
        "list.csv",
        "email,first_name,last_name,status\n\
         user0001@example.org,Ann,One,subscribed\n\
         user0002@example.org,Bob,Two,subscribed\n\
         not-an-address,Bad,Row,subscribed\n\
         User0002@Example.ORG,Bob,Again,subscribed\n\
         user0003@example.org,Cy,Three,\n\
         user0004@example.org,Di,Four,subscribed\n",
    );
    let valid: Vec<String> = users(4);

    let out = p.run(&send_args(Some("list.csv"), &["--yes"]));
    out.expect_code(2);
    assert!(
        out.stderr.contains("line 4") && out.stderr.contains("not-an-address"),
        "stderr should name the invalid line:\n{}",
        out.stderr
    );
    assert!(server.arrivals().is_empty() && server.events().is_empty());
    assert!(journal_text(&p).is_none_or(|j| j.trim().is_empty()));

    let out = p.run(&send_args(Some("list.csv"), &["--yes", "--skip-invalid"]));
    out.expect_code(0);
    assert_exactly_once(&server, &valid);
    assert_eq!(
        server.rcpt_attempts("user0002@example.org").len(),
        1,
        "a duplicate differing only in case is sent once"
    );
    let s = status(&p, Some("list.csv"));
    assert_eq!((s.accepted, s.pending), (4, 0));
}

// ---------------------------------------------------------------------------
// 8. The unsubscribe secret
// ---------------------------------------------------------------------------

#[test]
fn refuses_to_send_without_the_unsubscribe_secret() {
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 0\nconnections = 2");

    let mut cmd = p.command(&send_args(None, &["--yes"]));
    cmd.env_remove("NEWSLETTER_UNSUBSCRIBE_SECRET");
    let out = run_command(cmd);
    out.expect_code(2);
    assert!(
        out.stderr.contains("NEWSLETTER_UNSUBSCRIBE_SECRET"),
        "stderr should name the variable:\n{}",
        out.stderr
    );
    assert!(server.arrivals().is_empty() && server.events().is_empty());
    assert!(journal_text(&p).is_none_or(|j| j.trim().is_empty()));

    let mut cmd = p.command(&send_args(None, &["--dry-run"]));
    cmd.env_remove("NEWSLETTER_UNSUBSCRIBE_SECRET");
    let out = run_command(cmd);
    out.expect_code(0);
    assert!(
        out.stderr.contains("warning") && out.stderr.contains("NEWSLETTER_UNSUBSCRIBE_SECRET"),
        "a dry run warns about the missing secret:\n{}",
        out.stderr
    );
    assert!(server.arrivals().is_empty() && server.events().is_empty());
    let s = status(&p, None);
    assert_eq!(
        (s.accepted, s.pending),
        (0, EXAMPLE_SUBSCRIBED.len() as u64)
    );
}

// ---------------------------------------------------------------------------
// 9. Test sends and --limit
// ---------------------------------------------------------------------------

#[test]
fn test_send_goes_to_staff_only_and_leaves_the_journal_alone() {
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 0\nconnections = 2");
    let out = p.run(&send_args(None, &["--test-to", "staff@example.org"]));
    out.expect_code(0);
    let messages = server.messages();
    assert_eq!(messages.len(), 1, "{:#?}", server.arrivals());
    assert_eq!(messages[0].rcpt_tos, ["staff@example.org"]);
    let msg = MessageParser::default().parse(&messages[0].raw).unwrap();
    assert_eq!(msg.subject(), Some(format!("[TEST] {SUBJECT}").as_str()));
    assert_eq!(
        msg.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("staff@example.org")
    );
    assert!(journal_text(&p).is_none_or(|j| j.trim().is_empty()));
    let s = status(&p, None);
    assert_eq!(
        (s.accepted, s.pending),
        (0, EXAMPLE_SUBSCRIBED.len() as u64)
    );
}

#[test]
fn limit_sends_exactly_that_many() {
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 0\nconnections = 2");
    let out = p.run(&send_args(None, &["--yes", "--limit", "3"]));
    out.expect_code(0);
    assert_eq!(server.arrivals().len(), 3);
    let counts = per_recipient(&server);
    assert_eq!(counts.len(), 3, "three different recipients: {counts:?}");
    assert!(counts.keys().all(|k| example_addresses().contains(k)));
    let s = status(&p, None);
    assert_eq!(
        (s.accepted, s.pending),
        (3, EXAMPLE_SUBSCRIBED.len() as u64 - 3)
    );

    // The rest follow in the next run.
    p.run(&send_args(None, &["--yes"])).expect_code(0);
    assert_exactly_once(&server, &example_addresses());
}

#[test]
fn the_daily_limit_ends_the_run_cleanly_and_counts_earlier_runs() {
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 0\nper-day = 3\nconnections = 2");
    let out = p.run(&send_args(None, &["--yes"]));
    out.expect_code(0);
    assert!(out.stderr.contains("daily limit of 3"), "{}", out.stderr);
    assert!(
        out.stderr.contains("Run the same command again"),
        "{}",
        out.stderr
    );
    assert_eq!(server.arrivals().len(), 3);
    assert_eq!(status(&p, None).accepted, 3);

    // Within the same 24 hours the journal's three count against the limit.
    let again = p.run(&send_args(None, &["--yes"]));
    again.expect_code(0);
    assert!(
        again.stderr.contains("daily limit of 3"),
        "{}",
        again.stderr
    );
    assert_eq!(server.arrivals().len(), 3, "nothing more may be sent today");
}

// ---------------------------------------------------------------------------
// 10. A crash (SIGKILL) in the middle
// ---------------------------------------------------------------------------

#[test]
fn after_a_crash_nobody_is_missed_and_only_uncertain_ones_can_be_doubled() {
    let all = users(300);
    // Two recipients whose message is stored at once but answered late, so
    // the kill is sure to find them in flight.
    let slow = ["user0040@example.org", "user0041@example.org"];
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"delay_data_reply_seconds": {slow[0]: 30.0, slow[1]: 30.0}})),
        ..Default::default()
    });
    let p = project(&server, "per-second = 50\nconnections = 2");
    p.write("big.csv", &csv_for(&all));

    let logs = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = spawn_logged(
        &mut p.command(&send_args(Some("big.csv"), &["--yes"])),
        logs.path(),
    );
    wait_until(
        Duration::from_secs(60),
        "the slow messages to arrive",
        || {
            let counts = per_recipient(&server);
            slow.iter().all(|s| counts.contains_key(*s))
        },
    );
    if let Some(rest) = Duration::from_millis(1500).checked_sub(started.elapsed()) {
        thread::sleep(rest);
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = per_recipient(&server);
    assert!(
        before.len() < all.len(),
        "the kill came too late to test anything"
    );
    server.set_faults(json!({}));

    // Resume without --resend-uncertain: the uncertain ones are reported
    // and skipped.
    let out = p.run(&send_args(Some("big.csv"), &["--yes"]));
    out.expect_code(0);
    assert!(
        out.stderr.contains("uncertain"),
        "the resume should report uncertain recipients:\n{}",
        out.stderr
    );
    let s = status(&p, Some("big.csv"));
    let uncertain = s.uncertain_list.clone();
    for address in slow {
        assert!(
            uncertain.contains(address),
            "{address} was in flight at the kill, so it is uncertain: {uncertain:?}"
        );
        assert!(
            out.stderr.contains(address),
            "the resume lists {address}:\n{}",
            out.stderr
        );
    }
    assert!(
        uncertain.len() <= 2,
        "at most one message per connection is in flight: {uncertain:?}"
    );
    assert_eq!(
        (s.accepted + s.uncertain, s.pending, s.failed, s.deferred),
        (all.len() as u64, 0, 0, 0)
    );
    let after_resume = per_recipient(&server);
    for address in &uncertain {
        assert_eq!(
            after_resume.get(address),
            before.get(address),
            "{address} is uncertain and must be skipped without --resend-uncertain"
        );
    }

    // Then with --resend-uncertain: everyone has at least one.
    let out = p.run(&send_args(
        Some("big.csv"),
        &["--yes", "--resend-uncertain"],
    ));
    out.expect_code(0);
    let counts = per_recipient(&server);
    let missing: Vec<&String> = all.iter().filter(|a| !counts.contains_key(*a)).collect();
    assert!(missing.is_empty(), "never mailed: {missing:?}");
    let doubled: BTreeSet<String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(a, _)| a.clone())
        .collect();
    assert!(
        counts.values().all(|n| *n <= 2),
        "nobody gets three: {counts:?}"
    );
    assert!(
        doubled.is_subset(&uncertain),
        "only uncertain recipients may get two messages: doubled {doubled:?}, uncertain {uncertain:?}"
    );
    assert!(
        slow.iter().all(|s| doubled.contains(*s)),
        "the slow ones were stored before the kill and re-sent: {doubled:?}"
    );
    let s = status(&p, Some("big.csv"));
    assert_eq!(
        (s.accepted, s.uncertain, s.pending),
        (all.len() as u64, 0, 0)
    );
}

// ---------------------------------------------------------------------------
// 11. Rate limit
// ---------------------------------------------------------------------------

#[test]
fn per_second_limit_holds_in_every_window_at_the_server() {
    // The limit is a promise: no second at the server ever sees more than
    // 10. How close a run gets to it is a speed figure, and speed lives in
    // `scripts/bench --rate-only` (−0.7% at 50/s, README): on a loaded machine
    // (load 16 on 2 cores) runs here reached 8.06/s of 10/s. So below, only
    // a pacer that stalls (under half the rate) fails.
    let all = users(60);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 10\nconnections = 4");
    p.write("big.csv", &csv_for(&all));
    let out = p.run(&send_args(Some("big.csv"), &["--yes"]));
    out.expect_code(0);
    assert_exactly_once(&server, &all);

    let mut times: Vec<f64> = server.arrivals().iter().map(|a| a.t).collect();
    times.sort_by(f64::total_cmp);
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..].iter().take_while(|u| **u < t + 1.0).count();
        assert!(
            in_window <= 10,
            "{in_window} messages arrived in the second from arrival {i}; arrival times relative to the first:\n{:?}",
            times
                .iter()
                .map(|u| ((u - times[0]) * 1000.0).round() as i64)
                .collect::<Vec<_>>()
        );
    }
    let span = times[times.len() - 1] - times[0];
    let rate = (times.len() - 1) as f64 / span;
    assert!(
        (5.0..=11.0).contains(&rate),
        "mean rate {rate:.2}/s: over 10/s breaks the limit, under 5/s the pacer stalls"
    );
}

// ---------------------------------------------------------------------------
// 12. Ctrl-C
// ---------------------------------------------------------------------------

#[test]
fn ctrl_c_finishes_in_flight_messages_and_the_resume_sends_the_rest_once() {
    let all = users(200);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 20\nconnections = 4");
    p.write("big.csv", &csv_for(&all));

    let logs = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let child = spawn_logged(
        &mut p.command(&send_args(Some("big.csv"), &["--yes"])),
        logs.path(),
    );
    server.wait_for_arrivals(5, Duration::from_secs(60));
    if let Some(rest) = Duration::from_millis(1000).checked_sub(started.elapsed()) {
        thread::sleep(rest);
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let out = wait_output(child, logs.path(), RUN_TIMEOUT);
    out.expect_code(130);
    assert!(
        out.stderr.contains("Interrupted")
            && out.stderr.contains(&format!("newsletter send {ISSUE}")),
        "stderr should say how to resume:\n{}",
        out.stderr
    );
    let sent = server.arrivals().len();
    assert!(
        sent < all.len(),
        "Ctrl-C came too late to test anything ({sent} sent)"
    );
    let s = status(&p, Some("big.csv"));
    assert_eq!(
        (s.accepted, s.uncertain, s.failed),
        (sent as u64, 0, 0),
        "messages in flight are finished and recorded, none left uncertain"
    );

    let out = p.run(&send_args(Some("big.csv"), &["--yes"]));
    out.expect_code(0);
    assert_exactly_once(&server, &all);
    let s = status(&p, Some("big.csv"));
    assert_eq!((s.accepted, s.pending), (all.len() as u64, 0));
}
