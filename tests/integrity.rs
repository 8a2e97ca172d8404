//! The journal is never trusted blindly, and `send` refuses what it should
//! not send: damaged, foreign, linked or special journals are refused with
//! nothing sent; an issue edited after a partial send needs
//! `--accept-changes`; what `check` calls an error is refused before any
//! connection; `status --apply-failures` marks only address refusals.
//! Every test runs the real binary against the aiosmtpd test server
//! (tests/support/smtp_server.py) on 127.0.0.1, or against a bare listener
//! that counts connections. Needs `scripts/setup-test-deps`.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use serde_json::{Value, json};
use support::project::{Output, Project};
use support::smtp::{ServerOptions, SmtpServer};

const ISSUE: &str = "issues/2022-07-13.toml";
const ISSUE_ID: &str = "2022-07-13";
const OTHER_ISSUE: &str = "issues/2020-12-10.toml";
const OTHER_ID: &str = "2020-12-10";
const JOURNAL: &str = "journal/2022-07-13.journal";
const OTHER_JOURNAL: &str = "journal/2020-12-10.journal";
const SUBJECT: &str = "Rwanda, Refugees, and Our Rights under threat";
const LIST_ID: &str = "supporters.renecassin.example.org";
const CSV: &str = "subscribers.example.csv";
/// Subscribed rows of `subscribers.example.csv`.
const SUBSCRIBED: &[&str] = &[
    "ruth.abrahams@example.org",
    "zoe.brightman@example.com",
    "jose.garcia@example.org",
    "lukasz.wojcik@example.com",
    "li.wei@example.org",
    "anonymous.supporter@example.com",
    "siobhan.oconnor@example.org",
    "fatima.rahman@example.com",
    "rahel.tesfaye@supporters.test",
    "bjorn.sorensen@example.org",
];
/// Generous limit for any single run of the binary.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a run that must not block may take.
const NO_HANG: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The example project, sending to `port` with these `[sending]` lines.
fn project_on(port: u16, sending: &str) -> Project {
    let p = Project::example();
    p.use_smtp(port, sending);
    p
}

fn project(server: &SmtpServer) -> Project {
    project_on(server.port, "per-second = 0\nconnections = 2")
}

/// Runs `newsletter ARGS`, killing it (and failing) after `timeout`.
/// Output goes to files, so no pipe can fill.
fn run_within(p: &Project, args: &[&str], timeout: Duration) -> Output {
    let logs = tempfile::tempdir().unwrap();
    let mut cmd = p.command(args);
    cmd.stdout(Stdio::from(
        fs::File::create(logs.path().join("stdout")).unwrap(),
    ))
    .stderr(Stdio::from(
        fs::File::create(logs.path().join("stderr")).unwrap(),
    ));
    let mut child = cmd.spawn().expect("spawn newsletter");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`newsletter {}` did not finish within {timeout:?}; stderr:\n{}",
                args.join(" "),
                fs::read_to_string(logs.path().join("stderr")).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let out = Output {
        code: status.code().unwrap_or(-1),
        stdout: fs::read_to_string(logs.path().join("stdout")).unwrap_or_default(),
        stderr: fs::read_to_string(logs.path().join("stderr")).unwrap_or_default(),
    };
    assert!(
        !out.stderr.contains("panicked") && !out.stdout.contains("panicked"),
        "`newsletter {}` panicked:\n{}",
        args.join(" "),
        out.stderr
    );
    out
}

fn run(p: &Project, args: &[&str]) -> Output {
    run_within(p, args, RUN_TIMEOUT)
}

/// `newsletter send ISSUE --yes EXTRA…`.
fn send(p: &Project, extra: &[&str]) -> Output {
    let mut args = vec!["send", ISSUE, "--yes"];
    args.extend_from_slice(extra);
    run(p, &args)
}

/// Sends the issue to all ten example subscribers and checks they got it.
fn send_everyone(p: &Project, server: &SmtpServer) {
    send(p, &[]).expect_code(0);
    server.wait_for_arrivals(SUBSCRIBED.len(), Duration::from_secs(30));
    assert_eq!(server.arrivals().len(), SUBSCRIBED.len());
}

fn read_bytes(p: &Project, relative: &str) -> Vec<u8> {
    fs::read(p.path(relative)).unwrap_or_else(|e| panic!("read {relative}: {e}"))
}

/// Byte equality, shown as text (shortened) when it fails.
#[track_caller]
fn assert_same(actual: Vec<u8>, expected: &[u8], what: &str) {
    if actual != expected {
        let show = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(3000)]).into_owned();
        panic!(
            "{what}\n--- actual ({} bytes)\n{}\n--- expected ({} bytes)\n{}",
            actual.len(),
            show(&actual),
            expected.len(),
            show(expected)
        );
    }
}

/// What the server saw: accepted messages and RCPT/DATA events.
fn server_counts(server: &SmtpServer) -> (usize, usize) {
    (server.arrivals().len(), server.events().len())
}

/// A refusal of the journal: exit 2, the standard words, and `what`.
#[track_caller]
fn assert_refused(out: &Output, what: &str) {
    out.expect_code(2);
    for needle in [
        "2022-07-13.journal` cannot be trusted",
        what,
        "Nothing was sent",
        "Move it aside",
        "--records",
    ] {
        assert!(
            out.stderr.contains(needle),
            "stderr should contain `{needle}`:\n{}",
            out.stderr
        );
    }
}

/// A refusal of a journal that is not a plain file: exit 2 and `what`.
#[track_caller]
fn assert_refused_file(out: &Output, what: &str) {
    out.expect_code(2);
    assert!(
        out.stderr.contains("2022-07-13.journal`") && out.stderr.contains(what),
        "stderr should name the journal and say it {what}:\n{}",
        out.stderr
    );
}

/// `send` and plain `status` both refuse the journal, and neither changes
/// it nor reaches the server.
#[track_caller]
fn assert_send_and_status_refuse(p: &Project, server: &SmtpServer, what: &str) {
    assert_send_and_status_refuse_with(p, server, what, assert_refused);
}

#[track_caller]
fn assert_send_and_status_refuse_with(
    p: &Project,
    server: &SmtpServer,
    what: &str,
    refused: fn(&Output, &str),
) {
    let before_journal = fs::symlink_metadata(p.path(JOURNAL))
        .ok()
        .filter(|m| m.is_file())
        .map(|_| read_bytes(p, JOURNAL));
    let before = server_counts(server);
    for extra in [&[][..], &["--resend-uncertain", "--retry-failed"][..]] {
        refused(&send(p, extra), what);
    }
    refused(&run(p, &["status", ISSUE]), what);
    assert_eq!(
        server_counts(server),
        before,
        "nothing may reach the server"
    );
    if let Some(bytes) = before_journal {
        assert!(
            read_bytes(p, JOURNAL) == bytes,
            "a refused journal must not be modified"
        );
    }
}

