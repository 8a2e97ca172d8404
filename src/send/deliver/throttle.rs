//! A relay that says "too fast": reading its temporary replies for
//! throttling, noticing bursts of them, and slowing the run down.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::shared::Shared;
use crate::progress::Progress;

/// What the relay meant by a temporary reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Throttle {
    /// Slow down (SES `454 Throttling failure: Maximum sending rate
    /// exceeded`, `421 … rate`).
    Rate,
    /// Fewer connections (`421 Too many connections`).
    Connections,
    /// Nothing more today (SES `454 Throttling failure: Daily message
    /// quota exceeded`).
    Quota,
}

/// Throttled tries of one message before it counts as an ordinary failure.
pub(super) const MAX_THROTTLED: u32 = 50;

/// Reads a temporary reply for throttling.
pub(super) fn throttling(reply: &str) -> Option<Throttle> {
    let reply = reply.strip_prefix("cannot connect: ").unwrap_or(reply);
    let code = reply.get(..3)?;
    let text = reply.to_ascii_lowercase();
    if !code.starts_with('4') {
        return None;
    }
    if text.contains("quota") && (text.contains("daily") || text.contains("day")) {
        return Some(Throttle::Quota);
    }
    match code {
        "454" if text.contains("throttl") || text.contains("rate") => Some(Throttle::Rate),
        "421" | "451" | "454" if text.contains("too many connections") => {
            Some(Throttle::Connections)
        }
        "421" | "451" if text.contains("too many") || text.contains("rate") => Some(Throttle::Rate),
        _ => None,
    }
}

/// Many 4xx replies in a short time are throttling too: at least [`BURST`]
/// in [`BURST_WINDOW`], and most of the outcomes in it (a few unlucky
/// recipients on a busy list are not; nor is a relay that is down, which
/// does not answer at all).
const BURST: usize = 10;
pub(super) const BURST_WINDOW: Duration = Duration::from_secs(5);

/// Recent outcomes, as temporary or not.
#[derive(Default)]
pub(super) struct Recent {
    window: Mutex<std::collections::VecDeque<(Instant, bool)>>,
}

impl Recent {
    /// Adds an outcome; true when temporary failures make a burst (and
    /// then starts counting afresh).
    pub fn push(&self, temporary: bool) -> bool {
        let now = Instant::now();
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        window.push_back((now, temporary));
        while window
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > BURST_WINDOW)
        {
            window.pop_front();
        }
        let temporary = window.iter().filter(|(_, t)| *t).count();
        let burst = temporary >= BURST && temporary * 2 > window.len();
        if burst {
            window.clear();
        }
        burst
    }
}

/// Lowers the pace (and for `Connections` the connection count) and says
/// so on the progress line.
pub(super) fn slow_down(shared: &Shared, kind: Throttle, why: &str, progress: &Progress) {
    let now = Instant::now();
    if kind == Throttle::Connections
        && let Some(count) = shared.connections.cut()
    {
        progress.note(&format!(
            "the relay allows fewer connections: using {count} (it said `{why}`)"
        ));
    }
    let cut = shared.limiter().throttled(now, why);
    if let Some(rate) = cut {
        progress.note(&format!("slowed to {rate:.1}/s: the relay said `{why}`"));
    }
    pace_note(shared, progress);
}

/// The learnt pace beside the progress bar, while there is one.
pub(super) fn pace_note(shared: &Shared, progress: &Progress) {
    let note = match shared.limiter().pace() {
        Some((rate, why)) => format!("paced at {rate:.0}/s, the relay said `{why}`"),
        None => String::new(),
    };
    progress.set_message(&note);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_replies_are_told_apart() {
        let cases = [
            (
                "454 Throttling failure: Maximum sending rate exceeded.",
                Some(Throttle::Rate),
            ),
            (
                "454 Throttling failure: Daily message quota exceeded.",
                Some(Throttle::Quota),
            ),
            (
                "cannot connect: 421 4.7.0 Too many connections, try again later",
                Some(Throttle::Connections),
            ),
            (
                "421 4.7.28 Our system has detected an unusual rate of unsolicited mail",
                Some(Throttle::Rate),
            ),
            (
                "451 4.7.500 Server busy, too many messages",
                Some(Throttle::Rate),
            ),
            ("451 4.3.0 Random temporary failure", None),
            ("550 5.7.1 rate limit", None),
            ("the server closed the connection", None),
        ];
        for (reply, want) in cases {
            assert_eq!(throttling(reply), want, "{reply}");
        }
    }

    #[test]
    fn a_burst_is_mostly_temporary_failures() {
        let few = Recent::default();
        for i in 0..100 {
            assert!(!few.push(i % 5 == 0), "one in five is not a burst");
        }
        let many = Recent::default();
        let bursts = (0..12).filter(|_| many.push(true)).count();
        assert_eq!(bursts, 1);
    }
}
