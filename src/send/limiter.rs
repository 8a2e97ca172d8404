//! Sending limits: a steady pace per second, sliding windows per second,
//! hour and day, and pauses between batches. No window is ever exceeded.
//!
//! Under them, a pace learnt from the relay: a throttling reply halves the
//! pace (at most once a second; straight to 90% of what the relay was
//! admitting, when that is lower), which then climbs back quickly to 90% of
//! the rate the relay was admitting when it throttled, then slowly up to
//! it, probing — so a run settles just under a relay's hidden limit instead
//! of bouncing off it. The configured limits stay the ceiling.
//!
//! The per-second window is kept as the server sees it: the server stamps a
//! message somewhere between when we start the transaction and when its reply
//! reaches us, so a send counts from its reservation until one second after
//! it finished ([`Limiter::finish`]). Counting from the start alone lets a
//! slow transaction (a busy server, a slow disk) land in the same server
//! second as ones started a second after it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::model::config::Sending;

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
    /// The pace learnt from throttling replies, if any.
    learnt: Option<Learnt>,
    /// When recent sends started and when recent accepted ones ended (the
    /// last second of each), to know the rate at a throttling reply.
    started: VecDeque<Instant>,
    accepted: VecDeque<Instant>,
}

/// A pace below the configured one, because the relay asked for it.
#[derive(Debug, Clone)]
struct Learnt {
    /// Messages per second now.
    rate: f64,
    /// The rate the relay admitted when it last throttled.
    ceiling: f64,
    cut_at: Instant,
    raised_at: Instant,
    why: String,
}

/// The slowest learnt pace: one message every five seconds.
const SLOWEST: f64 = 0.2;

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
            learnt: None,
            started: VecDeque::new(),
            accepted: VecDeque::new(),
        }
    }

    /// The relay said to slow down (`why` is its reply): halves the pace,
    /// unless it was cut less than a second ago (replies to sends made
    /// before that cut say nothing new). Returns the new pace when it cut.
    pub fn throttled(&mut self, now: Instant, why: &str) -> Option<f64> {
        if self
            .learnt
            .as_ref()
            .is_some_and(|l| now.duration_since(l.cut_at) < Duration::from_secs(1))
        {
            return None;
        }
        let second = Duration::from_secs(1);
        trim(&mut self.started, now, second);
        trim(&mut self.accepted, now, second);
        let sending = (self.started.len() as f64).max(1.0);
        let current = self.pace().map_or(sending, |(rate, _)| rate.min(sending));
        // At least half, and no faster than the relay was admitting: a
        // run far above the relay's rate need not halve its way down.
        let admitted = self.accepted.len() as f64;
        let mut rate = current / 2.0;
        if admitted >= 1.0 {
            rate = rate.min(0.9 * admitted);
        }
        let rate = rate.max(SLOWEST);
        self.learnt = Some(Learnt {
            rate,
            ceiling: if admitted >= 1.0 { admitted } else { rate },
            cut_at: now,
            raised_at: now,
            why: why.to_string(),
        });
        Some(rate)
    }

    /// The learnt pace, when it is below the configured one, and why.
    pub fn pace(&self) -> Option<(f64, &str)> {
        self.learnt.as_ref().map(|l| (l.rate, l.why.as_str()))
    }

    /// Climbs back after a cut: to 90% of the ceiling within about half a
    /// second; then slowly (1% of it a second) up to the ceiling, where the
    /// relay said no last time; past it by 10% a second, since the relay
    /// takes more than it did. At twice the ceiling, or at the configured
    /// pace, the learnt pace is dropped.
    fn recover(&mut self, now: Instant, configured: Option<f64>) {
        let Some(l) = &mut self.learnt else { return };
        let dt = now.duration_since(l.raised_at).as_secs_f64();
        if dt < 0.05 {
            return;
        }
        l.raised_at = now;
        let near = 0.9 * l.ceiling;
        l.rate = if l.rate < near {
            (l.rate + l.ceiling * dt).min(near)
        } else if l.rate < l.ceiling {
            l.rate + (l.ceiling * 0.01).max(0.2) * dt
        } else {
            l.rate * 1.1f64.powf(dt)
        };
        let free = l.rate >= 2.0 * l.ceiling || configured.is_some_and(|c| l.rate >= c);
        if free {
            self.learnt = None;
        }
    }

    /// Reserves the next send. The reservation counts at once, so several
    /// connections asking together get successive slots.
    pub fn reserve(&mut self, now: Instant) -> Permit {
        let configured = self.interval.map(|i| 1.0 / i.as_secs_f64());
        self.recover(now, configured);
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
        let learnt = self
            .learnt
            .as_ref()
            .map(|l| Duration::from_secs_f64(1.0 / l.rate));
        let interval = self.interval.max(learnt).unwrap_or_default();
        let mut next = at + interval;
        self.started.push_back(at);
        trim(&mut self.started, now, Duration::from_secs(1));
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

    /// A send the server accepted ended at `end` (for the admitted rate).
    pub fn accepted(&mut self, end: Instant) {
        self.accepted.push_back(end);
        trim(&mut self.accepted, end, Duration::from_secs(1));
    }
}

