//! Lints of an issue file, on its model: subject and preheader, placeholders,
//! audiences and their reach, merge fields, links.

use std::path::Path;

use toml::Spanned;

use super::{duplicates, images, lint_rendered};
use crate::model::archive::Archive;
use crate::model::audience::{self, Audience, Reach};
use crate::model::config::Config;
use crate::model::finding::{Finding, Severity};
use crate::model::issue::Issue;
use crate::model::subscribers::{self, Columns};
use crate::model::theme::Theme;
use crate::model::toml_file::Source;
use crate::render::markdown::{Link, Markdown};
use crate::render::merge;
use crate::render::{self, Rendered, value_line};

pub(super) const SUBJECT_LIMIT: usize = 78;
pub(super) const PREHEADER_LIMIT: usize = 110;

/// Every lint of one issue, in the order `check` reports them: the model's
/// first; then, if nothing stops the render, the rendered message's.
#[allow(clippy::too_many_arguments)]
pub(super) fn lint_issue(
    config: &Config,
    theme: &Theme,
    archive: &Archive,
    issue: &Issue,
    rendered: Option<&Rendered>,
    columns: &Columns,
    sample: &subscribers::Subscriber,
    findings: &mut Vec<Finding>,
) {
    lint_subject(issue, findings);
    lint_preheader(issue, findings);
    let mut broken = lint_greeting(issue, columns, findings);
    lint_placeholders(&issue.source, findings);
    broken |= lint_merge_fields(issue, columns, findings);
    lint_audience_columns(issue, columns, findings);

    let unknown = render::unknown_references(issue, archive);
    broken |= !unknown.is_empty();
    findings.extend(unknown);

    findings.extend(duplicates::lint(issue));
    lint_past_events(issue, archive, findings);
    lint_links(issue, findings);
    broken |= !images::lint(config, theme, archive, issue, findings);

    if broken {
        return;
    }
    // `send` has rendered the issue already; `check` renders it here.
    let owned;
    let rendered = match rendered {
        Some(rendered) => rendered,
        None => match render::render(config, theme, issue, archive) {
            Ok(rendered) => {
                owned = rendered;
                &owned
            }
            Err(error) => {
                findings.push(Finding::error(
                    "render-failed",
                    &issue.source.path,
                    format!("{error:#}"),
                ));
                return;
            }
        },
    };
    lint_rendered(config, issue, rendered, columns, sample, findings);
}

/// `subject-too-long`: mail apps cut the subject.
fn lint_subject(issue: &Issue, findings: &mut Vec<Finding>) {
    let c = &issue.content;
    let subject = c.subject.get_ref().trim();
    if subject.chars().count() > SUBJECT_LIMIT {
        findings.push(issue.source.warning_at(
            "subject-too-long",
            c.subject.span().start,
            format!(
                "the subject has {} characters; mail apps cut it after about {SUBJECT_LIMIT}",
                subject.chars().count()
            ),
        ));
    }
}

/// `missing-preheader`, `preheader-too-long`: the line inboxes show after
/// the subject.
fn lint_preheader(issue: &Issue, findings: &mut Vec<Finding>) {
    let source = &issue.source;
    match &issue.content.preheader {
        None => findings.push(Finding::warning(
            "missing-preheader",
            &source.path,
            "no `preheader`: inboxes will show the first words of the email instead; add one line that complements the subject",
        )),
        Some(p) if p.get_ref().trim().is_empty() => findings.push(source.warning_at(
            "missing-preheader",
            p.span().start,
            "the `preheader` is empty; write one line that complements the subject",
        )),
        Some(p) if p.get_ref().trim().chars().count() > PREHEADER_LIMIT => {
            findings.push(source.warning_at(
                "preheader-too-long",
                p.span().start,
                format!(
                    "the preheader has {} characters; inboxes show about {PREHEADER_LIMIT}",
                    p.get_ref().trim().chars().count()
                ),
            ))
        }
        Some(_) => {}
    }
}

