//! Today's date in the office's time zone, for the commands that default to
//! it or compare with it (`new`, `events list --upcoming`).
//!
//! `NEWSLETTER_TODAY=2022-07-14` fixes the date: it is for tests, which
//! cannot wait for a given day.

use anyhow::{Context, Result, bail};
use jiff::civil::Date;

use crate::new_issue::OFFICE_TIME_ZONE;

/// The environment variable that fixes today's date (`YYYY-MM-DD`), for tests.
pub const TODAY_ENV: &str = "NEWSLETTER_TODAY";

/// Today in Europe/London, or the date in [`TODAY_ENV`] when it is set.
pub fn today() -> Result<Date> {
    if let Some(value) = std::env::var_os(TODAY_ENV).filter(|v| !v.is_empty()) {
        let value = value.to_string_lossy();
        return match crate::dates::parse_arg(&value) {
            Ok(date) => Ok(date),
            Err(advice) => bail!("`{TODAY_ENV}` is `{value}`: {advice}; or unset it"),
        };
    }
    Ok(jiff::Timestamp::now()
        .in_tz(OFFICE_TIME_ZONE)
        .with_context(|| format!("cannot find today's date in {OFFICE_TIME_ZONE}"))?
        .date())
}