/// Drops the times more than `len` before `now`.
fn trim(times: &mut VecDeque<Instant>, now: Instant, len: Duration) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) > len)
    {
        times.pop_front();
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

    /// Sends at `rate` from `t0` for `seconds`, all accepted, the relay
    /// throttling any above `relay` in the last second; returns the pace
    /// at the end and the sends per second of the last half.
    fn against_relay(configured: f64, relay: usize, seconds: u64) -> (Option<f64>, f64) {
        let mut l = Limiter::new(&sending(configured), std::iter::empty(), Instant::now());
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(seconds);
        let mut admitted: VecDeque<Instant> = VecDeque::new();
        let mut late = 0usize;
        let mut now = t0;
        while now < end {
            let (at, ticket) = reserve(&mut l, now);
            now = at.max(now) + Duration::from_millis(1);
            trim(&mut admitted, now, Duration::from_secs(1));
            l.finish(ticket, now);
            if admitted.len() < relay {
                admitted.push_back(now);
                l.accepted(now);
                if now > t0 + Duration::from_secs(seconds / 2) {
                    late += 1;
                }
            } else {
                l.throttled(
                    now,
                    "454 Throttling failure: Maximum sending rate exceeded.",
                );
            }
        }
        let rate = late as f64 / (seconds / 2) as f64;
        (l.pace().map(|(r, _)| r), rate)
    }

    #[test]
    fn a_throttled_run_settles_just_under_the_relays_rate() {
        let (pace, rate) = against_relay(0.0, 40, 60);
        assert!(pace.is_some(), "still paced by the relay");
        assert!((36.0..=40.0).contains(&rate), "{rate} accepted a second");
    }

    #[test]
    fn the_learnt_pace_never_exceeds_the_configured_one() {
        let (_, rate) = against_relay(30.0, 40, 20);
        assert!(rate <= 30.0 + 0.5, "{rate}");
    }

    #[test]
    fn a_throttling_reply_halves_the_pace_once_a_second() {
        let t0 = Instant::now();
        let mut l = Limiter::new(&sending(100.0), std::iter::empty(), t0);
        for i in 0..50 {
            let (at, ticket) = reserve(&mut l, t0 + Duration::from_millis(i * 10));
            l.finish(ticket, at);
        }
        let now = t0 + Duration::from_millis(500);
        let cut = l.throttled(now, "454 Throttling failure").expect("a cut");
        assert!(cut <= 50.0, "{cut}");
        assert_eq!(l.throttled(now + Duration::from_millis(500), "454"), None);
        assert!(
            l.throttled(now + Duration::from_millis(1001), "454")
                .is_some()
        );
    }

    #[test]
    fn the_pace_recovers_and_is_dropped_when_the_relay_stops_throttling() {
        let t0 = Instant::now();
        let mut l = Limiter::new(&sending(0.0), std::iter::empty(), t0);
        let (at, ticket) = reserve(&mut l, t0);
        l.finish(ticket, at);
        l.accepted(at);
        assert!(l.throttled(t0, "421 4.7.0 rate").is_some());
        let mut now = t0;
        for _ in 0..2000 {
            now += Duration::from_millis(100);
            let (_, ticket) = reserve(&mut l, now);
            l.finish(ticket, now);
        }
        assert!(l.pace().is_none(), "back to no limit: {:?}", l.pace());
    }
}
