//! Finding and adding content from the command line: `posts list`,
//! `posts list --search`, `events list`, `events add`, and what `new` says
//! about them. Each runs the real binary in a copy of the example project.

mod support;

use std::process::{Child, Stdio};
use std::time::Duration;

use support::project::{Output, Project};

/// `newsletter ARGS` with today fixed to `today`.
fn run_on(project: &Project, today: &str, args: &[&str]) -> Output {
    let out = project
        .command(args)
        .env("NEWSLETTER_TODAY", today)
        .output()
        .unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The ids a text listing prints, in order (the lines not indented, but the
/// summary line).
fn listed_ids(stdout: &str) -> Vec<&str> {
    let lines: Vec<&str> = stdout.lines().collect();
    lines[..lines.len() - 1]
        .iter()
        .copied()
        .filter(|l| !l.starts_with(' '))
        .collect()
}

// ------------------------------------------------------------------ posts

#[test]
fn posts_list_shows_each_post_with_the_issues_that_use_it() {
    let project = Project::example();
    let out = project.run(&["posts", "list"]);
    out.expect_code(0);
    let ids = listed_ids(&out.stdout);
    assert_eq!(ids.len(), 117);
    assert_eq!(
        ids[0],
        "from-the-kindertransport-to-the-illegal-migration-bill-a-plea-for-kinder-treatment-of-asylum-seekers"
    );
    assert!(
        out.stdout.contains(
            "hands-off-our-human-rights-act\n  Hands Off our Human Rights Act!\n  Debora Singer MBE · in issue 2022-07-13\n"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(
        "marvel-lous-jewish-human-rights-heroes\n  MARVEL(lous) Jewish Human Rights Heroes\n  Mia Hasenson-Gross · in issue 2020-12-10\n"
    ));
    assert!(
        out.stdout
            .contains("\nintern-al-reflections\n  Intern-al Reflections\n  in no issue yet\n")
    );
    assert!(out.stdout.ends_with(
        "117 posts in `archive/posts.toml`, newest first; search them with `newsletter posts list --search WORDS`\n"
    ));
}

#[test]
fn posts_list_as_tsv_is_one_line_a_post_with_a_header() {
    let project = Project::example();
    let out = project.run(&["posts", "list", "--format", "tsv"]);
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "id\ttitle\tauthor\tdate\tissues");
    assert_eq!(lines.len(), 118);
    assert!(lines.contains(
        &"hands-off-our-human-rights-act\tHands Off our Human Rights Act!\tDebora Singer MBE\t\t2022-07-13"
    ));
    assert!(
        lines.iter().all(|l| l.split('\t').count() == 5),
        "{lines:#?}"
    );
}

#[test]
fn posts_search_puts_title_matches_first() {
    let project = Project::example();
    let out = project.run(&["posts", "list", "--search", "human", "rights", "act"]);
    out.expect_code(0);
    let ids = listed_ids(&out.stdout);
    // Every word in the title, and the search as a phrase in it, in archive order.
    assert_eq!(
        &ids[..4],
        [
            "hands-off-our-human-rights-act",
            "why-is-the-human-rights-act-important-for-disabled-people",
            "renewed-uncertainty-on-future-of-human-rights-act",
            "the-human-rights-act-protecting-the-victims-of-crime",
        ]
    );
    // Every post listed has every word somewhere; none missing one is.
    let tsv = project.run(&[
        "posts",
        "list",
        "--search",
        "human rights act",
        "--format",
        "tsv",
    ]);
    assert_eq!(tsv.stdout.lines().count() - 1, ids.len());
    assert!(
        out.stdout.ends_with(&format!(
            "{} of 117 posts match `human rights act`, best match first\n",
            ids.len()
        )),
        "{}",
        out.stdout
    );
    // An id searched for comes first, though other titles have its words.
    let out = project.run(&[
        "posts",
        "list",
        "--search",
        "womens-rights-are-human-rights",
    ]);
    assert_eq!(
        listed_ids(&out.stdout)[0],
        "womens-rights-are-human-rights",
        "{}",
        out.stdout
    );
}

#[test]
fn posts_search_ignores_case_and_accents() {
    let project = Project::example();
    let plain = project.run(&["posts", "list", "--search", "rene", "cassin"]);
    plain.expect_code(0);
    for search in ["René Cassin", "RENÉ CASSIN", "rené cassin", "Rene Cass"] {
        let out = project.run(&["posts", "list", "--search", search]);
        out.expect_code(0);
        assert_eq!(
            listed_ids(&out.stdout),
            listed_ids(&plain.stdout),
            "{search}"
        );
    }
    // Titles with "René Cassin" come first, printed as written; then the
    // posts by René Cassin interns.
    assert!(
        plain.stdout.starts_with(
            "righteous-women-rene-cassins-womens-seder\n  Righteous Women – René Cassin’s Women’s Seder\n  in no issue yet\n\
             modern-slavery-and-homelessness-rene-cassin-workshop\n  Modern slavery and homelessness: René Cassin workshop\n"
        ),
        "{}",
        plain.stdout
    );
    assert_eq!(
        listed_ids(&plain.stdout)[4],
        "a-hidden-gem-britains-first-female-jewish-mp"
    );
    // A word's beginning is enough; quotes do not split words.
    let out = project.run(&["posts", "list", "--search", "britains", "jewish", "MP"]);
    assert_eq!(
        listed_ids(&out.stdout),
        ["a-hidden-gem-britains-first-female-jewish-mp"]
    );
}

#[test]
fn posts_search_without_a_match_says_what_to_try() {
    let project = Project::example();
    let out = project.run(&["posts", "list", "--search", "xylophone"]);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "no post matches `xylophone`: each word must begin a word of a post's title, author, summary or id (case and accents do not matter), and 117 posts were searched.\n\
         Try fewer or shorter words (`refug` finds refugee and refugees), or list every post with `newsletter posts list`.\n"
    );
    let out = project.run(&["posts", "list", "--search", "!!!"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains(
            "error: `--search !!!` has no word to look for; give words with letters or digits"
        ),
        "{}",
        out.stderr
    );
}

// ------------------------------------------------------------------ events

#[test]
fn events_list_shows_start_zone_place_and_issues_by_start() {
    let project = Project::example();
    let out = project.run(&["events", "list"]);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "celebrating-the-light-together-2020
  Celebrating the Light Together
  Sun 2020-12-13 17:45 Europe/London · place not given · in issue 2020-12-10
refugee-week-2022-twitter-space
  War in Ukraine and crisis for modern slavery victims
  Mon 2022-06-20 18:00 Europe/London · Twitter Space · in issue 2022-07-13
refugee-week-2022-then-and-now
  Then and Now, Learning from Refugee Experiences
  Tue 2022-06-21 19:00 Europe/London · place not given · in issue 2022-07-13
refugee-week-2022-no-to-hassockfield
  No To Hassockfield
  Thu 2022-06-23 13:00 Europe/London · Instagram Live · in issue 2022-07-13
judith-series-disability-rights
  Disability Rights
  Mon 2022-09-05 15:00 Europe/London · Online · in issue 2022-07-13
5 events in `archive/events.toml`, by start; add one with `newsletter events add` (see --help)
"
    );
    let out = project.run(&["events", "list", "--format", "tsv"]);
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "id\tstart\tend\ttime-zone\ttitle\twhere\tissues");
    assert_eq!(
        lines[5],
        "judith-series-disability-rights\t2022-09-05T15:00:00\t\tEurope/London\tDisability Rights\tOnline\t2022-07-13"
    );
}

