//! SMTP pipelining (RFC 2920) and throttling replies, against the real test
//! server (aiosmtpd, `tests/support/smtp_server.py`), which says in its
//! event log whether a client's commands came together, and can throttle
//! like Amazon SES.
//!
//! Whether a client pipelined is read from the server's buffer, never from
//! timing: a lockstep client can never make `mail_pipelined` true.

mod support;

use std::collections::BTreeSet;

use serde_json::json;
use support::project::{Project, status_count as count, status_lines};
use support::smtp::{ServerOptions, SmtpServer, assert_exactly_once, per_recipient};

const ISSUE: &str = "issues/2022-07-13.toml";

fn users(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("user{i:04}@example.org")).collect()
}

/// A project sending `addresses` (all subscribed) to `server`.
fn project(server: &SmtpServer, addresses: &[String], sending: &str) -> Project {
    let p = Project::example();
    p.use_smtp(server.port, sending);
    let mut csv = String::from("email,first_name,last_name,status\n");
    for (i, a) in addresses.iter().enumerate() {
        csv.push_str(&format!("{a},First{i},Last{i},subscribed\n"));
    }
    p.write("list.csv", &csv);
    p
}

fn send(p: &Project) -> support::project::Output {
    p.run(&["send", ISSUE, "--subscribers", "list.csv", "--yes"])
}

fn server_with(faults: serde_json::Value) -> SmtpServer {
    SmtpServer::start_with(ServerOptions {
        faults: Some(faults),
        ..ServerOptions::default()
    })
}

/// RCPT events whose MAIL arrived together with more commands.
fn pipelined_rcpts(server: &SmtpServer) -> (usize, usize) {
    let rcpts: Vec<_> = server
        .events()
        .into_iter()
        .filter(|e| e.event == "rcpt")
        .collect();
    let together = rcpts.iter().filter(|e| e.mail_pipelined).count();
    (together, rcpts.len())
}

/// `newsletter status` lines as (name, value).
fn status(p: &Project) -> Vec<(String, String)> {
    status_lines(p, ISSUE, "list.csv")
}

#[test]
fn a_server_offering_pipelining_gets_each_transaction_in_one_write() {
    let server = SmtpServer::start();
    let list = users(40);
    let p = project(&server, &list, "per-second = 0\nconnections = 1");
    send(&p).expect_code(0);
    assert_exactly_once(&server, &list);
    let (together, all) = pipelined_rcpts(&server);
    assert_eq!(all, 40, "one RCPT per message, none retried");
    // Every MAIL is written with its RCPT and DATA; a group split across
    // reads shows as not pipelined, so allow a few.
    assert!(together >= 30, "{together} of {all} pipelined");
    // The content, its dot and the next transaction share a write.
    let riding = server
        .events()
        .iter()
        .filter(|e| e.event == "data" && e.next_pipelined)
        .count();
    assert!(riding >= 20, "{riding} of 39 next transactions rode along");
}

#[test]
fn pipelining_false_keeps_one_command_at_a_time() {
    let server = SmtpServer::start();
    let list = users(15);
    let p = project(&server, &list, "per-second = 0\nconnections = 2");
    p.edit(
        "newsletter.toml",
        "tls = \"none\"",
        "tls = \"none\"\npipelining = false",
    );
    send(&p).expect_code(0);
    assert_exactly_once(&server, &list);
    assert_eq!(pipelined_rcpts(&server), (0, 15));
}

#[test]
fn a_server_without_pipelining_gets_one_command_at_a_time() {
    let server = server_with(json!({"advertise_pipelining": false}));
    let list = users(15);
    let p = project(&server, &list, "per-second = 0\nconnections = 2");
    send(&p).expect_code(0);
    assert_exactly_once(&server, &list);
    assert_eq!(pipelined_rcpts(&server), (0, 15));
}

#[test]
fn a_recipient_refused_in_the_middle_of_a_pipelined_stream_fails_alone() {
    let server = server_with(json!({"rcpt": {"user0010@example.org": "550 5.1.1 No such user"}}));
    let list = users(20);
    let p = project(&server, &list, "per-second = 0\nconnections = 1");
    let out = send(&p);
    out.expect_code(1);
    let others: Vec<String> = list
        .iter()
        .filter(|a| *a != "user0010@example.org")
        .cloned()
        .collect();
    assert_exactly_once(&server, &others);
    assert!(!per_recipient(&server).contains_key("user0010@example.org"));
    let s = status(&p);
    assert_eq!((count(&s, "accepted"), count(&s, "failed")), (19, 1));
    let records = p.run(&["status", ISSUE, "--subscribers", "list.csv", "--records"]);
    assert!(
        records.stdout.contains("550 5.1.1 No such user"),
        "{}",
        records.stdout
    );
    // Refused once, never retried.
    assert_eq!(server.rcpt_attempts("user0010@example.org").len(), 1);
}

#[test]
fn a_354_without_an_accepted_recipient_gets_a_lone_dot_and_no_content() {
    let server = server_with(json!({
        "data_354_without_rcpt": true,
        "rcpt": {"user0005@example.org": "550 5.1.1 No such user"},
    }));
    let list = users(10);
    let p = project(&server, &list, "per-second = 0\nconnections = 1");
    send(&p).expect_code(1);
    let empty: Vec<_> = server.events().into_iter().filter(|e| e.no_rcpt).collect();
    assert_eq!(
        empty.len(),
        1,
        "the server answered 354 once without a recipient"
    );
    assert!(
        empty[0]
            .reply
            .as_deref()
            .is_some_and(|r| r.starts_with("554")),
        "{empty:?}"
    );
    let others: Vec<String> = list
        .iter()
        .filter(|a| *a != "user0005@example.org")
        .cloned()
        .collect();
    assert_exactly_once(&server, &others);
    // Nothing stored but the nine: the lone dot carried no message.
    assert_eq!(server.arrivals().len(), 9);
    let s = status(&p);
    assert_eq!((count(&s, "accepted"), count(&s, "failed")), (9, 1));
}

