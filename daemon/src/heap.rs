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