#[test]
fn events_list_upcoming_starts_from_today() {
    let project = Project::example();
    let out = run_on(&project, "2022-06-21", &["events", "list", "--upcoming"]);
    out.expect_code(0);
    assert_eq!(
        listed_ids(&out.stdout),
        [
            "refugee-week-2022-then-and-now",
            "refugee-week-2022-no-to-hassockfield",
            "judith-series-disability-rights"
        ]
    );
    assert!(
        out.stdout
            .ends_with("3 upcoming events (on or after today, 2022-06-21), soonest first\n")
    );
    let out = run_on(&project, "2022-07-14", &["events", "list", "--upcoming"]);
    assert!(
        out.stdout
            .ends_with("1 upcoming event (on or after today, 2022-07-14), soonest first\n")
    );
    let out = run_on(&project, "2030-01-01", &["events", "list", "--upcoming"]);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "no event in `archive/events.toml` starts on or after today (2030-01-01); add one with
  newsletter events add --title \"…\" --start 2030-01-01T18:00 --online
(see `newsletter events add --help` for every flag)
or list the past ones with `newsletter events list`
"
    );
    // A bad fixed date is an error that says how to write it.
    let out = run_on(&project, "14/07/2022", &["events", "list", "--upcoming"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains(
            "`NEWSLETTER_TODAY` is `14/07/2022`: write the date as `2022-07-14` (year-month-day); or unset it"
        ),
        "{}",
        out.stderr
    );
}