/// SplitMix64: a small seeded generator, so damage is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Byte offsets where each line starts, and the end of the file.
fn line_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' && i + 1 < bytes.len() {
            starts.push(i + 1);
        }
    }
    starts
}

/// The 1-based line number of byte `at`.
fn line_of(starts: &[usize], at: usize) -> usize {
    starts.partition_point(|s| *s <= at)
}

/// Flips `n` bytes at seeded positions in lines 2 ..= last-1 (never a
/// newline, never into one); returns the damaged copy and the first line hit.
fn flip_middle(bytes: &[u8], seed: u64, n: usize) -> (Vec<u8>, usize) {
    let starts = line_starts(bytes);
    assert!(starts.len() >= 4, "too few lines to damage the middle");
    let (from, to) = (starts[1], starts[starts.len() - 1] - 1);
    let mut rng = Rng(seed);
    let mut damaged = bytes.to_vec();
    let mut first = usize::MAX;
    let mut hit = 0;
    while hit < n {
        let at = from + rng.below(to - from);
        if damaged[at] == b'\n' {
            continue;
        }
        let mask = 1 + rng.below(255) as u8;
        if damaged[at] ^ mask == b'\n' {
            continue;
        }
        damaged[at] ^= mask;
        first = first.min(line_of(&starts, at));
        hit += 1;
    }
    assert_ne!(damaged, bytes);
    (damaged, first)
}

/// A JSON object made into a journal line: `,"crc":"…"}` with the CRC-32
/// of the object as given, and the newline.
fn sealed(object: &str) -> String {
    assert!(object.starts_with('{') && object.ends_with('}'), "{object}");
    let crc = crc32fast::hash(object.as_bytes());
    format!("{},\"crc\":\"{crc:08x}\"}}\n", &object[..object.len() - 1])
}

/// A journal line without its checksum field (the object the CRC covers).
fn unsealed(line: &str) -> String {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let cut = line.rfind(",\"crc\":\"").expect("a crc field");
    format!("{}}}", &line[..cut])
}

/// The journal's complete lines, parsed.
fn records(p: &Project, relative: &str) -> Vec<Value> {
    let text = p.read(relative);
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn count_events(records: &[Value], event: &str) -> usize {
    records.iter().filter(|r| r["event"] == event).count()
}

/// `newsletter status` counts by name, and the listed addresses.
#[derive(Debug, Default)]
struct Status {
    accepted: u64,
    failed: u64,
    uncertain: u64,
    deferred: u64,
    twice: u64,
    pending: u64,
    uncertain_list: BTreeSet<String>,
    journal: String,
}

fn parse_status(stdout: &str) -> Status {
    let mut s = Status::default();
    let mut seen = 0;
    for line in stdout.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let n = || -> u64 { value.parse().unwrap_or_else(|_| panic!("{line:?}")) };
        match key {
            "journal" => s.journal = value.to_string(),
            "accepted" => s.accepted = n(),
            "failed" => s.failed = n(),
            "uncertain" if value.contains('@') => {
                s.uncertain_list.insert(value.to_string());
                continue;
            }
            "uncertain" => s.uncertain = n(),
            "deferred" => s.deferred = n(),
            "possibly twice" if value.contains('@') => continue,
            "possibly twice" => s.twice = n(),
            "pending" => s.pending = n(),
            _ => continue,
        }
        seen += 1;
    }
    assert!(seen >= 7, "status should print every count:\n{stdout}");
    s
}

fn status(p: &Project, extra: &[&str]) -> Status {
    let mut args = vec!["status", ISSUE];
    args.extend_from_slice(extra);
    let out = run(p, &args);
    out.expect_code(0);
    parse_status(&out.stdout)
}

fn subject_of(raw: &[u8]) -> String {
    MessageParser::default()
        .parse(raw)
        .expect("parse message")
        .subject()
        .unwrap_or_default()
        .to_string()
}

/// `n` addresses `userNN@example.org` and a CSV with all of them subscribed.
fn users(n: usize) -> (Vec<String>, String) {
    let all: Vec<String> = (1..=n).map(|i| format!("user{i:02}@example.org")).collect();
    let mut csv = String::from("email,first_name,last_name,status\n");
    for (i, a) in all.iter().enumerate() {
        csv.push_str(&format!("{a},First{i},Last{i},subscribed\n"));
    }
    (all, csv)
}

/// A listener nobody answers on: counts connection attempts.
struct Listener(TcpListener);

