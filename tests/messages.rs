//! What the office reads (issue 15, items 9 and 10, and the last checks of
//! items 1, 2 and 4): honest test sends, the `[smtp]` table the outbox
//! ignores, the unsubscribe secret's advice, `example-address`, events
//! already under way, and the help: long texts with examples, commands in
//! the order of the work, one name per kind of value, `--config` only
//! where it is read. Each case runs the binary as the office would.

mod support;

use std::path::Path;

use clap::CommandFactory;
use serde_json::{Value, json};
use support::project::{Output, Project};

const ISSUE: &str = "issues/2022-07-13.toml";
const CONFIG: &str = "newsletter.toml";
const EVENTS: &str = "archive/events.toml";

/// `newsletter ARGS` with extra environment variables, and some removed.
fn run_env(project: &Project, args: &[&str], set: &[(&str, &str)], remove: &[&str]) -> Output {
    let mut cmd = project.command(args);
    for (name, value) in set {
        cmd.env(name, value);
    }
    for name in remove {
        cmd.env_remove(name);
    }
    let out = cmd.output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `check --format json` with `set`; the findings.
fn check_findings(project: &Project, set: &[(&str, &str)]) -> (Output, Vec<Value>) {
    let out = run_env(project, &["check", "--format", "json"], set, &[]);
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}):\n{}\n{}", out.stdout, out.stderr));
    let findings = report["findings"].as_array().unwrap().clone();
    (out, findings)
}

#[track_caller]
fn line_of(project: &Project, file: &str, needle: &str) -> usize {
    project
        .read(file)
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not in {file}"))
        + 1
}

