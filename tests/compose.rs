//! Composing an issue: what `newsletter preview` writes, and how it reports
//! mistakes in the files an issue is made from.

mod support;

use std::fs;
use std::path::PathBuf;

use mail_parser::{MessageParser, MimeHeaders};
use support::project::{Project, repo};
use unicode_width::UnicodeWidthStr;

const ISSUE: &str = "issues/2022-07-13.toml";

/// The subscriber the golden files are rendered for (a non-ASCII name).
const GOLDEN_SUBSCRIBER: &str = "zoe.brightman@example.com";

/// Runs `preview ISSUE --out out ARGS…`, expects success, and returns
/// `index.html` and `index.txt`.
fn preview(project: &Project, issue: &str, args: &[&str]) -> (String, String) {
    let mut all = vec!["preview", issue, "--out", "out"];
    all.extend_from_slice(args);
    project.run(&all).expect_code(0);
    (
        project.read("out/index.html"),
        project.read("out/index.txt"),
    )
}

/// Runs `preview ISSUE`, expects exit code 2 and no files, and returns stderr.
fn preview_fails(project: &Project, issue: &str) -> String {
    let out = project.run(&["preview", issue, "--out", "out"]);
    out.expect_code(2);
    assert!(
        !project.path("out").exists(),
        "a failed preview wrote files"
    );
    out.stderr
}

/// `file:line:column` of the first `needle` in a project file, the way
/// errors print it (1-based, column in characters).
fn location(project: &Project, file: &str, needle: &str) -> String {
    let text = project.read(file);
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in {file}"));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    format!("{file}:{line}:{column}")
}

/// `file:line:column` of what follows the first `prefix`, e.g. a value
/// after `key = `.
fn location_after(project: &Project, file: &str, prefix: &str) -> String {
    let at = location(project, file, prefix);
    let (line, column) = at.rsplit_once(':').unwrap();
    let column: usize = column.parse().unwrap();
    format!("{line}:{}", column + prefix.chars().count())
}

/// `file:line:` of the first `needle`.
fn line_of(project: &Project, file: &str, needle: &str) -> String {
    let at = location(project, file, needle);
    format!("{}:", at.rsplit_once(':').unwrap().0)
}

#[track_caller]
fn assert_mentions(stderr: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(stderr.contains(w), "stderr lacks `{w}`:\n{stderr}");
    }
}

// ---------------------------------------------------------------- golden files

/// Every tag in an HTML text, `<` to `>`, comments (and Outlook's
/// conditional comments) left out.
fn tags(html: &str) -> Vec<&str> {
    let mut tags = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start..];
        let end = if rest.starts_with("<!--") {
            rest.find("-->").map_or(rest.len(), |i| i + 3)
        } else {
            let end = rest.find('>').map_or(rest.len(), |i| i + 1);
            tags.push(&rest[..end]);
            end
        };
        rest = &rest[end..];
    }
    tags
}

/// Whether every element is closed in order; the first problem if not.
fn check_nesting(html: &str) -> Result<(), String> {
    const VOID: [&str; 6] = ["meta", "img", "br", "hr", "input", "link"];
    let mut open: Vec<&str> = Vec::new();
    for tag in tags(html) {
        let inner = tag.trim_start_matches('<').trim_end_matches('>');
        if inner.starts_with('!') {
            continue;
        }
        let element = |s: &str| -> String {
            s.split(|c: char| c.is_whitespace() || c == '/')
                .find(|w| !w.is_empty())
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        if let Some(closing) = inner.strip_prefix('/') {
            let closing = element(closing);
            match open.pop() {
                Some(o) if element(o) == closing => {}
                other => return Err(format!("</{closing}> closes {other:?}")),
            }
        } else if !VOID.contains(&element(inner).as_str()) && !inner.ends_with('/') {
            open.push(inner);
        }
    }
    match open.last() {
        None => Ok(()),
        Some(o) => Err(format!("<{o}> is never closed")),
    }
}

fn golden_path(name: &str) -> PathBuf {
    repo().join("tests/golden").join(name)
}

/// Compares `actual` with `tests/golden/NAME`, or writes it there when
/// `UPDATE_GOLDEN=1`.
#[track_caller]
fn assert_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    let how = "to accept the new output, run `UPDATE_GOLDEN=1 cargo test --test compose` \
               and review `git diff tests/golden`";
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; {how}", path.display()));
    if let Some(difference) = first_difference(&expected, actual) {
        panic!(
            "{} differs from the rendered output\n{difference}\n{how}",
            path.display()
        );
    }
}

/// Where two texts first differ: line number and both lines (cut around the
/// first differing character when long), or `None` when they are equal.
fn first_difference(expected: &str, actual: &str) -> Option<String> {
    if expected == actual {
        return None;
    }
    let mut e = expected.split_inclusive('\n');
    let mut a = actual.split_inclusive('\n');
    for number in 1.. {
        match (e.next(), a.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (x, y) => {
                let column = match (x, y) {
                    (Some(x), Some(y)) => {
                        x.chars().zip(y.chars()).take_while(|(p, q)| p == q).count()
                    }
                    _ => 0,
                };
                let show = |line: Option<&str>| {
                    line.map_or("(end of file)".to_string(), |l| {
                        format!("{:?}", excerpt(l, column))
                    })
                };
                return Some(format!(
                    "first difference at line {number}, column {}:\n  expected: {}\n  actual:   {}",
                    column + 1,
                    show(x),
                    show(y)
                ));
            }
        }
    }
    unreachable!()
}

/// Up to 60 characters either side of character `at`.
fn excerpt(line: &str, at: usize) -> String {
    let chars: Vec<char> = line.chars().collect();
    let start = at.saturating_sub(60);
    let end = (at + 60).min(chars.len());
    let mut s: String = chars[start..end].iter().collect();
    if start > 0 {
        s.insert(0, '…');
    }
    if end < chars.len() {
        s.push('…');
    }
    s
}

/// A text line is fine if it fits in 78 display columns, or if it is one
/// URL (perhaps indented, in `<>`, and followed by one punctuation mark),
/// which must not be broken.
fn line_fits(line: &str) -> bool {
    if line.width() <= 78 {
        return true;
    }
    let word = line.trim();
    let word = word.strip_suffix(['.', ',', ';', ':', ')']).unwrap_or(word);
    let word = word
        .strip_prefix('<')
        .and_then(|w| w.strip_suffix('>'))
        .unwrap_or(word);
    (word.starts_with("https://") || word.starts_with("http://"))
        && !word.contains(char::is_whitespace)
}

