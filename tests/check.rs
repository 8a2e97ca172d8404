//! `newsletter check`: one broken copy of the example project per lint
//! code, the exact output formats, and the exit codes.
//!
//! Every fixture starts from the clean example project, makes one edit and
//! expects exactly the finding that edit causes: its code, severity, file
//! and line, and nothing else.

mod support;

use serde_json::{Value, json};
use support::project::{Output, Project};

const ISSUE: &str = "issues/2022-07-13.toml";
const OTHER_ISSUE: &str = "issues/2020-12-10.toml";
const CONFIG: &str = "newsletter.toml";
const SUBSCRIBERS: &str = "subscribers.example.csv";
const POSTS: &str = "archive/posts.toml";
const EVENTS: &str = "archive/events.toml";
const THEME: &str = "templates/theme.toml";

/// A link in the letter of `ISSUE`, on a line of its own.
/// The events line of `ISSUE`'s "Coming up" section, which has no body:
/// tests that need a section body put one before it.
const JUDITH_EVENTS: &str = "events = [\"judith-series-disability-rights\"]";
const BRIEFING: &str = "[briefing](https://www.renecassin.org/briefings/human-rights-act/)";

/// A usable Ed25519 DKIM key: the base64 of the 32-byte seed 0, 1, …, 31.
const ED25519_SEED: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

use Severity::{Error, Warning};

/// `check --format json ARGS…`, parsed; the counts are checked against
/// the findings.
fn check_json(project: &Project, args: &[&str]) -> (Output, Vec<Value>) {
    let mut all = vec!["check", "--format", "json"];
    all.extend_from_slice(args);
    let out = project.run(&all);
    let report: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --format json printed no JSON ({e}), exit {}\n--- stdout\n{}\n--- stderr\n{}",
            out.code, out.stdout, out.stderr
        )
    });
    let findings = report["findings"].as_array().expect("findings").clone();
    let count = |severity: &str| {
        findings
            .iter()
            .filter(|f| f["severity"] == severity)
            .count()
    };
    assert_eq!(report["errors"], json!(count("error")), "{report:#}");
    assert_eq!(report["warnings"], json!(count("warning")), "{report:#}");
    assert_eq!(
        findings.len(),
        count("error") + count("warning"),
        "{report:#}"
    );
    (out, findings)
}

/// 1-based line of the first line of `file` that contains `needle`.
#[track_caller]
fn line_of(project: &Project, file: &str, needle: &str) -> usize {
    project
        .read(file)
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not in {file}"))
        + 1
}

/// Runs the check and expects exactly one finding (`code`, `severity`,
/// `file`, `line`) and no other finding at all; the exit code follows the
/// severity. Returns the finding.
#[track_caller]
fn expect_only(
    project: &Project,
    code: &str,
    severity: Severity,
    file: &str,
    line: Option<usize>,
) -> Value {
    let (out, findings) = check_json(project, &[]);
    let shown = serde_json::to_string_pretty(&findings).unwrap();
    let others: Vec<&Value> = findings.iter().filter(|f| f["code"] != code).collect();
    assert!(
        others.is_empty(),
        "wanted only `{code}`; other findings too:\n{shown}"
    );
    assert_eq!(findings.len(), 1, "wanted one `{code}`:\n{shown}");
    let found = &findings[0];
    assert_eq!(found["severity"], severity.as_str(), "{shown}");
    assert_eq!(found["file"], file, "{shown}");
    assert_eq!(
        found.get("line").and_then(Value::as_u64),
        line.map(|l| l as u64),
        "{shown}"
    );
    assert!(
        !found["message"].as_str().unwrap_or("").trim().is_empty(),
        "{shown}"
    );
    out.expect_code(match severity {
        Error => 1,
        Warning => 0,
    });
    found.clone()
}

/// Edits `ISSUE` and returns the line the new text starts on.
#[track_caller]
fn edit_issue(project: &Project, old: &str, new: &str) -> usize {
    project.edit(ISSUE, old, new);
    line_of(project, ISSUE, new.lines().next().unwrap_or(new))
}

/// Replaces `[transport]` of the configuration by an SMTP transport with
/// the `[smtp]` lines given.
fn use_smtp(project: &Project, smtp: &str) {
    let text = project.read(CONFIG);
    let start = text.find("[transport]").unwrap();
    let end = text.find("[sending]").unwrap();
    let config = format!(
        "{}[transport]\nkind = \"smtp\"\n\n[smtp]\n{smtp}\n\n{}",
        &text[..start],
        &text[end..]
    );
    project.write(CONFIG, &config);
}

/// Adds a `[dkim]` table signing for `domain` with the key file `key`.
fn add_dkim(project: &Project, domain: &str, key: &str) {
    let text = project.read(CONFIG);
    project.write(
        CONFIG,
        &format!(
            "{text}\n[dkim]\nselector = \"news\"\ndomain = \"{domain}\"\nprivate-key-file = \"{key}\"\nalgorithm = \"ed25519\"\n"
        ),
    );
}

fn append(project: &Project, file: &str, lines: &str) {
    let text = project.read(file);
    project.write(file, &format!("{text}{lines}"));
}

fn line_count(project: &Project, file: &str) -> usize {
    project.read(file).lines().count()
}

// ---------------------------------------------------------------------------
// The clean example

#[test]
fn the_example_project_is_clean() {
    let project = Project::example();
    let out = project.run(&["check"]);
    out.expect_code(0);
    assert_eq!(out.stdout, "0 errors, 0 warnings\n");
    assert_eq!(out.stderr, "");

    let (out, findings) = check_json(&project, &[]);
    out.expect_code(0);
    assert_eq!(findings, Vec::<Value>::new());
}

/// Bold or italics against a word or a colon in a heading: the HTML and
/// the text part hold the same words, so nothing is reported.
#[test]
fn headings_with_markup_against_their_words_are_clean() {
    let project = Project::example();
    project.edit(
        ISSUE,
        "letter = \"\"\"\n",
        "letter = \"\"\"\n## **Save the date**: 5 May\n\n## *Anna*'s story\n\n",
    );
    let out = project.run(&["check", ISSUE]);
    out.expect_code(0);
    assert_eq!(out.stdout, "0 errors, 0 warnings\n");
}

/// The unsubscribe secret is a sending concern (CI never has it): `check`
/// says nothing of it; `send` refuses without it (tests/messages.rs).
#[test]
fn without_the_unsubscribe_secret_the_example_is_clean() {
    let project = Project::example();
    let out = project
        .command(&["check", "--format", "json"])
        .env_remove("NEWSLETTER_UNSUBSCRIBE_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report,
        json!({
            "errors": 0,
            "warnings": 0,
            "findings": []
        })
    );
}

// ---------------------------------------------------------------------------
// TOML structure (every file goes through the same reader)

#[test]
fn unknown_key() {
    let project = Project::example();
    project.edit(
        ISSUE,
        "date = 2022-07-13\n",
        "date = 2022-07-13\nauthor = \"Mia\"\n",
    );
    let line = line_of(&project, ISSUE, "author = ");
    let found = expect_only(&project, "unknown-key", Error, ISSUE, Some(line));
    assert_eq!(found["column"], 1);
    assert!(
        found["message"].as_str().unwrap().contains("author"),
        "{found}"
    );
}

#[test]
fn unknown_key_in_the_configuration() {
    let project = Project::example();
    project.edit(
        CONFIG,
        "language = \"en-GB\"\n",
        "language = \"en-GB\"\ncolour = \"red\"\n",
    );
    let line = line_of(&project, CONFIG, "colour = ");
    expect_only(&project, "unknown-key", Error, CONFIG, Some(line));
}

#[test]
fn missing_key() {
    let project = Project::example();
    project.edit(ISSUE, "greeting = \"Dear {{first_name|Supporter}}\"\n", "");
    // A missing key belongs to its table: here the whole file, from line 1.
    let found = expect_only(&project, "missing-key", Error, ISSUE, Some(1));
    assert!(
        found["message"].as_str().unwrap().contains("greeting"),
        "{found}"
    );
}

