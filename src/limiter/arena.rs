//! Stable storage for a shard's entries: segments of doubling size (64, 64, 128, 256...
//! entries) that are never moved or freed while the limiter lives, so an entry found without
//! a lock stays a valid entry (though maybe of another subject: its identity is checked under
//! its own lock). Segments come from zeroed memory, so the pages of entries not yet used cost
//! no RSS.

use std::sync::OnceLock;

use super::entry::Entry;

/// Entries of the first segment (and of the second: segment `k > 0` holds `FIRST << (k-1)`).
const FIRST: usize = 64;
/// Segments: room for every `u32` entry number (`FIRST << (SEGMENTS - 2)` in the last).
const SEGMENTS: usize = 27;

/// The entries of one shard and one state width.
pub struct Arena<const W: usize> {
    segments: [OnceLock<Box<[Entry<W>]>>; SEGMENTS],
}

impl<const W: usize> Default for Arena<W> {
    fn default() -> Self {
        Arena {
            segments: std::array::from_fn(|_| OnceLock::new()),
        }
    }
}

/// Segment and offset of entry `n`: segment `k` starts at `FIRST * 2^(k-1)` (0 for `k = 0`).
fn locate(n: u32) -> (usize, usize) {
    let n = n as usize;
    if n < FIRST {
        return (0, n);
    }
    let k = (usize::BITS - (n / FIRST).leading_zeros()) as usize;
    (k, n - (FIRST << (k - 1)))
}

/// Entries in segment `k`.
fn segment_len(k: usize) -> usize {
    if k == 0 {
        FIRST
    } else {
        FIRST << (k - 1)
    }
}

impl<const W: usize> Arena<W> {
    /// Entry `n`. Panics if its segment was never allocated (only [`Arena::allocate`]d
    /// numbers are ever handed out).
    pub fn get(&self, n: u32) -> &Entry<W> {
        let (k, i) = locate(n);
        &self.segments[k].get().expect("allocated entry")[i]
    }

    /// Entry `n` if its segment exists (a hint's target: never panics on a stale number).
    pub fn get_hint(&self, n: u32) -> Option<&Entry<W>> {
        let (k, i) = locate(n);
        self.segments.get(k)?.get()?.get(i)
    }

    /// Makes entry `n` usable (allocating its segment when it is the first of one).
    pub fn allocate(&self, n: u32) -> &Entry<W> {
        let (k, i) = locate(n);
        &self.segments[k].get_or_init(|| zeroed(segment_len(k)))[i]
    }
}

/// `n` entries of zeroed memory: a large block is fresh pages from the kernel, untouched
/// until used.
fn zeroed<const W: usize>(n: usize) -> Box<[Entry<W>]> {
    let block = Box::<[Entry<W>]>::new_zeroed_slice(n);
    // SAFETY: an `Entry` is only atomic integers (`AtomicU64`, `AtomicU32`), for which all-zero
    // bytes are a valid value (the same as `Entry::default()`: free, sequence 0, zero words).
    unsafe { block.assume_init() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::entry::FREE;

    #[test]
    fn entries_map_to_segments_without_gaps() {
        let mut prev = locate(0);
        assert_eq!(prev, (0, 0));
        for n in 1..100_000u32 {
            let (k, i) = locate(n);
            assert!(i < segment_len(k), "n={n}");
            if i == 0 {
                assert_eq!((k, prev.1), (prev.0 + 1, segment_len(prev.0) - 1), "n={n}");
            } else {
                assert_eq!((k, i), (prev.0, prev.1 + 1), "n={n}");
            }
            prev = (k, i);
        }
        let (k, i) = locate(u32::MAX);
        assert_eq!(k, SEGMENTS - 1);
        assert_eq!(i, segment_len(k) - 1);
    }

    #[test]
    fn zeroed_entries_are_free_and_stay_put() {
        let a: Arena<2> = Arena::default();
        let n = if cfg!(miri) { 200 } else { 5000 };
        let first = a.allocate(0) as *const Entry<2>;
        for i in 0..n {
            let e = a.allocate(i);
            assert_eq!(e.read().ident, FREE);
            e.lock().set_ident(u64::from(i) + 1);
        }
        assert_eq!(a.get(0) as *const Entry<2>, first, "growth moves no entry");
        for i in 0..n {
            assert_eq!(a.get(i).read().ident, u64::from(i) + 1);
        }
    }
}
