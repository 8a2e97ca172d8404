//! Dates written the way people write them (`13/07/2022`, `13.07.2022`,
//! `2022/07/13`, `"2022-07-13"`, `13 July 2022`, `July 13, 2022`), read
//! back so an error can say exactly what to write instead: `2022-07-13`,
//! year-month-day. And "today", which tests fix with `NEWSLETTER_TODAY`.

use jiff::civil::Date;

/// The office's time zone: what "today" means, when no `--date` is given.
pub const OFFICE_TIME_ZONE: &str = "Europe/London";

/// A date (and maybe a time) read from a common shape, and how it should
/// be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// `2022-07-13`.
    pub date: Date,
    /// `15:00:00`, when a time was written after the date.
    pub time: Option<String>,
    /// The month-first reading when the day-first one is a different real
    /// date (`06/01/2027`: 6 January, or 1 June).
    pub other: Option<Date>,
}

impl Reading {
    /// `2022-07-13`, or `2022-07-13T15:00:00` with the time when `with_time`.
    pub fn iso(&self, with_time: bool) -> String {
        match (&self.time, with_time) {
            (Some(time), true) => format!("{}T{time}", self.date),
            _ => self.date.to_string(),
        }
    }

    /// ", or 2027-06-01 if you meant 1 June" when the date reads two ways.
    pub fn ambiguity(&self) -> String {
        match self.other {
            Some(other) => format!(", or `{other}` if you meant {}", other.strftime("%-d %B")),
            None => String::new(),
        }
    }
}

/// Reads `text` (quotes and spaces around it ignored) as a day, month and
/// year separated by `/`, `.` or `-`, in either order of year and day
/// (`13/07/2022`, `2022/07/13`), optionally followed by a time (`15:00`).
/// `None` when it is not a real date in one of those shapes.
pub fn read(text: &str) -> Option<Reading> {
    let text = text.trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .or_else(|| text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))
        .unwrap_or(text)
        .trim();
    if let Some(reading) = read_named(text) {
        return Some(reading);
    }
    let (date, time) = match text.find(['T', 't', ' ']) {
        Some(at) => (&text[..at], Some(text[at + 1..].trim())),
        None => (text, None),
    };
    let time = match time {
        Some(time) => Some(read_time(time)?),
        None => None,
    };
    let separator = date.chars().find(|c| matches!(c, '/' | '.' | '-'))?;
    let parts: Vec<&str> = date.split(separator).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    if ![a, b, c]
        .iter()
        .all(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let number = |p: &str| p.parse::<i16>().ok();
    let (a_n, b_n, c_n) = (number(a)?, number(b)?, number(c)?);
    let make =
        |y: i16, m: i16, d: i16| Date::new(y, i8::try_from(m).ok()?, i8::try_from(d).ok()?).ok();
    let (date, other) = if a.len() == 4 {
        (make(a_n, b_n, c_n)?, None)
    } else if c.len() == 4 {
        // Day first, as the office writes it; month first when that is the
        // only real date.
        let day_first = make(c_n, b_n, a_n);
        let month_first = make(c_n, a_n, b_n);
        match (day_first, month_first) {
            (Some(d), Some(m)) if d != m => (d, Some(m)),
            (Some(d), _) => (d, None),
            (None, Some(m)) => (m, None),
            (None, None) => return None,
        }
    } else {
        return None;
    };
    Some(Reading { date, time, other })
}

/// A date with the month in words, in English: `13 July 2022`,
/// `13 Jul 2022`, `July 13, 2022`, `13th July 2022`, `Wednesday 13 July
/// 2022`, optionally followed by a time (`13 July 2022 15:00`). A month
/// in words reads only one way, so there is no other reading.
fn read_named(text: &str) -> Option<Reading> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    // A weekday in front says nothing more.
    let words = match words.split_first() {
        Some((first, rest)) if is_weekday(first) => rest,
        _ => &words[..],
    };
    let (date, time) = match words {
        [a, b, c] => ([*a, *b, *c], None),
        [a, b, c, t] => ([*a, *b, *c], Some(read_time(t)?)),
        _ => return None,
    };
    let (day, month) = match (month_number(date[0]), month_number(date[1])) {
        (None, Some(m)) => (day_number(date[0])?, m),
        (Some(m), None) => (day_number(date[1])?, m),
        _ => return None,
    };
    let year = date[2];
    if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = Date::new(year.parse().ok()?, month, day).ok()?;
    Some(Reading {
        date,
        time,
        other: None,
    })
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// 1 to 12 for a month's name or its first three letters (`Sept` too),
/// any case, a trailing `.` ignored.
fn month_number(word: &str) -> Option<i8> {
    let word = word.trim_end_matches('.').to_lowercase();
    if word.len() < 3 {
        return None;
    }
    let at = MONTHS.iter().position(|m| {
        *m == word || (m.starts_with(&word) && (word.len() == 3 || word == "sept"))
    })?;
    i8::try_from(at + 1).ok()
}

