//! Printing findings: text for people, JSON for tools, GitHub annotations.

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

pub(super) fn print(findings: &[Finding], reached: &[Reached], format: Format) -> Result<()> {
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