#[track_caller]
fn assert_lines_fit(text: &str) {
    for (i, line) in text.lines().enumerate() {
        assert!(
            line_fits(line),
            "index.txt line {} is {} columns wide:\n{line}",
            i + 1,
            line.width()
        );
    }
}

#[test]
fn example_issues_render_as_the_golden_files() {
    for id in ["2022-07-13", "2020-12-10"] {
        let project = Project::example();
        let (html, text) = preview(
            &project,
            &format!("issues/{id}.toml"),
            &["--as", GOLDEN_SUBSCRIBER],
        );
        for part in [&html, &text] {
            assert!(!part.contains("<!--slot:"), "an unfilled hole in {id}");
        }
        assert_lines_fit(&text);
        check_nesting(&html).unwrap_or_else(|e| panic!("{id}.html: {e}"));
        assert_golden(&format!("{id}.html"), &html);
        assert_golden(&format!("{id}.txt"), &text);
    }
}

#[test]
fn golden_comparison_points_at_the_first_differing_line() {
    let report = first_difference("a\nb\nc\n", "a\nB\nc\n").unwrap();
    assert!(report.contains("line 2, column 1"), "{report}");
    assert!(
        report.contains("\"b\\n\"") && report.contains("\"B\\n\""),
        "{report}"
    );
    let report = first_difference("a\n", "a\nextra\n").unwrap();
    assert!(
        report.contains("line 2") && report.contains("(end of file)"),
        "{report}"
    );
    assert_eq!(first_difference("same\n", "same\n"), None);
}

// ---------------------------------------------------------------- message.eml

#[test]
fn message_is_multipart_alternative_with_list_headers() {
    let subscribers = [
        ("zoe.brightman@example.com", "Zoë Brightman", "Zoë"),
        ("lukasz.wojcik@example.com", "Łukasz Wójcik", "Łukasz"),
        ("li.wei@example.org", "李 伟", "李"),
    ];
    for (email, name, first_name) in subscribers {
        let project = Project::example();
        let (html, text) = preview(&project, ISSUE, &["--as", email]);
        let raw = fs::read(project.path("out/message.eml")).unwrap();
        let message = MessageParser::default()
            .parse(&raw)
            .expect("message.eml parses");

        let root = message.root_part().content_type().unwrap();
        assert_eq!(
            (root.ctype(), root.subtype()),
            ("multipart", Some("alternative"))
        );
        let kinds: Vec<String> = message.parts[1..]
            .iter()
            .map(|p| {
                let t = p.content_type().unwrap();
                format!("{}/{}", t.ctype(), t.subtype().unwrap_or(""))
            })
            .collect();
        assert_eq!(kinds, ["text/plain", "text/html"], "parts in order");

        let from = message.from().and_then(|a| a.first()).unwrap();
        assert_eq!(
            (from.name(), from.address()),
            (
                Some("René Cassin"),
                Some("newsletter@renecassin.example.org")
            )
        );
        let to = message.to().and_then(|a| a.first()).unwrap();
        assert_eq!((to.name(), to.address()), (Some(name), Some(email)));
        let raw_to = message.header_raw("To").unwrap();
        assert!(raw_to.is_ascii(), "To is not encoded: {raw_to}");
        assert_eq!(
            message.subject(),
            Some("Rwanda, Refugees, and Our Rights under threat")
        );
        assert!(
            message
                .message_id()
                .is_some_and(|id| id.ends_with("@renecassin.example.org")),
            "Message-ID: {:?}",
            message.message_id()
        );
        assert!(
            message
                .header_raw("List-Id")
                .is_some_and(|v| v.contains("<supporters.renecassin.example.org>")),
            "List-Id: {:?}",
            message.header_raw("List-Id")
        );
        assert_eq!(
            message.header_raw("List-Unsubscribe-Post").map(str::trim),
            Some("List-Unsubscribe=One-Click")
        );
        let targets = angle_bracketed(message.header_raw("List-Unsubscribe").unwrap());
        let [https, mailto] = &targets[..] else {
            panic!("List-Unsubscribe targets: {targets:?}");
        };
        assert!(
            https.starts_with("https://news.renecassin.example.org/unsubscribe/"),
            "{https}"
        );
        assert!(
            mailto.starts_with("mailto:unsubscribe@renecassin.example.org"),
            "{mailto}"
        );

        let greeting = format!("Dear {first_name}");
        let body_text = message.body_text(0).unwrap().replace("\r\n", "\n");
        let body_html = message.body_html(0).unwrap().replace("\r\n", "\n");
        for (part, body) in [("text", &body_text), ("html", &body_html)] {
            assert!(
                body.contains(&greeting),
                "no `{greeting}` in the {part} part"
            );
            assert!(
                body.contains(https.as_str()),
                "no unsubscribe URL in the {part} part"
            );
        }
        assert_eq!(body_text, text, "index.txt is the text part that is sent");
        assert_eq!(body_html, html, "index.html is the HTML part that is sent");
    }
}

/// The `<…>` items of a header value such as `List-Unsubscribe`.
fn angle_bracketed(value: &str) -> Vec<String> {
    value
        .split('<')
        .skip(1)
        .filter_map(|s| s.split_once('>'))
        .map(|(inside, _)| inside.split_whitespace().collect())
        .collect()
}

#[test]
fn greeting_falls_back_when_first_name_is_empty() {
    let project = Project::example();
    assert!(
        project
            .read("subscribers.example.csv")
            .contains("anonymous.supporter@example.com,,"),
        "the example no longer has a subscriber without a first name"
    );
    let (html, text) = preview(
        &project,
        ISSUE,
        &["--as", "anonymous.supporter@example.com"],
    );
    assert!(html.contains(">Dear Supporter<"), "HTML greeting");
    assert!(text.contains("\nDear Supporter\n"), "text greeting");
}

// ---------------------------------------------------------------- merge fields

