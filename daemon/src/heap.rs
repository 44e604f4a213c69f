//! Heap in use, counted by the allocator itself.
//!
//! RSS says little about leaks: the C allocator keeps freed pages for reuse, so RSS stays up
//! after a burst even when nothing is held. What the daemon still holds is the sum of live
//! allocations, which the `cap` wrapper around the system allocator keeps in one counter (a
//! relaxed atomic add per allocation and per free). It is shown on /metrics
//! (`homelab_heap_in_use_bytes`) and read by the memory tests and benchmarks, so a map or
//! channel that grows per poll shows up as a number that climbs.

use std::alloc::System;

use cap::Cap;

/// The global allocator, so every binary and test linking the daemon
/// counts its heap. No limit: the daemon bounds its own work (see `limits` and the queues).
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Bytes allocated and not yet freed, by the whole process (every thread).
pub fn in_use() -> usize {
    ALLOCATOR.allocated()
}

/// How often the allocator's free pages are handed back (see `give_back`).
pub const GIVE_BACK_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Hands the pages the C allocator holds free back to the system. glibc returns freed memory
/// only from the top of its heap; pages freed below a live allocation stay resident for ever
/// (~4 MB with 100 devices after a burst of page loads). `malloc_trim(0)` releases those too.
/// Returns whether anything was released. Elsewhere (musl) it does nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // The daemon's only unsafe code: one call without arguments that matter.
pub fn give_back() -> bool {
    // SAFETY: malloc_trim takes no pointers and has no preconditions; glibc serializes it with
    // every other allocator call.
    unsafe { nix::libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back() -> bool {
    false
}

/// Runs `give_back` every `GIVE_BACK_EVERY` until `stop` flips, so memory returns to idle
/// after a burst (a page-load test, a poll cycle) instead of staying at its peak. On a blocking
/// thread: it walks the heap (under a millisecond at 100 devices).
pub fn spawn_give_back(mut stop: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(GIVE_BACK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let started = std::time::Instant::now();
                    let released = tokio::task::spawn_blocking(give_back).await.unwrap_or(false);
                    tracing::debug!(released, micros = started.elapsed().as_micros() as u64, "gave free heap pages back");
                }
                _ = crate::shutdown::stopped(&mut stop) => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_what_is_held() {
        // Other tests allocate and free on other threads, so the block is far larger than what
        // they hold. Zeroed memory comes from calloc untouched: it costs no RAM.
        const BLOCK: usize = 1 << 30;
        let before = super::in_use();
        let block = vec![0u8; BLOCK];
        let held = super::in_use();
        assert!(held >= before + BLOCK / 2, "{before} -> {held}");
        drop(block);
        assert!(super::in_use() < held - BLOCK / 2);
    }
}
