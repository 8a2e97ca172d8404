//! What happens when things run at the same time as `newsletter send`:
//! a second sender of the same issue, unsubscribes arriving mid-run, a
//! different subscriber file on the next run, and the resume hints pasted
//! back into a shell. Everything runs the real binary against the real
//! aiosmtpd test server (tests/support/smtp_server.py) on 127.0.0.1, and the
//! assertions are on what arrived there, on exit codes and on
//! `newsletter status`.
//! Needs `scripts/setup-test-deps` to have been run.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mail_parser::MessageParser;
use serde_json::json;
use support::project::{Output, Project, SECRET};
use support::smtp::{ServerOptions, SmtpServer, assert_exactly_once, per_recipient};

const ISSUE: &str = "issues/2022-07-13.toml";
const ISSUE_ID: &str = "2022-07-13";
const LIST_ID: &str = "supporters.renecassin.example.org";
const LOCK: &str = "journal/2022-07-13.lock";
/// Generous limit for any single run of the binary.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Generous limit for anything the tests wait for.
const WAIT: Duration = Duration::from_secs(90);

/// The configuration, issue and list of the "awkward paths" layout: a
/// configuration in a folder with a space in its name (its paths relative
/// to it) and a subscriber file with a space, relative to the working folder.
const SPACED_CONFIG: &str = "my conf/newsletter.toml";
const SPACED_ISSUE: &str = "my conf/issues/2022-07-13.toml";
const SPACED_LIST: &str = "lists/my list.csv";
const SPACED_LOG: &str = "my conf/unsubscribes.log";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `user0001@example.org` … `user{n}@example.org`.
fn users(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("user{i:04}@example.org")).collect()
}

/// The number in `userNNNN@…` (its place in the file made by [`csv_for`]).
fn user_number(address: &str) -> usize {
    address
        .strip_prefix("user")
        .and_then(|rest| rest.get(..4))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a userNNNN address: {address}"))
}

/// A subscriber CSV for these addresses, all subscribed; every row of
/// `userNNNN@example.org` addresses has the same length.
fn csv_for(addresses: &[String]) -> String {
    let mut text = String::from("email,first_name,last_name,status\n");
    for a in addresses {
        text.push_str(&csv_row(a));
    }
    text
}

fn csv_row(address: &str) -> String {
    let n = address.split('@').next().unwrap_or("x");
    format!("{address},First-{n},Last-{n},subscribed\n")
}

/// The example project, sending to `server` with these `[sending]` lines.
fn project(server: &SmtpServer, sending: &str) -> Project {
    let p = Project::example();
    p.use_smtp(server.port, sending);
    p
}

/// The example project moved into `my conf/` (configuration, archive,
/// issues, templates), sending to `server`, with `list` written to
/// `lists/my list.csv`.
fn spaced_project(server: &SmtpServer, sending: &str, list: &str) -> Project {
    let p = project(server, sending);
    fs::create_dir_all(p.path("my conf")).unwrap();
    for name in [
        "archive",
        "issues",
        "templates",
        "newsletter.toml",
        "subscribers.example.csv",
    ] {
        fs::rename(p.path(name), p.path(&format!("my conf/{name}"))).unwrap();
    }
    p.write(SPACED_LIST, list);
    p
}

/// `newsletter --config 'my conf/newsletter.toml' COMMAND ARGS…` arguments.
fn spaced_args<'a>(command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--config", SPACED_CONFIG, command];
    args.extend_from_slice(extra);
    args
}

fn send_args<'a>(list: Option<&'a str>, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["send", ISSUE];
    if let Some(list) = list {
        args.extend(["--subscribers", list]);
    }
    args.extend_from_slice(extra);
    args
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Asserts that nobody got two messages.
#[track_caller]
fn assert_no_duplicates(server: &SmtpServer) {
    let twice: Vec<(String, usize)> = per_recipient(server)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "recipients with more than one message (address, count): {twice:?}"
    );
}

/// `newsletter status` parsed.
#[derive(Debug, Default)]
struct StatusReport {
    accepted: u64,
    failed: u64,
    uncertain: u64,
    deferred: u64,
    pending: u64,
    subscribers: String,
    not_in_file: u64,
    uncertain_list: BTreeSet<String>,
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
            "subscribers" => r.subscribers = value.to_string(),
            "in the journal but not in this file" => {
                r.not_in_file = count();
                continue;
            }
            _ => continue,
        }
        seen.insert(key.to_string());
    }
    assert_eq!(
        seen.len(),
        6,
        "status should print five counts and the subscriber file:\n{stdout}"
    );
    r
}

/// `newsletter ARGS` (a `status` command) run to the end, parsed.
fn status_of(p: &Project, args: &[&str]) -> StatusReport {
    let out = run_to_end(p.command(args));
    out.expect_code(0);
    parse_status(&out.stdout)
}

fn status(p: &Project, list: Option<&str>) -> StatusReport {
    let mut args = vec!["status", ISSUE];
    if let Some(list) = list {
        args.extend(["--subscribers", list]);
    }
    status_of(p, &args)
}

/// A child process whose stdout and stderr go to files (no pipe can fill);
/// killed if the test ends while it still runs.
struct Running {
    child: Child,
    logs: tempfile::TempDir,
    done: bool,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let logs = tempfile::tempdir().unwrap();
        let stdout = fs::File::create(logs.path().join("stdout")).unwrap();
        let stderr = fs::File::create(logs.path().join("stderr")).unwrap();
        let child = cmd
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn newsletter");
        Running {
            child,
            logs,
            done: false,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(self.logs.path().join("stderr")).unwrap_or_default()
    }

    fn output(&self, code: i32) -> Output {
        Output {
            code,
            stdout: fs::read_to_string(self.logs.path().join("stdout")).unwrap_or_default(),
            stderr: self.stderr(),
        }
    }

    /// The output if the process has ended.
    fn try_finish(&mut self) -> Option<Output> {
        let status = self.child.try_wait().unwrap()?;
        self.done = true;
        Some(self.output(status.code().unwrap_or(-1)))
    }

