//! What receivers see: DKIM signatures (RSA and Ed25519) on messages sent
//! through a real SMTP server, verified by an independent implementation
//! (dkimpy), and the SpamAssassin score of the example issues.
//!
//! Needs `scripts/setup-test-deps` (python3 with aiosmtpd, dkimpy and
//! pynacl; openssl; spamassassin).

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::project::Project;
use support::smtp::{SmtpServer, python};

const ISSUES: [&str; 2] = ["issues/2020-12-10.toml", "issues/2022-07-13.toml"];
/// The domain of `list.from` in the example `newsletter.toml`.
const FROM_DOMAIN: &str = "renecassin.example.org";
const SELECTOR: &str = "news2022";
/// Subscribed rows in `subscribers.example.csv`.
const SUBSCRIBED: usize = 10;
/// The highest SpamAssassin score we accept (its spam threshold is 5).
const MAX_SPAM_SCORE: f64 = 0.5;

/// Headers `src/render/message.rs` signs.
const SIGNED_HEADERS: [&str; 9] = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
];

// ---------------------------------------------------------------------------
// DKIM

/// Verifies each message with dkimpy, answering its DNS query with
/// `record`. Returns, per message, `Ok(())` or why verification failed.
/// Also checks that dkimpy looked up `SELECTOR._domainkey.FROM_DOMAIN`.
fn dkim_verify(messages: &[Vec<u8>], record: &str) -> Vec<Result<(), String>> {
    const SCRIPT: &str = r#"
import json, sys
import dkim

record = sys.argv[1].encode()
queried = []

def dnsfunc(name, timeout=5):
    queried.append(name.decode() if isinstance(name, bytes) else name)
    return record

results = []
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        message = f.read()
    logs = []
    class Log:
        def debug(self, *a): logs.append(a[0] % a[1:] if len(a) > 1 else str(a[0]))
        info = warning = error = debug
    try:
        ok = dkim.DKIM(message, logger=Log()).verify(dnsfunc=dnsfunc)
        why = "" if ok else "signature did not verify: " + " | ".join(logs[-3:])
    except Exception as e:
        ok, why = False, "%s: %s" % (type(e).__name__, e)
    # The documented one-call API must agree.
    if dkim.verify(message, dnsfunc=dnsfunc) != ok:
        ok, why = False, "dkim.verify and DKIM.verify disagree: " + why
    results.append({"ok": bool(ok), "why": why})
print(json.dumps({"results": results, "queried": queried}))
"#;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(python());
    cmd.arg("-c").arg(SCRIPT).arg(record);
    for (i, message) in messages.iter().enumerate() {
        let path = dir.path().join(format!("{i}.eml"));
        fs::write(&path, message).unwrap();
        cmd.arg(path);
    }
    let out = cmd
        .output()
        .expect("run python3 (run scripts/setup-test-deps)");
    assert!(
        out.status.success(),
        "dkimpy failed ({}); run scripts/setup-test-deps\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected = format!("{SELECTOR}._domainkey.{FROM_DOMAIN}.");
    for name in report["queried"].as_array().unwrap() {
        assert_eq!(name.as_str(), Some(expected.as_str()), "{report}");
    }
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            if r["ok"] == true {
                Ok(())
            } else {
                Err(r["why"].as_str().unwrap_or("").to_string())
            }
        })
        .collect()
}

/// The example project with `[dkim]` signing for the From domain, sending
/// to `server`.
fn dkim_project(server: &SmtpServer, algorithm: &str, key: &[u8]) -> Project {
    let project = Project::example();
    project.use_smtp(server.port, "connections = 2");
    fs::write(project.path("dkim.key"), key).unwrap();
    let config = project.read("newsletter.toml");
    project.write(
        "newsletter.toml",
        &format!(
            "{config}\n[dkim]\nselector = \"{SELECTOR}\"\ndomain = \"{FROM_DOMAIN}\"\nprivate-key-file = \"dkim.key\"\nalgorithm = \"{algorithm}\"\n"
        ),
    );
    project.run(&["check"]).expect_code(0);
    project
}

/// Sends `issue` to every subscriber and returns the raw messages received.
fn send_all(project: &Project, server: &SmtpServer, issue: &str) -> Vec<Vec<u8>> {
    project.run(&["send", issue, "--yes"]).expect_code(0);
    let messages: Vec<Vec<u8>> = server.messages().into_iter().map(|m| m.raw).collect();
    assert_eq!(messages.len(), SUBSCRIBED, "{}", server.stderr());
    messages
}

/// The unfolded value of the first header `name` (case-insensitive).
fn header(message: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    let mut value: Option<String> = None;
    for line in head.lines() {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((key, rest)) = line.split_once(':')
            && key.eq_ignore_ascii_case(name)
        {
            value = Some(rest.trim().to_string());
        }
    }
    value
}