impl Listener {
    fn new() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Listener(l)
    }

    fn port(&self) -> u16 {
        self.0.local_addr().unwrap().port()
    }

    /// Connections made so far (the kernel queues them until accepted).
    fn connections(&self) -> usize {
        let mut n = 0;
        loop {
            match self.0.accept() {
                Ok(_) => n += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return n,
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 1. Damaged, foreign and special journals
// ---------------------------------------------------------------------------

#[test]
fn the_test_sealing_matches_the_journal_format() {
    let server = SmtpServer::start();
    let p = project(&server);
    send(&p, &["--limit", "2"]).expect_code(0);
    let text = p.read(JOURNAL);
    assert!(text.ends_with('\n'));
    for line in text.split_inclusive('\n') {
        assert_eq!(sealed(&unsealed(line)), line, "resealing changes a line");
    }
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["event"], "journal");
    assert_eq!(first["version"], 2);
    assert_eq!(first["issue"], ISSUE_ID);
    assert_eq!(first["list"], LIST_ID);
    let subscribers = first["subscribers"].as_str().unwrap();
    // Relative to the configuration's folder, which holds it.
    assert_eq!(subscribers, CSV);
    for part in ["subject", "html", "text", "greeting", "sender"] {
        assert!(first["fingerprint"][part].is_string(), "{first}");
    }
}

#[test]
fn flipped_bytes_in_the_middle_of_the_journal_are_refused() {
    let server = SmtpServer::start();
    let p = project(&server);
    send_everyone(&p, &server);
    let original = read_bytes(&p, JOURNAL);
    let lines = line_starts(&original).len();
    assert_eq!(
        lines,
        1 + 2 * SUBSCRIBED.len(),
        "header, attempts, outcomes"
    );

    // 40 random bytes over the middle lines, for a few seeds.
    for seed in [1, 2, 3] {
        let (damaged, first) = flip_middle(&original, seed, 40);
        fs::write(p.path(JOURNAL), &damaged).unwrap();
        assert_send_and_status_refuse(&p, &server, &format!("line {first} is damaged"));
    }
    // One byte, one bit or one case change is enough.
    for seed in 10..22 {
        let (damaged, first) = flip_middle(&original, seed, 1);
        fs::write(p.path(JOURNAL), &damaged).unwrap();
        let out = send(&p, &[]);
        assert_refused(&out, &format!("line {first} is damaged"));
    }
    // An upper-case hex digit in a checksum is a changed byte too.
    let starts = line_starts(&original);
    let digits = starts[5] - 11..starts[5] - 3; // line 5's crc
    assert!(original[digits.clone()].iter().all(u8::is_ascii_hexdigit));
    let mut damaged = original.clone();
    match digits.clone().find(|i| original[*i].is_ascii_lowercase()) {
        Some(i) => damaged[i] = damaged[i].to_ascii_uppercase(),
        None => damaged[digits.start] ^= 1,
    }
    fs::write(p.path(JOURNAL), &damaged).unwrap();
    assert_refused(&send(&p, &[]), "line 5 is damaged");
    assert_eq!(server.arrivals().len(), SUBSCRIBED.len());

    // The intact journal is trusted again: nobody is mailed twice.
    fs::write(p.path(JOURNAL), &original).unwrap();
    let out = send(&p, &[]);
    out.expect_code(0);
    assert!(out.stderr.contains("Nothing to send."), "{}", out.stderr);
    assert_eq!(server.arrivals().len(), SUBSCRIBED.len());
}

#[test]
fn a_garbage_journal_is_refused() {
    let server = SmtpServer::start();
    let p = project(&server);
    fs::create_dir_all(p.path("journal")).unwrap();
    let mut rng = Rng(7);
    let mut binary: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    binary[0] = 0x00;
    binary.extend_from_slice(b"\nmore garbage\n");
    let header = {
        let server2 = SmtpServer::start();
        let q = project(&server2);
        send(&q, &["--limit", "1"]).expect_code(0);
        q.read(JOURNAL).lines().next().unwrap().to_string() + "\n"
    };
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "binary",
            binary,
            "its first line is not a journal header of this version".into(),
        ),
        (
            "text",
            b"hello\nworld\n".to_vec(),
            "its first line is not a journal header of this version".into(),
        ),
        (
            "json without checksums",
            b"{\"t\":1700000000,\"event\":\"accepted\",\"key\":\"ruth.abrahams@example.org\"}\n"
                .to_vec(),
            "it may have been written by an older version".into(),
        ),
        (
            "a header, then garbage",
            format!("{header}not json at all\n{header}").into_bytes(),
            "line 2 is damaged".into(),
        ),
        (
            "a header, an empty line, a header",
            format!("{header}\n{header}").into_bytes(),
            "line 2 is damaged".into(),
        ),
        (
            "two headers",
            format!("{header}{header}").into_bytes(),
            "line 2 starts another journal".into(),
        ),
    ];
    for (name, bytes, what) in cases {
        fs::write(p.path(JOURNAL), &bytes).unwrap();
        let out = send(&p, &[]);
        assert_refused(&out, &what);
        assert_same(
            read_bytes(&p, JOURNAL),
            &bytes,
            &format!("{name}: journal modified"),
        );
        assert_eq!(server_counts(&server), (0, 0), "{name}: something was sent");
    }
}

#[test]
fn a_v2_header_with_another_version_is_refused_as_older() {
    let server = SmtpServer::start();
    let p = project(&server);
    send(&p, &["--limit", "1"]).expect_code(0);
    let before = server_counts(&server);
    let text = p.read(JOURNAL);
    let first = text.lines().next().unwrap();
    let old = unsealed(first).replacen("\"version\":2", "\"version\":1", 1);
    assert!(old.contains("\"version\":1"));
    let rest: String = text.split_inclusive('\n').skip(1).collect();
    p.write(JOURNAL, &(sealed(&old) + &rest));
    assert_send_and_status_refuse(&p, &server, "older version");
    assert_eq!(server_counts(&server), before);
}

/// A journal written by the previous release (v1: plain JSON lines, no
/// header, no checksums) is refused, and the refusal should say it is from
/// an older version rather than call it damaged.
#[test]
fn a_v1_journal_is_refused_as_written_by_an_older_version() {
    let server = SmtpServer::start();
    let p = project(&server);
    let v1 = "{\"t\":1700000000.5,\"event\":\"attempt\",\"key\":\"ruth.abrahams@example.org\",\"email\":\"ruth.abrahams@example.org\"}\n\
              {\"t\":1700000001.5,\"event\":\"accepted\",\"key\":\"ruth.abrahams@example.org\",\"reply\":\"250 OK\"}\n";
    p.write(JOURNAL, v1);
    let out = send(&p, &[]);
    out.expect_code(2);
    assert_eq!(server_counts(&server), (0, 0));
    assert!(
        out.stderr.contains("older version")
            || out.stderr.contains("not a journal of this version"),
        "a v1 journal should be named as from an older version:\n{}",
        out.stderr
    );
}

#[test]
fn a_journal_copied_from_another_issue_is_refused() {
    let server = SmtpServer::start();
    let p = project(&server);
    let out = run(&p, &["send", OTHER_ISSUE, "--yes"]);
    out.expect_code(0);
    server.wait_for_arrivals(SUBSCRIBED.len(), Duration::from_secs(30));
    assert!(
        server
            .messages()
            .iter()
            .all(|m| subject_of(&m.raw) == "Happy Human Rights Day")
    );
    fs::copy(p.path(OTHER_JOURNAL), p.path(JOURNAL)).unwrap();
    assert_send_and_status_refuse(
        &p,
        &server,
        &format!("it belongs to the issue `{OTHER_ID}`, not `{ISSUE_ID}`"),
    );
    assert_eq!(server.arrivals().len(), SUBSCRIBED.len());

    // Read with --journal it is shown for what it is.
    let s = status(&p, &["--journal", JOURNAL]);
    assert_eq!((s.accepted, s.pending), (SUBSCRIBED.len() as u64, 0));
}

#[test]
fn a_journal_of_another_list_is_refused() {
    let server = SmtpServer::start();
    let p = project(&server);
    send(&p, &["--limit", "3"]).expect_code(0);
    p.edit(
        "newsletter.toml",
        &format!("id = \"{LIST_ID}\""),
        "id = \"other.renecassin.example.org\"",
    );
    assert_send_and_status_refuse(
        &p,
        &server,
        &format!("it was written for the list `{LIST_ID}`, not `other.renecassin.example.org`"),
    );
    assert_eq!(server.arrivals().len(), 3);
}

