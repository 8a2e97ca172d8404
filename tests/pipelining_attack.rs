//! Attacks on the pipelining client (RFC 2920) with server processes that
//! misbehave on purpose: a raw asyncio server (`tests/support/raw_smtp.py`)
//! for what aiosmtpd cannot express. Every server listens on 127.0.0.1.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use support::project::{Project, status_count as count, status_lines};
use support::smtp::python;

const ISSUE: &str = "issues/2022-07-13.toml";

/// The raw server in one of its modes; stopped (stdin closed, then killed)
/// when dropped.
struct Raw {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// One message content the raw server received.
#[derive(Debug, serde::Deserialize)]
struct Content {
    session: u64,
    rcpt: String,
    reply: String,
    body: String,
}

impl Raw {
    fn start(mode: &str, args: &[&str]) -> Raw {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("contents.jsonl");
        let script = support::project::repo().join("tests/support/raw_smtp.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(mode)
            .arg(&log)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("raw server did not start: {line:?}"));
        Raw {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn contents(&self) -> Vec<Content> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Recipients whose content the server took (250 at end of data).
    fn stored(&self) -> Vec<String> {
        self.contents()
            .into_iter()
            .filter(|c| c.reply.starts_with("250"))
            .map(|c| c.rcpt)
            .collect()
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn users(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("user{i:04}@example.org")).collect()
}

fn project(port: u16, addresses: &[String], sending: &str) -> Project {
    let p = Project::example();
    p.use_smtp(port, sending);
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

fn status(p: &Project) -> Vec<(String, String)> {
    status_lines(p, ISSUE, "list.csv")
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn a_spurious_reply_sent_with_the_354_is_never_taken_for_the_end_of_data_reply() {
    // Session 1 answers the first DATA with "354" and a stray "250" in one
    // write, then refuses that content with 554. Read in order, the stray
    // 250 would mark user0001 accepted (it was refused) and the 554 would
    // fail user0002's MAIL (it was never refused).
    let raw = Raw::start("extra_after_354", &[]);
    let list = users(5);
    let p = project(raw.port, &list, "per-second = 0\nconnections = 1");
    send(&p).expect_code(0);
    let s = status(&p);
    assert_eq!(
        (count(&s, "accepted"), count(&s, "failed")),
        (5, 0),
        "{s:?}"
    );
    assert_eq!(sorted(raw.stored()), list, "each stored exactly once");
    assert!(
        raw.contents().iter().all(|c| c.session != 1),
        "no content goes out after a reply the client cannot place: {:?}",
        raw.contents()
    );
}

#[test]
fn a_421_rate_reply_to_a_pipelined_mail_before_the_server_closes_is_read_as_throttling() {
    // Session 1 reads user0003's MAIL, RCPT and DATA, answers the MAIL with
    // Gmail's 421 4.7.28 and closes. That is throttling (retried without
    // using up `retries = 1`), not a connection that merely closed.
    let raw = Raw::start("close_421_at_mail", &["3"]);
    let list = users(6);
    let p = project(
        raw.port,
        &list,
        "per-second = 0\nconnections = 1\nretries = 1",
    );
    let out = send(&p);
    out.expect_code(0);
    assert!(out.stderr.contains("slowed to"), "{}", out.stderr);
    let s = status(&p);
    assert_eq!(
        (count(&s, "accepted"), count(&s, "deferred")),
        (6, 0),
        "{s:?}"
    );
    assert_eq!(sorted(raw.stored()), list);
}

#[test]
fn a_subscriber_who_unsubscribes_while_their_ride_along_waits_for_its_start_time_is_not_mailed() {
    // At 2 a second, once the queue is full, user0004's transaction rides
    // along with user0003's content and is answered 354 at once, but its
    // content waits for its start time (half a second after user0003's).
    // The server marks user0004 unsubscribed in the file 150 ms after
    // that 354.
    let list = users(6);
    let p = project(0, &list, "");
    let csv = p.path("list.csv");
    let raw = Raw::start(
        "unsubscribe",
        &["user0004@example.org", csv.to_str().unwrap()],
    );
    p.use_smtp(raw.port, "per-second = 2\nconnections = 1");
    let out = send(&p);
    out.expect_code(0);
    let stored = raw.stored();
    assert!(
        !stored.contains(&"user0004@example.org".to_string()),
        "mailed after unsubscribing: {:?}\n{}",
        raw.contents(),
        out.stderr
    );
    let mut others = list.clone();
    others.retain(|a| a != "user0004@example.org");
    assert_eq!(sorted(stored), others);
    assert!(
        out.stderr
            .contains("not sent to user0004@example.org: unsubscribed during the run"),
        "{}",
        out.stderr
    );
}

#[test]
fn max_consecutive_failures_stops_before_a_ride_along_content_goes_out() {
    // Every content is refused at end of data. After the third refusal the
    // run stops; the fourth transaction, already opened alongside the
    // third, must not have its content sent (as on the lockstep path).
    let raw = Raw::start("reject_all_data", &[]);
    let list = users(10);
    let p = project(
        raw.port,
        &list,
        "per-second = 0\nconnections = 1\nmax-consecutive-failures = 3",
    );
    let out = send(&p);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        raw.contents().len(),
        3,
        "{:?}\n{}",
        raw.contents(),
        out.stderr
    );
    let s = status(&p);
    assert_eq!((count(&s, "failed"), count(&s, "pending")), (3, 7), "{s:?}");
}

#[test]
fn bytes_after_the_starttls_go_ahead_are_refused_before_tls() {
    let raw = Raw::start("starttls_injection", &[]);
    let list = users(2);
    let p = project(raw.port, &list, "per-second = 0\nconnections = 1");
    p.edit("newsletter.toml", "tls = \"none\"", "tls = \"starttls\"");
    let out = send(&p);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("sent data after agreeing to STARTTLS"),
        "{}",
        out.stderr
    );
    assert!(raw.contents().is_empty());
}

#[test]
fn a_354_answer_to_the_final_dot_is_uncertain_not_accepted() {
    // Session 1 answers user0001's final dot with "354": out of step, and
    // whether it took the message cannot be told.
    let raw = Raw::start("dot_354", &[]);
    let list = users(4);
    let p = project(raw.port, &list, "per-second = 0\nconnections = 1");
    let out = send(&p);
    out.expect_code(1);
    assert!(
        out.stderr.contains("uncertain user0001@example.org"),
        "{}",
        out.stderr
    );
    let s = status(&p);
    assert_eq!(
        (count(&s, "accepted"), count(&s, "uncertain")),
        (3, 1),
        "{s:?}"
    );
    assert!(
        s.iter()
            .any(|(k, v)| k == "uncertain" && v == "user0001@example.org"),
        "{s:?}"
    );
}

#[test]
fn replies_arriving_one_byte_per_segment_are_read_in_order() {
    let raw = Raw::start("drip", &[]);
    let list = users(8);
    let p = project(raw.port, &list, "per-second = 0\nconnections = 1");
    send(&p).expect_code(0);
    let s = status(&p);
    assert_eq!(count(&s, "accepted"), 8, "{s:?}");
    assert_eq!(sorted(raw.stored()), list);
}

#[test]
fn a_ten_megabyte_reply_line_breaks_the_connection_and_the_message_is_retried_elsewhere() {
    let raw = Raw::start("huge_line", &[]);
    let list = users(3);
    let p = project(raw.port, &list, "per-second = 0\nconnections = 1");
    send(&p).expect_code(0);
    let s = status(&p);
    assert_eq!(count(&s, "accepted"), 3, "{s:?}");
    assert_eq!(sorted(raw.stored()), list);
}

#[test]
fn endless_continuation_lines_break_the_connection_and_the_message_is_retried_elsewhere() {
    let raw = Raw::start("endless", &[]);
    let list = users(3);
    let p = project(raw.port, &list, "per-second = 0\nconnections = 1");
    send(&p).expect_code(0);
    let s = status(&p);
    assert_eq!(count(&s, "accepted"), 3, "{s:?}");
    assert_eq!(sorted(raw.stored()), list);
}

/// A message's lines with those that differ between two builds of the
/// same message (date, MIME boundaries) blanked out.
fn comparable(message: &str) -> Vec<String> {
    let boundaries: Vec<String> = message
        .split("boundary=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect();
    message
        .split("\r\n")
        .map(|line| {
            let mut line = line.to_string();
            for (i, b) in boundaries.iter().enumerate() {
                line = line.replace(b, &format!("BOUNDARY{i}"));
            }
            if line.starts_with("Date:") {
                "Date: ...".into()
            } else {
                line
            }
        })
        .collect()
}

#[test]
fn a_letter_with_lines_of_dots_arrives_byte_for_byte_as_the_outbox_writes_it() {
    let list = users(1);
    let dotted = "letter = \"\"\"\n.\n\n..\n\n.hidden line\n\n...three\n\n";
    // The example project's transport is the outbox.
    let outbox = project(0, &list, "");
    outbox.write(
        "newsletter.toml",
        &Project::example().read("newsletter.toml"),
    );
    outbox.edit(ISSUE, "letter = \"\"\"\n", dotted);
    send(&outbox).expect_code(0);
    let eml = std::fs::read_dir(outbox.path("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "eml"))
        .expect("an .eml in the outbox");
    let wanted = std::fs::read_to_string(eml).unwrap();
    assert!(
        wanted.contains("\r\n.hidden line") && wanted.contains("\r\n..\r\n"),
        "the letter's dot lines are in the message as lines: {wanted}"
    );

    let raw = Raw::start("normal", &[]);
    let p = project(raw.port, &list, "per-second = 0\nconnections = 1");
    p.edit(ISSUE, "letter = \"\"\"\n", dotted);
    send(&p).expect_code(0);
    let got = &raw.contents()[0];
    assert_eq!(comparable(&got.body), comparable(&wanted));
}

#[test]
fn a_550_to_the_ride_along_mail_after_a_250_to_the_dot_fails_only_that_subscriber() {
    // user0002's MAIL rides along with user0001's content: the server
    // accepts user0001 (250 to the dot), then refuses user0002's MAIL.
    let raw = Raw::start("refuse_mail", &["2"]);
    let list = users(5);
    let p = project(raw.port, &list, "per-second = 0\nconnections = 1");
    let out = send(&p);
    out.expect_code(1);
    assert!(
        out.stderr
            .contains("failed user0002@example.org: 550 5.7.1 Sender refused"),
        "{}",
        out.stderr
    );
    let s = status(&p);
    assert_eq!(
        (count(&s, "accepted"), count(&s, "failed")),
        (4, 1),
        "{s:?}"
    );
    let mut others = list.clone();
    others.remove(1);
    assert_eq!(sorted(raw.stored()), others);
    assert!(
        raw.contents().iter().all(|c| c.session == 1),
        "the connection carries on after RSET: {:?}",
        raw.contents()
    );
}

#[test]
fn max_per_connection_is_honoured_exactly_with_ride_alongs() {
    let raw = Raw::start("normal", &[]);
    let list = users(10);
    let p = project(
        raw.port,
        &list,
        "per-second = 0\nconnections = 1\nmax-per-connection = 3",
    );
    send(&p).expect_code(0);
    let mut per_session = std::collections::BTreeMap::new();
    for c in raw.contents() {
        *per_session.entry(c.session).or_insert(0) += 1;
    }
    assert!(per_session.values().all(|n| *n <= 3), "{per_session:?}");
    assert_eq!(per_session.values().sum::<i32>(), 10, "{per_session:?}");
    assert_eq!(sorted(raw.stored()), list);
}