/// The `tag=value` pairs of a DKIM-Signature header, whitespace removed.
fn dkim_tags(message: &[u8]) -> Vec<(String, String)> {
    let value = header(message, "DKIM-Signature").expect("a DKIM-Signature header");
    value
        .split(';')
        .filter_map(|tag| tag.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_string(),
                v.chars().filter(|c| !c.is_whitespace()).collect(),
            )
        })
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> &'a str {
    tags.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no `{name}=` in the DKIM signature: {tags:?}"))
}

/// Checks the signature's parameters.
#[track_caller]
fn assert_signature_tags(message: &[u8], algorithm: &str) {
    let tags = dkim_tags(message);
    assert_eq!(tag(&tags, "v"), "1");
    assert_eq!(tag(&tags, "a"), algorithm);
    assert_eq!(tag(&tags, "c"), "relaxed/relaxed");
    assert_eq!(tag(&tags, "d"), FROM_DOMAIN);
    assert_eq!(tag(&tags, "s"), SELECTOR);
    let signed: Vec<String> = tag(&tags, "h")
        .split(':')
        .map(|h| h.to_ascii_lowercase())
        .collect();
    for name in SIGNED_HEADERS {
        assert!(
            signed.iter().any(|h| h == name),
            "`{name}` is not signed: h={signed:?}"
        );
    }
}

/// The message with one byte of its body changed.
fn tamper_body(message: &[u8]) -> Vec<u8> {
    let body = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header/body separator")
        + 4;
    let mut tampered = message.to_vec();
    // A letter deep in the body: the relaxed body canonicalization keeps it.
    let at = body
        + tampered[body..]
            .windows(6)
            .position(|w| w == b"Rights")
            .expect("`Rights` in the body");
    tampered[at] = b'N';
    tampered
}

/// The message with a signed header changed.
fn tamper_subject(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(message.to_vec()).unwrap();
    let at = text.find("\r\nSubject: ").expect("a Subject header") + "\r\nSubject: ".len();
    let mut tampered = text.into_bytes();
    tampered.insert(at, b'X');
    tampered
}

#[track_caller]
fn assert_all_verify(messages: &[Vec<u8>], record: &str) {
    let results = dkim_verify(messages, record);
    assert_eq!(results.len(), messages.len());
    for (i, result) in results.iter().enumerate() {
        if let Err(why) = result {
            panic!(
                "message {i} does not verify: {why}\n{}",
                String::from_utf8_lossy(&messages[i])
            );
        }
    }
}

#[track_caller]
fn assert_fails(message: Vec<u8>, record: &str, what: &str) {
    let result = dkim_verify(&[message], record).remove(0);
    assert!(result.is_err(), "a message with {what} still verifies");
}

/// `openssl ARGS…`, expecting success; returns stdout.
fn openssl(args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (run scripts/setup-test-deps)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A new 2048-bit RSA key: the PKCS#1 PEM and the base64 SubjectPublicKeyInfo.
fn rsa_key() -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        &["genrsa", "-traditional", "-out", "key.pem", "2048"],
        dir.path(),
    );
    let pem = fs::read(dir.path().join("key.pem")).unwrap();
    assert!(
        pem.starts_with(b"-----BEGIN RSA PRIVATE KEY-----"),
        "not PKCS#1: {}",
        String::from_utf8_lossy(&pem)
    );
    let public = openssl(&["rsa", "-in", "key.pem", "-pubout"], dir.path());
    let spki: String = String::from_utf8(public)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    (pem, spki)
}

/// A new Ed25519 key: the base64 seed and the base64 raw public key.
fn ed25519_key() -> (String, String) {
    const SCRIPT: &str = r#"
import base64, os
import nacl.signing
seed = os.urandom(32)
public = nacl.signing.SigningKey(seed).verify_key.encode()
print(base64.b64encode(seed).decode())
print(base64.b64encode(public).decode())
"#;
    let out = Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "pynacl is missing? run scripts/setup-test-deps\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    (
        lines.next().unwrap().to_string(),
        lines.next().unwrap().to_string(),
    )
}

#[test]
fn dkim_rsa_signatures_verify() {
    let (pem, spki) = rsa_key();
    let server = SmtpServer::start();
    let project = dkim_project(&server, "rsa", &pem);
    let messages = send_all(&project, &server, ISSUES[1]);

    let record = format!("v=DKIM1; k=rsa; p={spki}");
    for message in &messages {
        assert_signature_tags(message, "rsa-sha256");
    }
    assert_all_verify(&messages, &record);

    assert_fails(tamper_body(&messages[0]), &record, "one body byte changed");
    assert_fails(tamper_subject(&messages[0]), &record, "a changed subject");
    let (_, other_spki) = rsa_key();
    assert_fails(
        messages[0].clone(),
        &format!("v=DKIM1; k=rsa; p={other_spki}"),
        "another key's record",
    );
}

