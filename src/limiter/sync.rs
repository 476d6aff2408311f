//! The atomics of the lock-free entry path: `std`'s, or loom's when the crate is built with
//! `--cfg ratecache_loom` to model-check [`super::entry`] (`scripts/loom.sh`).

#[cfg(ratecache_loom)]
pub use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(not(ratecache_loom))]
pub use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Spins before a waiter starts yielding its time slice.
const SPINS: u32 = 64;

/// Waits a little for another thread to finish with an entry: a few busy spins (the holder
/// usually releases within nanoseconds), then yields, so a holder preempted on the same core
/// runs again instead of being spun against for a whole time slice.
#[inline]
pub fn backoff(round: &mut u32) {
    #[cfg(ratecache_loom)]
    {
        let _ = round;
        loom::thread::yield_now();
    }
    #[cfg(not(ratecache_loom))]
    {
        if *round < SPINS {
            *round += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}
