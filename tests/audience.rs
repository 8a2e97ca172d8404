//! Audiences (issue 17): an issue sent to part of the list, sections shown
//! only to the subscribers they are for. Every test runs the real binary
//! against the aiosmtpd test server (tests/support/smtp_server.py) on
//! 127.0.0.1 and parses what arrives as MIME. Needs
//! `scripts/setup-test-deps`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use support::project::{Output, Project};
use support::smtp::{SmtpServer, assert_exactly_once, per_recipient};

const ISSUE: &str = "issues/2022-07-13.toml";
const JOURNAL: &str = "journal/2022-07-13.journal";
/// The first line of `ISSUE` after which top-level keys may go.
const AFTER_DATE: &str = "date = 2022-07-13\n";
/// The headings of `ISSUE`'s sections.
const REFUGEE_WEEK: &str = "Refugee Week events";
const JUDITH: &str = "Coming up: Judith Social Justice Series";
const BLOG: &str = "From the blog";
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A list with tags as CRM exports write them.
const TAGGED: &str = "\
email,first_name,last_name,status,city,tags
ann.one@example.org,Ann,One,subscribed,London,volunteers;donor
ben.two@example.org,Ben,Two,subscribed,Leeds,ambassadors | volunteers
cy.three@example.com,Cy,Three,subscribed,london ,donor
di.four@example.org,Di,Four,subscribed,Leeds,\" Volunteers \"
ed.five@example.com,Ed,Five,subscribed,Hove,volunteers-lead
flo.six@example.org,Flo,Six,subscribed,London,volunteers|donor-no-newsletter
gus.seven@example.org,Gus,Seven,unsubscribed,London,volunteers
";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn project(server: &SmtpServer) -> Project {
    let p = Project::example();
    p.use_smtp(server.port, "per-second = 0\nconnections = 2");
    p
}

/// The example project with `TAGGED` as its subscriber file.
fn tagged(server: &SmtpServer) -> Project {
    let p = project(server);
    p.write("subscribers.example.csv", TAGGED);
    p
}

/// Adds top-level lines (an `audience`, an `exclude`) to `ISSUE`.
fn set_issue_audience(p: &Project, lines: &str) {
    p.edit(ISSUE, AFTER_DATE, &format!("{AFTER_DATE}{lines}\n"));
}

/// Adds lines to the section of `ISSUE` with this heading.
fn set_section_audience(p: &Project, heading: &str, lines: &str) {
    let line = format!("heading = \"{heading}\"\n");
    p.edit(ISSUE, &line, &format!("{line}{lines}\n"));
}

fn send(p: &Project, extra: &[&str]) -> Output {
    let mut args = vec!["send", ISSUE, "--yes"];
    args.extend_from_slice(extra);
    p.run(&args)
}

