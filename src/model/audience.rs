//! Audiences: who an issue goes to, and who sees a section.
//!
//! An issue or a `[[section]]` may set `audience` and `exclude`, each a
//! table of column = value (or a list of values). A row matches a table when
//! every key matches; a key matches when the row's cell, trimmed, equals one
//! of the values ignoring case, or when the cell is a list (values separated
//! by `;`, `,` or `|`, as CRM exports write tags) and one element does.
//! `exclude` wins over `audience`; without either, everyone matches.
//!
//! [`Audience::parse`] turns the file's raw values into the model with
//! errors on their line; [`Matcher`] resolves the columns once per
//! subscriber file, so a row costs a few string comparisons.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use anyhow::Result;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use crate::model::finding::Finding;
use crate::model::subscribers::{
    Columns, Duplicates, Field, LineSet, Subscriber, SubscriberReader, SubscriptionStatus,
};
use crate::model::toml_file::Source;

/// Most sections of one issue that may have an audience (one bit each).
pub const MAX_SECTIONS: usize = 64;

/// Separators of a list cell.
const LIST_SEPARATORS: [char; 3] = [';', ',', '|'];

/// `audience` or `exclude` as the file has it, before it is checked.
#[derive(Debug, Clone)]
pub enum RawFilter {
    /// The keys, each with its value (TOML puts a key and the start of its
    /// value on one line, so the value's span gives the key's line too).
    Table(Vec<(String, Spanned<toml::Value>)>),
    /// Not a table: what it was, for the message.
    Other(String),
}

impl<'de> Deserialize<'de> for RawFilter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