#[test]
fn a_journal_that_is_a_symbolic_link_is_refused() {
    let server = SmtpServer::start();
    let p = project(&server);
    fs::create_dir_all(p.path("journal")).unwrap();

    // To /dev/null: reads as empty, so it would mail everyone again.
    std::os::unix::fs::symlink("/dev/null", p.path(JOURNAL)).unwrap();
    assert_send_and_status_refuse_with(&p, &server, "is a symbolic link", assert_refused_file);
    let out = run(&p, &["status", ISSUE, "--records"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert!(
        fs::symlink_metadata(p.path(JOURNAL))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(server_counts(&server), (0, 0));

    // To a real journal (of this very issue), relative and absolute.
    fs::remove_file(p.path(JOURNAL)).unwrap();
    send(&p, &["--limit", "3"]).expect_code(0);
    fs::rename(p.path(JOURNAL), p.path("journal/real.journal")).unwrap();
    let real = read_bytes(&p, "journal/real.journal");
    for target in [
        Path::new("real.journal").to_path_buf(),
        p.path("journal/real.journal"),
    ] {
        std::os::unix::fs::symlink(&target, p.path(JOURNAL)).unwrap();
        assert_send_and_status_refuse_with(&p, &server, "is a symbolic link", assert_refused_file);
        assert_same(
            read_bytes(&p, "journal/real.journal"),
            &real,
            "a file changed",
        );
        assert_eq!(server.arrivals().len(), 3);
        fs::remove_file(p.path(JOURNAL)).unwrap();
    }
}

#[test]
fn a_fifo_or_a_folder_as_journal_is_refused_without_hanging() {
    let server = SmtpServer::start();
    let p = project(&server);
    fs::create_dir_all(p.path("journal")).unwrap();
    let made = Command::new("mkfifo")
        .arg(p.path(JOURNAL))
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    for args in [
        &["send", ISSUE, "--yes"][..],
        &["send", ISSUE, "--dry-run"][..],
        &["status", ISSUE][..],
        &["status", ISSUE, "--records"][..],
        &["status", ISSUE, "--journal", JOURNAL][..],
    ] {
        let out = run_within(&p, args, NO_HANG);
        out.expect_code(2);
        assert!(
            out.stderr.contains("not a plain file"),
            "{args:?}: stderr should say the journal is not a plain file:\n{}",
            out.stderr
        );
    }
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(
            &fs::symlink_metadata(p.path(JOURNAL)).unwrap().file_type()
        ),
        "the FIFO is left alone"
    );
    assert_eq!(server_counts(&server), (0, 0));

    fs::remove_file(p.path(JOURNAL)).unwrap();
    fs::create_dir(p.path(JOURNAL)).unwrap();
    let out = run_within(&p, &["send", ISSUE, "--yes"], NO_HANG);
    out.expect_code(2);
    assert!(out.stderr.contains("not a plain file"), "{}", out.stderr);
    assert_eq!(server_counts(&server), (0, 0));
}

#[test]
fn records_with_absurd_values_and_a_correct_checksum_are_refused() {
    let server = SmtpServer::start();
    let p = project(&server);
    send_everyone(&p, &server);
    let original = p.read(JOURNAL);
    let lines: Vec<&str> = original.split_inclusive('\n').collect();
    let ruth = SUBSCRIBED[0];
    let cases = [
        (
            format!(r#"{{"t":-1e300,"event":"accepted","key":"{ruth}","email":"{ruth}"}}"#),
            "is not between 2000 and tomorrow",
        ),
        (
            format!(r#"{{"t":1e300,"event":"attempt","key":"{ruth}"}}"#),
            "is not between 2000 and tomorrow",
        ),
        (
            format!(r#"{{"t":0,"event":"deferred","key":"{ruth}"}}"#),
            "is not between 2000 and tomorrow",
        ),
        (
            format!(r#"{{"t":4102444800,"event":"accepted","key":"{ruth}"}}"#),
            "is not between 2000 and tomorrow",
        ),
        (
            format!(r#"{{"t":1e400,"event":"accepted","key":"{ruth}"}}"#),
            "line 5 is damaged",
        ),
        (
            format!(
                r#"{{"t":1700000000,"event":"accepted","key":"{ruth}","email":"someone.else@example.org"}}"#
            ),
            "does not match its key",
        ),
        (
            r#"{"t":1700000000,"event":"accepted","key":"Ruth.Abrahams@example.org","email":"Ruth.Abrahams@example.org"}"#
                .to_string(),
            "does not match its key",
        ),
        (
            r#"{"t":1700000000,"event":"accepted","key":"","email":""}"#.to_string(),
            "its address is empty",
        ),
        (
            format!(r#"{{"t":1700000000,"event":"accepted","key":"{ruth}","extra":1}}"#),
            "line 5 is damaged",
        ),
        (
            format!(r#"{{"t":1700000000,"event":"exploded","key":"{ruth}"}}"#),
            "line 5 is damaged",
        ),
    ];
    for (object, what) in &cases {
        let bad = sealed(object);
        // As line 5, and as the last (complete) line.
        let middle: String = lines[..4]
            .iter()
            .copied()
            .chain([bad.as_str()])
            .chain(lines[4..].iter().copied())
            .collect();
        p.write(JOURNAL, &middle);
        let out = send(&p, &[]);
        assert_refused(&out, what);
        assert!(out.stderr.contains("line 5"), "{}", out.stderr);
        let records = run(&p, &["status", ISSUE, "--records"]);
        records.expect_code(0);
        assert!(
            records
                .stdout
                .lines()
                .any(|l| l.starts_with("     5  DAMAGED: ")),
            "{object}: --records should show line 5 as damaged:\n{}",
            records.stdout
        );
        let end = format!("{original}{bad}");
        p.write(JOURNAL, &end);
        let out = send(&p, &[]);
        assert_refused(&out, &format!("line {}", lines.len() + 1));
    }
    assert_eq!(server.arrivals().len(), SUBSCRIBED.len());
}

#[test]
fn a_torn_last_line_is_accepted_and_its_recipient_is_only_uncertain() {
    let server = SmtpServer::start();
    let p = project(&server);
    send_everyone(&p, &server);
    let original = read_bytes(&p, JOURNAL);
    let starts = line_starts(&original);
    let last = *starts.last().unwrap();
    let last_line: Value = serde_json::from_slice(&original[last..]).unwrap();
    assert_eq!(last_line["event"], "accepted");
    let who = last_line["key"].as_str().unwrap().to_string();
    // Cut in the middle of the last line: its newline and half of it gone.
    let torn = &original[..last + (original.len() - last) / 2];
    fs::write(p.path(JOURNAL), torn).unwrap();

    let out = send(&p, &[]);
    out.expect_code(0);
    assert!(
        out.stderr.contains("cut short") && out.stderr.contains("uncertain"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&who), "{}", out.stderr);
    assert!(out.stderr.contains("Nothing to send."), "{}", out.stderr);
    assert_eq!(server.arrivals().len(), SUBSCRIBED.len(), "nothing resent");
    assert_same(read_bytes(&p, JOURNAL), torn, "nothing written");

    let s = status(&p, &[]);
    assert_eq!(
        (s.accepted, s.uncertain, s.pending),
        (SUBSCRIBED.len() as u64 - 1, 1, 0)
    );
    assert_eq!(s.uncertain_list, BTreeSet::from([who.clone()]));
    let records = run(&p, &["status", ISSUE, "--records"]);
    records.expect_code(0);
    assert!(
        records
            .stdout
            .lines()
            .any(|l| l.starts_with(&format!("{:>6}  DAMAGED (cut short): ", starts.len()))),
        "{}",
        records.stdout
    );
}

/// After a torn last line, the next run appends to the file: what it
/// writes must not be glued onto the torn bytes, or the journal it leaves
/// is refused by every later run (and by `status`).
#[test]
fn a_run_after_a_torn_last_line_leaves_a_journal_that_can_be_read_again() {
    let server = SmtpServer::start();
    let p = project(&server);
    send(&p, &["--limit", "4"]).expect_code(0);
    let original = read_bytes(&p, JOURNAL);
    let last = *line_starts(&original).last().unwrap();
    fs::write(p.path(JOURNAL), &original[..last + 20]).unwrap();

    // The resume sends the six others.
    let out = send(&p, &[]);
    out.expect_code(0);
    assert!(out.stderr.contains("cut short"), "{}", out.stderr);
    assert_eq!(server.arrivals().len(), SUBSCRIBED.len());

    // The journal it left must still be readable.
    let out = run(&p, &["status", ISSUE]);
    assert_eq!(
        out.code, 0,
        "status refuses the journal the resume wrote:\n{}",
        out.stderr
    );
    let s = parse_status(&out.stdout);
    assert_eq!(
        (s.accepted, s.uncertain, s.pending),
        (SUBSCRIBED.len() as u64 - 1, 1, 0)
    );
    let out = send(&p, &[]);
    out.expect_code(0);
    assert!(out.stderr.contains("Nothing to send."), "{}", out.stderr);
    assert_eq!(server.arrivals().len(), SUBSCRIBED.len());
}

/// A crash while the header itself was written leaves a first line cut
/// short; the run that follows starts the journal, and the journal must
/// then be readable.
#[test]
fn a_torn_header_is_replaced_by_a_readable_journal() {
    let server = SmtpServer::start();
    let p = project(&server);
    send(&p, &["--limit", "1"]).expect_code(0);
    let header = p.read(JOURNAL).lines().next().unwrap().to_string();
    let fresh = SmtpServer::start();
    let q = project(&fresh);
    q.write(JOURNAL, &header[..header.len() / 2]);
    send(&q, &[]).expect_code(0);
    assert_eq!(fresh.arrivals().len(), SUBSCRIBED.len());
    let out = run(&q, &["status", ISSUE]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(parse_status(&out.stdout).accepted, SUBSCRIBED.len() as u64);
    let out = send(&q, &[]);
    out.expect_code(0);
    assert_eq!(fresh.arrivals().len(), SUBSCRIBED.len());
}

// ---------------------------------------------------------------------------
// 2. status --records and --journal
// ---------------------------------------------------------------------------

#[test]
fn status_records_names_the_damaged_line_by_number() {
    let server = SmtpServer::start();
    let p = project(&server);
    send_everyone(&p, &server);
    let original = read_bytes(&p, JOURNAL);
    let starts = line_starts(&original);
    let mut damaged = original.clone();
    damaged[starts[6] + 10] ^= 0x01; // line 7
    fs::write(p.path(JOURNAL), &damaged).unwrap();

    let out = run(&p, &["status", ISSUE, "--records"]);
    out.expect_code(0);
    let shown: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        shown.len(),
        starts.len(),
        "one line per record:\n{}",
        out.stdout
    );
    for (i, line) in shown.iter().enumerate() {
        let number = format!("{:>6}  ", i + 1);
        assert!(line.starts_with(&number), "{line:?}");
        if i + 1 == 7 {
            assert!(
                line.starts_with("     7  DAMAGED: its checksum does not match"),
                "{line:?}"
            );
        } else {
            assert!(!line.contains("DAMAGED"), "{line:?}");
        }
    }
    assert!(
        shown[0].contains(&format!(
            "journal of issue `{ISSUE_ID}` for list `{LIST_ID}`"
        )),
        "{}",
        shown[0]
    );
    assert_eq!(
        shown.iter().filter(|l| l.contains("accepted ")).count(),
        SUBSCRIBED.len() - count_accepted_at(&original, &starts, 7)
    );
    assert_same(
        read_bytes(&p, JOURNAL),
        &damaged,
        "--records writes nothing",
    );

    // The same, moved aside as the refusal suggests.
    fs::rename(
        p.path(JOURNAL),
        p.path("journal/2022-07-13.journal.damaged"),
    )
    .unwrap();
    let out = run(
        &p,
        &[
            "status",
            ISSUE,
            "--journal",
            "journal/2022-07-13.journal.damaged",
            "--records",
        ],
    );
    out.expect_code(0);
    assert!(out.stdout.contains("     7  DAMAGED: "), "{}", out.stdout);
}

/// 1 if line `number` of the intact journal is an `accepted` record.
fn count_accepted_at(original: &[u8], starts: &[usize], number: usize) -> usize {
    let from = starts[number - 1];
    let to = starts.get(number).copied().unwrap_or(original.len());
    let line: Value = serde_json::from_slice(&original[from..to]).unwrap();
    usize::from(line["event"] == "accepted")
}

#[test]
fn status_reads_a_journal_moved_aside() {
    let server = SmtpServer::start();
    let p = project(&server);
    send(&p, &["--limit", "4"]).expect_code(0);
    fs::rename(p.path(JOURNAL), p.path("moved.journal")).unwrap();
    let moved = read_bytes(&p, "moved.journal");

    let s = status(&p, &["--journal", "moved.journal"]);
    assert_eq!((s.accepted, s.failed, s.uncertain), (4, 0, 0));
    assert_eq!(s.pending, SUBSCRIBED.len() as u64 - 4);
    assert!(s.journal.ends_with("moved.journal"), "{}", s.journal);
    let out = run(
        &p,
        &["status", ISSUE, "--journal", "moved.journal", "--records"],
    );
    out.expect_code(0);
    assert_eq!(out.stdout.lines().count(), 1 + 2 * 4, "{}", out.stdout);
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.contains("accepted "))
            .count(),
        4
    );
    // The issue's own journal is gone: status starts from nothing.
    let s = status(&p, &[]);
    assert_eq!((s.accepted, s.pending), (0, SUBSCRIBED.len() as u64));
    assert_same(read_bytes(&p, "moved.journal"), &moved, "a file changed");

    let out = run(
        &p,
        &["status", ISSUE, "--journal", "missing.journal", "--records"],
    );
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("missing.journal"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// 3. The issue changed after a partial send
// ---------------------------------------------------------------------------

#[test]
fn an_edited_subject_is_refused_until_accepted_then_the_rest_get_it_once() {
    let server = SmtpServer::start();
    let p = project(&server);
    send(&p, &["--limit", "3"]).expect_code(0);
    server.wait_for_arrivals(3, Duration::from_secs(30));
    let first_three: BTreeSet<String> = server
        .arrivals()
        .iter()
        .map(|a| a.rcpt_tos[0].to_lowercase())
        .collect();
    assert_eq!(first_three.len(), 3);

    const NEW: &str = "Rwanda, Refugees, and Our Rights: still under threat";
    p.edit(
        ISSUE,
        &format!("subject = \"{SUBJECT}\""),
        &format!("subject = \"{NEW}\""),
    );
    let journal = read_bytes(&p, JOURNAL);
    for extra in [&[][..], &["--dry-run"][..], &["--resend-uncertain"][..]] {
        let out = send(&p, extra);
        out.expect_code(2);
        assert!(
            out.stderr
                .contains("the issue changed after it was partly sent")
                && out.stderr.contains("subject")
                && out.stderr.contains("--accept-changes"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(server_counts(&server).0, 3);
    assert_same(
        read_bytes(&p, JOURNAL),
        &journal,
        "a refusal writes nothing",
    );

    let out = send(&p, &["--accept-changes"]);
    out.expect_code(0);
    server.wait_for_arrivals(SUBSCRIBED.len(), Duration::from_secs(30));
    let messages = server.messages();
    assert_eq!(messages.len(), SUBSCRIBED.len(), "the rest, once each");
    let mut seen = BTreeSet::new();
    for m in &messages {
        let to = m.rcpt_tos[0].to_lowercase();
        assert!(seen.insert(to.clone()), "{to} got two messages");
        let subject = subject_of(&m.raw);
        if first_three.contains(&to) {
            assert_eq!(subject, SUBJECT);
        } else {
            assert_eq!(subject, NEW, "{to} got the old subject");
        }
    }
    assert_eq!(
        seen,
        SUBSCRIBED
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>()
    );
    let recs = records(&p, JOURNAL);
    assert_eq!(count_events(&recs, "changes-accepted"), 1, "{recs:#?}");
    let at = recs
        .iter()
        .position(|r| r["event"] == "changes-accepted")
        .unwrap();
    assert_eq!(
        recs[..at]
            .iter()
            .filter(|r| r["event"] == "accepted")
            .count(),
        3,
        "the decision is journaled before the rest are sent"
    );
    assert_ne!(
        recs[at]["fingerprint"]["subject"], recs[0]["fingerprint"]["subject"],
        "the new fingerprint is recorded"
    );
    assert_eq!(
        recs[at]["fingerprint"]["sender"], recs[0]["fingerprint"]["sender"],
        "the sender did not change"
    );

    let out = send(&p, &[]);
    out.expect_code(0);
    assert!(out.stderr.contains("Nothing to send."), "{}", out.stderr);
    assert_eq!(server.arrivals().len(), SUBSCRIBED.len());
    let s = status(&p, &[]);
    assert_eq!(
        (s.accepted, s.pending, s.twice),
        (SUBSCRIBED.len() as u64, 0, 0)
    );
    // Accepting again is not journaled twice when nothing is sent.
    send(&p, &["--accept-changes"]).expect_code(0);
    assert_eq!(count_events(&records(&p, JOURNAL), "changes-accepted"), 1);
}

#[test]
fn an_edited_letter_is_refused_naming_the_parts() {
    let server = SmtpServer::start();
    let p = project(&server);
    send(&p, &["--limit", "2"]).expect_code(0);
    p.edit(
        ISSUE,
        "On 22 June the government",
        "On 22 June 2022 the government",
    );
    let out = send(&p, &[]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("HTML part") && out.stderr.contains("text part"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("subject or preheader"),
        "{}",
        out.stderr
    );
    assert_eq!(server.arrivals().len(), 2);
    // Undoing the edit is enough.
    p.edit(
        ISSUE,
        "On 22 June 2022 the government",
        "On 22 June the government",
    );
    send(&p, &[]).expect_code(0);
    assert_eq!(server.arrivals().len(), SUBSCRIBED.len());
    assert_eq!(count_events(&records(&p, JOURNAL), "changes-accepted"), 0);
}

// ---------------------------------------------------------------------------
// 4. What `check` calls an error is refused before connecting
// ---------------------------------------------------------------------------

#[test]
fn an_oversized_issue_is_refused_before_connecting() {
    let listener = Listener::new();
    let p = project_on(listener.port(), "per-second = 0\nconnections = 2");
    let paragraph =
        "Human rights protect us all, and they matter most to those the law forgets. ".repeat(10);
    let mut letter = String::with_capacity(30 * 1024 * 1024);
    while letter.len() < 29 * 1024 * 1024 {
        letter.push_str(&paragraph);
        letter.push_str("\n\n");
    }
    let text = p.read(ISSUE);
    let start = text.find("letter = \"\"\"\n").unwrap() + "letter = \"\"\"\n".len();
    let end = start + text[start..].find("\"\"\"").unwrap();
    p.write(
        ISSUE,
        &format!("{}{letter}{}", &text[..start], &text[end..]),
    );
    assert!(fs::metadata(p.path(ISSUE)).unwrap().len() > 29 * 1024 * 1024);

    let started = Instant::now();
    let out = send(&p, &[]);
    let took = started.elapsed();
    out.expect_code(2);
    assert!(
        out.stderr.contains("[html-too-large]") && out.stderr.contains("error: "),
        "{}",
        &out.stderr[..out.stderr.len().min(4000)]
    );
    assert!(
        out.stderr.lines().any(|l| l.starts_with("error: ")
            && l.contains("2022-07-13.toml:")
            && l.ends_with("[html-too-large]")),
        "the finding names the issue file:\n{}",
        &out.stderr[..out.stderr.len().min(4000)]
    );
    assert!(
        out.stderr
            .contains("nothing was sent and nothing was connected to"),
        "{}",
        &out.stderr[..out.stderr.len().min(4000)]
    );
    assert_eq!(listener.connections(), 0, "no connection may be made");
    assert!(
        fs::read(p.path(JOURNAL)).map_or(true, |j| j.is_empty()),
        "no journal for a refused send"
    );
    eprintln!("29 MB issue refused in {took:?}");
}

#[test]
fn an_unsafe_link_is_refused_before_connecting_but_a_test_send_is_not() {
    let listener = Listener::new();
    let p = project_on(listener.port(), "per-second = 0\nconnections = 2");
    p.edit(
        ISSUE,
        "(https://www.renecassin.org/briefings/human-rights-act/)",
        "(javascript:alert(document.cookie))",
    );
    for extra in [&[][..], &["--limit", "1"][..], &["--dry-run"][..]] {
        let out = send(&p, extra);
        out.expect_code(2);
        assert!(
            out.stderr.lines().any(|l| l.starts_with("error: ")
                && l.contains("2022-07-13.toml:")
                && l.contains("javascript:")
                && l.ends_with("[unsafe-link]")),
            "{extra:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains("nothing was sent and nothing was connected to"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(listener.connections(), 0, "no connection may be made");
    assert!(fs::read(p.path(JOURNAL)).map_or(true, |j| j.is_empty()));

    // --test-to is not gated: staff can look at the broken issue.
    let server = SmtpServer::start();
    p.use_smtp(server.port, "per-second = 0\nconnections = 2");
    let out = run(&p, &["send", ISSUE, "--test-to", "staff@example.org"]);
    out.expect_code(0);
    let arrivals = server.wait_for_arrivals(1, Duration::from_secs(30));
    assert_eq!(arrivals.len(), 1);
    assert_eq!(arrivals[0].rcpt_tos, ["staff@example.org"]);
    // A real send to the test server is still refused.
    let out = send(&p, &[]);
    out.expect_code(2);
    assert_eq!(server.arrivals().len(), 1);
    assert!(
        !server
            .events()
            .iter()
            .any(|e| e.addr.as_deref().is_some_and(|a| SUBSCRIBED.contains(&a))),
        "no subscriber reached the server"
    );
}

// ---------------------------------------------------------------------------
// 5. --apply-failures marks only address refusals
// ---------------------------------------------------------------------------

#[test]
fn data_stage_refusals_are_listed_not_marked() {
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"data_reply": {"*": "552 5.3.4 Message size exceeds fixed limit"}})),
        ..Default::default()
    });
    let p = project_on(server.port, "per-second = 0\nconnections = 1");
    let out = send(&p, &[]);
    out.expect_code(1);
    assert!(out.stderr.contains("552"), "{}", out.stderr);
    assert!(server.arrivals().is_empty());
    let data_events = server.events().iter().filter(|e| e.event == "data").count();
    assert!(data_events >= 1, "DATA was reached");

    let recs = records(&p, JOURNAL);
    let failed: Vec<&Value> = recs.iter().filter(|r| r["event"] == "failed").collect();
    assert!(!failed.is_empty());
    for r in &failed {
        assert_eq!(r["stage"], "data", "{r}");
        assert!(r["reply"].as_str().unwrap().contains("552"), "{r}");
    }
    let failed_addresses: BTreeSet<String> = failed
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_string())
        .collect();
    let s = status(&p, &[]);
    assert_eq!(s.failed as usize, failed_addresses.len());

    let csv = read_bytes(&p, CSV);
    let out = run(&p, &["status", ISSUE, "--apply-failures"]);
    out.expect_code(0);
    let listed: BTreeSet<String> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("not marked: "))
        .map(|l| {
            assert!(l.contains("552") && l.contains('('), "{l}");
            l.split(':').next().unwrap().to_string()
        })
        .collect();
    assert_eq!(listed, failed_addresses, "{}", out.stdout);
    assert_same(read_bytes(&p, CSV), &csv, "nobody is marked bounced");
    assert!(
        !p.path(&format!("{CSV}.bak")).exists(),
        "nothing was rewritten"
    );

    // With --force too: a message refusal is never an address refusal.
    let out = run(&p, &["status", ISSUE, "--apply-failures", "--force"]);
    out.expect_code(0);
    assert_same(read_bytes(&p, CSV), &csv, "a file changed");
}

#[test]
fn many_rcpt_refusals_sharing_one_reply_need_force() {
    let (all, csv) = users(20);
    // Interleaved with the accepted ones.
    let refused: BTreeSet<String> = [0, 1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 18]
        .iter()
        .map(|i| all[*i].clone())
        .collect();
    assert_eq!(refused.len(), 12);
    let reply = "550 Requested action not taken: mailbox unavailable";
    let faults: serde_json::Map<String, Value> =
        refused.iter().map(|a| (a.clone(), json!(reply))).collect();
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({ "rcpt": faults })),
        ..Default::default()
    });
    let p = project_on(
        server.port,
        "per-second = 0\nconnections = 2\nmax-consecutive-failures = 100",
    );
    p.write("list.csv", &csv);
    let out = send(&p, &["--subscribers", "list.csv"]);
    out.expect_code(1);
    assert_eq!(server.arrivals().len(), 8);
    let recs = records(&p, JOURNAL);
    for r in recs.iter().filter(|r| r["event"] == "failed") {
        assert_eq!(r["stage"], "rcpt", "{r}");
    }
    assert_eq!(count_events(&recs, "failed"), 12);

    let before = read_bytes(&p, "list.csv");
    let out = run(
        &p,
        &[
            "status",
            ISSUE,
            "--subscribers",
            "list.csv",
            "--apply-failures",
        ],
    );
    out.expect_code(2);
    assert!(
        out.stdout.contains("12 failures share the reply")
            && out.stdout.contains("mailbox unavailable"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("nothing was marked") && out.stderr.contains("--force"),
        "{}",
        out.stderr
    );
    assert_same(read_bytes(&p, "list.csv"), &before, "nothing applied");
    assert!(!p.path("list.csv.bak").exists());

    let out = run(
        &p,
        &[
            "status",
            ISSUE,
            "--subscribers",
            "list.csv",
            "--apply-failures",
            "--force",
        ],
    );
    out.expect_code(0);
    let after = p.read("list.csv");
    let expected: String = csv
        .lines()
        .map(|l| {
            let email = l.split(',').next().unwrap();
            if refused.contains(email) {
                l.replace(",subscribed", ",bounced")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert_eq!(after, expected, "exactly the refused rows become bounced");
    assert_same(read_bytes(&p, "list.csv.bak"), &before, "a file changed");

    // Applying again changes nothing; a later send mails nobody.
    let out = run(
        &p,
        &[
            "status",
            ISSUE,
            "--subscribers",
            "list.csv",
            "--apply-failures",
            "--force",
        ],
    );
    out.expect_code(0);
    assert_eq!(p.read("list.csv"), expected);
    let out = send(&p, &["--subscribers", "list.csv", "--retry-failed"]);
    out.expect_code(0);
    assert!(out.stderr.contains("Nothing to send."), "{}", out.stderr);
    assert_eq!(server.arrivals().len(), 8);
}

/// The refusal of a linked journal tells the user how to look at what it
/// points to; that command must run.
#[test]
fn the_symbolic_link_refusal_suggests_a_command_that_works() {
    let server = SmtpServer::start();
    let p = project(&server);
    send(&p, &["--limit", "2"]).expect_code(0);
    fs::rename(p.path(JOURNAL), p.path("journal/real.journal")).unwrap();
    std::os::unix::fs::symlink("real.journal", p.path(JOURNAL)).unwrap();
    let out = send(&p, &[]);
    out.expect_code(2);
    assert_eq!(server.arrivals().len(), 2);
    // The hint names the program as it was started (here the test binary).
    let hint = out
        .stderr
        .split('`')
        .find(|s| s.contains("newsletter status ") && s.contains("--journal"))
        .unwrap_or_else(|| panic!("no status command in:\n{}", out.stderr))
        .replace("FILE", "journal/real.journal");
    let words = shlex::split(&hint).unwrap();
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let shown = run(&p, &args);
    assert_eq!(
        shown.code, 0,
        "the suggested `{hint}` fails:\n{}",
        shown.stderr
    );
    assert!(out.stderr.contains("Nothing was sent"), "{}", out.stderr);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of the project folder (a backup, a new year's folder) keeps the
/// journal, whose header records the subscriber file (relative to the
/// configuration's folder when it is inside it).
/// `status --apply-failures` in the copy must change the copy's file, not
/// reach back into the original folder.
#[test]
fn apply_failures_in_a_copied_project_changes_the_copy_not_the_original() {
    let ruth = SUBSCRIBED[0];
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(json!({"rcpt": {ruth: "550 5.1.1 No such user here"}})),
        ..Default::default()
    });
    let a = project(&server);
    send(&a, &[]).expect_code(1);
    assert_eq!(server.arrivals().len(), SUBSCRIBED.len() - 1);
    let b = Project {
        dir: tempfile::tempdir().unwrap(),
    };
    copy_dir(a.dir.path(), b.dir.path());
    let original = read_bytes(&a, CSV);

    let out = run(&b, &["status", ISSUE, "--apply-failures"]);
    out.expect_code(0);
    assert!(
        read_bytes(&a, CSV) == original,
        "the original folder's subscriber file was changed from the copy:\n{}",
        out.stdout
    );
    assert!(
        b.read(CSV)
            .lines()
            .any(|l| l.starts_with(&format!("{ruth},")) && l.contains(",bounced,")),
        "the copy's own file should mark {ruth} bounced:\n{}",
        b.read(CSV)
    );
}

/// A last line that is whole but lost its line end (a full disk, a power
/// cut) is read, and the next run ends it instead of cutting it off: its
/// recipient stays uncertain and is not mailed again without being asked.
#[test]
fn a_whole_last_line_without_its_line_end_is_kept() {
    let server = SmtpServer::start();
    let p = project(&server);
    send(&p, &["--limit", "1"]).expect_code(0);
    let text = p.read(JOURNAL);
    let header = text.lines().next().unwrap();
    let ruth = SUBSCRIBED[0];
    let attempt = sealed(&format!(
        "{{\"t\":{},\"event\":\"attempt\",\"key\":\"{ruth}\",\"email\":\"{ruth}\"}}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    ));
    p.write(JOURNAL, &format!("{header}\n{}", attempt.trim_end()));
    let before = server.arrivals().len();

    send(&p, &["--limit", "1"]).expect_code(0);
    send(&p, &[]).expect_code(0);
    assert!(
        server.arrivals()[before..]
            .iter()
            .all(|a| !a.rcpt_tos.iter().any(|r| r.eq_ignore_ascii_case(ruth))),
        "{ruth} was uncertain and was mailed again"
    );
    let s = status(&p, &[]);
    assert_eq!(s.uncertain, 1, "{s:?}");
    assert_eq!(s.accepted as usize, SUBSCRIBED.len() - 1, "{s:?}");
}

/// Attempts of earlier runs that may have reached the relay (a lost
/// connection, no answer, a crash mid-message) count against `per-day`.
#[test]
fn the_daily_limit_counts_earlier_attempts_that_may_have_arrived() {
    let server = SmtpServer::start();
    let p = project_on(server.port, "per-second = 0\nper-day = 3\nconnections = 1");
    send(&p, &["--limit", "1"]).expect_code(0);
    let text = p.read(JOURNAL);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 60.0;
    let mut journal = text.clone();
    for (who, outcome) in [(SUBSCRIBED[5], "lost"), (SUBSCRIBED[6], "uncertain")] {
        journal.push_str(&sealed(&format!(
            "{{\"t\":{t},\"event\":\"attempt\",\"key\":\"{who}\",\"email\":\"{who}\"}}"
        )));
        journal.push_str(&sealed(&format!(
            "{{\"t\":{t},\"event\":\"{outcome}\",\"key\":\"{who}\",\"email\":\"{who}\",\"reply\":\"x\"}}"
        )));
    }
    p.write(JOURNAL, &journal);
    let before = server.arrivals().len();
    let out = send(&p, &["--resend-uncertain"]);
    out.expect_code(0);
    assert!(out.stderr.contains("daily limit of 3"), "{}", out.stderr);
    assert_eq!(
        server.arrivals().len(),
        before,
        "three attempts today already"
    );
}

/// A named pipe given as the subscriber file is refused at once, not read
/// forever while the issue is locked.
#[test]
fn a_named_pipe_as_the_subscriber_file_is_refused_without_hanging() {
    let server = SmtpServer::start();
    let p = project(&server);
    let fifo = p.path("pipe.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for args in [
        &["send", ISSUE, "--subscribers", "pipe.csv", "--yes"][..],
        &["status", ISSUE, "--subscribers", "pipe.csv"][..],
        &["check", "--subscribers", "pipe.csv"][..],
    ] {
        let out = run_within(&p, args, NO_HANG);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("`pipe.csv` is not a plain file"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(server.arrivals().len(), 0);
}