    /// Waits for the end; panics (killing it) after [`RUN_TIMEOUT`].
    fn wait(&mut self) -> Output {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            if let Some(out) = self.try_finish() {
                return out;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.done = true;
                panic!(
                    "the process did not finish within {RUN_TIMEOUT:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ctrl-C.
    fn interrupt(&self) {
        signal(self.pid(), "INT");
    }

    /// kill -9, and waits for it to be gone.
    fn kill9(&mut self) -> Output {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        self.done = true;
        self.output(status.code().unwrap_or(-1))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Runs a prepared command to the end (killing it after [`RUN_TIMEOUT`]).
fn run_to_end(cmd: Command) -> Output {
    Running::spawn(cmd).wait()
}

/// Polls until `f` is true; panics with `what` after [`WAIT`].
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until at least `n` messages have arrived, or the run ended (then
/// panics: it was too fast to test anything).
fn wait_for_arrivals(server: &SmtpServer, run: &mut Running, n: usize) {
    wait_until(&format!("{n} arrivals"), || {
        if let Some(out) = run.try_finish() {
            panic!("the send ended before {n} messages arrived: {out:?}");
        }
        server.arrivals().len() >= n
    });
}

/// A shell command line run with `sh -c` in the project folder, with the
/// environment of [`Project::command`] and `extra_path` first on `PATH`.
fn shell(p: &Project, line: &str, extra_path: Option<&Path>) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(line)
        .current_dir(p.dir.path())
        .env("NEWSLETTER_UNSUBSCRIBE_SECRET", SECRET)
        .env("NEWSLETTER_RETRY_BASE_MS", "50")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    if let Some(dir) = extra_path {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", dir.display()));
    }
    cmd
}

/// The command printed on the line after the last `marker` line, which must
/// be the last line of `stderr`.
#[track_caller]
fn command_after(stderr: &str, marker: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines
        .iter()
        .rposition(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line with {marker:?} in stderr:\n{stderr}"));
    let rest: Vec<&str> = lines[at + 1..]
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        rest.len(),
        1,
        "stderr should end with one command line after {marker:?}:\n{stderr}"
    );
    rest[0].trim().to_string()
}

/// The binary as the tests start it (argv[0] of every run).
fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_newsletter")
}

/// The first word of a printed command, unquoted.
fn program_of(command: &str) -> String {
    shlex::split(command)
        .and_then(|w| w.into_iter().next())
        .unwrap_or_else(|| panic!("cannot split {command:?}"))
}

/// Appends one-click lines (the endpoint's format) and syncs them.
fn append_log(path: &Path, addresses: &[String]) {
    let mut text = String::new();
    for a in addresses {
        text.push_str(&log_line(a));
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

fn log_line(address: &str) -> String {
    format!("2026-11-30T10:00:00Z\t{address}\tone-click\n")
}

/// Lines of the summary that start with `prefix` (trimmed).
fn summary_line<'a>(stderr: &'a str, prefix: &str) -> &'a str {
    stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in stderr:\n{stderr}"))
}

/// The addresses that arrived, by their number in the file.
fn arrived_numbers(server: &SmtpServer) -> BTreeSet<usize> {
    server
        .arrivals()
        .iter()
        .map(|a| user_number(&a.rcpt_tos[0]))
        .collect()
}

/// Asserts nothing arrived for `address` after `t` (unix seconds).
#[track_caller]
fn assert_nothing_after(server: &SmtpServer, address: &str, t: f64) {
    let late: Vec<f64> = server
        .arrivals()
        .iter()
        .filter(|a| a.rcpt_tos.iter().any(|r| r.eq_ignore_ascii_case(address)))
        .map(|a| a.t)
        .filter(|at| *at > t)
        .collect();
    assert!(
        late.is_empty(),
        "{address} was unsubscribed at {t:.3} but a message arrived at {late:?}"
    );
}

/// This machine's name as the lock record has it.
fn host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Checks the "is being sent by …" refusal names `pid` and a start time
/// between `from` and now.
#[track_caller]
fn assert_names_holder(stderr: &str, pid: u32, from: f64) {
    let expected = format!(
        "is being sent by process {pid} on {}, sending `{ISSUE_ID}`, since ",
        host()
    );
    let at = stderr
        .find(&expected)
        .unwrap_or_else(|| panic!("stderr should contain {expected:?}:\n{stderr}"));
    let rest = &stderr[at + expected.len()..];
    let time = rest
        .split(|c: char| c == ';' || c.is_whitespace())
        .next()
        .unwrap();
    let since: jiff::Timestamp = time
        .parse()
        .unwrap_or_else(|e| panic!("`since {time}` is not a time ({e}):\n{stderr}"));
    let since = since.as_second() as f64;
    assert!(
        since >= from.floor() - 1.0 && since <= now_unix() + 1.0,
        "the holder's start time {time} is not during this test:\n{stderr}"
    );
    assert!(
        stderr.contains("only one run may send an issue at a time"),
        "{stderr}"
    );
}

fn unsubscribe_token(address: &str) -> String {
    newsletter::token::Signer::new(LIST_ID, SECRET.as_bytes()).token(address)
}

// ---------------------------------------------------------------------------
// 1. One sender per issue
// ---------------------------------------------------------------------------

#[test]
fn two_sends_started_together_one_sends_everyone_once_the_other_is_refused() {
    let all = users(200);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 100\nconnections = 2");
    p.write("big.csv", &csv_for(&all));

    let started = now_unix();
    let mut runs = [
        Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"]))),
        Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"]))),
    ];
    let pids = [runs[0].pid(), runs[1].pid()];
    // The refused one ends at once, while the other is still sending.
    let mut first = None;
    wait_until("one of the two sends to end", || {
        for (i, run) in runs.iter_mut().enumerate() {
            if let Some(out) = run.try_finish() {
                first = Some((i, out));
                return true;
            }
        }
        false
    });
    let (loser, refused) = first.unwrap();
    let winner = 1 - loser;
    assert!(
        runs[winner].try_finish().is_none(),
        "the refused send should end while the other is still sending"
    );
    refused.expect_code(2);
    // Which process holds the issue is checked by
    // `a_send_refused_at_the_same_moment_names_the_process_that_holds_the_issue`
    // (here the holder may not have written its record yet).
    assert!(
        refused
            .stderr
            .contains(&format!("the issue `{ISSUE_ID}` is being sent by "))
            && refused
                .stderr
                .contains("only one run may send an issue at a time"),
        "{}",
        refused.stderr
    );
    if refused.stderr.contains("is being sent by process ") {
        assert_names_holder(&refused.stderr, pids[winner], started);
    }
    assert!(
        !refused.stderr.contains("Accepted"),
        "the refused run must not send: {}",
        refused.stderr
    );

    let out = runs[winner].wait();
    out.expect_code(0);
    assert_exactly_once(&server, &all);
    assert_eq!(server.arrivals().len(), all.len(), "no duplicates");
    let s = status(&p, Some("big.csv"));
    assert_eq!(
        (s.accepted, s.failed, s.uncertain, s.deferred, s.pending),
        (all.len() as u64, 0, 0, 0, 0)
    );
}

#[test]
fn a_send_refused_at_the_same_moment_names_the_process_that_holds_the_issue() {
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 0\nconnections = 2");
    const ROUNDS: usize = 40;
    // Two sends started together, again and again; neither has --yes, so the
    // one that gets the lock waits at the confirmation prompt, holding it,
    // until its stdin is closed (then it sends nothing).
    let mut wrong = Vec::new();
    for round in 0..ROUNDS {
        let mut runs = [0, 1].map(|_| {
            let mut cmd = p.command(&send_args(None, &[]));
            cmd.stdin(Stdio::piped());
            Running::spawn(cmd)
        });
        let mut first = None;
        wait_until("one of the two sends to end", || {
            for (i, run) in runs.iter_mut().enumerate() {
                if let Some(out) = run.try_finish() {
                    first = Some((i, out));
                    return true;
                }
            }
            false
        });
        let (loser, refused) = first.unwrap();
        let holder = &mut runs[1 - loser];
        let holder_pid = holder.pid();
        drop(holder.child.stdin.take());
        let out = holder.wait();
        out.expect_code(2);
        assert!(out.stderr.contains("not confirmed"), "{}", out.stderr);
        refused.expect_code(2);
        let named = format!(
            "is being sent by process {holder_pid} on {}, sending `{ISSUE_ID}`, since ",
            host()
        );
        if !refused.stderr.contains(&named) {
            wrong.push(format!(
                "round {round} (holder {holder_pid}): {}",
                refused.stderr.trim()
            ));
        }
    }
    assert!(server.arrivals().is_empty());
    assert!(
        wrong.is_empty(),
        "{} of {ROUNDS} refusals did not name the holder:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn a_second_send_with_another_subscriber_file_is_refused_too() {
    let all = users(100);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 20\nconnections = 2");
    p.write("big.csv", &csv_for(&all));
    p.write("other.csv", &csv_for(&users(5)));

    let started = now_unix();
    let mut first = Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"])));
    wait_for_arrivals(&server, &mut first, 3);
    let before = server.arrivals().len();
    let second = run_to_end(p.command(&send_args(Some("other.csv"), &["--yes"])));
    second.expect_code(2);
    assert_names_holder(&second.stderr, first.pid(), started);

    first.interrupt();
    first.wait().expect_code(130);
    assert_no_duplicates(&server);
    assert!(server.arrivals().len() >= before);
    let s = status(&p, Some("big.csv"));
    assert_eq!(s.accepted as usize, server.arrivals().len());
}

#[test]
fn apply_failures_is_refused_while_a_send_holds_the_issue() {
    let all = users(100);
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"rcpt": {"user0002@example.org": "550 5.1.1 No such user"}})),
        ..Default::default()
    });
    let p = project(&server, "per-second = 20\nconnections = 2");
    p.write("big.csv", &csv_for(&all));
    let csv_before = p.read("big.csv");