/// The example issue with a merge field (and a fallback) in every text a
/// reader sees, and a subscriber file of awkward values.
fn merge_project() -> Project {
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
            "preheader = \"For {{first_name|you}}: we are",
        )
        .edit(ISSUE, "On 22 June", "{{first_name|Friend}}, on 22 June")
        .edit(
            ISSUE,
            "heading = \"Refugee Week events\"",
            "heading = \"Refugee Week events for {{first_name|you}}\"",
        )
        .edit(
            ISSUE,
            "past-events = true",
            "body = \"For Refugee Week 2022, {{first_name|friend}}, we ran these.\"\npast-events = true",
        )
        .edit(
            ISSUE,
            "Please make a donation",
            "{{first_name|Friend}}, please make a donation",
        )
        .edit(
            ISSUE,
            "text = \"Donate today\"",
            "text = \"Donate today, {{first_name|friend}}\"",
        )
        .write(
            "merge.csv",
            "email,first_name,last_name,status\n\
             zoe@example.org,Zoë-Łucja 李,Brightman,subscribed\n\
             anon@example.org,,,subscribed\n\
             long@example.org,María de los Ángeles Fernández-Castillo de la Vega y Montenegro-Álvarez,X,subscribed\n\
             script@example.org,<script>alert(1)</script>,X,subscribed\n\
             eve@example.org,\"Eve\r\nBcc: victim@evil.example\r\n\r\n<html>\",X,subscribed\n",
        );
    project
}

/// One previewed message: the decoded Subject, the raw header block, the
/// HTML and text parts as sent; checks index.html/index.txt are those parts.
struct Sent {
    subject: String,
    headers: String,
    html: String,
    text: String,
}

fn preview_merged(project: &Project, email: &str) -> Sent {
    let (html, text) = preview(
        project,
        ISSUE,
        &["--subscribers", "merge.csv", "--as", email],
    );
    let raw = fs::read(project.path("out/message.eml")).unwrap();
    let message = MessageParser::default()
        .parse(&raw)
        .expect("message.eml parses");
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let sent = Sent {
        subject: message.subject().unwrap_or_default().to_string(),
        headers: String::from_utf8(raw[..end].to_vec()).unwrap(),
        html: message.body_html(0).unwrap().replace("\r\n", "\n"),
        text: message.body_text(0).unwrap().replace("\r\n", "\n"),
    };
    assert_eq!(sent.text, text, "index.txt is the text part that is sent");
    assert_eq!(sent.html, html, "index.html is the HTML part that is sent");
    for (part, body) in [("text", &sent.text), ("html", &sent.html)] {
        assert!(
            !body.contains("{{"),
            "a merge field left in the {part} part"
        );
        assert!(
            !body.contains("<!--slot:"),
            "an unfilled hole in the {part} part"
        );
        assert!(
            !body.contains(|c| ('\u{FDD0}'..='\u{FDEF}').contains(&c)),
            "a placeholder left in the {part} part"
        );
    }
    assert_lines_fit(&sent.text);
    check_nesting(&sent.html).unwrap_or_else(|e| panic!("{email}: {e}"));
    sent
}

/// Words of a text with runs of white space as one space (the text part
/// wraps lines anywhere).
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn merge_fields_are_filled_everywhere_with_fallbacks() {
    let project = merge_project();
    for (email, name, fallback_cap, fallback) in [
        (
            "zoe@example.org",
            "Zoë-Łucja 李",
            "Zoë-Łucja 李",
            "Zoë-Łucja 李",
        ),
        ("anon@example.org", "", "Friend", "friend"),
    ] {
        let sent = preview_merged(&project, email);
        let you = if name.is_empty() { "you" } else { name };
        let subject = format!("{fallback_cap}: Rwanda, Refugees, and Our Rights under threat");
        assert_eq!(sent.subject, subject, "decoded Subject for {email}");
        let raw_subject = sent
            .headers
            .split("\r\n")
            .find(|l| l.starts_with("Subject:"))
            .unwrap();
        assert!(
            raw_subject.is_ascii(),
            "Subject is not encoded: {raw_subject}"
        );
        assert_eq!(
            !name.is_empty(),
            raw_subject.contains("=?"),
            "encoded words only for non-ASCII: {raw_subject}"
        );

        let html = &sent.html;
        let text = flat(&sent.text);
        let expected = [
            // The preheader is in the HTML only.
            (format!("For {you}: we are extremely concerned"), false),
            (format!("{fallback_cap}, on 22 June the government"), true),
            (format!("Refugee Week events for {you}"), true),
            (format!("For Refugee Week 2022, {fallback}, we ran"), true),
            (format!("{fallback_cap}, please make a donation"), true),
            (format!("Donate today, {fallback}"), true),
        ];
        for (wanted, in_text) in &expected {
            assert!(
                html.contains(wanted.as_str()),
                "HTML for {email} lacks `{wanted}`"
            );
            if *in_text {
                assert!(
                    text.contains(wanted.as_str()),
                    "text for {email} lacks `{wanted}`"
                );
            }
        }
        assert!(
            html.contains(&format!("<title>{subject}</title>")),
            "HTML title for {email}"
        );
        // The heading keeps its last two words on one line.
        let heading = subject.replace("under threat", "under\u{a0}threat");
        assert!(
            html.contains(&format!(">{heading}</h1>")),
            "HTML heading for {email}"
        );
        assert!(text.contains(&subject), "text heading for {email}");
        assert!(
            html.contains("href=\"https://www.renecassin.org/donate/\""),
            "the button's link is the same for everyone"
        );

        // A heading with a field is underlined to its filled width.
        let lines: Vec<&str> = sent.text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("Refugee Week events for"))
            .unwrap();
        assert_eq!(
            lines[at + 1],
            "-".repeat(lines[at].width()),
            "underline of {:?}",
            lines[at]
        );
    }
}

