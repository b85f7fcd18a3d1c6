//! How long to wait before the next attempt: the server's `Retry-After` when the spec honours it, else
//! exponential backoff with optional jitter. The jitter comes from a small xorshift generator, because a
//! wait only needs to be spread out, not unpredictable, and that does not justify a random-number crate.

use crate::model::Retry;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Backoff before retry number `retry` (1 for the wait after the first attempt):
/// `initial * multiplier^(retry-1)`, capped at the spec's longest backoff, before jitter.
pub(crate) fn backoff(policy: &Retry, retry: u32) -> Duration {
    // Capped in floating point before converting, because `multiplier^n` overflows a Duration quickly.
    let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX).min(1024);
    let secs = policy.initial_backoff.as_secs_f64() * policy.multiplier.max(1.0).powi(exponent);
    let cap = policy.max_backoff.max(policy.initial_backoff);
    Duration::try_from_secs_f64(secs).map_or(cap, |d| d.min(cap))
}

/// The wait a `Retry-After` header asks for: delta-seconds or an HTTP-date (a date in the past is no wait).
/// `None` when the header is absent or unreadable, so the caller falls back to backoff.
pub(crate) fn retry_after(headers: &HeaderMap, now: jiff::Timestamp) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER.parse_timestamp(text).ok()?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

/// xorshift64*, shared by all requests of a client.
pub(crate) struct Jitter {
    state: Mutex<u64>,
}

impl Jitter {
    pub(crate) fn from_time() -> Jitter {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        // Mixed with a process-wide count so two clients made in the same nanosecond still differ; never
        // zero, the one state xorshift cannot leave.
        static MADE: AtomicU64 = AtomicU64::new(1);
        let seed = nanos ^ MADE.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Jitter { state: Mutex::new(seed.max(1)) }
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&self) -> f64 {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform between half and all of `wait`.
    pub(crate) fn spread(&self, wait: Duration) -> Duration {
        wait.mul_f64(0.5 + 0.5 * self.unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn policy(initial_ms: u64, max_ms: u64, multiplier: f64) -> Retry {
        Retry {
            statuses: vec![429, 503],
            max_attempts: 5,
            retry_after: crate::model::RetryAfter::Honor,
            max_retry_after: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_millis(max_ms),
            multiplier,
            jitter: true,
            on_network_error: true,
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = policy(100, 1000, 2.0);
        let waits: Vec<u128> = (1..=6).map(|n| backoff(&p, n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(&p, u32::MAX), Duration::from_millis(1000));
        assert_eq!(backoff(&policy(100, 1000, 10.0), 400), Duration::from_millis(1000));
    }

    #[test]
    fn jitter_stays_between_half_and_all() {
        let jitter = Jitter::from_time();
        let wait = Duration::from_millis(1000);
        let spread: Vec<Duration> = (0..1000).map(|_| jitter.spread(wait)).collect();
        assert!(spread.iter().all(|d| *d >= wait / 2 && *d <= wait));
        // Not constant: the generator moves.
        assert!(spread.iter().any(|d| *d != spread[0]));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let header = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(retry_after(&header("7"), now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&header(" 0 "), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&header("Mon, 01 Jan 2024 00:02:00 GMT"), now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&header("Sun, 31 Dec 2023 23:00:00 GMT"), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&header("soon"), now), None);
        assert_eq!(retry_after(&header("-3"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
