//! Property tests (proptest) of the parsers and encoders that take outside
//! input, through the library's public API:
//!
//! * the subscriber CSV reader never panics on arbitrary bytes, and the line
//!   numbers of its rows and problems only go up;
//! * merge fields parse and fill without panicking;
//! * Markdown → plain text never makes a line over 78 columns unless it holds
//!   one word (a URL), and never loses a link's URL;
//! * the issue parser never panics on arbitrary text;
//! * a message built for a subscriber with any name at all has exactly our
//!   headers, no line broken by the name, and parses back;
//! * with merge fields in the subject, the letter and a heading, any values
//!   at all keep the headers ours, the Subject reads back as filled in, and
//!   the text part within 78 columns (but for a line of one long word).
//!
//! (cargo fuzz needs a nightly toolchain, which this project does not use;
//! these run on stable with the rest of the suite.) Cases that once failed
//! are kept below as plain regression tests.

mod support;

use std::io::Write;

use mail_parser::MessageParser;
use newsletter::model::subscribers::{Subscriber, SubscriberReader, SubscriptionStatus};
use newsletter::render::markdown::Markdown;
use newsletter::render::merge::MergeText;
use newsletter::render::text::{TextWriter, WIDTH};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use unicode_width::UnicodeWidthStr;

// ---------------------------------------------------------------------------
// The subscriber CSV reader
// ---------------------------------------------------------------------------

/// Reads `bytes` as a subscriber file; returns the line of every row and
/// problem, in order (or nothing if the file is refused as a whole).
fn csv_lines(bytes: &[u8]) -> Vec<u64> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(bytes).unwrap();
    file.flush().unwrap();
    let Ok(reader) = SubscriberReader::open(file.path()) else {
        return Vec::new();
    };
    let lines = reader
        .map(|row| match row {
            Ok(s) => s.line,
            Err(problem) => problem.line(),
        })
        .collect();
    // The survey reads the same file its own way (and sorts): no panic there.
    let _ = newsletter::model::subscribers::survey(file.path());
    lines
}

/// Bytes that look like a subscriber file more often than random ones do.
fn csv_like() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop_oneof![
        Just("ann@example.org".to_string()),
        Just("Bob@Example.ORG".to_string()),
        Just("".to_string()),
        Just("subscribed".to_string()),
        Just("unsubscribed".to_string()),
        "[a-zA-Z@. ]{0,12}",
        any::<String>(),
    ];
    let piece = prop_oneof![
        cell,
        Just(",".to_string()),
        Just(";".to_string()),
        Just("\t".to_string()),
        Just("\"".to_string()),
        Just("\"\"".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\r".to_string()),
    ];
    (
        prop_oneof![
            Just(String::new()),
            Just("email,first_name,last_name,status\n".to_string()),
            Just("\u{feff}email;first_name\n".to_string()),
            Just("E-mail\tFirst Name\n".to_string()),
        ],
        prop::collection::vec(piece, 0..60),
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(|(head, pieces, tail)| {
            let mut bytes = head.into_bytes();
            bytes.extend(pieces.concat().into_bytes());
            bytes.extend(tail);
            bytes
        })
}

fn assert_increasing(lines: &[u64]) -> Result<(), TestCaseError> {
    for pair in lines.windows(2) {
        prop_assert!(pair[0] < pair[1], "line numbers go back: {lines:?}");
    }
    prop_assert!(lines.iter().all(|l| *l >= 1), "{lines:?}");
    Ok(())
}

proptest! {
    #[test]
    fn csv_reader_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let lines = csv_lines(&bytes);
        assert_increasing(&lines)?;
    }

    #[test]
    fn csv_reader_survives_csv_like_bytes(bytes in csv_like()) {
        let lines = csv_lines(&bytes);
        assert_increasing(&lines)?;
        // No row starts after the last physical line.
        let physical = bytes.iter().filter(|b| **b == b'\n' || **b == b'\r').count() as u64 + 1;
        prop_assert!(lines.iter().all(|l| *l <= physical), "{lines:?} > {physical}");
    }
}

// ---------------------------------------------------------------------------
// Merge fields
// ---------------------------------------------------------------------------