#[test]
fn a_long_value_is_wrapped_in_the_text_part() {
    let project = merge_project();
    let name = "María de los Ángeles Fernández-Castillo de la Vega y Montenegro-Álvarez";
    let sent = preview_merged(&project, "long@example.org");
    assert_eq!(
        sent.subject,
        format!("{name}: Rwanda, Refugees, and Our Rights under threat")
    );
    let text = flat(&sent.text);
    assert!(
        text.contains(&format!("{name}, on 22 June the government")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Refugee Week events for {name}")),
        "{text}"
    );
    // The subject, underlined as the issue title, wraps too.
    assert!(
        sent.text.lines().any(|l| l.starts_with("==")),
        "{}",
        sent.text
    );
}

#[test]
fn merge_values_are_escaped_in_html_and_cannot_break_the_subject() {
    let project = merge_project();
    let sent = preview_merged(&project, "script@example.org");
    assert!(!sent.html.contains("<script"), "a value became a tag");
    assert!(
        sent.html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;, on 22 June"),
        "the value is shown as text in the HTML"
    );
    assert!(
        flat(&sent.text).contains("<script>alert(1)</script>, on 22 June"),
        "the text part shows it as it is"
    );
    assert_eq!(
        sent.subject,
        "<script>alert(1)</script>: Rwanda, Refugees, and Our Rights under threat"
    );

    let sent = preview_merged(&project, "eve@example.org");
    assert!(
        sent.subject
            .starts_with("Eve Bcc: victim@evil.example <html>: Rwanda"),
        "{:?}",
        sent.subject
    );
    let names: Vec<String> = sent
        .headers
        .split("\r\n")
        .filter(|l| !l.starts_with([' ', '\t']))
        .map(|l| l.split(':').next().unwrap().to_ascii_lowercase())
        .collect();
    assert!(!names.contains(&"bcc".to_string()), "{}", sent.headers);
    assert_eq!(
        names.iter().filter(|n| *n == "subject").count(),
        1,
        "{}",
        sent.headers
    );
    for line in sent.headers.split("\r\n") {
        assert!(!line.contains(['\r', '\n']), "{line:?}");
    }
}

// ---------------------------------------------------------------- parse errors

#[test]
fn toml_syntax_error_names_file_line_and_column() {
    let project = Project::example();
    project.edit(ISSUE, "under threat\"\n", "under threat\n");
    let stderr = preview_fails(&project, ISSUE);
    // The string is not closed before the end of its line: shown at the
    // quote that opens it, saying what is missing.
    let opening = location_after(&project, ISSUE, "subject = ");
    assert_mentions(
        &stderr,
        &[&format!(
            "{opening}: `subject`: the text that starts here has no closing `\"`"
        )],
    );
}

#[test]
fn unknown_key_in_issue_is_named_with_its_line() {
    let project = Project::example();
    project.edit(ISSUE, "subject =", "subjet =");
    let stderr = preview_fails(&project, ISSUE);
    assert_mentions(&stderr, &[&location(&project, ISSUE, "subjet ="), "subjet"]);
}

#[test]
fn value_of_the_wrong_type_names_the_key() {
    // (text, replacement, what comes before the value, key)
    let cases = [
        (
            "date = 2022-07-13",
            "date = \"yesterday\"",
            "date = ",
            "date",
        ),
        (
            "subject = \"Rwanda, Refugees, and Our Rights under threat\"",
            "subject = 3",
            "subject = ",
            "subject",
        ),
        (
            "name = \"Mia Hasenson-Gross\"",
            "name = 4",
            "name = ",
            "sign-off.name",
        ),
        (
            "\"hands-off-our-human-rights-act\",",
            "\"hands-off-our-human-rights-act\", 7,",
            "\"hands-off-our-human-rights-act\", ",
            "section.posts",
        ),
    ];
    for (old, new, before_value, key) in cases {
        let project = Project::example();
        project.edit(ISSUE, old, new);
        let stderr = preview_fails(&project, ISSUE);
        let at = location_after(&project, ISSUE, before_value);
        assert_mentions(&stderr, &[&at, &format!("`{key}`")]);
    }
}

#[test]
fn missing_required_key_is_named() {
    let project = Project::example();
    project.write(
        "issues/short.toml",
        "subject = \"Hello\"\ndate = 2022-07-13\ngreeting = \"Dear {{first_name}}\"\n\n\
         [sign-off]\nname = \"Mia\"\n",
    );
    let stderr = preview_fails(&project, "issues/short.toml");
    assert_mentions(&stderr, &["issues/short.toml:", "`letter`"]);

    project.write(
        "issues/short.toml",
        "subject = \"Hello\"\ndate = 2022-07-13\ngreeting = \"Dear\"\nletter = \"Hi\"\n\n\
         [sign-off]\nrole = \"Director\"\n",
    );
    let stderr = preview_fails(&project, "issues/short.toml");
    assert_mentions(
        &stderr,
        &[
            &line_of(&project, "issues/short.toml", "[sign-off]"),
            "`name`",
        ],
    );
}

#[test]
fn duplicate_post_id_points_at_the_second_one() {
    let project = Project::example();
    let posts = "archive/posts.toml";
    project.edit(
        posts,
        "id = \"not-a-single-safe-space\"",
        "id = \"hands-off-our-human-rights-act\"",
    );
    let text = project.read(posts);
    let first = text.find("\"hands-off-our-human-rights-act\"").unwrap();
    let second = first
        + 1
        + text[first + 1..]
            .find("\"hands-off-our-human-rights-act\"")
            .unwrap();
    let line = text[..second].matches('\n').count() + 1;
    let stderr = preview_fails(&project, ISSUE);
    assert_mentions(
        &stderr,
        &[
            &format!("{posts}:{line}:6"),
            "hands-off-our-human-rights-act",
        ],
    );
}

#[test]
fn unknown_key_in_configuration_is_named_with_its_line() {
    let project = Project::example();
    project.edit("newsletter.toml", "charity-number =", "charity-nmber =");
    let out = project.run(&["preview", ISSUE, "--out", "out"]);
    out.expect_code(2);
    assert_mentions(
        &out.stderr,
        &[
            &location(&project, "newsletter.toml", "charity-nmber ="),
            "charity-nmber",
        ],
    );
}

// ---------------------------------------------------------------- dangling ids

#[test]
fn unknown_post_id_suggests_the_nearest() {
    let project = Project::example();
    project.edit(
        ISSUE,
        "\"hands-off-our-human-rights-act\"",
        "\"hands-off-our-human-rights-ac\"",
    );
    let stderr = preview_fails(&project, ISSUE);
    assert_mentions(
        &stderr,
        &[
            &location(&project, ISSUE, "\"hands-off-our-human-rights-ac\""),
            "hands-off-our-human-rights-act",
        ],
    );
}

#[test]
fn unknown_event_id_suggests_the_nearest() {
    let project = Project::example();
    project.edit(
        ISSUE,
        "\"judith-series-disability-rights\"",
        "\"judith-series-disabilty-rights\"",
    );
    let stderr = preview_fails(&project, ISSUE);
    assert_mentions(
        &stderr,
        &[
            &location(&project, ISSUE, "\"judith-series-disabilty-rights\""),
            "judith-series-disability-rights",
        ],
    );
}

#[test]
fn unclosed_merge_field_in_the_greeting_stops_preview_with_the_words_of_check() {
    let project = Project::example();
    project.edit(
        ISSUE,
        "greeting = \"Dear {{first_name|Supporter}}\"",
        "greeting = \"Dear {{first_name\"",
    );
    let stderr = preview_fails(&project, ISSUE);
    assert_eq!(
        stderr,
        format!(
            "error: {}: `greeting`: `{{{{` without a closing `}}}}` in `{{{{first_name`; write a merge field like `{{{{first_name|Supporter}}}}`\n",
            location_after(&project, ISSUE, "greeting = ")
        )
    );
}

// ---------------------------------------------------------------- escaping

#[test]
fn hostile_content_is_shown_as_text() {
    let project = Project::example();
    project
        .edit(
            "archive/posts.toml",
            "title = \"Hands Off our Human Rights Act!\"",
            "title = \"<script>alert(1)</script>\"",
        )
        .edit(
            ISSUE,
            "letter = \"\"\"\n",
            "letter = \"\"\"\n<img src=x onerror=alert(1)>\n\n\
             Inline <img src=x onerror=alert(2)> and [a link](javascript:alert(3)).\n\n",
        )
        .edit(
            ISSUE,
            "heading = \"From the blog\"",
            "heading = \"<style>body{display:none}</style>\"",
        )
        .write(
            "hostile.csv",
            "email,first_name,last_name,status\nbob@example.org,<b>Bob</b>,\"<i>O'Brien</i>\",subscribed\n",
        );
    let (html, text) = preview(
        &project,
        ISSUE,
        &["--subscribers", "hostile.csv", "--as", "bob@example.org"],
    );

    for tag in tags(&html) {
        let lower = tag.to_ascii_lowercase();
        assert!(
            !lower.starts_with("<script")
                && !lower.starts_with("<b>")
                && !lower.starts_with("<img src=x")
                && !lower.contains("onerror")
                && !lower.contains("javascript:"),
            "hostile tag in index.html: {tag}"
        );
    }
    assert_eq!(html.matches("<style").count(), 1, "only the head's <style>");
    check_nesting(&html).unwrap_or_else(|e| panic!("index.html: {e}"));
    assert!(!html.contains("javascript:"), "a javascript: URL survived");
    for visible in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;img src=x onerror=alert(1)&gt;",
        "&lt;img src=x onerror=alert(2)&gt;",
        "Dear &lt;b&gt;Bob&lt;/b&gt;",
        "&lt;style&gt;body{display:none}&lt;/style&gt;",
        "a link",
    ] {
        assert!(html.contains(visible), "index.html does not show {visible}");
    }

    // The text part shows the same characters as they are, unescaped.
    assert!(text.contains("<script>alert(1)</script>"), "{text}");
    assert!(text.contains("Dear <b>Bob</b>"));
    assert!(!text.contains("&lt;") && !text.contains("javascript:"));
}

