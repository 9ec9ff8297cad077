//! Counting failed logins per user name and per client address.
//!
//! Kept in memory, so each hub replica counts on its own; the account lockout in the
//! database is what holds across replicas.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// Failed logins allowed per key within [`WINDOW_SECONDS`] before further attempts are
/// refused with 429 until the oldest failure leaves the window.
pub const MAX_FAILURES: usize = 10;
pub const WINDOW_SECONDS: i64 = 300;
/// Keys tracked at most; beyond that the oldest-looking entries are dropped, so a flood of
/// made-up names cannot grow memory without bound.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
pub struct FailureLimiter {
    failures: Mutex<HashMap<String, VecDeque<DateTime<Utc>>>>,
}

impl FailureLimiter {
    /// Returns how long to wait if `key` has used up its failures, or `None` if it may try.
    pub fn retry_after(&self, key: &str, now: DateTime<Utc>) -> Option<Duration> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let times = failures.get_mut(key)?;
        prune(times, now);
        if times.len() < MAX_FAILURES {
            return None;
        }
        let oldest = *times.front()?;
        Some(oldest + Duration::seconds(WINDOW_SECONDS) - now)
    }

    pub fn record_failure(&self, key: &str, now: DateTime<Utc>) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() >= MAX_KEYS && !failures.contains_key(key) {
            failures.retain(|_, times| {
                prune(times, now);
                !times.is_empty()
            });
            if failures.len() >= MAX_KEYS {
                failures.clear();
            }
        }
        let times = failures.entry(key.to_owned()).or_default();
        prune(times, now);
        times.push_back(now);
    }

    pub fn clear(&self, key: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(key);
    }
}

fn prune(times: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>) {
    let cutoff = now - Duration::seconds(WINDOW_SECONDS);
    while times.front().is_some_and(|at| *at <= cutoff) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_after_max_failures_until_window_passes() {
        let limiter = FailureLimiter::default();
        let start = Utc::now();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.retry_after("addr:1", start).is_none());
            limiter.record_failure("addr:1", start);
        }
        assert!(limiter.retry_after("addr:1", start).is_some());
        assert!(
            limiter.retry_after("addr:2", start).is_none(),
            "other keys are not affected"
        );
        let later = start + Duration::seconds(WINDOW_SECONDS + 1);
        assert!(limiter.retry_after("addr:1", later).is_none());
    }
}
