//! Office tools: shell completions, the man page, `new`, `web build` and
//! `posts import`.

mod support;

use std::process::{Command, Stdio};

use support::project::Project;

#[test]
fn completions_are_printed_for_each_shell() {
    let project = Project::example();
    for (shell, marker) in [
        ("bash", "_newsletter()"),
        ("zsh", "#compdef newsletter"),
        ("fish", "complete -c newsletter"),
    ] {
        let out = project.run(&["completions", shell]);
        out.expect_code(0);
        assert!(out.stdout.contains(marker), "{shell}: {}", out.stdout);
        assert!(out.stdout.contains("preview"), "{shell} lacks subcommands");
    }
    let out = project.run(&["completions", "tcsh"]);
    out.expect_code(2);
}

#[test]
fn man_page_is_roff_with_every_command() {
    let out = Project::example().run(&["man"]);
    out.expect_code(0);
    assert!(
        out.stdout.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &out.stdout[..80]
    );
    assert!(out.stdout.contains(".TH newsletter 1"));
    for command in ["check", "preview", "send", "completions"] {
        assert!(out.stdout.contains(command), "man page lacks `{command}`");
    }
}

/// `newsletter completions bash | head -1`: the closed pipe ends the run
/// quietly with 0, no panic message.
#[test]
fn closed_pipe_exits_quietly() {
    let project = Project::example();
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let mut child = project
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close our end before the child writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?} printed: {stderr}");
    }
    // Through a real shell pipeline as well.
    let script = format!(
        "set -o pipefail; {} completions bash | head -1",
        env!("CARGO_BIN_EXE_newsletter")
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
}

#[test]
fn no_color_turns_off_colours_in_errors() {
    let project = Project::example();
    let out = project
        .command(&["completions", "nope"])
        .env("NO_COLOR", "1")
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes with NO_COLOR: {stderr:?}"
    );
    // Without NO_COLOR, forced colour does colour: the check above means something.
    let out = project
        .command(&["completions", "nope"])
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains('\u{1b}'));
}

