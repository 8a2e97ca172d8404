//! The public web version (`newsletter web build`, issue 16): issue pages
//! without the email's own lines, a link to the index everywhere, `og:`
//! tags, the Atom feed, and the calendar files' DTEND, URL and DESCRIPTION.
//! Every test runs the real binary on the example project.

mod support;

use support::project::Project;

const ISSUE_2022: &str = "site/issues/2022-07-13/index.html";
const ISSUE_2020: &str = "site/issues/2020-12-10/index.html";
const DISABILITY_RIGHTS_ICS: &str = "site/events/judith-series-disability-rights.ics";

fn built() -> Project {
    let project = Project::example();
    project.run(&["web", "build"]).expect_code(0);
    project
}

// ---------------------------------------------------------------- issue pages

#[test]
fn issue_pages_have_no_view_in_browser_link() {
    let project = built();
    for page in [ISSUE_2022, ISSUE_2020] {
        let html = project.read(page);
        assert!(!html.contains("View this email in your browser"), "{page}");
        assert!(!html.contains("in your browser"), "{page}");
        // The page's own address is only in og:url, never a link.
        let url = "https://news.renecassin.example.org/issues/";
        assert!(!html.contains(&format!("href=\"{url}")), "{page}");
    }
}

#[test]
fn issue_pages_say_nothing_personal_and_tell_how_to_unsubscribe() {
    let project = built();
    for page in [ISSUE_2022, ISSUE_2020] {
        let html = project.read(page);
        assert!(!html.contains("You are receiving this email"), "{page}");
        assert!(!html.contains("subscribed to news from"), "{page}");
        assert!(!html.contains("/unsubscribe/"), "{page}: a personal link");
        assert!(
            html.contains(
                "To stop receiving it, use the Unsubscribe link at the end of any of its emails, or read <a class=\"muted\" href=\"../../unsubscribe.html\""
            ),
            "{page}"
        );
        assert!(html.contains(">how to unsubscribe</a>."), "{page}");
    }
}

#[test]
fn every_page_links_the_index() {
    let project = built();
    for page in [ISSUE_2022, ISSUE_2020] {
        let html = project.read(page);
        let link = "href=\"../../index.html\" style=";
        assert_eq!(html.matches(link).count(), 2, "{page}: top and footer");
        assert!(html.contains(">All René Cassin newsletters</a>"), "{page}");
    }
    let unsubscribe = project.read("site/unsubscribe.html");
    assert!(unsubscribe.contains("<a href=\"index.html\">All newsletters</a>"));
    // The index is the index; it links each issue and the feed.
    let index = project.read("site/index.html");
    assert!(index.contains("href=\"issues/2022-07-13/\""));
}

#[test]
fn issue_pages_have_og_tags_from_the_subject_and_preheader() {
    let project = built();
    let html = project.read(ISSUE_2022);
    for tag in [
        "<meta property=\"og:type\" content=\"article\">",
        "<meta property=\"og:title\" content=\"Rwanda, Refugees, and Our Rights under threat\">",
        "<meta property=\"og:description\" content=\"We are extremely concerned by proposals to forcibly remove asylum-seekers to Rwanda.\">",
        "<meta property=\"og:url\" content=\"https://news.renecassin.example.org/issues/2022-07-13/\">",
        "<meta name=\"description\" content=\"We are extremely concerned by proposals to forcibly remove asylum-seekers to Rwanda.\">",
    ] {
        assert!(html.contains(tag), "lacks {tag}");
    }
}

#[test]
fn og_tags_take_merge_fields_at_their_fallback_escaped() {
    let project = Project::example();
    project
        .edit(
            "issues/2022-07-13.toml",
            "subject = \"Rwanda,",
            "subject = \"{{first_name|Friends & \\\"allies\\\"}}: Rwanda,",
        )
        .run(&["web", "build"])
        .expect_code(0);
    let html = project.read(ISSUE_2022);
    assert!(
        html.contains("<meta property=\"og:title\" content=\"Friends &amp; &quot;allies&quot;: Rwanda, Refugees, and Our Rights under threat\">"),
        "{}",
        &html[..html.find("<style").unwrap_or(html.len())]
    );
}