/// `13`, `13th`, `1st`, `2nd`, `3rd`.
fn day_number(word: &str) -> Option<i8> {
    let lower = word.to_lowercase();
    let digits = ["st", "nd", "rd", "th"]
        .iter()
        .find_map(|suffix| lower.strip_suffix(suffix))
        .unwrap_or(&lower);
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn is_weekday(word: &str) -> bool {
    let word = word.trim_end_matches('.').to_lowercase();
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .iter()
    .any(|d| *d == word || (word.len() == 3 && d.starts_with(&word)))
}

/// The environment variable that fixes "today" (`YYYY-MM-DD`), for tests:
/// the lints about events already under way and `send`'s refusal of them
/// compare with that day, at midnight in the office's time zone.
pub const TODAY_VARIABLE: &str = "NEWSLETTER_TODAY";

/// Now in the office's time zone (Europe/London), or the start of the day
/// `NEWSLETTER_TODAY` names.
pub fn now() -> anyhow::Result<jiff::ZonedDateTime> {
    let zone = OFFICE_TIME_ZONE;
    match std::env::var(TODAY_VARIABLE).ok().filter(|v| !v.is_empty()) {
        None => jiff::Timestamp::now()
            .in_tz(zone)
            .map_err(|e| anyhow::anyhow!("cannot find today's date in {zone}: {e}")),
        Some(value) => {
            let date = parse_arg(&value).map_err(|advice| {
                anyhow::anyhow!("`{TODAY_VARIABLE}` is `{value}`: {advice}; or unset it")
            })?;
            date.in_tz(zone)
                .map_err(|e| anyhow::anyhow!("cannot place {date} in {zone}: {e}"))
        }
    }
}

/// Today's date in the office's time zone (see [`now`]).
pub fn today() -> anyhow::Result<Date> {
    now().map(|now| now.date())
}

/// `15:00` or `15:00:00` as `15:00:00`.
fn read_time(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.split(':').collect();
    let numbers: Vec<u8> = parts
        .iter()
        .map(|p| {
            (p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    match numbers.as_slice() {
        [h, m] if *h < 24 && *m < 60 => Some(format!("{h:02}:{m:02}:00")),
        [h, m, s] if *h < 24 && *m < 60 && *s < 60 => Some(format!("{h:02}:{m:02}:{s:02}")),
        _ => None,
    }
}

/// A `--date` value: `2022-07-13`, or an error saying how to write it.
pub fn parse_arg(text: &str) -> Result<Date, String> {
    let trimmed = text.trim();
    if let Ok(date) = trimmed.parse::<Date>()
        && trimmed.len() == 10
    {
        return Ok(date);
    }
    match read(text) {
        Some(reading) => Err(format!(
            "write the date as `{}` (year-month-day){}",
            reading.date,
            reading.ambiguity()
        )),
        None => Err(
            "not a real date; write it as year-month-day, like `2027-02-03` for 3 February 2027"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(text: &str) -> Option<String> {
        read(text).map(|r| r.iso(true))
    }

    #[test]
    fn reads_the_common_shapes() {
        assert_eq!(iso("13/07/2022").as_deref(), Some("2022-07-13"));
        assert_eq!(iso("13.07.2022").as_deref(), Some("2022-07-13"));
        assert_eq!(iso("13-07-2022").as_deref(), Some("2022-07-13"));
        assert_eq!(iso("2022/07/13").as_deref(), Some("2022-07-13"));
        assert_eq!(iso("\"2022-07-13\"").as_deref(), Some("2022-07-13"));
        assert_eq!(iso("'13/7/2022'").as_deref(), Some("2022-07-13"));
        assert_eq!(
            iso("13/07/2022 15:00").as_deref(),
            Some("2022-07-13T15:00:00")
        );
        assert_eq!(
            iso("2022-07-13T09:30:05").as_deref(),
            Some("2022-07-13T09:30:05")
        );
        // Month first only when day first is no date.
        assert_eq!(iso("07/13/2022").as_deref(), Some("2022-07-13"));
    }

    #[test]
    fn reads_months_in_words() {
        for text in [
            "13 July 2022",
            "July 13, 2022",
            "13 Jul 2022",
            "\"13 July 2022\"",
            "13th July 2022",
            "Wednesday 13 July 2022",
            "Wed, 13 Jul. 2022",
            "july 13 2022",
        ] {
            let reading = read(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(reading.iso(true), "2022-07-13", "{text}");
            assert_eq!(reading.ambiguity(), "", "{text}");
        }
        assert_eq!(
            iso("13 July 2022 15:00").as_deref(),
            Some("2022-07-13T15:00:00")
        );
        assert_eq!(iso("5 Sept 2022").as_deref(), Some("2022-09-05"));
        assert_eq!(iso("1st October 2022").as_deref(), Some("2022-10-01"));
    }

    #[test]
    fn two_readings_are_both_offered() {
        let r = read("06/01/2027").unwrap();
        assert_eq!(r.iso(false), "2027-01-06");
        assert_eq!(r.ambiguity(), ", or `2027-06-01` if you meant 1 June");
        assert_eq!(read("13/07/2022").unwrap().ambiguity(), "");
        assert_eq!(read("01/01/2027").unwrap().ambiguity(), "");
    }

    #[test]
    fn other_text_is_not_a_date() {
        for text in [
            "",
            "2022",
            "13/07",
            "32/13/2022",
            "a/b/c",
            "1.5",
            "2022-02-30",
            "13/07/22",
            "13/07-2022",
            "13/07/2022 25:00",
            "Rwanda",
            "30 February 2022",
            "13 Julyish 2022",
            "13 July 22",
            "July 2022",
            "Mar 13 July 2022",
            "13 Ju 2022",
        ] {
            assert_eq!(read(text), None, "{text}");
        }
    }

    #[test]
    fn date_arguments() {
        assert_eq!(parse_arg("2027-02-03").unwrap().to_string(), "2027-02-03");
        assert_eq!(
            parse_arg("06/01/2027").unwrap_err(),
            "write the date as `2027-01-06` (year-month-day), or `2027-06-01` if you meant 1 June"
        );
        assert_eq!(
            parse_arg("13.07.2022").unwrap_err(),
            "write the date as `2022-07-13` (year-month-day)"
        );
        assert!(
            parse_arg("2022-02-30")
                .unwrap_err()
                .starts_with("not a real date")
        );
        assert!(
            parse_arg("tomorrow")
                .unwrap_err()
                .starts_with("not a real date")
        );
    }
}
