//! Sign-in throttling with exponential back-off, per client address, per account and per known
//! browser.
//!
//! An attempt is *reserved* before the password is hashed: under one lock the keys are checked
//! and, if none is locked, counted as a failure up front. A success clears the keys afterwards.
//! So concurrent guesses cannot all pass the check before any failure is recorded.
//!
//! In memory on purpose: a restart forgets counters, which only helps the legitimate owner, and
//! nothing touches the SD card per failed attempt.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts checked before waiting starts (typos happen); the next one waits `BASE_WAIT`.
pub const FREE_ATTEMPTS: u32 = 3;
/// First wait; it doubles with every further failure, up to the key's cap.
pub const BASE_WAIT: Duration = Duration::from_secs(5);
/// A counter with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Hard cap on tracked keys (~100 bytes each, so ~1 MB at most). At the cap, entries idle for
/// `FORGET_AFTER` are swept, then the stalest unlocked ones are evicted: a flood of distinct
/// keys costs the flooder their own history, never unbounded memory.
const MAX_KEYS: usize = 10_000;
/// Room one sweep makes at least, so a flood pays the O(n) pass once per this many new keys
/// rather than on every attempt.
const EVICT_BATCH: usize = MAX_KEYS / 10;

#[derive(Debug, Clone)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// One key to check and count, with the longest wait it may earn.
#[derive(Debug, Clone)]
pub struct Key {
    pub name: String,
    pub cap: Duration,
}

impl Key {
    pub fn new(name: String, cap: Duration) -> Key {
        Key { name, cap }
    }
}

/// An attempt already counted as a failure; `succeed` clears its keys, `cancel` gives the
/// attempt back (nothing was checked). Dropping it leaves the failure counted, which is right
/// for an attempt abandoned mid-check.
#[must_use = "an attempt ends with succeed, cancel, or stays counted as a failure"]
#[derive(Debug)]
pub struct Attempt {
    keys: Vec<String>,
    /// Per key: the lock this attempt set and the one it replaced, so `cancel` can undo it.
    locks: Vec<(Option<Instant>, Option<Instant>)>,
}

/// Counters keyed by strings such as `ip:10.0.0.5`, `user:admin` or `browser:…`.
#[derive(Debug, Default)]
pub struct Throttle {
    // std Mutex: held for a map lookup only, never across an await.
    inner: Mutex<HashMap<String, Failures>>,
}

impl Throttle {
    /// The longest remaining wait among `keys`, if any is locked; counts nothing.
    pub fn wait_for(&self, keys: &[Key]) -> Option<Duration> {
        let now = Instant::now();
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        longest_wait(&map, keys, now)
    }

    /// Checks `keys` and, if none is locked, counts this attempt as a failure of each (so the
    /// next attempts see it at once). `Err(wait)` is the longest remaining wait.
    pub fn reserve(&self, keys: &[Key]) -> Result<Attempt, Duration> {
        let now = Instant::now();
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = longest_wait(&map, keys, now) {
            return Err(wait);
        }
        bound(&mut map, now);
        let mut locks = Vec::with_capacity(keys.len());
        for key in keys {
            let entry = map.entry(key.name.clone()).or_insert(Failures {
                count: 0,
                last: now,
                locked_until: None,
            });
            if now.duration_since(entry.last) >= FORGET_AFTER {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
            let before = entry.locked_until;
            if entry.count >= FREE_ATTEMPTS {
                let doublings = (entry.count - FREE_ATTEMPTS).min(16);
                let wait = BASE_WAIT.saturating_mul(1 << doublings).min(key.cap);
                entry.locked_until = Some(now + wait);
            }
            locks.push((entry.locked_until, before));
        }
        Ok(Attempt {
            keys: keys.iter().map(|k| k.name.clone()).collect(),
            locks,
        })
    }

    /// The attempt was right: its keys start afresh.
    pub fn succeed(&self, attempt: Attempt) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for key in &attempt.keys {
            map.remove(key);
        }
    }

    /// Nothing was checked (the box was busy): the attempt no longer counts.
    pub fn cancel(&self, attempt: Attempt) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (key, (set, before)) in attempt.keys.iter().zip(attempt.locks) {
            if let Some(entry) = map.get_mut(key) {
                entry.count = entry.count.saturating_sub(1);
                // Undo the lock only if no later attempt has replaced it.
                if entry.locked_until == set {
                    entry.locked_until = before;
                }
            }
        }
    }

    /// Keys tracked now (for tests of the bound).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn longest_wait(map: &HashMap<String, Failures>, keys: &[Key], now: Instant) -> Option<Duration> {
    keys.iter()
        .filter_map(|k| map.get(&k.name)?.locked_until)
        .filter(|until| *until > now)
        .map(|until| until - now)
        .max()
}