    let started = now_unix();
    let mut send = Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"])));
    wait_for_arrivals(&server, &mut send, 5);

    let out = run_to_end(p.command(&["status", ISSUE, "--apply-failures"]));
    out.expect_code(2);
    assert_names_holder(&out.stderr, send.pid(), started);
    assert_eq!(
        p.read("big.csv"),
        csv_before,
        "nothing may be marked while the issue is being sent"
    );

    // Plain status only reads: it works during the send.
    wait_until("status to show the failure", || {
        let s = status(&p, Some("big.csv"));
        s.accepted >= 1 && s.failed == 1
    });

    send.interrupt();
    send.wait().expect_code(130);
    // Once the send has stopped, the failure can be applied.
    let out = run_to_end(p.command(&["status", ISSUE, "--apply-failures"]));
    out.expect_code(0);
    assert!(
        p.read("big.csv")
            .contains("user0002@example.org,First-user0002,Last-user0002,bounced"),
        "{out:?}"
    );
}

#[test]
fn dry_runs_and_test_sends_do_not_take_the_issue_lock() {
    let all = users(150);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 20\nconnections = 2");
    p.write("big.csv", &csv_for(&all));

    let mut send = Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"])));
    wait_for_arrivals(&server, &mut send, 3);

    let dry = run_to_end(p.command(&send_args(Some("big.csv"), &["--dry-run"])));
    dry.expect_code(0);
    assert!(dry.stderr.contains("Dry run"), "{}", dry.stderr);
    let test = run_to_end(p.command(&send_args(None, &["--test-to", "staff@example.org"])));
    test.expect_code(0);
    assert!(
        send.try_finish().is_none(),
        "the send should still be running"
    );
    wait_until("the test message", || {
        !server.messages_to("staff@example.org").is_empty()
    });
    let msg = &server.messages_to("staff@example.org")[0];
    let parsed = MessageParser::default().parse(&msg.raw).unwrap();
    assert!(parsed.subject().unwrap_or("").starts_with("[TEST] "));

    send.interrupt();
    send.wait().expect_code(130);
    let s = status(&p, Some("big.csv"));
    assert_eq!(
        s.accepted as usize,
        server.arrivals().len() - 1,
        "the test message is not in the journal"
    );
    assert_no_duplicates(&server);
}