/// The files in a folder of the project, sorted (none when it is absent).
fn files_in(project: &Project, dir: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(project.path(dir)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The issue's journal holds a record (a send started).
fn journal_written(project: &Project) -> bool {
    std::fs::read(project.path("journal/2022-07-13.journal")).is_ok_and(|j| !j.is_empty())
}

// ---------------------------------------------------------------------------
// Test sends and the outbox (item 9)

const OUTBOX_NOTE: &str = "nothing was sent (`kind = \"outbox\"` in [transport] of `newsletter.toml`: set `kind = \"smtp\"` and fill in [smtp] to send)";

#[test]
fn a_test_send_to_the_outbox_says_where_the_file_is_and_that_nothing_was_sent() {
    let project = Project::example();
    let out = project.run(&["send", ISSUE, "--test-to", "office@example.org"]);
    out.expect_code(0);
    let written = files_in(&project, "outbox");
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(
        out.stderr,
        format!(
            "test message for office@example.org written to `outbox/{}`; {OUTBOX_NOTE}\n",
            written[0]
        )
    );
    assert!(!out.stderr.contains("sent to"), "{}", out.stderr);
}

#[test]
fn a_test_send_from_the_issues_folder_names_the_files_from_there() {
    let project = Project::example();
    let out = project
        .command(&["send", "2022-07-13", "--test-to", "office@example.org"])
        .current_dir(project.path("issues"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let written = files_in(&project, "outbox");
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "test message for office@example.org written to `../outbox/{}`; nothing was sent (`kind = \"outbox\"` in [transport] of `../newsletter.toml`: set `kind = \"smtp\"` and fill in [smtp] to send)\n",
            written[0]
        )
    );
}

#[test]
fn a_test_send_as_a_subscriber_to_the_outbox_says_the_same() {
    let project = Project::example();
    let out = project.run(&[
        "send",
        ISSUE,
        "--test-to",
        "office@example.org",
        "--as",
        "zoe.brightman@example.com",
    ]);
    out.expect_code(0);
    let written = files_in(&project, "outbox");
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(
        out.stderr.ends_with(&format!(
            "test message for office@example.org written to `outbox/{}`; {OUTBOX_NOTE}\n",
            written[0]
        )),
        "{}",
        out.stderr
    );
}

/// The example's commented-out `[smtp]` table (line 40), filled in.
fn uncomment_smtp(project: &Project) -> usize {
    project.edit(CONFIG, "# [smtp]\n", "[smtp]\n");
    project.edit(CONFIG, "# host = ", "host = ");
    project.edit(CONFIG, "# tls = \"starttls\"", "tls = \"starttls\"");
    project
        .read(CONFIG)
        .lines()
        .position(|l| l == "[smtp]")
        .unwrap()
        + 1
}

const SMTP_IGNORED: &str = "[smtp] is filled in but `kind = \"outbox\"` in [transport], so it is ignored: messages, test messages too, are written to `outbox` and nothing is sent. To send through this server set `kind = \"smtp\"`; to keep writing files, comment out [smtp]";

#[test]
fn smtp_settings_in_outbox_mode_are_a_warning_in_check() {
    let project = Project::example();
    let line = uncomment_smtp(&project);
    assert_eq!(line, 40);
    let (out, findings) = check_findings(&project, &[]);
    out.expect_code(0);
    assert_eq!(
        findings,
        [json!({
            "severity": "warning",
            "code": "smtp-ignored-in-outbox",
            "file": CONFIG,
            "line": line,
            "message": SMTP_IGNORED,
        })]
    );
    project.run(&["check", "--strict"]).expect_code(1);
}

#[test]
fn smtp_settings_in_outbox_mode_are_a_warning_in_a_test_send() {
    let project = Project::example();
    let line = uncomment_smtp(&project);
    let out = project.run(&["send", ISSUE, "--test-to", "office@example.org"]);
    out.expect_code(0);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines[0],
        format!("warning: newsletter.toml:{line}: {SMTP_IGNORED} [smtp-ignored-in-outbox]")
    );
    assert!(lines[1].starts_with("test message for office@example.org written to `outbox/"));
    assert!(lines[1].ends_with(OUTBOX_NOTE), "{}", out.stderr);
}

#[test]
fn smtp_settings_in_outbox_mode_are_a_warning_in_a_send() {
    let project = Project::example();
    let line = uncomment_smtp(&project);
    let out = project.run(&["send", ISSUE, "--yes"]);
    out.expect_code(0);
    assert!(
        out.stderr.lines().next()
            == Some(
                format!("warning: newsletter.toml:{line}: {SMTP_IGNORED} [smtp-ignored-in-outbox]")
                    .as_str()
            ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("via the outbox folder `outbox` (nothing leaves this machine)"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------
// The unsubscribe secret (item 10)

const NO_SECRET_SEND: &str = "error: the unsubscribe secret `NEWSLETTER_UNSUBSCRIBE_SECRET` is not set, so unsubscribe links cannot be signed and nothing was sent. `NEWSLETTER_UNSUBSCRIBE_SECRET` is an environment variable (named by `unsubscribe-secret-env` at newsletter.toml:20); make a secret once with `openssl rand -base64 32` and export it before you run this (`export NEWSLETTER_UNSUBSCRIBE_SECRET=…`); use the same one for every issue, as the links in issues already sent are checked with it. Keep the secret out of the project folder (in a password manager, or the sending machine's environment), never in `newsletter.toml` or the repository\n";

#[test]
fn check_says_nothing_of_the_unsubscribe_secret() {
    let project = Project::example();
    let out = run_env(
        &project,
        &["check", "--strict"],
        &[],
        &["NEWSLETTER_UNSUBSCRIBE_SECRET"],
    );
    out.expect_code(0);
    assert_eq!(out.stdout, "0 errors, 0 warnings\n");
}

#[test]
fn a_send_without_the_secret_says_how_to_make_one_and_where_to_keep_it() {
    let project = Project::example();
    let out = run_env(
        &project,
        &["send", ISSUE, "--yes"],
        &[],
        &["NEWSLETTER_UNSUBSCRIBE_SECRET"],
    );
    out.expect_code(2);
    assert_eq!(out.stderr, NO_SECRET_SEND);
    assert_eq!(files_in(&project, "outbox"), Vec::<String>::new());
    assert!(!journal_written(&project));
}

#[test]
fn a_test_send_without_the_secret_says_the_same() {
    let project = Project::example();
    let out = run_env(
        &project,
        &["send", ISSUE, "--test-to", "office@example.org"],
        &[],
        &["NEWSLETTER_UNSUBSCRIBE_SECRET"],
    );
    out.expect_code(2);
    assert_eq!(out.stderr, NO_SECRET_SEND);
    assert_eq!(files_in(&project, "outbox"), Vec::<String>::new());
}

#[test]
fn a_dry_run_without_the_secret_warns_how_to_make_one() {
    let project = Project::example();
    let out = run_env(
        &project,
        &["send", ISSUE, "--dry-run"],
        &[],
        &["NEWSLETTER_UNSUBSCRIBE_SECRET"],
    );
    out.expect_code(0);
    let first = out.stderr.lines().next().unwrap();
    assert!(
        first.starts_with(
            "warning: the unsubscribe secret `NEWSLETTER_UNSUBSCRIBE_SECRET` is not set, so a real send would refuse to start. "
        ),
        "{first}"
    );
    assert!(first.contains("`openssl rand -base64 32`"), "{first}");
    assert!(
        first.ends_with(
            "never in `newsletter.toml` or the repository. This dry run uses a placeholder"
        ),
        "{first}"
    );
}

#[test]
fn a_renamed_secret_variable_is_named_with_its_line() {
    let project = Project::example();
    project.edit(
        CONFIG,
        "unsubscribe-secret-env = \"NEWSLETTER_UNSUBSCRIBE_SECRET\"",
        "unsubscribe-secret-env = \"RENE_CASSIN_LINK_SECRET\"",
    );
    let out = run_env(
        &project,
        &["send", ISSUE, "--yes"],
        &[],
        &["RENE_CASSIN_LINK_SECRET"],
    );
    out.expect_code(2);
    assert!(
        out.stderr.starts_with(
            "error: the unsubscribe secret `RENE_CASSIN_LINK_SECRET` is not set, so unsubscribe links cannot be signed and nothing was sent. `RENE_CASSIN_LINK_SECRET` is an environment variable (named by `unsubscribe-secret-env` at newsletter.toml:20); make a secret once with `openssl rand -base64 32` and export it before you run this (`export RENE_CASSIN_LINK_SECRET=…`)"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn unsubscribe_serve_without_the_secret_asks_for_the_one_the_issues_were_sent_with() {
    let project = Project::example();
    let out = run_env(
        &project,
        &["unsubscribe", "serve", "--bind", "127.0.0.1:0"],
        &[],
        &["NEWSLETTER_UNSUBSCRIBE_SECRET"],
    );
    out.expect_code(2);
    assert_eq!(
        out.stderr,
        "error: the unsubscribe secret `NEWSLETTER_UNSUBSCRIBE_SECRET` is not set, so unsubscribe links cannot be checked. `NEWSLETTER_UNSUBSCRIBE_SECRET` is an environment variable (named by `unsubscribe-secret-env` at newsletter.toml:20); export it with the secret the issues were sent with (`export NEWSLETTER_UNSUBSCRIBE_SECRET=…`); if none were sent yet, make one with `openssl rand -base64 32`. Keep the secret out of the project folder (in a password manager, or the sending machine's environment), never in `newsletter.toml` or the repository\n"
    );
}

// ---------------------------------------------------------------------------
// Example addresses (item 1)

/// The example configuration sending through a relay that is not on this
/// machine (nothing connects to it: the tests stop before).
fn smtp_relay(project: &Project) {
    let text = project.read(CONFIG);
    let head = &text[..text.find("[transport]").unwrap()];
    let tail = &text[text.find("[sending]").unwrap()..];
    project.write(
        CONFIG,
        &format!("{head}[transport]\nkind = \"smtp\"\n\n[smtp]\nhost = \"smtp.example.org\"\ntls = \"starttls\"\n\n{tail}"),
    );
}

const FROM_EXAMPLE: &str = "`list.from` is `newsletter@renecassin.example.org`, on `renecassin.example.org`, a domain reserved for examples: mail to it goes nowhere. Write the charity's real address before sending through `smtp.example.org`";

#[test]
fn example_addresses_are_a_warning_in_check_when_sending_through_smtp() {
    let project = Project::example();
    smtp_relay(&project);
    let (out, findings) = check_findings(&project, &[]);
    out.expect_code(0);
    let found: Vec<(&str, &str, u64)> = findings
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap(),
                f["code"].as_str().unwrap(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    let line = |key: &str| line_of(&project, CONFIG, &format!("{key} = ")) as u64;
    assert_eq!(
        found,
        [
            ("warning", "example-address", line("from")),
            ("warning", "example-address", line("reply-to")),
            ("warning", "example-address", line("web-version-url")),
            ("warning", "example-address", line("unsubscribe-url")),
            ("warning", "example-address", line("unsubscribe-mailto")),
        ]
    );
    assert_eq!(findings[0]["message"], FROM_EXAMPLE);
    assert_eq!(
        findings[2]["message"],
        "`list.web-version-url` is `https://news.renecassin.example.org/issues/{issue}/`, on `news.renecassin.example.org`, a domain reserved for examples: a link every supporter gets would lead nowhere. Write the charity's real link before sending through `smtp.example.org`"
    );
    // The blog's real links are not flagged.
    assert!(!out.stdout.contains("www.renecassin.org"), "{}", out.stdout);
}

#[test]
fn example_addresses_are_a_warning_at_the_start_of_send() {
    let project = Project::example();
    smtp_relay(&project);
    for args in [
        &["send", ISSUE, "--dry-run"][..],
        &[
            "send",
            ISSUE,
            "--dry-run",
            "--test-to",
            "office@example.org",
        ][..],
    ] {
        let out = project.run(args);
        out.expect_code(0);
        let first = out.stderr.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!("warning: newsletter.toml:8: {FROM_EXAMPLE} [example-address]"),
            "{args:?}"
        );
        assert_eq!(
            out.stderr.matches("[example-address]").count(),
            5,
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("Dry run: built"), "{}", out.stderr);
    }
}

#[test]
fn example_addresses_are_fine_for_the_outbox_and_a_relay_on_this_machine() {
    let project = Project::example();
    let (out, findings) = check_findings(&project, &[]);
    out.expect_code(0);
    assert_eq!(findings, Vec::<Value>::new());

    project.use_smtp(2525, "per-second = 0");
    let (out, findings) = check_findings(&project, &[]);
    out.expect_code(0);
    assert_eq!(findings, Vec::<Value>::new());
}

// ---------------------------------------------------------------------------
// Events under way, against a fixed today (item 4)

/// The "Coming up" event moved to 15 July 2022 at 15:00, two days after
/// the issue's date.
fn event_on_15_july(project: &Project) -> usize {
    project.edit(
        EVENTS,
        "start = 2022-09-05T15:00:00",
        "start = 2022-07-15T15:00:00",
    );
    line_of(
        project,
        ISSUE,
        "events = [\"judith-series-disability-rights\"]",
    )
}

#[test]
fn an_event_started_before_today_is_a_warning_for_a_current_issue() {
    let project = Project::example();
    let line = event_on_15_july(&project);
    let (out, findings) = check_findings(&project, &[("NEWSLETTER_TODAY", "2022-07-20")]);
    out.expect_code(0);
    assert_eq!(
        findings,
        [json!({
            "severity": "warning",
            "code": "event-started",
            "file": ISSUE,
            "line": line,
            "column": 11,
            "message": "event `judith-series-disability-rights` starts on 2022-07-15, before today (2022-07-20), so it will have begun by the time supporters read this issue, and `newsletter send` refuses it; remove it from this section, or, if the section reports on past events, set `past-events = true` in it",
        })]
    );
}

#[test]
fn an_issue_dated_over_a_month_ago_is_history_and_passes() {
    let project = Project::example();
    // The "Coming up" event (5 September) is over, 59 days after the issue.
    let (out, findings) = check_findings(&project, &[("NEWSLETTER_TODAY", "2022-09-10")]);
    out.expect_code(0);
    assert_eq!(findings, Vec::<Value>::new());
}

#[test]
fn an_event_before_the_date_of_a_future_issue_is_one_past_event_error() {
    let project = Project::example();
    project.edit(
        EVENTS,
        "start = 2022-09-05T15:00:00",
        "start = 2022-07-05T15:00:00",
    );
    let (out, findings) = check_findings(&project, &[("NEWSLETTER_TODAY", "2022-07-10")]);
    out.expect_code(1);
    let codes: Vec<&Value> = findings.iter().map(|f| &f["code"]).collect();
    assert_eq!(codes, [&json!("past-event")], "{findings:#?}");
}

#[test]
fn send_refuses_an_event_that_has_started() {
    let project = Project::example();
    let line = event_on_15_july(&project);
    let out = run_env(
        &project,
        &["send", ISSUE, "--yes"],
        &[("NEWSLETTER_TODAY", "2022-07-20")],
        &[],
    );
    out.expect_code(2);
    assert!(
        out.stderr.lines().any(|l| l
            == format!("error: issues/2022-07-13.toml:{line}:11: event `judith-series-disability-rights` started on 2022-07-15 at 15:00, before this send, so supporters would be invited to something already under way; remove it from this section, or, if the section reports on past events, set `past-events = true` in it [event-started]")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("nothing was sent and nothing was connected to"),
        "{}",
        out.stderr
    );
    assert_eq!(files_in(&project, "outbox"), Vec::<String>::new());
    assert!(!journal_written(&project));
}

#[test]
fn send_sends_an_event_that_starts_later_today() {
    let project = Project::example();
    event_on_15_july(&project);
    let set = [("NEWSLETTER_TODAY", "2022-07-15")];
    let (out, findings) = check_findings(&project, &set);
    out.expect_code(0);
    assert_eq!(findings, Vec::<Value>::new());
    let out = run_env(&project, &["send", ISSUE, "--yes"], &set, &[]);
    out.expect_code(0);
    assert!(!out.stderr.contains("event-started"), "{}", out.stderr);
    assert!(!files_in(&project, "outbox").is_empty());
}

#[test]
fn a_test_send_warns_of_an_event_that_has_started() {
    let project = Project::example();
    let line = event_on_15_july(&project);
    let out = run_env(
        &project,
        &["send", ISSUE, "--test-to", "office@example.org"],
        &[("NEWSLETTER_TODAY", "2022-07-20")],
        &[],
    );
    out.expect_code(0);
    assert!(
        out.stderr.starts_with(&format!(
            "warning: issues/2022-07-13.toml:{line}:11: event `judith-series-disability-rights` started on 2022-07-15 at 15:00, before this send, "
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("(a real send refuses it) [event-started]\n"),
        "{}",
        out.stderr
    );
    assert_eq!(files_in(&project, "outbox").len(), 1);
}

#[test]
fn newsletter_today_must_be_written_year_month_day() {
    let project = Project::example();
    let out = run_env(
        &project,
        &["check"],
        &[("NEWSLETTER_TODAY", "13/07/2022")],
        &[],
    );
    out.expect_code(2);
    assert_eq!(
        out.stderr,
        "error: `NEWSLETTER_TODAY` is `13/07/2022`: write the date as `2022-07-13` (year-month-day); or unset it\n"
    );
}

// ---------------------------------------------------------------------------
// Help (item 10)

/// Every command and subcommand, as the words typed after `newsletter`.
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            walk(sub, path, out);
            path.pop();
        }
    }
    let mut out = vec![Vec::new()];
    walk(&newsletter::cli::Cli::command(), &mut Vec::new(), &mut out);
    out
}

/// `newsletter PATH… --help`, as printed.
fn help(project: &Project, path: &[String]) -> String {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let out = project.run(&args);
    out.expect_code(0);
    out.stdout
}

#[test]
fn every_command_has_a_long_help_with_an_example() {
    let project = Project::example();
    let paths = command_paths();
    assert!(paths.len() >= 16, "{paths:?}");
    for path in paths {
        let text = help(&project, &path);
        let intro = &text[..text.find("Usage:").unwrap()];
        assert!(
            intro.trim().contains("\n\n"),
            "`newsletter {}` has no long help:\n{text}",
            path.join(" ")
        );
        let typed = format!("\n  newsletter {}", path.join(" "));
        let examples = text.find("\nExamples").map(|at| &text[at..]);
        assert!(
            examples.is_some_and(|e| e.contains(typed.trim_end())),
            "`newsletter {}` has no example of itself:\n{text}",
            path.join(" ")
        );
    }
}

#[test]
fn commands_are_listed_in_the_order_of_the_work() {
    let project = Project::example();
    let text = help(&project, &[]);
    let listed: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        listed[..5],
        ["new", "check", "preview", "send", "status"],
        "{text}"
    );
    let at = |name: &str| listed.iter().position(|c| *c == name).unwrap();
    assert_eq!(
        &listed[listed.len() - 3..],
        ["completions", "man", "help"],
        "{text}"
    );
    assert!(at("unsubscribe") > at("status") && at("bounces") > at("status"));
}

#[test]
fn an_email_address_is_always_an_address() {
    let project = Project::example();
    for path in command_paths() {
        let text = help(&project, &path);
        for other in ["<EMAIL>", "<ADDR>", "<SUBSCRIBER>", "ADDR:PORT"] {
            assert!(
                !text.contains(other),
                "`newsletter {}` calls a value {other}:\n{text}",
                path.join(" ")
            );
        }
    }
    let preview = help(&project, &["preview".into()]);
    assert!(preview.contains("--as <ADDRESS>"), "{preview}");
    let send = help(&project, &["send".into()]);
    assert!(send.contains("--test-to <ADDRESS>"), "{send}");
    assert!(send.contains("--as <ADDRESS>"), "{send}");
    let serve = help(&project, &["unsubscribe".into(), "serve".into()]);
    assert!(serve.contains("--bind <IP:PORT>"), "{serve}");
}

#[test]
fn files_are_files_and_folders_are_dirs() {
    let project = Project::example();
    for path in command_paths() {
        let text = help(&project, &path);
        for option in [
            "--subscribers",
            "--config",
            "--failed-csv",
            "--journal",
            "--from-file",
            "--log",
        ] {
            if let Some(at) = text.find(&format!("{option} <")) {
                assert!(
                    text[at..].starts_with(&format!("{option} <FILE>")),
                    "`newsletter {}`: {option}:\n{text}",
                    path.join(" ")
                );
            }
        }
        if let Some(at) = text.find("--out <") {
            assert!(text[at..].starts_with("--out <DIR>"), "{text}");
        }
    }
}

#[test]
fn config_is_offered_only_by_commands_that_read_it() {
    let project = Project::example();
    for path in command_paths() {
        let text = help(&project, &path);
        let offered = text.contains("--config <FILE>");
        let reads = !matches!(
            path.first().map(String::as_str),
            Some("completions" | "man" | "help")
        );
        assert_eq!(offered, reads, "`newsletter {}`:\n{text}", path.join(" "));
    }
    let out = project.run(&["completions", "bash", "--config", "newsletter.toml"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("unexpected argument '--config'"),
        "{}",
        out.stderr
    );
}

#[test]
fn config_works_before_and_after_the_command() {
    let project = Project::example();
    let elsewhere = tempfile::tempdir().unwrap();
    let config = project.path(CONFIG);
    let config = config.to_str().unwrap();
    let from = |dir: &Path, args: &[&str]| {
        let out = project.command(args).current_dir(dir).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    for args in [
        &["--config", config, "check"][..],
        &["check", "--config", config],
        &["-c", config, "check", "2022-07-13"],
        &["check", "2022-07-13", "-c", config],
    ] {
        let (code, stdout) = from(elsewhere.path(), args);
        assert_eq!(code, Some(0), "{args:?}: {stdout}");
        assert_eq!(stdout, "0 errors, 0 warnings\n", "{args:?}");
    }
    let site = elsewhere.path().join("site");
    let site = site.to_str().unwrap();
    for args in [
        &["web", "--config", config, "build", "--out", site][..],
        &["web", "build", "--config", config, "--out", site],
    ] {
        let (code, stdout) = from(elsewhere.path(), args);
        assert_eq!(code, Some(0), "{args:?}: {stdout}");
        assert!(Path::new(site).join("index.html").is_file(), "{args:?}");
    }
}
