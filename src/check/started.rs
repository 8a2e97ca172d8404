//! Events already under way by the time an issue goes out (`event-started`).
//!
//! `past-event` compares an event with the issue's date; this compares it
//! with today. It applies to a *current* issue, one dated in the future or
//! at most [`CURRENT_DAYS`] ago (one being written, or sent late): an
//! older issue is history, and its events are over by design. `check`
//! warns; `send` refuses, comparing the start with the moment it runs.

use jiff::ToSpan;
use jiff::ZonedDateTime as Zoned;
use jiff::civil::Date;

use crate::model::archive::{Archive, Event};
use crate::model::finding::Finding;
use crate::model::issue::Issue;

/// An issue dated this many days ago or less is current.
pub const CURRENT_DAYS: i32 = 31;

/// Whether an issue dated `date` is current on `today`.
pub fn is_current(date: Date, today: Date) -> bool {
    today
        .checked_sub(CURRENT_DAYS.days())
        .is_ok_and(|oldest| date >= oldest)
}

/// `check`: a warning for each event of a current issue, in a section not
/// marked `past-events`, that starts on or after the issue's date (before
/// it is `past-event`'s error) but before `today`.
pub fn lint(issue: &Issue, archive: &Archive, today: Date) -> Vec<Finding> {
    if !is_current(issue.date, today) {
        return Vec::new();
    }
    upcoming(issue, archive)
        .filter(|(_, event)| event.start.date() < today)
        .map(|(offset, event)| {
            issue.source.warning_at(
                "event-started",
                offset,
                format!(
                    "event `{}` starts on {}, before today ({today}), so it will have begun by the time supporters read this issue, and `newsletter send` refuses it; remove it from this section, or, if the section reports on past events, set `past-events = true` in it",
                    event.id,
                    event.start.date(),
                ),
            )
        })
        .collect()
}

/// `send`: an error for each event of a current issue, in a section not
/// marked `past-events`, that has started at `now`.
pub fn at_send(issue: &Issue, archive: &Archive, now: &Zoned) -> Vec<Finding> {
    if !is_current(issue.date, now.date()) {
        return Vec::new();
    }
    upcoming(issue, archive)
        .filter(|(_, event)| event.start.timestamp() <= now.timestamp())
        .map(|(offset, event)| {
            issue.source.error_at(
                "event-started",
                offset,
                format!(
                    "event `{}` started on {} at {}, before this send, so supporters would be invited to something already under way; remove it from this section, or, if the section reports on past events, set `past-events = true` in it",
                    event.id,
                    event.start.date(),
                    event.start.strftime("%H:%M"),
                ),
            )
        })
        .collect()
}

/// The events of sections not marked `past-events` that start on or after
/// the issue's date, with the offset of their id in the issue.
fn upcoming<'a>(
    issue: &'a Issue,
    archive: &'a Archive,
) -> impl Iterator<Item = (usize, &'a Event)> + 'a {
    issue
        .content
        .sections
        .iter()
        .filter(|s| !s.past_events)
        .flat_map(|s| &s.events)
        .filter_map(|id| Some((id.span().start, archive.event(id.get_ref())?)))
        .filter(|(_, event)| event.start.date() >= issue.date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_issues() {
        let today: Date = "2027-02-10".parse().unwrap();
        assert!(is_current("2027-03-03".parse().unwrap(), today));
        assert!(is_current("2027-02-10".parse().unwrap(), today));
        assert!(is_current("2027-01-10".parse().unwrap(), today));
        assert!(!is_current("2027-01-09".parse().unwrap(), today));
        assert!(!is_current("2022-07-13".parse().unwrap(), today));
    }
}