#[test]
fn a_send_killed_with_sigkill_leaves_no_stale_lock() {
    let all = users(200);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 50\nconnections = 2");
    p.write("big.csv", &csv_for(&all));

    let mut first = Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"])));
    let killed = first.pid();
    wait_for_arrivals(&server, &mut first, 20);
    first.kill9();
    let before = per_recipient(&server);
    assert!(before.len() < all.len(), "the kill came too late");
    // The lock file stays (it is never deleted) and still names the dead
    // process; the lock itself went with the process.
    let record = p.read(LOCK);
    assert!(
        record.contains(&format!("process {killed} ")),
        "lock file: {record:?}"
    );

    let mut second = Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"])));
    let resumed = second.pid();
    let out = second.wait();
    out.expect_code(0);
    assert!(
        !out.stderr.contains("is being sent by"),
        "a dead process's lock must not block: {}",
        out.stderr
    );
    assert!(
        p.read(LOCK).contains(&format!("process {resumed} ")),
        "the new run records itself as the holder"
    );
    // Everyone once, but for the (at most one per connection) messages in
    // flight at the kill, which are uncertain and skipped.
    let s = status(&p, Some("big.csv"));
    assert!(s.uncertain <= 2, "{s:?}");
    assert_eq!(
        (s.accepted + s.uncertain, s.pending, s.failed, s.deferred),
        (all.len() as u64, 0, 0, 0)
    );
    let counts = per_recipient(&server);
    for a in &all {
        let n = counts.get(a).copied().unwrap_or(0);
        if s.uncertain_list.contains(a) {
            assert!(n <= 1, "{a} (uncertain) got {n}");
        } else {
            assert_eq!(n, 1, "{a} got {n} messages");
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Unsubscribes honoured during a send
// ---------------------------------------------------------------------------

/// Addresses of `all` that have not arrived, starting `ahead` places after
/// the furthest one that has, every `step` places.
fn far_ahead(
    server: &SmtpServer,
    all: &[String],
    ahead: usize,
    step: usize,
    n: usize,
) -> Vec<String> {
    let arrived = arrived_numbers(server);
    let furthest = arrived.iter().max().copied().unwrap_or(0);
    let picked: Vec<String> = (0..n)
        .map(|k| furthest + ahead + k * step)
        .map(|i| {
            assert!(i <= all.len(), "not enough addresses left to pick from");
            all[i - 1].clone()
        })
        .collect();
    for a in &picked {
        assert!(!arrived.contains(&user_number(a)));
    }
    picked
}

#[test]
fn unsubscribes_in_the_file_and_the_log_during_a_send_are_honoured() {
    let all = users(300);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 50\nconnections = 2");
    p.write("big.csv", &csv_for(&all));

    let mut send = Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"])));
    wait_for_arrivals(&server, &mut send, 100);

    // Twelve addresses well ahead of the sending, interleaved: even ones
    // unsubscribed in the file, odd ones in the one-click log.
    let picked = far_ahead(&server, &all, 40, 4, 12);
    let in_file: Vec<String> = picked.iter().step_by(2).cloned().collect();
    let in_log: Vec<String> = picked.iter().skip(1).step_by(2).cloned().collect();
    let mut changed_at = BTreeMap::new();

    let mut args = vec!["unsubscribe", "--subscribers", "big.csv"];
    args.extend(in_file.iter().map(String::as_str));
    let out = run_to_end(p.command(&args));
    out.expect_code(0);
    let t = now_unix();
    assert!(out.stdout.contains("changed 6"), "{out:?}");
    for a in &in_file {
        changed_at.insert(a.clone(), t);
    }
    append_log(&p.path("unsubscribes.log"), &in_log);
    let t = now_unix();
    for a in &in_log {
        changed_at.insert(a.clone(), t);
    }

    let out = send.wait();
    out.expect_code(0);
    for (a, t) in &changed_at {
        assert_nothing_after(&server, a, *t);
    }
    // They were far ahead, so none of them got anything.
    let rest: Vec<String> = all
        .iter()
        .filter(|a| !picked.contains(a))
        .cloned()
        .collect();
    assert_exactly_once(&server, &rest);
    for a in &picked {
        assert!(
            out.stderr
                .contains(&format!("not sent to {a}: unsubscribed during the run")),
            "stderr should note {a}:\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr
            .contains("not sent, unsubscribed during the run 12"),
        "{}",
        out.stderr
    );
    let s = status(&p, Some("big.csv"));
    assert_eq!((s.accepted, s.failed, s.uncertain), (288, 0, 0));

    // The next run sends nothing, and says why.
    let again = run_to_end(p.command(&send_args(Some("big.csv"), &["--yes"])));
    again.expect_code(0);
    assert!(again.stderr.contains("Nothing to send"), "{}", again.stderr);
    let left_out = summary_line(&again.stderr, "left out:");
    assert!(
        left_out.contains("already sent 288")
            && left_out.contains("unsubscribed 6")
            && left_out.contains("unsubscribed by one-click, not yet in the file 6"),
        "{left_out}"
    );
    assert_eq!(server.arrivals().len(), 288);
}

/// `newsletter unsubscribe serve` on a free port, its stderr in a file.
struct Endpoint {
    run: Running,
    /// `http://127.0.0.1:PORT/unsubscribe/{token}`, as printed.
    route: String,
}

impl Endpoint {
    fn start(p: &Project) -> Endpoint {
        let mut cmd = p.command(&["unsubscribe", "serve", "--bind", "127.0.0.1:0"]);
        let logs = tempfile::tempdir().unwrap();
        let stderr = fs::File::create(logs.path().join("stderr")).unwrap();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let route = line.trim().to_string();
        assert!(
            route.starts_with("http://127.0.0.1:") && route.contains("{token}"),
            "first line: {line:?}"
        );
        Endpoint {
            run: Running {
                child,
                logs,
                done: false,
            },
            route,
        }
    }

    /// The one-click POST of RFC 8058 to `url`; returns the status code.
    fn one_click(&self, url: &str) -> u16 {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut stream = TcpStream::connect(host).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let body = "List-Unsubscribe=One-Click";
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: news.renecassin.example.org\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let text = String::from_utf8_lossy(&answer);
        text.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad answer {text:?}"))
    }

    fn stop(mut self) {
        signal(self.run.pid(), "TERM");
        let out = self.run.wait();
        assert!(
            out.stderr.contains("POST 200"),
            "the endpoint logs its requests: {out:?}"
        );
    }
}

#[test]
fn one_click_posts_to_the_endpoint_during_a_send_are_honoured() {
    let all = users(300);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 50\nconnections = 2");
    p.write("big.csv", &csv_for(&all));
    let endpoint = Endpoint::start(&p);

    let mut send = Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"])));
    wait_for_arrivals(&server, &mut send, 60);

    // The link in a message that arrived is the endpoint's route with that
    // recipient's token: make the same links for addresses not yet mailed.
    let first = &server.messages()[0];
    let parsed = MessageParser::default().parse(&first.raw).unwrap();
    let header = parsed
        .header_raw("List-Unsubscribe")
        .expect("a List-Unsubscribe header")
        .to_string();
    let recipient = &first.rcpt_tos[0];
    let token = unsubscribe_token(recipient);
    assert!(
        header.contains(&format!(
            "https://news.renecassin.example.org/unsubscribe/{token}"
        )),
        "{header}"
    );
    let picked = far_ahead(&server, &all, 40, 7, 4);
    let mut changed_at = BTreeMap::new();
    for a in &picked {
        let url = endpoint.route.replace("{token}", &unsubscribe_token(a));
        assert_eq!(endpoint.one_click(&url), 200, "POST for {a}");
        changed_at.insert(a.clone(), now_unix());
    }

    let out = send.wait();
    out.expect_code(0);
    endpoint.stop();
    for (a, t) in &changed_at {
        assert_nothing_after(&server, a, *t);
    }
    let rest: Vec<String> = all
        .iter()
        .filter(|a| !picked.contains(a))
        .cloned()
        .collect();
    assert_exactly_once(&server, &rest);
    assert!(
        out.stderr
            .contains("not sent, unsubscribed during the run 4"),
        "{}",
        out.stderr
    );
    let log = p.read("unsubscribes.log");
    for a in &picked {
        assert!(log.contains(&format!("\t{a}\tone-click")), "{log}");
    }
}

#[test]
fn addresses_already_in_the_one_click_log_are_skipped_and_the_fix_is_named() {
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 0\nconnections = 2");
    // Case differs from the file: matching ignores it.
    append_log(
        &p.path("unsubscribes.log"),
        &[
            "Jose.Garcia@Example.org".to_string(),
            "li.wei@example.org".to_string(),
        ],
    );
    let out = run_to_end(p.command(&send_args(None, &["--yes"])));
    out.expect_code(0);
    let mailed = [
        "ruth.abrahams@example.org",
        "zoe.brightman@example.com",
        "lukasz.wojcik@example.com",
        "anonymous.supporter@example.com",
        "siobhan.oconnor@example.org",
        "fatima.rahman@example.com",
        "rahel.tesfaye@supporters.test",
        "bjorn.sorensen@example.org",
    ]
    .map(String::from);
    assert_exactly_once(&server, &mailed);
    assert!(
        out.stderr.contains("unsubscribed with the one-click link"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("newsletter unsubscribe --from-file unsubscribes.log"),
        "{}",
        out.stderr
    );
    let left_out = summary_line(&out.stderr, "left out:");
    assert!(
        left_out.contains("unsubscribed by one-click, not yet in the file 2"),
        "{left_out}"
    );
    let s = status(&p, None);
    assert_eq!(s.accepted, 8);
}

#[test]
fn a_configured_unsubscribe_log_is_the_one_honoured_before_and_during_a_send() {
    let all = users(300);
    let server = SmtpServer::start();
    let p = spaced_project(&server, "per-second = 50\nconnections = 2", &csv_for(&all));
    p.edit(
        SPACED_CONFIG,
        "journal = \"journal\"",
        "journal = \"journal\"\nunsubscribe-log = \"private/clicks.log\"",
    );
    let log = p.path("my conf/private/clicks.log");
    fs::create_dir_all(log.parent().unwrap()).unwrap();
    append_log(&log, &["user0002@example.org".to_string()]);
    // The default place is not watched any more.
    append_log(&p.path(SPACED_LOG), &["user0004@example.org".to_string()]);

    let mut send = Running::spawn(p.command(&spaced_args(
        "send",
        &[SPACED_ISSUE, "--subscribers", SPACED_LIST, "--yes"],
    )));
    wait_for_arrivals(&server, &mut send, 60);
    let picked = far_ahead(&server, &all, 40, 9, 3);
    append_log(&log, &picked);
    let t = now_unix();

    let out = send.wait();
    out.expect_code(0);
    assert!(
        out.stderr.contains("my conf/private/clicks.log"),
        "the note names the configured log:\n{}",
        out.stderr
    );
    for a in &picked {
        assert_nothing_after(&server, a, t);
    }
    let rest: Vec<String> = all
        .iter()
        .filter(|a| !picked.contains(a) && *a != "user0002@example.org")
        .cloned()
        .collect();
    assert_exactly_once(&server, &rest);
    assert!(
        out.stderr
            .contains("not sent, unsubscribed during the run 3"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_one_click_note_works_when_pasted_with_another_config_and_list() {
    let server = SmtpServer::start();
    let list = csv_for(&users(5));
    let p = spaced_project(&server, "per-second = 0\nconnections = 2", &list);
    append_log(&p.path(SPACED_LOG), &["user0003@example.org".to_string()]);
    let out = run_to_end(p.command(&spaced_args(
        "send",
        &[SPACED_ISSUE, "--subscribers", SPACED_LIST, "--yes"],
    )));
    out.expect_code(0);
    let others: Vec<String> = users(5)
        .into_iter()
        .filter(|a| a != "user0003@example.org")
        .collect();
    assert_exactly_once(&server, &others);
    let hint = command_after_first(&out.stderr, "Apply them to the file with");

    // `newsletter` on PATH is this binary.
    let bin_dir = Path::new(binary()).parent().unwrap();
    let pasted = run_to_end(shell(&p, &hint, Some(bin_dir)));
    assert_eq!(
        pasted.code, 0,
        "the printed `{hint}` should run: {pasted:?}"
    );
    assert!(
        p.read(SPACED_LIST)
            .contains("user0003@example.org,First-user0003,Last-user0003,unsubscribed"),
        "pasting `{hint}` should unsubscribe user0003 in `{SPACED_LIST}`: {pasted:?}\n{}",
        p.read(SPACED_LIST)
    );
}

/// The command on the line after the first line containing `marker`.
#[track_caller]
fn command_after_first(stderr: &str, marker: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line with {marker:?} in stderr:\n{stderr}"));
    lines
        .get(at + 1)
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| panic!("nothing after {marker:?}:\n{stderr}"))
}

#[test]
fn a_one_click_log_replaced_during_a_send_is_read_from_its_start() {
    let all = users(300);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 50\nconnections = 2");
    p.write("big.csv", &csv_for(&all));
    // One line already there: user0003 is left out by the plan.
    let log = p.path("unsubscribes.log");
    append_log(&log, &["user0003@example.org".to_string()]);

    let mut send = Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"])));
    wait_for_arrivals(&server, &mut send, 60);

    // Rotated: the applied line kept in `unsubscribes.log.1`, and a new log
    // with two new unsubscribes put in place at once (written aside and
    // renamed, so there is never a moment without a log).
    let picked = far_ahead(&server, &all, 40, 10, 2);
    fs::hard_link(&log, p.path("unsubscribes.log.1")).unwrap();
    let fresh = p.path("unsubscribes.log.new");
    fs::write(
        &fresh,
        format!("{}{}", log_line(&picked[0]), log_line(&picked[1])),
    )
    .unwrap();
    fs::File::open(&fresh).unwrap().sync_all().unwrap();
    fs::rename(&fresh, &log).unwrap();
    let t = now_unix();

    let out = send.wait();
    out.expect_code(0);
    for a in &picked {
        assert_nothing_after(&server, a, t);
    }
    let rest: Vec<String> = all
        .iter()
        .filter(|a| !picked.contains(a) && *a != "user0003@example.org")
        .cloned()
        .collect();
    assert_exactly_once(&server, &rest);
}

#[test]
fn new_rows_saved_in_place_into_the_subscriber_file_during_a_send_mail_nobody_twice() {
    // Larger than the reader's read-ahead, so the rewrite lands mid-stream.
    let all = users(1200);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 200\nconnections = 2");
    p.write("big.csv", &csv_for(&all));

    let mut send = Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"])));
    wait_for_arrivals(&server, &mut send, 100);

    // A volunteer adds five sign-ups at the top and saves the file in
    // place (same inode, as many editors and spreadsheets do).
    let added: Vec<String> = (1..=5).map(|i| format!("join{i:04}@example.com")).collect();
    let mut text = String::from("email,first_name,last_name,status\n");
    for a in &added {
        text.push_str(&csv_row(a));
    }
    text.push_str(&csv_for(&all)["email,first_name,last_name,status\n".len()..]);
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(p.path("big.csv"))
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
    drop(f);

    let out = send.wait();
    assert!(out.code == 0 || out.code == 2, "{out:?}");
    assert_no_duplicates(&server);
    let known: BTreeSet<String> = all.iter().chain(&added).cloned().collect();
    let strangers: Vec<String> = per_recipient(&server)
        .into_keys()
        .filter(|a| !known.contains(a))
        .collect();
    assert!(
        strangers.is_empty(),
        "mailed addresses in neither version: {strangers:?}"
    );

    // Whatever this run left, the next one completes, still nobody twice.
    let again = run_to_end(p.command(&send_args(Some("big.csv"), &["--yes"])));
    again.expect_code(0);
    let everyone: Vec<String> = known.into_iter().collect();
    assert_exactly_once(&server, &everyone);
}

// ---------------------------------------------------------------------------
// 3. The plan is a set difference
// ---------------------------------------------------------------------------

#[test]
fn after_a_limited_send_and_five_unsubscribes_only_the_never_mailed_are_sent() {
    let all = users(30);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 0\nconnections = 2");
    p.write("list.csv", &csv_for(&all));

    run_to_end(p.command(&send_args(Some("list.csv"), &["--limit", "25", "--yes"]))).expect_code(0);
    let first: BTreeSet<String> = per_recipient(&server).into_keys().collect();
    assert_eq!(first.len(), 25, "--limit 25 mails 25");
    assert_eq!(server.arrivals().len(), 25);
    let s = status(&p, Some("list.csv"));
    assert_eq!((s.accepted, s.pending), (25, 5));

    let gone: Vec<String> = first.iter().step_by(5).cloned().collect();
    assert_eq!(gone.len(), 5);
    let mut args = vec!["unsubscribe", "--subscribers", "list.csv"];
    args.extend(gone.iter().map(String::as_str));
    run_to_end(p.command(&args)).expect_code(0);

    let out = run_to_end(p.command(&send_args(Some("list.csv"), &["--yes"])));
    out.expect_code(0);
    let never: Vec<String> = all
        .iter()
        .filter(|a| !first.contains(*a))
        .cloned()
        .collect();
    assert_eq!(never.len(), 5);
    assert_exactly_once(&server, &all);
    assert_eq!(server.arrivals().len(), 30);
    let second: Vec<String> = server.arrivals()[25..]
        .iter()
        .map(|a| a.rcpt_tos[0].clone())
        .collect();
    assert_eq!(
        second.iter().cloned().collect::<BTreeSet<_>>(),
        never.iter().cloned().collect::<BTreeSet<_>>(),
        "the second run mails exactly the never-mailed"
    );
    let to_mail = summary_line(&out.stderr, "to mail now:");
    assert!(to_mail.starts_with("to mail now: 5 (5 new"), "{to_mail}");
    let left_out = summary_line(&out.stderr, "left out:");
    assert!(
        left_out.contains("already sent 20")
            && left_out.contains("in the journal but no longer subscribed 5")
            && left_out.contains("in the journal but no longer in this file 0"),
        "{left_out}"
    );
    // Status counts outcomes from the journal (25 + 5) and pending from
    // the file: the five who left were mailed, the rest all have it.
    let s = status(&p, Some("list.csv"));
    assert_eq!(
        (s.accepted, s.pending, s.failed, s.not_in_file),
        (30, 0, 0, 0),
        "{s:?}"
    );
}

#[test]
fn a_send_to_another_file_mails_only_its_new_addresses() {
    let a: Vec<String> = users(10);
    let new: Vec<String> = (1..=5).map(|i| format!("new{i:04}@example.com")).collect();
    let b: Vec<String> = a[..5].iter().chain(&new).cloned().collect();
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 0\nconnections = 2");
    p.write("A.csv", &csv_for(&a));
    p.write("B.csv", &csv_for(&b));

    run_to_end(p.command(&send_args(Some("A.csv"), &["--yes"]))).expect_code(0);
    assert_exactly_once(&server, &a);

    let out = run_to_end(p.command(&send_args(Some("B.csv"), &["--yes"])));
    out.expect_code(0);
    let everyone: Vec<String> = a.iter().chain(&new).cloned().collect();
    assert_exactly_once(&server, &everyone);
    let second: BTreeSet<String> = server.arrivals()[10..]
        .iter()
        .map(|x| x.rcpt_tos[0].clone())
        .collect();
    assert_eq!(second, new.iter().cloned().collect::<BTreeSet<_>>());
    let left_out = summary_line(&out.stderr, "left out:");
    assert!(
        left_out.contains("already sent 5")
            && left_out.contains("in the journal but no longer in this file 5"),
        "{left_out}"
    );
    let s = status(&p, Some("B.csv"));
    assert_eq!((s.accepted, s.pending, s.not_in_file), (15, 0, 5), "{s:?}");
}

#[test]
fn status_without_subscribers_counts_pending_against_the_file_the_send_used() {
    let other: Vec<String> = users(8);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 0\nconnections = 2");
    p.write("other.csv", &csv_for(&other));

    run_to_end(p.command(&send_args(Some("other.csv"), &["--limit", "5", "--yes"]))).expect_code(0);
    let s = status(&p, None);
    let canonical = fs::canonicalize(p.path("other.csv")).unwrap();
    assert_eq!(
        fs::canonicalize(p.path(&s.subscribers)).ok(),
        Some(canonical.clone()),
        "status names the file the journal was sent from: {}",
        s.subscribers
    );
    assert_eq!((s.accepted, s.pending, s.not_in_file), (5, 3, 0), "{s:?}");

    // The configured file is another matter: none of its ten were mailed.
    let s = status(&p, Some("subscribers.example.csv"));
    assert_eq!((s.accepted, s.pending, s.not_in_file), (5, 10, 5), "{s:?}");

    run_to_end(p.command(&send_args(Some("other.csv"), &["--yes"]))).expect_code(0);
    assert_exactly_once(&server, &other);
    let s = status(&p, None);
    assert_eq!(
        fs::canonicalize(p.path(&s.subscribers)).ok(),
        Some(canonical)
    );
    assert_eq!((s.accepted, s.pending), (8, 0), "{s:?}");
}

// ---------------------------------------------------------------------------
// 4. Every resume hint works when pasted
// ---------------------------------------------------------------------------

/// `n` users with one invalid row after the third, for `--skip-invalid`.
fn list_with_invalid_row(n: usize) -> String {
    let all = users(n);
    let mut text = String::from("email,first_name,last_name,status\n");
    for (i, a) in all.iter().enumerate() {
        text.push_str(&csv_row(a));
        if i == 2 {
            text.push_str("not-an-address,Bad,Row,subscribed\n");
        }
    }
    text
}

fn spaced_send_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = spaced_args(
        "send",
        &[SPACED_ISSUE, "--subscribers", SPACED_LIST, "--skip-invalid"],
    );
    args.extend_from_slice(extra);
    args
}

fn spaced_status(p: &Project) -> StatusReport {
    status_of(
        p,
        &spaced_args("status", &[SPACED_ISSUE, "--subscribers", SPACED_LIST]),
    )
}

/// Checks a printed resume command names this binary, the configuration,
/// the list and the flags of the run.
#[track_caller]
fn assert_is_the_same_command(command: &str) {
    assert_is_the_same_command_with(command, &[]);
}

/// The same command, with `extra` flags before `--yes`.
#[track_caller]
fn assert_is_the_same_command_with(command: &str, extra: &[&str]) {
    assert_eq!(
        program_of(command),
        binary(),
        "the printed program is argv[0]: {command}"
    );
    let words = shlex::split(command).unwrap();
    let mut expected: Vec<String> = [
        binary(),
        "--config",
        SPACED_CONFIG,
        "send",
        SPACED_ISSUE,
        "--subscribers",
        SPACED_LIST,
        "--skip-invalid",
    ]
    .map(String::from)
    .to_vec();
    expected.extend(extra.iter().map(|s| s.to_string()));
    expected.push("--yes".into());
    assert_eq!(words, expected, "printed: {command}");
}

#[test]
fn the_ctrl_c_resume_hint_runs_when_pasted_with_awkward_paths() {
    let n = 150;
    let all = users(n);
    let server = SmtpServer::start();
    let p = spaced_project(
        &server,
        "per-second = 20\nconnections = 2",
        &list_with_invalid_row(n),
    );

    let mut send = Running::spawn(p.command(&spaced_send_args(&["--yes"])));
    wait_for_arrivals(&server, &mut send, 5);
    send.interrupt();
    let out = send.wait();
    out.expect_code(130);
    let sent = server.arrivals().len();
    assert!(sent < n, "Ctrl-C came too late ({sent} sent)");
    let command = command_after(&out.stderr, "Run the same command again to continue:");
    assert_is_the_same_command(&command);
    let s = spaced_status(&p);
    assert_eq!((s.accepted, s.uncertain), (sent as u64, 0));

    let pasted = run_to_end(shell(&p, &command, None));
    pasted.expect_code(0);
    assert_exactly_once(&server, &all);
    assert!(server.messages_to("not-an-address").is_empty());
    let s = spaced_status(&p);
    assert_eq!((s.accepted, s.pending), (n as u64, 0));
    assert!(
        p.path("my conf/journal/2022-07-13.journal").exists(),
        "the journal is where the configuration says"
    );
}

#[test]
fn the_daily_limit_resume_hint_runs_when_pasted_with_awkward_paths() {
    let n = 8;
    let all = users(n);
    let server = SmtpServer::start();
    let p = spaced_project(
        &server,
        "per-second = 0\nper-day = 3\nconnections = 2",
        &list_with_invalid_row(n),
    );

    let out = run_to_end(p.command(&spaced_send_args(&["--yes"])));
    out.expect_code(0);
    assert_eq!(server.arrivals().len(), 3);
    let line = summary_line(&out.stderr, "The daily limit of 3 messages is reached.");
    assert!(
        line.contains("Run the same command again in ") && line.ends_with(" to continue:"),
        "{line}"
    );
    let command = command_after(&out.stderr, "Run the same command again in ");
    assert_is_the_same_command(&command);

    // Pasted at once, it runs and still keeps the limit.
    let pasted = run_to_end(shell(&p, &command, None));
    pasted.expect_code(0);
    assert_eq!(server.arrivals().len(), 3, "{}", pasted.stderr);
    assert_eq!(
        command_after(&pasted.stderr, "Run the same command again in "),
        command
    );

    // A day later (here: the limit raised, which the journal allows), the
    // same pasted command sends the rest once.
    p.edit(SPACED_CONFIG, "per-day = 3", "per-day = 0");
    let pasted = run_to_end(shell(&p, &command, None));
    pasted.expect_code(0);
    assert_exactly_once(&server, &all);
    let s = spaced_status(&p);
    assert_eq!((s.accepted, s.pending), (n as u64, 0));
}

#[test]
fn the_deferred_resume_hint_and_its_status_command_run_when_pasted() {
    let n = 6;
    let all = users(n);
    let flaky = "user0004@example.org";
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"rcpt": {flaky: "451 4.7.1 Try again later"}})),
        ..Default::default()
    });
    let p = spaced_project(
        &server,
        "per-second = 0\nconnections = 2\nretries = 2",
        &list_with_invalid_row(n),
    );
    let out = run_to_end(p.command(&spaced_send_args(&["--yes"])));
    out.expect_code(1);
    let command = command_after(&out.stderr, "Deferred ones are retried by:");
    assert_is_the_same_command(&command);
    let line = summary_line(&out.stderr, "Some recipients were not accepted; see `");
    let status_cmd = line
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let pasted = run_to_end(shell(&p, &status_cmd, None));
    pasted.expect_code(0);
    let s = parse_status(&pasted.stdout);
    assert_eq!((s.accepted, s.deferred), (n as u64 - 1, 1));
    let failed = fs::read_to_string(p.path("failed.csv")).unwrap();
    assert!(failed.contains(flaky), "{failed}");

    server.set_faults(json!({}));
    let pasted = run_to_end(shell(&p, &command, None));
    pasted.expect_code(0);
    assert_exactly_once(&server, &all);
}

#[test]
fn the_too_many_failures_resume_hint_mails_everyone_once_the_problem_is_fixed() {
    let n = 40;
    let all = users(n);
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"rcpt": {"*": "550 5.7.1 Sender address rejected by policy"}})),
        ..Default::default()
    });
    let p = spaced_project(
        &server,
        "per-second = 0\nconnections = 2\nmax-consecutive-failures = 3",
        &list_with_invalid_row(n),
    );
    let out = run_to_end(p.command(&spaced_send_args(&["--yes"])));
    out.expect_code(1);
    let command = command_after(&out.stderr, "Fix it, then continue with:");
    // Those refused because of the sending problem are tried again.
    assert_is_the_same_command_with(&command, &["--retry-failed"]);

    // Fixed.
    server.set_faults(json!({}));
    let pasted = run_to_end(shell(&p, &command, None));
    pasted.expect_code(0);
    assert_exactly_once(&server, &all);
    let s = spaced_status(&p);
    assert_eq!((s.accepted, s.failed, s.pending), (n as u64, 0, 0), "{s:?}");
}

