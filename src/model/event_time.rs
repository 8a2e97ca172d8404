//! The values of `events add --start`, `--end` and `--time-zone`, read with
//! an error that says exactly what to write (`2027-03-04T18:00`).

use jiff::civil::{Date, DateTime, Time};

/// An `--end`: a date and time, or only a time on the day of `--start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    At(DateTime),
    SameDay(Time),
}

impl End {
    /// The end as a date and time, given the start.
    pub fn on(self, start: DateTime) -> DateTime {
        match self {
            End::At(at) => at,
            End::SameDay(time) => start.date().to_datetime(time),
        }
    }
}

/// The shape every message asks for.
const SHAPE: &str = "year-month-day, `T`, then the 24-hour time";

/// A `--start`: `2027-03-04T18:00` (a space for the `T`, and seconds, are
/// taken too).
pub fn parse_start(text: &str) -> Result<DateTime, String> {
    if let Some(at) = exact(text) {
        return Ok(at);
    }
    if time(text).is_some() {
        return Err(format!(
            "give the day too, like `2027-03-04T{}` ({SHAPE})",
            text.trim()
        ));
    }
    Err(advice(text))
}

/// An `--end`: like [`parse_start`], or only a time (`19:30`).
pub fn parse_end(text: &str) -> Result<End, String> {
    if let Some(at) = exact(text) {
        return Ok(End::At(at));
    }
    if let Some(time) = time(text) {
        return Ok(End::SameDay(time));
    }
    Err(advice(text))
}

/// A `--time-zone`: a name of the time zone database, like `Europe/London`.
pub fn parse_zone(text: &str) -> Result<String, String> {
    let name = text.trim();
    if jiff::tz::TimeZone::get(name).is_ok() {
        return Ok(name.to_string());
    }
    let names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_string())
        .collect();
    let nearest = names
        .iter()
        .map(|n| {
            (
                strsim::jaro_winkler(&name.to_lowercase(), &n.to_lowercase()),
                n,
            )
        })
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    Err(match nearest {
        Some((_, n)) => format!("not a time zone name; did you mean `{n}`?"),
        None => "not a time zone name; use a name like `Europe/London` or `America/New_York`"
            .to_string(),
    })
}

/// `2027-03-04T18:00`, `2027-03-04 18:00` or with seconds; nothing else.
fn exact(text: &str) -> Option<DateTime> {
    let text = text.trim();
    let (date, rest) = text.split_at_checked(10)?;
    let date: Date = date.parse().ok()?;
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    Some(date.to_datetime(time(rest)?))
}

/// `18:00` or `18:00:00`.
fn time(text: &str) -> Option<Time> {
    let text = text.trim();
    if !matches!(text.len(), 5 | 8) {
        return None;
    }
    text.parse().ok()
}

/// What to write instead of `text`.
fn advice(text: &str) -> String {
    let Some(reading) = crate::model::dates::read(text) else {
        return format!("not a date and time; write {SHAPE}, like `2027-03-04T18:00`");
    };
    let time = reading
        .time
        .as_deref()
        .map_or("18:00", |t| t.strip_suffix(":00").unwrap_or(t));
    let other = match reading.other {
        Some(other) => format!(
            ", or `{other}T{time}` if you meant {}",
            other.strftime("%-d %B")
        ),
        None => String::new(),
    };
    let what = if reading.time.is_some() {
        "write it as"
    } else {
        "give the time too, like"
    };
    format!("{what} `{}T{time}` ({SHAPE}){other}", reading.date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_in_the_iso_shape() {
        for text in [
            "2027-03-04T18:00",
            "2027-03-04 18:00",
            " 2027-03-04T18:00:00 ",
        ] {
            assert_eq!(
                parse_start(text).unwrap().to_string(),
                "2027-03-04T18:00:00",
                "{text}"
            );
        }
    }

    #[test]
    fn other_shapes_say_what_to_write() {
        assert_eq!(
            parse_start("04/03/2027 18:00").unwrap_err(),
            "write it as `2027-03-04T18:00` (year-month-day, `T`, then the 24-hour time), or `2027-04-03T18:00` if you meant 3 April"
        );
        assert_eq!(
            parse_start("2027-03-04").unwrap_err(),
            "give the time too, like `2027-03-04T18:00` (year-month-day, `T`, then the 24-hour time)"
        );
        assert_eq!(
            parse_start("18:00").unwrap_err(),
            "give the day too, like `2027-03-04T18:00` (year-month-day, `T`, then the 24-hour time)"
        );
        assert!(
            parse_start("2027-02-30T18:00")
                .unwrap_err()
                .starts_with("not a date")
        );
        assert!(
            parse_start("next Tuesday")
                .unwrap_err()
                .starts_with("not a date")
        );
        assert!(
            parse_start("2027-03-04T25:00")
                .unwrap_err()
                .starts_with("not a date")
        );
    }

    #[test]
    fn an_end_may_be_a_time_on_the_same_day() {
        let start = parse_start("2027-03-04T18:00").unwrap();
        assert_eq!(
            parse_end("19:30").unwrap().on(start).to_string(),
            "2027-03-04T19:30:00"
        );
        assert_eq!(
            parse_end("2027-03-05T01:00").unwrap().on(start).to_string(),
            "2027-03-05T01:00:00"
        );
    }

    #[test]
    fn zones_are_names_of_the_database() {
        assert_eq!(parse_zone("Europe/Paris").unwrap(), "Europe/Paris");
        assert_eq!(
            parse_zone("Europe/Lodnon").unwrap_err(),
            "not a time zone name; did you mean `Europe/London`?"
        );
        assert!(
            parse_zone("GMT+1 please")
                .unwrap_err()
                .contains("Europe/London")
        );
    }
}