fn merge_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("{{".to_string()),
            Just("}}".to_string()),
            Just("|".to_string()),
            Just("first_name".to_string()),
            Just("First Name".to_string()),
            Just("{{first_name|Supporter}}".to_string()),
            any::<String>(),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn merge_fields_parse_and_fill_without_panicking(
        text in merge_like(),
        value in proptest::option::of(any::<String>()),
    ) {
        if let Ok(merge) = MergeText::parse(&text) {
            let filled = merge.fill(|_| value.as_deref());
            for name in merge.fields() {
                prop_assert!(!name.is_empty());
            }
            // Text without a field comes back as it was.
            if !text.contains("{{") {
                prop_assert_eq!(filled, text);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Markdown to plain text
// ---------------------------------------------------------------------------

fn url() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("https://"), Just("http://")],
        "[a-z0-9]{1,20}\\.[a-z]{2,6}",
        "(/[a-zA-Z0-9._~%-]{0,40}){0,4}",
    )
        .prop_map(|(scheme, host, path)| format!("{scheme}{host}{path}"))
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Zé’]{1,12}",
        1 => "[a-z]{60,120}",
        1 => "[\\p{L}\\p{N}\\p{So}]{1,8}",
    ]
}

fn inline() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => word(),
            1 => (word(), url()).prop_map(|(t, u)| format!("[{t}]({u})")),
            1 => url().prop_map(|u| format!("<{u}>")),
            1 => "[a-z]{1,8}@[a-z]{1,8}\\.org".prop_map(|a| format!("[{a}](mailto:{a})")),
            1 => word().prop_map(|w| format!("*{w}*")),
            1 => word().prop_map(|w| format!("**{w}**")),
            1 => word().prop_map(|w| format!("`{w}`")),
            1 => Just("<b>raw</b>".to_string()),
        ],
        1..30,
    )
    .prop_map(|words| words.join(" "))
}

fn block() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => inline(),
        1 => inline().prop_map(|t| format!("# {t}")),
        1 => inline().prop_map(|t| format!("### {t}")),
        1 => prop::collection::vec(inline(), 1..4)
            .prop_map(|items| items.iter().map(|i| format!("* {i}")).collect::<Vec<_>>().join("\n")),
        1 => prop::collection::vec(inline(), 1..4)
            .prop_map(|items| items.iter().map(|i| format!("1. {i}")).collect::<Vec<_>>().join("\n")),
        1 => inline().prop_map(|t| format!("> {t}")),
        1 => inline().prop_map(|t| format!("> * {t}\n>   * {t}")),
        1 => inline().prop_map(|t| format!("```\n{t}\n```")),
        1 => Just("---".to_string()),
    ]
}

fn markdown() -> impl Strategy<Value = String> {
    prop::collection::vec(block(), 1..6).prop_map(|blocks| blocks.join("\n\n"))
}

fn to_text(source: &str) -> String {
    let mut w = TextWriter::default();
    Markdown::parse(source).to_text(&mut w);
    w.finish()
}

/// Quote markers, bullets and list numbers a line may start with.
fn is_marker(word: &str) -> bool {
    word == ">"
        || word == "*"
        || word
            .strip_suffix('.')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn check_text(source: &str) -> Result<(), TestCaseError> {
    let text = to_text(source);
    for line in text.lines() {
        let words = line.split_whitespace().filter(|w| !is_marker(w)).count();
        prop_assert!(
            line.width() <= WIDTH || words <= 1,
            "line of {} columns with {words} words: {line:?}\nfrom:\n{source}",
            line.width()
        );
    }
    for link in Markdown::links(source) {
        let url = link.url.trim();
        if !newsletter::model::url::safe_url(url) {
            continue;
        }
        let shown = url.strip_prefix("mailto:").unwrap_or(url);
        prop_assert!(
            text.contains(shown),
            "the URL `{url}` is lost:\n{text}\nfrom:\n{source}"
        );
    }
    Ok(())
}

proptest! {
    #[test]
    fn markdown_text_fits_78_columns_and_keeps_every_url(source in markdown()) {
        check_text(&source)?;
    }

    #[test]
    fn markdown_never_panics(source in any::<String>()) {
        let _ = to_text(&source);
        let mut html = String::new();
        Markdown::parse(&source).to_html(
            &newsletter::render::markdown::HtmlStyle {
                link_colour: "#000",
                rule_colour: "#ccc",
                heading_offset: 1,
            },
            &mut html,
        );
    }
}

// ---------------------------------------------------------------------------
// The issue parser
// ---------------------------------------------------------------------------

fn issue_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("subject = \"Hello\"".to_string()),
        Just("date = 2022-07-13".to_string()),
        Just("date = 2022-02-30".to_string()),
        Just("greeting = \"Dear {{first_name|Supporter}}\"".to_string()),
        Just("letter = \"\"\"\nHi\n\"\"\"".to_string()),
        Just("[sign-off]\nname = \"Mia\"".to_string()),
        Just("[[section]]\nheading = \"News\"\nposts = [\"a\"]".to_string()),
        Just("[call-to-action]\ntext = \"Give\"\nurl = \"https://x.org\"".to_string()),
        "[a-z-]{1,10} = [0-9\"\\[\\]{}a-z.:-]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #[test]
    fn the_issue_parser_never_panics(text in issue_like()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2022-07-13.toml");
        std::fs::write(&path, &text).unwrap();
        let _ = newsletter::model::issue::Issue::load(&path);
    }
}