/// Keeps the map under `MAX_KEYS` before a new key may be added.
fn bound(map: &mut HashMap<String, Failures>, now: Instant) {
    if map.len() < MAX_KEYS {
        return;
    }
    map.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
    let keep = MAX_KEYS - EVICT_BATCH;
    if map.len() <= keep {
        return;
    }
    // Evict the stalest, unlocked entries first: a locked key is an attack in progress and
    // keeping it is the point. If everything is locked, the stalest locked ones go too.
    let mut ages: Vec<(bool, Instant, String)> = map
        .iter()
        .map(|(k, f)| (f.locked_until.is_some_and(|u| u > now), f.last, k.clone()))
        .collect();
    let n = ages.len() - keep;
    ages.select_nth_unstable_by(n - 1, |a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (_, _, key) in ages.into_iter().take(n) {
        map.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_secs(300);

    fn key(name: &str) -> Vec<Key> {
        vec![Key::new(name.into(), CAP)]
    }

    /// Lets the wait of `name` pass at once, as if its time had run out.
    fn wait_out(t: &Throttle, name: &str) {
        t.inner.lock().unwrap().get_mut(name).unwrap().locked_until = None;
    }

    #[test]
    fn backs_off_after_free_attempts() {
        let t = Throttle::default();
        let keys = key("user:a");
        for _ in 0..FREE_ATTEMPTS {
            let _failed = t.reserve(&keys).expect("free attempt");
        }
        let first = t.reserve(&keys).unwrap_err();
        assert!(first <= BASE_WAIT && first > BASE_WAIT / 2, "{first:?}");
        // A later failure doubles the wait, never past the cap.
        wait_out(&t, "user:a");
        let _failed = t.reserve(&keys).unwrap();
        assert!(t.reserve(&keys).unwrap_err() > BASE_WAIT);
        for _ in 0..30 {
            wait_out(&t, "user:a");
            let _failed = t.reserve(&keys).unwrap();
        }
        assert!(t.reserve(&keys).unwrap_err() <= CAP);
        // Success clears the key.
        wait_out(&t, "user:a");
        let ok = t.reserve(&keys).unwrap();
        t.succeed(ok);
        assert!(t.reserve(&keys).is_ok());
    }

    #[test]
    fn reservations_count_before_the_outcome_is_known() {
        let t = Throttle::default();
        let keys = key("ip:10.0.0.5");
        // Many attempts at once: only the free ones get through, however they interleave.
        let passed: Vec<Attempt> = (0..40).filter_map(|_| t.reserve(&keys).ok()).collect();
        assert_eq!(passed.len(), FREE_ATTEMPTS as usize);
        // The last of them turns out right: the address starts afresh.
        let mut passed = passed;
        t.succeed(passed.pop().unwrap());
        assert!(t.reserve(&keys).is_ok());
    }

    #[test]
    fn a_cancelled_attempt_does_not_count() {
        let t = Throttle::default();
        let keys = key("user:a");
        for _ in 0..FREE_ATTEMPTS - 1 {
            let _failed = t.reserve(&keys).unwrap();
        }
        let last = t.reserve(&keys).unwrap();
        assert!(t.reserve(&keys).is_err(), "locked while it is checked");
        t.cancel(last);
        let again = t.reserve(&keys);
        assert!(again.is_ok(), "the busy attempt was given back");
    }

    #[test]
    fn a_flood_of_distinct_keys_stays_bounded_and_keeps_locked_keys() {
        let t = Throttle::default();
        let target = key("user:admin");
        for _ in 0..FREE_ATTEMPTS {
            let _failed = t.reserve(&target).unwrap();
        }
        // Locked for long (as after many failures), so a slow test run cannot see it expire.
        t.inner
            .lock()
            .unwrap()
            .get_mut("user:admin")
            .unwrap()
            .locked_until = Some(Instant::now() + CAP);
        for i in 0..(MAX_KEYS * 2) {
            let _failed = t.reserve(&key(&format!("user:flood{i}"))).unwrap();
            assert!(t.len() <= MAX_KEYS, "{} keys", t.len());
        }
        assert!(
            t.reserve(&target).is_err(),
            "the locked account stays locked"
        );
    }
}
