//! Sending limits: a steady pace per second, sliding windows per second,
//! hour and day, and pauses between batches. No window is ever exceeded.
//!
//! The per-second window is kept as the server sees it: the server stamps a
//! message somewhere between when we start the transaction and when its reply
//! reaches us, so a send counts from its reservation until one second after
//! it finished ([`Limiter::finish`]). Counting from the start alone lets a
//! slow transaction (a busy server, a slow disk) land in the same server
//! second as ones started a second after it.

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

/// The per-second window: at most `cap` sends that are in flight or finished
/// less than `len` ago.
#[derive(Debug)]
struct FinishWindow {
    len: Duration,
    cap: usize,
    in_flight: usize,
    /// When finished sends ended, in order.
    ended: VecDeque<Instant>,
}

impl FinishWindow {
    /// When the next send may start, or `None` while `cap` are in flight.
    fn next_free(&mut self, now: Instant) -> Option<Instant> {
        while self
            .ended
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.len)
        {
            self.ended.pop_front();
        }
        let room = self.cap.checked_sub(self.in_flight).filter(|r| *r > 0)?;
        Some(if self.ended.len() < room {
            now
        } else {
            self.ended[self.ended.len() - room] + self.len
        })
    }

    fn finish(&mut self, end: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let at = self.ended.partition_point(|t| *t <= end);
        self.ended.insert(at, end);
    }
}

/// A reserved send; hand it back to [`Limiter::finish`] when the send is
/// over (accepted or not). One never handed back keeps counting, which is
/// safe: it only slows later sends.
#[derive(Debug)]
#[must_use = "hand the ticket back to Limiter::finish when the send is over"]
pub struct Ticket(());

/// Hands out start times for sends.
#[derive(Debug)]
pub struct Limiter {
    interval: Option<Duration>,
    next_slot: Option<Instant>,
    second: Option<FinishWindow>,
    windows: Vec<Window>,
    /// Index of the daily window in `windows`, if any.
    day: Option<usize>,
    batch_size: u64,
    batch_pause: Duration,
    in_batch: u64,
}

/// What the caller should do.
#[derive(Debug)]
pub enum Permit {
    /// Start sending at this instant (sleep until then).
    At(Instant, Ticket),
    /// As many sends as a second allows are in flight: ask again when one
    /// of them has finished.
    Busy,
    /// The daily limit is used up; stop and run again after this long.
    DailyLimit(Duration),
}

/// Safety margin on the per-second window, for the server's clock running
/// slightly faster than ours (NTP slews by at most 0.05%).
const SECOND_MARGIN: Duration = Duration::from_millis(2);

