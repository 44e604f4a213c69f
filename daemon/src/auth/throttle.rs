//! Login throttling with exponential back-off, per client address and per account.
//!
//! In memory on purpose: a restart forgets counters, which only helps the legitimate owner, and
//! nothing touches the SD card per failed attempt.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before waiting starts (typos happen).
const FREE_ATTEMPTS: u32 = 3;
/// First wait; it doubles with every further failure.
const BASE_WAIT: Duration = Duration::from_secs(5);
/// A counter with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Past this many tracked keys, stale entries are swept (bounds memory under a flood).
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Counters keyed by strings such as `ip:10.0.0.5` or `user:admin`.
#[derive(Debug, Default)]
pub struct Throttle {
    // std Mutex: held for a map lookup only, never across an await.
    inner: Mutex<HashMap<String, Failures>>,
}

impl Throttle {
    /// The longest remaining wait among `keys`, if any is locked.
    pub fn wait_for(&self, keys: &[String]) -> Option<Duration> {
        let now = Instant::now();
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| map.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    /// Records a failure for `key`; the wait grows up to `cap`.
    pub fn fail(&self, key: String, cap: Duration) {
        let now = Instant::now();
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            map.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
        }
        let entry = map.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if now.duration_since(entry.last) >= FORGET_AFTER {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        if entry.count > FREE_ATTEMPTS {
            let doublings = (entry.count - FREE_ATTEMPTS - 1).min(16);
            let wait = BASE_WAIT.saturating_mul(1 << doublings).min(cap);
            entry.locked_until = Some(now + wait);
        }
    }

    /// Clears the counter of `key` after a success.
    pub fn succeed(&self, key: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_after_free_attempts() {
        let t = Throttle::default();
        let keys = vec!["user:a".to_string()];
        for _ in 0..FREE_ATTEMPTS {
            t.fail("user:a".into(), Duration::from_secs(300));
            assert!(t.wait_for(&keys).is_none());
        }
        t.fail("user:a".into(), Duration::from_secs(300));
        let first = t.wait_for(&keys).unwrap();
        assert!(first <= BASE_WAIT && first > BASE_WAIT / 2);
        t.fail("user:a".into(), Duration::from_secs(300));
        assert!(t.wait_for(&keys).unwrap() > BASE_WAIT);
        for _ in 0..30 {
            t.fail("user:a".into(), Duration::from_secs(300));
        }
        assert!(t.wait_for(&keys).unwrap() <= Duration::from_secs(300));
        t.succeed("user:a");
        assert!(t.wait_for(&keys).is_none());
    }
}
