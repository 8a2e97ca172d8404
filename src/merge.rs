//! Merge fields: `{{first_name}}` or `{{first_name|Supporter}}` in the greeting.

use anyhow::{Result, bail};

/// A parsed text with merge fields.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeText {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field { name: String, fallback: String },
}

impl MergeText {
    /// Parses `text`; `{{` must be closed by `}}` around a field name.
    pub fn parse(text: &str) -> Result<MergeText> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                bail!("`{{{{` without a closing `}}}}` in `{text}`");
            };
            let inner = &after[..close];
            let (name, fallback) = match inner.split_once('|') {
                Some((name, fallback)) => (name.trim(), fallback.trim()),
                None => (inner.trim(), ""),
            };
            let normalised = normalise_field(name);
            if normalised.is_empty() || !normalised.chars().all(|c| c.is_alphanumeric() || c == '_')
            {
                bail!(
                    "`{{{{{inner}}}}}` is not a merge field; write one like `{{{{first_name|Supporter}}}}`"
                );
            }
            parts.push(Part::Field {
                name: normalised,
                fallback: fallback.to_string(),
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(MergeText { parts })
    }

    /// Names of the fields used, normalised like subscriber columns.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field { name, .. } => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Fills the fields; an empty or missing value takes the fallback.
    pub fn fill<'a>(&self, value: impl Fn(&str) -> Option<&'a str>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field { name, fallback } => {
                    match value(name).map(str::trim).filter(|v| !v.is_empty()) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(fallback),
                    }
                }
            }
        }
        out
    }
}

/// Lowercase, with spaces and `-` as `_`: "First Name" is `first_name`.
pub fn normalise_field(name: &str) -> String {
    name.trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_when_empty_or_missing() {
        let greeting = MergeText::parse("Dear {{first_name|Supporter}}").unwrap();
        assert_eq!(greeting.fill(|_| Some("Zoë")), "Dear Zoë");
        assert_eq!(greeting.fill(|_| Some("  ")), "Dear Supporter");
        assert_eq!(greeting.fill(|_| None), "Dear Supporter");
        assert_eq!(greeting.fields().collect::<Vec<_>>(), ["first_name"]);
    }

    #[test]
    fn rejects_unclosed_and_empty_fields() {
        assert!(MergeText::parse("Dear {{first_name").is_err());
        assert!(MergeText::parse("Dear {{|x}}").is_err());
        assert!(MergeText::parse("Dear {{a<b}}").is_err());
    }
}