// ---------------------------------------------------------------- wrapping

#[test]
fn text_part_wraps_at_78_columns_and_keeps_urls_whole() {
    let url = format!(
        "https://www.renecassin.org/reports/{}",
        "a-long-slug-".repeat(8)
    );
    let url = &url[..120];
    assert_eq!(url.len(), 120);
    let words =
        "Provisions like the Human Rights Act protect us all, René Cassin says. ".repeat(12);
    let wide = "人权宣言 ".repeat(40);
    let paragraph =
        format!("{words}See {url} for the full text, or read [the report]({url}). {words}");
    let project = Project::example();
    project.edit(
        ISSUE,
        "letter = \"\"\"\n",
        &format!("letter = \"\"\"\n{paragraph}\n\n{wide}\n\n> {words}\n\n* {words}\n\n"),
    );
    project
        .edit(
            ISSUE,
            "closing = \"With best wishes\"",
            "closing = \"With the very best wishes from all of us: the staff, the trustees and the volunteers\"",
        )
        .edit(
            ISSUE,
            "role = \"Executive Director\"",
            "role = \"Executive Director and Head of Policy, Campaigns and Public Affairs, René Cassin\"",
        );
    let (_, text) = preview(&project, ISSUE, &[]);

    assert_lines_fit(&text);
    let whole = text.lines().filter(|l| l.contains(url)).count();
    assert_eq!(whole, 2, "the URL is not whole on its lines:\n{text}");
    assert!(
        text.lines().any(|l| l.trim() == url),
        "a URL longer than the line stands alone"
    );
    assert!(
        text.contains("人权宣言 人权宣言"),
        "wide characters are wrapped as words"
    );
}

// ---------------------------------------------------------------- help

#[test]
fn help_shows_examples() {
    let project = Project::example();
    for (args, example) in [
        (&["--help"][..], "newsletter preview 2022-07-13"),
        (&["preview", "--help"][..], "newsletter preview issues/"),
    ] {
        let out = project.run(args);
        out.expect_code(0);
        assert!(
            out.stdout.contains("Example") && out.stdout.contains(example),
            "`newsletter {}` shows no example:\n{}",
            args.join(" "),
            out.stdout
        );
    }
}