#[test]
fn wrong_type() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "subject = \"Rwanda, Refugees, and Our Rights under threat\"",
        "subject = 2022",
    );
    let found = expect_only(&project, "wrong-type", Error, ISSUE, Some(line));
    assert!(
        found["message"].as_str().unwrap().contains("subject"),
        "{found}"
    );
}

#[test]
fn invalid_toml() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "heading = \"Refugee Week events\"",
        "heading = \"Refugee Week events",
    );
    expect_only(&project, "invalid-toml", Error, ISSUE, Some(line));
}

#[test]
fn a_text_with_no_closing_quote_is_shown_where_it_opens() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "subject = \"Rwanda, Refugees, and Our Rights under threat\"",
        "subject = \"Rwanda, Refugees, and Our Rights under threat",
    );
    let found = expect_only(&project, "invalid-toml", Error, ISSUE, Some(line));
    assert_eq!(found["column"], 11, "{found}");
    assert_eq!(
        found["message"],
        "`subject`: the text that starts here has no closing `\"`; end it with `\"` on the same line (a text over several lines starts and ends with `\"\"\"`)"
    );
}

#[test]
fn a_text_over_several_lines_with_one_quote_is_shown_where_it_opens() {
    let project = Project::example();
    // The parser notices only on the next line of the letter.
    let line = edit_issue(&project, "letter = \"\"\"\n", "letter = \"\n");
    let found = expect_only(&project, "invalid-toml", Error, ISSUE, Some(line));
    assert_eq!(found["column"], 10, "{found}");
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .starts_with("`letter`: the text that starts here has no closing `\"`"),
        "{found}"
    );
}

#[test]
fn a_text_over_several_lines_with_no_closing_quotes_is_shown_where_it_opens() {
    let project = Project::example();
    let line = line_of(&project, ISSUE, "letter = \"\"\"");
    // The letter's closing `"""` is the first line that is only `"""`.
    let text = project.read(ISSUE);
    let at = text.find("\n\"\"\"\n").unwrap();
    project.write(ISSUE, &format!("{}{}", &text[..at], &text[at + 4..]));
    let found = expect_only(&project, "invalid-toml", Error, ISSUE, Some(line));
    assert_eq!(found["column"], 10, "{found}");
    assert_eq!(
        found["message"],
        "`letter`: the text that starts here has no closing `\"\"\"`; end it with `\"\"\"` on a line of its own"
    );
}

#[test]
fn quotes_inside_a_text_say_how_to_write_them() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "subject = \"Rwanda, Refugees, and Our Rights under threat\"",
        "subject = \"Rwanda, \"Refugees\", and Our Rights\"",
    );
    let found = expect_only(&project, "invalid-toml", Error, ISSUE, Some(line));
    assert_eq!(found["column"], 11, "{found}");
    assert_eq!(
        found["message"],
        "`subject`: the text has `\"` inside it, which ends it early; put single quotes around it instead, or a `\\` before each `\"` inside: `subject = 'Rwanda, \"Refugees\", and Our Rights'`"
    );
}

#[test]
fn quotes_and_an_apostrophe_inside_a_text_say_to_escape_them() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "subject = \"Rwanda, Refugees, and Our Rights under threat\"",
        "subject = \"Rwanda, \"Refugees\", and Our Rights' future\"",
    );
    let found = expect_only(&project, "invalid-toml", Error, ISSUE, Some(line));
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .ends_with("`subject = \"Rwanda, \\\"Refugees\\\", and Our Rights' future\"`"),
        "{found}"
    );
}

#[test]
fn a_text_with_no_quotes_says_to_add_them() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "subject = \"Rwanda, Refugees, and Our Rights under threat\"",
        "subject = Rwanda and our rights",
    );
    let found = expect_only(&project, "invalid-toml", Error, ISSUE, Some(line));
    assert_eq!(
        found["message"],
        "`subject`: a text must be in quotes; write `subject = \"Rwanda and our rights\"`"
    );
}

#[test]
fn duplicate_key() {
    let project = Project::example();
    project.edit(
        ISSUE,
        "date = 2022-07-13\n",
        "date = 2022-07-13\nsubject = \"Again\"\n",
    );
    let line = line_of(&project, ISSUE, "subject = \"Again\"");
    expect_only(&project, "duplicate-key", Error, ISSUE, Some(line));
}

// ---------------------------------------------------------------------------
// Issue files

#[test]
fn invalid_issue_name() {
    let project = Project::example();
    project.write("issues/13 July.toml", &project.read(ISSUE));
    expect_only(
        &project,
        "invalid-issue-name",
        Error,
        "issues/13 July.toml",
        None,
    );
}

#[test]
fn invalid_date_in_an_issue() {
    let project = Project::example();
    let line = edit_issue(&project, "date = 2022-07-13", "date = 2022-07-13T09:00:00");
    expect_only(&project, "invalid-date", Error, ISSUE, Some(line));
}

/// `date = WRITTEN` in `ISSUE`: exactly one `invalid-date` at the line and
/// the value's column, with exactly `message`.
#[track_caller]
fn expect_date_advice(written: &str, message: &str) {
    let project = Project::example();
    let line = edit_issue(&project, "date = 2022-07-13", &format!("date = {written}"));
    let found = expect_only(&project, "invalid-date", Error, ISSUE, Some(line));
    assert_eq!(found["column"], 8, "{found}");
    assert_eq!(found["message"], message, "{found}");
}

#[test]
fn a_date_written_day_slash_month_slash_year_says_how_to_write_it() {
    expect_date_advice(
        "13/07/2022",
        "`date`: write the date as `2022-07-13` (year-month-day), with no quotes",
    );
}

#[test]
fn a_quoted_date_in_the_wrong_shape_says_how_to_write_it() {
    expect_date_advice(
        "\"13/07/2022\"",
        "`date`: write the date as `2022-07-13` (year-month-day), with no quotes",
    );
}

#[test]
fn a_quoted_date_in_the_right_shape_says_to_drop_the_quotes() {
    expect_date_advice(
        "\"2022-07-13\"",
        "`date`: write the date as `2022-07-13` (year-month-day), with no quotes",
    );
}

#[test]
fn a_date_with_dots_says_how_to_write_it() {
    expect_date_advice(
        "13.07.2022",
        "`date`: write the date as `2022-07-13` (year-month-day), with no quotes",
    );
}

#[test]
fn a_date_with_slashes_year_first_says_how_to_write_it() {
    expect_date_advice(
        "2022/07/13",
        "`date`: write the date as `2022-07-13` (year-month-day), with no quotes",
    );
}

#[test]
fn a_date_with_a_time_says_to_drop_the_time() {
    expect_date_advice(
        "13/07/2022 09:00",
        "`date`: write the date as `2022-07-13` (year-month-day), with no quotes and no time",
    );
    expect_date_advice(
        "2022-07-13 09:00:00",
        "`date` is the day of the issue: write the date as `2022-07-13` (year-month-day), with no quotes and no time",
    );
}

#[test]
fn a_date_with_the_month_in_words_day_first_says_how_to_write_it() {
    expect_date_advice(
        "13 July 2022",
        "`date`: write the date as `2022-07-13` (year-month-day), with no quotes",
    );
}

#[test]
fn a_date_with_the_month_in_words_month_first_says_how_to_write_it() {
    expect_date_advice(
        "\"July 13, 2022\"",
        "`date`: write the date as `2022-07-13` (year-month-day), with no quotes",
    );
}

#[test]
fn a_date_with_the_month_abbreviated_says_how_to_write_it() {
    expect_date_advice(
        "13 Jul 2022",
        "`date`: write the date as `2022-07-13` (year-month-day), with no quotes",
    );
}

#[test]
fn an_event_start_with_the_month_in_words_says_how_to_write_it() {
    let project = Project::example();
    let line = line_of(&project, EVENTS, "start = 2022-06-20T18:00:00");
    project.edit(
        EVENTS,
        "start = 2022-06-20T18:00:00",
        "start = 20 June 2022 18:00",
    );
    let found = expect_only(&project, "invalid-date", Error, EVENTS, Some(line));
    assert_eq!(
        found["message"],
        "`start`: write it as `2022-06-20T18:00:00` (year-month-day, `T`, then the time), with no quotes",
        "{found}"
    );
}

