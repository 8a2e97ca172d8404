//! `newsletter check`: every mistake a careful editor would catch, before a
//! supporter sees it. Loads the configuration, the archive, the subscriber
//! file and each issue, renders every issue and lints what would be sent.
//! It connects to nothing.

mod duplicates;
mod images;
pub mod sending;
pub mod started;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;
use toml::Spanned;

use crate::model::archive::Archive;
use crate::model::audience::{self, Audience, Reach};
use crate::model::config::Config;
use crate::model::finding::{self, Finding, Severity};
use crate::model::issue::Issue;
use crate::model::subscribers::{self, Columns, RowProblem};
use crate::model::theme::Theme;
use crate::model::toml_file::Source;
use crate::render::markdown::{Link, Markdown};
use crate::render::merge;
use crate::render::{self, Rendered, text, value_line};

/// Gmail clips messages over about 102 KB; stay well under.
const HTML_LIMIT: usize = 90 * 1024;
const SUBJECT_LIMIT: usize = 78;
const PREHEADER_LIMIT: usize = 110;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Github,
}

pub struct CheckRequest {
    pub issues: Vec<PathBuf>,
    pub subscribers: Option<PathBuf>,
    pub format: Format,
    pub strict: bool,
}

/// Runs every check; exit code 0 when clean (warnings allowed unless
/// strict), 1 when anything is wrong. Unreadable input is an error (2).
pub fn run(config_path: &Path, req: &CheckRequest) -> Result<ExitCode> {
    let (findings, reached) = check_with_reach(config_path, req)?;
    print(&findings, &reached, req.format)?;
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    Ok(if errors > 0 || (req.strict && warnings > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// How many subscribers an issue with audiences reaches, and each of its
/// audienced sections.
#[derive(Debug, Clone, Serialize)]
pub struct Reached {
    pub file: PathBuf,
    /// The issue's audience in words (`everyone` without one).
    pub audience: String,
    /// Subscribed addresses in the subscriber file.
    pub subscribed: u64,
    /// Of those, the ones the issue goes to.
    pub reaches: u64,
    pub sections: Vec<SectionReached>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SectionReached {
    /// 1-based, as the issue lists its sections.
    pub section: usize,
    pub heading: String,
    pub audience: String,
    /// Of the subscribers the issue goes to, the ones who see it.
    pub reaches: u64,
}

impl Reached {
    fn new(issue: &Issue, reach: &Reach) -> Reached {
        let audiences = &issue.audiences;
        Reached {
            file: issue.source.path.clone(),
            audience: audiences.issue.to_string(),
            subscribed: reach.subscribed,
            reaches: reach.audience,
            sections: audiences
                .sections
                .iter()
                .zip(&reach.sections)
                .map(|(s, n)| SectionReached {
                    section: s.index + 1,
                    heading: s.heading.clone(),
                    audience: s.audience.to_string(),
                    reaches: *n,
                })
                .collect(),
        }
    }
}

/// Collects every finding, in file order.
pub fn check(config_path: &Path, req: &CheckRequest) -> Result<Vec<Finding>> {
    check_with_reach(config_path, req).map(|(findings, _)| findings)
}

/// [`check`], and the reach of every issue that has audiences.
pub fn check_with_reach(
    config_path: &Path,
    req: &CheckRequest,
) -> Result<(Vec<Finding>, Vec<Reached>)> {
    let mut reached = Vec::new();
    let mut findings = Vec::new();
    let config = match Config::load(config_path) {
        Ok(config) => config,
        // `Config::load` rewords a read failure without its `io::Error`:
        // a configuration that cannot be read is not a finding (exit 2).
        Err(error) if std::fs::read_to_string(config_path).is_err() => return Err(error),
        Err(error) => {
            findings.push(as_finding(error, config_path, "invalid-config")?);
            return Ok((findings, reached));
        }
    };
    config_lints(&config, &mut findings);

    let archive = match Archive::load(
        &config.paths.posts,
        &config.paths.events,
        &config.list.post_url,
    ) {
        Ok(archive) => Some(archive),
        Err(error) => {
            findings.push(as_finding(error, &config.paths.posts, "invalid-archive")?);
            None
        }
    };
    let theme = match Theme::load(&config.paths.theme) {
        Ok(theme) => Some(theme),
        Err(error) => {
            findings.push(as_finding(error, &config.paths.theme, "invalid-theme")?);
            None
        }
    };

    let list_path = req
        .subscribers
        .clone()
        .unwrap_or_else(|| config.paths.subscribers.clone());
    let survey = subscribers::survey(&list_path)?;
    for warning in &survey.warnings {
        findings.push(Finding::warning(
            "subscriber-encoding",
            &list_path,
            warning.clone(),
        ));
    }
    for problem in &survey.problems {
        findings.push(subscriber_finding(&list_path, problem));
    }
    let sample = sample_subscriber(&list_path)?;

    let today = crate::model::dates::today()?;
    let issue_paths = if req.issues.is_empty() {
        all_issues(&config.paths.issues)?
    } else {
        req.issues
            .iter()
            .map(|p| config.issue_path(p.clone()))
            .collect()
    };
    for path in &issue_paths {
        let issue = match Issue::load(path) {
            Ok(issue) => issue,
            Err(error) => {
                findings.push(as_finding(error, path, "invalid-issue")?);
                continue;
            }
        };
        let (Some(archive), Some(theme)) = (&archive, &theme) else {
            continue;
        };
        lint_issue(
            &config,
            theme,
            archive,
            &issue,
            None,
            &survey.columns,
            &sample,
            &mut findings,
        );
        findings.extend(started::lint(&issue, archive, today));
        if !issue.audiences.is_empty() {
            let reach = audience::reach(&list_path, &issue.audiences, &survey.duplicates_index)?;
            lint_reach(&issue, &survey.columns, &reach, &mut findings);
            reached.push(Reached::new(&issue, &reach));
        }
    }
    findings.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    // The theme's findings (its logo) come once per issue: keep one.
    let mut unique: Vec<Finding> = Vec::with_capacity(findings.len());
    for finding in findings {
        if !unique.contains(&finding) {
            unique.push(finding);
        }
    }
    Ok((unique, reached))
}

/// What `check` says of one issue, for `send`: the configuration's lints
/// and the issue's, on the message a real subscriber would get. The
/// subscriber file's own findings are left to the send's survey, which
/// reports them (and `--skip-invalid` decides).
pub fn findings_for_send(
    config: &Config,
    loaded: &crate::render::Loaded,
    columns: &Columns,
    sample: &subscribers::Subscriber,
    reach: &Reach,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    config_lints(config, &mut findings);
    lint_issue(
        config,
        &loaded.theme,
        &loaded.archive,
        &loaded.issue,
        Some(&loaded.rendered),
        columns,
        sample,
        &mut findings,
    );
    if !loaded.issue.audiences.is_empty() {
        lint_reach(&loaded.issue, columns, reach, &mut findings);
    }
    findings.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    findings
}

/// A loader's error as a finding; errors that are not about the content
/// (a missing file) stay errors.
fn as_finding(error: anyhow::Error, file: &Path, code: &'static str) -> Result<Finding> {
    if let Some(found) = finding::of(&error) {
        return Ok(found.clone());
    }
    if error
        .chain()
        .any(|e| e.downcast_ref::<std::io::Error>().is_some())
    {
        return Err(error);
    }
    Ok(Finding::error(code, file, format!("{error:#}")))
}

fn all_issues(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the issues folder `{}`", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// The first subscribed row, to render one real message; a placeholder
/// when the file has none.
fn sample_subscriber(path: &Path) -> Result<subscribers::Subscriber> {
    let reader = subscribers::SubscriberReader::open(path)?;
    Ok(reader
        .filter_map(Result::ok)
        .find(|s| s.status == subscribers::Status::Subscribed)
        .unwrap_or_else(|| subscribers::Subscriber::test("supporter@example.org", 0)))
}

fn config_lints(config: &Config, findings: &mut Vec<Finding>) {
    if let Some(dkim) = &config.dkim {
        if !config.dkim_aligned() {
            findings.push(Finding::error(
                "dkim-misaligned",
                &config.path,
                format!(
                    "the From domain `{}` is not `{}` or a subdomain of it, so DMARC fails even with a valid DKIM signature; sign with the From domain",
                    config.from_domain(),
                    dkim.domain
                ),
            ));
        }
        if let Err(error) = crate::render::message::dkim_config(dkim) {
            findings.push(Finding::error(
                "dkim-key",
                &config.path,
                format!("{error:#}"),
            ));
        }
    }
    // The unsubscribe secret is a sending concern: the sending commands
    // refuse without it, and CI never has it.
    findings.extend(sending::lint(config));
    if let crate::model::config::Transport::Smtp(smtp) = &config.transport
        && let crate::model::config::PasswordSource::Env(name) = &smtp.password
        && std::env::var_os(name).is_none()
    {
        findings.push(Finding::warning(
            "missing-password",
            &config.path,
            format!("the SMTP password variable `{name}` is not set here; a real send needs it"),
        ));
    }
}

fn subscriber_finding(path: &Path, problem: &RowProblem) -> Finding {
    let code = match problem {
        RowProblem::InvalidAddress { .. } => "invalid-address",
        RowProblem::UnknownStatus { .. } | RowProblem::UnreadableConsent { .. } => "unknown-status",
        RowProblem::Duplicate { .. } => "duplicate-address",
        RowProblem::StatusConflict { .. } => "status-conflict",
        RowProblem::Malformed { .. } => "malformed-row",
    };
    let finding = Finding::error(code, path, problem.to_string()).at_line(problem.line() as usize);
    match problem {
        RowProblem::Duplicate { .. } => Finding {
            severity: Severity::Warning,
            ..finding
        },
        _ => finding,
    }
}

#[allow(clippy::too_many_arguments)]
fn lint_issue(
    config: &Config,
    theme: &Theme,
    archive: &Archive,
    issue: &Issue,
    rendered: Option<&Rendered>,
    columns: &Columns,
    sample: &subscribers::Subscriber,
    findings: &mut Vec<Finding>,
) {
    let source = &issue.source;
    let c = &issue.content;

    let subject = c.subject.get_ref().trim();
    if subject.chars().count() > SUBJECT_LIMIT {
        findings.push(source.warning_at(
            "subject-too-long",
            c.subject.span().start,
            format!(
                "the subject has {} characters; mail apps cut it after about {SUBJECT_LIMIT}",
                subject.chars().count()
            ),
        ));
    }
    match &c.preheader {
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

    // A greeting that does not parse fails the render too: report it once.
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
                            columns.names().iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
        Err(error) => {
            if let Some(found) = finding::of(&error) {
                findings.push(found.clone());
            }
            broken = true;
        }
    }

    lint_placeholders(source, findings);
    broken |= lint_merge_fields(issue, columns, findings);
    lint_audience_columns(issue, columns, findings);

    let unknown = render::unknown_references(issue, archive);
    broken |= !unknown.is_empty();
    findings.extend(unknown);

    findings.extend(duplicates::lint(issue));

    for section in c.sections.iter().filter(|s| !s.past_events) {
        for id in &section.events {
            if let Some(event) = archive.event(id.get_ref())
                && event.start.date() < issue.date
            {
                findings.push(source.error_at(
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
                    &source.path,
                    format!("{error:#}"),
                ));
                return;
            }
        },
    };
    lint_rendered(config, issue, rendered, columns, sample, findings);
}

/// The marker the skeleton (`templates/issue.toml`) leaves in every field
/// the office has to write.
const PLACEHOLDER: &str = "TODO";

/// Every string value of the issue that still holds a skeleton placeholder
/// (`TODO` as a word) is an error (`placeholder`), at the line of the marker:
/// an issue straight from `newsletter new` must not be sent.
fn lint_placeholders(source: &Source, findings: &mut Vec<Finding>) {
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
enum Step {
    Key(String),
    Index(usize),
}

/// Collects `(path, offset of the marker, value)` of each string holding
/// [`PLACEHOLDER`].
fn placeholder_values(
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
fn find_word(text: &str, word: &str) -> Option<usize> {
    text.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// `subject`, `sign-off.name`, `section.2.heading`: the path as a string,
/// 1-based for arrays (see [`field_name`]).
fn describe(path: &[Step]) -> String {
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
fn field_name(path: &str) -> String {
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
fn clip_chars(text: &str, n: usize) -> String {
    let clipped: String = text.chars().take(n).collect();
    if clipped.len() < text.len() {
        format!("{clipped}…")
    } else {
        clipped
    }
}

/// Every `audience` or `exclude` key must be a column of the subscriber
/// file (`unknown-audience-column`, with the nearest columns).
fn lint_audience_columns(issue: &Issue, columns: &Columns, findings: &mut Vec<Finding>) {
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
                    columns.names().iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
}

/// An audience that matches nobody is an error (`audience-matches-nobody`);
/// a section's that matches everyone the issue goes to is a warning
/// (`audience-matches-everyone`). Audiences naming a missing column are
/// reported by [`lint_audience_columns`] alone.
fn lint_reach(issue: &Issue, columns: &Columns, reach: &Reach, findings: &mut Vec<Finding>) {
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
fn lint_merge_fields(issue: &Issue, columns: &Columns, findings: &mut Vec<Finding>) -> bool {
    let source = &issue.source;
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
    let columns_list = || {
        columns
            .names()
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut broken = false;
    for (what, value) in &texts {
        match merge::scan(value.get_ref()) {
            Err(error) => {
                findings.push(render::merge_error(source, what, value, &error));
                broken = true;
            }
            Ok(fields) => {
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
                                columns_list()
                            ),
                        )
                        .at_line(value_line(source, value, field.offset)),
                    );
                }
            }
        }
    }

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
    broken
}

/// "did you mean `{{first_name}}`? " for a merge field close to a column,
/// as post ids get theirs; empty when no column is close.
fn merge_suggestion(field: &str, columns: &Columns) -> String {
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

fn merge_in_url(what: &str, url: &str, line: usize, file: &Path) -> Finding {
    Finding::error(
        "merge-field-in-url",
        file,
        format!(
            "{what} has a merge field in its URL `{url}`; links are the same for everyone (a personalised link is a tracking decision, not one to make by accident): link to a page without `{{{{…}}}}`"
        ),
    )
    .at_line(line)
}

fn lint_link(source: &Source, md: &Spanned<String>, link: &Link, findings: &mut Vec<Finding>) {
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

fn is_vague(text: &str) -> bool {
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

fn lint_url(source: &Source, what: &str, url: &str, line: usize, findings: &mut Vec<Finding>) {
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

fn lint_rendered(
    config: &Config,
    issue: &Issue,
    rendered: &Rendered,
    columns: &Columns,
    sample: &subscribers::Subscriber,
    findings: &mut Vec<Finding>,
) {
    let file = &issue.source.path;
    let unsubscribe = "https://unsubscribe.check.invalid/token";
    let personal = rendered.personal(|name| sample.field(columns, name));
    let values = personal.values(unsubscribe, &sample.email);
    let html = rendered.html.fill(&values);
    let txt = rendered.text.fill(&values);

    if html.len() > HTML_LIMIT {
        findings.push(Finding::error(
            "html-too-large",
            file,
            format!(
                "the HTML part is {} KB; Gmail clips messages over about 102 KB, so keep it under {} KB (shorten the letter or move sections to the blog)",
                html.len() / 1024,
                HTML_LIMIT / 1024
            ),
        ));
    }
    for tag in tags(&html, "img") {
        if attribute(tag, "alt").is_none_or(|alt| alt.trim().is_empty()) {
            findings.push(Finding::error(
                "missing-alt",
                file,
                format!("an image has no alt text: `{}`; add words that describe it (`![description](url)`)", clip(tag)),
            ));
        }
    }
    for tag in tags(&html, "link").chain(tags(&html, "script")) {
        findings.push(Finding::error(
            "external-resource",
            file,
            format!(
                "the HTML loads `{}`; mail apps block external stylesheets and scripts",
                clip(tag)
            ),
        ));
    }
    for style in attributes(&html, "style") {
        let compact: String = style
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase();
        for bad in [
            "display:flex",
            "display:grid",
            "display:inline-flex",
            "position:",
        ] {
            if compact.contains(bad) {
                findings.push(Finding::error(
                    "outlook-css",
                    file,
                    format!("the HTML uses `{bad}`, which Outlook for Windows drops for layout; use tables"),
                ));
            }
        }
    }
    if !html.contains(unsubscribe) || !txt.contains(unsubscribe) {
        findings.push(Finding::error(
            "missing-unsubscribe",
            file,
            "the unsubscribe link must be in both the HTML and the text part",
        ));
    }
    if !html.contains(&rendered.web_url) || !txt.contains(&rendered.web_url) {
        findings.push(Finding::error(
            "missing-web-version",
            file,
            "the link to the web version must be in both parts",
        ));
    }

    if txt.trim().is_empty() {
        findings.push(Finding::error(
            "missing-text-part",
            file,
            "the text part is empty",
        ));
    }
    for (i, line) in txt.lines().enumerate() {
        if !text::line_ok(line) {
            findings.push(Finding::error(
                "text-line-too-long",
                file,
                format!(
                    "line {} of the text part has more than {} characters: `{}`",
                    i + 1,
                    text::WIDTH,
                    clip(line)
                ),
            ));
        }
    }
    let flat_text = txt.split_whitespace().collect::<Vec<_>>().join(" ");
    for href in attributes(&html, "href") {
        let url = unescape(href);
        // The text part writes a mailto link as the bare address.
        let needle = url.strip_prefix("mailto:").unwrap_or(&url);
        if !flat_text.contains(needle) {
            findings.push(Finding::error(
                "text-missing-link",
                file,
                format!("the HTML links to `{url}` but the text part does not; spam filters score parts that differ"),
            ));
        }
    }
    for level in ["h1", "h2", "h3"] {
        for heading in elements(&html, level) {
            let words = strip_tags(&heading)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if !words.is_empty() && !flat_text.contains(&words) {
                findings.push(Finding::error(
                    "text-missing-heading",
                    file,
                    format!("the heading `{words}` is in the HTML but not in the text part"),
                ));
            }
        }
    }
    let _ = config;
}

fn clip(text: &str) -> String {
    let clipped: String = text.chars().take(80).collect();
    if clipped.len() < text.len() {
        format!("{clipped}…")
    } else {
        clipped
    }
}

/// The opening tags `<name …>` in HTML.
fn tags<'a>(html: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    tags_at(html, name).map(|(_, tag)| tag)
}

/// Every opening `<name …>` tag with the offset it starts at.
fn tags_at<'a>(html: &'a str, name: &'a str) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    let open = format!("<{name}");
    html.match_indices(open.clone().as_str())
        .map(|(i, _)| i)
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(move |i| {
            let rest = &html[i..];
            let after = rest.as_bytes().get(open.len()).copied();
            if !matches!(after, Some(b' ' | b'>' | b'/' | b'\n')) {
                return None;
            }
            rest.find('>').map(|end| (i, &rest[..=end]))
        })
}

/// The value of `name="…"` in one tag.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')?;
    Some(&tag[start..start + end])
}

/// Every value of `name="…"` anywhere in the HTML.
fn attributes<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let key = format!(" {name}=\"");
    html.match_indices(&key)
        .filter_map(|(i, _)| {
            let start = i + key.len();
            html[start..].find('"').map(|end| &html[start..start + end])
        })
        .collect()
}

/// The inner HTML of every `<name …>…</name>`, each from its own tag
/// (identical tags are found at their own places, not the first one's).
fn elements(html: &str, name: &str) -> Vec<String> {
    let close = format!("</{name}>");
    tags_at(html, name)
        .filter_map(|(at, tag)| {
            let start = at + tag.len();
            let end = html[start..].find(&close)?;
            Some(html[start..start + end].to_string())
        })
        .collect()
}

fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out)
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[derive(Serialize)]
struct Report<'a> {
    errors: usize,
    warnings: usize,
    findings: &'a [Finding],
    #[serde(skip_serializing_if = "<[Reached]>::is_empty")]
    reach: &'a [Reached],
}

fn print(findings: &[Finding], reached: &[Reached], format: Format) -> Result<()> {
    use std::io::Write;
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &Report {
                    errors,
                    warnings,
                    findings,
                    reach: reached,
                },
            )?;
            writeln!(out)?;
        }
        Format::Github => {
            for f in findings {
                let level = match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                let mut props = format!("file={}", gh_property(&f.file.display().to_string()));
                if let Some(line) = f.line {
                    props.push_str(&format!(",line={line}"));
                }
                if let Some(col) = f.column {
                    props.push_str(&format!(",col={col}"));
                }
                props.push_str(&format!(",title={}", gh_property(f.code)));
                writeln!(out, "::{level} {props}::{}", gh_data(&f.message))?;
            }
            writeln!(out, "{}", summary(errors, warnings))?;
        }
        Format::Text => {
            let mut current: Option<&Path> = None;
            for f in findings {
                if current != Some(f.file.as_path()) {
                    if current.is_some() {
                        writeln!(out)?;
                    }
                    writeln!(out, "{}", f.file.display())?;
                    current = Some(f.file.as_path());
                }
                let place = match (f.line, f.column) {
                    (Some(l), Some(c)) => format!("{l}:{c}"),
                    (Some(l), None) => format!("{l}"),
                    _ => "-".into(),
                };
                let level = match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                writeln!(
                    out,
                    "  {place:>7}  {level:<7}  {:<26}  {}",
                    f.code, f.message
                )?;
            }
            if !findings.is_empty() {
                writeln!(out)?;
            }
            if !reached.is_empty() {
                write!(out, "{}", reach_text(reached))?;
                writeln!(out)?;
            }
            writeln!(out, "{}", summary(errors, warnings))?;
        }
    }
    Ok(())
}

/// The reach of each issue with audiences, one line per issue and section:
///
/// ```text
/// reach
///   issues/x.toml: 2 of 10 subscribed (city = london)
///     section 3 `For volunteers`: 1 (tags = volunteers)
/// ```
pub fn reach_text(reached: &[Reached]) -> String {
    let mut out = String::from("reach\n");
    for r in reached {
        out.push_str(&format!(
            "  {}: {} of {} subscribed ({})\n",
            r.file.display(),
            r.reaches,
            r.subscribed,
            r.audience
        ));
        for s in &r.sections {
            out.push_str(&format!(
                "    section {} `{}`: {} ({})\n",
                s.section, s.heading, s.reaches, s.audience
            ));
        }
    }
    out
}

fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// Escapes a workflow-command message.
fn gh_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow-command property.
fn gh_property(text: &str) -> String {
    gh_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_tags_each_yield_their_own_content() {
        let html = r#"<h2 class="s">From the blog</h2><p>x</p><h2 class="s">Coming up</h2>"#;
        assert_eq!(elements(html, "h2"), ["From the blog", "Coming up"]);
    }

    #[test]
    fn finds_tags_and_attributes() {
        let html = r#"<p><img src="a.png" alt=""><img src="b" alt="B"><a href="https://x.example/?a=1&amp;b=2">x</a></p>"#;
        let imgs: Vec<_> = tags(html, "img").collect();
        assert_eq!(imgs.len(), 2);
        assert_eq!(attribute(imgs[0], "alt"), Some(""));
        assert_eq!(attributes(html, "href"), ["https://x.example/?a=1&amp;b=2"]);
        assert_eq!(
            unescape(attributes(html, "href")[0]),
            "https://x.example/?a=1&b=2"
        );
    }

    #[test]
    fn vague_link_text() {
        assert!(is_vague("Click here"));
        assert!(is_vague("here."));
        assert!(!is_vague("read our briefing"));
    }

    #[test]
    fn github_escaping() {
        assert_eq!(gh_data("a%b\nc"), "a%25b%0Ac");
        assert_eq!(gh_property("a:b,c"), "a%3Ab%2Cc");
    }
}
