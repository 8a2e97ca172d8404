//! An issue file under `issues/`: one newsletter, as the office writes it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use toml::Spanned;

use crate::model::audience::{self, Audience, Audiences, RawFilter, SectionAudience};
use crate::model::finding::Finding;
use crate::model::load_error::LoadError;
use crate::model::toml_file::Source;

/// One newsletter issue. The id is the file name without `.toml`.
#[derive(Debug, Clone)]
pub struct Issue {
    pub id: String,
    pub source: std::sync::Arc<Source>,
    pub content: IssueFile,
    /// The issue date, checked to be a real calendar date.
    pub date: jiff::civil::Date,
    /// Who the issue goes to, and who sees each section.
    pub audiences: Audiences,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IssueFile {
    pub subject: Spanned<String>,
    #[serde(default)]
    pub preheader: Option<Spanned<String>>,
    pub date: Spanned<toml::value::Datetime>,
    /// Greeting line with merge fields, e.g. `Dear {{first_name|Supporter}}`.
    pub greeting: Spanned<String>,
    /// The director's letter, in Markdown.
    pub letter: Spanned<String>,
    #[serde(default, rename = "section")]
    pub sections: Vec<Section>,
    pub call_to_action: Option<CallToAction>,
    pub sign_off: SignOff,
    /// Only subscribers whose row matches get the issue.
    #[serde(default)]
    pub audience: Option<Spanned<RawFilter>>,
    /// Subscribers whose row matches do not get it, audience or not.
    #[serde(default)]
    pub exclude: Option<Spanned<RawFilter>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Section {
    pub heading: Spanned<String>,
    #[serde(default)]
    pub body: Option<Spanned<String>>,
    #[serde(default)]
    pub posts: Vec<Spanned<String>>,
    #[serde(default)]
    pub events: Vec<Spanned<String>>,
    /// The events already happened: the section reports on them.
    #[serde(default)]
    pub past_events: bool,
    /// Only subscribers whose row matches see the section.
    #[serde(default)]
    pub audience: Option<Spanned<RawFilter>>,
    #[serde(default)]
    pub exclude: Option<Spanned<RawFilter>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CallToAction {
    #[serde(default)]
    pub intro: Option<Spanned<String>>,
    pub text: Spanned<String>,
    pub url: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SignOff {
    /// Markdown after the call to action, before the closing: a letter's
    /// last words ("As always, please do get in touch…").
    #[serde(default)]
    pub text: Option<Spanned<String>>,
    #[serde(default = "default_closing")]
    pub closing: String,
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
    /// A signature image between the closing and the name: a project
    /// image (`templates/signature.png`) or an https:// URL.
    #[serde(default)]
    pub signature_image: Option<Spanned<String>>,
    #[serde(default)]
    pub signature_alt: Option<String>,
    /// The width to show it at, in CSS pixels.
    #[serde(default)]
    pub signature_width: Option<u32>,
    #[serde(default)]
    pub signature_height: Option<u32>,
}

fn default_closing() -> String {
    "With best wishes".into()
}

impl Issue {
    /// Reads an issue file; errors name the file, line and column.
    pub fn load(path: &Path) -> Result<Issue, LoadError> {
        let source = Source::read(path)?;
        let content: IssueFile = source.parse()?;
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Finding::error(
                "invalid-issue-name",
                path,
                "name issue files with letters, digits, `-` and `_` only (for example `2022-07-13.toml`); the name becomes the issue id in URLs",
            )
            .into());
        }
        let date = match (content.date.get_ref().date, content.date.get_ref().time) {
            (Some(d), None) => {
                jiff::civil::Date::new(d.year as i16, d.month as i8, d.day as i8).ok()
            }
            _ => None,
        };
        let Some(date) = date else {
            let message = match content.date.get_ref().date {
                Some(d) => format!(
                    "`date` is the day of the issue: write the date as `{}` (year-month-day), with no quotes and no time",
                    jiff::civil::Date::new(d.year as i16, d.month as i8, d.day as i8)
                        .map_or_else(|_| "2022-07-13".to_string(), |d| d.to_string())
                ),
                None => "`date` must be a real calendar date like `2022-07-13` (year-month-day), with no quotes and no time".into(),
            };
            return Err(source
                .error_at("invalid-date", content.date.span().start, message)
                .into());
        };
        let audiences = parse_audiences(&source, &content)?;
        let issue = Issue {
            id,
            source: std::sync::Arc::new(source),
            content,
            date,
            audiences,
        };
        issue.validate()?;
        Ok(issue)
    }

    fn validate(&self) -> Result<(), LoadError> {
        let subject = &self.content.subject;
        if subject.get_ref().trim().is_empty() {
            return Err(self
                .source
                .error_at(
                    "empty-subject",
                    subject.span().start,
                    "`subject` is empty; write the subject line supporters will see",
                )
                .into());
        }
        if subject.get_ref().chars().any(char::is_control) {
            return Err(self
                .source
                .error_at(
                    "subject-line-break",
                    subject.span().start,
                    "`subject` contains a line break or control character; keep it on one line",
                )
                .into());
        }
        Ok(())
    }

    /// The sign-off's signature image, when it has one.
    pub fn signature_image(&self) -> Option<crate::model::image::ImageSpec> {
        let sign_off = &self.content.sign_off;
        let image = sign_off.signature_image.as_ref()?;
        let (line, column) =
            crate::model::toml_file::line_column(&self.source.text, image.span().start);
        Some(crate::model::image::ImageSpec {
            key: "signature-image",
            alt_key: "signature-alt",
            width_key: Some("signature-width"),
            src: image.get_ref().clone(),
            alt: sign_off.signature_alt.clone(),
            width: sign_off.signature_width,
            height: sign_off.signature_height,
            file: self.source.path.clone(),
            line,
            column,
        })
    }
}

/// The issue's and its sections' `audience` and `exclude`, checked.
fn parse_audiences(source: &Source, content: &IssueFile) -> Result<Audiences, LoadError> {
    let issue = Audience::parse(
        source,
        "",
        content.audience.as_ref(),
        content.exclude.as_ref(),
    )?;
    let mut sections = Vec::new();
    for (index, section) in content.sections.iter().enumerate() {
        let audience = Audience::parse(
            source,
            "section.",
            section.audience.as_ref(),
            section.exclude.as_ref(),
        )?;
        if audience.is_everyone() {
            continue;
        }
        if sections.len() == audience::MAX_SECTIONS {
            return Err(source
                .error_at(
                    "too-many-audiences",
                    audience.offset(),
                    format!(
                        "more than {} sections have an audience; split the issue, or give the sections for the same readers one audience",
                        audience::MAX_SECTIONS
                    ),
                )
                .into());
        }
        sections.push(SectionAudience {
            index,
            heading: section.heading.get_ref().trim().to_string(),
            audience,
        });
    }
    Ok(Audiences { issue, sections })
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({})", self.path.display())
    }
}

/// The `.toml` files in the issues folder, sorted; none when it is missing.
pub fn issue_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the issues folder `{}`", dir.display()));
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    Ok(paths)
}