#[test]
fn an_event_start_with_no_time_asks_for_the_time() {
    let project = Project::example();
    let line = line_of(&project, EVENTS, "start = 2022-06-20T18:00:00");
    project.edit(
        EVENTS,
        "start = 2022-06-20T18:00:00",
        "start = \"20 June 2022\"",
    );
    let found = expect_only(&project, "invalid-date", Error, EVENTS, Some(line));
    assert_eq!(
        found["message"],
        "`start`: write it as `2022-06-20T` and the time, like `2022-06-20T19:00:00` (year-month-day, `T`, then the time), with no quotes",
        "{found}"
    );
}

#[test]
fn a_date_that_reads_two_ways_offers_both() {
    expect_date_advice(
        "06/01/2027",
        "`date`: write the date as `2027-01-06` (year-month-day), with no quotes, or `2027-06-01` if you meant 1 June",
    );
}

#[test]
fn a_quoted_event_start_says_how_to_write_it() {
    let project = Project::example();
    let line = line_of(&project, EVENTS, "start = 2022-06-20T18:00:00");
    project.edit(
        EVENTS,
        "start = 2022-06-20T18:00:00",
        "start = \"20/06/2022 18:00\"",
    );
    let found = expect_only(&project, "invalid-date", Error, EVENTS, Some(line));
    assert_eq!(
        found["message"],
        "`start`: write it as `2022-06-20T18:00:00` (year-month-day, `T`, then the time), with no quotes",
        "{found}"
    );
}

#[test]
fn a_slash_in_the_subject_is_not_taken_for_a_date() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "subject = \"Rwanda, Refugees, and Our Rights under threat\"",
        "subject = 13/07/2022",
    );
    let found = expect_only(&project, "invalid-toml", Error, ISSUE, Some(line));
    assert!(
        !found["message"].as_str().unwrap().contains("date"),
        "{found}"
    );
}

#[test]
fn empty_subject() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "subject = \"Rwanda, Refugees, and Our Rights under threat\"",
        "subject = \"  \"",
    );
    expect_only(&project, "empty-subject", Error, ISSUE, Some(line));
}

#[test]
fn subject_line_break() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "subject = \"Rwanda, Refugees, and Our Rights under threat\"",
        "subject = \"Rwanda, Refugees,\\nand Our Rights under threat\"",
    );
    expect_only(&project, "subject-line-break", Error, ISSUE, Some(line));
}

#[test]
fn placeholder_in_the_subject() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "subject = \"Rwanda, Refugees, and Our Rights under threat\"",
        "subject = \"TODO: the subject line supporters see in their inbox\"",
    );
    let found = expect_only(&project, "placeholder", Error, ISSUE, Some(line));
    assert_eq!(
        found["message"],
        "`subject` still holds the placeholder `TODO: the subject line supporters see in their inbox` from the skeleton; replace it with the real text (or delete the line if the field is optional)",
    );
    assert_eq!(found["column"], 12, "{found}");
}

#[test]
fn placeholder_in_the_sign_off() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "role = \"Executive Director\"",
        "role = \"TODO: your role\"",
    );
    let found = expect_only(&project, "placeholder", Error, ISSUE, Some(line));
    let message = found["message"].as_str().unwrap();
    assert!(
        message.starts_with("`role` in `[sign-off]` still holds the placeholder `TODO: your role`"),
        "{found}"
    );
}

#[test]
fn placeholder_deep_in_the_letter_names_its_own_line() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        BRIEFING,
        &format!("{BRIEFING}\nTODO check the figures"),
    );
    let line = line + 1;
    assert_eq!(line_of(&project, ISSUE, "TODO check"), line);
    let found = expect_only(&project, "placeholder", Error, ISSUE, Some(line));
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .starts_with("`letter` still holds the placeholder"),
        "{found}"
    );
}

#[test]
fn placeholder_in_a_section_heading() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "heading = \"Refugee Week events\"",
        "heading = \"TODO\"",
    );
    let found = expect_only(&project, "placeholder", Error, ISSUE, Some(line));
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .starts_with("`heading` of section "),
        "{found}"
    );
}

#[test]
fn todo_inside_a_longer_word_is_not_a_placeholder() {
    let project = Project::example();
    edit_issue(
        &project,
        "role = \"Executive Director\"",
        "role = \"Director of TODOS and MASTODON\"",
    );
    expect_only_clean(&project);
}

#[test]
fn subject_too_long() {
    let project = Project::example();
    let subject = "Rwanda, Refugees, and Our Rights under threat: what the Bill of Rights means";
    assert_eq!(subject.chars().count(), 76);
    // 78 characters are fine…
    project.edit(
        ISSUE,
        "subject = \"Rwanda, Refugees, and Our Rights under threat\"",
        &format!("subject = \"{subject}!!\""),
    );
    expect_only_clean(&project);
    // …79 are not.
    let line = edit_issue(
        &project,
        &format!("subject = \"{subject}!!\""),
        &format!("subject = \"{subject}!!!\""),
    );
    let found = expect_only(&project, "subject-too-long", Warning, ISSUE, Some(line));
    assert!(found["message"].as_str().unwrap().contains("79"), "{found}");
}

#[test]
fn missing_preheader() {
    let project = Project::example();
    project.edit(
        ISSUE,
        "preheader = \"We are extremely concerned by proposals to forcibly remove asylum-seekers to Rwanda.\"\n",
        "",
    );
    expect_only(&project, "missing-preheader", Warning, ISSUE, None);
}

#[test]
fn empty_preheader() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "preheader = \"We are extremely concerned by proposals to forcibly remove asylum-seekers to Rwanda.\"",
        "preheader = \" \"",
    );
    expect_only(&project, "missing-preheader", Warning, ISSUE, Some(line));
}

#[test]
fn preheader_too_long() {
    let project = Project::example();
    let preheader = "x".repeat(111);
    let line = edit_issue(
        &project,
        "preheader = \"We are extremely concerned by proposals to forcibly remove asylum-seekers to Rwanda.\"",
        &format!("preheader = \"{preheader}\""),
    );
    expect_only(&project, "preheader-too-long", Warning, ISSUE, Some(line));
}

#[test]
fn unknown_merge_field() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "greeting = \"Dear {{first_name|Supporter}}\"",
        "greeting = \"Dear {{nickname|Supporter}}\"",
    );
    let found = expect_only(&project, "unknown-merge-field", Error, ISSUE, Some(line));
    assert!(
        found["message"].as_str().unwrap().contains("nickname"),
        "{found}"
    );
}

#[test]
fn a_mistyped_merge_field_in_the_greeting_suggests_the_column() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "greeting = \"Dear {{first_name|Supporter}}\"",
        "greeting = \"Dear {{frist_name|Supporter}}\"",
    );
    let found = expect_only(&project, "unknown-merge-field", Error, ISSUE, Some(line));
    assert_eq!(
        found["message"],
        "the greeting uses `{{frist_name}}` but the subscriber file has no `frist_name` column; did you mean `{{first_name}}`? its columns are `email`, `first_name`, `last_name`, `status`, `city`"
    );
}

#[test]
fn a_mistyped_merge_field_in_the_letter_suggests_the_column() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        BRIEFING,
        &format!("{BRIEFING}, {{{{first_nme}}}}"),
    );
    let found = expect_only(&project, "unknown-merge-field", Error, ISSUE, Some(line));
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .starts_with("the letter uses `{{first_nme}}` but the subscriber file has no `first_nme` column; did you mean `{{first_name}}`? its columns are"),
        "{found}"
    );
}

#[test]
fn a_merge_field_like_no_column_gets_no_suggestion() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "greeting = \"Dear {{first_name|Supporter}}\"",
        "greeting = \"Dear {{xyz|Supporter}}\"",
    );
    let found = expect_only(&project, "unknown-merge-field", Error, ISSUE, Some(line));
    assert!(
        !found["message"].as_str().unwrap().contains("did you mean"),
        "{found}"
    );
}

