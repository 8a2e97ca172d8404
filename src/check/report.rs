//! Printing findings: text for people, JSON for tools, GitHub annotations.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::{Format, Reached};
use crate::model::finding::{Finding, Severity};

#[derive(Serialize)]
pub(super) struct Report<'a> {
    errors: usize,
    warnings: usize,
    findings: &'a [Finding],
    #[serde(skip_serializing_if = "<[Reached]>::is_empty")]
    reach: &'a [Reached],
}

/// Prints the findings to stdout in `format`, with the totals.
pub(super) fn print(findings: &[Finding], reached: &[Reached], format: Format) -> Result<()> {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let report = Report {
        errors,
        warnings: findings.len() - errors,
        findings,
        reach: reached,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Github => print_github(&report, &mut out)?,
        Format::Text => print_text(&report, &mut out)?,
    }
    Ok(())
}

/// One workflow command per finding (`::error file=…,line=…::message`),
/// which GitHub shows on the line, then the totals.
fn print_github(report: &Report, out: &mut impl Write) -> Result<()> {
    for f in report.findings {
        let mut props = format!("file={}", gh_property(&f.file.display().to_string()));
        if let Some(line) = f.line {
            props.push_str(&format!(",line={line}"));
        }
        if let Some(col) = f.column {
            props.push_str(&format!(",col={col}"));
        }
        props.push_str(&format!(",title={}", gh_property(f.code)));
        writeln!(out, "::{} {props}::{}", level(f), gh_data(&f.message))?;
    }
    writeln!(out, "{}", summary(report.errors, report.warnings))?;
    Ok(())
}

/// The findings under the name of their file, a line each; the reach;
/// the totals.
fn print_text(report: &Report, out: &mut impl Write) -> Result<()> {
    let mut current: Option<&Path> = None;
    for f in report.findings {
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
        writeln!(
            out,
            "  {place:>7}  {:<7}  {:<26}  {}",
            level(f),
            f.code,
            f.message
        )?;
    }
    if !report.findings.is_empty() {
        writeln!(out)?;
    }
    if !report.reach.is_empty() {
        write!(out, "{}", reach_text(report.reach))?;
        writeln!(out)?;
    }
    writeln!(out, "{}", summary(report.errors, report.warnings))?;
    Ok(())
}

fn level(finding: &Finding) -> &'static str {
    match finding.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
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

pub(super) fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// Escapes a workflow-command message.
pub(super) fn gh_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow-command property.
pub(super) fn gh_property(text: &str) -> String {
    gh_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_escaping() {
        assert_eq!(gh_data("a%b\nc"), "a%25b%0Ac");
        assert_eq!(gh_property("a:b,c"), "a%3Ab%2Cc");
    }
}