/// `unknown-merge-field` in the greeting. True when the greeting does not
/// parse: that fails the render too, so it is reported once, here.
fn lint_greeting(issue: &Issue, columns: &Columns, findings: &mut Vec<Finding>) -> bool {
    let source = &issue.source;
    let c = &issue.content;
    let mut broken = false;
    match render::parse_greeting(issue) {
        Ok(greeting) => {
            for field in greeting.fields() {
                if !columns.has(field) {
                    findings.push(source.error_at(
                        "unknown-merge-field",
                        c.greeting.span().start,
                        format!(
                            "the greeting uses `{{{{{field}}}}}` but the subscriber file has no `{field}` column; {}its columns are {}",
                            merge_suggestion(field, columns),
                            columns_list(columns)
                        ),
                    ));
                }
            }
        }
        Err(found) => {
            findings.push(*found);
            broken = true;
        }
    }
    broken
}

/// `past-event`: an event listed as coming up that starts before the issue.
fn lint_past_events(issue: &Issue, archive: &Archive, findings: &mut Vec<Finding>) {
    for section in issue.content.sections.iter().filter(|s| !s.past_events) {
        for id in &section.events {
            if let Some(event) = archive.event(id.get_ref())
                && event.start.date() < issue.date
            {
                findings.push(issue.source.error_at(
                    "past-event",
                    id.span().start,
                    format!(
                        "event `{}` starts on {}, before the issue date {}, so readers would be invited to something already over; remove it from this section, or, if the section reports on past events, set `past-events = true` in it",
                        id.get_ref(),
                        event.start.date(),
                        issue.date
                    ),
                ));
            }
        }
    }
}

/// The call to action's link and text, then every link of the Markdown
/// ([`lint_link`]).
fn lint_links(issue: &Issue, findings: &mut Vec<Finding>) {
    let source = &issue.source;
    let c = &issue.content;
    let mut markdowns: Vec<&Spanned<String>> = vec![&c.letter];
    markdowns.extend(c.sections.iter().filter_map(|s| s.body.as_ref()));
    markdowns.extend(c.sign_off.text.as_ref());
    if let Some(cta) = &c.call_to_action {
        markdowns.extend(cta.intro.as_ref());
        lint_url(
            source,
            "call-to-action url",
            cta.url.get_ref(),
            value_line(source, &cta.url, 0),
            findings,
        );
        if cta.text.get_ref().trim().is_empty() {
            findings.push(source.error_at(
                "empty-link-text",
                cta.text.span().start,
                "the call to action has no `text`",
            ));
        }
    }
    for md in markdowns {
        for link in Markdown::links(md.get_ref()) {
            lint_link(source, md, &link, findings);
        }
    }
}

/// The marker the skeleton (`templates/issue.toml`) leaves in every field
/// the office has to write.
pub(super) const PLACEHOLDER: &str = "TODO";

/// Every string value of the issue that still holds a skeleton placeholder
/// (`TODO` as a word) is an error (`placeholder`), at the line of the marker:
/// an issue straight from `newsletter new` must not be sent.
pub(super) fn lint_placeholders(source: &Source, findings: &mut Vec<Finding>) {
    let Ok(root) = toml::de::DeTable::parse(&source.text) else {
        return;
    };
    let root = Spanned::new(root.span(), toml::de::DeValue::Table(root.into_inner()));
    let mut found = Vec::new();
    placeholder_values(&source.text, &root, &mut Vec::new(), &mut found);
    for (path, offset, value) in found {
        let first = value.trim().lines().next().unwrap_or_default().trim();
        findings.push(source.error_at(
            "placeholder",
            offset,
            format!(
                "{} still holds the placeholder `{}` from the skeleton; replace it with the real text (or delete the line if the field is optional)",
                field_name(&path),
                clip_chars(first, 60)
            ),
        ));
    }
}