/// `events add` with these flags after the title and start.
fn add(project: &Project, title: &str, start: &str, more: &[&str]) -> Output {
    let mut args = vec!["events", "add", "--title", title, "--start", start];
    args.extend_from_slice(more);
    run_on(project, "2030-01-01", &args)
}

#[test]
fn events_add_appends_the_event_and_keeps_every_other_byte() {
    let project = Project::example();
    // A hand edit the add must keep.
    project.edit(
        "archive/events.toml",
        "partner = \"Generation2Generation\"",
        "partner = \"Generation2Generation\"   # ask them where",
    );
    let before = project.read("archive/events.toml");
    let out = add(
        &project,
        "Disability Rights: the next steps",
        "2030-03-04T18:00",
        &[
            "--end",
            "19:30",
            "--partner",
            "Disability Rights UK",
            "--online",
            "--booking-url",
            "https://www.example.org/events/book/",
            "--summary",
            "Fazilet Hadi on what “next” means.",
        ],
    );
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "disability-rights-the-next-steps
added to `archive/events.toml`: Disability Rights: the next steps, Mon 2030-03-04 18:00–19:30 Europe/London, Online
to announce it, list its id in a section of an issue:
  [[section]]
  heading = \"Coming up\"
  events = [\"disability-rights-the-next-steps\"]
"
    );
    assert_eq!(out.stderr, "");
    let after = project.read("archive/events.toml");
    assert_eq!(
        after,
        format!(
            "{before}
[[event]]
id = \"disability-rights-the-next-steps\"
title = \"Disability Rights: the next steps\"
start = 2030-03-04T18:00:00
end = 2030-03-04T19:30:00
partner = \"Disability Rights UK\"
where = \"Online\"
booking-url = \"https://www.example.org/events/book/\"
summary = \"Fazilet Hadi on what “next” means.\"
"
        )
    );
    // No backup beside the archive, which is kept in version control.
    assert!(!project.path("archive/events.toml.bak").exists());

    // Listed, and usable in an issue that `check` passes.
    let out = run_on(&project, "2030-01-01", &["events", "list", "--upcoming"]);
    assert_eq!(
        listed_ids(&out.stdout),
        ["disability-rights-the-next-steps"]
    );
    project.write(
        "issues/2030-02-05.toml",
        "subject = \"Disability rights in March\"
preheader = \"Join us online on 4 March\"
date = 2030-02-05
greeting = \"Dear {{first_name|Supporter}}\"
letter = \"\"\"
Our next event is online.
\"\"\"

[[section]]
heading = \"Coming up\"
events = [\"disability-rights-the-next-steps\"]

[sign-off]
name = \"Mia Hasenson-Gross\"
role = \"Executive Director\"
",
    );
    let out = run_on(&project, "2030-01-01", &["check", "issues/2030-02-05.toml"]);
    out.expect_code(0);
    assert!(!out.stdout.contains("error "), "{}", out.stdout);
    let out = run_on(&project, "2030-01-01", &["events", "list"]);
    assert!(
        out.stdout.contains(
            "  Mon 2030-03-04 18:00–19:30 Europe/London · Online · in issue 2030-02-05\n"
        )
    );
}

#[test]
fn events_add_in_another_time_zone_writes_it_and_quotes_safely() {
    let project = Project::example();
    let before = project.read("archive/events.toml");
    let out = add(
        &project,
        "Café \"Droits de l'homme\"",
        "2030-05-06 19:00",
        &[
            "--time-zone",
            "Europe/Paris",
            "--place",
            "Maison de la Radio, Paris",
        ],
    );
    out.expect_code(0);
    assert!(
        out.stdout.starts_with("cafe-droits-de-lhomme\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Mon 2030-05-06 19:00 Europe/Paris, Maison de la Radio, Paris")
    );
    let after = project.read("archive/events.toml");
    let block = &after[before.len()..];
    assert!(block.contains("time-zone = \"Europe/Paris\"\n"), "{block}");
    let out = project.run(&["events", "list", "--format", "tsv"]);
    assert!(out.stdout.contains(
        "cafe-droits-de-lhomme\t2030-05-06T19:00:00\t\tEurope/Paris\tCafé \"Droits de l'homme\"\tMaison de la Radio, Paris\t\n"
    ), "{}", out.stdout);
}

#[test]
fn events_add_with_a_title_already_used_adds_the_start_date_to_the_id() {
    let project = Project::example();
    let ids: Vec<String> = ["2030-03-04T18:00", "2030-04-01T18:00", "2030-04-01T20:00"]
        .iter()
        .map(|start| {
            let out = add(&project, "Disability Rights", start, &["--online"]);
            out.expect_code(0);
            out.stdout.lines().next().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        ids,
        [
            "disability-rights",
            "disability-rights-2030-04-01",
            "disability-rights-2030-04-01-2"
        ]
    );
    // The same title and start again is the same event: refused.
    let before = project.read("archive/events.toml");
    let out = add(
        &project,
        "Disability Rights",
        "2030-04-01T18:00",
        &["--online"],
    );
    out.expect_code(2);
    assert!(out.stderr.contains(
        "error: `archive/events.toml` already has this event, as `disability-rights-2030-04-01` (Mon 2030-04-01 18:00 Europe/London); nothing was added. Use that id, or change --title or --start"
    ), "{}", out.stderr);
    assert_eq!(project.read("archive/events.toml"), before);
    project.run(&["check"]).expect_code(0);
}

/// Runs `events add` with `flags`, expects a refusal whose message has
/// `words`, and the file unchanged.
#[track_caller]
fn refused(flags: &[&str], words: &str) {
    let project = Project::example();
    let before = project.read("archive/events.toml");
    let mut args = vec!["events", "add"];
    args.extend_from_slice(flags);
    let out = run_on(&project, "2030-01-01", &args);
    out.expect_code(2);
    assert!(out.stderr.contains(words), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_eq!(project.read("archive/events.toml"), before);
    assert!(!project.path("archive/events.toml.bak").exists());
}

#[test]
fn events_add_with_a_start_in_another_shape_says_how_to_write_it() {
    refused(
        &["--title", "Film", "--online", "--start", "04/03/2030 18:00"],
        "error: invalid value '04/03/2030 18:00' for '--start <YYYY-MM-DDTHH:MM>': write it as `2030-03-04T18:00` (year-month-day, `T`, then the 24-hour time), or `2030-04-03T18:00` if you meant 3 April",
    );
    refused(
        &["--title", "Film", "--online", "--start", "2030-03-04"],
        "'--start <YYYY-MM-DDTHH:MM>': give the time too, like `2030-03-04T18:00` (year-month-day, `T`, then the 24-hour time)",
    );
    refused(
        &["--title", "Film", "--online", "--start", "2030-02-30T18:00"],
        "'--start <YYYY-MM-DDTHH:MM>': not a date and time; write year-month-day, `T`, then the 24-hour time, like `2027-03-04T18:00`",
    );
}

#[test]
fn events_add_with_an_end_before_the_start_says_so() {
    refused(
        &[
            "--title",
            "Film",
            "--online",
            "--start",
            "2030-03-04T18:00",
            "--end",
            "17:00",
        ],
        "error: `--end 2030-03-04T17:00` is not after `--start 2030-03-04T18:00`; write when it ends, like `--end 20:00`",
    );
    refused(
        &[
            "--title",
            "Film",
            "--online",
            "--start",
            "2030-03-04T18:00",
            "--end",
            "tonight",
        ],
        "invalid value 'tonight' for '--end <YYYY-MM-DDTHH:MM>': not a date and time",
    );
}

#[test]
fn events_add_with_a_booking_url_that_is_not_https_says_what_to_write() {
    let base = [
        "--title",
        "Film",
        "--online",
        "--start",
        "2030-03-04T18:00",
        "--booking-url",
    ];
    let with = |url: &'static str| -> Vec<&str> {
        let mut flags = base.to_vec();
        flags.push(url);
        flags
    };
    refused(
        &with("www.example.org/book"),
        "error: `--booking-url www.example.org/book` is not a web address supporters can open: write the full address, `https://www.example.org/book`",
    );
    refused(
        &with("http://www.example.org/book"),
        "it is not https://; write the https address, `https://www.example.org/book`",
    );
    refused(
        &with("javascript:alert(1)"),
        "`--booking-url javascript:alert(1)` is not a web address supporters can open: write the full https:// address of the booking page, like `https://www.example.org/events/book/`",
    );
}

#[test]
fn events_add_with_other_bad_flags_names_them() {
    refused(
        &[
            "--title",
            "Film",
            "--online",
            "--start",
            "2030-03-04T18:00",
            "--time-zone",
            "Europe/Lodnon",
        ],
        "invalid value 'Europe/Lodnon' for '--time-zone <ZONE>': not a time zone name; did you mean `Europe/London`?",
    );
    refused(
        &["--title", "!!!", "--online", "--start", "2030-03-04T18:00"],
        "`--title !!!` has no letter or digit to make the event's id from",
    );
    refused(
        &["--title", "Film", "--start", "2030-03-04T18:00"],
        "<--place <PLACE>|--online>",
    );
    refused(
        &[
            "--title",
            "Film",
            "--place",
            " ",
            "--start",
            "2030-03-04T18:00",
        ],
        "`--place` is empty; write what supporters should read, or leave the flag out",
    );
}

#[test]
fn events_add_refuses_while_the_archive_does_not_load() {
    let project = Project::example();
    project.edit(
        "archive/events.toml",
        "time-zone = \"Europe/London\"",
        "time-zone = \"Europe/Londres\"",
    );
    let before = project.read("archive/events.toml");
    let out = add(&project, "Film", "2030-03-04T18:00", &["--online"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains(
            "error: `archive/events.toml` must load before an event is added; nothing was changed: archive/events.toml:5:13: unknown time zone `Europe/Londres`"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(project.read("archive/events.toml"), before);
}

/// Starts `events add` for `title` without waiting for it.
fn spawn_add(project: &Project, title: &str, start: &str) -> Child {
    project
        .command(&[
            "events", "add", "--title", title, "--start", start, "--online",
        ])
        .env("NEWSLETTER_TODAY", "2030-01-01")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn events_added_while_the_archive_is_locked_wait_and_both_are_kept() {
    let project = Project::example();
    let before = project.read("archive/events.toml");
    // Another process holds the archive's lock.
    let lock_path = project.path("archive/events.toml.lock");
    std::fs::write(&lock_path, "process 1 on elsewhere, a test, since now\n").unwrap();
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.lock().unwrap();
    let first = spawn_add(&project, "Film night", "2030-03-04T18:00");
    let second = spawn_add(&project, "Book club", "2030-03-05T18:00");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        project.read("archive/events.toml"),
        before,
        "written while locked"
    );
    lock.unlock().unwrap();
    let (first, second) = (finish(first), finish(second));
    for out in [&first, &second] {
        out.expect_code(0);
        assert!(
            out.stderr.contains(
                "waiting up to 60 s for `archive/events.toml`: it is locked by process 1 on elsewhere, a test, since now"
            ),
            "{}",
            out.stderr
        );
    }
    let after = project.read("archive/events.toml");
    assert!(after.starts_with(&before));
    assert!(after.contains("id = \"film-night\"\n"), "{after}");
    assert!(after.contains("id = \"book-club\"\n"), "{after}");
    let out = project.run(&["events", "list"]);
    out.expect_code(0);
    assert_eq!(listed_ids(&out.stdout).len(), 7);
}

#[test]
fn four_events_added_at_the_same_time_are_all_kept() {
    let project = Project::example();
    let titles = ["One", "Two", "Three", "Four"];
    let children: Vec<Child> = titles
        .iter()
        .map(|t| spawn_add(&project, t, "2030-03-04T18:00"))
        .collect();
    for child in children {
        finish(child).expect_code(0);
    }
    let after = project.read("archive/events.toml");
    for title in titles {
        assert_eq!(
            after
                .matches(&format!("id = \"{}\"\n", title.to_lowercase()))
                .count(),
            1,
            "{after}"
        );
    }
    project.run(&["check"]).expect_code(0);
}

// ------------------------------------------------------------------ new, help

#[test]
fn new_names_the_commands_that_find_posts_and_events() {
    let project = Project::example();
    project.run(&["new", "--date", "2030-02-05"]).expect_code(0);
    let text = project.read("issues/2030-02-05.toml");
    assert!(
        text.contains(
            "# ]\n# Find any other post with\n#   newsletter posts list --search WORDS\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "# No events on or after 2030-02-05 in the archive. List the coming ones with
#   newsletter events list --upcoming
# Add an event to the archive with (see `newsletter events add --help`)
#   newsletter events add --title \"…\" --start 2030-02-05T18:00 --online
"
        ),
        "{text}"
    );

    // No post new since the last issue: the search is named all the same.
    project.write(
        "archive/posts.toml",
        "[[post]]\nid = \"old\"\ntitle = \"Old\"\ndate = 2020-01-01\n",
    );
    project.run(&["new", "--date", "2030-02-06"]).expect_code(0);
    let text = project.read("issues/2030-02-06.toml");
    assert!(
        text.contains(
            "# No new posts since the last issue (2030-02-05).\n# Find any other post with\n#   newsletter posts list --search WORDS\n"
        ),
        "{text}"
    );
}

#[test]
fn the_new_commands_have_long_help_with_examples() {
    let project = Project::example();
    for (command, example) in [
        (
            &["posts", "list"][..],
            "newsletter posts list --search human rights act",
        ),
        (&["events", "list"][..], "newsletter events list --upcoming"),
        (
            &["events", "add"][..],
            "newsletter events add --title \"Disability Rights\" --start 2027-03-04T18:00 --end 19:30 --online",
        ),
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let out = project.run(&args);
        out.expect_code(0);
        assert!(out.stdout.contains("\nExamples:\n"), "{}", out.stdout);
        assert!(out.stdout.contains(example), "{}", out.stdout);
    }
    let out = project.run(&["posts", "list", "--help"]);
    assert!(
        out.stdout.contains("ignoring case and accents"),
        "{}",
        out.stdout
    );
}