#[test]
fn outlook_and_apple_mail_get_their_settings() {
    let project = Project::example();
    let (html, _) = preview(&project, "issues/2022-07-13.toml", &[]);
    // Apple Mail: no reformatting (with the content vnu wants), no dates or
    // places turned into links, and a reset for those it links anyway.
    assert!(html.contains(r#"<meta name="x-apple-disable-message-reformatting" content="">"#));
    assert!(html.contains(r#"<meta name="format-detection" content="telephone=no,date=no,address=no,email=no,url=no">"#));
    assert!(html.contains("a[x-apple-data-detectors]{color:inherit !important"));
    // Outlook for Windows: 96 dpi, and the button's padding on its cell.
    assert!(html.contains(r#"xmlns:o="urn:schemas-microsoft-com:office:office""#));
    assert!(html.contains("<o:PixelsPerInch>96</o:PixelsPerInch>"));
    let button = &html[html.find(r#"<td class="button""#).unwrap()..];
    let cell = &button[..button.find('>').unwrap()];
    assert!(cell.contains("mso-padding-alt:14px 28px"), "{cell}");
}

#[test]
fn only_the_html_heading_keeps_the_subjects_last_two_words_together() {
    let project = Project::example();
    let (html, text) = preview(&project, "issues/2022-07-13.toml", &[]);
    assert!(
        html.contains(">Rwanda, Refugees, and Our Rights under\u{a0}threat</h1>"),
        "{}",
        &html[html.find("<h1").unwrap()..html.find("</h1>").unwrap() + 5]
    );
    assert!(html.contains("<title>Rwanda, Refugees, and Our Rights under threat</title>"));
    assert!(
        !text.contains('\u{a0}'),
        "the text part has a no-break space"
    );
    let message = project.read("out/message.eml");
    assert!(
        message.contains("\nSubject: Rwanda, Refugees, and Our Rights under threat\r\n"),
        "{}",
        message
            .lines()
            .find(|l| l.starts_with("Subject:"))
            .unwrap_or_default()
    );
}

// ---------------------------------------------------------- images and cards

/// The value of `name="…"` in one tag (the HTML part quotes every value).
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    Some(&tag[start..start + tag[start..].find('"')?])
}

/// The words of an HTML fragment as a reader gets them: tags and comments
/// dropped, entities decoded, white space folded.
fn words(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        let close = if rest[start..].starts_with("<!--") {
            "-->"
        } else {
            ">"
        };
        let end = rest[start..]
            .find(close)
            .map_or(rest.len(), |i| start + i + close.len());
        text.push(' ');
        rest = &rest[end..];
    }
    text.push_str(rest);
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // A tag between a word and its punctuation left a space.
    folded.replace(" …", "…")
}

/// Each `<table … class="item" …>…</table>` (a card), nested tables and all.
fn cards_of(html: &str) -> Vec<&str> {
    let mut cards = Vec::new();
    let mut from = 0;
    while let Some(found) = html[from..].find(r#"class="item""#) {
        let start = from + html[from..][..found].rfind("<table").unwrap();
        let mut depth = 0;
        let mut at = start;
        loop {
            let open = html[at..].find("<table").map(|i| at + i);
            let close = html[at..].find("</table>").map(|i| at + i).unwrap();
            match open {
                Some(o) if o < close => {
                    depth += 1;
                    at = o + 6;
                }
                _ => {
                    depth -= 1;
                    at = close + 8;
                    if depth == 0 {
                        break;
                    }
                }
            }
        }
        cards.push(&html[start..at]);
        from = at;
    }
    cards
}

/// The links of a fragment: (href, the words of the link).
fn links_of(html: &str) -> Vec<(String, String)> {
    let mut links = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<a ") {
        let tag_end = start + rest[start..].find('>').unwrap();
        let end = tag_end + rest[tag_end..].find("</a>").unwrap();
        let href = attr(&rest[start..=tag_end], "href").unwrap_or_default();
        links.push((href.replace("&amp;", "&"), words(&rest[tag_end + 1..end])));
        rest = &rest[end..];
    }
    links
}

/// The `<img …>` tags of an HTML text.
fn images_of(html: &str) -> Vec<&str> {
    tags(html)
        .into_iter()
        .filter(|t| t.starts_with("<img "))
        .collect()
}

/// `NAME.HASH.EXT` as the web build names a project file.
fn hashed(project: &Project, file: &str) -> String {
    use sha2::Digest;
    let bytes = fs::read(project.path(file)).unwrap();
    let path = std::path::Path::new(file);
    let digest = hex::encode(sha2::Sha256::digest(&bytes));
    format!(
        "{}.{}.{}",
        path.file_stem().unwrap().to_str().unwrap(),
        &digest[..8],
        path.extension().unwrap().to_str().unwrap()
    )
}

const ASSETS: &str = "https://news.renecassin.example.org/assets/";

#[test]
fn every_image_has_alt_width_and_a_hosted_https_url() {
    let project = support::cards::project();
    let expected = [
        (
            "2022-07-13",
            vec!["templates/logo.png", support::cards::THUMBNAIL],
        ),
        (
            "2020-12-10",
            vec!["templates/logo.png", "templates/signature.png"],
        ),
    ];
    for (id, files) in expected {
        let (html, _) = preview(&project, &format!("issues/{id}.toml"), &[]);
        let images = images_of(&html);
        let srcs: Vec<&str> = images.iter().map(|t| attr(t, "src").unwrap()).collect();
        let wanted: Vec<String> = files
            .iter()
            .map(|f| format!("{ASSETS}{}", hashed(&project, f)))
            .collect();
        assert_eq!(srcs, wanted, "{id}");
        for tag in images {
            assert!(
                attr(tag, "alt").is_some_and(|a| !a.trim().is_empty()),
                "{id}: {tag}"
            );
            let width: u32 = attr(tag, "width").and_then(|w| w.parse().ok()).unwrap_or(0);
            let height: u32 = attr(tag, "height")
                .and_then(|h| h.parse().ok())
                .unwrap_or(0);
            assert!(width > 0 && height > 0, "{id}: {tag}");
        }
    }
    // The logo as the theme sets it; the signature from its width and the
    // file's proportions (440 × 100 px).
    let (html, _) = preview(&project, "issues/2020-12-10.toml", &[]);
    let images = images_of(&html);
    assert!(
        images[0].contains(r#"alt="René Cassin" width="200" height="48""#),
        "{}",
        images[0]
    );
    assert!(
        images[1].contains(r#"width="220" height="50""#),
        "{}",
        images[1]
    );
}

#[test]
fn heading_whose_last_two_words_are_long_may_break_between_them() {
    let project = Project::example();
    project.edit(
        "issues/2022-07-13.toml",
        "subject = \"Rwanda, Refugees, and Our Rights under threat\"",
        "subject = \"Notes on proportional representation\"",
    );
    let (html, _) = preview(&project, "issues/2022-07-13.toml", &[]);
    // Held together they would run past a 320 px phone's line.
    assert!(html.contains(">Notes on proportional representation</h1>"));
}

#[test]
fn the_logo_and_signature_files_are_2x_and_under_200_kb() {
    for (file, pixels) in [
        ("templates/logo.png", (400, 96)),
        ("templates/signature.png", (440, 100)),
    ] {
        let bytes = fs::read(repo().join(file)).unwrap();
        assert!(bytes.len() < 200 * 1024, "{file} is {} bytes", bytes.len());
        assert_eq!(&bytes[12..16], b"IHDR", "{file} is not a PNG");
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!((be(16), be(20)), pixels, "{file}");
    }
}

#[test]
fn web_build_writes_hashed_assets_deterministically() {
    let project = support::cards::project();
    let list = |dir: &str| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(project.path(dir))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    project
        .run(&["web", "build", "--out", "site"])
        .expect_code(0);
    project
        .run(&["web", "build", "--out", "again"])
        .expect_code(0);
    let assets = list("site/assets");
    assert_eq!(assets, list("again/assets"), "two builds differ");
    let names: Vec<&str> = assets.iter().map(|(n, _)| n.as_str()).collect();
    let mut wanted = vec![
        hashed(&project, support::cards::THUMBNAIL),
        hashed(&project, "templates/logo.png"),
        hashed(&project, "templates/signature.png"),
    ];
    wanted.sort();
    assert_eq!(names, wanted);
    for (name, bytes) in &assets {
        let source = [
            support::cards::THUMBNAIL,
            "templates/logo.png",
            "templates/signature.png",
        ]
        .into_iter()
        .find(|f| &hashed(&project, f) == name)
        .unwrap();
        assert_eq!(bytes, &fs::read(project.path(source)).unwrap(), "{name}");
    }
    // The email shows them from the site; the page, from beside it.
    let (html, _) = preview(&project, ISSUE, &[]);
    let page = project.read("site/issues/2022-07-13/index.html");
    for name in [
        hashed(&project, "templates/logo.png"),
        hashed(&project, support::cards::THUMBNAIL),
    ] {
        assert!(html.contains(&format!(r#"src="{ASSETS}{name}""#)), "{name}");
        assert!(
            page.contains(&format!(r#"src="../../assets/{name}""#)),
            "{name}"
        );
    }

    // A changed logo is a new file; the old one stays for the emails sent.
    let old = hashed(&project, "templates/logo.png");
    fs::write(
        project.path("templates/logo.png"),
        support::png::solid(400, 96, [255, 255, 255]),
    )
    .unwrap();
    project
        .run(&["web", "build", "--out", "site"])
        .expect_code(0);
    let new = hashed(&project, "templates/logo.png");
    assert_ne!(old, new);
    assert!(project.path(&format!("site/assets/{old}")).is_file());
    assert!(project.path(&format!("site/assets/{new}")).is_file());
}

/// `message` without its Date header and with its MIME boundary (random
/// per message) as `BOUNDARY`.
fn without_date_and_boundary(message: &[u8]) -> String {
    let text = String::from_utf8(message.to_vec()).unwrap();
    let boundary = text
        .split("boundary=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    text.split("\r\n")
        .filter(|line| !line.starts_with("Date: "))
        .collect::<Vec<_>>()
        .join("\r\n")
        .replace(&boundary, "BOUNDARY")
}

#[test]
fn preview_writes_the_images_beside_a_page_that_shows_them_and_the_message_as_sent() {
    let project = Project::example();
    let issue = "issues/2020-12-10.toml";
    let one = project.read("subscribers.example.csv");
    let one: Vec<&str> = one.lines().take(2).collect();
    project.write("one.csv", &format!("{}\n", one.join("\n")));
    let (html, _) = preview(&project, issue, &["--subscribers", "one.csv"]);
    let page = project.read("out/preview.html");
    for file in ["templates/logo.png", "templates/signature.png"] {
        let name = hashed(&project, file);
        assert_eq!(
            fs::read(project.path(&format!("out/assets/{name}"))).unwrap(),
            fs::read(project.path(file)).unwrap(),
            "{name}"
        );
        assert!(page.contains(&format!(r#"src="assets/{name}""#)), "{name}");
        // index.html stays the HTML part as sent.
        assert!(html.contains(&format!(r#"src="{ASSETS}{name}""#)), "{name}");
    }
    assert_eq!(page, html.replace(ASSETS, "assets/"));
    let mut written: Vec<String> = fs::read_dir(project.path("out/assets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            hashed(&project, "templates/logo.png"),
            hashed(&project, "templates/signature.png")
        ]
    );

    // The message is the one a send writes to the outbox, byte for byte
    // but for the Date header and the MIME boundary.
    let previewed = fs::read(project.path("out/message.eml")).unwrap();
    project
        .run(&["send", issue, "--subscribers", "one.csv", "--yes"])
        .expect_code(0);
    let outbox: Vec<PathBuf> = fs::read_dir(project.path("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let sent = fs::read(&outbox[0]).unwrap();
    assert_eq!(
        without_date_and_boundary(&previewed),
        without_date_and_boundary(&sent)
    );
    let parsed = MessageParser::default().parse(&previewed).unwrap();
    assert_eq!(parsed.body_html(0).unwrap().replace("\r\n", "\n"), html);
}

#[test]
fn a_missing_image_stops_the_preview_at_its_line() {
    let project = Project::example();
    project.edit(
        "templates/theme.toml",
        "logo = \"templates/logo.png\"",
        "logo = \"templates/logo-new.png\"",
    );
    let stderr = preview_fails(&project, ISSUE);
    assert_mentions(
        &stderr,
        &[
            &location_after(&project, "templates/theme.toml", "logo = "),
            "`logo` is `templates/logo-new.png`, but there is no `templates/logo-new.png`",
        ],
    );
}

#[test]
fn the_signature_comes_between_the_closing_and_the_name() {
    let project = Project::example();
    let (html, text) = preview(&project, "issues/2020-12-10.toml", &[]);
    let closing = html.find(">With very best wishes</p>").unwrap();
    let signature = html.find(&format!("{ASSETS}signature.")).unwrap();
    let name = html.find(">Mia Hasenson-Gross</p>").unwrap();
    assert!(closing < signature && signature < name);
    let tag = images_of(&html)[1];
    assert_eq!(attr(tag, "alt"), Some("Mia Hasenson-Gross’s signature"));
    // The text part has the name, not the picture.
    assert!(
        text.contains("With very best wishes\n\nMia Hasenson-Gross\n"),
        "{text}"
    );
}

#[test]
fn post_cards_show_thumbnail_title_byline_excerpt_and_read_more() {
    let project = support::cards::project();
    let (html, _) = preview(&project, ISSUE, &[]);
    let section = &html[html.find(support::cards::HEADING).unwrap()..];
    let cards = cards_of(section);
    assert_eq!(cards.len(), 4, "two events, then two posts");
    let (with, without) = (cards[2], cards[3]);
    let url = "https://www.renecassin.org/card-test-post/";

    let images = images_of(with);
    assert_eq!(images.len(), 1);
    assert_eq!(attr(images[0], "alt"), Some(support::cards::THUMBNAIL_ALT));
    assert_eq!(attr(images[0], "width"), Some("128"));
    assert_eq!(
        attr(images[0], "height"),
        Some("96"),
        "480 × 360 px shown 128 wide"
    );
    assert_eq!(
        words(with),
        "Card Test Post By Ada Example, volunteer The opening words of a post that exists only in the tests… Read more about Card Test Post"
    );
    assert_eq!(
        links_of(with),
        [
            (url.to_string(), "Card Test Post".to_string()),
            (
                url.to_string(),
                "Read more about Card Test Post".to_string()
            ),
        ]
    );
    // The title is in the link's name, but only for screen readers.
    let read_more = &with[with.rfind("Read more").unwrap()..];
    let hidden = &read_more[..read_more.find("</span>").unwrap()];
    assert!(
        hidden.contains("width:1px;height:1px;overflow:hidden"),
        "{hidden}"
    );
    assert!(hidden.contains("mso-hide:all"), "{hidden}");
    // Side by side where there is room, in Outlook too.
    assert!(with.contains("<!--[if mso]><table"), "{with}");
    assert!(
        with.contains("display:inline-block;width:100%;max-width:144px"),
        "{with}"
    );

    assert!(images_of(without).is_empty());
    assert!(
        !without.contains("<!--[if mso]>"),
        "no columns without a thumbnail"
    );
    assert!(
        words(without).starts_with(
            "Hands Off our Human Rights Act! By Debora Singer MBE, René Cassin When Sarah"
        ),
        "{}",
        words(without)
    );
    assert!(words(without).ends_with("Read more about Hands Off our Human Rights Act!"));
}

#[test]
fn event_cards_show_date_badge_time_place_partner_booking_and_calendar() {
    let project = support::cards::project();
    let (html, _) = preview(&project, ISSUE, &[]);
    let section = &html[html.find(support::cards::HEADING).unwrap()..];
    let cards = cards_of(section);
    let (workshop, talk) = (cards[0], cards[1]);
    assert_eq!(
        words(workshop),
        "12 Sep Card Test Workshop Monday 12 September 2022, 6.30pm–8pm BST Online · with Example Partner Trust A workshop that exists only in the tests. Book a place for Card Test Workshop Add Card Test Workshop to calendar"
    );
    let calendar = "https://news.renecassin.example.org/events/card-test-workshop.ics";
    assert_eq!(
        links_of(workshop),
        [
            (
                support::cards::BOOKING.to_string(),
                "Book a place for Card Test Workshop".to_string()
            ),
            (
                calendar.to_string(),
                "Add Card Test Workshop to calendar".to_string()
            ),
        ]
    );
    // The badge is read in full in the details, so screen readers skip it.
    let badge = &workshop[workshop.find(r#"class="badge""#).unwrap()..];
    assert!(
        badge.starts_with(r##"class="badge" bgcolor="#8a1538""##),
        "{badge}"
    );
    assert!(workshop.contains(
        r#"<td width="56" valign="top" style="padding:16px 0 16px 16px" aria-hidden="true">"#
    ));
    // The booking button's padding is on its cell (Outlook ignores it on links).
    let button = &workshop[workshop.find(r#"<td class="book""#).unwrap()..];
    assert!(
        button[..button.find('>').unwrap()].contains("padding:12px 20px"),
        "{button}"
    );

    assert_eq!(
        words(talk),
        "3 Oct Card Test Talk Monday 3 October 2022, 12 noon BST Example Hall, London Add Card Test Talk to calendar"
    );
    assert!(
        !talk.contains("class=\"book\""),
        "no booking link, no button"
    );

    // Past events: badge, no booking, no calendar.
    let refugee_week =
        &html[html.find(">Refugee Week events<").unwrap()..html.find(">Coming up").unwrap()];
    for card in cards_of(refugee_week) {
        assert!(card.contains(r#"class="badge""#));
        assert!(links_of(card).is_empty(), "{card}");
    }
}

#[test]
fn the_text_part_has_the_cards_facts_in_order() {
    let project = support::cards::project();
    let (_, text) = preview(&project, ISSUE, &[]);
    let section = &text[text.find(support::cards::HEADING).unwrap()..];
    let section = &section[..section.find("None of the work").unwrap_or(section.len())];
    let expected = "\
* Card Test Workshop
  Monday 12 September 2022, 6.30pm–8pm BST
  Online · with Example Partner Trust
  A workshop that exists only in the tests.
  Book a place: <https://tickets.example.org/card-test-workshop>
  Add to calendar:
  <https://news.renecassin.example.org/events/card-test-workshop.ics>

* Card Test Talk
  Monday 3 October 2022, 12 noon BST
  Example Hall, London
  Add to calendar:
  <https://news.renecassin.example.org/events/card-test-talk.ics>

* Card Test Post
  By Ada Example, volunteer
  The opening words of a post that exists only in the tests…
  Read more: <https://www.renecassin.org/card-test-post/>
";
    assert!(section.contains(expected), "{section}");
}

#[test]
fn posts_import_takes_the_image_of_media_content_an_enclosure_or_the_first_img() {
    let project = Project::example();
    let feed = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Blog</title><link>https://www.renecassin.org/</link><description>d</description>
<item><title>With Media Content</title><link>https://www.renecassin.org/with-media-content/</link>
  <description>One.</description>
  <media:content url="https://www.renecassin.org/media/one.jpg" type="image/jpeg" medium="image"><media:description>Marchers on Whitehall</media:description></media:content>
</item>
<item><title>With An Enclosure</title><link>https://www.renecassin.org/with-an-enclosure/</link>
  <description>Two.</description>
  <enclosure url="https://www.renecassin.org/media/two.png" length="1234" type="image/png"/>
</item>
<item><title>With An Img</title><link>https://www.renecassin.org/with-an-img/</link>
  <description>Three.</description>
  <content:encoded><![CDATA[<p>Three.</p><img src="http://www.renecassin.org/insecure.jpg" alt="x"><img src="https://www.renecassin.org/media/three.jpg" alt="A candle">]]></content:encoded>
</item>
<item><title>With A Podcast</title><link>https://www.renecassin.org/with-a-podcast/</link>
  <description>Four.</description>
  <enclosure url="https://www.renecassin.org/media/four.mp3" length="1" type="audio/mpeg"/>
</item>
</channel></rss>"#;
    project.write("feed.xml", feed);
    let out = project.run(&["posts", "import", "feed.xml"]);
    out.expect_code(0);
    let posts = project.read("archive/posts.toml");
    let entry = |id: &str| -> String {
        let start = posts.find(&format!("id = \"{id}\"")).unwrap();
        posts[start..].split("\n\n").next().unwrap().to_string()
    };
    assert!(entry("with-media-content").contains("image = \"https://www.renecassin.org/media/one.jpg\"\nimage-alt = \"Marchers on Whitehall\""));
    assert!(
        entry("with-an-enclosure").contains("image = \"https://www.renecassin.org/media/two.png\"")
    );
    assert!(!entry("with-an-enclosure").contains("image-alt"));
    // The first img whose address is https://: the insecure one is not taken.
    let with_img = entry("with-an-img");
    assert!(
        with_img.contains(
            "image = \"https://www.renecassin.org/media/three.jpg\"\nimage-alt = \"A candle\""
        ),
        "{with_img}"
    );
    assert!(
        !entry("with-a-podcast").contains("image"),
        "a sound is not a picture"
    );
    assert!(
        out.stdout.contains(
            "its image has no alt text in the feed: add `image-alt` to `with-an-enclosure`"
        ),
        "{}",
        out.stdout
    );
}
