//! A card for every case: an example project whose 13 July 2022 issue ends
//! with a section of two upcoming events (one online with a partner, a
//! booking link and an end time; one at a place) and two posts (one with a
//! thumbnail, one without).

#![allow(dead_code)]

use super::png;
use super::project::Project;

pub const ISSUE: &str = "issues/2022-07-13.toml";
pub const HEADING: &str = "Cards to test";
pub const THUMBNAIL: &str = "archive/images/card-test.png";
pub const THUMBNAIL_ALT: &str = "A placard that reads Human Rights for All";
pub const BOOKING: &str = "https://tickets.example.org/card-test-workshop";

pub fn project() -> Project {
    let project = Project::example();
    // 480 × 360 px: shown at 128 × 96.
    std::fs::create_dir_all(project.path("archive/images")).unwrap();
    std::fs::write(
        project.path(THUMBNAIL),
        png::solid(480, 360, [0x7d, 0x95, 0xb5]),
    )
    .unwrap();
    append(
        &project,
        "archive/events.toml",
        &format!(
            r#"
[[event]]
id = "card-test-workshop"
title = "Card Test Workshop"
start = 2022-09-12T18:30:00
end = 2022-09-12T20:00:00
partner = "Example Partner Trust"
where = "Online"
booking-url = "{BOOKING}"
summary = "A workshop that exists only in the tests."

[[event]]
id = "card-test-talk"
title = "Card Test Talk"
start = 2022-10-03T12:00:00
where = "Example Hall, London"
"#
        ),
    );
    append(
        &project,
        "archive/posts.toml",
        &format!(
            r#"
[[post]]
id = "card-test-post"
title = "Card Test Post"
author = "Ada Example"
role = "volunteer"
summary = "The opening words of a post that exists only in the tests"
image = "{THUMBNAIL}"
image-alt = "{THUMBNAIL_ALT}"
"#
        ),
    );
    append(
        &project,
        ISSUE,
        &format!(
            r#"
[[section]]
heading = "{HEADING}"
events = ["card-test-workshop", "card-test-talk"]
posts = ["card-test-post", "hands-off-our-human-rights-act"]
"#
        ),
    );
    project
}

fn append(project: &Project, file: &str, text: &str) {
    let old = project.read(file);
    project.write(file, &format!("{old}{text}"));
}
