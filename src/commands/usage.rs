//! Which issues use each post and event: every file under the issues
//! folder, read as `check` reads it.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;

use crate::model::issue::Issue;
use crate::model::issue::issue_files;

/// Issue ids (sorted) by post id and by event id.
#[derive(Debug, Default)]
pub struct Usage {
    /// The newest issue's date.
    pub newest: Option<jiff::civil::Date>,
    posts: HashMap<String, Vec<String>>,
    events: HashMap<String, Vec<String>>,
}

impl Usage {
    /// Reads every issue under `dir`; one that does not load is skipped with
    /// a note on stderr (`newsletter check` reports it properly).
    pub fn scan(dir: &Path) -> Result<Usage> {
        let mut usage = Usage::default();
        for path in issue_files(dir)? {
            let issue = match Issue::load(&path) {
                Ok(issue) => issue,
                Err(error) => {
                    eprintln!("note: skipping `{}`: {error:#}", path.display());
                    continue;
                }
            };
            usage.newest = usage.newest.max(Some(issue.date));
            for section in &issue.content.sections {
                for (ids, into) in [
                    (&section.posts, &mut usage.posts),
                    (&section.events, &mut usage.events),
                ] {
                    for id in ids {
                        let issues = into.entry(id.get_ref().clone()).or_default();
                        if !issues.contains(&issue.id) {
                            issues.push(issue.id.clone());
                        }
                    }
                }
            }
        }
        Ok(usage)
    }

    /// Every post id some issue references.
    pub fn used_posts(&self) -> impl Iterator<Item = &String> {
        self.posts.keys()
    }

    pub fn of_post(&self, id: &str) -> &[String] {
        self.posts.get(id).map_or(&[], Vec::as_slice)
    }

    pub fn of_event(&self, id: &str) -> &[String] {
        self.events.get(id).map_or(&[], Vec::as_slice)
    }
}

/// "in issue 2022-07-13", "in issues 2020-12-10, 2022-07-13", "in no issue yet".
pub fn in_issues(issues: &[String]) -> String {
    match issues {
        [] => "in no issue yet".to_string(),
        [one] => format!("in issue {one}"),
        many => format!("in issues {}", many.join(", ")),
    }
}

/// A value for one TSV cell: tabs and line ends become spaces.
pub fn cell(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
