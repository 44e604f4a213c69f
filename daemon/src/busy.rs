//! Work in flight in this process, one at a time per thing (an app, a device's install): a
//! claim is a guard that releases itself when dropped, so a failed or cancelled task can never
//! leave its thing marked busy.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

/// The things that are busy.
#[derive(Clone, Default)]
pub struct BusySet(Arc<Mutex<HashSet<String>>>);

/// Marks one thing busy for as long as it lives; owned, so it can move into a task.
pub struct BusyGuard {
    set: BusySet,
    key: String,
}

impl BusySet {
    fn lock(&self) -> MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `key`, or None when it is already busy.
    pub fn try_claim(&self, key: &str) -> Option<BusyGuard> {
        self.lock().insert(key.to_string()).then(|| BusyGuard {
            set: self.clone(),
            key: key.to_string(),
        })
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.set.lock().remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_claim_at_a_time_released_on_drop() {
        let set = BusySet::default();
        let first = set.try_claim("a").expect("free");
        assert!(set.try_claim("a").is_none());
        assert!(set.try_claim("b").is_some());
        drop(first);
        assert!(set.try_claim("a").is_some());
    }
}
