//! Sending limits: a steady pace per second, sliding windows per second,
//! hour and day, and pauses between batches. No window is ever exceeded.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::Sending;

/// A window that admits at most `cap` sends in any `len`.
#[derive(Debug)]
struct Window {
    len: Duration,
    cap: usize,
    times: VecDeque<Instant>,
}

impl Window {
    /// When the next send may start, given the sends so far.
    fn next_free(&mut self, now: Instant) -> Instant {
        while self
            .times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.len)
        {
            self.times.pop_front();
        }
        if self.times.len() < self.cap {
            now
        } else {
            self.times[self.times.len() - self.cap] + self.len
        }
    }
}

/// Hands out start times for sends.
#[derive(Debug)]
pub struct Limiter {
    interval: Option<Duration>,
    next_slot: Option<Instant>,
    windows: Vec<Window>,
    /// Index of the daily window in `windows`, if any.
    day: Option<usize>,
    batch_size: u64,
    batch_pause: Duration,
    in_batch: u64,
}

/// What the caller should do.
#[derive(Debug, PartialEq, Eq)]
pub enum Permit {
    /// Start sending at this instant (sleep until then).
    At(Instant),
    /// The daily limit is used up; stop and run again after this long.
    DailyLimit(Duration),
}

/// Safety margin on the per-second window, so timing jitter between here and
/// the server never makes a 1-second window at the server hold one too many.
const SECOND_MARGIN: Duration = Duration::from_millis(5);

impl Limiter {
    /// `history` holds how long ago earlier accepted sends were (for the
    /// hourly and daily windows across runs).
    pub fn new(s: &Sending, history: impl Iterator<Item = Duration>, now: Instant) -> Limiter {
        let mut windows = Vec::new();
        let mut interval = None;
        if s.per_second > 0.0 {
            interval = Some(Duration::from_secs_f64(1.0 / s.per_second));
            windows.push(Window {
                len: Duration::from_secs(1) + SECOND_MARGIN,
                cap: (s.per_second.floor() as usize).max(1),
                times: VecDeque::new(),
            });
        }
        let history: Vec<Duration> = history.collect();
        let mut day = None;
        for (len, cap) in [(3600u64, s.per_hour), (86_400, s.per_day)] {
            if cap == 0 {
                continue;
            }
            let len = Duration::from_secs(len);
            let mut times: Vec<Instant> = history
                .iter()
                .filter(|ago| **ago < len)
                .filter_map(|ago| now.checked_sub(*ago))
                .collect();
            times.sort();
            if len.as_secs() == 86_400 {
                day = Some(windows.len());
            }
            windows.push(Window {
                len,
                cap: cap as usize,
                times: times.into(),
            });
        }
        Limiter {
            interval,
            next_slot: None,
            windows,
            day,
            batch_size: s.batch_size,
            batch_pause: Duration::from_secs_f64(s.batch_pause_seconds),
            in_batch: 0,
        }
    }

    /// Reserves the next send. The reservation counts at once, so several
    /// connections asking together get successive slots.
    pub fn reserve(&mut self, now: Instant) -> Permit {
        let mut at = now;
        if let Some(slot) = self.next_slot {
            at = at.max(slot);
        }
        if let Some(day) = self.day {
            let free = self.windows[day].next_free(now);
            if free > now + Duration::from_secs(60) {
                return Permit::DailyLimit(free - now);
            }
        }
        // Each window may push the time later; repeat until all agree.
        loop {
            let mut latest = at;
            for w in &mut self.windows {
                latest = latest.max(w.next_free(at));
            }
            if latest == at {
                break;
            }
            at = latest;
        }
        for w in &mut self.windows {
            w.times.push_back(at);
        }
        let mut next = at + self.interval.unwrap_or_default();
        self.in_batch += 1;
        if self.batch_size > 0 && self.in_batch >= self.batch_size {
            self.in_batch = 0;
            next += self.batch_pause;
        }
        self.next_slot = Some(next);
        Permit::At(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sending(per_second: f64) -> Sending {
        Sending {
            per_second,
            ..Sending::default()
        }
    }

    fn starts(l: &mut Limiter, n: usize, t0: Instant) -> Vec<Instant> {
        (0..n)
            .map(|_| match l.reserve(t0) {
                Permit::At(at) => at,
                Permit::DailyLimit(_) => panic!("daily limit"),
            })
            .collect()
    }

    #[test]
    fn never_more_than_the_cap_in_any_second() {
        let t0 = Instant::now();
        let mut l = Limiter::new(&sending(20.0), std::iter::empty(), t0);
        let times = starts(&mut l, 200, t0);
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
                .count();
            assert!(in_window <= 20, "{in_window} in a second at {i}");
        }
        let span = times[199].duration_since(times[0]).as_secs_f64();
        let rate = 199.0 / span;
        assert!((rate - 20.0).abs() / 20.0 < 0.01, "rate {rate}");
    }

    #[test]
    fn batches_pause() {
        let t0 = Instant::now();
        let s = Sending {
            batch_size: 3,
            batch_pause_seconds: 10.0,
            ..Sending::default()
        };
        let mut l = Limiter::new(&s, std::iter::empty(), t0);
        let times = starts(&mut l, 4, t0);
        assert_eq!(times[2], t0);
        assert_eq!(times[3], t0 + Duration::from_secs(10));
    }

    #[test]
    fn daily_limit_counts_earlier_runs() {
        let t0 = Instant::now() + Duration::from_secs(100_000);
        let s = Sending {
            per_day: 3,
            ..Sending::default()
        };
        let history = [Duration::from_secs(10), Duration::from_secs(20)];
        let mut l = Limiter::new(&s, history.into_iter(), t0);
        assert_eq!(l.reserve(t0), Permit::At(t0));
        assert!(matches!(l.reserve(t0), Permit::DailyLimit(_)));
    }
}
