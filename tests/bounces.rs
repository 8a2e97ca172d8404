//! `newsletter bounces import` on hand-written bounce reports from Postfix,
//! Exim, Gmail and Microsoft 365 (tests/fixtures/bounces/), and `newsletter
//! status --apply-failures` on a journal.

mod support;

use std::fs;
use std::time::Duration;

use support::project::{Output, Project, repo};

const CSV: &str = "subscribers.example.csv";

fn fixture(name: &str) -> String {
    repo()
        .join("tests/fixtures/bounces")
        .join(name)
        .display()
        .to_string()
}

fn import(project: &Project, paths: &[&str]) -> Output {
    let mut args = vec!["bounces", "import"];
    args.extend_from_slice(paths);
    project.run(&args)
}

/// `original` with `address`'s status cell changed from `subscribed` to
/// `bounced` (the example rows are `email,first,last,status,city`).
fn bounced(original: &str, addresses: &[&str]) -> String {
    let mut text = original.to_string();
    for address in addresses {
        let line = text
            .lines()
            .find(|l| l.starts_with(address))
            .unwrap_or_else(|| panic!("{address} not in the file"))
            .to_string();
        let changed = line.replacen(",subscribed,", ",bounced,", 1);
        assert_ne!(line, changed, "{address} was not subscribed");
        text = text.replacen(&line, &changed, 1);
    }
    text
}

fn modified(project: &Project, file: &str) -> std::time::SystemTime {
    fs::metadata(project.path(file))
        .unwrap()
        .modified()
        .unwrap()
}