// ---------------------------------------------------------------------------
// Headers of a built message
// ---------------------------------------------------------------------------

const HEADERS: &[&str] = &[
    "auto-submitted",
    "content-type",
    "date",
    "from",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "message-id",
    "mime-version",
    "precedence",
    "reply-to",
    "subject",
    "to",
];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop_oneof![
                Just("\r\n".to_string()),
                Just("\n".to_string()),
                Just("\r".to_string()),
                Just("Bcc: victim@evil.example".to_string()),
                Just("\r\n\r\n<html>".to_string()),
                Just("\"".to_string()),
                Just("=?utf-8?b?QmNjOg==?=".to_string()),
                Just("<a@b.c>".to_string()),
                Just(",".to_string()),
                Just("\u{0}".to_string()),
                Just("\u{85}".to_string()),
                Just("\u{2028}".to_string()),
                "[a-zA-Zé ]{0,10}",
                "\\PC{0,10}",
            ],
            0..10,
        )
        .prop_map(|parts| parts.concat()),
        "[a-zA-Z]{70,300}",
    ]
}

/// Checks one built message; `Err` says what is wrong.
fn check_message(raw: &[u8], email: &str) -> Result<(), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of the header section")?;
    let block = std::str::from_utf8(&raw[..end]).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    for line in block.split("\r\n") {
        if line.contains(['\r', '\n']) {
            return Err(format!("bare CR or LF in {line:?}"));
        }
        if line.len() > 998 {
            return Err(format!("a line of {} characters", line.len()));
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let (name, _) = line
            .split_once(':')
            .ok_or_else(|| format!("not a header line: {line:?}"))?;
        names.push(name.to_ascii_lowercase());
    }
    names.sort();
    if names != HEADERS {
        return Err(format!("headers {names:?}"));
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or("does not parse")?;
    let to = message
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .ok_or("no To address")?;
    if to != email {
        return Err(format!("To reads back as `{to}`, not `{email}`"));
    }
    if message.body_text(0).is_none() || message.body_html(0).is_none() {
        return Err("a part is missing".into());
    }
    Ok(())
}

/// The example project's configuration and issue, rendered once.
struct Example {
    _project: support::project::Project,
    config: newsletter::model::config::Config,
    loaded: newsletter::render::Loaded,
}

fn example() -> Example {
    let project = support::project::Project::example();
    let config = newsletter::model::config::Config::load(&project.path("newsletter.toml")).unwrap();
    let loaded =
        newsletter::render::load_issue(&config, &project.path("issues/2022-07-13.toml")).unwrap();
    Example {
        _project: project,
        config,
        loaded,
    }
}

fn build(example: &Example, first: &str, last: &str, email: &str) -> Vec<u8> {
    let columns = newsletter::model::subscribers::Columns::minimal();
    let signer = newsletter::token::Signer::new(&example.config.list.id, b"property-secret");
    let composer = newsletter::render::message::Composer::new(
        &example.config,
        &example.loaded.rendered,
        &columns,
        signer,
        "",
    )
    .unwrap();
    let mut subscriber = Subscriber::test(email, 2);
    subscriber.first_name = first.to_string();
    subscriber.last_name = last.to_string();
    subscriber.status = SubscriptionStatus::Subscribed;
    composer.build(&subscriber).unwrap().message.formatted()
}

#[test]
fn any_name_makes_a_well_formed_message_without_injected_headers() {
    let example = example();
    let emails = prop_oneof![
        Just("ann@example.org"),
        Just("ann+news@example.org"),
        Just("zoë@bücher.example"),
    ];
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 200,
        ..RunnerConfig::default()
    });
    runner
        .run(&(name(), name(), emails), |(first, last, email)| {
            let raw = build(&example, &first, &last, email);
            check_message(&raw, email).map_err(|e| {
                TestCaseError::fail(format!(
                    "{e}\nfirst {first:?} last {last:?}\n{}",
                    String::from_utf8_lossy(&raw[..raw.len().min(1500)])
                ))
            })
        })
        .unwrap();
}

// ---------------------------------------------------------------------------
// Merge fields outside the greeting
// ---------------------------------------------------------------------------

