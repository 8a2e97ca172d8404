//! Hostile inputs: subscriber files, issues, the archive and the
//! configuration written by mistake or by an attacker. Each case runs the
//! real binary (`send` through the outbox transport, so nothing leaves the
//! machine) in a fresh copy of the example project and has one exact
//! expectation: either a refusal (exit code 2, the file, line and field named
//! in stderr, no message written and nothing journaled), or a safe rendering
//! (the messages written, checked). No case may panic.
//!
//! Every message written by any case is also checked for what must always
//! hold: a parseable MIME message whose header section has exactly the
//! headers we write, once each, with no line over 998 characters, so no
//! value can smuggle in a header of its own (`Bcc:` and the like).

mod support;

use std::collections::BTreeMap;
use std::fs;

use mail_parser::MessageParser;
use support::project::{Output, Project};

const ISSUE: &str = "issues/2022-07-13.toml";
const JOURNAL: &str = "journal/2022-07-13.journal";
const CONFIG: &str = "newsletter.toml";
const POSTS: &str = "archive/posts.toml";
const EVENTS: &str = "archive/events.toml";
const SUBJECT_LINE: &str = "subject = \"Rwanda, Refugees, and Our Rights under threat\"";
const HEADER: &str = "email,first_name,last_name,status\n";

/// The headers every message has, each exactly once (`Reply-To` because the
/// example configuration sets it).
const HEADERS: &[&str] = &[
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "precedence",
    "auto-submitted",
    "reply-to",
    "mime-version",
    "content-type",
];

// ---------------------------------------------------------------------------
// Messages as written to the outbox
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Eml {
    raw: Vec<u8>,
    /// Header names (lowercase) and unfolded raw values, in order.
    headers: Vec<(String, String)>,
    to_name: Option<String>,
    to_address: String,
    subject: String,
    text: String,
    html: String,
}

impl Eml {
    fn parse(raw: Vec<u8>) -> Eml {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header section ending in an empty line");
        let block = String::from_utf8(raw[..end].to_vec()).expect("UTF-8 headers");
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in block.split("\r\n") {
            assert!(
                line.len() <= 998,
                "a header line of {} characters: {}…",
                line.len(),
                &line[..80]
            );
            assert!(
                !line.contains('\r') && !line.contains('\n'),
                "a bare CR or LF in a header line: {line:?}"
            );
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().expect("a continuation line first");
                last.1.push_str(line);
            } else {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("not a header line: {line:?}"));
                assert!(
                    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic()),
                    "bad header name in {line:?}"
                );
                headers.push((name.to_ascii_lowercase(), value.to_string()));
            }
        }
        let mut names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        let mut wanted = HEADERS.to_vec();
        wanted.sort_unstable();
        assert_eq!(names, wanted, "exactly our headers, once each:\n{block}");

        let message = MessageParser::default()
            .parse(&raw)
            .expect("a parseable message");
        let to = message.to().and_then(|a| a.first()).expect("a To address");
        Eml {
            to_name: to.name().map(str::to_string),
            to_address: to.address().expect("an address").to_string(),
            subject: message.subject().unwrap_or_default().to_string(),
            text: message
                .body_text(0)
                .expect("a text part")
                .replace("\r\n", "\n"),
            html: message
                .body_html(0)
                .expect("an HTML part")
                .replace("\r\n", "\n"),
            headers,
            raw: raw.clone(),
        }
    }

    fn header(&self, name: &str) -> &str {
        &self
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .1
    }

    /// The greeting line of the text part.
    fn greeting(&self) -> &str {
        self.text
            .lines()
            .find(|l| l.starts_with("Dear "))
            .expect("a greeting line")
    }
}

/// The outbox's messages, by recipient address.
fn outbox(p: &Project) -> Vec<Eml> {
    let Ok(dir) = fs::read_dir(p.path("outbox")) else {
        return Vec::new();
    };
    let mut messages: Vec<Eml> = dir
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_some_and(|x| x == "eml"))
        .map(|path| Eml::parse(fs::read(path).unwrap()))
        .collect();
    messages.sort_by(|a, b| a.to_address.cmp(&b.to_address));
    messages
}

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

type Check = Box<dyn Fn(&[Eml], &Output)>;