#[test]
fn the_resume_hint_after_the_list_went_missing_runs_when_pasted() {
    let n = 200;
    let all = users(n);
    let server = SmtpServer::start();
    let p = spaced_project(
        &server,
        "per-second = 50\nconnections = 2",
        &list_with_invalid_row(n),
    );
    let mut send = Running::spawn(p.command(&spaced_send_args(&["--yes"])));
    wait_for_arrivals(&server, &mut send, 20);
    // Someone moves the file away: new unsubscribes in it cannot be seen,
    // so the run must stop.
    fs::rename(p.path(SPACED_LIST), p.path("lists/moved.csv")).unwrap();
    let out = send.wait();
    out.expect_code(2);
    let sent = server.arrivals().len();
    assert!(sent < n, "the run should stop early ({sent} sent)");
    let command = command_after(&out.stderr, "then continue with:");
    assert_is_the_same_command(&command);
    assert!(out.stderr.contains("Stopped: "), "{}", out.stderr);

    fs::rename(p.path("lists/moved.csv"), p.path(SPACED_LIST)).unwrap();
    let pasted = run_to_end(shell(&p, &command, None));
    pasted.expect_code(0);
    assert_exactly_once(&server, &all);
    let s = spaced_status(&p);
    assert_eq!((s.accepted, s.pending, s.uncertain), (n as u64, 0, 0));
}