#[test]
fn a_merge_field_from_an_extra_column_is_known() {
    let project = Project::example();
    project.edit(
        ISSUE,
        "greeting = \"Dear {{first_name|Supporter}}\"",
        "greeting = \"Dear {{first_name|Supporter}} in {{city|your town}}\"",
    );
    expect_only_clean(&project);
}

#[test]
fn invalid_merge_field() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "greeting = \"Dear {{first_name|Supporter}}\"",
        "greeting = \"Dear {{first_name|Supporter}\"",
    );
    expect_only(&project, "invalid-merge-field", Error, ISSUE, Some(line));
}

#[test]
fn merge_fields_everywhere_a_reader_sees_text_are_clean() {
    let project = Project::example();
    project
        .edit(
            ISSUE,
            "subject = \"Rwanda,",
            "subject = \"{{first_name|Friend}}: Rwanda,",
        )
        .edit(
            ISSUE,
            "preheader = \"We are",
            "preheader = \"{{first_name|Friend}}, we are",
        )
        .edit(ISSUE, "On 22 June", "{{First Name|Friend}}, on 22 June")
        .edit(
            ISSUE,
            "heading = \"Refugee Week events\"",
            "heading = \"Refugee Week events in {{city|your town}}\"",
        )
        .edit(
            ISSUE,
            "past-events = true",
            "body = \"For Refugee Week 2022 *{{first_name}}* we ran these.\"\npast-events = true",
        )
        .edit(
            ISSUE,
            "Please make a donation",
            "{{first_name|Friend}}, make a donation",
        )
        .edit(
            ISSUE,
            "text = \"Donate today\"",
            "text = \"Donate today, {{first_name|friend}}\"",
        );
    expect_only_clean(&project);
}

#[test]
fn unknown_merge_field_in_the_letter() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "As the Conservative Party looks",
        "As {{nickname|you}} know, the Conservative Party looks",
    );
    let found = expect_only(&project, "unknown-merge-field", Error, ISSUE, Some(line));
    let message = found["message"].as_str().unwrap();
    assert!(
        message.contains("nickname") && message.contains("letter"),
        "{found}"
    );
}

#[test]
fn unknown_merge_field_in_the_subject() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "subject = \"Rwanda,",
        "subject = \"{{nickname}}: Rwanda,",
    );
    expect_only(&project, "unknown-merge-field", Error, ISSUE, Some(line));
}

#[test]
fn invalid_merge_field_in_a_section_body() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        JUDITH_EVENTS,
        &format!("body = \"The next session is free to attend, {{{{first_name.\"\n{JUDITH_EVENTS}"),
    );
    let found = expect_only(&project, "invalid-merge-field", Error, ISSUE, Some(line));
    assert!(
        found["message"].as_str().unwrap().contains("section"),
        "{found}"
    );
}

#[test]
fn merge_field_in_a_link_url() {
    let project = Project::example();
    let line = line_of(&project, ISSUE, BRIEFING);
    project.edit(
        ISSUE,
        BRIEFING,
        "[briefing](https://www.renecassin.org/briefings/human-rights-act/?for={{first_name}})",
    );
    let found = expect_only(&project, "merge-field-in-url", Error, ISSUE, Some(line));
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .contains("?for={{first_name}}"),
        "{found}"
    );
}

#[test]
fn merge_field_in_an_image_url() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        JUDITH_EVENTS,
        &format!(
            "body = \"![Our logo](https://www.renecassin.org/logo.png?u={{{{email}}}})\"\n{JUDITH_EVENTS}"
        ),
    );
    expect_only(&project, "merge-field-in-url", Error, ISSUE, Some(line));
}

#[test]
fn merge_field_in_the_call_to_action_url() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "url = \"https://www.renecassin.org/donate/\"",
        "url = \"https://www.renecassin.org/donate/?name={{first_name|}}\"",
    );
    expect_only(&project, "merge-field-in-url", Error, ISSUE, Some(line));
}

#[test]
fn unknown_post() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "\"hands-off-our-human-rights-act\"",
        "\"hands-off-our-human-right-act\"",
    );
    let found = expect_only(&project, "unknown-post", Error, ISSUE, Some(line));
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `hands-off-our-human-rights-act`"),
        "{found}"
    );
}

#[test]
fn duplicate_reference() {
    let project = Project::example();
    project.edit(
        ISSUE,
        "    \"hands-off-our-human-rights-act\",\n",
        "    \"hands-off-our-human-rights-act\",\n    \"hands-off-our-human-rights-act\",  # again\n",
    );
    let line = line_of(
        &project,
        ISSUE,
        "\"hands-off-our-human-rights-act\",  # again",
    );
    let found = expect_only(&project, "duplicate-reference", Warning, ISSUE, Some(line));
    let first = line_of(&project, ISSUE, "\"hands-off-our-human-rights-act\",");
    assert_eq!(first + 1, line);
    assert_eq!(
        found["message"],
        format!(
            "post `hands-off-our-human-rights-act` is already in this issue (line {first}, section 3 `From the blog`), so readers would see it twice; remove it here (line {line}, section 3 `From the blog`) or there"
        ),
        "{found}"
    );
}

#[test]
fn the_same_event_in_two_sections_names_both_places() {
    let project = Project::example();
    project.edit(
        ISSUE,
        "    \"refugee-week-2022-no-to-hassockfield\",\n",
        "    \"refugee-week-2022-no-to-hassockfield\",\n    \"judith-series-disability-rights\",\n",
    );
    let first = line_of(&project, ISSUE, "    \"judith-series-disability-rights\",");
    let line = line_of(
        &project,
        ISSUE,
        "events = [\"judith-series-disability-rights\"]",
    );
    let found = expect_only(&project, "duplicate-reference", Warning, ISSUE, Some(line));
    assert_eq!(
        found["message"],
        format!(
            "event `judith-series-disability-rights` is already in this issue (line {first}, section 1 `Refugee Week events`), so readers would see it twice; remove it here (line {line}, section 2 `Coming up: Judith Social Justice Series`) or there"
        ),
        "{found}"
    );
}

#[test]
fn unknown_event() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "\"judith-series-disability-rights\"",
        "\"judith-series-disability-right\"",
    );
    expect_only(&project, "unknown-event", Error, ISSUE, Some(line));
}

#[test]
fn past_event() {
    let project = Project::example();
    // The "Coming up" event moves to before the issue date.
    project.edit(
        EVENTS,
        "start = 2022-09-05T15:00:00",
        "start = 2022-07-01T15:00:00",
    );
    let line = line_of(
        &project,
        ISSUE,
        "events = [\"judith-series-disability-rights\"]",
    );
    let found = expect_only(&project, "past-event", Error, ISSUE, Some(line));
    assert_eq!(
        found["message"],
        "event `judith-series-disability-rights` starts on 2022-07-01, before the issue date 2022-07-13, so readers would be invited to something already over; remove it from this section, or, if the section reports on past events, set `past-events = true` in it"
    );
}

#[test]
fn a_past_event_fails_check_without_strict() {
    let project = Project::example();
    project.edit(
        EVENTS,
        "start = 2022-09-05T15:00:00",
        "start = 2022-07-01T15:00:00",
    );
    let out = project.run(&["check", ISSUE]);
    out.expect_code(1);
    assert!(out.stdout.contains("error    past-event"), "{}", out.stdout);
}

#[test]
fn an_event_on_the_issue_date_is_not_past() {
    let project = Project::example();
    project.edit(
        EVENTS,
        "start = 2022-09-05T15:00:00",
        "start = 2022-07-13T09:00:00",
    );
    expect_only_clean(&project);
}

#[test]
fn http_link() {
    let project = Project::example();
    let line = line_of(&project, ISSUE, BRIEFING);
    project.edit(
        ISSUE,
        "(https://www.renecassin.org/briefings/",
        "(http://www.renecassin.org/briefings/",
    );
    expect_only(&project, "http-link", Warning, ISSUE, Some(line));
}

#[test]
fn http_call_to_action() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "url = \"https://www.renecassin.org/donate/\"",
        "url = \"http://www.renecassin.org/donate/\"",
    );
    expect_only(&project, "http-link", Warning, ISSUE, Some(line));
}

