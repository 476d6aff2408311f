//! The store's side of `-e` snapshots: every live item out, and items back in with their cas
//! uniques and absolute expiry times.

use std::sync::atomic::Ordering;

use super::shard::Item;
use super::{Lookup, Store, StoreMode, StoreOptions, StoreOutcome, TIME_BASE};

/// The store's time and flush watermark, fixed for one walk over its items.
#[derive(Debug, Clone, Copy)]
pub(super) struct LiveView {
    now: u32,
    flushed: u64,
    base: u64,
}

impl LiveView {
    /// Whether the item is neither expired nor flushed.
    pub(super) fn shows(&self, it: &Item) -> bool {
        !it.is_expired(self.now) && it.cas >= self.flushed
    }

    /// A relative time of the store as Unix seconds (0 stays 0: never).
    pub(super) fn unix(&self, rel: u32) -> u64 {
        if rel == 0 {
            0
        } else {
            u64::from(rel) + self.base
        }
    }
}

/// A live item as a snapshot keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedItem<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// Client flags.
    pub flags: u32,
    /// Absolute expiry in Unix seconds (0: never).
    pub exptime: u64,
    /// Cas unique.
    pub cas: u64,
    /// Stored with a base64 meta key.
    pub key_binary: bool,
}

impl Store {
    /// Calls `f` with every live item (not expired, not flushed), one shard at a time under
    /// its lock.
    pub fn for_each_item(&self, mut f: impl FnMut(&SavedItem<'_>)) {
        let view = self.live_view();
        for lock in self.shards.iter() {
            let shard = lock.lock();
            for it in shard.live_items().filter(|it| view.shows(it)) {
                f(&SavedItem {
                    key: it.key(),
                    value: it.value(),
                    flags: it.flags,
                    exptime: view.unix(it.exptime),
                    cas: it.cas,
                    key_binary: it.key_binary(),
                });
            }
        }
    }

    /// What a walk over the items needs to tell live ones and absolute times.
    pub(super) fn live_view(&self) -> LiveView {
        let now = self.now();
        self.check_flush(now);
        LiveView {
            now,
            flushed: self.flushed_below.load(Ordering::Acquire),
            base: self
                .clock
                .origin_unix_secs()
                .saturating_sub(u64::from(TIME_BASE)),
        }
    }

    /// Stores a saved item again, with its cas unique (later uniques continue above it).
    /// False when it expired meanwhile or does not fit.
    pub fn restore_item(&self, it: &SavedItem<'_>) -> bool {
        let now_unix = self.clock.origin_unix_secs() + u64::from(self.now() - TIME_BASE);
        if it.exptime != 0 && it.exptime <= now_unix {
            return false;
        }
        let opts = StoreOptions {
            key_binary: it.key_binary,
            ..StoreOptions::default()
        };
        let exptime = i64::try_from(it.exptime).unwrap_or(i64::MAX);
        let (outcome, _) =
            self.store_ext(StoreMode::Set, it.key, it.flags, exptime, it.value, opts);
        if outcome != StoreOutcome::Stored {
            return false;
        }
        self.cas.fetch_max(it.cas, Ordering::AcqRel);
        let now = self.now();
        let (hash, lock, _) = self.locate(it.key);
        let mut shard = lock.lock();
        if let Lookup::Hit(slot) = self.lookup(&mut shard, hash, it.key, now) {
            shard.item_mut(slot).cas = it.cas;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MockClock;
    use crate::store::StoreConfig;
    use std::sync::Arc;

    #[test]
    fn items_go_out_and_come_back_with_their_cas_and_expiry() {
        let clock = Arc::new(MockClock::new(1_700_000_000));
        let s = Store::new(&StoreConfig::default(), clock.clone());
        s.store(StoreMode::Set, b"forever", 3, 0, b"v1");
        s.store(StoreMode::Set, b"short", 0, 10, b"v2");
        s.store(StoreMode::Set, b"gone", 0, 1, b"v3");
        clock.advance_secs(2);
        type Saved = (Vec<u8>, Vec<u8>, u32, u64, u64);
        let mut saved: Vec<Saved> = Vec::new();
        s.for_each_item(|it| {
            saved.push((
                it.key.to_vec(),
                it.value.to_vec(),
                it.flags,
                it.exptime,
                it.cas,
            ))
        });
        saved.sort();
        assert_eq!(saved.len(), 2, "the expired item is not saved");
        assert_eq!(saved[1].3, 1_700_000_010, "absolute expiry");

        let clock2 = Arc::new(MockClock::new(1_700_000_005));
        let t = Store::new(&StoreConfig::default(), clock2);
        for (k, v, flags, exptime, cas) in &saved {
            let it = SavedItem {
                key: k,
                value: v,
                flags: *flags,
                exptime: *exptime,
                cas: *cas,
                key_binary: false,
            };
            assert!(t.restore_item(&it));
        }
        let got = t
            .get(b"forever", None, |it| (it.value.to_vec(), it.flags, it.cas))
            .unwrap();
        assert_eq!(got, (b"v1".to_vec(), 3, saved[0].4));
        // Five seconds after the restart, the short item has five seconds left.
        let ttl = t
            .meta_peek(b"short", |it| it.and_then(|it| it.ttl()))
            .unwrap();
        assert_eq!(ttl, 5);
        // New uniques continue above the restored ones.
        t.store(StoreMode::Set, b"new", 0, 0, b"x");
        let new_cas = t.get(b"new", None, |it| it.cas).unwrap();
        assert!(new_cas > saved.iter().map(|s| s.4).max().unwrap());
    }
}
