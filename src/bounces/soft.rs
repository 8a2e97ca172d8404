//! Soft bounces so far: per address, the issues in which its mail was
//! delayed or refused for a temporary reason. Kept in `bounces.toml` next to
//! the configuration (mode 0600: it holds addresses).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::toml_file::Source;

/// Soft bounces in this many different issues make an address bounced.
pub const ISSUES_TO_BOUNCE: usize = 3;

const HEADER: &str = "# Soft bounces per address: the issues in which mail to it was delayed or\n\
# refused for a temporary reason (4.x.x). Written by `newsletter bounces import`;\n\
# an address with soft bounces in 3 different issues becomes `bounced`.\n\n";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SoftBounces {
    #[serde(default)]
    soft: BTreeMap<String, BTreeSet<String>>,
}

impl SoftBounces {
    /// Reads the file; a missing file means none so far.
    pub fn load(path: &Path) -> Result<SoftBounces> {
        if !path.exists() {
            return Ok(SoftBounces::default());
        }
        Ok(Source::read(path)?.parse()?)
    }

    /// Records a soft bounce; returns the issues the address now has.
    pub fn add(&mut self, address: &str, issue: &str) -> &BTreeSet<String> {
        let issues = self.soft.entry(address.to_string()).or_default();
        issues.insert(issue.to_string());
        issues
    }

    /// Addresses with soft bounces in enough issues, with those issues.
    pub fn reached(&self) -> impl Iterator<Item = (&String, &BTreeSet<String>)> {
        self.soft
            .iter()
            .filter(|(_, issues)| issues.len() >= ISSUES_TO_BOUNCE)
    }

    pub fn remove(&mut self, address: &str) {
        self.soft.remove(address);
    }

    /// Writes the file atomically (a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> Result<()> {
        let error = || format!("cannot write `{}`", path.display());
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let text = toml::to_string(self).with_context(error)?;
        let mut file = tempfile::NamedTempFile::new_in(dir).with_context(error)?;
        file.write_all(HEADER.as_bytes()).with_context(error)?;
        file.write_all(text.as_bytes()).with_context(error)?;
        file.as_file().sync_all().with_context(error)?;
        file.persist(path).with_context(error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bounces.toml");
        let mut soft = SoftBounces::load(&path).unwrap();
        soft.add("full@example.org", "2022-07-13");
        soft.add("full@example.org", "2020-12-10");
        assert_eq!(soft.add("full@example.org", "2020-12-10").len(), 2);
        soft.save(&path).unwrap();
        assert_eq!(SoftBounces::load(&path).unwrap(), soft);
        assert_eq!(soft.reached().count(), 0);
        soft.add("full@example.org", "2023-03-01");
        assert_eq!(soft.reached().count(), 1);
    }
}