/// Uncomments the ready-made sections of a new issue, as an editor would.
fn uncomment_sections(text: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in text.lines() {
        if line == "# [[section]]" {
            inside = true;
        }
        match line.strip_prefix("# ") {
            Some(rest) if inside => {
                out.push_str(rest);
                if rest == "]" {
                    inside = false;
                }
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[test]
fn new_issue_lists_new_posts_and_upcoming_events_and_checks_clean() {
    let project = Project::example();
    let out = project.run(&["new", "--date", "2022-07-14"]);
    out.expect_code(0);
    assert!(
        out.stdout.starts_with("issues/2022-07-14.toml\n"),
        "{}",
        out.stdout
    );
    let text = project.read("issues/2022-07-14.toml");
    assert!(!text.contains("#!"), "skeleton notes copied:\n{text}");
    assert!(!text.contains("${"), "placeholder left:\n{text}");
    assert!(text.contains("date = 2022-07-14\n"));
    assert!(text.contains("greeting = \"Dear {{first_name|Supporter}}\""));
    assert!(text.contains("url = \"https://www.renecassin.org/donate/\""));
    // Undated posts no issue references, newest (archive order) first, at most 10.
    assert!(text.contains(
        "#     \"a-hidden-gem-britains-first-female-jewish-mp\", # A Hidden Gem: Britain’s First Female Jewish MP\n"
    ));
    let listed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("#     \"") && !l.contains("judith-series"))
        .collect();
    assert_eq!(listed.len(), 10, "{listed:#?}");
    assert!(
        listed[0].contains("from-the-kindertransport"),
        "{}",
        listed[0]
    );
    // Referenced by the 13 July 2022 issue, so not new.
    assert!(!text.contains("\"hands-off-our-human-rights-act\""));
    // Upcoming: only the September 2022 event.
    assert!(text.contains(
        "#     \"judith-series-disability-rights\", # 2022-09-05 15:00 Disability Rights\n"
    ));
    assert!(!text.contains("refugee-week-2022-then-and-now"));

    // As written: one `placeholder` error per TODO field, at its line, and
    // nothing else wrong.
    let out = project.run(&["check", "--format", "json", "issues/2022-07-14.toml"]);
    out.expect_code(1);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let found: Vec<(String, String, u64, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() as u64 + 1;
    let expected = [
        ("`subject`", line("subject = \"TODO")),
        ("`preheader`", line("preheader = \"TODO")),
        ("`letter`", line("TODO: the director's letter.")),
        ("`intro` in `[call-to-action]`", line("intro = \"TODO")),
        ("`name` in `[sign-off]`", line("name = \"TODO")),
        ("`role` in `[sign-off]`", line("role = \"TODO")),
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for ((severity, code, at, message), (field, line)) in found.iter().zip(expected) {
        assert_eq!(
            (severity.as_str(), code.as_str(), *at),
            ("error", "placeholder", line)
        );
        assert!(
            message.starts_with(&format!("{field} still holds the placeholder `TODO")),
            "{message}"
        );
    }
    // With every TODO written: clean.
    let written = text
        .replace(
            "TODO: the subject line supporters see in their inbox",
            "July news",
        )
        .replace(
            "TODO: one line shown after the subject, what the issue is about",
            "What we did in July",
        )
        .replace(
            "TODO: the director's letter.",
            "Thank you for your support.",
        )
        .replace(
            "TODO: why a donation matters now, in one or two sentences.",
            "Your gift keeps us going.",
        )
        .replace("TODO: your name", "Mia Hasenson-Gross")
        .replace("TODO: your role", "Executive Director");
    assert!(!written.contains("TODO:"), "{written}");
    project.write("issues/2022-07-14.toml", &written);
    let out = project.run(&["check", "issues/2022-07-14.toml"]);
    out.expect_code(0);
    assert!(!out.stdout.contains("error "), "{}", out.stdout);
    // With every listed post and event uncommented: still no errors.
    project.write("issues/2022-07-14.toml", &uncomment_sections(&written));
    let out = project.run(&["check", "issues/2022-07-14.toml"]);
    out.expect_code(0);
    assert!(!out.stdout.contains("error "), "{}", out.stdout);
}

#[test]
fn send_refuses_an_issue_straight_from_new() {
    let project = Project::example();
    project.run(&["new", "--date", "2027-02-03"]).expect_code(0);
    let out = project.run(&["send", "issues/2027-02-03.toml", "--yes"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains(
            "error: issues/2027-02-03.toml:4:12: `subject` still holds the placeholder `TODO: the subject line supporters see in their inbox`"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("[placeholder]"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`newsletter check` finds 6 error(s) in what would be sent"),
        "{}",
        out.stderr
    );
    assert!(
        !project.path("outbox").exists()
            || std::fs::read_dir(project.path("outbox"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn new_issue_uses_post_dates_when_the_archive_has_them() {
    let project = Project::example();
    project
        .edit(
            "archive/posts.toml",
            "id = \"a-hidden-gem-britains-first-female-jewish-mp\"\n",
            "id = \"a-hidden-gem-britains-first-female-jewish-mp\"\ndate = 2022-08-01\n",
        )
        .edit(
            "archive/posts.toml",
            "id = \"not-a-single-safe-space\"\n",
            "id = \"not-a-single-safe-space\"\ndate = 2022-07-01\n",
        );
    project.run(&["new", "--date", "2022-08-02"]).expect_code(0);
    let text = project.read("issues/2022-08-02.toml");
    assert!(text.contains("since the last issue (2022-07-13)"), "{text}");
    assert!(text.contains("\"a-hidden-gem-britains-first-female-jewish-mp\""));
    // Dated before the last issue: not new, though no issue references it.
    assert!(!text.contains("\"not-a-single-safe-space\""), "{text}");
    assert!(text.contains("\"judith-series-disability-rights\""));
}

#[test]
fn new_issue_never_overwrites_and_defaults_to_today_in_london() {
    let project = Project::example();
    let out = project.run(&["new", "--date", "2022-07-13"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("`issues/2022-07-13.toml` already exists"),
        "{}",
        out.stderr
    );
    assert!(project.read("issues/2022-07-13.toml").contains("Rwanda"));

    let before = jiff::Timestamp::now()
        .in_tz("Europe/London")
        .unwrap()
        .date();
    let out = project.run(&["new"]);
    let after = jiff::Timestamp::now()
        .in_tz("Europe/London")
        .unwrap()
        .date();
    out.expect_code(0);
    let written = out.stdout.lines().next().unwrap();
    assert!(
        [before, after]
            .iter()
            .any(|d| written == format!("issues/{d}.toml")),
        "{written}"
    );
    // A second run the same day refuses.
    project
        .run(&["new", "--date", &written[7..17]])
        .expect_code(2);

    project.run(&["new", "--date", "2022-02-30"]).expect_code(2);
}

#[test]
fn new_with_a_date_in_another_shape_says_how_to_write_it() {
    let project = Project::example();
    for (written, advice) in [
        (
            "06/01/2027",
            "write the date as `2027-01-06` (year-month-day), or `2027-06-01` if you meant 1 June",
        ),
        (
            "13.07.2022",
            "write the date as `2022-07-13` (year-month-day)",
        ),
        (
            "2027/02/03",
            "write the date as `2027-02-03` (year-month-day)",
        ),
    ] {
        let out = project.run(&["new", "--date", written]);
        out.expect_code(2);
        assert!(
            out.stderr.contains(&format!(
                "invalid value '{written}' for '--date <YYYY-MM-DD>': {advice}\n"
            )),
            "{written}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("four digit"), "{}", out.stderr);
    }
    assert!(!project.path("issues/2027-01-06.toml").exists());
}

// ---------------------------------------------------------------- web build

/// Runs `web build --out OUT` in the project and returns every file under
/// OUT with its bytes, sorted by path.
fn build_site(project: &Project, out: &str) -> Vec<(String, Vec<u8>)> {
    project.run(&["web", "build", "--out", out]).expect_code(0);
    let root = project.path(out);
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(&root).unwrap().display().to_string();
                files.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn web_build_writes_issue_pages_without_personal_data() {
    let project = Project::example();
    let out = project.run(&["web", "build"]);
    out.expect_code(0);
    assert!(
        out.stdout.starts_with("site/index.html\n"),
        "{}",
        out.stdout
    );

    let page = project.read("site/issues/2022-07-13/index.html");
    assert!(page.contains("Rwanda, Refugees, and Our Rights under threat"));
    assert!(page.contains(">Dear Supporter</p>"), "greeting fallback");
    assert!(
        !page.contains("because you subscribed"),
        "the email's own line"
    );
    assert!(page.contains("href=\"../../unsubscribe.html\""));
    assert!(!page.contains("<!--slot:"), "a hole left unfilled");
    assert!(
        !page.contains("/unsubscribe/"),
        "a personal unsubscribe link"
    );
    let subscribers = project.read("subscribers.example.csv");
    for line in subscribers.lines().skip(1) {
        let email = line.split(',').next().unwrap().trim();
        if email.contains('@') {
            assert!(!page.contains(email), "{email} on the public page");
        }
    }
    // Upcoming events link their calendar file on this site; past ones do not.
    assert!(page.contains("href=\"../../events/judith-series-disability-rights.ics\""));
    assert!(!page.contains("refugee-week-2022-twitter-space.ics"));
    assert!(
        project
            .path("site/events/judith-series-disability-rights.ics")
            .is_file()
    );
    assert!(
        project
            .read("site/unsubscribe.html")
            .contains("unsubscribe@renecassin.example.org")
    );

    let index = project.read("site/index.html");
    let newer = index
        .find("href=\"issues/2022-07-13/\"")
        .expect("2022 issue listed");
    let older = index
        .find("href=\"issues/2020-12-10/\"")
        .expect("2020 issue listed");
    assert!(newer < older, "newest first");
    for text in [
        "Rwanda, Refugees, and Our Rights under threat",
        "13 July 2022",
        "We are extremely concerned by proposals to forcibly remove asylum-seekers to Rwanda.",
        "Happy Human Rights Day",
        "10 December 2020",
    ] {
        assert!(index.contains(text), "index lacks {text:?}");
    }
}

#[test]
fn emails_link_each_upcoming_event_to_its_calendar_file() {
    let project = Project::example();
    project
        .run(&["preview", "issues/2022-07-13.toml", "--out", "p"])
        .expect_code(0);
    let url = "https://news.renecassin.example.org/events/judith-series-disability-rights.ics";
    assert!(
        project
            .read("p/index.html")
            .contains(&format!("href=\"{url}\""))
    );
    assert!(project.read("p/index.txt").contains(&format!("<{url}>")));
}

/// Parses every `.ics` file under `dir` with Python's `icalendar` and
/// prints `file|UID|DTSTART in UTC|SUMMARY` lines.
fn parse_calendars(dir: &std::path::Path) -> String {
    let script = r#"
import pathlib, sys, datetime, icalendar
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.ics")):
    calendar = icalendar.Calendar.from_ical(path.read_bytes())
    events = list(calendar.walk("VEVENT"))
    assert len(events) == 1, path
    e = events[0]
    start = e.decoded("DTSTART").astimezone(datetime.timezone.utc)
    print(f"{path.name}|{e['UID']}|{start.isoformat()}|{e['SUMMARY']}")
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .output()
        .expect("python3 on PATH");
    assert!(
        out.status.success(),
        "parsing the .ics files failed (run scripts/setup-test-deps for icalendar): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn calendar_files_parse_with_the_right_instants_and_rebuild_identically() {
    let project = Project::example();
    let first = build_site(&project, "one");
    let second = build_site(&project, "two");
    assert_eq!(
        first.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        second.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for ((name, a), (_, b)) in first.iter().zip(&second) {
        assert!(a == b, "{name} differs between two builds");
    }

    let parsed = parse_calendars(&project.path("one/events"));
    // 3pm BST and 5.45pm GMT.
    assert!(parsed.contains(
        "judith-series-disability-rights.ics|judith-series-disability-rights@supporters.renecassin.example.org|2022-09-05T14:00:00+00:00|Disability Rights\n"
    ), "{parsed}");
    assert!(parsed.contains(
        "celebrating-the-light-together-2020.ics|celebrating-the-light-together-2020@supporters.renecassin.example.org|2020-12-13T17:45:00+00:00|"
    ), "{parsed}");
    assert_eq!(
        parsed,
        parse_calendars(&project.path("two/events")),
        "UIDs change"
    );
    assert_eq!(parsed.lines().count(), 5);

    for (name, bytes) in first.iter().filter(|(n, _)| n.ends_with(".ics")) {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.ends_with("END:VCALENDAR\r\n"), "{name}");
        for line in text.split_inclusive('\n') {
            assert!(line.ends_with("\r\n"), "{name}: bare LF in {line:?}");
            assert!(
                line.len() - 2 <= 75,
                "{name}: {} octets: {line:?}",
                line.len() - 2
            );
        }
    }
}

/// The widths of `pages` (paths under the project) in headless Chromium at
/// 375 px: `path|innerWidth|scrollWidth` lines. Uses playwright-core from
/// tests/browser (scripts/setup-browser installs it and /usr/bin/chromium).
fn page_widths(project: &Project, pages: &[&str]) -> String {
    let playwright =
        support::project::repo().join("tests/browser/node_modules/playwright-core/index.mjs");
    assert!(
        playwright.exists() && std::path::Path::new("/usr/bin/chromium").exists(),
        "needs /usr/bin/chromium and tests/browser/node_modules: run scripts/setup-browser"
    );
    let script = format!(
        r#"
import {{ chromium }} from {playwright:?};
const browser = await chromium.launch({{
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
}});
const page = await browser.newPage({{ viewport: {{ width: 375, height: 800 }} }});
await page.route("**/*", (route) => route.request().url().startsWith("file:") ? route.continue() : route.abort());
for (const path of process.argv.slice(1)) {{
  await page.goto("file://" + path, {{ waitUntil: "load" }});
  const [inner, scroll] = await page.evaluate(() => [window.innerWidth, document.documentElement.scrollWidth]);
  console.log(`${{path}}|${{inner}}|${{scroll}}`);
}}
await browser.close();
"#,
        playwright = playwright.display().to_string()
    );
    let out = Command::new("node")
        .args(["--input-type=module", "-e", &script])
        .args(pages.iter().map(|p| project.path(p)))
        .output()
        .expect("node on PATH");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn web_pages_fit_a_375_px_phone() {
    let project = Project::example();
    project.run(&["web", "build"]).expect_code(0);
    let pages = [
        "site/index.html",
        "site/unsubscribe.html",
        "site/issues/2022-07-13/index.html",
        "site/issues/2020-12-10/index.html",
    ];
    let widths = page_widths(&project, &pages);
    assert_eq!(widths.lines().count(), pages.len(), "{widths}");
    for line in widths.lines() {
        let fields: Vec<&str> = line.rsplitn(3, '|').collect();
        let (scroll, inner): (u32, u32) = (fields[0].parse().unwrap(), fields[1].parse().unwrap());
        assert_eq!(inner, 375, "{line}");
        assert!(scroll <= inner, "horizontal overflow: {line}");
    }
}

// ---------------------------------------------------------------- posts import

fn feed(name: &str) -> String {
    support::project::repo()
        .join("tests/fixtures/feeds")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn importing_a_wordpress_feed_adds_new_posts_on_top_and_keeps_the_rest() {
    let project = Project::example();
    // A hand edit the import must keep.
    project.edit(
        "archive/posts.toml",
        "summary = \"When Sarah* had to move",
        "# Edited by hand.\nsummary = \"When Sarah* had to move",
    );
    let before = project.read("archive/posts.toml");
    let out = project.run(&["posts", "import", &feed("wordpress.xml")]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("2 new post(s) added to `archive/posts.toml`, 2 already there"),
        "{}",
        out.stdout
    );
    let after = project.read("archive/posts.toml");

    // Everything that was there is still there, byte for byte, after the
    // new entries, which go above the first post.
    let first = before.find("[[post]]").unwrap();
    assert!(after.starts_with(&before[..first]));
    assert!(
        after.ends_with(&before[first..]),
        "existing entries changed"
    );
    let new = &after[first..after.len() - (before.len() - first)];
    assert_eq!(
        new,
        "[[post]]
id = \"cafe-society-rene-cassins-summer-reading-list\"
title = \"Café Society: René Cassin’s “Summer” Reading List\"
author = \"Abi Levy\"
date = 2023-07-02
summary = \"Five books on human rights & refugees to read this summer, chosen by our interns – from memoir to history\"

[[post]]
id = \"why-the-illegal-migration-bill-fails-refugees\"
title = \"Why the Illegal Migration Bill fails refugees\"
author = \"Mia Hasenson-Gross\"
date = 2023-03-14
url = \"https://www.renecassin.org/blog/illegal-migration-bill-fails-refugees/\"
summary = \"The Bill would deny protection to almost everyone who arrives by small boat\"

"
    );
    // Known by URL (hands-off…) and by id (not-a-single-safe-space): not added.
    assert_eq!(
        after.matches("\"hands-off-our-human-rights-act\"").count(),
        1
    );
    assert_eq!(after.matches("\"not-a-single-safe-space\"").count(), 1);

    // Twice: nothing more.
    let out = project.run(&["posts", "import", &feed("wordpress.xml")]);
    out.expect_code(0);
    assert!(out.stdout.contains("0 new post(s)"), "{}", out.stdout);
    assert_eq!(project.read("archive/posts.toml"), after);

    // The archive still loads, and `new` lists the dated posts as new.
    project.run(&["check"]).expect_code(0);
    project.run(&["new", "--date", "2023-07-05"]).expect_code(0);
    let issue = project.read("issues/2023-07-05.toml");
    assert!(issue.contains("\"cafe-society-rene-cassins-summer-reading-list\""));
}

#[test]
fn importing_an_atom_feed_fills_dates_and_authors() {
    let project = Project::example();
    let out = project.run(&["posts", "import", &feed("atom.xml")]);
    out.expect_code(0);
    let text = project.read("archive/posts.toml");
    assert!(text.contains(
        "[[post]]
id = \"human-rights-day-2023-75-years-of-the-universal-declaration\"
title = \"Human Rights Day 2023: 75 years of the Universal Declaration\"
author = \"Mia Hasenson-Gross\"
date = 2023-11-20
summary = \"On 10 December the Declaration turns 75. Here is how we are marking it\"

[[post]]
id = \"sukkot-and-the-right-to-shelter\"
title = \"Sukkot and the right to shelter\"
date = 2023-10-01
summary = \"A temporary home reminds us of those who have none\"

[[post]]
id = \"from-the-kindertransport"
    ));
    project
        .run(&["posts", "import", &feed("atom.xml")])
        .expect_code(0);
    assert_eq!(project.read("archive/posts.toml"), text);
}

#[test]
fn importing_something_that_is_not_a_feed_changes_nothing() {
    let project = Project::example();
    let before = project.read("archive/posts.toml");
    project.write("notes.xml", "<html><body>not a feed</body></html>");
    let out = project.run(&["posts", "import", "notes.xml"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("`notes.xml` is not an RSS or Atom feed"),
        "{}",
        out.stderr
    );
    let out = project.run(&["posts", "import", "missing.xml"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("cannot read `missing.xml`"),
        "{}",
        out.stderr
    );
    let out = project.run(&["posts", "import", "http://www.renecassin.org/feed/"]);
    out.expect_code(2);
    assert!(out.stderr.contains("not https://"), "{}", out.stderr);
    assert_eq!(project.read("archive/posts.toml"), before);
}

// ------------------------------------------- the project found, ids for paths

/// Runs `newsletter ARGS` in the folder `dir` of the project.
fn run_in(project: &Project, dir: &std::path::Path, args: &[&str]) -> support::project::Output {
    let out = project.command(args).current_dir(dir).output().unwrap();
    support::project::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn run_from_the_issues_folder_the_configuration_is_found_above() {
    let project = Project::example();
    let issues = project.path("issues");
    let out = run_in(&project, &issues, &["check", "2022-07-13.toml"]);
    out.expect_code(0);
    assert!(
        out.stdout.ends_with("0 errors, 0 warnings\n"),
        "{}",
        out.stdout
    );
    // Paths in the configuration stay relative to it, not to `issues/`.
    let out = run_in(&project, &issues, &["preview", "2022-07-13"]);
    out.expect_code(0);
    assert!(
        out.stdout.starts_with("../preview/2022-07-13/index.html\n"),
        "{}",
        out.stdout
    );
    assert!(project.path("preview/2022-07-13/index.html").is_file());
    assert!(!issues.join("preview").exists());
    // Two folders down as well.
    let deep = project.path("issues/drafts/old");
    std::fs::create_dir_all(&deep).unwrap();
    run_in(&project, &deep, &["status", "2022-07-13"]).expect_code(0);
}

#[test]
fn an_issue_id_names_the_file_in_the_issues_folder() {
    let project = Project::example();
    let out = project.run(&["check", "2022-07-13"]);
    out.expect_code(0);
    assert!(
        out.stdout.ends_with("0 errors, 0 warnings\n"),
        "{}",
        out.stdout
    );
    let out = project.run(&["preview", "2022-07-13"]);
    out.expect_code(0);
    assert!(
        out.stdout.starts_with("preview/2022-07-13/index.html\n"),
        "{}",
        out.stdout
    );
    let out = project.run(&["send", "2022-07-13", "--dry-run"]);
    out.expect_code(0);
    let out = project.run(&["status", "2022-07-13"]);
    out.expect_code(0);
    assert!(out.stdout.contains("2022-07-13"), "{}", out.stdout);
    // An id with no issue file stays an error naming what was typed.
    let out = project.run(&["preview", "2027-01-06"]);
    out.expect_code(2);
    assert!(out.stderr.contains("`2027-01-06`"), "{}", out.stderr);
}

#[test]
fn a_file_by_the_name_given_wins_over_an_issue_id() {
    let project = Project::example();
    // `2022-07-13` as a file in the project folder itself (not an issue).
    project.write("2022-07-13", "not toml at all = = =\n");
    let out = project.run(&["check", "2022-07-13"]);
    out.expect_code(1);
    assert!(out.stdout.contains("invalid-toml"), "{}", out.stdout);
}

#[test]
fn with_no_configuration_here_or_above_the_error_says_where_to_run() {
    let project = Project::example();
    let empty = tempfile::tempdir().unwrap();
    let out = run_in(&project, empty.path(), &["check"]);
    out.expect_code(2);
    assert_eq!(
        out.stderr,
        "error: no `newsletter.toml` in this folder or any folder above it; run newsletter from the project folder (the one with `newsletter.toml`), or name the file with --config\n"
    );
    let out = run_in(&project, empty.path(), &["preview", "2022-07-13"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("no `newsletter.toml` in this folder"),
        "{}",
        out.stderr
    );
}

#[test]
fn newsletter_config_names_the_configuration() {
    let project = Project::example();
    let empty = tempfile::tempdir().unwrap();
    let config = project.path("newsletter.toml");
    let mut cmd = project.command(&["check"]);
    cmd.current_dir(empty.path())
        .env("NEWSLETTER_CONFIG", &config);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // --config wins over it.
    let mut cmd = project.command(&["check", "--config", "absent.toml"]);
    cmd.env("NEWSLETTER_CONFIG", &config);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.toml"));
}
