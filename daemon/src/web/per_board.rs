//! Answers derived from the devices board, kept until the board changes. With 100 devices the
//! device list API is ~100 KB of JSON and the device cards ~150 KB of HTML; clients and open
//! pages ask for them far more often than a poll cycle changes them.

use std::sync::Mutex;

/// One derived value and the board generation it was made from.
pub struct PerBoard<V>(Mutex<Option<(u64, V)>>);

impl<V> Default for PerBoard<V> {
    fn default() -> Self {
        PerBoard(Mutex::new(None))
    }
}

impl<V: Clone> PerBoard<V> {
    /// The value for `generation`, made by `make` if the kept one is older (or missing).
    pub fn get_or<E>(&self, generation: u64, make: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some((g, v)) = &*self.0.lock().unwrap_or_else(|p| p.into_inner())
            && *g == generation
        {
            return Ok(v.clone());
        }
        // Made outside the lock: two requests after a change may both make it, which costs
        // less than making every other reader wait.
        let v = make()?;
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((generation, v.clone()));
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_until_the_generation_moves() {
        let cache: PerBoard<String> = PerBoard::default();
        let made = std::cell::Cell::new(0);
        let make = |s: &str| {
            made.set(made.get() + 1);
            Ok::<_, ()>(s.to_string())
        };
        assert_eq!(cache.get_or(1, || make("a")).unwrap(), "a");
        assert_eq!(cache.get_or(1, || make("b")).unwrap(), "a");
        assert_eq!(made.get(), 1);
        assert_eq!(cache.get_or(2, || make("c")).unwrap(), "c");
        assert_eq!(cache.get_or(2, || make("d")).unwrap(), "c");
        // A failure keeps nothing and the next call tries again.
        assert!(cache.get_or(3, || Err::<String, ()>(())).is_err());
        assert_eq!(cache.get_or(3, || make("e")).unwrap(), "e");
        assert_eq!(made.get(), 3);
    }
}