#[test]
fn the_email_keeps_its_own_lines() {
    let project = Project::example();
    project
        .run(&["preview", "issues/2022-07-13.toml", "--out", "p"])
        .expect_code(0);
    let html = project.read("p/index.html");
    assert!(html.contains("View this email in your browser"));
    assert!(html.contains("You are receiving this email because"));
    assert!(!html.contains("og:title"));
    assert!(
        !html.contains("application/atom+xml"),
        "no <link> in an email"
    );
    assert!(!html.contains("All René Cassin newsletters"));
}

// ---------------------------------------------------------------- the feed

#[test]
fn feed_is_linked_from_the_index_and_the_issue_pages() {
    let project = built();
    assert!(project.read("site/index.html").contains(
        "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"René Cassin: newsletters\" href=\"feed.xml\">"
    ));
    assert!(project.read(ISSUE_2022).contains(
        "<link rel=\"alternate\" type=\"application/atom+xml\" href=\"../../feed.xml\">"
    ));
}

#[test]
fn feed_parses_as_atom_with_every_issue_newest_first() {
    let project = built();
    let xml = std::fs::read(project.path("site/feed.xml")).unwrap();
    let feed = feed_rs::parser::parse(xml.as_slice()).expect("feed.xml parses");
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
    assert_eq!(feed.id, "https://news.renecassin.example.org/");
    assert_eq!(feed.title.unwrap().content, "René Cassin: newsletters");
    assert_eq!(
        feed.updated.unwrap().to_rfc3339(),
        "2022-07-13T00:00:00+00:00",
        "the newest issue's date, not the build time"
    );
    assert_eq!(feed.authors[0].name.as_deref(), Some("René Cassin"));
    let links: Vec<(Option<&str>, &str)> = feed
        .links
        .iter()
        .map(|l| (l.rel.as_deref(), l.href.as_str()))
        .collect();
    assert_eq!(
        links,
        [
            (Some("alternate"), "https://news.renecassin.example.org/"),
            (Some("self"), "https://news.renecassin.example.org/feed.xml"),
        ]
    );

    let entries: Vec<_> = feed
        .entries
        .iter()
        .map(|e| {
            (
                e.id.as_str(),
                e.title.as_ref().unwrap().content.as_str(),
                e.updated.unwrap().to_rfc3339(),
                e.links[0].href.as_str(),
                e.links[0].rel.as_deref(),
                e.summary.as_ref().unwrap().content.as_str(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (
                "https://news.renecassin.example.org/issues/2022-07-13/",
                "Rwanda, Refugees, and Our Rights under threat",
                "2022-07-13T00:00:00+00:00".to_string(),
                "https://news.renecassin.example.org/issues/2022-07-13/",
                Some("alternate"),
                "We are extremely concerned by proposals to forcibly remove asylum-seekers to Rwanda.",
            ),
            (
                "https://news.renecassin.example.org/issues/2020-12-10/",
                "Happy Human Rights Day",
                "2020-12-10T00:00:00+00:00".to_string(),
                "https://news.renecassin.example.org/issues/2020-12-10/",
                Some("alternate"),
                "Seventy-two years ago today … the UN General Assembly adopted the Universal Declaration of Human Rights.",
            ),
        ]
    );
}

#[test]
fn feed_has_the_elements_rfc_4287_requires() {
    let project = built();
    let xml = project.read("site/feed.xml");
    assert!(xml.starts_with(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en-GB\">\n"
    ));
    // A parser may fill in what is missing: count the elements themselves.
    for (element, count) in [
        ("<id>", 3),
        ("<title>", 3),
        ("<updated>", 3),
        ("<author><name>René Cassin</name></author>", 1),
        ("<link rel=\"alternate\" type=\"text/html\" href=", 3),
        ("<summary>", 2),
        ("<entry>", 2),
    ] {
        assert_eq!(xml.matches(element).count(), count, "{element} in\n{xml}");
    }
}

#[test]
fn feed_escapes_markup_in_subjects() {
    let project = Project::example();
    project
        .edit(
            "issues/2022-07-13.toml",
            "subject = \"Rwanda,",
            "subject = \"<b>Rights</b> & wrongs: Rwanda,",
        )
        .run(&["web", "build"])
        .expect_code(0);
    let xml = std::fs::read(project.path("site/feed.xml")).unwrap();
    let feed = feed_rs::parser::parse(xml.as_slice()).expect("feed.xml parses");
    assert_eq!(
        feed.entries[0].title.as_ref().unwrap().content,
        "<b>Rights</b> & wrongs: Rwanda, Refugees, and Our Rights under threat"
    );
    assert!(
        String::from_utf8(xml)
            .unwrap()
            .contains("<title>&lt;b&gt;Rights&lt;/b&gt; &amp; wrongs: Rwanda,")
    );
}

#[test]
fn feed_and_pages_are_byte_identical_on_rebuild() {
    let project = Project::example();
    project
        .run(&["web", "build", "--out", "one"])
        .expect_code(0);
    project
        .run(&["web", "build", "--out", "two"])
        .expect_code(0);
    for file in [
        "feed.xml",
        "index.html",
        "issues/2022-07-13/index.html",
        "events/judith-series-disability-rights.ics",
    ] {
        let one = std::fs::read(project.path(&format!("one/{file}"))).unwrap();
        let two = std::fs::read(project.path(&format!("two/{file}"))).unwrap();
        assert!(one == two, "{file} differs between two builds");
    }
}

// ---------------------------------------------------------------- calendar files

/// The content lines of an `.ics` file, unfolded (RFC 5545 3.1), as
/// (name, value) with TEXT escapes undone; asserts the physical lines
/// end in CRLF and hold at most 75 octets.
fn calendar(text: &str) -> Vec<(String, String)> {
    for line in text.split_inclusive('\n') {
        assert!(line.ends_with("\r\n"), "bare LF in {line:?}");
        assert!(line.len() - 2 <= 75, "{} octets: {line:?}", line.len() - 2);
    }
    let unfolded = text.replace("\r\n ", "");
    unfolded
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (name, value) = line.split_once(':').expect("NAME:VALUE");
            (name.to_string(), unescape(value))
        })
        .collect()
}

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') | Some('N') => out.push('\n'),
                Some(other) => out.push(other),
                None => panic!("a lone backslash in {value:?}"),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn property(lines: &[(String, String)], name: &str) -> Option<String> {
    lines
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

#[test]
fn calendar_file_without_an_end_lasts_one_hour() {
    let project = built();
    let lines = calendar(&project.read(DISABILITY_RIGHTS_ICS));
    // 3pm BST on 5 September 2022.
    assert_eq!(property(&lines, "DTSTART").unwrap(), "20220905T140000Z");
    assert_eq!(property(&lines, "DTEND").unwrap(), "20220905T150000Z");
}

#[test]
fn calendar_file_ends_when_the_event_does() {
    let project = Project::example();
    project
        .edit(
            "archive/events.toml",
            "start = 2022-09-05T15:00:00",
            "start = 2022-09-05T15:00:00\nend = 2022-09-05T16:30:00",
        )
        .run(&["web", "build"])
        .expect_code(0);
    let lines = calendar(&project.read(DISABILITY_RIGHTS_ICS));
    assert_eq!(property(&lines, "DTEND").unwrap(), "20220905T153000Z");
}

#[test]
fn calendar_url_is_the_issue_page_without_a_booking_link() {
    let project = built();
    let lines = calendar(&project.read(DISABILITY_RIGHTS_ICS));
    assert_eq!(
        property(&lines, "URL").unwrap(),
        "https://news.renecassin.example.org/issues/2022-07-13/"
    );
    let lines = calendar(&project.read("site/events/celebrating-the-light-together-2020.ics"));
    assert_eq!(
        property(&lines, "URL").unwrap(),
        "https://news.renecassin.example.org/issues/2020-12-10/"
    );
}

#[test]
fn calendar_url_is_the_booking_link_when_there_is_one() {
    let project = Project::example();
    project
        .edit(
            "archive/events.toml",
            "start = 2022-09-05T15:00:00",
            "start = 2022-09-05T15:00:00\nbooking-url = \"https://tickets.example.org/disability-rights?ref=news,letter\"",
        )
        .run(&["web", "build"])
        .expect_code(0);
    let lines = calendar(&project.read(DISABILITY_RIGHTS_ICS));
    assert_eq!(
        property(&lines, "URL").unwrap(),
        "https://tickets.example.org/disability-rights?ref=news,letter"
    );
    assert!(
        property(&lines, "DESCRIPTION").unwrap().ends_with(
            "Book a place: https://tickets.example.org/disability-rights?ref=news,letter"
        )
    );
}

#[test]
fn calendar_url_is_absent_for_an_event_no_issue_shows() {
    let project = Project::example();
    project
        .edit(
            "issues/2022-07-13.toml",
            "events = [\"judith-series-disability-rights\"]",
            "events = []",
        )
        .run(&["web", "build"])
        .expect_code(0);
    let lines = calendar(&project.read(DISABILITY_RIGHTS_ICS));
    assert_eq!(property(&lines, "URL"), None);
}

#[test]
fn calendar_description_is_the_summary_and_partner() {
    let project = built();
    let lines = calendar(&project.read(DISABILITY_RIGHTS_ICS));
    assert_eq!(
        property(&lines, "DESCRIPTION").unwrap(),
        "Chaired by Dr Annette Lawson – book your free place via our Eventbrite page.\n\nWith Fazilet Hadi, Head of Policy at Disability Rights UK."
    );
    assert_eq!(property(&lines, "LOCATION").unwrap(), "Online");
}

#[test]
fn calendar_text_is_escaped_and_folded_at_75_octets() {
    let project = Project::example();
    let summary = "Tea, cake; a \\\\ backslash\\nand a new line – then a long run of words: "
        .to_string()
        + &"Zoë Łucja 李 ".repeat(12);
    project
        .edit(
            "archive/events.toml",
            "summary = \"Chaired by Dr Annette Lawson – book your free place via our Eventbrite page.\"",
            &format!("summary = \"{summary}\""),
        )
        .run(&["web", "build"])
        .expect_code(0);
    let text = project.read(DISABILITY_RIGHTS_ICS);
    assert!(
        text.contains("DESCRIPTION:Tea\\, cake\\; a \\\\ backslash\\nand a new line"),
        "{text}"
    );
    let lines = calendar(&text);
    let expected = format!(
        "Tea, cake; a \\ backslash\nand a new line – then a long run of words: {}\n\nWith Fazilet Hadi, Head of Policy at Disability Rights UK.",
        "Zoë Łucja 李 ".repeat(12)
    );
    assert_eq!(property(&lines, "DESCRIPTION").unwrap(), expected);
    assert!(
        text.lines().filter(|l| l.starts_with(' ')).count() >= 3,
        "folded:\n{text}"
    );
}

#[test]
fn calendar_file_has_no_location_when_the_archive_names_no_place() {
    let project = built();
    let lines = calendar(&project.read("site/events/refugee-week-2022-then-and-now.ics"));
    assert_eq!(property(&lines, "LOCATION"), None);
    assert_eq!(
        property(&lines, "SUMMARY").unwrap(),
        "Then and Now, Learning from Refugee Experiences"
    );
}