impl Limiter {
    /// `history` holds how long ago earlier accepted sends were (for the
    /// hourly and daily windows across runs).
    pub fn new(s: &Sending, history: impl Iterator<Item = Duration>, now: Instant) -> Limiter {
        let mut windows = Vec::new();
        let mut interval = None;
        let mut second = None;
        if s.per_second > 0.0 {
            interval = Some(Duration::from_secs_f64(1.0 / s.per_second));
            second = Some(FinishWindow {
                len: Duration::from_secs(1) + SECOND_MARGIN,
                cap: (s.per_second.floor() as usize).max(1),
                in_flight: 0,
                ended: VecDeque::new(),
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
            second,
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
        if let Some(second) = &mut self.second {
            match second.next_free(now) {
                Some(free) => at = at.max(free),
                None => return Permit::Busy,
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
        if let Some(second) = &mut self.second {
            second.in_flight += 1;
        }
        let mut next = at + self.interval.unwrap_or_default();
        self.in_batch += 1;
        if self.batch_size > 0 && self.in_batch >= self.batch_size {
            self.in_batch = 0;
            next += self.batch_pause;
        }
        self.next_slot = Some(next);
        Permit::At(at, Ticket(()))
    }

    /// A reserved send is over; `end` is when its last reply came (or it
    /// gave up).
    pub fn finish(&mut self, ticket: Ticket, end: Instant) {
        let Ticket(()) = ticket;
        if let Some(second) = &mut self.second {
            second.finish(end);
        }
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

    fn reserve(l: &mut Limiter, now: Instant) -> (Instant, Ticket) {
        match l.reserve(now) {
            Permit::At(at, ticket) => (at, ticket),
            other => panic!("wanted a start time, got {other:?}"),
        }
    }

    /// Start times of `n` sends that each take `duration(i)`.
    fn starts(
        l: &mut Limiter,
        n: usize,
        t0: Instant,
        duration: impl Fn(usize) -> Duration,
    ) -> Vec<(Instant, Instant)> {
        (0..n)
            .map(|i| {
                let (at, ticket) = reserve(l, t0);
                let end = at + duration(i);
                l.finish(ticket, end);
                (at, end)
            })
            .collect()
    }

    /// The most events in any 1-second window `[t, t + 1 s)`.
    fn busiest_second(mut times: Vec<Instant>) -> usize {
        times.sort();
        (0..times.len())
            .map(|i| {
                times[i..]
                    .iter()
                    .take_while(|u| u.duration_since(times[i]) < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn never_more_than_the_cap_in_any_second() {
        let t0 = Instant::now();
        let mut l = Limiter::new(&sending(20.0), std::iter::empty(), t0);
        let sends = starts(&mut l, 200, t0, |_| Duration::ZERO);
        let times: Vec<Instant> = sends.iter().map(|s| s.0).collect();
        assert!(busiest_second(times.clone()) <= 20);
        let span = times[199].duration_since(times[0]).as_secs_f64();
        let rate = 199.0 / span;
        assert!((rate - 20.0).abs() / 20.0 < 0.01, "rate {rate}");
    }

    #[test]
    fn the_server_never_sees_more_than_the_cap_however_long_sends_take() {
        let t0 = Instant::now();
        let mut l = Limiter::new(&sending(20.0), std::iter::empty(), t0);
        // Uneven transactions: the server stamps each message somewhere
        // between its start and its end.
        let ms = |i: usize| Duration::from_millis([3, 180, 20, 95, 7, 250, 1][i % 7]);
        let sends = starts(&mut l, 300, t0, ms);
        for point in [0.0, 0.3, 1.0] {
            let seen: Vec<Instant> = sends
                .iter()
                .enumerate()
                .map(|(i, (start, end))| {
                    let p = if i % 2 == 0 { point } else { 1.0 - point };
                    *start + end.duration_since(*start).mul_f64(p)
                })
                .collect();
            let most = busiest_second(seen);
            assert!(most <= 20, "{most} in one second (point {point})");
        }
    }

    #[test]
    fn sends_count_until_they_finish() {
        let t0 = Instant::now();
        let mut l = Limiter::new(&sending(2.0), std::iter::empty(), t0);
        let (a, first) = reserve(&mut l, t0);
        let (b, second) = reserve(&mut l, t0);
        assert_eq!((a, b), (t0, t0 + Duration::from_millis(500)));
        assert!(matches!(l.reserve(t0), Permit::Busy), "two in flight");
        l.finish(first, t0 + Duration::from_millis(100));
        l.finish(second, t0 + Duration::from_secs(3));
        let later = t0 + Duration::from_secs(3);
        let (c, _third) = reserve(&mut l, later);
        assert_eq!(c, later, "the first ended long ago");
        let (d, _fourth) = reserve(&mut l, later);
        assert_eq!(
            d,
            later + Duration::from_secs(1) + SECOND_MARGIN,
            "the slow second send counts until a second after it ended"
        );
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
        let times = starts(&mut l, 4, t0, |_| Duration::ZERO);
        assert_eq!(times[2].0, t0);
        assert_eq!(times[3].0, t0 + Duration::from_secs(10));
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
        assert_eq!(reserve(&mut l, t0).0, t0);
        assert!(matches!(l.reserve(t0), Permit::DailyLimit(_)));
    }
}