#[test]
fn relative_link() {
    let project = Project::example();
    let line = line_of(&project, ISSUE, BRIEFING);
    project.edit(ISSUE, BRIEFING, "[briefing](/briefings/human-rights-act/)");
    expect_only(&project, "relative-link", Error, ISSUE, Some(line));
}

#[test]
fn relative_link_in_a_section_body() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        JUDITH_EVENTS,
        &format!(
            "body = \"The next session is [free](www.renecassin.org/judith/) to attend.\"\n{JUDITH_EVENTS}"
        ),
    );
    expect_only(&project, "relative-link", Error, ISSUE, Some(line));
}

#[test]
fn unsafe_link() {
    let project = Project::example();
    let line = line_of(&project, ISSUE, BRIEFING);
    project.edit(ISSUE, BRIEFING, "[briefing](javascript:void(0))");
    expect_only(&project, "unsafe-link", Error, ISSUE, Some(line));
}

#[test]
fn empty_link_text() {
    let project = Project::example();
    let line = line_of(&project, ISSUE, BRIEFING);
    project.edit(ISSUE, "[briefing](", "[](");
    expect_only(&project, "empty-link-text", Error, ISSUE, Some(line));
}

#[test]
fn empty_call_to_action_text() {
    let project = Project::example();
    let line = edit_issue(&project, "text = \"Donate today\"", "text = \" \"");
    expect_only(&project, "empty-link-text", Error, ISSUE, Some(line));
}

#[test]
fn click_here() {
    let project = Project::example();
    let line = line_of(&project, ISSUE, BRIEFING);
    project.edit(ISSUE, "[briefing](", "[click here](");
    expect_only(&project, "click-here", Warning, ISSUE, Some(line));
}

#[test]
fn missing_alt() {
    let project = Project::example();
    project.edit(
        ISSUE,
        "I would very much welcome your thoughts.\n",
        "I would very much welcome your thoughts.\n\n![](https://www.renecassin.org/images/team.png)\n",
    );
    let found = expect_only(&project, "missing-alt", Error, ISSUE, None);
    assert!(
        found["message"].as_str().unwrap().contains("team.png"),
        "{found}"
    );

    // With alt text it is fine.
    project.edit(ISSUE, "![](", "![The team at Westminster](");
    expect_only_clean(&project);
}

#[test]
fn html_too_large() {
    let project = Project::example();
    let paragraph = "Human rights protect us all, and we will keep making that case. ".repeat(8);
    let letter = vec![paragraph.trim_end(); 200].join("\n\n");
    assert!(letter.len() > 90 * 1024);
    project.edit(
        ISSUE,
        "letter = \"\"\"\n",
        &format!("letter = \"\"\"\n{letter}\n\n"),
    );
    expect_only(&project, "html-too-large", Error, ISSUE, None);
}

#[test]
fn a_long_greeting_is_wrapped_not_reported() {
    // The greeting is filled in per subscriber; the text part wraps it like
    // prose, so a long one stays within 78 columns.
    let project = Project::example();
    project.edit(
        ISSUE,
        "greeting = \"Dear {{first_name|Supporter}}\"",
        "greeting = \"Dear {{first_name|Supporter}}, and thank you so much for standing up with us for human rights all through this long year\"",
    );
    let out = project.run(&["check", ISSUE]);
    out.expect_code(0);
    assert!(!out.stdout.contains("text-line-too-long"), "{}", out.stdout);
    let dir = project.path("preview-out");
    project
        .run(&["preview", ISSUE, "--out", dir.to_str().unwrap()])
        .expect_code(0);
    let text = std::fs::read_to_string(dir.join("index.txt")).unwrap();
    assert!(text.contains("Dear Ruth, and thank you"), "{text}");
    assert!(
        text.lines()
            .filter(|l| !l.contains("https://"))
            .all(|l| l.chars().count() <= 78),
        "{text}"
    );
}

#[test]
fn a_long_word_in_the_letter_is_a_text_line_too_long() {
    let project = Project::example();
    let word = "Rights".repeat(14);
    project.edit(
        ISSUE,
        "I would very much welcome your thoughts.\n",
        &format!("I would very much welcome your thoughts.\n\n{word}\n"),
    );
    expect_only(&project, "text-line-too-long", Error, ISSUE, None);
}

// ---------------------------------------------------------------------------
// Images: the theme's logo, a sign-off's signature, a post's thumbnail

/// The line of `logo = ` in the theme.
fn logo_line(project: &Project) -> usize {
    line_of(project, THEME, "logo = ")
}

#[test]
fn image_missing_alt() {
    let project = Project::example();
    project.edit(THEME, "logo-alt = \"René Cassin\"\n", "");
    let found = expect_only(
        &project,
        "image-missing-alt",
        Error,
        THEME,
        Some(logo_line(&project)),
    );
    assert!(
        found["message"].as_str().unwrap().contains("`logo-alt`"),
        "{found}"
    );
}

#[test]
fn image_missing_alt_of_a_signature() {
    let project = Project::example();
    project.edit(
        OTHER_ISSUE,
        "signature-alt = \"Mia Hasenson-Gross’s signature\"\n",
        "",
    );
    let line = line_of(&project, OTHER_ISSUE, "signature-image = ");
    let found = expect_only(
        &project,
        "image-missing-alt",
        Error,
        OTHER_ISSUE,
        Some(line),
    );
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .contains("`signature-alt`"),
        "{found}"
    );
}

#[test]
fn image_missing_width() {
    let project = Project::example();
    project.edit(THEME, "logo-width = 200\n", "");
    let found = expect_only(
        &project,
        "image-missing-width",
        Error,
        THEME,
        Some(logo_line(&project)),
    );
    assert!(
        found["message"].as_str().unwrap().contains("`logo-width`"),
        "{found}"
    );
}

#[test]
fn image_too_large() {
    let project = Project::example();
    // 400 × 200 px stored without compression: about 235 KB.
    let big = support::png::solid(400, 200, [0x8a, 0x15, 0x38]);
    assert!(big.len() > 200 * 1024);
    let kb = big.len().div_ceil(1024);
    std::fs::write(project.path("templates/logo.png"), big).unwrap();
    let found = expect_only(
        &project,
        "image-too-large",
        Error,
        THEME,
        Some(logo_line(&project)),
    );
    let wanted = format!("`templates/logo.png` is {kb} KB; keep images under 200 KB");
    assert!(
        found["message"].as_str().unwrap().contains(&wanted),
        "{found}"
    );
}

#[test]
fn image_not_found() {
    let project = Project::example();
    project.edit(
        THEME,
        "logo = \"templates/logo.png\"",
        "logo = \"templates/logo-2023.png\"",
    );
    let found = expect_only(
        &project,
        "image-not-found",
        Error,
        THEME,
        Some(logo_line(&project)),
    );
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .contains("there is no `templates/logo-2023.png`"),
        "{found}"
    );
}

#[test]
fn image_not_found_for_a_post_of_the_issue() {
    let project = Project::example();
    project.edit(
        POSTS,
        "id = \"hands-off-our-human-rights-act\"\n",
        "id = \"hands-off-our-human-rights-act\"\nimage = \"archive/images/hands-off.jpg\"\nimage-alt = \"A placard\"\n",
    );
    let line = line_of(&project, POSTS, "image = ");
    expect_only(&project, "image-not-found", Error, POSTS, Some(line));
}

#[test]
fn image_not_https() {
    let project = Project::example();
    project.edit(
        THEME,
        "logo = \"templates/logo.png\"",
        "logo = \"http://www.renecassin.org/logo.png\"",
    );
    expect_only(
        &project,
        "image-not-https",
        Error,
        THEME,
        Some(logo_line(&project)),
    );

    // An https:// address is shown as it is: check has no file to look at.
    project.edit(THEME, "logo = \"http://", "logo = \"https://");
    expect_only_clean(&project);
}

#[test]
fn image_not_https_in_the_letter() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "at Srebrenica.\n",
        "at Srebrenica.\n\n![The team at Westminster](http://www.renecassin.org/images/team.png)\n",
    ) + 2;
    let found = expect_only(&project, "image-not-https", Error, ISSUE, Some(line));
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .contains("`http://www.renecassin.org/images/team.png`"),
        "{found}"
    );
}

