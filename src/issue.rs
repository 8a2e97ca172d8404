//! An issue file under `issues/`: one newsletter, as the office writes it.

use std::path::Path;

use anyhow::{Result, bail};
use serde::Deserialize;
use toml::Spanned;

use crate::toml_file::Source;

/// One newsletter issue. The id is the file name without `.toml`.
#[derive(Debug, Clone)]
pub struct Issue {
    pub id: String,
    pub source: std::sync::Arc<Source>,
    pub content: IssueFile,
    /// The issue date, checked to be a real calendar date.
    pub date: jiff::civil::Date,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IssueFile {
    pub subject: Spanned<String>,
    #[serde(default)]
    pub preheader: Option<Spanned<String>>,
    pub date: toml::value::Datetime,
    /// Greeting line with merge fields, e.g. `Dear {{first_name|Supporter}}`.
    pub greeting: Spanned<String>,
    /// The director's letter, in Markdown.
    pub letter: Spanned<String>,
    #[serde(default, rename = "section")]
    pub sections: Vec<Section>,
    pub call_to_action: Option<CallToAction>,
    pub sign_off: SignOff,
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
    #[serde(default = "default_closing")]
    pub closing: String,
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
}

fn default_closing() -> String {
    "With best wishes".into()
}

impl Issue {
    /// Reads an issue file; errors name the file, line and column.
    pub fn load(path: &Path) -> Result<Issue> {
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
            bail!(
                "`{}`: name issue files with letters, digits, `-` and `_` only (for example `2022-07-13.toml`); the name becomes the issue id in URLs",
                path.display()
            );
        }
        let date = match (content.date.date, content.date.time) {
            (Some(d), None) => {
                jiff::civil::Date::new(d.year as i16, d.month as i8, d.day as i8).ok()
            }
            _ => None,
        };
        let Some(date) = date else {
            bail!(
                "{}: `date` must be a real calendar date like 2022-07-13 (no quotes, no time)",
                path.display()
            );
        };
        let issue = Issue {
            id,
            source: std::sync::Arc::new(source),
            content,
            date,
        };
        issue.validate()?;
        Ok(issue)
    }

    fn validate(&self) -> Result<()> {
        let c = &self.content;
        if c.subject.get_ref().trim().is_empty() {
            bail!(
                "{}: `subject` is empty; write the subject line supporters will see",
                self.source.location(c.subject.span().start)
            );
        }
        if c.subject.get_ref().chars().any(char::is_control) {
            bail!(
                "{}: `subject` contains a line break or control character; keep it on one line",
                self.source.location(c.subject.span().start)
            );
        }
        Ok(())
    }

    /// `file:line:column` of a span in this issue's file.
    pub fn at(&self, span: std::ops::Range<usize>) -> String {
        self.source.location(span.start)
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({})", self.path.display())
    }
}