#[test]
fn the_resend_uncertain_hint_runs_when_pasted_and_confirmed() {
    let n = 6;
    let all = users(n);
    let slow = "user0005@example.org";
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"delay_data_reply_seconds": {slow: 30.0}})),
        ..Default::default()
    });
    let p = spaced_project(
        &server,
        "per-second = 0\nconnections = 2",
        &list_with_invalid_row(n),
    );
    p.edit(SPACED_CONFIG, "timeout-seconds = 10", "timeout-seconds = 2");
    let out = run_to_end(p.command(&spaced_send_args(&["--yes"])));
    out.expect_code(1);
    let command = command_after_first(&out.stderr, "not sent again unless you run");
    let expected = format!(
        "{} --config '{SPACED_CONFIG}' send '{SPACED_ISSUE}' --subscribers '{SPACED_LIST}' --skip-invalid --resend-uncertain",
        binary()
    );
    assert_eq!(
        shlex::split(&command),
        shlex::split(&expected),
        "printed: {command}"
    );
    let s = spaced_status(&p);
    assert_eq!(s.uncertain_list, BTreeSet::from([slow.to_string()]));
    wait_until("the slow message to be stored", || {
        !server.messages_to(slow).is_empty()
    });

    // The command asks before it sends: answer it as a person would.
    server.set_faults(json!({}));
    let mut cmd = shell(&p, &command, None);
    cmd.stdin(Stdio::piped());
    let mut run = Running::spawn(cmd);
    run.child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{ISSUE_ID}\n").as_bytes())
        .unwrap();
    let pasted = run.wait();
    pasted.expect_code(0);
    let others: Vec<String> = all.iter().filter(|a| *a != slow).cloned().collect();
    let counts = per_recipient(&server);
    for a in &others {
        assert_eq!(counts.get(a), Some(&1), "{a}");
    }
    assert_eq!(counts.get(slow), Some(&2), "re-sent, as the hint warns");
    let s = spaced_status(&p);
    assert_eq!((s.accepted, s.uncertain, s.pending), (n as u64, 0, 0));
}

