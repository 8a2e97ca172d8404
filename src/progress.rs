//! Progress on stderr: a bar on a terminal, a log line every few seconds
//! otherwise (CI logs, cron mail).

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    bar: Option<ProgressBar>,
    total: u64,
    done: AtomicU64,
    started: Instant,
    /// Why the run goes slower than configured, when it does.
    message: std::sync::Mutex<String>,
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(if no_color() {
                    "{bar:40} {pos}/{len} · {rate} · ETA {eta}  {msg}"
                } else {
                    "{bar:40.cyan/blue} {pos}/{len} · {rate} · ETA {eta}  {msg}"
                })
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                // indicatif's own `{per_sec}` prints `10.0862/s`.
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{}", rate(state.per_sec()));
                    },
                ),
            );
            bar
        });
        Progress {
            inner: Arc::new(Inner {
                bar,
                total,
                done: AtomicU64::new(0),
                started: Instant::now(),
                message: std::sync::Mutex::new(String::new()),
            }),
        }
    }

    pub fn inc(&self) {
        self.inner.done.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.inner.bar {
            bar.inc(1);
        }
    }

    /// A line about one recipient, printed above the bar.
    pub fn note(&self, line: &str) {
        match &self.inner.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Says beside the bar (and in the log line every few seconds) why
    /// the run is slower than configured; empty when it no longer is.
    pub fn set_message(&self, message: &str) {
        let mut current = self.inner.message.lock().unwrap_or_else(|e| e.into_inner());
        if *current == message {
            return;
        }
        *current = message.to_string();
        if let Some(bar) = &self.inner.bar {
            bar.set_message(message.to_string());
        }
    }

    /// Without a terminal, logs the count every five seconds.
    pub fn spawn_ticker(&self) -> tokio::task::JoinHandle<()> {
        let progress = self.clone();
        tokio::spawn(async move {
            if progress.inner.bar.is_some() {
                return;
            }
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                progress.log_line();
            }
        })
    }

    fn log_line(&self) {
        let done = self.inner.done.load(Ordering::Relaxed);
        let elapsed = self.inner.started.elapsed().as_secs_f64();
        let per_second = done as f64 / elapsed.max(0.001);
        let eta = if per_second > 0.0 {
            format!(
                "{:.0} s",
                (self.inner.total.saturating_sub(done)) as f64 / per_second
            )
        } else {
            "unknown".into()
        };
        let message = self.inner.message.lock().unwrap_or_else(|e| e.into_inner());
        let note = if message.is_empty() {
            String::new()
        } else {
            format!(" · {message}")
        };
        eprintln!(
            "progress: {done}/{} sent · {} · ETA {eta}{note}",
            self.inner.total,
            rate(per_second)
        );
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.inner.bar {
            bar.finish_and_clear();
        }
    }
}

/// Messages a second as a person reads it: `10.1/s`, `2,387/s`.
fn rate(per_second: f64) -> String {
    if !per_second.is_finite() || per_second <= 0.0 {
        return "–/s".to_string();
    }
    if per_second < 100.0 {
        return format!("{per_second:.1}/s");
    }
    let whole = per_second.round() as u64;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}/s")
}

/// `NO_COLOR` set to anything but the empty string (https://no-color.org).
fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_like_a_person_writes_them() {
        assert_eq!(rate(10.0862), "10.1/s");
        assert_eq!(rate(2386.7), "2,387/s");
        assert_eq!(rate(123_456.0), "123,456/s");
        assert_eq!(rate(0.0), "–/s");
    }
}