/// The example issue with merge fields in the subject, a letter paragraph
/// and a section heading, rendered once.
fn merge_example() -> Example {
    let project = support::project::Project::example();
    project
        .edit(
            "issues/2022-07-13.toml",
            "subject = \"Rwanda,",
            "subject = \"{{first_name|Friend}} {{last_name}}: Rwanda,",
        )
        .edit(
            "issues/2022-07-13.toml",
            "On 22 June",
            "* {{first_name|Friend}} {{last_name}}, on 22 June",
        )
        .edit(
            "issues/2022-07-13.toml",
            "heading = \"Refugee Week events\"",
            "heading = \"Refugee Week events for {{last_name|you}}\"",
        );
    let config = newsletter::model::config::Config::load(&project.path("newsletter.toml")).unwrap();
    let loaded =
        newsletter::render::load_issue(&config, &project.path("issues/2022-07-13.toml")).unwrap();
    Example {
        _project: project,
        config,
        loaded,
    }
}

/// The text part keeps to the width; the Subject reads back as filled.
fn check_merged(raw: &[u8], first: &str, last: &str) -> Result<(), String> {
    check_message(raw, "ann@example.org")?;
    let message = MessageParser::default()
        .parse(raw)
        .ok_or("does not parse")?;
    let text = message.body_text(0).ok_or("no text part")?;
    for line in text.lines() {
        let words = line.split_whitespace().filter(|w| !is_marker(w)).count();
        if line.width() > WIDTH && words > 1 {
            return Err(format!(
                "text line of {} columns with {words} words: {line:?}",
                line.width()
            ));
        }
    }
    let value = |v: &str, fallback: &str| {
        newsletter::render::merge::resolve(Some(v), fallback).into_owned()
    };
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let wanted = flat(&format!(
        "{} {}: Rwanda, Refugees, and Our Rights under threat",
        value(first, "Friend"),
        value(last, "")
    ));
    let subject = flat(message.subject().unwrap_or_default());
    if subject != wanted {
        return Err(format!("Subject reads back as {subject:?}, not {wanted:?}"));
    }
    let html = message.body_html(0).ok_or("no HTML part")?;
    if html.contains("<!--slot:") || text.contains("<!--slot:") {
        return Err("an unfilled hole".into());
    }
    Ok(())
}

#[test]
fn any_merge_value_keeps_the_headers_and_the_text_width() {
    let example = merge_example();
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 200,
        ..RunnerConfig::default()
    });
    runner
        .run(&(name(), name()), |(first, last)| {
            let raw = build(&example, &first, &last, "ann@example.org");
            check_merged(&raw, &first, &last).map_err(|e| {
                TestCaseError::fail(format!(
                    "{e}\nfirst {first:?} last {last:?}\n{}",
                    String::from_utf8_lossy(&raw[..raw.len().min(1500)])
                ))
            })
        })
        .unwrap();
}

// ---------------------------------------------------------------------------
// Regression tests: inputs that once broke a property
// ---------------------------------------------------------------------------

#[test]
fn the_message_check_can_fail() {
    let example = example();
    let raw = build(&example, "Ann", "Lee", "ann@example.org");
    assert_eq!(check_message(&raw, "ann@example.org"), Ok(()));
    let mut injected = raw.clone();
    let at = injected.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    injected.splice(at..at, b"\r\nBcc: victim@evil.example".iter().copied());
    assert!(check_message(&injected, "ann@example.org").is_err());
}

/// Found by the property above: lettre panicked ("a Display implementation
/// returned an error unexpectedly") on a display name with a line break, when
/// a `Subscriber` was made without the reader's cleaning.
#[test]
fn a_name_with_a_line_break_does_not_crash_the_composer() {
    let example = example();
    for (first, last) in [
        ("A\r\n", "\u{1e4d0}"),
        ("Eve\r\nBcc: x@evil.example", "Smith"),
        ("\n", "\r"),
    ] {
        let raw = build(&example, first, last, "ann@example.org");
        assert_eq!(
            check_message(&raw, "ann@example.org"),
            Ok(()),
            "{first:?} {last:?}"
        );
    }
}

/// Found by the merge property: a value written like an encoded word was
/// passed through by lettre and decoded by the reader (`Bcc:`), and a run
/// of spaces between two encoded words was lost.
#[test]
fn merge_values_read_back_as_written_in_the_subject() {
    let example = merge_example();
    for (first, last) in [
        ("", "=?utf-8?b?QmNjOg==?="),
        ("", "é\r\n<a@b.c>é"),
        ("Zoë  Łucja", "李"),
    ] {
        let raw = build(&example, first, last, "ann@example.org");
        assert_eq!(
            check_merged(&raw, first, last),
            Ok(()),
            "{first:?} {last:?}"
        );
    }
}