enum Expect {
    /// Exit code 2; stderr has every fragment; nothing written or journaled.
    Refused(Vec<&'static str>),
    /// This exit code and this many messages; stderr has every fragment;
    /// then `check` on the messages.
    Sent {
        code: i32,
        messages: usize,
        stderr: Vec<&'static str>,
        check: Check,
    },
}

struct Case {
    name: &'static str,
    setup: Box<dyn Fn(&Project)>,
    args: Vec<&'static str>,
    env_remove: Vec<&'static str>,
    expect: Expect,
}

fn sent(
    code: i32,
    messages: usize,
    stderr: &[&'static str],
    check: impl Fn(&[Eml], &Output) + 'static,
) -> Expect {
    Expect::Sent {
        code,
        messages,
        stderr: stderr.to_vec(),
        check: Box::new(check),
    }
}

fn refused(stderr: &[&'static str]) -> Expect {
    Expect::Refused(stderr.to_vec())
}

const SEND_LIST: &[&str] = &["send", ISSUE, "--subscribers", "list.csv", "--yes"];
const SEND: &[&str] = &["send", ISSUE, "--yes"];
/// A test send: it is not held back by `check`'s errors, so what the
/// renderer makes of hostile content can still be looked at.
const TEST_SEND: &[&str] = &["send", ISSUE, "--test-to", "staff@example.org"];

/// A subscriber file with these bytes, sent to.
fn csv(name: &'static str, bytes: impl AsRef<[u8]>, expect: Expect) -> Case {
    let bytes = bytes.as_ref().to_vec();
    Case {
        name,
        setup: Box::new(move |p| fs::write(p.path("list.csv"), &bytes).unwrap()),
        args: SEND_LIST.to_vec(),
        env_remove: Vec::new(),
        expect,
    }
}

/// One invalid address on line 3, after a valid one: refused, naming it.
fn bad_address(name: &'static str, address: &'static str, reason: &'static str) -> Case {
    let mut case = csv(
        name,
        format!("{HEADER}ok@example.org,Ok,Row,subscribed\n{address},Bad,Row,subscribed\n"),
        refused(&[
            "list.csv: line 3: invalid address",
            reason,
            "nothing was sent",
        ]),
    );
    // Shown as written.
    let shown: &'static str = Box::leak(format!("`{address}`").into_boxed_str());
    if let Expect::Refused(fragments) = &mut case.expect {
        fragments.push(shown);
    }
    case
}

/// A file of the project with `old` replaced by `new`, then `args`.
fn edit(
    name: &'static str,
    file: &'static str,
    old: &'static str,
    new: impl Into<String>,
    args: &[&'static str],
    expect: Expect,
) -> Case {
    let new = new.into();
    Case {
        name,
        setup: Box::new(move |p| {
            p.edit(file, old, &new);
        }),
        args: args.to_vec(),
        env_remove: Vec::new(),
        expect,
    }
}

/// The configuration with this `[transport]`/`[smtp]` text instead of its own.
fn transport(name: &'static str, tables: &'static str, expect: Expect) -> Case {
    Case {
        name,
        setup: Box::new(move |p| {
            let text = p.read(CONFIG);
            let start = text.find("[transport]").unwrap();
            let end = text.find("[sending]").unwrap();
            p.write(
                CONFIG,
                &format!("{}{tables}\n\n{}", &text[..start], &text[end..]),
            );
        }),
        args: SEND.to_vec(),
        env_remove: Vec::new(),
        expect,
    }
}

fn run_case(case: &Case) -> Result<(), String> {
    let p = Project::example();
    (case.setup)(&p);
    let mut cmd = p.command(&case.args);
    for var in &case.env_remove {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    let out = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let fail = |what: String| {
        Err(format!(
            "{what}\n--- stderr\n{}\n--- stdout\n{}",
            out.stderr, out.stdout
        ))
    };
    if out.stderr.contains("panicked") || out.stdout.contains("panicked") {
        return fail("it panicked".into());
    }
    let messages = std::panic::catch_unwind(|| outbox(&p))
        .map_err(|e| format!("a message in the outbox is broken: {e:?}"))?;
    let journal = fs::read_to_string(p.path(JOURNAL)).unwrap_or_default();
    let (code, count, fragments) = match &case.expect {
        Expect::Refused(fragments) => (2, 0, fragments),
        Expect::Sent {
            code,
            messages,
            stderr,
            ..
        } => (*code, *messages, stderr),
    };
    if out.code != code {
        return fail(format!("exit code {} (wanted {code})", out.code));
    }
    for fragment in fragments {
        if !out.stderr.contains(fragment) {
            return fail(format!("stderr lacks `{fragment}`"));
        }
    }
    if messages.len() != count {
        return fail(format!(
            "{} message(s) written (wanted {count})",
            messages.len()
        ));
    }
    match &case.expect {
        Expect::Refused(_) => {
            if !journal.trim().is_empty() {
                return fail(format!("refused, yet journaled:\n{journal}"));
            }
        }
        Expect::Sent { check, .. } => {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&messages, &out)))
                .map_err(|e| {
                    let why = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    let why: String = why.chars().take(3000).collect();
                    format!("{why}\n--- stderr\n{}", out.stderr)
                })?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Helpers for checks
// ---------------------------------------------------------------------------

/// The To display names, in address order.
fn to_names(messages: &[Eml]) -> Vec<Option<String>> {
    messages.iter().map(|m| m.to_name.clone()).collect()
}

fn addresses(messages: &[Eml]) -> Vec<String> {
    messages.iter().map(|m| m.to_address.clone()).collect()
}

/// Nothing a name could inject made it into a header of its own, and the
/// name reads as the cleaned text.
fn no_injection(messages: &[Eml], name: &str) {
    for m in messages {
        assert_eq!(m.to_name.as_deref(), Some(name), "To name");
        let headers = String::from_utf8_lossy(
            &m.raw[..m.raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()],
        )
        .to_lowercase();
        for injected in [
            "\nbcc:",
            "\ncc:",
            "\nx-injected:",
            "\ncontent-type: text/html",
        ] {
            assert!(
                !headers.contains(injected),
                "injected `{injected}` in:\n{headers}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Subscriber files
// ---------------------------------------------------------------------------

fn subscriber_cases() -> Vec<Case> {
    let one = |rest: &str| format!("{HEADER}ann@example.org,{rest}\n");
    vec![
        csv(
            "empty file",
            "",
            refused(&[
                "`list.csv` is empty",
                "it needs a header line with an `email` column",
            ]),
        ),
        csv(
            "only blank lines",
            "\n\n,,,\n",
            refused(&["`list.csv` is empty"]),
        ),
        csv(
            "header only",
            HEADER,
            sent(
                0,
                0,
                &[
                    "Subscribers: `list.csv`",
                    "to mail now: 0",
                    "Nothing to send.",
                ],
                |_, _| {},
            ),
        ),
        csv(
            "no email column",
            "mail,name\nann@example.org,Ann\n",
            refused(&[
                "`list.csv` has no `email` column",
                "its columns are `mail`, `name`",
                "Rename the column that holds addresses to `email`",
            ]),
        ),
        csv(
            "data without a header line",
            "ann@example.org,Ann\nbob@example.org,Bob\n",
            refused(&["has no `email` column", "The first line looks like data"]),
        ),
        csv(
            "two email columns",
            "email,E-mail\nann@example.org,bob@example.org\n",
            refused(&["has two `email` columns (`email` and `E-mail`)"]),
        ),
        csv(
            "UTF-8 byte order mark",
            format!("\u{feff}{HEADER}ann@example.org,Ann,Lee,subscribed\n"),
            sent(0, 1, &[], |m, _| {
                assert_eq!(m[0].to_address, "ann@example.org");
                assert_eq!(m[0].greeting(), "Dear Ann");
            }),
        ),
        csv(
            "semicolons, as Excel writes in much of Europe",
            "email;first_name;last_name\nann@example.org;Ann;Lee\nbob@example.org;Bob;Roe\n",
            sent(0, 2, &[], |m, _| {
                assert_eq!(
                    to_names(m),
                    [Some("Ann Lee".into()), Some("Bob Roe".into())]
                );
            }),
        ),
        csv(
            "tabs",
            "email\tfirst_name\tlast_name\nann@example.org\tAnn\tLee\n",
            sent(0, 1, &[], |m, _| {
                assert_eq!(m[0].to_name.as_deref(), Some("Ann Lee"))
            }),
        ),
        csv(
            "CRLF line ends",
            "email,first_name,last_name\r\nann@example.org,Ann,Lee\r\nbob@example.org,Bob,Roe\r\n",
            sent(0, 2, &[], |m, _| {
                assert_eq!(
                    to_names(m),
                    [Some("Ann Lee".into()), Some("Bob Roe".into())]
                );
                assert_eq!(m[1].greeting(), "Dear Bob");
            }),
        ),
        csv(
            "old Mac CR line ends",
            "email,first_name\rann@example.org,Ann\rbob@example.org,Bob\r",
            sent(0, 2, &[], |m, _| {
                assert_eq!(to_names(m), [Some("Ann".into()), Some("Bob".into())]);
            }),
        ),
        csv(
            "quoted line breaks keep later line numbers right",
            "email,first_name,city\nann@example.org,Ann,\"1 Example Street\nLondon\"\nbob@example.org,Bob,Leeds\nnot-an-address,Cy,York\n",
            refused(&["list.csv: line 5: invalid address `not-an-address`: it has no `@`"]),
        ),
        csv(
            "a line break inside a quoted name",
            "email,first_name,last_name\nann@example.org,\"Ann\nMarie\",Lee\n",
            sent(0, 1, &[], |m, _| no_injection(m, "Ann Marie Lee")),
        ),
        csv(
            "a quote never closed swallows the next rows",
            "email,first_name\nann@example.org,\"Ann\nbob@example.org,Bob\ncy@example.org,Cy\n",
            refused(&[
                "list.csv: line 2: cannot read this row: a `\"` in it is not closed",
                "from `bob@example.org,Bob`",
                "1 unreadable row(s); nothing was sent",
            ]),
        ),
        csv(
            "a 1 MB name and a 1 MB merge field are cut",
            format!(
                "email,first_name,last_name,city\nann@example.org,{},Lee,{}\n",
                "A".repeat(1 << 20),
                "B".repeat(1 << 20)
            ),
            sent(0, 1, &[], |m, _| {
                let name = m[0].to_name.as_deref().unwrap();
                assert_eq!(name, format!("{} Lee", "A".repeat(256)));
                assert!(m[0].raw.len() < 100_000, "{} bytes", m[0].raw.len());
            }),
        ),
        csv(
            "a 1 MB address cell",
            format!(
                "{HEADER}{}@example.org,Ann,Lee,subscribed\n",
                "a".repeat(1 << 20)
            ),
            refused(&[
                "list.csv: line 2: invalid address `aaaa",
                "…`",
                "is not valid",
            ]),
        ),
        csv(
            "Windows-1252 bytes",
            b"email,first_name,last_name\nann@example.org,Jos\xe9,Garc\xeda\n",
            sent(0, 1, &["is not UTF-8; read it as Windows-1252"], |m, _| {
                assert_eq!(m[0].to_name.as_deref(), Some("José García"));
                assert_eq!(m[0].greeting(), "Dear José");
            }),
        ),
        csv(
            "bytes that are neither UTF-8 nor Windows-1252",
            b"email,first_name\nann@example.org,A\x81\x8d\n",
            refused(&[
                "`list.csv` line 2 is not valid UTF-8",
                "save it as CSV UTF-8",
            ]),
        ),
        csv(
            "UTF-16 (Excel's \"Unicode Text\")",
            b"\xff\xfee\x00m\x00a\x00i\x00l\x00",
            refused(&["`list.csv` is saved as UTF-16", "CSV UTF-8"]),
        ),
        bad_address("address without @", "plainaddress", "it has no `@`"),
        bad_address(
            "nothing before @",
            "@example.org",
            "nothing comes before the `@`",
        ),
        bad_address("nothing after @", "ann@", "nothing comes after the `@`"),
        bad_address("two @", "ann@@example.org", "it has more than one `@`"),
        bad_address(
            "domain without a dot",
            "ann@example",
            "the domain `example` has no dot",
        ),
        bad_address(
            "domain ending in a dot",
            "ann@example.org.",
            "ends with a dot",
        ),
        bad_address(
            "two dots in the domain",
            "ann@example..org",
            "has two dots in a row",
        ),
        bad_address(
            "underscore in the domain",
            "ann@exa_mple.org",
            "contains `_`",
        ),
        bad_address("space inside", "ann lee@example.org", "it contains a space"),
        bad_address(
            "name and angle brackets",
            "Ann <ann@example.org>",
            "keep only the address `ann@example.org`",
        ),
        bad_address(
            "zero-width space",
            "ann@example.org\u{200b}",
            "invisible character",
        ),
        bad_address("address literal", "ann@[127.0.0.1]", "contains `[`"),
        bad_address(
            "leading dot",
            ".ann@example.org",
            "the part before the `@` (`.ann`) is not valid",
        ),
        bad_address(
            "dots in a row before @",
            "an..n@example.org",
            "the part before the `@` (`an..n`) is not valid",
        ),
        bad_address(
            "scheme as a local part",
            "javascript:alert(1)@example.org",
            "the part before the `@` (`javascript:alert(1)`) is not valid",
        ),
        bad_address(
            "domain label starting with -",
            "ann@-example.org",
            "the domain `-example.org` is not valid",
        ),
        bad_address(
            "local part over 64 characters",
            Box::leak(format!("{}@example.org", "a".repeat(65)).into_boxed_str()),
            "is not valid",
        ),
        csv(
            "empty email cell",
            format!("{HEADER}ok@example.org,Ok,Row,\n,Ann,Lee,subscribed\n"),
            refused(&["list.csv: line 3: invalid address ``: the `email` cell is empty"]),
        ),
        csv(
            "a line break in the address is refused, not sent",
            format!("{HEADER}\"ann@example.org\nBcc: victim@evil.example\",Ann,Lee,subscribed\n"),
            refused(&[
                "list.csv: line 2: invalid address",
                "line break or another invisible character",
            ]),
        ),
        Case {
            args: ["send", ISSUE, "--subscribers", "list.csv", "--dry-run"].to_vec(),
            ..csv(
                "invalid addresses stop a dry run too",
                format!("{HEADER}ann@example.org,Ann,Lee,\nbob@,Bob,Roe,\n"),
                refused(&[
                    "list.csv: line 3: invalid address `bob@`",
                    "nothing was sent",
                ]),
            )
        },
        Case {
            args: [
                "send",
                ISSUE,
                "--subscribers",
                "list.csv",
                "--yes",
                "--skip-invalid",
            ]
            .to_vec(),
            ..csv(
                "--skip-invalid sends to the valid rows only",
                format!(
                    "{HEADER}ann@example.org,Ann,Lee,\nbob@,Bob,Roe,\ncy@example.org,Cy,Poe,\n"
                ),
                sent(
                    0,
                    2,
                    &["list.csv: line 3: invalid address `bob@`"],
                    |m, _| {
                        assert_eq!(addresses(m), ["ann@example.org", "cy@example.org"]);
                    },
                ),
            )
        },
        csv(
            "+tags are kept",
            format!("{HEADER}ann+news@example.org,Ann,Lee,\n"),
            sent(0, 1, &[], |m, _| {
                assert_eq!(m[0].to_address, "ann+news@example.org")
            }),
        ),
        csv(
            "an upper-case duplicate is sent once",
            format!(
                "{HEADER}Ann@Example.ORG,Ann,Lee,\nann@example.org,Ann,Again,\nbob@example.org,Bob,Roe,\n"
            ),
            sent(
                0,
                2,
                &[
                    "line 3: `ann@example.org` is already on line 2; this row is skipped",
                    "1 duplicate address(es) will be sent once",
                ],
                |m, _| {
                    assert_eq!(addresses(m), ["Ann@Example.ORG", "bob@example.org"]);
                    assert_eq!(
                        m[0].to_name.as_deref(),
                        Some("Ann Lee"),
                        "the first row wins"
                    );
                },
            ),
        ),
        csv(
            "subscribed and unsubscribed at once",
            format!(
                "{HEADER}ann@example.org,Ann,Lee,subscribed\nANN@example.org,Ann,Lee,unsubscribed\n"
            ),
            refused(&[
                "line 3: `ANN@example.org` is subscribed on line 2 but unsubscribed on line 3",
                "1 address(es) listed as both subscribed and not",
            ]),
        ),
        csv(
            "internationalised domain",
            format!("{HEADER}ann@bücher.example,Ann,Lee,\nbob@xn--bcher-kva.example,Bob,Roe,\n"),
            sent(0, 2, &[], |m, _| {
                assert_eq!(
                    addresses(m),
                    ["ann@bücher.example", "bob@xn--bcher-kva.example"]
                );
            }),
        ),
        csv(
            "internationalised local part",
            format!("{HEADER}zoë@example.org,Zoë,Lee,\n"),
            sent(0, 1, &[], |m, _| {
                assert_eq!(m[0].to_address, "zoë@example.org")
            }),
        ),
        csv(
            "CRLF and Bcc in a name (header injection)",
            one("\"Eve\r\nBcc: victim@evil.example\",Smith,"),
            sent(0, 1, &[], |m, _| {
                no_injection(m, "Eve Bcc: victim@evil.example Smith")
            }),
        ),
        csv(
            "bare LF and a header in a last name",
            one("Eve,\"Smith\nX-Injected: yes\","),
            sent(0, 1, &[], |m, _| {
                no_injection(m, "Eve Smith X-Injected: yes")
            }),
        ),
        csv(
            "bare CR in a name",
            one("\"Eve\rCc: victim@evil.example\",Smith,"),
            sent(0, 1, &[], |m, _| {
                no_injection(m, "Eve Cc: victim@evil.example Smith")
            }),
        ),
        csv(
            "NUL, NEL and LINE SEPARATOR in a name",
            format!(
                "{HEADER}ann@example.org,Eve\u{0}Bcc: a@evil.example,Smith\u{85}Cc: b@evil.example\u{2028}Roe,\n"
            ),
            sent(0, 1, &[], |m, _| {
                no_injection(m, "Eve Bcc: a@evil.example Smith Cc: b@evil.example Roe")
            }),
        ),
        csv(
            "a name that ends the header section and starts HTML",
            one("\"Eve\r\n\r\n<html>gotcha\",Smith,"),
            sent(0, 1, &[], |m, _| no_injection(m, "Eve <html>gotcha Smith")),
        ),
        csv(
            "HTML and <script> in names",
            one("<script>alert(1)</script>,\"<b onmouseover=\"\"x()\"\">Lee</b>\","),
            sent(0, 1, &[], |m, _| {
                assert_eq!(
                    m[0].to_name.as_deref(),
                    Some("<script>alert(1)</script> <b onmouseover=\"x()\">Lee</b>")
                );
                assert!(
                    m[0].html
                        .contains("Dear &lt;script&gt;alert(1)&lt;/script&gt;")
                );
                assert!(
                    !m[0].html.contains("<script"),
                    "raw <script> in the HTML part"
                );
                assert_eq!(m[0].greeting(), "Dear <script>alert(1)</script>");
            }),
        ),
        csv(
            "an attribute break in a merge field",
            "email,first_name\nann@example.org,\"\"\"><img src=x onerror=alert(1)>\"\n",
            sent(0, 1, &[], |m, _| {
                assert!(
                    !m[0].html.contains("<img src=x"),
                    "raw <img> in the HTML part"
                );
                assert!(
                    m[0].html
                        .contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;")
                        || m[0]
                            .html
                            .contains("\"&gt;&lt;img src=x onerror=alert(1)&gt;")
                );
            }),
        ),
        csv(
            "right-to-left names",
            format!("{HEADER}ann@example.org,محمد,الأحمد,\nbob@example.org,דוד,כהן,\n"),
            sent(0, 2, &[], |m, _| {
                assert_eq!(
                    to_names(m),
                    [Some("محمد الأحمد".into()), Some("דוד כהן".into())]
                );
                assert_eq!(m[1].greeting(), "Dear דוד");
            }),
        ),
        csv(
            "emoji names",
            format!("{HEADER}ann@example.org,🎉 Ann,Lee 👩🏽‍💻,\n"),
            sent(0, 1, &[], |m, _| {
                assert_eq!(m[0].to_name.as_deref(), Some("🎉 Ann Lee 👩🏽‍💻"));
                assert_eq!(m[0].greeting(), "Dear 🎉 Ann");
            }),
        ),
        csv(
            "unknown status value",
            format!("{HEADER}ann@example.org,Ann,Lee,active\nbob@example.org,Bob,Roe,subscribed\n"),
            refused(&[
                "list.csv: line 2: unknown status `active`",
                "use `subscribed`, `unsubscribed`, `bounced` or `complained`",
                "1 unknown status value(s)",
            ]),
        ),
        csv(
            "status values in any case and spacing",
            format!(
                "{HEADER}ann@example.org,Ann,Lee, SUBSCRIBED \nbob@example.org,Bob,Roe,Unsubscribed\ncy@example.org,Cy,Poe,bounced\n"
            ),
            sent(0, 1, &[], |m, _| {
                assert_eq!(addresses(m), ["ann@example.org"])
            }),
        ),
        csv(
            "empty rows above the header, as Excel leaves them",
            format!(",,,\n,,,\n{HEADER}ann@example.org,Ann,Lee,\n"),
            sent(0, 1, &[], |m, _| {
                assert_eq!(m[0].to_name.as_deref(), Some("Ann Lee"))
            }),
        ),
        csv(
            "a row with more cells than the header",
            format!("{HEADER}ann@example.org,Ann,Lee,,extra,cells\n"),
            refused(&[
                "list.csv: line 2: cannot read this row: it has 6 fields but the header has 4",
            ]),
        ),
        csv(
            "a status in the wrong column (one field too many)",
            format!(
                "{HEADER}bob@example.org,Bob,Roe,subscribed\nann@example.org,Ann,Lee,,unsubscribed\n"
            ),
            refused(&[
                "list.csv: line 3: cannot read this row: it has 5 fields but the header has 4",
            ]),
        ),
        csv(
            "a status in the wrong column (one field too few)",
            format!("{HEADER}ann@example.org,Ann,unsubscribed\n"),
            refused(&[
                "list.csv: line 2: cannot read this row: it has 3 fields but the header has 4",
            ]),
        ),
        csv(
            "an opt-out column from a CRM, no status column",
            "email,first_name,unsubscribed\nann@example.org,Ann,yes\nbob@example.org,Bob,no\n",
            sent(0, 1, &["opted out in `unsubscribed` 1"], |m, _| {
                assert_eq!(m[0].to_address, "bob@example.org");
            }),
        ),
        csv(
            "an opt_out column with true/false",
            "email,first_name,opt_out\nann@example.org,Ann,TRUE\nbob@example.org,Bob,false\n",
            sent(0, 1, &["opted out in `opt_out` 1"], |m, _| {
                assert_eq!(m[0].to_address, "bob@example.org");
            }),
        ),
        csv(
            "Salesforce's Email Opt Out",
            "Email,First Name,Email Opt Out\nann@example.org,Ann,1\nbob@example.org,Bob,0\n",
            sent(0, 1, &["opted out in `Email Opt Out` 1"], |m, _| {
                assert_eq!(m[0].to_address, "bob@example.org");
            }),
        ),
        csv(
            "words of choice in a consent column",
            "email,first_name,email_marketing_consent\nann@example.org,Ann,unsubscribed\nbob@example.org,Bob,opted out\ncy@example.org,Cy,subscribed\n",
            sent(
                0,
                1,
                &["opted out in `email_marketing_consent` 2"],
                |m, _| {
                    assert_eq!(m[0].to_address, "cy@example.org");
                },
            ),
        ),
        {
            // With --skip-invalid the rest are mailed, but never an address
            // whose other row, unreadable, may say it opted out.
            let mut case = csv(
                "--skip-invalid and an unreadable row of a subscribed address",
                format!(
                    "{HEADER}ann@example.org,Ann,Lee,subscribed\nbob@example.org,Bob,Roe,subscribed\ncy@example.org,Cy,Poe,subscribed\nann@example.org,Ann,Lee,,unsubscribed\nBOB@example.org,Bob,Roe,Unsubscribed 2024-05-01\n"
                ),
                sent(
                    0,
                    1,
                    &[
                        "list.csv: line 5: cannot read this row",
                        "list.csv: line 6: unknown status",
                    ],
                    |m, _| {
                        assert_eq!(m[0].to_address, "cy@example.org");
                    },
                ),
            );
            case.args.push("--skip-invalid");
            case
        },
        csv(
            "a consent column saying no",
            "email,first_name,consent\nann@example.org,Ann,no\nbob@example.org,Bob,yes\n",
            sent(0, 1, &["opted out in `consent` 1"], |m, _| {
                assert_eq!(m[0].to_address, "bob@example.org");
            }),
        ),
        csv(
            "an opt-out value that is neither yes nor no",
            "email,first_name,do_not_email\nann@example.org,Ann,perhaps\n",
            refused(&[
                "list.csv: line 2: `do_not_email` is `perhaps`, which says neither yes nor no",
            ]),
        ),
        csv(
            "a bidi override in a name",
            format!("{HEADER}ann@example.org,\u{202E}nnA,Lee,\n"),
            sent(0, 1, &[], |m, _| {
                assert_eq!(m[0].to_name.as_deref(), Some("nnA Lee"));
                assert_eq!(m[0].greeting(), "Dear nnA");
            }),
        ),
    ]
}

// ---------------------------------------------------------------------------
// The issue, the archive and the configuration
// ---------------------------------------------------------------------------

fn file_cases() -> Vec<Case> {
    vec![
        edit(
            "issue: TOML syntax error",
            ISSUE,
            SUBJECT_LINE,
            "subject = \"Rwanda",
            SEND,
            refused(&[
                "issues/2022-07-13.toml:3:11: `subject`: the text that starts here has no closing `\"`; end it with `\"` on the same line",
            ]),
        ),
        edit(
            "issue: duplicate key",
            ISSUE,
            SUBJECT_LINE,
            format!("{SUBJECT_LINE}\nsubject = \"again\""),
            SEND,
            refused(&["issues/2022-07-13.toml:4:1: duplicate key"]),
        ),
        edit(
            "issue: wrong type",
            ISSUE,
            SUBJECT_LINE,
            "subject = 5",
            SEND,
            refused(&[
                "issues/2022-07-13.toml:3:11: `subject`: invalid type: integer `5`, expected a string",
            ]),
        ),
        edit(
            "issue: unknown key",
            ISSUE,
            SUBJECT_LINE,
            format!("{SUBJECT_LINE}\ncolour = \"red\""),
            SEND,
            refused(&["issues/2022-07-13.toml:4:1: unknown field `colour`, expected one of"]),
        ),
        edit(
            "issue: missing required key",
            ISSUE,
            SUBJECT_LINE,
            "",
            SEND,
            refused(&["issues/2022-07-13.toml:1:1: missing field `subject`"]),
        ),
        edit(
            "issue: a line break in the subject",
            ISSUE,
            SUBJECT_LINE,
            "subject = \"Hello\\r\\nBcc: victim@evil.example\"",
            SEND,
            refused(&[
                "issues/2022-07-13.toml:3:11: `subject` contains a line break or control character",
            ]),
        ),
        edit(
            "issue: unknown post id",
            ISSUE,
            "posts = [",
            "posts = [\"no-such-post\", ",
            SEND,
            refused(&[
                "issues/2022-07-13.toml:",
                "no post with id `no-such-post` in the archive",
            ]),
        ),
        edit(
            "issue: mistyped event id",
            ISSUE,
            "\"refugee-week-2022-twitter-space\",",
            "\"refugee-week-2022-twitter-spac\",",
            SEND,
            refused(&[
                "issues/2022-07-13.toml:41:5: no event with id `refugee-week-2022-twitter-spac`",
                "did you mean `refugee-week-2022-twitter-space`",
            ]),
        ),
        edit(
            "issue: a 10,000-character subject",
            ISSUE,
            SUBJECT_LINE,
            format!("subject = \"{}\"", "a".repeat(10_000)),
            SEND,
            // `check` calls the text part's heading line an error: not sent.
            refused(&[
                "[text-line-too-long]",
                "`newsletter check` finds 1 error(s) in what would be sent",
            ]),
        ),
        edit(
            "issue: the skeleton's TODO left in the subject",
            ISSUE,
            SUBJECT_LINE,
            "subject = \"TODO: the subject line supporters see in their inbox\"",
            SEND,
            refused(&[
                "error: issues/2022-07-13.toml:3:12: `subject` still holds the placeholder `TODO: the subject line supporters see in their inbox` from the skeleton",
                "[placeholder]",
                "`newsletter check` finds 1 error(s) in what would be sent",
            ]),
        ),
        edit(
            "issue: the letter's closing quotes missing",
            ISSUE,
            "\n\"\"\"\n\n[[section]]",
            "\n\n[[section]]",
            SEND,
            refused(&[
                "issues/2022-07-13.toml:7:10: `letter`: the text that starts here has no closing `\"\"\"`",
            ]),
        ),
        edit(
            "archive: the event under \"Coming up\" already over",
            EVENTS,
            "start = 2022-09-05T15:00:00",
            "start = 2022-07-01T15:00:00",
            SEND,
            refused(&[
                "event `judith-series-disability-rights` starts on 2022-07-01, before the issue date 2022-07-13",
                "[past-event]",
                "`newsletter check` finds 1 error(s) in what would be sent",
            ]),
        ),
        edit(
            "issue: a 10,000-character subject, test send",
            ISSUE,
            SUBJECT_LINE,
            format!("subject = \"{}\"", "a".repeat(10_000)),
            TEST_SEND,
            // Every header line stays under 998 characters (checked for every
            // message) and the subject reads back whole.
            sent(0, 1, &[], |m, _| {
                for e in m {
                    assert_eq!(e.subject, format!("[TEST] {}", "a".repeat(10_000)));
                }
            }),
        ),
        edit(
            "issue: a 10,000-character subject of words",
            ISSUE,
            SUBJECT_LINE,
            format!("subject = \"{}\"", "word ".repeat(2_000).trim_end()),
            SEND,
            sent(0, 10, &[], |m, _| {
                assert_eq!(m[0].subject, "word ".repeat(2_000).trim_end());
                assert!(
                    !m[0].header("subject").starts_with(" =?"),
                    "plain words are not encoded"
                );
            }),
        ),
        edit(
            "issue: raw HTML and script links in the Markdown",
            ISSUE,
            "letter = \"\"\"\n",
            "letter = \"\"\"\nHi <script>alert(1)</script> <img src=x onerror=alert(2)> <a href=\"javascript:alert(3)\">raw</a> [click](javascript:alert(4)) [shout](JaVaScRiPt:alert(5)) [data](data:text/html;base64,PHNjcmlwdD4=) [vb](vbscript:msgbox) [ok](https://example.org/ok).\n\n",
            SEND,
            refused(&[
                "issues/2022-07-13.toml:8: link `javascript:alert(4)` runs code",
                "[unsafe-link]",
                "`newsletter check` finds 4 error(s)",
            ]),
        ),
        edit(
            "issue: raw HTML and script links in the Markdown, test send",
            ISSUE,
            "letter = \"\"\"\n",
            "letter = \"\"\"\nHi <script>alert(1)</script> <img src=x onerror=alert(2)> <a href=\"javascript:alert(3)\">raw</a> [click](javascript:alert(4)) [shout](JaVaScRiPt:alert(5)) [data](data:text/html;base64,PHNjcmlwdD4=) [vb](vbscript:msgbox) [ok](https://example.org/ok).\n\n",
            TEST_SEND,
            sent(0, 1, &[], |m, _| {
                let html = m[0].html.to_lowercase();
                for bad in [
                    "<script",
                    "<img src=x",
                    "<a href=\"javascript",
                    "href=\"javascript:",
                    "href=\"data:",
                    "href=\"vbscript:",
                ] {
                    assert!(!html.contains(bad), "`{bad}` in the HTML part");
                }
                assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
                assert!(html.contains("href=\"https://example.org/ok\""));
                let text = m[0].text.to_lowercase();
                for bad in ["<javascript:", "<data:", "<vbscript:"] {
                    assert!(!text.contains(bad), "`{bad}` in the text part");
                }
                let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
                assert!(
                    words.contains("raw</a> click shout data vb ok <https://example.org/ok>."),
                    "the links keep their text, and only the https one its URL"
                );
            }),
        ),
        edit(
            "issue: a template marker in the Markdown",
            ISSUE,
            "letter = \"\"\"\n",
            "letter = \"\"\"\nMarker <!--slot:unsubscribe--> here.\n\n",
            SEND,
            sent(0, 10, &[], |m, _| {
                assert!(!m[0].html.contains("<!--slot:"), "a slot marker survived");
                assert!(!m[0].text.contains("<!--slot:"), "a slot marker survived");
            }),
        ),
        edit(
            "issue: date as a string",
            ISSUE,
            "date = 2022-07-13",
            "date = \"13/07/2022\"",
            SEND,
            refused(&[
                "issues/2022-07-13.toml:5:8: `date`: write the date as `2022-07-13` (year-month-day), with no quotes\n",
            ]),
        ),
        edit(
            "issue: 30 February",
            ISSUE,
            "date = 2022-07-13",
            "date = 2022-02-30",
            SEND,
            refused(&["issues/2022-07-13.toml:5:8: invalid date"]),
        ),
        edit(
            "issue: month 13",
            ISSUE,
            "date = 2022-07-13",
            "date = 2022-13-01",
            SEND,
            refused(&[
                "issues/2022-07-13.toml:5:8: invalid date, expected month between 01 and 12",
            ]),
        ),
        edit(
            "issue: a date with a time",
            ISSUE,
            "date = 2022-07-13",
            "date = 2022-07-13T10:00:00",
            SEND,
            refused(&[
                "issues/2022-07-13.toml:5:8: `date` is the day of the issue: write the date as `2022-07-13` (year-month-day), with no quotes and no time\n",
            ]),
        ),
        edit(
            "issue: an unclosed merge field",
            ISSUE,
            "greeting = \"Dear {{first_name|Supporter}}\"",
            "greeting = \"Dear {{first_name\"",
            SEND,
            refused(&["issues/2022-07-13.toml:", "without a closing `}}`"]),
        ),
        Case {
            setup: Box::new(|p| fs::write(p.path(ISSUE), b"subject = \"caf\xe9\"\n").unwrap()),
            ..edit(
                "issue: not UTF-8",
                ISSUE,
                "",
                "",
                SEND,
                refused(&["cannot read `issues/2022-07-13.toml`", "valid UTF-8"]),
            )
        },
        edit(
            "archive: duplicate post id",
            POSTS,
            "id = \"a-hidden-gem-britains-first-female-jewish-mp\"",
            "id = \"hands-off-our-human-rights-act\"",
            SEND,
            refused(&[
                "archive/posts.toml:19:6: post id `hands-off-our-human-rights-act` is used twice",
            ]),
        ),
        edit(
            "archive: post id with spaces and capitals",
            POSTS,
            "id = \"a-hidden-gem-britains-first-female-jewish-mp\"",
            "id = \"A Hidden Gem\"",
            SEND,
            refused(&[
                "archive/posts.toml:12:6: id `A Hidden Gem` must use lowercase letters, digits and `-` only",
            ]),
        ),
        edit(
            "archive: unknown key in a post",
            POSTS,
            "author = \"Abi Levy\"",
            "writer = \"Abi Levy\"",
            SEND,
            refused(&["archive/posts.toml:14:1: unknown field `writer`"]),
        ),
        edit(
            "archive: a javascript: URL for a post",
            POSTS,
            "author = \"Abi Levy\"",
            "author = \"Abi Levy\"\nurl = \"javascript:alert(1)\"",
            SEND,
            refused(&[
                "archive/posts.toml:15:7: `url` is `javascript:alert(1)`, which is not a web or mail link",
            ]),
        ),
        edit(
            "archive: a data: URL for a post",
            POSTS,
            "author = \"Abi Levy\"",
            "author = \"Abi Levy\"\nurl = \"data:text/html;base64,PHNjcmlwdD4=\"",
            SEND,
            refused(&["archive/posts.toml:15:7: `url` is `data:text/html;base64,PHNjcmlwdD4=`"]),
        ),
        edit(
            "archive: a javascript: booking link for an event",
            EVENTS,
            "id = \"refugee-week-2022-twitter-space\"",
            "id = \"refugee-week-2022-twitter-space\"\nbooking-url = \"javascript:alert(1)\"",
            SEND,
            refused(&[
                "archive/events.toml:9:15: `booking-url` is `javascript:alert(1)`, which is not a web or mail link",
            ]),
        ),
        edit(
            "archive: duplicate event id",
            EVENTS,
            "id = \"refugee-week-2022-then-and-now\"",
            "id = \"refugee-week-2022-twitter-space\"",
            SEND,
            refused(&[
                "archive/events.toml:16:6: event id `refugee-week-2022-twitter-space` is used twice",
            ]),
        ),
        edit(
            "archive: unknown time zone",
            EVENTS,
            "time-zone = \"Europe/London\"",
            "time-zone = \"Mars/Olympus\"",
            SEND,
            refused(&["archive/events.toml:5:13: unknown time zone `Mars/Olympus`"]),
        ),
        edit(
            "archive: event start as text",
            EVENTS,
            "start = 2022-06-20T18:00:00",
            "start = \"20 June 2022\"",
            SEND,
            refused(&[
                "archive/events.toml:10:9: `start`: write it as `2022-06-20T` and the time, like `2022-06-20T19:00:00` (year-month-day, `T`, then the time), with no quotes",
            ]),
        ),
        edit(
            "configuration: syntax error",
            CONFIG,
            "name = \"René Cassin\"",
            "name = \"René Cassin",
            SEND,
            refused(&[
                "newsletter.toml:5:8: `name`: the text that starts here has no closing `\"`; end it with `\"` on the same line",
            ]),
        ),
        edit(
            "configuration: duplicate key",
            CONFIG,
            "name = \"René Cassin\"",
            "name = \"René Cassin\"\nname = \"again\"",
            SEND,
            refused(&["newsletter.toml:6:1: duplicate key"]),
        ),
        edit(
            "configuration: wrong type",
            CONFIG,
            "connections = 4 ",
            "connections = \"four\" ",
            SEND,
            refused(&[
                "newsletter.toml:54:15: `sending.connections`: invalid type: string \"four\"",
            ]),
        ),
        edit(
            "configuration: unknown key",
            CONFIG,
            "connections = 4 ",
            "conections = 4 ",
            SEND,
            refused(&["newsletter.toml:54:1: unknown field `conections`"]),
        ),
        edit(
            "configuration: missing key",
            CONFIG,
            "charity-number = \"1117472\"",
            "",
            SEND,
            refused(&["newsletter.toml:4:1: `list`: missing field `charity-number`"]),
        ),
        edit(
            "configuration: not an address in `from`",
            CONFIG,
            "from = \"René Cassin <newsletter@renecassin.example.org>\"",
            "from = \"not an address\"",
            SEND,
            refused(&[
                "newsletter.toml:8:8: `list.from`: `not an address` is not an address like `Name <name@example.org>`",
            ]),
        ),
        edit(
            "configuration: http site",
            CONFIG,
            "site-url = \"https://www.renecassin.org\"",
            "site-url = \"http://www.renecassin.org\"",
            SEND,
            refused(&[
                "newsletter.toml:10: `list.site-url` is `http://www.renecassin.org`; it must be an absolute https:// URL",
            ]),
        ),
        edit(
            "configuration: a List-Id with a space and a line break",
            CONFIG,
            "id = \"supporters.renecassin.example.org\"",
            "id = \"supporters list\\r\\nBcc: x@evil.example\"",
            SEND,
            refused(&[
                "newsletter.toml:7: `list.id` is `supporters list",
                "use a domain-like id",
            ]),
        ),
        edit(
            "configuration: negative rate",
            CONFIG,
            "per-second = 10 ",
            "per-second = -1 ",
            SEND,
            refused(&[
                "newsletter.toml:49: `sending.per-second` and `sending.batch-pause-seconds` must be zero or more",
            ]),
        ),
        edit(
            "configuration: a rate too small to wait for (1e-30 per second)",
            CONFIG,
            "per-second = 10 ",
            "per-second = 1e-30 ",
            SEND,
            refused(&[
                "newsletter.toml:49: `sending.per-second` is 0.000000000000000000000000000001; use 0 (no limit) or 0.01 to 100000",
            ]),
        ),
        edit(
            "configuration: a pause of a thousand years between batches",
            CONFIG,
            "batch-pause-seconds = 0",
            "batch-pause-seconds = 3.2e10",
            SEND,
            refused(&[
                "newsletter.toml:53: `sending.batch-pause-seconds` is 32000000000; use 0 to 86400",
            ]),
        ),
        edit(
            "configuration: an unsubscribe URL that adds a second target",
            CONFIG,
            "unsubscribe-url = \"https://news.renecassin.example.org/unsubscribe/{token}\"",
            "unsubscribe-url = \"https://news.renecassin.example.org/unsubscribe/{token}>, <https://evil.example/\"",
            SEND,
            refused(&[
                "newsletter.toml:17: `list.unsubscribe-url` `https://news.renecassin.example.org/unsubscribe/{token}>, <https://evil.example/` contains `>`",
            ]),
        ),
        edit(
            "configuration: a line break in the list name",
            CONFIG,
            "name = \"René Cassin\"",
            "name = \"René Cassin\\r\\nBcc: evil@example.org\"",
            SEND,
            refused(&["newsletter.toml:5: `list.name` contains the control character '\\r'"]),
        ),
        transport(
            "configuration: a line break in hello-name",
            "[transport]\nkind = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\nhello-name = \"client.example.org\\r\\nRSET\\r\\nNOOP\"",
            refused(&[
                "newsletter.toml:41: `smtp.hello-name` is `client.example.org\\r\\nRSET\\r\\nNOOP`; it is sent in the SMTP greeting, so it must be a host name",
            ]),
        ),
        transport(
            "configuration: a time-out of a year",
            "[transport]\nkind = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"none\"\ntimeout-seconds = 31536000",
            refused(&["newsletter.toml:41: `smtp.timeout-seconds` is 31536000; use 1 to 3600"]),
        ),
        edit(
            "configuration: zero connections",
            CONFIG,
            "connections = 4 ",
            "connections = 0 ",
            SEND,
            refused(&["newsletter.toml:54: `sending.connections` must be between 1 and 64"]),
        ),
        edit(
            "configuration: unknown transport",
            CONFIG,
            "kind = \"outbox\"",
            "kind = \"carrier-pigeon\"",
            SEND,
            refused(&[
                "newsletter.toml:37:8: `transport.kind`: unknown variant `carrier-pigeon`, expected `outbox` or `smtp`",
            ]),
        ),
        transport(
            "configuration: smtp without [smtp]",
            "[transport]\nkind = \"smtp\"",
            refused(&["newsletter.toml: `transport.kind` is `smtp` but there is no [smtp] table"]),
        ),
        transport(
            "configuration: TLS off to a remote host",
            "[transport]\nkind = \"smtp\"\n\n[smtp]\nhost = \"smtp.example.org\"\nport = 25\ntls = \"none\"",
            refused(&[
                "newsletter.toml: [smtp] `tls = \"none\"` to `smtp.example.org` would send passwords and addresses in clear text",
                "use `tls = \"starttls\"`",
            ]),
        ),
        transport(
            "configuration: a password in the file",
            "[transport]\nkind = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"starttls\"\nusername = \"newsletter\"\npassword = \"hunter2-in-the-file\"",
            refused(&[
                "newsletter.toml: [smtp] has a `password`; never store it in the file",
                "set `password-env = \"NEWSLETTER_SMTP_PASSWORD\"`",
            ]),
        ),
        transport(
            "configuration: a username without a password source",
            "[transport]\nkind = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"starttls\"\nusername = \"newsletter\"",
            refused(&[
                "newsletter.toml: [smtp] has a `username` but no `password-env` or `password-command`",
            ]),
        ),
        transport(
            "configuration: both password sources",
            "[transport]\nkind = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"starttls\"\nusername = \"newsletter\"\npassword-env = \"X\"\npassword-command = \"echo x\"",
            refused(&[
                "newsletter.toml: [smtp] has both `password-env` and `password-command`; keep one",
            ]),
        ),
        transport(
            "configuration: the password variable is not set",
            "[transport]\nkind = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"starttls\"\nusername = \"newsletter\"\npassword-env = \"NEWSLETTER_HOSTILE_TEST_NOT_SET\"",
            refused(&[
                "the SMTP password variable `NEWSLETTER_HOSTILE_TEST_NOT_SET` is not set; export it before sending",
            ]),
        ),
        transport(
            "configuration: the password command fails",
            "[transport]\nkind = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"starttls\"\nusername = \"newsletter\"\npassword-command = \"exit 3\"",
            refused(&["the password command `exit 3` failed"]),
        ),
        Case {
            env_remove: vec!["NEWSLETTER_UNSUBSCRIBE_SECRET"],
            ..edit(
                "configuration: the unsubscribe secret is not set",
                CONFIG,
                "",
                "",
                SEND,
                refused(&[
                    "the unsubscribe secret `NEWSLETTER_UNSUBSCRIBE_SECRET` is not set",
                    "export it",
                ]),
            )
        },
        edit(
            "configuration: the unsubscribe secret variable is renamed and unset",
            CONFIG,
            "unsubscribe-secret-env = \"NEWSLETTER_UNSUBSCRIBE_SECRET\"",
            "unsubscribe-secret-env = \"NEWSLETTER_HOSTILE_TEST_NO_SECRET\"",
            SEND,
            refused(&["the unsubscribe secret `NEWSLETTER_HOSTILE_TEST_NO_SECRET` is not set"]),
        ),
    ]
}

fn a_password_in_the_file_is_never_echoed() {
    let case = transport(
        "password echo",
        "[transport]\nkind = \"smtp\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"starttls\"\nusername = \"newsletter\"\npassword = \"hunter2-in-the-file\"",
        refused(&[]),
    );
    let p = Project::example();
    (case.setup)(&p);
    for args in [SEND, &["check"][..], &["status", ISSUE][..]] {
        let out = p.run(args);
        assert_ne!(out.code, 0, "{args:?}: {out:?}");
        assert!(
            !out.stderr.contains("hunter2") && !out.stdout.contains("hunter2"),
            "{args:?} shows the password: {out:?}"
        );
    }
}

/// A call-to-action URL is not a Markdown link, but it is neutralised the
/// same way: a `javascript:` URL loses its link in what a test send writes,
/// and a real send refuses (`check` reports it as `unsafe-link`).
/// Regression test: it once reached the button's `href`.
fn call_to_action_cases() -> Vec<Case> {
    vec![
        edit(
            "issue: javascript: as the call-to-action URL",
            ISSUE,
            "url = \"https://www.renecassin.org/donate/\"",
            "url = \"javascript:alert(1)\"",
            SEND,
            refused(&[
                "call-to-action url `javascript:alert(1)` runs code",
                "[unsafe-link]",
            ]),
        ),
        edit(
            "issue: javascript: as the call-to-action URL, test send",
            ISSUE,
            "url = \"https://www.renecassin.org/donate/\"",
            "url = \"javascript:alert(1)\"",
            TEST_SEND,
            sent(0, 1, &[], |m, _| {
                assert!(
                    !m[0].html.to_lowercase().contains("javascript:"),
                    "javascript: in the HTML part"
                );
                assert!(
                    !m[0].text.to_lowercase().contains("javascript:"),
                    "javascript: in the text part"
                );
            }),
        ),
    ]
}

fn the_corpus_is_large_enough() {
    let n = subscriber_cases().len() + file_cases().len();
    assert!(n >= 60, "only {n} cases");
}

fn case_names_are_unique() {
    let mut names = BTreeMap::new();
    for list in LISTS {
        for case in (list.1)() {
            assert!(
                names.insert(case.name, ()).is_none(),
                "two cases named {}",
                case.name
            );
        }
    }
}

/// Builds a list of cases.
type Cases = fn() -> Vec<Case>;

/// The lists of cases, each with the prefix of its tests' names.
const LISTS: [(&str, Cases); 3] = [
    ("subscriber file", subscriber_cases),
    ("issue, archive or configuration", file_cases),
    ("call to action", call_to_action_cases),
];

/// One test per case (so a case can be run alone), and the others.
fn main() -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let mut trials = Vec::new();
    for (prefix, cases) in LISTS {
        for case in cases() {
            let name = case.name;
            trials.push(libtest_mimic::Trial::test(
                format!("{prefix}: {name}"),
                move || {
                    // Cases hold closures that are not `Send`: each test
                    // builds its list again and runs its own case.
                    let case = cases()
                        .into_iter()
                        .find(|c| c.name == name)
                        .ok_or("the case is gone")?;
                    run_case(&case).map_err(|e| format!("case `{name}`: {e}").into())
                },
            ));
        }
    }
    let plain: [(&str, fn()); 3] = [
        (
            "a_password_in_the_file_is_never_echoed",
            a_password_in_the_file_is_never_echoed,
        ),
        ("the_corpus_is_large_enough", the_corpus_is_large_enough),
        ("case_names_are_unique", case_names_are_unique),
    ];
    for (name, test) in plain {
        trials.push(libtest_mimic::Trial::test(name, move || {
            std::panic::catch_unwind(test).map_err(|panic| {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into());
                message.into()
            })
        }));
    }
    libtest_mimic::run(&args, trials).exit_code()
}
