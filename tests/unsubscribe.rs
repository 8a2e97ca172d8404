//! `newsletter unsubscribe`: checking links, applying unsubscribes to the
//! subscriber CSV in place, and the one-click endpoint (RFC 8058) over real
//! HTTP, in a browser too.

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use newsletter::token::Signer;
use support::project::{Output, Project, SECRET};

const LIST_ID: &str = "supporters.renecassin.example.org";
const CSV: &str = "subscribers.example.csv";
const ENDPOINT: &str = "https://news.renecassin.example.org/unsubscribe/";

fn token(address: &str) -> String {
    Signer::new(LIST_ID, SECRET.as_bytes()).token(address)
}

/// A token for `address` made with another secret.
fn forged(address: &str) -> String {
    Signer::new(LIST_ID, b"not-the-list-secret").token(address)
}

fn link(address: &str) -> String {
    format!("{ENDPOINT}{}", token(address))
}

/// `original` with the status cell of `address`'s row replaced (the example
/// file's rows are `email,first,last,status,city`).
fn with_status(original: &str, address: &str, from: &str, to: &str) -> String {
    let line = original
        .lines()
        .find(|l| l.starts_with(address))
        .unwrap_or_else(|| panic!("{address} not in the file"));
    let changed = line.replacen(&format!(",{from},"), &format!(",{to},"), 1);
    assert_ne!(line, changed);
    original.replacen(line, &changed, 1)
}

fn modified(path: &Path) -> std::time::SystemTime {
    fs::metadata(path).unwrap().modified().unwrap()
}

// ------------------------------------------------------------------ verify

#[test]
fn verify_prints_the_address_of_a_valid_link() {
    let project = Project::example();
    let token = token("Zoe.Brightman@example.com");
    for input in [
        format!("{ENDPOINT}{token}"),
        format!("https://news.renecassin.example.org/unsubscribe?list=x&token={token}"),
        token.clone(),
    ] {
        let out = project.run(&["unsubscribe", "verify", &input]);
        out.expect_code(0);
        assert_eq!(out.stdout, "zoe.brightman@example.com\n", "{input}");
    }
}

#[test]
fn verify_refuses_forged_and_malformed_links() {
    let project = Project::example();
    let out = project.run(&[
        "unsubscribe",
        "verify",
        &format!("{ENDPOINT}{}", forged("ruth.abrahams@example.org")),
    ]);
    out.expect_code(1);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr
            .contains("this link was not made with this list's secret"),
        "{}",
        out.stderr
    );

    let good = token("ruth.abrahams@example.org");
    for bad in [
        format!("{ENDPOINT}not-a-token"),
        format!("{ENDPOINT}{}", &good[..good.len() - 5]),
        ENDPOINT.to_string(),
    ] {
        let out = project.run(&["unsubscribe", "verify", &bad]);
        out.expect_code(1);
        assert!(out.stderr.contains("malformed"), "{bad}: {}", out.stderr);
    }

    // Without the secret nothing can be checked: a usage error.
    let out = project
        .command(&["unsubscribe", "verify", &link("ruth.abrahams@example.org")])
        .env_remove("NEWSLETTER_UNSUBSCRIBE_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NEWSLETTER_UNSUBSCRIBE_SECRET"));
}

// ------------------------------------------------------------------- apply