/// The key toml uses to hand over a date as a map.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawFilter;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table of column = value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFilter, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == TOML_DATETIME_KEY {
                let value: String = map.next_value()?;
                return Ok(RawFilter::Other(format!("the date `{value}`")));
            }
            entries.push((key, map.next_value::<Spanned<toml::Value>>()?));
        }
        Ok(RawFilter::Table(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawFilter, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(RawFilter::Other("a list".into()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawFilter, E> {
        Ok(RawFilter::Other(format!("the text `{}`", shown(v))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawFilter, E> {
        Ok(RawFilter::Other(format!("the number `{v}`")))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawFilter, E> {
        Ok(RawFilter::Other(format!("the number `{v}`")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawFilter, E> {
        Ok(RawFilter::Other(format!("the number `{v}`")))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawFilter, E> {
        Ok(RawFilter::Other(format!("`{v}`")))
    }
}

/// One table: every rule must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub rules: Vec<Rule>,
    /// Where the table is in the file.
    pub span: Range<usize>,
}

/// One key of a table: the column and the values any of which matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The column as written.
    pub column: String,
    /// Where its value is (on the key's line).
    pub column_span: Range<usize>,
    /// The values as written, trimmed.
    pub values: Vec<String>,
    /// The values trimmed and lowercased, as matched.
    folded: Vec<String>,
}

/// An issue's or a section's `audience` and `exclude`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    pub include: Option<Filter>,
    pub exclude: Option<Filter>,
}

impl Audience {
    /// Checks the raw values; `prefix` names the table they are in (`""`
    /// or `"section."`), for the messages.
    pub fn parse(
        source: &Source,
        prefix: &str,
        include: Option<&Spanned<RawFilter>>,
        exclude: Option<&Spanned<RawFilter>>,
    ) -> Result<Audience, Finding> {
        let parse = |key: &str, raw: Option<&Spanned<RawFilter>>| {
            raw.map(|raw| parse_filter(source, &format!("{prefix}{key}"), raw))
                .transpose()
        };
        Ok(Audience {
            include: parse("audience", include)?,
            exclude: parse("exclude", exclude)?,
        })
    }

    /// Everyone: neither `audience` nor `exclude`.
    pub fn is_everyone(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    /// The rules, each with whether it is an `exclude` one.
    pub fn rules(&self) -> impl Iterator<Item = (&Rule, bool)> {
        let include = self.include.iter().flat_map(|f| f.rules.iter());
        let exclude = self.exclude.iter().flat_map(|f| f.rules.iter());
        include
            .map(|r| (r, false))
            .chain(exclude.map(|r| (r, true)))
    }

    /// Where it starts in the file (the `audience`, else the `exclude`).
    pub fn offset(&self) -> usize {
        self.include
            .as_ref()
            .or(self.exclude.as_ref())
            .map_or(0, |f| f.span.start)
    }
}

impl fmt::Display for Audience {
    /// `city = london, tags = volunteers | ambassadors, except tags = x`,
    /// as matched (lowercase); `everyone` without rules.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values reach the terminal and the journal: no control characters.
        let table = |filter: &Filter| {
            filter
                .rules
                .iter()
                .map(|r| {
                    format!(
                        "{} = {}",
                        one_line(&r.column),
                        one_line(&r.folded.join(" | "))
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        match (&self.include, &self.exclude) {
            (None, None) => f.write_str("everyone"),
            (Some(i), None) => f.write_str(&table(i)),
            (None, Some(e)) => write!(f, "everyone except {}", table(e)),
            (Some(i), Some(e)) => write!(f, "{}, except {}", table(i), table(e)),
        }
    }
}

fn parse_filter(source: &Source, key: &str, raw: &Spanned<RawFilter>) -> Result<Filter, Finding> {
    let example =
        "like `audience = { city = \"London\" }` or `exclude = { tags = [\"donor\", \"staff\"] }`";
    let entries = match raw.get_ref() {
        RawFilter::Table(entries) => entries,
        RawFilter::Other(what) => {
            return Err(source.error_at(
                "wrong-type",
                raw.span().start,
                format!("`{key}` must be a table of column = value, {example}; found {what}"),
            ));
        }
    };
    if entries.is_empty() {
        return Err(source.error_at(
            "empty-audience",
            raw.span().start,
            format!(
                "`{key}` is empty (`{{}}`); name at least one column and value, {example}, or remove `{key}`"
            ),
        ));
    }
    let mut rules = Vec::new();
    for (column, value) in entries {
        let field = format!("{key}.{column}");
        let values = parse_values(source, &field, column, value)?;
        rules.push(Rule {
            column: column.trim().to_string(),
            column_span: value.span(),
            folded: values.iter().map(|v| v.to_lowercase()).collect(),
            values,
        });
    }
    Ok(Filter {
        rules,
        span: raw.span(),
    })
}

/// A key's value: text, or a non-empty list of texts.
fn parse_values(
    source: &Source,
    field: &str,
    column: &str,
    value: &Spanned<toml::Value>,
) -> Result<Vec<String>, Finding> {
    let at = value.span().start;
    let column = shown(column);
    let wrong = |what: String| {
        source.error_at(
            "wrong-type",
            at,
            format!(
                "`{field}` must be text or a list of texts, like `{column} = \"London\"` or `{column} = [\"London\", \"Leeds\"]`; found {what}"
            ),
        )
    };
    let text = |v: &toml::Value| -> Result<String, Finding> {
        let toml::Value::String(s) = v else {
            return Err(match v {
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                    wrong(format!("{}; put it in quotes: `\"{v}\"`", describe(v)))
                }
                _ => wrong(describe(v)),
            });
        };
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(source.error_at(
                "empty-audience",
                at,
                format!(
                    "`{field}` has an empty value (`\"{}\"`), which no cell matches; write the value to match, or remove the key",
                    shown(s)
                ),
            ));
        }
        Ok(trimmed.to_string())
    };
    match value.get_ref() {
        toml::Value::Array(items) if items.is_empty() => Err(source.error_at(
            "empty-audience",
            at,
            format!(
                "`{field}` is an empty list (`[]`), which matches nobody; list at least one value, like `{column} = [\"London\"]`, or remove the key"
            ),
        )),
        toml::Value::Array(items) => items.iter().map(text).collect(),
        other => Ok(vec![text(other)?]),
    }
}

/// A TOML value in words, with the value in backticks.
fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("the text `{}`", shown(s)),
        toml::Value::Integer(n) => format!("the number `{n}`"),
        toml::Value::Float(n) => format!("the number `{n}`"),
        toml::Value::Boolean(b) => format!("`{b}`"),
        toml::Value::Datetime(d) => format!("the date `{d}`"),
        toml::Value::Array(_) => "a list inside the list".into(),
        toml::Value::Table(_) => "a table (`{ … }`)".into(),
    }
}

/// A user value on one line: control characters become spaces.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A user value to quote back: one line, at most 60 characters.
fn shown(value: &str) -> String {
    let clean = one_line(value);
    match clean.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean,
    }
}

/// The audiences of one issue: its own and its sections'.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audiences {
    pub issue: Audience,
    /// The sections with an audience, in order; a section's position here
    /// is its bit in a section mask.
    pub sections: Vec<SectionAudience>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionAudience {
    /// 0-based position among the issue's sections.
    pub index: usize,
    pub heading: String,
    pub audience: Audience,
}

impl Audiences {
    /// No audience anywhere: every subscriber gets the whole issue.
    pub fn is_empty(&self) -> bool {
        self.issue.is_everyone() && self.sections.is_empty()
    }

    /// The mask of a message with every section.
    pub fn all_sections(&self) -> u64 {
        mask_of(self.sections.len())
    }

    /// What the journal's fingerprint records; None without audiences, so
    /// an issue without them fingerprints as it always did.
    pub fn describe(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut text = format!("issue: {}", self.issue);
        for s in &self.sections {
            text.push_str(&format!("\nsection {}: {}", s.index + 1, s.audience));
        }
        Some(text)
    }
}

/// A mask with the lowest `n` bits set.
pub fn mask_of(n: usize) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// An [`Audience`] with its columns resolved for one subscriber file. A
/// column the file lacks matches no row (`check` reports it).
#[derive(Debug, Clone)]
pub struct Matcher {
    include: Option<Vec<(Option<Field>, Vec<String>)>>,
    exclude: Option<Vec<(Option<Field>, Vec<String>)>>,
}

impl Matcher {
    pub fn new(audience: &Audience, columns: &Columns) -> Matcher {
        let resolve = |filter: &Option<Filter>| {
            filter.as_ref().map(|f| {
                f.rules
                    .iter()
                    .map(|r| (columns.field(&r.column), r.folded.clone()))
                    .collect()
            })
        };
        Matcher {
            include: resolve(&audience.include),
            exclude: resolve(&audience.exclude),
        }
    }

    /// Whether the row is in the audience.
    pub fn matches(&self, subscriber: &Subscriber) -> bool {
        let all = |rules: &[(Option<Field>, Vec<String>)]| {
            rules.iter().all(|(field, values)| {
                field.is_some_and(|f| cell_matches(subscriber.get(f), values))
            })
        };
        self.include.as_deref().is_none_or(all) && !self.exclude.as_deref().is_some_and(all)
    }
}

/// Whether a cell matches one of the (lowercased) values: the whole cell,
/// trimmed, or one element of it as a list.
pub fn cell_matches(cell: &str, folded: &[String]) -> bool {
    let whole = cell.trim();
    if whole.is_empty() {
        return false;
    }
    if folded.iter().any(|v| same(whole, v)) {
        return true;
    }
    whole.contains(LIST_SEPARATORS)
        && whole
            .split(LIST_SEPARATORS)
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .any(|e| folded.iter().any(|v| same(e, v)))
}

/// `cell` equals the lowercased `folded`, ignoring case.
fn same(cell: &str, folded: &str) -> bool {
    if cell.is_ascii() {
        cell.eq_ignore_ascii_case(folded)
    } else {
        cell.to_lowercase() == folded
    }
}

/// The column names closest to `name` (at most three, as close as the
/// best one), best first.
pub fn nearest_column<'a>(name: &str, columns: &'a [String]) -> Vec<&'a str> {
    let name = name.trim().to_lowercase();
    let mut scored: Vec<(f64, &str)> = columns
        .iter()
        .map(|c| (strsim::jaro_winkler(&name, c), c.as_str()))
        .filter(|(score, _)| *score > 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let best = scored.first().map_or(0.0, |(score, _)| *score);
    scored
        .into_iter()
        .take_while(|(score, _)| best - score < 0.05)
        .take(3)
        .map(|(_, c)| c)
        .collect()
}

/// An issue's audiences resolved for one subscriber file.
#[derive(Debug, Clone)]
pub struct Selector {
    issue: Matcher,
    sections: Vec<Matcher>,
}

impl Selector {
    pub fn new(audiences: &Audiences, columns: &Columns) -> Selector {
        Selector {
            issue: Matcher::new(&audiences.issue, columns),
            sections: audiences
                .sections
                .iter()
                .map(|s| Matcher::new(&s.audience, columns))
                .collect(),
        }
    }

    /// Whether the issue goes to this row.
    pub fn in_audience(&self, subscriber: &Subscriber) -> bool {
        self.issue.matches(subscriber)
    }

    /// The audienced sections this row gets, one bit each.
    pub fn sections(&self, subscriber: &Subscriber) -> u64 {
        self.sections
            .iter()
            .enumerate()
            .filter(|(_, m)| m.matches(subscriber))
            .fold(0, |mask, (i, _)| mask | (1 << i))
    }
}

/// How many subscribers an issue and each of its audienced sections reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Subscribed addresses (deduplicated).
    pub subscribed: u64,
    /// Of those, the ones the issue goes to.
    pub audience: u64,
    /// Of those, the ones who get each audienced section.
    pub sections: Vec<u64>,
}

impl Reach {
    pub fn new(audiences: &Audiences) -> Reach {
        Reach {
            sections: vec![0; audiences.sections.len()],
            ..Reach::default()
        }
    }

    /// Counts one subscribed address.
    pub fn count(&mut self, in_audience: bool, sections: u64) {
        self.subscribed += 1;
        if !in_audience {
            return;
        }
        self.audience += 1;
        for (i, n) in self.sections.iter_mut().enumerate() {
            *n += (sections >> i) & 1;
        }
    }
}

/// Which subscribed rows of a file an issue's audience leaves out, and
/// which get each audienced section: a bit per line each, noted while the
/// file is surveyed and read back by line when its addresses are decided.
#[derive(Debug, Default)]
pub struct LineMarks {
    selector: Option<Selector>,
    outside: LineSet,
    sections: Vec<LineSet>,
}

impl LineMarks {
    /// Notes one row of the file (`columns` are the file's).
    pub fn note(&mut self, audiences: &Audiences, columns: &Columns, subscriber: &Subscriber) {
        if audiences.is_empty() || subscriber.status != SubscriptionStatus::Subscribed {
            return;
        }
        let selector = self
            .selector
            .get_or_insert_with(|| Selector::new(audiences, columns));
        if !selector.in_audience(subscriber) {
            self.outside.insert(subscriber.line);
            return;
        }
        let mask = selector.sections(subscriber);
        self.sections
            .resize_with(audiences.sections.len(), LineSet::default);
        for (i, lines) in self.sections.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                lines.insert(subscriber.line);
            }
        }
    }

    /// Whether the issue's audience leaves this (subscribed) row out.
    pub fn outside(&self, line: u64) -> bool {
        self.outside.contains(line)
    }

    /// The audienced sections this row gets.
    pub fn sections(&self, line: u64) -> u64 {
        self.sections
            .iter()
            .enumerate()
            .filter(|(_, lines)| lines.contains(line))
            .fold(0, |mask, (i, _)| mask | (1 << i))
    }
}

/// Counts the reach over a subscriber file: its subscribed rows, each
/// address once (`duplicates` from the file's survey).
pub fn reach(path: &Path, audiences: &Audiences, duplicates: &Duplicates) -> Result<Reach> {
    let reader = SubscriberReader::open(path)?;
    let selector = Selector::new(audiences, reader.columns());
    let mut reach = Reach::new(audiences);
    for subscriber in reader.filter_map(Result::ok) {
        if subscriber.status != SubscriptionStatus::Subscribed
            || duplicates.earlier(&subscriber).is_some()
        {
            continue;
        }
        reach.count(
            selector.in_audience(&subscriber),
            selector.sections(&subscriber),
        );
    }
    Ok(reach)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source {
            path: "issue.toml".into(),
            text: text.into(),
        }
    }

    #[derive(serde::Deserialize)]
    struct File {
        audience: Option<Spanned<RawFilter>>,
        exclude: Option<Spanned<RawFilter>>,
    }

    fn parse(text: &str) -> Result<Audience, Finding> {
        let source = source(text);
        let file: File = toml::from_str(text).expect("valid toml");
        Audience::parse(&source, "", file.audience.as_ref(), file.exclude.as_ref())
    }

    fn columns() -> Columns {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        std::fs::write(&path, "email,first_name,city,tags\n").unwrap();
        SubscriberReader::open(&path).unwrap().columns().clone()
    }

    fn row(city: &str, tags: &str) -> Subscriber {
        Subscriber {
            extra: vec![city.into(), tags.into()],
            ..Subscriber::test("a@example.org", 2)
        }
    }

    fn matches(text: &str, city: &str, tags: &str) -> bool {
        Matcher::new(&parse(text).unwrap(), &columns()).matches(&row(city, tags))
    }

    #[test]
    fn a_cell_matches_trimmed_and_ignoring_case() {
        let london = "audience = { city = \" london \" }";
        assert!(matches(london, "London", ""));
        assert!(matches(london, "  LONDON\t", ""));
        assert!(!matches(london, "Londonderry", ""));
        assert!(!matches(london, "", ""));
        let accents = "audience = { city = \"ZÜRICH\" }";
        assert!(matches(accents, "zürich", ""));
    }

    #[test]
    fn a_list_cell_matches_any_element_and_the_whole_cell_still_counts() {
        let volunteers = "audience = { tags = \"volunteers\" }";
        for cell in [
            "donor;volunteers",
            "donor | Volunteers",
            "volunteers,ambassadors",
        ] {
            assert!(matches(volunteers, "", cell), "{cell}");
        }
        assert!(!matches(volunteers, "", "donor; ambassadors"));
        let hove = "audience = { city = \"Hove, East Sussex\" }";
        assert!(matches(hove, "hove, east sussex", ""));
        assert!(matches(
            "audience = { city = \"Hove\" }",
            "Hove, East Sussex",
            ""
        ));
    }

    #[test]
    fn a_list_value_matches_any_and_every_key_must_match() {
        let any = "audience = { tags = [\"volunteers\", \"ambassadors\"] }";
        assert!(matches(any, "", "ambassadors"));
        assert!(!matches(any, "", "donor"));
        let both = "audience = { city = \"London\", tags = \"volunteers\" }";
        assert!(matches(both, "London", "volunteers;donor"));
        assert!(!matches(both, "Leeds", "volunteers"));
        assert!(!matches(both, "London", "donor"));
    }

    #[test]
    fn exclude_wins_and_a_missing_column_matches_nobody() {
        let text = "audience = { city = \"London\" }\nexclude = { tags = \"donor-no-newsletter\" }";
        assert!(matches(text, "London", "volunteers"));
        assert!(!matches(text, "London", "volunteers|donor-no-newsletter"));
        assert!(matches("exclude = { tags = \"x\" }", "Leeds", ""));
        assert!(!matches("audience = { cty = \"London\" }", "London", ""));
        assert!(matches("exclude = { cty = \"London\" }", "London", ""));
    }

    #[test]
    fn sections_make_a_mask() {
        let audiences = Audiences {
            issue: Audience::default(),
            sections: ["London", "Leeds", "London"]
                .iter()
                .enumerate()
                .map(|(index, city)| SectionAudience {
                    index,
                    heading: String::new(),
                    audience: parse(&format!("audience = {{ city = \"{city}\" }}")).unwrap(),
                })
                .collect(),
        };
        let selector = Selector::new(&audiences, &columns());
        assert_eq!(selector.sections(&row("london", "")), 0b101);
        assert_eq!(selector.sections(&row("Leeds", "")), 0b010);
        assert_eq!(audiences.all_sections(), 0b111);
        assert!(selector.in_audience(&row("", "")));
    }

    #[test]
    fn bad_values_are_refused_on_their_line_with_the_value() {
        let cases = [
            (
                "audience = \"London\"",
                "`audience` must be a table",
                "the text `London`",
            ),
            ("audience = 3", "must be a table", "the number `3`"),
            ("audience = [\"a\"]", "must be a table", "a list"),
            ("audience = {}", "`audience` is empty", "remove `audience`"),
            (
                "audience = { tags = [] }",
                "`audience.tags` is an empty list",
                "matches nobody",
            ),
            (
                "audience = { city = { x = \"y\" } }",
                "`audience.city` must be text",
                "a table",
            ),
            (
                "audience = { age = 3 }",
                "`audience.age` must be text",
                "`\"3\"`",
            ),
            (
                "audience = { tags = [\"a\", true] }",
                "`audience.tags` must be text",
                "`true`",
            ),
            (
                "audience = { tags = [[\"a\"]] }",
                "`audience.tags` must be text",
                "a list inside",
            ),
            (
                "exclude = { city = \"  \" }",
                "`exclude.city` has an empty value",
                "remove the key",
            ),
            (
                "audience = 2022-07-13",
                "must be a table",
                "the date `2022-07-13`",
            ),
        ];
        for (text, want, value) in cases {
            let text = format!("# comment\n{text}\n");
            let error = parse(&text).expect_err(&text);
            assert_eq!(error.line, Some(2), "{text}");
            assert!(error.message.contains(want), "{text}: {}", error.message);
            assert!(error.message.contains(value), "{text}: {}", error.message);
        }
    }

    #[test]
    fn the_nearest_column_is_suggested() {
        let columns: Vec<String> = ["email", "first_name", "last_name", "status", "city", "tags"]
            .map(String::from)
            .into();
        assert_eq!(nearest_column("cty", &columns), ["city"]);
        assert_eq!(nearest_column("City_Name", &columns), ["city"]);
        assert_eq!(nearest_column("Tag", &columns), ["tags"]);
        assert!(nearest_column("postcode", &columns).is_empty());
    }

    #[test]
    fn described_as_matched() {
        let a = parse(
            "audience = { city = \"London\", tags = [\"A\", \"b\"] }\nexclude = { tags = \"x\" }",
        )
        .unwrap();
        assert_eq!(
            a.to_string(),
            "city = london, tags = a | b, except tags = x"
        );
        assert_eq!(Audience::default().to_string(), "everyone");
    }
}