/// One step into the issue file: a key, or the n-th (0-based) table of an
/// array such as `[[section]]`.
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// Collects `(path, offset of the marker, value)` of each string holding
/// [`PLACEHOLDER`].
pub(super) fn placeholder_values(
    text: &str,
    value: &Spanned<toml::de::DeValue>,
    path: &mut Vec<Step>,
    found: &mut Vec<(String, usize, String)>,
) {
    match value.get_ref() {
        toml::de::DeValue::Table(table) => {
            for (key, item) in table.iter() {
                path.push(Step::Key(key.get_ref().to_string()));
                placeholder_values(text, item, path, found);
                path.pop();
            }
        }
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                placeholder_values(text, item, path, found);
                path.pop();
            }
        }
        toml::de::DeValue::String(string) => {
            let span = value.span();
            let raw = text.get(span.clone()).unwrap_or_default();
            if let Some(at) = find_word(raw, PLACEHOLDER) {
                found.push((describe(path), span.start + at, string.to_string()));
            }
        }
        _ => {}
    }
}

/// The byte offset of `word` in `text` where it is not part of a longer word.
pub(super) fn find_word(text: &str, word: &str) -> Option<usize> {
    text.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// `subject`, `sign-off.name`, `section.2.heading`: the path as a string,
/// 1-based for arrays (see [`field_name`]).
pub(super) fn describe(path: &[Step]) -> String {
    path.iter()
        .map(|step| match step {
            Step::Key(key) => key.clone(),
            Step::Index(i) => (i + 1).to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A dotted path in words: `` `subject` ``, `` `name` in `[sign-off]` ``,
/// `` `heading` of section 2 ``.
pub(super) fn field_name(path: &str) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        [key] => format!("`{key}`"),
        ["section", n, key] if n.parse::<usize>().is_ok() => {
            format!("`{key}` of section {n}")
        }
        [table, key] => format!("`{key}` in `[{table}]`"),
        _ => format!("`{path}`"),
    }
}

/// At most `n` characters of `text`, with `…` when cut.
pub(super) fn clip_chars(text: &str, n: usize) -> String {
    let clipped: String = text.chars().take(n).collect();
    if clipped.len() < text.len() {
        format!("{clipped}…")
    } else {
        clipped
    }
}

/// Every `audience` or `exclude` key must be a column of the subscriber
/// file (`unknown-audience-column`, with the nearest columns).
pub(super) fn lint_audience_columns(issue: &Issue, columns: &Columns, findings: &mut Vec<Finding>) {
    let audiences = &issue.audiences;
    let tables = std::iter::once(("", &audiences.issue))
        .chain(audiences.sections.iter().map(|s| ("section.", &s.audience)));
    for (prefix, audience) in tables {
        for (rule, exclude) in audience.rules() {
            if columns.field(&rule.column).is_some() {
                continue;
            }
            let key = if exclude { "exclude" } else { "audience" };
            let nearest = audience::nearest_column(&rule.column, columns.names());
            let hint = match nearest.as_slice() {
                [] => String::new(),
                names => format!(
                    "did you mean {}? ",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            };
            findings.push(issue.source.error_at(
                "unknown-audience-column",
                rule.column_span.start,
                format!(
                    "`{prefix}{key}` names the column `{}`, which the subscriber file does not have; {hint}its columns are {}",
                    rule.column,
                    columns_list(columns)
                ),
            ));
        }
    }
}

/// An audience that matches nobody is an error (`audience-matches-nobody`);
/// a section's that matches everyone the issue goes to is a warning
/// (`audience-matches-everyone`). Audiences naming a missing column are
/// reported by [`lint_audience_columns`] alone.
pub(super) fn lint_reach(
    issue: &Issue,
    columns: &Columns,
    reach: &Reach,
    findings: &mut Vec<Finding>,
) {
    let source = &issue.source;
    let known = |a: &Audience| a.rules().all(|(r, _)| columns.field(&r.column).is_some());
    let how = "values are matched ignoring case and spaces around them, and a cell may list several separated by `;`, `,` or `|`";
    let issue_audience = &issue.audiences.issue;
    if reach.subscribed == 0 {
        return;
    }
    if !issue_audience.is_everyone() && known(issue_audience) && reach.audience == 0 {
        findings.push(source.error_at(
            "audience-matches-nobody",
            issue_audience.offset(),
            format!(
                "the issue's audience (`{issue_audience}`) matches none of the {} subscribed addresses, so nobody would get it; check the values against the subscriber file ({how})",
                reach.subscribed
            ),
        ));
        return;
    }
    for (section, n) in issue.audiences.sections.iter().zip(&reach.sections) {
        if !known(&section.audience) {
            continue;
        }
        let name = format!("section {} (`{}`)", section.index + 1, section.heading);
        let audience = &section.audience;
        if *n == 0 {
            findings.push(source.error_at(
                "audience-matches-nobody",
                audience.offset(),
                format!(
                    "the audience of {name} (`{audience}`) matches none of the {} subscribers the issue goes to, so nobody would see it; check the values against the subscriber file ({how})",
                    reach.audience
                ),
            ));
        } else if *n == reach.audience {
            findings.push(source.warning_at(
                "audience-matches-everyone",
                audience.offset(),
                format!(
                    "the audience of {name} (`{audience}`) includes all {n} subscribers the issue goes to, so it leaves nobody out; narrow it, or remove the section's `audience` and `exclude`"
                ),
            ));
        }
    }
}

/// Merge fields outside the greeting: each text a reader sees may use them
/// (`invalid-merge-field`, `unknown-merge-field` on the field's line); a URL
/// may not (`merge-field-in-url`). True when one does not parse, so the
/// issue cannot be rendered.
pub(super) fn lint_merge_fields(
    issue: &Issue,
    columns: &Columns,
    findings: &mut Vec<Finding>,
) -> bool {
    let mut broken = false;
    for (what, value) in &reader_texts(issue) {
        broken |= lint_merge_text(&issue.source, what, value, columns, findings);
    }
    lint_merge_in_urls(issue, findings);
    broken
}

/// Every text of the issue a reader sees, named for messages
/// (`body of section 2`), in the order of the file.
fn reader_texts(issue: &Issue) -> Vec<(String, &Spanned<String>)> {
    let c = &issue.content;
    let mut texts: Vec<(String, &Spanned<String>)> = vec![("subject".into(), &c.subject)];
    texts.extend(c.preheader.as_ref().map(|p| ("preheader".into(), p)));
    texts.push(("letter".into(), &c.letter));
    for (i, section) in c.sections.iter().enumerate() {
        let n = i + 1;
        texts.push((format!("heading of section {n}"), &section.heading));
        texts.extend(
            section
                .body
                .as_ref()
                .map(|b| (format!("body of section {n}"), b)),
        );
    }
    if let Some(cta) = &c.call_to_action {
        texts.extend(
            cta.intro
                .as_ref()
                .map(|i| ("call-to-action intro".into(), i)),
        );
        texts.push(("call-to-action text".into(), &cta.text));
    }
    texts.extend(
        c.sign_off
            .text
            .as_ref()
            .map(|t| ("sign-off text".into(), t)),
    );
    texts
}

/// The merge fields of one text: `invalid-merge-field` (true: the issue
/// cannot be rendered) or an `unknown-merge-field` for each field that is
/// not a column.
fn lint_merge_text(
    source: &Source,
    what: &str,
    value: &Spanned<String>,
    columns: &Columns,
    findings: &mut Vec<Finding>,
) -> bool {
    let fields = match merge::scan(value.get_ref()) {
        Ok(fields) => fields,
        Err(error) => {
            findings.push(render::merge_error(source, what, value, &error));
            return true;
        }
    };
    for field in fields.iter().filter(|f| !columns.has(&f.name)) {
        findings.push(
            Finding::error(
                "unknown-merge-field",
                &source.path,
                format!(
                    "the {what} uses `{{{{{}}}}}` but the subscriber file has no `{}` column; {}its columns are {}",
                    field.name,
                    field.name,
                    merge_suggestion(&field.name, columns),
                    columns_list(columns)
                ),
            )
            .at_line(value_line(source, value, field.offset)),
        );
    }
    false
}

/// `merge-field-in-url`: in a link or image of the Markdown, or the call
/// to action's `url`.
fn lint_merge_in_urls(issue: &Issue, findings: &mut Vec<Finding>) {
    let source = &issue.source;
    let c = &issue.content;
    let mut markdowns: Vec<(&str, &Spanned<String>)> = vec![("letter", &c.letter)];
    markdowns.extend(
        c.sections
            .iter()
            .filter_map(|s| s.body.as_ref().map(|b| ("section body", b))),
    );
    if let Some(cta) = &c.call_to_action {
        markdowns.extend(cta.intro.as_ref().map(|i| ("call-to-action intro", i)));
    }
    markdowns.extend(c.sign_off.text.as_ref().map(|t| ("sign-off text", t)));
    for (what, md) in markdowns {
        for link in Markdown::links_and_images(md.get_ref()) {
            if link.url.contains("{{") {
                findings.push(merge_in_url(
                    &format!("a link in the {what}"),
                    &link.url,
                    value_line(source, md, link.offset),
                    &source.path,
                ));
            }
        }
    }
    if let Some(cta) = &c.call_to_action
        && let Some(at) = cta.url.get_ref().find("{{")
    {
        findings.push(merge_in_url(
            "the call-to-action url",
            cta.url.get_ref().trim(),
            value_line(source, &cta.url, at),
            &source.path,
        ));
    }
}

/// The subscriber file's columns for messages: `` `email`, `first_name` ``.
fn columns_list(columns: &Columns) -> String {
    columns
        .names()
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "did you mean `{{first_name}}`? " for a merge field close to a column,
/// as post ids get theirs; empty when no column is close.
pub(super) fn merge_suggestion(field: &str, columns: &Columns) -> String {
    match audience::nearest_column(field, columns.names()).as_slice() {
        [] => String::new(),
        names => format!(
            "did you mean {}? ",
            names
                .iter()
                .map(|n| format!("`{{{{{n}}}}}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    }
}

pub(super) fn merge_in_url(what: &str, url: &str, line: usize, file: &Path) -> Finding {
    Finding::error(
        "merge-field-in-url",
        file,
        format!(
            "{what} has a merge field in its URL `{url}`; links are the same for everyone (a personalised link is a tracking decision, not one to make by accident): link to a page without `{{{{…}}}}`"
        ),
    )
    .at_line(line)
}

pub(super) fn lint_link(
    source: &Source,
    md: &Spanned<String>,
    link: &Link,
    findings: &mut Vec<Finding>,
) {
    let line = value_line(source, md, link.offset);
    let text = link.text.trim();
    if text.is_empty() {
        findings.push(
            Finding::error(
                "empty-link-text",
                &source.path,
                format!("the link to `{}` has no text; say where it goes", link.url),
            )
            .at_line(line),
        );
    } else if is_vague(text) {
        findings.push(
            Finding::warning(
                "click-here",
                &source.path,
                format!("link text `{text}` says nothing about where it goes; use words like \"read our briefing\""),
            )
            .at_line(line),
        );
    }
    lint_url(source, "link", &link.url, line, findings);
}

pub(super) fn is_vague(text: &str) -> bool {
    let t = text.to_lowercase();
    let t = t.trim_matches(|c: char| !c.is_alphanumeric());
    [
        "click here",
        "here",
        "click",
        "this link",
        "link",
        "read more",
        "more",
    ]
    .contains(&t)
}

pub(super) fn lint_url(
    source: &Source,
    what: &str,
    url: &str,
    line: usize,
    findings: &mut Vec<Finding>,
) {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let (severity, code, message) = if lower.starts_with("https://") || lower.starts_with("mailto:")
    {
        return;
    } else if lower.starts_with("http://") {
        (
            Severity::Warning,
            "http-link",
            format!("{what} `{url}` is not https://; use the https address"),
        )
    } else if lower.starts_with("javascript:")
        || lower.starts_with("data:")
        || lower.starts_with("vbscript:")
    {
        (
            Severity::Error,
            "unsafe-link",
            format!("{what} `{url}` runs code; mail apps block it. Link to an https:// page"),
        )
    } else {
        (
            Severity::Error,
            "relative-link",
            format!(
                "{what} `{url}` is not an absolute https:// URL; write it in full, like https://www.example.org/page"
            ),
        )
    };
    findings.push(Finding {
        severity,
        code,
        file: source.path.clone(),
        line: Some(line),
        column: None,
        message,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vague_link_text() {
        assert!(is_vague("Click here"));
        assert!(is_vague("here."));
        assert!(!is_vague("read our briefing"));
    }
}
