//! The bound on password hashing: every Argon2 hash and verification (sign-in, claim, password
//! change) runs through one small pool sized to the box's memory, with a short bounded queue in
//! front of it; the rest are refused at once. Each hash takes ~46 MiB for a fraction of a
//! second, so without this a burst of sign-in attempts is a memory exhaustion attack.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::password::M_COST_KIB;

/// Share of the box's RAM that concurrent hashes may use: 1/16 is 64 MiB on a 1 GB board (one
/// hash at a time) and 256 MiB on 4 GB, leaving the rest to the apps' databases and Docker.
const RAM_SHARE_DIVISOR: u64 = 16;
/// Waiters allowed behind the running hashes. A sign-in waits in line rather than failing while
/// a handful of people (or one script) sign in at once; beyond a few dozen the box is being
/// flooded and answering "busy" at once costs nothing. Each waiter is a parked request, a few
/// KiB, never a hash buffer.
const DEFAULT_QUEUE: usize = 32;
/// Longest a waiter waits for its turn: about what a person tolerates before pressing again,
/// and long enough for the queue to drain on a one-hash board (~0.3 s per hash on a Pi 4).
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(5);

/// Refused: the pool and its queue are full, or the turn did not come in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Concurrency limit for password hashing.
#[derive(Debug)]
pub struct HashQueue {
    /// One permit per hash allowed to run; the permit moves into the blocking task, so a
    /// request that is abandoned mid-hash still holds it until the hash really ends.
    permits: Arc<Semaphore>,
    limit: usize,
    /// Requests currently waiting for a permit (bounded by `max_waiters`).
    waiting: AtomicUsize,
    max_waiters: usize,
    max_wait: Duration,
    /// Hashes running now and the most ever seen, for tests and diagnostics.
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Default for HashQueue {
    /// Sized for this machine: RAM from /proc/meminfo, cores from the scheduler.
    fn default() -> HashQueue {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        HashQueue::new(
            limit_for(mem_total_kib(), cores),
            DEFAULT_QUEUE,
            DEFAULT_MAX_WAIT,
        )
    }
}

/// How many hashes may run at once: the RAM share divided by one hash's memory, at least one,
/// at most one per core (more would only queue on the CPU while holding their memory).
pub fn limit_for(mem_total_kib: Option<u64>, cores: usize) -> usize {
    // Unknown RAM (no /proc): assume the smallest supported board, 1 GiB.
    let ram = mem_total_kib.unwrap_or(1024 * 1024);
    let fits = (ram / RAM_SHARE_DIVISOR / u64::from(M_COST_KIB)) as usize;
    fits.clamp(1, cores.max(1))
}

/// MemTotal in KiB, if /proc/meminfo says.
fn mem_total_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_total(&text)
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl HashQueue {
    pub fn new(limit: usize, max_waiters: usize, max_wait: Duration) -> HashQueue {
        let limit = limit.max(1);
        HashQueue {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
            waiting: AtomicUsize::new(0),
            max_waiters,
            max_wait,
            running: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Hashes allowed at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The most hashes that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Runs `work` (a hash) on a blocking thread once a slot is free; `Busy` if the queue is
    /// full or the wait runs out. Never more than `limit` blocking threads are hashing.
    pub async fn run<T, F>(&self, work: F) -> Result<Result<T, tokio::task::JoinError>, Busy>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Take a place in the queue, or refuse if there is none.
                let queued = self
                    .waiting
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                        (w < self.max_waiters).then_some(w + 1)
                    });
                if queued.is_err() {
                    return Err(Busy);
                }
                let _place = Place(&self.waiting);
                match tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
                    .await
                {
                    Ok(Ok(p)) => p,
                    // Timed out, or the semaphore closed (it never is).
                    _ => return Err(Busy),
                }
            }
        };
        let running = self.running.clone();
        let peak = self.peak.clone();
        Ok(tokio::task::spawn_blocking(move || {
            let now = running.fetch_add(1, Ordering::AcqRel) + 1;
            peak.fetch_max(now, Ordering::AcqRel);
            let out = work();
            running.fetch_sub(1, Ordering::AcqRel);
            drop(permit);
            out
        })
        .await)
    }
}

/// A place in the queue, given back however the wait ends (including the request being
/// dropped while waiting).
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_follows_ram_and_cores() {
        const GIB: u64 = 1024 * 1024;
        assert_eq!(limit_for(Some(GIB), 4), 1, "1 GB board: one hash at a time");
        assert_eq!(limit_for(Some(2 * GIB), 4), 2);
        assert_eq!(
            limit_for(Some(4 * GIB), 4),
            4,
            "room for 5, but only 4 cores"
        );
        assert_eq!(limit_for(Some(64 * GIB), 2), 2, "never more than the cores");
        assert_eq!(limit_for(Some(256 * 1024), 4), 1, "always at least one");
        assert_eq!(
            limit_for(None, 8),
            1,
            "unknown RAM: assume the smallest board"
        );
        assert_eq!(
            parse_mem_total("MemTotal:        3884136 kB\nMemFree: 1 kB\n"),
            Some(3_884_136)
        );
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_the_limit_holds() {
        let q = Arc::new(HashQueue::new(2, 3, Duration::from_secs(30)));
        // Hold both slots until released.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let mut holders = Vec::new();
        for _ in 0..2 {
            let (q, rx) = (q.clone(), rx.clone());
            holders.push(tokio::spawn(async move {
                q.run(move || {
                    let _ = rx.lock().map(|r| r.recv());
                })
                .await
            }));
        }
        // Three wait in line; wait until they have all queued.
        let mut waiters = Vec::new();
        for _ in 0..3 {
            let q = q.clone();
            waiters.push(tokio::spawn(async move { q.run(|| 7).await }));
        }
        while q.waiting.load(Ordering::Acquire) < 3 || q.running.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        // The sixth finds no place.
        assert_eq!(q.run(|| 7).await.err(), Some(Busy));
        for _ in 0..2 {
            tx.send(()).unwrap();
        }
        for h in holders {
            assert!(h.await.unwrap().is_ok());
        }
        for w in waiters {
            assert_eq!(w.await.unwrap().unwrap().unwrap(), 7);
        }
        assert_eq!(q.peak(), 2);
        assert_eq!(q.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_waiter_gives_up_after_the_longest_wait() {
        let q = Arc::new(HashQueue::new(1, 4, Duration::from_millis(50)));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let q = q.clone();
            tokio::spawn(async move {
                q.run(move || {
                    let _ = rx.recv();
                })
                .await
            })
        };
        while q.running.load(Ordering::Acquire) < 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(q.run(|| ()).await.err(), Some(Busy));
        tx.send(()).unwrap();
        assert!(holder.await.unwrap().is_ok());
    }
}