#[test]
fn dkim_ed25519_signatures_verify() {
    let (seed, public) = ed25519_key();
    let server = SmtpServer::start();
    let project = dkim_project(&server, "ed25519", format!("{seed}\n").as_bytes());
    let messages = send_all(&project, &server, ISSUES[0]);

    let record = format!("v=DKIM1; k=ed25519; p={public}");
    for message in &messages {
        assert_signature_tags(message, "ed25519-sha256");
    }
    assert_all_verify(&messages, &record);

    assert_fails(tamper_body(&messages[0]), &record, "one body byte changed");
    assert_fails(tamper_subject(&messages[0]), &record, "a changed subject");
    let (_, other_public) = ed25519_key();
    assert_fails(
        messages[0].clone(),
        &format!("v=DKIM1; k=ed25519; p={other_public}"),
        "another key's record",
    );
}

// ---------------------------------------------------------------------------
// SpamAssassin

/// What SpamAssassin made of one message.
#[derive(Debug)]
struct SpamReport {
    score: f64,
    /// Points and name of every rule that fired.
    rules: Vec<(f64, String)>,
}

/// Scores a message with SpamAssassin's local rules only (`-L`: no DNS,
/// no network), with a fresh HOME so no user preferences or learned data
/// count.
fn spamassassin(message: &[u8], label: &str) -> SpamReport {
    let home = tempfile::tempdir().unwrap();
    let input = home.path().join("message.eml");
    fs::write(&input, message).unwrap();
    let out = Command::new("spamassassin")
        .args(["-L", "-t"])
        .env("HOME", home.path())
        .stdin(fs::File::open(&input).unwrap())
        .output()
        .expect("run spamassassin (run scripts/setup-test-deps)");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "spamassassin failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let status = header(report.as_bytes(), "X-Spam-Status")
        .unwrap_or_else(|| panic!("no X-Spam-Status in spamassassin's output:\n{report}"));
    let score: f64 = status
        .split_whitespace()
        .find_map(|w| w.strip_prefix("score="))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in `X-Spam-Status: {status}`"));

    // The report's table: " pts rule name   description".
    let table = report
        .split("---- ---------------------- ")
        .nth(1)
        .unwrap_or_else(|| panic!("no rule table in spamassassin's report:\n{report}"));
    let rules: Vec<(f64, String)> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let points = words.next()?.parse().ok()?;
            let name = words.next()?;
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                .then(|| (points, name.to_string()))
        })
        .collect();
    // Folding may have left a space after a comma.
    let names = status
        .replace(", ", ",")
        .split("tests=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_default();
    assert_eq!(
        names.split(',').filter(|n| !n.is_empty()).count(),
        rules.len(),
        "the rule table and `tests=` disagree:\n{status}\n{rules:?}"
    );

    eprintln!("spamassassin, {label}: score {score:.1}");
    for (points, name) in &rules {
        eprintln!("  {points:>5.1}  {name}");
    }
    SpamReport { score, rules }
}

#[track_caller]
fn assert_not_spammy(report: &SpamReport, label: &str) {
    assert!(
        report.score <= MAX_SPAM_SCORE,
        "{label}: SpamAssassin score {} > {MAX_SPAM_SCORE}; rules: {:?}",
        report.score,
        report.rules
    );
    let sum: f64 = report.rules.iter().map(|(p, _)| p).sum();
    assert!(
        (sum - report.score).abs() < 0.05 * report.rules.len() as f64 + 0.05,
        "{label}: the rules add up to {sum}, the score is {}",
        report.score
    );
}

#[test]
fn example_issues_score_low_with_spamassassin() {
    let project = Project::example();
    for issue in ISSUES {
        let out = format!("preview-{}", issue.trim_start_matches("issues/"));
        project
            .run(&["preview", issue, "--out", &out])
            .expect_code(0);
        let message = fs::read(project.path(&out).join("message.eml")).unwrap();
        let report = spamassassin(&message, issue);
        assert_not_spammy(&report, issue);
    }
}

#[test]
fn a_message_received_over_smtp_scores_low_with_spamassassin() {
    let server = SmtpServer::start();
    let project = Project::example();
    project.use_smtp(server.port, "connections = 1");
    project
        .run(&["send", ISSUES[1], "--yes", "--limit", "1"])
        .expect_code(0);
    let messages = server.messages();
    assert_eq!(messages.len(), 1, "{}", server.stderr());
    let label = format!("{} as received by {}", ISSUES[1], messages[0].rcpt_tos[0]);
    let report = spamassassin(&messages[0].raw, &label);
    assert_not_spammy(&report, &label);
}