#[test]
fn a_connection_dropped_in_the_middle_of_a_pipelined_group_loses_nobody() {
    // The RCPT of user0010 rides along with user0009's content: the server
    // stores user0009, then closes before answering anything.
    let server = server_with(json!({"drop_at_rcpt": {"user0010@example.org": 1}}));
    let list = users(20);
    let p = project(&server, &list, "per-second = 0\nconnections = 1");
    send(&p).expect_code(0);
    let counts = per_recipient(&server);
    let got: BTreeSet<&String> = counts.keys().collect();
    assert_eq!(got, list.iter().collect(), "everyone got it");
    let twice: BTreeSet<String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(a, _)| a.clone())
        .collect();
    let s = status(&p);
    let reported: BTreeSet<String> = s
        .iter()
        .filter(|(k, v)| k == "possibly twice" && v.contains('@'))
        .map(|(_, v)| v.to_lowercase())
        .collect();
    assert!(
        twice.is_subset(&reported),
        "duplicates {twice:?} must be reported: {reported:?}"
    );
    assert!(twice.len() <= 1, "{twice:?}");
    assert_eq!(counts["user0010@example.org"], 1);
}

#[test]
fn a_throttling_relay_slows_the_run_and_loses_nobody() {
    let server = server_with(json!({"throttle": {"rate": 20, "at": "data"}}));
    let list = users(120);
    let p = project(
        &server,
        &list,
        "per-second = 0\nconnections = 4\nmax-consecutive-failures = 5",
    );
    let out = send(&p);
    out.expect_code(0);
    assert!(out.stderr.contains("slowed to"), "{}", out.stderr);
    assert_exactly_once(&server, &list);
    let throttled = server
        .events()
        .iter()
        .filter(|e| e.fault.as_deref() == Some("throttle"))
        .count();
    // Hammering at full speed would be refused hundreds of times; the pace
    // follows the relay after the first refusals.
    assert!(throttled > 0 && throttled < 120, "{throttled} throttled");
    let s = status(&p);
    assert_eq!((count(&s, "accepted"), count(&s, "deferred")), (120, 0));
}

#[test]
fn the_relays_daily_quota_ends_the_run_cleanly_and_the_next_run_finishes() {
    let server = server_with(json!({"quota": {"max": 5}}));
    let list = users(12);
    let p = project(&server, &list, "per-second = 0\nconnections = 2");
    let out = send(&p);
    out.expect_code(0);
    assert!(
        out.stderr.contains("daily sending quota is used up"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Daily message quota exceeded"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("send"),
        "a resume command: {}",
        out.stderr
    );
    assert_eq!(server.arrivals().len(), 5);
    // Those the relay refused for the quota are deferred, the rest pending.
    let s = status(&p);
    let waiting = count(&s, "pending") + count(&s, "deferred");
    assert_eq!((count(&s, "accepted"), waiting), (5, 7));

    server.set_faults(json!({}));
    send(&p).expect_code(0);
    assert_exactly_once(&server, &list);
}

#[test]
fn too_many_connections_lowers_the_count_and_loses_nobody() {
    let server = server_with(json!({"too_many_connections": {"max": 2}}));
    let list = users(40);
    let p = project(&server, &list, "per-second = 0\nconnections = 4");
    let out = send(&p);
    out.expect_code(0);
    assert!(out.stderr.contains("fewer connections"), "{}", out.stderr);
    assert_exactly_once(&server, &list);
}

#[test]
fn a_reconnect_to_a_server_without_pipelining_goes_one_command_at_a_time() {
    // Only the first connection offers PIPELINING (a pool of servers behind
    // one name); every later one must get one command at a time.
    let server = server_with(json!({"pipelining_sessions": 1}));
    let list = users(20);
    let p = project(
        &server,
        &list,
        "per-second = 0\nconnections = 1\nmax-per-connection = 5",
    );
    send(&p).expect_code(0);
    assert_exactly_once(&server, &list);
    let events = server.events();
    let later: Vec<_> = events
        .iter()
        .filter(|e| e.event == "rcpt" && e.session > 1)
        .collect();
    assert_eq!(later.len(), 15, "three more connections of five");
    assert!(
        later.iter().all(|e| !e.mail_pipelined),
        "pipelined to a server that did not offer it: {later:?}"
    );
    let first = events
        .iter()
        .filter(|e| e.event == "rcpt" && e.session == 1 && e.mail_pipelined)
        .count();
    assert!(first >= 3, "the first connection pipelined: {first}");
}

#[test]
fn a_relay_that_throttles_everything_stops_the_run_and_loses_nobody() {
    let server = server_with(json!({"throttle": {"rate": 0, "at": "data"}}));
    let list = users(8);
    let p = project(&server, &list, "per-second = 0\nconnections = 2");
    let out = p
        .command(&["send", ISSUE, "--subscribers", "list.csv", "--yes"])
        .env("NEWSLETTER_THROTTLE_PATIENCE_MS", "1500")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused every message as sent too fast"),
        "{stderr}"
    );
    assert!(stderr.contains("continue with"), "{stderr}");
    assert!(server.arrivals().is_empty());
    let s = status(&p);
    let waiting = count(&s, "pending") + count(&s, "deferred");
    assert_eq!(
        (count(&s, "accepted"), count(&s, "failed"), waiting),
        (0, 0, 8)
    );

    server.set_faults(json!({}));
    send(&p).expect_code(0);
    assert_exactly_once(&server, &list);
}
