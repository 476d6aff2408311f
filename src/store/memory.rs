//! Memory accounting: slab memory in use against the limit, eviction to make room, and the
//! budget of values still arriving.

use super::*;

/// Bytes of slab memory in use against a changeable limit.
#[derive(Debug)]
pub(super) struct MemAccount {
    used: AtomicU64,
    limit: AtomicU64,
    /// Reserved for requests still arriving ([`Store::reserve_transit`]), beside `used`.
    transit: AtomicU64,
}

impl MemAccount {
    /// Nothing in use against `limit` bytes.
    pub(super) fn new(limit: u64) -> MemAccount {
        MemAccount {
            used: AtomicU64::new(0),
            limit: AtomicU64::new(limit),
            transit: AtomicU64::new(0),
        }
    }

    pub(super) fn try_reserve(&self, n: u64) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |u| {
                (u + n <= limit).then_some(u + n)
            })
            .is_ok()
    }
    pub(super) fn force_reserve(&self, n: u64) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }
    pub(super) fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

impl Store {
    /// Evicts one item from `shard` (class `class`, or any), never the slot `keep`.
    pub(super) fn evict_in(
        &self,
        shard: &mut Shard,
        class: Option<u8>,
        keep: Option<u32>,
        now: u32,
    ) -> bool {
        match shard.eviction_victim(class, now) {
            Some((slot, why))
                if Some(slot) != keep && (why == Removal::Expired || !self.no_evict) =>
            {
                let it = shard.unlink(slot, why, now);
                self.mem.release(it.charge(&self.slabs, self.use_cas));
                true
            }
            _ => false,
        }
    }

    /// Evicts one item from another shard, trying the same class everywhere before any class.
    pub(super) fn evict_elsewhere(&self, home: usize, class: u8, now: u32) -> bool {
        let n = self.shards.len();
        for want in [Some(class), None] {
            for i in 1..n {
                let mut shard = self.shards[(home + i) % n].lock();
                if self.evict_in(&mut shard, want, None, now) {
                    return true;
                }
            }
        }
        false
    }

    /// True if an item with this key length, value length and flags fits the item size limit.
    pub fn fits(&self, key_len: usize, value_len: usize, flags: u32) -> bool {
        self.slabs
            .class_for(slab::item_total(key_len, value_len, flags, self.use_cas))
            .is_some()
    }

    /// Records a store refused before its value was read ([`StoreOutcome::TooLarge`] or
    /// [`StoreOutcome::NoMemory`]); with `drop_existing` (a `set`) the old value goes too, as
    /// memcached will not leave it stale.
    pub fn refuse_store(&self, key: &[u8], why: StoreOutcome, drop_existing: bool) {
        let now = self.now();
        let (hash, lock, _) = self.locate(key);
        let mut shard = lock.lock();
        match why {
            StoreOutcome::NoMemory => shard.stats.store_no_memory += 1,
            _ => shard.stats.store_too_large += 1,
        }
        if drop_existing {
            if let Lookup::Hit(slot) = self.lookup(&mut shard, hash, key, now) {
                self.unlink(&mut shard, slot, Removal::Client, now);
            }
        }
    }

    /// Reserves `bytes` for a request still arriving (a large value being read). Requests in
    /// transit have a budget of their own beside the item memory, [`Store::transit_limit`]:
    /// they never evict cached items (a flood of unfinished `set`s must not empty the cache),
    /// and the item a completed request stores is charged and evicts for as any store. False
    /// when the budget is spent: the request is then refused. Give the bytes back with
    /// [`Store::release_transit`] once the request is complete or gone.
    pub fn reserve_transit(&self, bytes: u64) -> bool {
        let limit = self.transit_limit();
        self.mem
            .transit
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |t| {
                (t + bytes <= limit).then_some(t + bytes)
            })
            .is_ok()
    }

    /// Gives back bytes taken by [`Store::reserve_transit`].
    pub fn release_transit(&self, bytes: u64) {
        self.mem.transit.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes reserved for requests in transit.
    pub fn transit_bytes(&self) -> u64 {
        self.mem.transit.load(Ordering::Acquire)
    }

    /// The budget of requests in transit: an eighth of the memory limit, at least 16 MiB.
    pub fn transit_limit(&self) -> u64 {
        (self.mem.limit.load(Ordering::Relaxed) / 8).max(16 << 20)
    }

    /// Changes the memory limit (`cache_memlimit`); later stores evict down to it.
    pub fn set_memory_limit(&self, bytes: u64) {
        self.mem.limit.store(bytes, Ordering::Release);
    }

    /// Slab bytes charged to items now.
    pub fn memory_used(&self) -> u64 {
        self.mem.used.load(Ordering::Acquire)
    }

    /// The memory limit in bytes.
    pub fn memory_limit(&self) -> u64 {
        self.mem.limit.load(Ordering::Acquire)
    }
}
