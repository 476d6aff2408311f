//! One limiter entry: a subject's identity, its state words and the second at which its state
//! is full again, behind a per-entry sequence lock.
//!
//! A decision on an existing subject takes no shard-wide lock: it compare-and-swaps the
//! entry's sequence number from even to odd (owning the entry), reads and rewrites the words,
//! and publishes the next even number. Concurrent decisions on one subject are serialised by
//! that CAS alone; a reader that only looks ([`Entry::read`], for `peek`) never writes and
//! retries if a writer was inside meanwhile.
//!
//! The words are atomics written with relaxed stores, so a racing reader sees stale or mixed
//! words (and retries) but never undefined behaviour; the orderings follow Boehm's seqlock
//! recipe: the writer fences (release) after making the sequence odd, the reader fences
//! (acquire) before checking that it did not change.

use super::sync::{backoff, fence, AtomicU32, AtomicU64, Ordering};

/// Identity of a free entry.
pub const FREE: u64 = 0;

/// A subject's entry with `W` state words.
pub struct Entry<const W: usize> {
    ident: AtomicU64,
    seq: AtomicU32,
    expiry: AtomicU32,
    words: [AtomicU64; W],
}

/// What a reader saw: a consistent copy of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot<const W: usize> {
    /// The identity ([`FREE`] when the entry holds no subject).
    pub ident: u64,
    /// The second at which the state is full again.
    pub expiry: u32,
    /// The state words.
    pub words: [u64; W],
}

impl<const W: usize> Default for Entry<W> {
    fn default() -> Self {
        Entry {
            ident: AtomicU64::new(FREE),
            seq: AtomicU32::new(0),
            expiry: AtomicU32::new(0),
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl<const W: usize> Entry<W> {
    /// Owns the entry until the guard is dropped (spinning while another writer owns it).
    pub fn lock(&self) -> Locked<'_, W> {
        let mut round = 0;
        loop {
            let s = self.seq.load(Ordering::Relaxed);
            if s & 1 == 0
                && self
                    .seq
                    .compare_exchange_weak(
                        s,
                        s.wrapping_add(1),
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                // Readers that see a word written below must also see the odd sequence.
                fence(Ordering::Release);
                return Locked {
                    entry: self,
                    seq: s,
                };
            }
            backoff(&mut round);
        }
    }

    /// A consistent copy, read without writing (retried while a writer is inside).
    pub fn read(&self) -> Snapshot<W> {
        let mut round = 0;
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                backoff(&mut round);
                continue;
            }
            let ident = self.ident.load(Ordering::Relaxed);
            let expiry = self.expiry.load(Ordering::Relaxed);
            let words = std::array::from_fn(|i| self.words[i].load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return Snapshot {
                    ident,
                    expiry,
                    words,
                };
            }
            backoff(&mut round);
        }
    }

    /// The identity, read without the lock (a hint: check it again under the lock).
    pub fn ident_hint(&self) -> u64 {
        self.ident.load(Ordering::Relaxed)
    }

    /// The expiry, read without the lock and without waiting for a writer (a hint).
    pub fn expiry_hint(&self) -> u32 {
        self.expiry.load(Ordering::Relaxed)
    }
}

/// Ownership of an entry; dropping it publishes what was written.
pub struct Locked<'a, const W: usize> {
    entry: &'a Entry<W>,
    seq: u32,
}

impl<const W: usize> Locked<'_, W> {
    /// The entry's identity.
    pub fn ident(&self) -> u64 {
        self.entry.ident.load(Ordering::Relaxed)
    }

    /// The second at which the state is full again.
    pub fn expiry(&self) -> u32 {
        self.entry.expiry.load(Ordering::Relaxed)
    }

    /// The state words.
    pub fn words(&self) -> [u64; W] {
        std::array::from_fn(|i| self.entry.words[i].load(Ordering::Relaxed))
    }

    /// Replaces the state words and the expiry.
    pub fn write(&self, words: [u64; W], expiry: u32) {
        for (w, v) in self.entry.words.iter().zip(words) {
            w.store(v, Ordering::Relaxed);
        }
        self.entry.expiry.store(expiry, Ordering::Relaxed);
    }

    /// Gives the entry to another subject ([`FREE`]: to none).
    pub fn set_ident(&self, ident: u64) {
        self.entry.ident.store(ident, Ordering::Relaxed);
    }
}

impl<const W: usize> Drop for Locked<'_, W> {
    fn drop(&mut self) {
        self.entry
            .seq
            .store(self.seq.wrapping_add(2), Ordering::Release);
    }
}

#[cfg(all(test, not(ratecache_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_write_is_seen_whole() {
        let e: Entry<2> = Entry::default();
        {
            let l = e.lock();
            l.set_ident(7);
            l.write([1, 2], 9);
        }
        assert_eq!(
            e.read(),
            Snapshot {
                ident: 7,
                expiry: 9,
                words: [1, 2]
            }
        );
    }

    #[test]
    fn writers_are_serialised_and_readers_never_see_a_torn_state() {
        // Every write keeps both words equal; readers must never see them differ, and no
        // increment may be lost.
        let e: Arc<Entry<2>> = Arc::new(Entry::default());
        let n = if cfg!(miri) { 50 } else { 20_000 };
        let writers: Vec<_> = (0..3)
            .map(|_| {
                let e = e.clone();
                std::thread::spawn(move || {
                    for _ in 0..n {
                        let l = e.lock();
                        let [a, _] = l.words();
                        l.write([a + 1, a + 1], 0);
                    }
                })
            })
            .collect();
        let reader = {
            let e = e.clone();
            std::thread::spawn(move || {
                for _ in 0..n {
                    let s = e.read();
                    assert_eq!(s.words[0], s.words[1]);
                }
            })
        };
        for w in writers {
            w.join().unwrap();
        }
        reader.join().unwrap();
        assert_eq!(e.read().words, [3 * n, 3 * n]);
    }
}

#[cfg(all(test, ratecache_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.max_branches = 100_000;
        model.check(f);
    }

    fn bump(e: &Entry<2>) {
        let l = e.lock();
        let [a, _] = l.words();
        l.write([a + 1, a + 1], 0);
    }

    /// Every interleaving of two writers (up to three preemptions, loom's usual bound): each
    /// owns the entry in turn, no update is lost.
    #[test]
    fn writers_never_lose_an_update() {
        model(|| {
            let e: Arc<Entry<2>> = Arc::new(Entry::default());
            let other = {
                let e = e.clone();
                loom::thread::spawn(move || bump(&e))
            };
            bump(&e);
            other.join().unwrap();
            let l = e.lock();
            assert_eq!(l.words(), [2, 2]);
        });
    }

    /// Every interleaving of a writer and a reader: the reader sees the state before or after
    /// the write, never a mix.
    #[test]
    fn readers_never_see_a_torn_state() {
        model(|| {
            let e: Arc<Entry<2>> = Arc::new(Entry::default());
            let writer = {
                let e = e.clone();
                loom::thread::spawn(move || bump(&e))
            };
            let s = e.read();
            assert_eq!(s.words[0], s.words[1]);
            writer.join().unwrap();
            assert_eq!(e.read().words, [1, 1]);
        });
    }
}