#[test]
fn image_not_https_in_the_sign_off_text() {
    let project = Project::example();
    let line = edit_issue(
        &project,
        "I would very much welcome your thoughts.\n",
        "I would very much welcome your thoughts.\n\n![The team at Westminster](http://www.renecassin.org/images/team.png)\n",
    ) + 2;
    let found = expect_only(&project, "image-not-https", Error, ISSUE, Some(line));
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .contains("`http://www.renecassin.org/images/team.png`"),
        "{found}"
    );
}

#[test]
fn image_outside_folders() {
    let project = Project::example();
    for outside in ["subscribers.example.csv", "../logo.png", "/etc/passwd"] {
        project.write(
            THEME,
            &project.read(THEME).replacen(
                "logo = \"templates/logo.png\"",
                &format!("logo = \"{outside}\""),
                1,
            ),
        );
        let found = expect_only(
            &project,
            "image-outside-folders",
            Error,
            THEME,
            Some(logo_line(&project)),
        );
        assert!(
            found["message"]
                .as_str()
                .unwrap()
                .contains("`templates/` or `archive/`"),
            "{found}"
        );
        project.edit(
            THEME,
            &format!("logo = \"{outside}\""),
            "logo = \"templates/logo.png\"",
        );
    }
}

#[test]
fn image_format() {
    let project = Project::example();
    project.write(
        "templates/logo.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    );
    project.edit(
        THEME,
        "logo = \"templates/logo.png\"",
        "logo = \"templates/logo.svg\"",
    );
    expect_only(
        &project,
        "image-format",
        Error,
        THEME,
        Some(logo_line(&project)),
    );
}

#[test]
fn a_logo_problem_is_reported_once_for_all_issues() {
    let project = Project::example();
    project.edit(THEME, "logo-width = 200\n", "");
    let (_, findings) = check_json(&project, &[]);
    let width: Vec<&Value> = findings
        .iter()
        .filter(|f| f["code"] == "image-missing-width")
        .collect();
    assert_eq!(width.len(), 1, "{findings:#?}");
}

// ---------------------------------------------------------------------------
// The archive

#[test]
fn duplicate_post_id() {
    let project = Project::example();
    append(
        &project,
        POSTS,
        "\n[[post]]\nid = \"hands-off-our-human-rights-act\"\ntitle = \"Again\"\n",
    );
    let line = line_count(&project, POSTS) - 1;
    expect_only(&project, "duplicate-id", Error, POSTS, Some(line));
}

#[test]
fn duplicate_event_id() {
    let project = Project::example();
    append(
        &project,
        EVENTS,
        "\n[[event]]\nid = \"judith-series-disability-rights\"\ntitle = \"Again\"\nstart = 2022-10-05T15:00:00\nwhere = \"Online\"\n",
    );
    let line = line_count(&project, EVENTS) - 3;
    expect_only(&project, "duplicate-id", Error, EVENTS, Some(line));
}

#[test]
fn invalid_id() {
    let project = Project::example();
    let line = line_of(&project, POSTS, "id = \"hands-off-our-human-rights-act\"");
    project.edit(
        POSTS,
        "id = \"hands-off-our-human-rights-act\"",
        "id = \"Hands Off our Human Rights Act\"",
    );
    expect_only(&project, "invalid-id", Error, POSTS, Some(line));
}

#[test]
fn invalid_date_in_the_archive() {
    let project = Project::example();
    let line = line_of(&project, EVENTS, "start = 2022-06-20T18:00:00");
    project.edit(EVENTS, "start = 2022-06-20T18:00:00", "start = 2022-06-20");
    expect_only(&project, "invalid-date", Error, EVENTS, Some(line));
}

#[test]
fn unknown_time_zone() {
    let project = Project::example();
    let line = line_of(&project, EVENTS, "time-zone = \"Europe/London\"");
    project.edit(
        EVENTS,
        "time-zone = \"Europe/London\"",
        "time-zone = \"Europe/Londres\"",
    );
    expect_only(&project, "unknown-time-zone", Error, EVENTS, Some(line));
}

#[test]
fn event_ends_before_start() {
    let project = Project::example();
    project.edit(
        EVENTS,
        "start = 2022-09-05T15:00:00\n",
        "start = 2022-09-05T15:00:00\nend = 2022-09-05T14:00:00\n",
    );
    let line = line_of(&project, EVENTS, "end = 2022-09-05T14:00:00");
    expect_only(
        &project,
        "event-ends-before-start",
        Error,
        EVENTS,
        Some(line),
    );
}

// ---------------------------------------------------------------------------
// The theme

#[test]
fn invalid_theme() {
    let project = Project::example();
    project.edit(
        THEME,
        "text-colour = \"#1f2328\"",
        "text-colour = \"black\"",
    );
    // At the key's line: the loaders return the finding, with its place.
    let line = line_of(&project, THEME, "text-colour = \"black\"");
    expect_only(&project, "invalid-theme", Error, THEME, Some(line));
}

// ---------------------------------------------------------------------------
// The subscriber file

#[test]
fn invalid_address() {
    let project = Project::example();
    append(
        &project,
        SUBSCRIBERS,
        "ruth.abrahams.example.org,Ruth,Abrahams,subscribed,London\n",
    );
    let line = line_count(&project, SUBSCRIBERS);
    expect_only(&project, "invalid-address", Error, SUBSCRIBERS, Some(line));
}

#[test]
fn unknown_status() {
    let project = Project::example();
    append(
        &project,
        SUBSCRIBERS,
        "new.supporter@example.org,New,Supporter,pending,Leeds\n",
    );
    let line = line_count(&project, SUBSCRIBERS);
    expect_only(&project, "unknown-status", Error, SUBSCRIBERS, Some(line));
}

#[test]
fn duplicate_address() {
    let project = Project::example();
    append(
        &project,
        SUBSCRIBERS,
        "Ruth.Abrahams@example.org,Ruth,Abrahams,subscribed,London\n",
    );
    let line = line_count(&project, SUBSCRIBERS);
    expect_only(
        &project,
        "duplicate-address",
        Warning,
        SUBSCRIBERS,
        Some(line),
    );
}

#[test]
fn status_conflict() {
    let project = Project::example();
    append(
        &project,
        SUBSCRIBERS,
        "ruth.abrahams@example.org,Ruth,Abrahams,unsubscribed,London\n",
    );
    let line = line_count(&project, SUBSCRIBERS);
    let found = expect_only(&project, "status-conflict", Error, SUBSCRIBERS, Some(line));
    assert!(
        found["message"].as_str().unwrap().contains("line 2"),
        "{found}"
    );
}

#[test]
fn malformed_row() {
    // A quote that is never closed swallows the rest of the file.
    let project = Project::example();
    let line = line_count(&project, SUBSCRIBERS) + 1;
    let mut rows = String::from("x.new@example.org,\"Ann,New,subscribed,Leeds\n");
    for i in 0..120 {
        rows.push_str(&format!("u{i}@example.org,U,V,subscribed,Leeds\n"));
    }
    append(&project, SUBSCRIBERS, &rows);
    expect_only(&project, "malformed-row", Error, SUBSCRIBERS, Some(line));
}

#[test]
fn subscriber_encoding() {
    // A Windows-1252 file: read, with a warning.
    let project = Project::example();
    std::fs::write(
        project.path(SUBSCRIBERS),
        b"email,first_name,last_name,status\nzoe.brightman@example.com,Zo\xEB,Brightman,subscribed\n",
    )
    .unwrap();
    expect_only(&project, "subscriber-encoding", Warning, SUBSCRIBERS, None);
}

// ---------------------------------------------------------------------------
// The configuration

#[test]
fn invalid_config() {
    let project = Project::example();
    project.edit(
        CONFIG,
        "site-url = \"https://www.renecassin.org\"",
        "site-url = \"http://www.renecassin.org\"",
    );
    let line = line_of(&project, CONFIG, "site-url = \"http://");
    let found = expect_only(&project, "invalid-config", Error, CONFIG, Some(line));
    assert!(
        found["message"].as_str().unwrap().contains("site-url"),
        "{found}"
    );
}

#[test]
fn tls_disabled() {
    let project = Project::example();
    use_smtp(
        &project,
        "host = \"smtp.example.org\"\nport = 25\ntls = \"none\"",
    );
    expect_only(&project, "tls-disabled", Error, CONFIG, None);
}

#[test]
fn plain_smtp_to_localhost_is_allowed() {
    let project = Project::example();
    use_smtp(
        &project,
        "host = \"127.0.0.1\"\nport = 2525\ntls = \"none\"",
    );
    expect_only_clean(&project);
}

#[test]
fn password_in_file() {
    let project = Project::example();
    use_smtp(
        &project,
        "host = \"smtp.example.org\"\ntls = \"starttls\"\nusername = \"newsletter\"\npassword = \"hunter2\"",
    );
    let found = expect_only(&project, "password-in-file", Error, CONFIG, None);
    assert!(
        !found["message"].as_str().unwrap().contains("hunter2"),
        "{found}"
    );
}

#[test]
fn missing_password_source() {
    let project = Project::example();
    use_smtp(
        &project,
        "host = \"smtp.example.org\"\ntls = \"starttls\"\nusername = \"newsletter\"",
    );
    expect_only(&project, "missing-password", Error, CONFIG, None);
}

#[test]
fn missing_password_variable() {
    let project = Project::example();
    use_smtp(
        &project,
        "host = \"smtp.example.org\"\ntls = \"starttls\"\nusername = \"newsletter\"\npassword-env = \"NEWSLETTER_CHECK_TEST_PASSWORD\"",
    );
    let out = project
        .command(&["check", "--format", "json"])
        .env_remove("NEWSLETTER_CHECK_TEST_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], 0, "{report:#}");
    // The example's addresses are reserved ones: `example-address` says so
    // for each (see tests/messages.rs); this test is about the password.
    let findings = report["findings"].as_array().unwrap();
    let (examples, others): (Vec<&Value>, Vec<&Value>) = findings
        .iter()
        .partition(|f| f["code"] == "example-address");
    assert_eq!(examples.len(), EXAMPLE_ADDRESSES, "{report:#}");
    assert_eq!(others.len(), 1, "{report:#}");
    let found = others[0];
    assert_eq!(found["code"], "missing-password", "{report:#}");
    assert_eq!(found["severity"], "warning", "{report:#}");
    assert_eq!(found["file"], CONFIG, "{report:#}");
    assert!(found.get("line").is_none(), "{report:#}");

    // With the variable set, nothing is wrong.
    let out = project
        .command(&["check"])
        .env("NEWSLETTER_CHECK_TEST_PASSWORD", "secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().last(),
        Some(format!("0 errors, {EXAMPLE_ADDRESSES} warnings").as_str())
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("missing-password"));
}

/// The example configuration's values on `example.org` domains: `from`,
/// `reply-to`, `web-version-url`, `unsubscribe-url`, `unsubscribe-mailto`.
const EXAMPLE_ADDRESSES: usize = 5;

#[test]
fn dkim_aligned_is_clean() {
    let project = Project::example();
    project.write("dkim.key", ED25519_SEED);
    add_dkim(&project, "renecassin.example.org", "dkim.key");
    expect_only_clean(&project);
}

#[test]
fn dkim_misaligned() {
    let project = Project::example();
    project.write("dkim.key", ED25519_SEED);
    add_dkim(&project, "mailer.example.net", "dkim.key");
    let found = expect_only(&project, "dkim-misaligned", Error, CONFIG, None);
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .contains("renecassin.example.org"),
        "{found}"
    );
}

#[test]
fn dkim_key_unusable() {
    let project = Project::example();
    project.write(
        "dkim.key",
        "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    );
    add_dkim(&project, "renecassin.example.org", "dkim.key");
    expect_only(&project, "dkim-key", Error, CONFIG, None);
}

#[test]
fn dkim_key_missing() {
    let project = Project::example();
    add_dkim(&project, "renecassin.example.org", "keys/absent.key");
    let found = expect_only(&project, "dkim-key", Error, CONFIG, None);
    assert!(
        found["message"].as_str().unwrap().contains("absent.key"),
        "{found}"
    );
}

#[test]
fn an_empty_unsubscribe_secret_is_not_a_finding_either() {
    let project = Project::example();
    let out = project
        .command(&["check", "--format", "json", "--strict"])
        .env("NEWSLETTER_UNSUBSCRIBE_SECRET", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"], json!([]), "{report:#}");
}

/// No finding at all.
#[track_caller]
fn expect_only_clean(project: &Project) {
    let (out, findings) = check_json(project, &[]);
    assert_eq!(findings, Vec::<Value>::new(), "{}", out.stdout);
    out.expect_code(0);
}

// ---------------------------------------------------------------------------
// Output formats, exactly

/// One error (an unknown post, with a line and column) and one warning (an
/// http link, with a line only), both in `ISSUE`.
fn one_error_one_warning() -> Project {
    let project = Project::example();
    project.edit(
        ISSUE,
        "(https://www.renecassin.org/briefings/",
        "(http://www.renecassin.org/briefings/",
    );
    project.edit(
        ISSUE,
        "\"hands-off-our-human-rights-act\"",
        "\"hands-off-our-human-right-act\"",
    );
    assert_eq!(
        line_of(&project, ISSUE, "(http://www.renecassin.org/briefings/"),
        12
    );
    assert_eq!(
        line_of(&project, ISSUE, "hands-off-our-human-right-act"),
        53
    );
    project
}

const HTTP_MESSAGE: &str = "link `http://www.renecassin.org/briefings/human-rights-act/` is not https://; use the https address";
const UNKNOWN_POST_MESSAGE: &str = "no post with id `hands-off-our-human-right-act` in the archive; did you mean `hands-off-our-human-rights-act`?";

#[test]
fn json_format_exactly() {
    let project = one_error_one_warning();
    let out = project.run(&["check", "--format", "json"]);
    out.expect_code(1);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        report,
        json!({
            "errors": 1,
            "warnings": 1,
            "findings": [
                {
                    "severity": "warning",
                    "code": "http-link",
                    "file": "issues/2022-07-13.toml",
                    "line": 12,
                    "message": HTTP_MESSAGE,
                },
                {
                    "severity": "error",
                    "code": "unknown-post",
                    "file": "issues/2022-07-13.toml",
                    "line": 53,
                    "column": 5,
                    "message": UNKNOWN_POST_MESSAGE,
                },
            ]
        })
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn github_format_exactly() {
    let project = one_error_one_warning();
    let out = project.run(&["check", "--format", "github"]);
    out.expect_code(1);
    let expected = format!(
        "::warning file=issues/2022-07-13.toml,line=12,title=http-link::{HTTP_MESSAGE}\n\
         ::error file=issues/2022-07-13.toml,line=53,col=5,title=unknown-post::{UNKNOWN_POST_MESSAGE}\n\
         1 error, 1 warning\n"
    );
    assert_eq!(out.stdout, expected);
}

#[test]
fn github_format_escapes_line_breaks() {
    // A config finding whose message spans two lines stays one annotation.
    let project = Project::example();
    project.edit(
        CONFIG,
        "site-url = \"https://www.renecassin.org\"",
        "site-url = \"http://www.renecassin.org\"",
    );
    let out = project.run(&["check", "--format", "github"]);
    out.expect_code(1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[0].starts_with(&format!(
            "::error file=newsletter.toml,line={},title=invalid-config::",
            line_of(&project, CONFIG, "site-url = \"http://")
        )),
        "{}",
        out.stdout
    );
    assert_eq!(lines[1], "1 error, 0 warnings");
}

const SMTP_IGNORED_MESSAGE: &str = "[smtp] is filled in but `kind = \"outbox\"` in [transport], so it is ignored: messages, test messages too, are written to `outbox` and nothing is sent. To send through this server set `kind = \"smtp\"`; to keep writing files, comment out [smtp]";

/// The example's commented-out `[smtp]` table (line 40), filled in.
fn uncomment_smtp(project: &Project) {
    project.edit(CONFIG, "# [smtp]\n", "[smtp]\n");
    project.edit(CONFIG, "# host = ", "host = ");
    project.edit(CONFIG, "# tls = \"starttls\"", "tls = \"starttls\"");
    let line = project
        .read(CONFIG)
        .lines()
        .position(|l| l == "[smtp]")
        .unwrap()
        + 1;
    assert_eq!(line, 40);
}

#[test]
fn text_format_groups_by_file() {
    let project = one_error_one_warning();
    append(
        &project,
        SUBSCRIBERS,
        "Ruth.Abrahams@example.org,Ruth,Abrahams,subscribed,London\n",
    );
    // A warning in the configuration: [smtp] filled in for the outbox.
    uncomment_smtp(&project);
    let out = project
        .command(&["check"])
        .env_remove("NEWSLETTER_UNSUBSCRIBE_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let expected = format!(
        "issues/2022-07-13.toml\n\
         \x20      12  warning  http-link                   {HTTP_MESSAGE}\n\
         \x20    53:5  error    unknown-post                {UNKNOWN_POST_MESSAGE}\n\
         \n\
         newsletter.toml\n\
         \x20      40  warning  smtp-ignored-in-outbox      {SMTP_IGNORED_MESSAGE}\n\
         \n\
         subscribers.example.csv\n\
         \x20      14  warning  duplicate-address           line 14: `Ruth.Abrahams@example.org` is already on line 2; this row is skipped\n\
         \n\
         1 error, 3 warnings\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

// ---------------------------------------------------------------------------
// Exit codes

#[test]
fn exit_code_0_when_clean() {
    Project::example().run(&["check"]).expect_code(0);
}

#[test]
fn exit_code_1_with_an_error() {
    let project = Project::example();
    project.edit(ISSUE, BRIEFING, "[briefing](/briefings/human-rights-act/)");
    let out = project.run(&["check"]);
    out.expect_code(1);
    assert!(
        out.stdout.ends_with("1 error, 0 warnings\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn exit_code_0_with_only_warnings_and_1_when_strict() {
    let project = Project::example();
    project.edit(ISSUE, "[briefing](", "[click here](");
    let out = project.run(&["check"]);
    out.expect_code(0);
    assert!(
        out.stdout.ends_with("0 errors, 1 warning\n"),
        "{}",
        out.stdout
    );

    let strict = project.run(&["check", "--strict"]);
    strict.expect_code(1);
    assert_eq!(strict.stdout, out.stdout);

    // Strict and clean is still 0.
    let project = Project::example();
    project.run(&["check", "--strict"]).expect_code(0);
}

#[test]
fn named_issues_only_are_checked() {
    let project = Project::example();
    project.edit(ISSUE, BRIEFING, "[briefing](/briefings/human-rights-act/)");
    project.run(&["check", OTHER_ISSUE]).expect_code(0);
    project.run(&["check", ISSUE]).expect_code(1);
}

#[test]
fn exit_code_2_when_a_named_issue_does_not_exist() {
    let project = Project::example();
    let out = project.run(&["check", "issues/2099-01-01.toml"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("issues/2099-01-01.toml"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn exit_code_2_when_the_configuration_does_not_exist() {
    let project = Project::example();
    let out = project.run(&["check", "--config", "absent.toml"]);
    out.expect_code(2);
    assert!(out.stderr.contains("absent.toml"), "{}", out.stderr);
    assert_eq!(out.stdout, "");
}

#[test]
fn exit_code_2_when_the_subscriber_file_does_not_exist() {
    let project = Project::example();
    let out = project.run(&["check", "--subscribers", "absent.csv"]);
    out.expect_code(2);
    assert!(out.stderr.contains("absent.csv"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// Audiences

/// Adds a top-level line to `ISSUE` after its date; returns its line.
fn add_issue_line(project: &Project, line: &str) -> usize {
    edit_issue(
        project,
        "date = 2022-07-13\n",
        &format!("date = 2022-07-13\n{line}\n"),
    ) + 1
}

/// Adds a line to the `From the blog` section of `ISSUE`; returns its line.
fn add_blog_section_line(project: &Project, line: &str) -> usize {
    project.edit(
        ISSUE,
        "heading = \"From the blog\"\n",
        &format!("heading = \"From the blog\"\n{line}\n"),
    );
    line_of(project, ISSUE, line)
}

#[test]
fn unknown_audience_column() {
    let project = Project::example();
    let line = add_issue_line(&project, "audience = { City_Name = \"London\" }");
    let found = expect_only(
        &project,
        "unknown-audience-column",
        Error,
        ISSUE,
        Some(line),
    );
    let message = found["message"].as_str().unwrap();
    assert!(
        message.contains("`City_Name`") && message.contains("did you mean `city`?"),
        "{found}"
    );
}

#[test]
fn unknown_audience_column_in_a_section_exclude() {
    let project = Project::example();
    let line = add_blog_section_line(&project, "exclude = { tag = \"donor\" }");
    let found = expect_only(
        &project,
        "unknown-audience-column",
        Error,
        ISSUE,
        Some(line),
    );
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .starts_with("`section.exclude` names the column `tag`"),
        "{found}"
    );
}

#[test]
fn a_column_header_written_differently_still_names_the_column() {
    let project = Project::example();
    project.edit(SUBSCRIBERS, ",status,city\n", ",status,Home City\n");
    add_issue_line(&project, "audience = { \"home city\" = \"Leeds\" }");
    project.run(&["check"]).expect_code(0);
}

#[test]
fn empty_audience() {
    let project = Project::example();
    let line = add_issue_line(&project, "audience = {}");
    let found = expect_only(&project, "empty-audience", Error, ISSUE, Some(line));
    assert_eq!(found["column"], 12);
}

#[test]
fn audience_of_the_wrong_type() {
    let project = Project::example();
    let line = add_issue_line(&project, "audience = [\"London\"]");
    let found = expect_only(&project, "wrong-type", Error, ISSUE, Some(line));
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .contains("`audience` must be a table of column = value"),
        "{found}"
    );
}

#[test]
fn audience_matches_nobody() {
    let project = Project::example();
    let line = add_issue_line(&project, "audience = { city = \"Paris\" }");
    let found = expect_only(
        &project,
        "audience-matches-nobody",
        Error,
        ISSUE,
        Some(line),
    );
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .contains("matches none of the 10 subscribed addresses"),
        "{found}"
    );
}

#[test]
fn a_section_audience_that_matches_nobody_the_issue_goes_to() {
    let project = Project::example();
    add_issue_line(&project, "audience = { city = \"London\" }");
    let line = add_blog_section_line(&project, "audience = { city = \"Leeds\" }");
    expect_only(
        &project,
        "audience-matches-nobody",
        Error,
        ISSUE,
        Some(line),
    );
}

#[test]
fn a_section_audience_that_matches_everyone_is_a_warning() {
    let project = Project::example();
    let line = add_blog_section_line(&project, "exclude = { city = \"Paris\" }");
    let found = expect_only(
        &project,
        "audience-matches-everyone",
        Warning,
        ISSUE,
        Some(line),
    );
    assert!(
        found["message"]
            .as_str()
            .unwrap()
            .contains("includes all 10 subscribers"),
        "{found}"
    );
}

#[test]
fn the_reach_of_each_issue_and_section_is_printed() {
    let project = Project::example();
    add_issue_line(
        &project,
        "audience = { city = [\"London\", \"Leeds\", \"Hove, East Sussex\"] }",
    );
    add_blog_section_line(&project, "audience = { city = \"leeds\" }");
    let out = project.run(&["check"]);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "reach\n  issues/2022-07-13.toml: 4 of 10 subscribed (city = london | leeds | hove, east sussex)\n    section 3 `From the blog`: 1 (city = leeds)\n\n0 errors, 0 warnings\n"
    );
    let out = project.run(&["check", "--format", "json"]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        report["reach"],
        json!([{
            "file": "issues/2022-07-13.toml",
            "audience": "city = london | leeds | hove, east sussex",
            "subscribed": 10,
            "reaches": 4,
            "sections": [{
                "section": 3,
                "heading": "From the blog",
                "audience": "city = leeds",
                "reaches": 1
            }]
        }])
    );
}