fn addresses(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

/// Each recipient's message, as its text and HTML parts.
fn parts_by_recipient(server: &SmtpServer) -> BTreeMap<String, (String, String)> {
    server
        .messages()
        .iter()
        .map(|m| {
            let msg = MessageParser::default().parse(&m.raw).expect("a message");
            let text = msg.body_text(0).expect("a text part").replace("\r\n", "\n");
            let html = msg.body_html(0).expect("an HTML part").into_owned();
            (m.rcpt_tos[0].to_lowercase(), (text, html))
        })
        .collect()
}

/// Whether a part shows a section: its heading as a heading.
fn shows(text: &str, html: &str, heading: &str) -> (bool, bool) {
    let underline = "-".repeat(heading.chars().count());
    let in_text = text.contains(&format!("\n{heading}\n{underline}\n"));
    let escaped = heading.replace('&', "&amp;");
    let in_html = html.contains(&format!(">{escaped}</h2>"));
    (in_text, in_html)
}

/// `status` as key → value.
fn status(p: &Project) -> BTreeMap<String, String> {
    let out = p.run(&["status", ISSUE]);
    out.expect_code(0);
    out.stdout
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// Who gets the issue
// ---------------------------------------------------------------------------

#[test]
fn an_issue_for_london_reaches_exactly_the_london_rows() {
    let server = SmtpServer::start();
    let p = project(&server);
    set_issue_audience(&p, "audience = { city = \"London\" }");
    let out = send(&p, &[]);
    out.expect_code(0);
    assert_exactly_once(
        &server,
        &addresses(&["ruth.abrahams@example.org", "rahel.tesfaye@supporters.test"]),
    );
    assert!(
        out.stderr
            .contains("Audience: city = london: selects 2 of 10 subscribed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("outside the audience 8"),
        "{}",
        out.stderr
    );
    let s = status(&p);
    assert_eq!(s["accepted"], "2");
    assert_eq!(s["pending"], "0");
    assert_eq!(s["outside the audience (not pending)"], "8");
    // The journal records the audience, in words.
    let journal = p.read(JOURNAL);
    let header = journal.lines().next().unwrap();
    assert!(
        header.contains("\"audience\":\"issue: city = london\""),
        "{header}"
    );
    // Again: nothing more to send.
    let again = send(&p, &[]);
    again.expect_code(0);
    assert!(again.stderr.contains("Nothing to send"), "{}", again.stderr);
    assert_eq!(server.arrivals().len(), 2);
}

#[test]
fn a_tags_cell_listing_values_with_semicolons_and_pipes_matches_any_of_them() {
    let server = SmtpServer::start();
    let p = tagged(&server);
    set_issue_audience(&p, "audience = { tags = \"volunteers\" }");
    send(&p, &[]).expect_code(0);
    // `volunteers-lead` is another value; Gus is unsubscribed.
    assert_exactly_once(
        &server,
        &addresses(&[
            "ann.one@example.org",
            "ben.two@example.org",
            "di.four@example.org",
            "flo.six@example.org",
        ]),
    );
}

#[test]
fn any_value_of_a_list_matches_and_every_key_must_match() {
    let server = SmtpServer::start();
    let p = tagged(&server);
    set_issue_audience(
        &p,
        "audience = { city = [\"London\", \"Hove\"], tags = [\"donor\", \"volunteers-lead\"] }",
    );
    send(&p, &[]).expect_code(0);
    assert_exactly_once(
        &server,
        &addresses(&[
            "ann.one@example.org",
            "cy.three@example.com",
            "ed.five@example.com",
        ]),
    );
}

#[test]
fn exclude_wins_over_the_audience() {
    let server = SmtpServer::start();
    let p = tagged(&server);
    set_issue_audience(
        &p,
        "audience = { city = \"London\" }\nexclude = { tags = \"donor-no-newsletter\" }",
    );
    let out = send(&p, &[]);
    out.expect_code(0);
    assert_exactly_once(
        &server,
        &addresses(&["ann.one@example.org", "cy.three@example.com"]),
    );
    assert!(
        out.stderr.contains(
            "Audience: city = london, except tags = donor-no-newsletter: selects 2 of 6 subscribed"
        ),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------
// Who sees a section
// ---------------------------------------------------------------------------

#[test]
fn a_section_for_volunteers_is_in_their_messages_html_and_text_and_nobody_elses() {
    let server = SmtpServer::start();
    let p = tagged(&server);
    set_section_audience(&p, JUDITH, "audience = { tags = \"volunteers\" }");
    let out = send(&p, &[]);
    out.expect_code(0);
    assert!(
        out.stderr.contains(&format!(
            "section 2 `{JUDITH}` (tags = volunteers): seen by 4 of 6"
        )),
        "{}",
        out.stderr
    );
    let volunteers: BTreeSet<&str> = [
        "ann.one@example.org",
        "ben.two@example.org",
        "di.four@example.org",
        "flo.six@example.org",
    ]
    .into();
    let parts = parts_by_recipient(&server);
    assert_eq!(parts.len(), 6);
    for (rcpt, (text, html)) in &parts {
        let wanted = volunteers.contains(rcpt.as_str());
        assert_eq!(
            shows(text, html, JUDITH),
            (wanted, wanted),
            "{rcpt}:\n{text}"
        );
        // The other sections are in every message, the spacing unchanged.
        for heading in [REFUGEE_WEEK, BLOG] {
            assert_eq!(shows(text, html, heading), (true, true), "{rcpt}");
        }
        assert!(
            !text.contains("\n\n\n"),
            "{rcpt}: a blank line too many:\n{text}"
        );
        assert!(!text.contains("<!--"), "{rcpt}: a marker left:\n{text}");
        assert!(!html.contains("slot:section"), "{rcpt}: a marker left");
        // The calendar link of the section's event goes with it.
        assert_eq!(
            text.contains("judith-series-disability-rights"),
            wanted,
            "{rcpt}"
        );
    }
}

#[test]
fn three_section_audiences_give_each_subscriber_their_own_combination() {
    let server = SmtpServer::start();
    let p = tagged(&server);
    set_section_audience(&p, REFUGEE_WEEK, "audience = { city = \"London\" }");
    set_section_audience(&p, JUDITH, "audience = { tags = \"ambassadors\" }");
    set_section_audience(&p, BLOG, "exclude = { tags = \"donor\" }");
    send(&p, &[]).expect_code(0);
    let want: BTreeMap<&str, [bool; 3]> = [
        ("ann.one@example.org", [true, false, false]),
        ("ben.two@example.org", [false, true, true]),
        ("cy.three@example.com", [true, false, false]),
        ("di.four@example.org", [false, false, true]),
        ("ed.five@example.com", [false, false, true]),
        ("flo.six@example.org", [true, false, true]),
    ]
    .into();
    let parts = parts_by_recipient(&server);
    for (rcpt, (text, html)) in &parts {
        let got = [REFUGEE_WEEK, JUDITH, BLOG].map(|h| shows(text, html, h));
        let wanted = want[rcpt.as_str()].map(|w| (w, w));
        assert_eq!(got, wanted, "{rcpt}:\n{text}");
    }
    assert_eq!(parts.len(), want.len());
}

#[test]
fn a_test_send_as_a_subscriber_shows_exactly_their_sections() {
    let server = SmtpServer::start();
    let p = tagged(&server);
    set_section_audience(&p, JUDITH, "audience = { tags = \"volunteers\" }");
    let out = p.run(&[
        "send",
        ISSUE,
        "--test-to",
        "staff@example.org",
        "--as",
        "Ben.Two@example.org",
    ]);
    out.expect_code(0);
    assert!(
        out.stderr.contains(&format!(
            "section 2 `{JUDITH}` (tags = volunteers): included for `ben.two@example.org`"
        )),
        "{}",
        out.stderr
    );
    let out = p.run(&[
        "send",
        ISSUE,
        "--test-to",
        "staff@example.org",
        "--as",
        "cy.three@example.com",
    ]);
    out.expect_code(0);
    let messages = server.messages();
    assert_eq!(messages.len(), 2);
    for (message, (first_name, wanted)) in messages.iter().zip([("Ben", true), ("Cy", false)]) {
        assert_eq!(message.rcpt_tos, ["staff@example.org"]);
        let msg = MessageParser::default().parse(&message.raw).unwrap();
        let text = msg.body_text(0).unwrap().replace("\r\n", "\n");
        let html = msg.body_html(0).unwrap();
        assert!(text.contains(&format!("Dear {first_name}")), "{text}");
        assert_eq!(shows(&text, &html, JUDITH), (wanted, wanted), "{text}");
    }
    // Not a subscriber of the file: refused, nothing sent.
    let out = p.run(&[
        "send",
        ISSUE,
        "--test-to",
        "staff@example.org",
        "--as",
        "nobody@example.org",
    ]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("--as `nobody@example.org`"),
        "{}",
        out.stderr
    );
    assert_eq!(server.messages().len(), 2);
    assert!(!p.path(JOURNAL).exists());
}

#[test]
fn preview_names_the_sections_the_chosen_subscriber_gets() {
    let server = SmtpServer::start();
    let p = tagged(&server);
    set_issue_audience(&p, "audience = { city = \"Leeds\" }");
    set_section_audience(&p, BLOG, "audience = { tags = \"ambassadors\" }");
    let out = p.run(&["preview", ISSUE, "--as", "di.four@example.org"]);
    out.expect_code(0);
    assert!(
        out.stderr.contains(&format!(
            "section 3 `{BLOG}` (tags = ambassadors): left out for `di.four@example.org`"
        )),
        "{}",
        out.stderr
    );
    let text = p.read("preview/2022-07-13/index.txt");
    assert!(!text.contains(BLOG), "{text}");
    let out = p.run(&["preview", ISSUE, "--as", "ann.one@example.org"]);
    out.expect_code(0);
    assert!(
        out.stderr
            .contains("`ann.one@example.org` is outside the issue's audience (city = leeds)"),
        "{}",
        out.stderr
    );
}

#[test]
fn preview_serve_shows_the_picked_subscribers_sections_and_the_reach() {
    use std::io::{BufRead, BufReader, Read, Write};
    let server = SmtpServer::start();
    let p = tagged(&server);
    set_section_audience(&p, JUDITH, "audience = { tags = \"volunteers\" }");
    let mut child = p
        .command(&["preview", ISSUE, "--serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let get = |query: &str| {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "GET /?{query} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut page = String::new();
        stream.read_to_string(&mut page).unwrap();
        page
    };
    let ben = get("as=ben.two%40example.org");
    let cy = get("as=cy.three%40example.com");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        ben.contains(&format!(
            "section 2 `{JUDITH}` (tags = volunteers): included for `ben.two@example.org`"
        )),
        "{ben}"
    );
    assert!(
        cy.contains(&format!(
            "section 2 `{JUDITH}` (tags = volunteers): left out for `cy.three@example.com`"
        )),
        "{cy}"
    );
    for page in [&ben, &cy] {
        assert!(page.contains("id=\"reach\""), "{page}");
        assert!(page.contains(&format!("section 2 `{JUDITH}`: 4 (tags = volunteers)")));
    }
}

#[test]
fn the_public_web_page_leaves_out_audienced_sections_and_says_nothing_personal() {
    let server = SmtpServer::start();
    let p = tagged(&server);
    let page = |p: &Project| {
        p.run(&["web", "build"]).expect_code(0);
        p.read("site/issues/2022-07-13/index.html")
    };
    let everyone = page(&p);
    assert!(everyone.contains(JUDITH));
    // The issue's own audience changes nothing on the page.
    set_issue_audience(&p, "audience = { city = \"London\" }");
    assert_eq!(page(&p), everyone);
    set_section_audience(&p, JUDITH, "audience = { tags = \"volunteers\" }");
    let public = page(&p);
    assert!(
        !public.contains(JUDITH),
        "the audienced section is left out"
    );
    assert!(!public.contains("judith-series-disability-rights"));
    assert!(public.contains(REFUGEE_WEEK) && public.contains(BLOG));
    for marker in ["slot:", "volunteers", "@example.org"] {
        assert!(!public.contains(marker), "the page says `{marker}`");
    }
}

// ---------------------------------------------------------------------------
// Mistakes
// ---------------------------------------------------------------------------

#[test]
fn an_unknown_column_and_an_empty_audience_fail_check_with_file_line_and_suggestion() {
    let server = SmtpServer::start();
    let p = project(&server);
    set_issue_audience(&p, "audience = { cty = \"London\" }");
    let out = p.run(&["check", ISSUE]);
    out.expect_code(1);
    assert!(
        out.stdout
            .contains("     6:20  error    unknown-audience-column"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("did you mean `city`?"),
        "{}",
        out.stdout
    );
    // `send` refuses it before connecting.
    let sent = send(&p, &[]);
    sent.expect_code(2);
    assert!(
        sent.stderr.contains("unknown-audience-column"),
        "{}",
        sent.stderr
    );

    let p = project(&server);
    set_issue_audience(&p, "audience = {}");
    let out = p.run(&["check", ISSUE]);
    out.expect_code(1);
    assert!(
        out.stdout.contains("     6:12  error    empty-audience"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("`audience` is empty"), "{}", out.stdout);

    let p = project(&server);
    set_issue_audience(&p, "audience = { city = \"Paris\" }");
    let out = p.run(&["check", ISSUE]);
    out.expect_code(1);
    assert!(
        out.stdout.contains("audience-matches-nobody") && out.stdout.contains("     6:12"),
        "{}",
        out.stdout
    );
    let sent = send(&p, &[]);
    sent.expect_code(2);
    assert!(server.arrivals().is_empty());
}

#[test]
fn bad_audience_values_are_refused_with_file_line_and_exit_2() {
    let cases = [
        (
            "audience = \"London\"",
            "`audience` must be a table",
            "the text `London`",
        ),
        (
            "audience = { city = [] }",
            "`audience.city` is an empty list",
            "matches nobody",
        ),
        (
            "audience = { city = { name = \"London\" } }",
            "`audience.city` must be text",
            "a table",
        ),
        (
            "audience = { city = 3 }",
            "`audience.city` must be text",
            "`\"3\"`",
        ),
        (
            "exclude = { tags = [\"a\", false] }",
            "`exclude.tags` must be text",
            "`false`",
        ),
        ("exclude = []", "`exclude` must be a table", "a list"),
    ];
    for (lines, what, value) in cases {
        let p = Project::example();
        set_issue_audience(&p, lines);
        for args in [
            vec!["send", ISSUE, "--dry-run"],
            vec!["preview", ISSUE],
            vec!["status", ISSUE],
        ] {
            let out = p.run(&args);
            out.expect_code(2);
            assert!(
                out.stderr.contains(&format!("{ISSUE}:6:"))
                    && out.stderr.contains(what)
                    && out.stderr.contains(value),
                "{lines} ({}): {}",
                args[0],
                out.stderr
            );
            assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        }
    }
    // In a section, the key is named so.
    let p = Project::example();
    set_section_audience(&p, BLOG, "audience = { tags = [] }");
    let out = p.run(&["send", ISSUE, "--dry-run"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("`section.audience.tags` is an empty list"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------
// Partial sends
// ---------------------------------------------------------------------------

#[test]
fn changing_the_audience_after_a_partial_send_is_refused() {
    let server = SmtpServer::start();
    let p = tagged(&server);
    set_issue_audience(&p, "audience = { tags = \"volunteers\" }");
    send(&p, &["--limit", "2"]).expect_code(0);
    assert_eq!(server.arrivals().len(), 2);

    p.edit(
        ISSUE,
        "audience = { tags = \"volunteers\" }",
        "audience = { tags = [\"volunteers\", \"donor\"] }",
    );
    let out = send(&p, &[]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("the issue changed after it was partly sent")
            && out.stderr.contains("audience"),
        "{}",
        out.stderr
    );
    assert_eq!(server.arrivals().len(), 2, "nothing more was sent");

    // So is a changed section audience.
    p.edit(
        ISSUE,
        "audience = { tags = [\"volunteers\", \"donor\"] }",
        "audience = { tags = \"volunteers\" }",
    );
    set_section_audience(&p, BLOG, "exclude = { city = \"Leeds\" }");
    let out = send(&p, &[]);
    out.expect_code(2);
    assert!(out.stderr.contains("audience"), "{}", out.stderr);

    // --accept-changes sends the changed version to the rest, once.
    let out = send(&p, &["--accept-changes"]);
    out.expect_code(0);
    assert_exactly_once(
        &server,
        &addresses(&[
            "ann.one@example.org",
            "ben.two@example.org",
            "di.four@example.org",
            "flo.six@example.org",
        ]),
    );
    let journal = p.read(JOURNAL);
    assert!(
        journal.contains("\"event\":\"changes-accepted\"") && journal.contains("section 3"),
        "{journal}"
    );
}

#[test]
fn who_falls_out_of_the_audience_is_not_pending_and_who_joins_is() {
    let server = SmtpServer::start();
    let p = tagged(&server);
    set_issue_audience(&p, "audience = { tags = \"volunteers\" }");
    send(&p, &["--limit", "2"]).expect_code(0);
    let s = status(&p);
    assert_eq!((s["accepted"].as_str(), s["pending"].as_str()), ("2", "2"));

    // Di leaves the volunteers, Ed joins them.
    let list = TAGGED
        .replace("\" Volunteers \"", "donor")
        .replace("volunteers-lead", "volunteers");
    p.write("subscribers.example.csv", &list);
    let s = status(&p);
    assert_eq!(s["pending"], "2", "{s:?}");
    assert_eq!(s["outside the audience (not pending)"], "2", "{s:?}");

    send(&p, &[]).expect_code(0);
    assert_exactly_once(
        &server,
        &addresses(&[
            "ann.one@example.org",
            "ben.two@example.org",
            "ed.five@example.com",
            "flo.six@example.org",
        ]),
    );
    assert_eq!(status(&p)["pending"], "0");
}

/// A list of `n` subscribers: every third an ambassador, every second a
/// volunteer, the others donors.
fn big_list(n: usize) -> (String, Vec<String>, BTreeSet<String>) {
    let mut csv = String::from("email,first_name,last_name,status,tags\n");
    let mut selected = Vec::new();
    let mut ambassadors = BTreeSet::new();
    for i in 1..=n {
        let email = format!("user{i:04}@example.org");
        let mut tags = vec![if i % 2 == 0 { "volunteers" } else { "donor" }];
        if i % 3 == 0 {
            tags.push("ambassadors");
            ambassadors.insert(email.clone());
        }
        if i % 2 == 0 || i % 3 == 0 {
            selected.push(email.clone());
        }
        csv.push_str(&format!(
            "{email},First{i},Last{i},subscribed,{}\n",
            tags.join(";")
        ));
    }
    ambassadors.retain(|a| selected.contains(a));
    (csv, selected, ambassadors)
}

#[test]
fn resuming_after_kill_9_with_audiences_sends_each_selected_subscriber_exactly_once() {
    let server = SmtpServer::start();
    let p = Project::example();
    p.use_smtp(server.port, "per-second = 20\nconnections = 1");
    let (csv, selected, ambassadors) = big_list(240);
    p.write("big.csv", &csv);
    set_issue_audience(
        &p,
        "audience = { tags = [\"volunteers\", \"ambassadors\"] }",
    );
    set_section_audience(&p, JUDITH, "audience = { tags = \"ambassadors\" }");
    set_section_audience(&p, BLOG, "exclude = { tags = \"donor\" }");
    let args = ["send", ISSUE, "--subscribers", "big.csv", "--yes"];

    let logs = tempfile::tempdir().unwrap();
    let mut child = p
        .command(&args)
        .stdout(Stdio::null())
        .stderr(fs::File::create(logs.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + RUN_TIMEOUT;
    while server.arrivals().len() < 30 {
        assert!(Instant::now() < deadline, "no arrivals");
        assert!(child.try_wait().unwrap().is_none(), "the send ended early");
        thread::sleep(Duration::from_millis(5));
    }
    // Half-way between two messages at 20 a second.
    thread::sleep(Duration::from_millis(25));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = server.arrivals().len();
    assert!(before < selected.len(), "the kill came too late");

    let out = p.run(&args);
    out.expect_code(0);
    let uncertain: BTreeSet<String> = p
        .run(&["status", ISSUE, "--subscribers", "big.csv"])
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("uncertain: "))
        .map(str::to_string)
        .collect();
    if uncertain.is_empty() {
        assert_exactly_once(&server, &selected);
    } else {
        // A message in flight at the kill: sent again only when asked, and
        // only it may arrive twice.
        p.run(&[&args[..], &["--resend-uncertain"]].concat())
            .expect_code(0);
        let counts = per_recipient(&server);
        for address in &selected {
            let n = counts.get(address).copied().unwrap_or(0);
            let most = if uncertain.contains(address) { 2 } else { 1 };
            assert!((1..=most).contains(&n), "{address}: {n} message(s)");
        }
        assert_eq!(counts.len(), selected.len(), "only the audience is mailed");
    }
    // Each message has its recipient's sections, before and after the kill.
    for (rcpt, (text, html)) in parts_by_recipient(&server) {
        let ambassador = ambassadors.contains(&rcpt);
        let volunteer = rcpt
            .trim_start_matches("user")
            .split('@')
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n % 2 == 0);
        assert_eq!(
            shows(&text, &html, JUDITH),
            (ambassador, ambassador),
            "{rcpt}"
        );
        assert_eq!(shows(&text, &html, BLOG), (volunteer, volunteer), "{rcpt}");
        assert_eq!(shows(&text, &html, REFUGEE_WEEK), (true, true), "{rcpt}");
    }
}
