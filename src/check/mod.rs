//! `newsletter check`: every mistake a careful editor would catch, before a
//! supporter sees it. Loads the configuration, the archive, the subscriber
//! file and each issue, renders every issue and lints what would be sent.
//! It connects to nothing.

mod config;
mod duplicates;
mod images;
mod issue;
mod rendered;
mod report;
pub mod sending;
pub mod started;
mod subscriber_file;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::model::archive::Archive;
use crate::model::audience::{self, Reach};
use crate::model::config::Config;
use crate::model::finding::{Finding, Severity};
use crate::model::issue::Issue;
use crate::model::load_error::LoadError;
use crate::model::subscribers::{self, Columns};
use crate::model::theme::Theme;
use config::config_lints;
use issue::{lint_issue, lint_reach};
use rendered::lint_rendered;
use report::print;
pub use report::reach_text;
use subscriber_file::subscriber_finding;

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
        Err(error) => {
            findings.push(as_finding(error)?);
            return Ok((findings, reached));
        }
    };
    config_lints(&config, &mut findings);
    let paths = &config.paths;
    let archive = Archive::load(&paths.posts, &paths.events, &config.list.post_url);
    let archive = loaded_or_found(archive, &mut findings)?;
    let theme = loaded_or_found(Theme::load(&paths.theme), &mut findings)?;

    let list_path = req
        .subscribers
        .clone()
        .unwrap_or_else(|| paths.subscribers.clone());
    let survey = subscribers::survey(&list_path)?;
    survey_findings(&list_path, &survey, &mut findings);
    let sample = sample_subscriber(&list_path)?;

    let today = crate::model::dates::today()?;
    for path in &issue_paths(&config, req)? {
        let issue = match Issue::load(path) {
            Ok(issue) => issue,
            Err(error) => {
                findings.push(as_finding(error)?);
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
    sort_by_place(&mut findings);
    Ok((first_of_each(findings), reached))
}

/// Each finding once, where it came first: the theme's findings (its logo)
/// come once per issue.
fn first_of_each(findings: Vec<Finding>) -> Vec<Finding> {
    let mut unique: Vec<Finding> = Vec::with_capacity(findings.len());
    for finding in findings {
        if !unique.contains(&finding) {
            unique.push(finding);
        }
    }
    unique
}

/// What a loader gave, or `None` with its finding; an unreadable file is
/// an error (see [`as_finding`]).
fn loaded_or_found<T>(
    loaded: std::result::Result<T, LoadError>,
    findings: &mut Vec<Finding>,
) -> Result<Option<T>> {
    match loaded {
        Ok(value) => Ok(Some(value)),
        Err(error) => {
            findings.push(as_finding(error)?);
            Ok(None)
        }
    }
}

/// The subscriber file's own findings: its encoding, then its rows.
fn survey_findings(list_path: &Path, survey: &subscribers::Survey, findings: &mut Vec<Finding>) {
    for warning in &survey.warnings {
        findings.push(Finding::warning(
            "subscriber-encoding",
            list_path,
            warning.clone(),
        ));
    }
    for problem in &survey.problems {
        findings.push(subscriber_finding(list_path, problem));
    }
}

/// The issues asked for, or every issue in the issues folder.
fn issue_paths(config: &Config, req: &CheckRequest) -> Result<Vec<PathBuf>> {
    if req.issues.is_empty() {
        return all_issues(&config.paths.issues);
    }
    Ok(req
        .issues
        .iter()
        .map(|p| config.issue_path(p.clone()))
        .collect())
}

/// In file order: by file, line and column (a stable sort, so findings at
/// one place keep the order they were found in).
fn sort_by_place(findings: &mut [Finding]) {
    findings.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
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
    sort_by_place(&mut findings);
    findings
}

/// A loader's error as a finding; a file that cannot be read is not a
/// finding but an error (exit 2).
fn as_finding(error: LoadError) -> Result<Finding> {
    match error {
        LoadError::Invalid(finding) => Ok(*finding),
        unreadable @ LoadError::Unreadable { .. } => Err(unreadable.into()),
    }
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
        .find(|s| s.status == subscribers::SubscriptionStatus::Subscribed)
        .unwrap_or_else(|| subscribers::Subscriber::test("supporter@example.org", 0)))
}
