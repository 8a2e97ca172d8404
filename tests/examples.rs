//! The example issues as faithful copies of the seed newsletters (issue
//! 16; `archive/SOURCES.md` has the audit), and the two features they
//! needed: a sign-off `text` (the letter's last words after the call to
//! action) and events without a place. Every test runs the real binary.

mod support;

use support::project::Project;

const ISSUE_2022: &str = "issues/2022-07-13.toml";
const ISSUE_2020: &str = "issues/2020-12-10.toml";

/// The HTML and text parts of `issue` as `preview` writes them.
fn preview(project: &Project, issue: &str) -> (String, String) {
    project
        .run(&["preview", issue, "--out", "p"])
        .expect_code(0);
    (project.read("p/index.html"), project.read("p/index.txt"))
}

/// The text part with its line breaks folded, to search for sentences.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn position(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` missing"))
}

#[test]
fn the_2022_letter_says_how_to_book_as_the_seed_does() {
    let project = Project::example();
    let (html, text) = preview(&project, ISSUE_2022);
    let text = flat(&text);
    let words = "chaired by Dr Annette Lawson – book your free place via our Eventbrite page.";
    for part in [&html, &text] {
        assert!(part.contains(words));
        assert!(!part.contains("details below"));
        // The event itself says how to book, in the seed's words; the seeds
        // give no booking link, so there is none.
        assert!(part.contains(
            "Chaired by Dr Annette Lawson – book your free place via our Eventbrite page."
        ));
        assert!(!part.contains("Book a place"));
    }
}

#[test]
fn no_event_shows_a_place_the_archive_does_not_give() {
    let project = Project::example();
    let (html, text) = preview(&project, ISSUE_2022);
    for part in [&html, &text] {
        assert!(!part.contains("To be confirmed"));
    }
    // The listing names the partner of "Then and Now" but not the place.
    let then_and_now = &html[position(&html, "Tuesday 21 June 2022, 7pm BST</p>")..];
    let next = then_and_now.find("</div>").unwrap();
    assert!(
        then_and_now[..next].contains("\">With Generation2Generation</p>"),
        "{}",
        &then_and_now[..next]
    );
    assert!(text.contains(
        "* Then and Now, Learning from Refugee Experiences\n  Tuesday 21 June 2022, 7pm BST\n  With Generation2Generation\n"
    ), "{text}");
    let (html, text) = preview(&project, ISSUE_2020);
    assert!(text.contains(
        "* Celebrating the Light Together\n  Sunday 13 December 2020, 5.45pm GMT\n  Our festive Jewish-Uyghur lighting of the 4th Candle of Hanukkah.\n"
    ), "{text}");
    assert!(
        !html.contains(">Online<"),
        "the 2020 letter does not say online"
    );
}

#[test]
fn an_event_with_neither_place_nor_partner_shows_neither() {
    let project = Project::example();
    project.edit(
        "archive/events.toml",
        "partner = \"Generation2Generation\"\n",
        "",
    );
    let (_, text) = preview(&project, ISSUE_2022);
    assert!(
        text.contains(
            "* Then and Now, Learning from Refugee Experiences\n  Tuesday 21 June 2022, 7pm BST\n\n"
        ),
        "{text}"
    );
}

#[test]
fn sign_off_text_comes_after_the_call_to_action_and_before_the_closing() {
    let project = Project::example();
    let (html, text) = preview(&project, ISSUE_2022);
    let touch = "As always, please do get in touch with me";
    for part in [html, flat(&text)] {
        let button = position(&part, "Donate today");
        let words = position(&part, touch);
        let closing = position(&part, "With best wishes");
        assert!(
            button < words && words < closing,
            "{button} {words} {closing}"
        );
        assert_eq!(part.matches(touch).count(), 1);
    }
    let (html, text) = preview(&project, ISSUE_2020);
    for part in [html, flat(&text)] {
        let button = position(&part, "Make a donation");
        let words = position(&part, "Happy Hanukkah! Happy Human Rights Day!");
        let closing = position(&part, "With very best wishes");
        assert!(
            button < words && words < closing,
            "{button} {words} {closing}"
        );
    }
}

#[test]
fn the_2020_sign_off_has_no_role() {
    let project = Project::example();
    let (_, text) = preview(&project, ISSUE_2020);
    assert!(
        text.contains("With very best wishes\n\nMia Hasenson-Gross\n\n-- \n"),
        "{text}"
    );
    assert!(!project.read(ISSUE_2020).contains("role ="));
}

#[test]
fn sign_off_text_takes_merge_fields() {
    let project = Project::example();
    project.edit(
        ISSUE_2020,
        "text = \"Happy Hanukkah!",
        "text = \"Happy Hanukkah, {{first_name|friend}}!",
    );
    let (html, text) = preview(&project, ISSUE_2020);
    assert!(!html.contains("{{first_name"));
    let text = flat(&text);
    assert!(
        text.contains("Happy Hanukkah, friend! Happy Human Rights Day!")
            || text.contains("Happy Hanukkah, Ruth! Happy Human Rights Day!"),
        "{text}"
    );
}

#[test]
fn a_link_in_the_sign_off_text_is_checked() {
    let project = Project::example();
    project.edit(
        ISSUE_2022,
        "(mailto:office@renecassin.example.org)",
        "(javascript:alert(1))",
    );
    let out = project.run(&["check", ISSUE_2022]);
    out.expect_code(1);
    assert!(out.stdout.contains("unsafe-link"), "{}", out.stdout);
}

#[test]
fn an_unknown_merge_field_in_the_sign_off_text_is_named() {
    let project = Project::example();
    project.edit(
        ISSUE_2020,
        "text = \"Happy Hanukkah!",
        "text = \"Happy Hanukkah, {{nickname}}!",
    );
    let out = project.run(&["check", ISSUE_2020]);
    out.expect_code(1);
    assert!(
        out.stdout.contains("unknown-merge-field")
            && out.stdout.contains("the sign-off text uses `{{nickname}}`"),
        "{}",
        out.stdout
    );
}