#[test]
fn hard_bounces_from_each_kind_of_server_mark_the_address() {
    let project = Project::example();
    let original = project.read(CSV);
    let out = import(
        &project,
        &[
            &fixture("postfix-5.1.1-user-unknown.eml"),
            &fixture("exim-5.0.0-550.eml"),
            &fixture("gmail-550-5.1.1.eml"),
            &fixture("microsoft365-5.1.10-recipient-not-found.eml"),
        ],
    );
    out.expect_code(0);
    for line in [
        "hard bounce  jose.garcia@example.org  5.1.1 550 5.1.1 <jose.garcia@example.org>: Recipient address rejected: User unknown",
        "hard bounce  lukasz.wojcik@example.com  5.0.0 550 Unrouteable address",
        "hard bounce  li.wei@example.org  5.1.1 550-5.1.1 The email account that you tried to reach does not exist.",
        "hard bounce  siobhan.oconnor@example.org  5.1.10 550 5.1.10 RESOLVER.ADR.RecipientNotFound",
    ] {
        assert!(
            out.stdout.contains(line),
            "{line}\n--- stdout\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout
            .contains("read 4 message(s): 4 bounce report(s), 0 skipped"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("changed 4, already bounced 0, unknown 0"),
        "{}",
        out.stdout
    );
    assert_eq!(
        project.read(CSV),
        bounced(
            &original,
            &[
                "jose.garcia@example.org",
                "lukasz.wojcik@example.com",
                "li.wei@example.org",
                "siobhan.oconnor@example.org",
            ]
        )
    );
    assert_eq!(project.read(&format!("{CSV}.bak")), original);
}

#[test]
fn a_message_too_big_is_listed_not_marked() {
    let project = Project::example();
    let original = project.read(CSV);
    let out = import(
        &project,
        &[
            &fixture("postfix-5.3.4-552-message-too-big.eml"),
            &fixture("postfix-5.1.1-user-unknown.eml"),
        ],
    );
    out.expect_code(0);
    let line = "not marked   zoe.brightman@example.com  5.3.4 552 5.3.4 Message size exceeds fixed limit  (the message is too big for the receiving server)";
    assert!(
        out.stdout.contains(line),
        "{line}\n--- stdout\n{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("read 2 message(s): 2 bounce report(s), 0 skipped"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("changed 1, already bounced 0, unknown 0"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("  now bounced: jose.garcia@example.org\n"),
        "{}",
        out.stdout
    );
    assert_eq!(
        project.read(CSV),
        bounced(&original, &["jose.garcia@example.org"])
    );

    // Alone, it changes nothing and writes nothing.
    let project = Project::example();
    let out = import(
        &project,
        &[&fixture("postfix-5.3.4-552-message-too-big.eml")],
    );
    out.expect_code(0);
    assert!(out.stdout.contains("changed 0"), "{}", out.stdout);
    assert_eq!(project.read(CSV), original);
    assert!(!project.path(&format!("{CSV}.bak")).exists());
}

#[test]
fn addresses_not_in_the_file_are_reported_not_added() {
    let project = Project::example();
    project.write(
        "few.csv",
        "email,status\njose.garcia@example.org,subscribed\nli.wei@example.org,unsubscribed\n",
    );
    let out = project.run(&[
        "bounces",
        "import",
        "--subscribers",
        "few.csv",
        &fixture("postfix-5.1.1-user-unknown.eml"),
        &fixture("gmail-550-5.1.1.eml"),
        &fixture("exim-5.0.0-550.eml"),
    ]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("changed 1, already bounced 1, unknown 1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("li.wei@example.org (unsubscribed)"),
        "an unsubscribe is never turned into a bounce: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("lukasz.wojcik@example.com"),
        "{}",
        out.stdout
    );
    assert_eq!(
        project.read("few.csv"),
        "email,status\njose.garcia@example.org,bounced\nli.wei@example.org,unsubscribed\n"
    );
}

#[test]
fn an_mbox_with_two_bounces() {
    let project = Project::example();
    let original = project.read(CSV);
    let out = import(&project, &[&fixture("two-bounces.mbox")]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("read 2 message(s): 2 bounce report(s), 0 skipped"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("rahel.tesfaye@supporters.test  5.4.4"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("bjorn.sorensen@example.org  5.2.1"),
        "{}",
        out.stdout
    );
    assert_eq!(
        project.read(CSV),
        bounced(
            &original,
            &[
                "rahel.tesfaye@supporters.test",
                "bjorn.sorensen@example.org"
            ]
        )
    );
}

#[test]
fn soft_bounces_in_three_issues_make_an_address_bounced() {
    let project = Project::example();
    let original = project.read(CSV);
    // Two issues (2022-07-13 twice): counted, not yet bounced.
    let out = import(
        &project,
        &[
            &fixture("soft/2020-12-10-delayed-4.2.2.eml"),
            &fixture("soft/2022-07-13-delayed-4.2.2.eml"),
            &fixture("soft/2022-07-13-delayed-again-4.2.2.eml"),
        ],
    );
    out.expect_code(0);
    assert!(
        out.stdout.contains(
            "soft bounce  fatima.rahman@example.com  4.2.2 452 4.2.2 Mailbox full  (issue 2022-07-13; 2 of 3 issues)"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("changed 0"), "{}", out.stdout);
    assert_eq!(project.read(CSV), original);
    let state = project.read("bounces.toml");
    assert!(
        state.contains("\"fatima.rahman@example.com\" = [\"2020-12-10\", \"2022-07-13\"]"),
        "{state}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(project.path("bounces.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A third issue (Action: failed after retries, still 4.x.x).
    let out = import(&project, &[&fixture("soft/2023-03-15-failed-4.2.2.eml")]);
    out.expect_code(0);
    assert!(
        out.stdout.contains(
            "fatima.rahman@example.com: soft bounces in 3 issues (2020-12-10, 2022-07-13, 2023-03-15)"
        ),
        "{}",
        out.stdout
    );
    let expected = bounced(&original, &["fatima.rahman@example.com"]);
    assert_eq!(project.read(CSV), expected);
    assert!(!project.read("bounces.toml").contains("fatima"));

    // All of them again: nothing changes, nothing is rewritten.
    let before = modified(&project, CSV);
    std::thread::sleep(Duration::from_millis(20));
    let out = import(&project, &[&fixture("soft")]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("changed 0, already bounced 1"),
        "{}",
        out.stdout
    );
    assert_eq!(project.read(CSV), expected);
    assert_eq!(modified(&project, CSV), before);
}

#[test]
fn messages_that_are_not_bounce_reports_are_reported_and_skipped() {
    let project = Project::example();
    let original = project.read(CSV);
    let out = import(&project, &[&fixture("malformed")]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("read 3 message(s): 0 bounce report(s), 3 skipped"),
        "{}",
        out.stdout
    );
    for (file, why) in [
        ("garbage.eml", "binary data, not an email message"),
        (
            "out-of-office.eml",
            "not a delivery status notification (its Content-Type is `text/plain`",
        ),
        (
            "truncated.eml",
            "recipient `ruth.abrahams@example.org` has no Status (the report may be cut short)",
        ),
    ] {
        let line = format!("skipped {}: {why}", fixture(&format!("malformed/{file}")));
        assert!(
            out.stderr.contains(&line),
            "{line}\n--- stderr\n{}",
            out.stderr
        );
    }
    assert_eq!(project.read(CSV), original);
    assert!(!project.path(&format!("{CSV}.bak")).exists());
}

#[test]
fn a_whole_folder_once_then_again() {
    let project = Project::example();
    let original = project.read(CSV);
    let out = import(&project, &[&fixture("")]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("read 14 message(s): 11 bounce report(s), 3 skipped"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("not marked   zoe.brightman@example.com  5.3.4"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("changed 7, already bounced 0, unknown 0"),
        "{}",
        out.stdout
    );
    let expected = bounced(
        &original,
        &[
            "jose.garcia@example.org",
            "lukasz.wojcik@example.com",
            "li.wei@example.org",
            "siobhan.oconnor@example.org",
            "fatima.rahman@example.com",
            "rahel.tesfaye@supporters.test",
            "bjorn.sorensen@example.org",
        ],
    );
    assert_eq!(project.read(CSV), expected);

    let before = modified(&project, CSV);
    std::thread::sleep(Duration::from_millis(20));
    let out = import(&project, &[&fixture("")]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("changed 0, already bounced 7, unknown 0"),
        "{}",
        out.stdout
    );
    assert_eq!(project.read(CSV), expected);
    assert_eq!(modified(&project, CSV), before);
}

#[test]
fn status_apply_failures_marks_permanent_failures_but_not_policy_refusals() {
    use support::smtp::{ServerOptions, SmtpServer};

    // The journal comes from a real send: two addresses refused at RCPT TO,
    // a message refused at DATA as spam, a mailbox full (deferred).
    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(serde_json::json!({
            "rcpt": {
                "jose.garcia@example.org": "550 5.1.1 <jose.garcia@example.org>: Recipient address rejected: User unknown",
                "li.wei@example.org": "550 No such user here",
                "zoe.brightman@example.com": "452 4.2.2 Mailbox full",
            },
            "data_reply": {
                "ruth.abrahams@example.org": "554 5.7.1 Message rejected as spam by Content Filtering",
            },
        })),
        ..Default::default()
    });
    let project = Project::example();
    project.use_smtp(server.port, "per-second = 0\nconnections = 1\nretries = 1");
    let original = project.read(CSV);
    project
        .run(&["send", "issues/2022-07-13.toml", "--yes"])
        .expect_code(1);

    // Without the flag, status changes nothing.
    project
        .run(&["status", "issues/2022-07-13.toml"])
        .expect_code(0);
    assert_eq!(project.read(CSV), original);

    let out = project.run(&["status", "issues/2022-07-13.toml", "--apply-failures"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("not marked: ruth.abrahams@example.org: 554 5.7.1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("changed 2, already bounced 0, unknown 0"),
        "{}",
        out.stdout
    );
    let expected = bounced(
        &original,
        &["jose.garcia@example.org", "li.wei@example.org"],
    );
    assert_eq!(project.read(CSV), expected);

    let out = project.run(&["status", "issues/2022-07-13.toml", "--apply-failures"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("changed 0, already bounced 2"),
        "{}",
        out.stdout
    );
    assert_eq!(project.read(CSV), expected);
}

#[test]
fn apply_failures_after_a_real_send() {
    use support::smtp::{ServerOptions, SmtpServer};

    let server = SmtpServer::start_with(ServerOptions {
        faults: Some(serde_json::json!({"rcpt": {
            "jose.garcia@example.org": "550 5.1.1 No such user here",
            "ruth.abrahams@example.org": "550 5.7.1 Sender address rejected: access denied",
        }})),
        ..Default::default()
    });
    let project = Project::example();
    project.use_smtp(server.port, "per-second = 0\nconnections = 2");
    let original = project.read(CSV);
    project
        .run(&["send", "issues/2022-07-13.toml", "--yes"])
        .expect_code(1);

    let out = project.run(&["status", "issues/2022-07-13.toml", "--apply-failures"]);
    out.expect_code(0);
    assert!(out.stdout.contains("failed:     2"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("not marked: ruth.abrahams@example.org: 550 5.7.1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("changed 1, already bounced 0, unknown 0"),
        "{}",
        out.stdout
    );
    assert_eq!(
        project.read(CSV),
        bounced(&original, &["jose.garcia@example.org"])
    );
}