#[test]
fn applies_addresses_and_links_in_place_once() {
    let project = Project::example();
    let original = project.read(CSV);
    let out = project.run(&[
        "unsubscribe",
        "Zoe.Brightman@EXAMPLE.com",
        &link("jose.garcia@example.org"),
        "chaim.levy@example.org",
        "ghost@example.org",
    ]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("changed 2, already unsubscribed 1, unknown 1"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("ghost@example.org"), "{}", out.stdout);
    let expected = with_status(
        &with_status(
            &original,
            "zoe.brightman@example.com",
            "subscribed",
            "unsubscribed",
        ),
        "jose.garcia@example.org",
        "subscribed",
        "unsubscribed",
    );
    assert_eq!(project.read(CSV), expected);
    assert_eq!(project.read(&format!("{CSV}.bak")), original);
    assert!(
        !project.read(CSV).contains("ghost"),
        "unknown addresses are never added"
    );

    // The second run changes nothing and does not rewrite the file.
    let path = project.path(CSV);
    let before = modified(&path);
    std::thread::sleep(Duration::from_millis(20));
    let out = project.run(&[
        "unsubscribe",
        "zoe.brightman@example.com",
        &link("jose.garcia@example.org"),
    ]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("changed 0, already unsubscribed 2, unknown 0"),
        "{}",
        out.stdout
    );
    assert_eq!(project.read(CSV), expected);
    assert_eq!(modified(&path), before);
    assert_eq!(project.read(&format!("{CSV}.bak")), original);
}

#[test]
fn links_that_do_not_verify_are_not_applied() {
    let project = Project::example();
    let original = project.read(CSV);
    let out = project.run(&[
        "unsubscribe",
        &format!("{ENDPOINT}{}", forged("ruth.abrahams@example.org")),
        &format!("{ENDPOINT}garbage"),
        "fatima.rahman@example.com",
    ]);
    out.expect_code(1);
    assert!(
        out.stderr
            .contains("this link was not made with this list's secret"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("malformed"), "{}", out.stderr);
    assert!(
        out.stdout.contains("changed 1, already unsubscribed 0"),
        "{}",
        out.stdout
    );
    assert_eq!(
        project.read(CSV),
        with_status(
            &original,
            "fatima.rahman@example.com",
            "subscribed",
            "unsubscribed"
        )
    );
}

#[test]
fn keeps_an_excel_file_byte_for_byte_except_the_status() {
    let project = Project::example();
    // BOM, `;`, CRLF, quoted fields with `;`, `""` and a line break, a short
    // row, a blank row and Excel's empty row.
    let before = "\u{feff}E-mail;\"First name\";Last name;Status;Notes\r\n\
        \"ruth.abrahams@example.org\";Ruth;Abrahams;\"subscribed\";\"likes \"\"events\"\"; London\"\r\n\
        ZOE.BRIGHTMAN@example.com;Zoë;Brightman; subscribed ;\"two\r\nlines\"\r\n\
        \r\n\
        ;;;;\r\n\
        jose.garcia@example.org;José\r\n\
        chaim.levy@example.org;Chaim;Levy;unsubscribed;\r\n\
        li.wei@example.org;李;伟;;Birmingham";
    project.write("excel.csv", before);
    let out = project.run(&[
        "unsubscribe",
        "--subscribers",
        "excel.csv",
        "ruth.abrahams@example.org",
        "zoe.brightman@example.com",
        "jose.garcia@example.org",
        "chaim.levy@example.org",
        "li.wei@example.org",
    ]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("changed 4, already unsubscribed 1, unknown 0"),
        "{}",
        out.stdout
    );
    let expected = "\u{feff}E-mail;\"First name\";Last name;Status;Notes\r\n\
        \"ruth.abrahams@example.org\";Ruth;Abrahams;\"unsubscribed\";\"likes \"\"events\"\"; London\"\r\n\
        ZOE.BRIGHTMAN@example.com;Zoë;Brightman; unsubscribed ;\"two\r\nlines\"\r\n\
        \r\n\
        ;;;;\r\n\
        jose.garcia@example.org;José;;unsubscribed\r\n\
        chaim.levy@example.org;Chaim;Levy;unsubscribed;\r\n\
        li.wei@example.org;李;伟;unsubscribed;Birmingham";
    assert_eq!(project.read("excel.csv"), expected);
    assert_eq!(project.read("excel.csv.bak"), before);

    // `send` reads the result as before, with the new statuses: the short
    // row was malformed before and still is; nothing else is.
    let malformed = |file: &str| -> Vec<u64> {
        let out = project.run(&["check", "--subscribers", file, "--format", "json"]);
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "malformed-row")
            .map(|f| f["line"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(malformed("excel.csv"), [7]);
    assert_eq!(malformed("excel.csv.bak"), [7]);

    // A second run leaves the bytes alone.
    let out = project.run(&[
        "unsubscribe",
        "--subscribers",
        "excel.csv",
        "ruth.abrahams@example.org",
    ]);
    out.expect_code(0);
    assert_eq!(project.read("excel.csv"), expected);
}

#[test]
fn adds_a_status_column_when_there_is_none() {
    let project = Project::example();
    project.write(
        "plain.csv",
        "email,first_name\nruth.abrahams@example.org,Ruth\n\"zoe.brightman@example.com\",\"Zoë\"\n",
    );
    let out = project.run(&[
        "unsubscribe",
        "--subscribers",
        "plain.csv",
        "zoe.brightman@example.com",
    ]);
    out.expect_code(0);
    assert!(out.stdout.contains("no `status` column"), "{}", out.stdout);
    assert_eq!(
        project.read("plain.csv"),
        "email,first_name,status\nruth.abrahams@example.org,Ruth,subscribed\n\"zoe.brightman@example.com\",\"Zoë\",unsubscribed\n"
    );
}

#[test]
fn from_file_reads_addresses_links_and_log_lines() {
    let project = Project::example();
    let original = project.read(CSV);
    project.write(
        "requests.txt",
        &format!(
            "# unsubscribe requests from the office inbox\n\
             \n\
             ruth.abrahams@example.org\n\
             {}\n\
             2024-05-01T09:30:00Z\tli.wei@example.org\tone-click\n\
             not an address\n",
            link("zoe.brightman@example.com")
        ),
    );
    let out = project.run(&["unsubscribe", "--from-file", "requests.txt"]);
    out.expect_code(1);
    assert!(out.stderr.contains("requests.txt line 6"), "{}", out.stderr);
    assert!(
        out.stdout.contains("changed 3, already unsubscribed 0"),
        "{}",
        out.stdout
    );
    let mut expected = original.clone();
    for address in [
        "ruth.abrahams@example.org",
        "zoe.brightman@example.com",
        "li.wei@example.org",
    ] {
        expected = with_status(&expected, address, "subscribed", "unsubscribed");
    }
    assert_eq!(project.read(CSV), expected);
}

// -------------------------------------------------------- one writer at a time

/// Row `i` of [`crowd`], with `status`: quoted fields with the delimiter and
/// `""` in them, and CRLF line ends, which must survive byte for byte.
fn crowd_row(i: usize, status: &str) -> String {
    format!("p{i:02}@example.org,\"Person, {i}\",{status},\"says \"\"hi\"\" {i}\"\r\n")
}

/// A subscriber file of `rows` subscribed people.
fn crowd(rows: usize) -> String {
    let mut text = String::from("email,name,status,note\r\n");
    for i in 0..rows {
        text.push_str(&crowd_row(i, "subscribed"));
    }
    text
}

/// Takes `FILE.lock` from this test process, as another `newsletter` would,
/// with a holder record naming a made-up process.
fn hold_lock(project: &Project, file: &str) -> fs::File {
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(project.path(&format!("{file}.lock")))
        .unwrap();
    lock.try_lock().unwrap();
    fs::write(
        project.path(&format!("{file}.lock")),
        "process 4242 on testhost, changing `crowd.csv`, since 2026-01-01T00:00:00Z\n",
    )
    .unwrap();
    lock
}

#[test]
fn twenty_unsubscribes_at_once_each_change_their_row() {
    let project = Project::example();
    let (rows, parallel) = (25, 20);
    let original = crowd(rows);
    project.write("crowd.csv", &original);

    // All started before any is waited for.
    let children: Vec<(String, Child)> = (0..parallel)
        .map(|i| {
            let address = format!("p{i:02}@example.org");
            let child = project
                .command(&["unsubscribe", "--subscribers", "crowd.csv", &address])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (address, child)
        })
        .collect();
    for (address, child) in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{address}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
        assert!(
            stdout.contains("changed 1, already unsubscribed 0, unknown 0")
                && stdout.contains(&format!("now unsubscribed: {address}\n")),
            "{address}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
    }

    let mut expected = String::from("email,name,status,note\r\n");
    for i in 0..rows {
        let status = if i < parallel {
            "unsubscribed"
        } else {
            "subscribed"
        };
        expected.push_str(&crowd_row(i, status));
    }
    assert_eq!(project.read("crowd.csv"), expected);
    // No temporary file left behind.
    let strays: Vec<String> = fs::read_dir(project.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".crowd.csv."))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
}

#[test]
fn unsubscribe_waits_for_a_held_lock_then_applies() {
    let project = Project::example();
    let original = crowd(3);
    project.write("crowd.csv", &original);
    let lock = hold_lock(&project, "crowd.csv");

    let mut child = project
        .command(&[
            "unsubscribe",
            "--subscribers",
            "crowd.csv",
            "p01@example.org",
        ])
        .env("NEWSLETTER_LOCK_PATIENCE_MS", "30000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut note = String::new();
    stderr.read_line(&mut note).unwrap();
    assert_eq!(
        note,
        "waiting up to 30 s for `crowd.csv`: it is locked by process 4242 on testhost, changing `crowd.csv`, since 2026-01-01T00:00:00Z\n"
    );
    // While it waits, nothing is read or written.
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.try_wait().unwrap().is_none(), "it did not wait");
    assert_eq!(project.read("crowd.csv"), original);

    drop(lock);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("changed 1, already unsubscribed 0, unknown 0"),
        "{stdout}"
    );
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "the note is printed once");
    assert_eq!(
        project.read("crowd.csv"),
        original.replacen(
            &crowd_row(1, "subscribed"),
            &crowd_row(1, "unsubscribed"),
            1
        )
    );
}

#[test]
fn a_lock_held_too_long_is_an_error_naming_the_holder() {
    let project = Project::example();
    let original = crowd(3);
    project.write("crowd.csv", &original);
    let _lock = hold_lock(&project, "crowd.csv");

    let out = project
        .command(&[
            "unsubscribe",
            "--subscribers",
            "crowd.csv",
            "p01@example.org",
        ])
        .env("NEWSLETTER_LOCK_PATIENCE_MS", "300")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: `crowd.csv` is still locked by process 4242 on testhost, changing `crowd.csv`, since 2026-01-01T00:00:00Z after 300 ms: run the command again when that process has finished"
        ),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing is reported as changed");
    assert_eq!(project.read("crowd.csv"), original);
    assert!(!project.path("crowd.csv.bak").exists());

    // A patience that is not a number is a usage mistake.
    let out = project
        .command(&[
            "unsubscribe",
            "--subscribers",
            "crowd.csv",
            "p01@example.org",
        ])
        .env("NEWSLETTER_LOCK_PATIENCE_MS", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "`NEWSLETTER_LOCK_PATIENCE_MS` is `soon`: set it to a number of milliseconds"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------- endpoint

/// `newsletter unsubscribe serve` on a free port; stopped when dropped.
struct Endpoint {
    child: Child,
    port: u16,
    /// The route with `{token}` in it, from the first line printed.
    route: String,
}

impl Endpoint {
    fn start(project: &Project) -> Endpoint {
        let mut child = project
            .command(&["unsubscribe", "serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("first line: {line:?}"));
        let (port, route) = address.split_at(address.find('/').unwrap());
        assert_eq!(route, "/unsubscribe/{token}");
        Endpoint {
            port: port.parse().unwrap(),
            route: route.to_string(),
            child,
        }
    }

    fn path(&self, token: &str) -> String {
        self.route.replace("{token}", token)
    }

    fn url(&self, token: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.path(token))
    }

    /// Sends raw bytes; returns the parsed answer.
    fn send(&self, raw: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(raw).unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        Reply::parse(&bytes)
    }

    fn get(&self, path: &str) -> Reply {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: news.renecassin.example.org\r\nAccept: text/html\r\n\r\n").as_bytes())
    }

    fn post(&self, path: &str, content_type: &str, body: &str, accept: &str) -> Reply {
        self.send(
            format!(
                "POST {path} HTTP/1.1\r\nHost: news.renecassin.example.org\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nAccept: {accept}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    }

    /// Ctrl-C, then the exit code and everything it wrote to stderr.
    fn interrupt(mut self) -> (i32, String) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let started = Instant::now();
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the endpoint did not stop after Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (code, stderr)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn parse(bytes: &[u8]) -> Reply {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no head in {text:?}"));
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap();
        Reply {
            status: status.parse().unwrap(),
            headers: lines
                .map(|l| {
                    let (n, v) = l.split_once(':').unwrap();
                    (n.to_ascii_lowercase(), v.trim().to_string())
                })
                .collect(),
            body: body.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn log_lines(project: &Project) -> Vec<String> {
    fs::read_to_string(project.path("unsubscribes.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_endpoint_answer_is_private_uncached_and_unindexed() {
    let project = Project::example();
    let endpoint = Endpoint::start(&project);
    let page = endpoint.get(&endpoint.path(&token("zoe.brightman@example.com")));
    let missing = endpoint.get("/nothing-here");
    for reply in [&page, &missing] {
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{reply:?}");
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{reply:?}"
        );
        assert_eq!(
            reply.header("referrer-policy"),
            Some("no-referrer"),
            "{reply:?}"
        );
        assert_eq!(reply.header("x-robots-tag"), Some("noindex"), "{reply:?}");
        assert_eq!(
            reply.header("content-security-policy"),
            Some(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
            ),
            "{reply:?}"
        );
    }
    assert_eq!(page.status, 200);
    assert_eq!(missing.status, 404);
}

#[test]
fn the_endpoint_unsubscribes_on_post_only_and_the_log_applies() {
    let project = Project::example();
    let original = project.read(CSV);
    let endpoint = Endpoint::start(&project);
    let ruth = token("ruth.abrahams@example.org");
    let zoe = token("zoe.brightman@example.com");

    // A GET (a person, or a link scanner) only shows the confirmation page.
    let page = endpoint.get(&endpoint.path(&zoe));
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    for needle in [
        "<html lang=\"en-GB\">",
        "<title>Unsubscribe – René Cassin</title>",
        "<form method=\"post\">",
        "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">",
        "<button type=\"submit\">Unsubscribe</button>",
        "zoe.brightman@example.com",
    ] {
        assert!(page.body.contains(needle), "{needle} not in {}", page.body);
    }
    assert!(log_lines(&project).is_empty(), "a GET unsubscribed someone");

    // RFC 8058 one-click POST, as a mail provider sends it.
    let one_click = endpoint.post(
        &endpoint.path(&ruth),
        "application/x-www-form-urlencoded",
        "List-Unsubscribe=One-Click",
        "*/*",
    );
    assert_eq!(one_click.status, 200, "{one_click:?}");
    assert_eq!(one_click.header("location"), None);
    assert_eq!(one_click.body, "You are unsubscribed.\n");
    let lines = log_lines(&project);
    assert_eq!(lines.len(), 1);
    let (time, rest) = lines[0].split_once('\t').unwrap();
    assert_eq!(rest, "ruth.abrahams@example.org\tone-click");
    assert!(
        time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
        "{time}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(project.path("unsubscribes.log"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The page's button, from a browser: a multipart or URL-encoded form.
    let boundary = "----formdata-7d8a9b";
    let button = endpoint.post(
        &endpoint.path(&ruth),
        &format!("multipart/form-data; boundary={boundary}"),
        &format!("--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"),
        "text/html,application/xhtml+xml",
    );
    assert_eq!(button.status, 200, "{button:?}");
    assert_eq!(button.header("location"), None);
    assert!(
        button.body.contains("You are unsubscribed"),
        "{}",
        button.body
    );
    assert_eq!(log_lines(&project).len(), 2);

    // What is refused, and how.
    let no_body = endpoint.post(
        &endpoint.path(&zoe),
        "application/x-www-form-urlencoded",
        "",
        "*/*",
    );
    assert_eq!(no_body.status, 400);
    let forged_get = endpoint.get(&endpoint.path(&forged("zoe.brightman@example.com")));
    assert_eq!(forged_get.status, 400);
    assert!(
        forged_get
            .body
            .contains("This unsubscribe link does not work")
    );
    assert!(
        forged_get
            .body
            .contains("mailto:unsubscribe@renecassin.example.org")
    );
    let forged_post = endpoint.post(
        &endpoint.path(&forged("zoe.brightman@example.com")),
        "application/x-www-form-urlencoded",
        "List-Unsubscribe=One-Click",
        "*/*",
    );
    assert_eq!(forged_post.status, 400);
    let malformed = endpoint.get(&endpoint.path("bm90LWEtdG9rZW4"));
    assert_eq!(malformed.status, 400);
    assert!(malformed.body.contains("<html lang=\"en-GB\">"));
    let big = "x".repeat(5000);
    let too_large = endpoint.post(
        &endpoint.path(&zoe),
        "application/x-www-form-urlencoded",
        &big,
        "*/*",
    );
    assert_eq!(too_large.status, 413);
    let huge_head = endpoint.send(
        format!(
            "GET {} HTTP/1.1\r\nX-Padding: {}\r\n\r\n",
            endpoint.path(&zoe),
            "p".repeat(10_000)
        )
        .as_bytes(),
    );
    assert_eq!(huge_head.status, 431);
    assert_eq!(endpoint.get("/").status, 404);
    assert_eq!(endpoint.get(&format!("/other/{zoe}")).status, 404);
    let delete =
        endpoint.send(format!("DELETE {} HTTP/1.1\r\n\r\n", endpoint.path(&zoe)).as_bytes());
    assert_eq!(delete.status, 405);
    assert_eq!(delete.header("allow"), Some("GET, HEAD, POST"));
    let garbage = endpoint.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n");
    assert_eq!(garbage.status, 400);
    assert_eq!(
        log_lines(&project).len(),
        2,
        "only the two valid POSTs are logged"
    );

    // Ctrl-C stops it; the access log has method, status and address only.
    let (code, stderr) = endpoint.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Stopped."), "{stderr}");
    let access: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("Serving") && *l != "Stopped.")
        .collect();
    for line in &access {
        let fields: Vec<&str> = line.split(' ').collect();
        assert!(
            fields.len() == 3
                && fields[1].parse::<u16>().is_ok()
                && (fields[2] == "-" || fields[2].contains('@')),
            "not `METHOD STATUS ADDRESS`: {line}\n{stderr}"
        );
    }
    assert!(
        access.contains(&"GET 200 zoe.brightman@example.com"),
        "{stderr}"
    );
    assert!(
        access.contains(&"POST 200 ruth.abrahams@example.org"),
        "{stderr}"
    );
    assert!(access.contains(&"GET 400 -"), "{stderr}");
    assert!(access.contains(&"POST 413 -"), "{stderr}");
    assert!(access.contains(&"GET 404 -"), "{stderr}");
    assert!(access.contains(&"DELETE 405 -"), "{stderr}");
    assert!(
        !stderr.contains(&ruth) && !stderr.contains(&zoe),
        "a token was logged: {stderr}"
    );
    assert!(
        !access.iter().any(|l| l.contains("127.0.0.1")),
        "an IP address was logged: {stderr}"
    );

    // The log applies: Ruth is unsubscribed (once), Zoë, who only looked, is not.
    let out = project.run(&["unsubscribe", "--from-file", "unsubscribes.log"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("changed 1, already unsubscribed 0, unknown 0"),
        "{}",
        out.stdout
    );
    assert_eq!(
        project.read(CSV),
        with_status(
            &original,
            "ruth.abrahams@example.org",
            "subscribed",
            "unsubscribed"
        )
    );
}

#[test]
fn the_endpoint_binds_loopback_unless_told_otherwise() {
    let project = Project::example();
    let out: Output = project.run(&["unsubscribe", "serve", "--bind", "0.0.0.0:0"]);
    out.expect_code(2);
    assert!(out.stderr.contains("--allow-remote"), "{}", out.stderr);
}

#[test]
fn the_confirmation_page_in_chromium_has_the_form() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "this test needs /usr/bin/chromium: run scripts/setup-browser (as root) and try again"
    );
    let project = Project::example();
    let endpoint = Endpoint::start(&project);
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(endpoint.url(&token("li.wei@example.org")))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<html lang=\"en-GB\">"), "{dom}");
    assert!(dom.contains("<form method=\"post\">"), "{dom}");
    assert!(
        dom.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
        "{dom}"
    );
    assert!(
        dom.contains("<button type=\"submit\">Unsubscribe</button>"),
        "{dom}"
    );
    assert!(dom.contains("li.wei@example.org"), "{dom}");
    // Opening the link unsubscribed nobody.
    assert!(log_lines(&project).is_empty());
    let (code, stderr) = endpoint.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("GET 200 li.wei@example.org"), "{stderr}");
}