#[test]
fn a_run_stopped_by_an_unreadable_log_says_to_fix_the_log() {
    let all = users(200);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 50\nconnections = 2");
    p.write("big.csv", &csv_for(&all));
    let mut send = Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"])));
    wait_for_arrivals(&server, &mut send, 20);
    fs::create_dir(p.path("unsubscribes.log")).unwrap();
    let out = send.wait();
    out.expect_code(2);
    let stopped = summary_line(&out.stderr, "Stopped: ");
    assert!(
        stopped.contains("unsubscribes.log") && stopped.contains("Fix `unsubscribes.log`"),
        "the stop names the log as the thing to fix: {stopped}"
    );

    fs::remove_dir(p.path("unsubscribes.log")).unwrap();
    let command = command_after(&out.stderr, "then continue with:");
    run_to_end(shell(&p, &command, None)).expect_code(0);
    assert_exactly_once(&server, &all);
}

/// A file renamed over the list during a run whose changed rows cannot be
/// read (a status the tool does not know, a row of the wrong width): those
/// addresses may have opted out, so they are not mailed; the rest are.
#[test]
fn unreadable_rows_saved_during_a_send_keep_their_addresses_unmailed() {
    let all = users(200);
    let server = SmtpServer::start();
    let p = project(&server, "per-second = 40\nconnections = 2");
    p.write("big.csv", &csv_for(&all));
    let mut send = Running::spawn(p.command(&send_args(Some("big.csv"), &["--yes"])));
    wait_for_arrivals(&server, &mut send, 40);

    let picked = far_ahead(&server, &all, 40, 5, 2);
    let mut text = String::from("email,first_name,last_name,status\n");
    for a in &all {
        if *a == picked[0] {
            text.push_str(&format!("{a},F,L,Unsubscribed on request\n"));
        } else if *a == picked[1] {
            text.push_str(&format!("{a},F,L,,unsubscribed\n"));
        } else {
            text.push_str(&csv_row(a));
        }
    }
    p.write("big.csv.new", &text);
    fs::rename(p.path("big.csv.new"), p.path("big.csv")).unwrap();
    let changed = now_unix();

    let out = send.wait();
    out.expect_code(0);
    for a in &picked {
        assert_nothing_after(&server, a, changed);
        assert!(
            out.stderr
                .contains(&format!("not sent to {a}: unsubscribed during the run")),
            "{}",
            out.stderr
        );
    }
    let rest: Vec<String> = all
        .iter()
        .filter(|a| !picked.contains(a))
        .cloned()
        .collect();
    assert_exactly_once(&server, &rest);
}
