//! The atomics of the lock-free entry path: `std`'s, or loom's when the crate is built with
//! `--cfg loom` to model-check [`super::entry`] (`scripts/loom.sh`).

#[cfg(ratecache_loom)]
pub use loom::hint::spin_loop;
#[cfg(ratecache_loom)]
pub use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(not(ratecache_loom))]
pub use std::hint::spin_loop;
#[cfg(not(ratecache_loom))]
pub use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
