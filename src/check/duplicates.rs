//! The same post or event twice in one issue (`duplicate-reference`): a
//! warning at the second place, naming the first.

use std::collections::HashMap;

use crate::model::finding::Finding;
use crate::model::issue::Issue;

pub fn lint(issue: &Issue) -> Vec<Finding> {
    let source = &issue.source;
    let mut first: HashMap<(&str, &str), (usize, usize)> = HashMap::new();
    let mut findings = Vec::new();
    for (n, section) in issue.content.sections.iter().enumerate() {
        let posts = section.posts.iter().map(|id| ("post", id));
        for (kind, id) in posts.chain(section.events.iter().map(|id| ("event", id))) {
            let here = (n, source.line(id.span().start));
            let Some(&(there_n, there_line)) = first.get(&(kind, id.get_ref().as_str())) else {
                first.insert((kind, id.get_ref().as_str()), here);
                continue;
            };
            let place = |n: usize, line: usize| {
                let heading = issue.content.sections[n].heading.get_ref().trim();
                format!("line {line}, section {} `{heading}`", n + 1)
            };
            findings.push(source.warning_at(
                "duplicate-reference",
                id.span().start,
                format!(
                    "{kind} `{}` is already in this issue ({}), so readers would see it twice; remove it here ({}) or there",
                    id.get_ref(),
                    place(there_n, there_line),
                    place(here.0, here.1),
                ),
            ));
        }
    }
    findings
}
