//! The item store: power-of-two shards picked by the key's hash, each behind its own lock, with
//! memcached's slab-class memory accounting, a memory limit enforced by LRU eviction, a timing
//! wheel per shard that reclaims expired items in the background, and atomic read-modify-write
//! commands. It knows nothing of sockets or wire formats and reads time only from a [`Clock`](crate::clock::Clock).

mod item;
mod meta;
mod persist;
mod shard;
pub(crate) use shard::prefetch;
pub mod slab;
pub mod wheel;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::clock::SharedClock;
use crate::numeric;
pub use item::SharedValue;
pub use meta::{MetaArith, MetaDelete, MetaGet, MetaItem};
pub use persist::SavedItem;
use shard::{Item, Removal, Shard, ShardIndex};
use slab::SlabClasses;
pub use smallvec;

/// memcached's REALTIME_MAXDELTA: exptimes above this many seconds are absolute Unix times.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;
/// Relative time at the clock's origin: memcached's `current_time` starts at 62 (its
/// `process_started` is set `ITEM_UPDATE_INTERVAL` + 2 seconds back), which shows in the `t` of
/// an item given an absolute exptime already past (`1 - current_time`).
const TIME_BASE: u32 = 62;
/// memcached bumps an item's access time at most once per this many seconds.
const ITEM_UPDATE_INTERVAL: u32 = 60;
/// Items evicted from other shards for one allocation before answering out of memory.
const MAX_EVICTION_ROUNDS: usize = 4096;

/// Sizing and policy of a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Memory limit for items in bytes (`-m`).
    pub memory_limit: u64,
    /// Largest item in bytes (`-I`).
    pub max_item_size: usize,
    /// Slab growth factor (`-f`).
    pub factor: f64,
    /// Minimum key+value+flags space of the smallest class (`-n`).
    pub min_chunk: usize,
    /// Largest slab chunk (`slab_chunk_max`).
    pub slab_chunk_max: usize,
    /// Slab page size.
    pub page_size: usize,
    /// Cas uniques on (`-C` turns them off).
    pub use_cas: bool,
    /// Answer out of memory instead of evicting (`-M`).
    pub no_evict: bool,
    /// Number of shards; rounded up to a power of two.
    pub shards: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            memory_limit: 64 << 20,
            max_item_size: 1 << 20,
            factor: 1.25,
            min_chunk: 48,
            slab_chunk_max: 512 << 10,
            page_size: 1 << 20,
            use_cas: true,
            no_evict: false,
            shards: 64,
        }
    }
}

/// Counters kept per shard (under its lock) and summed for `stats`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ShardStats {
    pub get_hits: u64,
    pub get_misses: u64,
    pub get_expired: u64,
    pub get_flushed: u64,
    pub touch_hits: u64,
    pub touch_misses: u64,
    pub delete_hits: u64,
    pub delete_misses: u64,
    pub incr_hits: u64,
    pub incr_misses: u64,
    pub decr_hits: u64,
    pub decr_misses: u64,
    pub cas_hits: u64,
    pub cas_misses: u64,
    pub cas_badval: u64,
    pub cmd_get: u64,
    pub cmd_set: u64,
    pub cmd_touch: u64,
    pub evictions: u64,
    pub evicted_unfetched: u64,
    pub evicted_active: u64,
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    pub curr_items: u64,
    pub total_items: u64,
    pub bytes: u64,
    pub store_too_large: u64,
    pub store_no_memory: u64,
}

impl ShardStats {
    fn add(&mut self, o: &ShardStats) {
        macro_rules! sum {
            ($($f:ident),*) => { $(self.$f += o.$f;)* };
        }
        sum!(
            get_hits,
            get_misses,
            get_expired,
            get_flushed,
            touch_hits,
            touch_misses,
            delete_hits,
            delete_misses,
            incr_hits,
            incr_misses,
            decr_hits,
            decr_misses,
            cas_hits,
            cas_misses,
            cas_badval,
            cmd_get,
            cmd_set,
            cmd_touch,
            evictions,
            evicted_unfetched,
            evicted_active,
            reclaimed,
            expired_unfetched,
            curr_items,
            total_items,
            bytes,
            store_too_large,
            store_no_memory
        );
    }

    /// Zeroes the counters `stats reset` resets, keeping the gauges (items, bytes).
    fn reset(&mut self) {
        let (curr, bytes) = (self.curr_items, self.bytes);
        *self = ShardStats {
            curr_items: curr,
            bytes,
            ..Default::default()
        };
    }
}

/// Counters of one slab class (per shard, or summed for reports).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClassCounters {
    /// Items stored.
    pub count: u64,
    /// Slab bytes charged.
    pub charged: u64,
    /// Bytes requested by the items (memcached's `mem_requested`).
    pub requested: u64,
    pub evicted: u64,
    pub evicted_nonzero: u64,
    pub evicted_unfetched: u64,
    pub evicted_active: u64,
    /// Age of the last evicted item (the largest over shards when summed).
    pub evicted_time: u32,
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    pub outofmemory: u64,
    pub get_hits: u64,
    pub cmd_set: u64,
    pub delete_hits: u64,
    pub incr_hits: u64,
    pub decr_hits: u64,
    pub cas_hits: u64,
    pub cas_badval: u64,
    pub touch_hits: u64,
}

impl ClassCounters {
    fn add(&mut self, o: &ClassCounters) {
        macro_rules! sum {
            ($($f:ident),*) => { $(self.$f += o.$f;)* };
        }
        sum!(
            count,
            charged,
            requested,
            evicted,
            evicted_nonzero,
            evicted_unfetched,
            evicted_active,
            reclaimed,
            expired_unfetched,
            outofmemory,
            get_hits,
            cmd_set,
            delete_hits,
            incr_hits,
            decr_hits,
            cas_hits,
            cas_badval,
            touch_hits
        );
        self.evicted_time = self.evicted_time.max(o.evicted_time);
    }
}

/// One slab class summed over the shards, for `stats items` and `stats slabs`.
#[derive(Debug, Default, Clone)]
pub struct ClassStats {
    /// Class id (1-based).
    pub id: u8,
    /// Chunk size.
    pub chunk_size: usize,
    /// Chunks per page.
    pub per_page: usize,
    /// Seconds since the oldest item in the class was stored.
    pub age: u32,
    /// The counters, summed.
    pub counters: ClassCounters,
}

/// How a storage command treats an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if absent.
    Add,
    /// Store only if present.
    Replace,
    /// Add the data after the existing value.
    Append,
    /// Add the data before the existing value.
    Prepend,
    /// Store only if the item's cas unique still equals this.
    Cas(u64),
}

/// Meta-protocol options of a storage command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// `ms I`: a cas older than the item's still stores, marking the value stale.
    pub invalidate: bool,
    /// `ms MA|MP C<cas>`: append/prepend only if the item's cas matches.
    pub compare_cas: Option<u64>,
    /// `ms b`: the key was given in base64 (set, add, replace and cas keep it on the item).
    pub key_binary: bool,
}

/// Outcome of a storage command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored.
    Stored,
    /// The mode's condition failed (add on present, replace/append/prepend on absent).
    NotStored,
    /// Cas mismatch.
    Exists,
    /// Cas on an absent item.
    NotFound,
    /// Item larger than the item size limit.
    TooLarge,
    /// No memory could be freed for it.
    NoMemory,
}

/// Outcome of incr/decr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaOutcome {
    /// The new value.
    Value(u64),
    /// No such item.
    NotFound,
    /// The value is not a decimal number.
    NonNumeric,
}

/// A read-only view of an item, lent to a closure while the shard is locked.
#[derive(Debug, Clone, Copy)]
pub struct ItemRef<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// Client flags.
    pub flags: u32,
    /// Cas unique (0 when cas is disabled).
    pub cas: u64,
    item: &'a Item,
}

impl ItemRef<'_> {
    /// The value as a [`SharedValue`] that outlives the shard lock, when it lives in a heap
    /// block (no copy: a reference count); `None` for a small inline value (copy `value`).
    pub fn shared_value(&self) -> Option<SharedValue> {
        self.item.shared_value()
    }
}

/// Lookup result inside a shard.
enum Lookup {
    Hit(u32),
    Miss,
    Expired,
    Flushed,
}

/// Bytes of slab memory in use against a changeable limit.
#[derive(Debug)]
struct MemAccount {
    used: AtomicU64,
    limit: AtomicU64,
    /// Reserved for requests still arriving ([`Store::reserve_transit`]), beside `used`.
    transit: AtomicU64,
}

impl MemAccount {
    fn try_reserve(&self, n: u64) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |u| {
                (u + n <= limit).then_some(u + n)
            })
            .is_ok()
    }
    fn force_reserve(&self, n: u64) {
        self.used.fetch_add(n, Ordering::AcqRel);
    }
    fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The sharded store.
pub struct Store {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    /// Per shard, where its chain heads and items are, for [`Store::prefetch`].
    index: Box<[Arc<ShardIndex>]>,
    shard_shift: u32,
    hasher: ahash::RandomState,
    slabs: SlabClasses,
    mem: MemAccount,
    clock: SharedClock,
    cas: AtomicU64,
    use_cas: bool,
    no_evict: bool,
    /// Relative second at which a delayed `flush_all` takes effect (0 = none).
    flush_at: AtomicU32,
    /// Items stamped below this sequence number were flushed.
    flushed_below: AtomicU64,
    /// Watermark the last sweep removed items below.
    swept_below: AtomicU64,
}

impl Store {
    /// A store sized by `cfg`, reading time from `clock`.
    pub fn new(cfg: &StoreConfig, clock: SharedClock) -> Store {
        let n = cfg.shards.max(1).next_power_of_two();
        let slabs = SlabClasses::new(
            cfg.factor,
            cfg.min_chunk,
            cfg.slab_chunk_max,
            cfg.page_size,
            cfg.max_item_size,
        );
        let hasher = ahash::RandomState::new();
        let now = rel_now(&clock);
        let index: Box<[Arc<ShardIndex>]> = (0..n).map(|_| ShardIndex::new()).collect();
        let shards = index
            .iter()
            .map(|ix| {
                let shard = Shard::new(slabs.clone(), cfg.use_cas, now, hasher.clone(), ix.clone());
                CachePadded::new(Mutex::new(shard))
            })
            .collect();
        Store {
            shards,
            index,
            shard_shift: 64 - n.trailing_zeros(),
            hasher,
            slabs,
            mem: MemAccount {
                used: AtomicU64::new(0),
                limit: AtomicU64::new(cfg.memory_limit),
                transit: AtomicU64::new(0),
            },
            clock,
            cas: AtomicU64::new(0),
            use_cas: cfg.use_cas,
            no_evict: cfg.no_evict,
            flush_at: AtomicU32::new(0),
            flushed_below: AtomicU64::new(0),
            swept_below: AtomicU64::new(0),
        }
    }

    /// The store's relative time in seconds (memcached's `current_time`).
    pub fn now(&self) -> u32 {
        rel_now(&self.clock)
    }

    /// The slab classes.
    pub fn slabs(&self) -> &SlabClasses {
        &self.slabs
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Converts a client exptime to a relative expiry second as memcached's `realtime()` does:
    /// 0 never expires, negative is already expired, over 30 days is an absolute Unix time.
    pub fn rel_exptime(&self, exptime: i64) -> u32 {
        if exptime == 0 {
            return 0;
        }
        if exptime < 0 {
            return 1;
        }
        if exptime > REALTIME_MAXDELTA {
            let started = self.clock.origin_unix_secs() as i64 - i64::from(TIME_BASE);
            if exptime <= started {
                return 1;
            }
            return (exptime - started).min(i64::from(u32::MAX)) as u32;
        }
        (exptime + i64::from(self.now())).min(i64::from(u32::MAX)) as u32
    }

    /// Warms the CPU cache for lookups of `keys` about to come (a pipelined batch): first the
    /// chain head of every key, then the item each head names, so the misses of the batch
    /// overlap instead of stalling one lookup after another. Takes no lock and changes nothing.
    pub fn prefetch(&self, keys: &[&[u8]]) {
        let guard = crossbeam_epoch::pin();
        let mut located: SmallVec<[(u64, usize); 16]> = SmallVec::new();
        for key in keys {
            let hash = self.hasher.hash_one(key);
            let idx = self.shard_index(hash);
            self.index[idx].prefetch_head(hash, &guard);
            located.push((hash, idx));
        }
        for (hash, idx) in located {
            self.index[idx].prefetch_item(hash, &guard);
        }
    }

    fn shard_index(&self, hash: u64) -> usize {
        if self.shard_shift == 64 {
            0
        } else {
            (hash >> self.shard_shift) as usize
        }
    }

    fn locate(&self, key: &[u8]) -> (u64, &Mutex<Shard>, usize) {
        let hash = self.hasher.hash_one(key);
        let idx = self.shard_index(hash);
        (hash, &self.shards[idx], idx)
    }

    /// The next item sequence number. It is the cas unique clients see (when cas is on) and
    /// the stamp `flush_all` compares against; like memcached's cas counter, every store, every
    /// in-place incr/decr and every `flush_all` advances it.
    fn next_cas(&self) -> u64 {
        self.cas.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The cas unique a client sees for an item stamped `seq`.
    fn visible_cas(&self, seq: u64) -> u64 {
        if self.use_cas {
            seq
        } else {
            0
        }
    }

    /// Makes every item stored so far invalid: items stamped below the new watermark are
    /// dropped on access and swept by [`Store::housekeep`].
    fn flush_now(&self) {
        let mark = self.next_cas() + 1;
        self.flushed_below.fetch_max(mark, Ordering::AcqRel);
    }

    /// Applies a delayed `flush_all` whose time has come.
    fn check_flush(&self, now: u32) {
        let at = self.flush_at.load(Ordering::Acquire);
        if at != 0
            && at <= now
            && self
                .flush_at
                .compare_exchange(at, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.flush_now();
        }
    }

    /// Looks up a key, dropping it if expired or flushed.
    fn lookup(&self, shard: &mut Shard, hash: u64, key: &[u8], now: u32) -> Lookup {
        match shard.find(hash, key) {
            None => Lookup::Miss,
            Some(slot) if shard.item(slot).is_expired(now) => {
                let it = shard.unlink(slot, Removal::Expired, now);
                self.mem.release(it.charge(&self.slabs, self.use_cas));
                Lookup::Expired
            }
            Some(slot) if shard.item(slot).cas < self.flushed_below.load(Ordering::Acquire) => {
                let it = shard.unlink(slot, Removal::Client, now);
                self.mem.release(it.charge(&self.slabs, self.use_cas));
                Lookup::Flushed
            }
            Some(slot) => Lookup::Hit(slot),
        }
    }

    /// Looks `key` up; on a hit, lends the item to `f` under the shard lock (`f` must be quick:
    /// copy what it needs). With `touch`, also sets a new client exptime (gat).
    pub fn get<R>(
        &self,
        key: &[u8],
        touch: Option<i64>,
        f: impl FnOnce(ItemRef<'_>) -> R,
    ) -> Option<R> {
        let now = self.now();
        self.check_flush(now);
        let exptime = touch.map(|t| self.rel_exptime(t));
        let (hash, lock, _) = self.locate(key);
        let mut shard = lock.lock();
        // memcached counts a gat as a touch, not as a get.
        if exptime.is_some() {
            shard.stats.cmd_touch += 1;
        } else {
            shard.stats.cmd_get += 1;
        }
        match self.lookup(&mut shard, hash, key, now) {
            Lookup::Hit(slot) => {
                if let Some(e) = exptime {
                    shard.set_exptime(slot, e);
                    shard.item_mut(slot).time = now;
                    shard.stats.touch_hits += 1;
                    let class = shard.item(slot).class;
                    shard.class_mut(class).touch_hits += 1;
                } else {
                    shard.stats.get_hits += 1;
                }
                let it = shard.item_mut(slot);
                if it.fetched() {
                    it.set_active(true);
                }
                it.set_fetched(true);
                let class = it.class;
                shard.class_mut(class).get_hits += 1;
                let it = shard.item(slot);
                Some(f(ItemRef {
                    key: it.key(),
                    value: it.value(),
                    flags: it.flags,
                    cas: self.visible_cas(it.cas),
                    item: it,
                }))
            }
            miss => {
                if exptime.is_some() {
                    shard.stats.touch_misses += 1;
                } else {
                    shard.stats.get_misses += 1;
                    match miss {
                        Lookup::Expired => shard.stats.get_expired += 1,
                        Lookup::Flushed => shard.stats.get_flushed += 1,
                        _ => {}
                    }
                }
                None
            }
        }
    }

    /// Runs a storage command.
    pub fn store(
        &self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: i64,
        value: &[u8],
    ) -> StoreOutcome {
        self.store_ext(mode, key, flags, exptime, value, StoreOptions::default())
            .0
    }

    /// [`Store::store`] with the meta protocol's options; also returns the stored item's cas
    /// unique (0 when nothing was stored or cas is off).
    pub fn store_ext(
        &self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: i64,
        value: &[u8],
        opts: StoreOptions,
    ) -> (StoreOutcome, u64) {
        let now = self.now();
        self.check_flush(now);
        let rel = self.rel_exptime(exptime);
        let (hash, lock, home) = self.locate(key);
        let mut evictions = 0;
        loop {
            let mut shard = lock.lock();
            let found = self.lookup(&mut shard, hash, key, now);
            let existing = match found {
                Lookup::Hit(s) => Some(s),
                _ => None,
            };
            // Decide first: a command whose condition fails needs no memory.
            let mut stale = None;
            let verdict = match (mode, existing) {
                (StoreMode::Add, Some(slot)) => {
                    // memcached promotes the item it refused to overwrite.
                    shard.bump(slot);
                    Some(StoreOutcome::NotStored)
                }
                (StoreMode::Replace | StoreMode::Append | StoreMode::Prepend, None) => {
                    Some(StoreOutcome::NotStored)
                }
                (StoreMode::Cas(_), None) => {
                    shard.stats.cas_misses += 1;
                    Some(StoreOutcome::NotFound)
                }
                (StoreMode::Cas(unique), Some(slot))
                    if opts.invalidate && self.use_cas && unique < shard.item(slot).cas =>
                {
                    // An older writer may still store, but only as a stale value that keeps
                    // the old expiry and win token.
                    let old = shard.item(slot);
                    stale = Some((old.exptime, old.token_sent()));
                    None
                }
                (StoreMode::Append | StoreMode::Prepend, Some(slot))
                    if opts
                        .compare_cas
                        .is_some_and(|c| c != self.visible_cas(shard.item(slot).cas)) =>
                {
                    Some(StoreOutcome::Exists)
                }
                (StoreMode::Cas(unique), Some(slot))
                    if !self.use_cas || shard.item(slot).cas != unique =>
                {
                    shard.stats.cas_badval += 1;
                    let class = shard.item(slot).class;
                    shard.class_mut(class).cas_badval += 1;
                    Some(StoreOutcome::Exists)
                }
                _ => None,
            };
            if evictions == 0 {
                shard.stats.cmd_set += 1;
            }
            if let Some(v) = verdict {
                return (v, 0);
            }
            // The new item's size, flags and expiry (append/prepend keep the old ones).
            let (vlen, flags, rel) = match (mode, existing) {
                (StoreMode::Append | StoreMode::Prepend, Some(s)) => {
                    let it = shard.item(s);
                    (it.value().len() + value.len(), it.flags, it.exptime)
                }
                _ => (value.len(), flags, stale.map_or(rel, |(old, _)| old)),
            };
            let total = slab::item_total(key.len(), vlen, flags, self.use_cas);
            let Some(class) = self.slabs.class_for(total) else {
                if matches!(mode, StoreMode::Append | StoreMode::Prepend) {
                    // memcached fails to allocate the combined item: NOT_STORED.
                    return (StoreOutcome::NotStored, 0);
                }
                shard.stats.store_too_large += 1;
                if mode == StoreMode::Set {
                    // memcached drops the old value rather than leave it stale.
                    if let Some(slot) = existing {
                        let it = shard.unlink(slot, Removal::Client, now);
                        self.mem.release(it.charge(&self.slabs, self.use_cas));
                    }
                }
                return (StoreOutcome::TooLarge, 0);
            };
            let charge = self.slabs.charge(total) as u64;
            // Free memory: first in this shard (same class, then any), then, one item at a
            // time, in other shards without holding this shard's lock.
            let mut reserved = self.mem.try_reserve(charge);
            while !reserved
                && (self.evict_in(&mut shard, Some(class), existing, now)
                    || self.evict_in(&mut shard, None, existing, now))
            {
                reserved = self.mem.try_reserve(charge);
            }
            if !reserved {
                drop(shard);
                evictions += 1;
                if evictions < MAX_EVICTION_ROUNDS && self.evict_elsewhere(home, class, now) {
                    continue;
                }
                let mut shard = lock.lock();
                shard.class_mut(class).outofmemory += 1;
                if matches!(mode, StoreMode::Append | StoreMode::Prepend) {
                    return (StoreOutcome::NotStored, 0);
                }
                shard.stats.store_no_memory += 1;
                if mode == StoreMode::Set {
                    if let Lookup::Hit(slot) = self.lookup(&mut shard, hash, key, now) {
                        let it = shard.unlink(slot, Removal::Client, now);
                        self.mem.release(it.charge(&self.slabs, self.use_cas));
                    }
                }
                return (StoreOutcome::NoMemory, 0);
            }
            let mut item = {
                let parts: [&[u8]; 2] = match (mode, existing) {
                    (StoreMode::Append, Some(s)) => [shard.item(s).value(), value],
                    (StoreMode::Prepend, Some(s)) => [value, shard.item(s).value()],
                    _ => [value, &[]],
                };
                Item::new(key, &parts, flags, rel, class)
            };
            item.cas = self.next_cas();
            item.time = now;
            item.set_stale(stale.is_some());
            item.set_token_sent(stale.is_some_and(|(_, sent)| sent));
            // memcached's append/prepend build a new item that loses the base64 key mark.
            item.set_key_binary(
                opts.key_binary && !matches!(mode, StoreMode::Append | StoreMode::Prepend),
            );
            let cas = self.visible_cas(item.cas);
            if let Some(slot) = existing {
                let old = shard.unlink(slot, Removal::Client, now);
                self.mem.release(old.charge(&self.slabs, self.use_cas));
            }
            shard.link(hash, item);
            let cs = shard.class_mut(class);
            cs.cmd_set += 1;
            if let StoreMode::Cas(_) = mode {
                cs.cas_hits += 1;
                shard.stats.cas_hits += 1;
            }
            return (StoreOutcome::Stored, cas);
        }
    }

    /// Evicts one item from `shard` (class `class`, or any), never the slot `keep`.
    fn evict_in(&self, shard: &mut Shard, class: Option<u8>, keep: Option<u32>, now: u32) -> bool {
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
    fn evict_elsewhere(&self, home: usize, class: u8, now: u32) -> bool {
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
                let it = shard.unlink(slot, Removal::Client, now);
                self.mem.release(it.charge(&self.slabs, self.use_cas));
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

    /// True if `key` holds a live client item (no counter changes).
    pub fn holds(&self, key: &[u8]) -> bool {
        let now = self.now();
        self.check_flush(now);
        let (hash, lock, _) = self.locate(key);
        let mut shard = lock.lock();
        matches!(self.lookup(&mut shard, hash, key, now), Lookup::Hit(_))
    }

    /// Deletes `key`; true if it was there.
    pub fn delete(&self, key: &[u8]) -> bool {
        let now = self.now();
        self.check_flush(now);
        let (hash, lock, _) = self.locate(key);
        let mut shard = lock.lock();
        match self.lookup(&mut shard, hash, key, now) {
            Lookup::Hit(slot) => {
                let it = shard.unlink(slot, Removal::Client, now);
                self.mem.release(it.charge(&self.slabs, self.use_cas));
                shard.stats.delete_hits += 1;
                shard.class_mut(it.class).delete_hits += 1;
                true
            }
            _ => {
                shard.stats.delete_misses += 1;
                false
            }
        }
    }

    /// incr (`incr` true) or decr by `delta`, in place when the new number fits: incr wraps at
    /// 2^64, decr stops at 0, and a shorter result is padded with spaces as memcached does.
    pub fn delta(&self, key: &[u8], incr: bool, delta: u64) -> DeltaOutcome {
        let now = self.now();
        self.check_flush(now);
        let (hash, lock, _) = self.locate(key);
        let mut shard = lock.lock();
        let slot = match self.lookup(&mut shard, hash, key, now) {
            Lookup::Hit(s) => s,
            _ => {
                if incr {
                    shard.stats.incr_misses += 1;
                } else {
                    shard.stats.decr_misses += 1;
                }
                return DeltaOutcome::NotFound;
            }
        };
        match self.apply_delta(&mut shard, slot, incr, delta, now) {
            Some(v) => DeltaOutcome::Value(v),
            None => DeltaOutcome::NonNumeric,
        }
    }

    /// incr/decr of the item in `slot` under its shard lock; `None` if its value is not a
    /// number. The new number overwrites the old in place (space padded) when it fits, and
    /// the item gets a new cas.
    fn apply_delta(
        &self,
        shard: &mut Shard,
        slot: u32,
        incr: bool,
        delta: u64,
        now: u32,
    ) -> Option<u64> {
        let it = shard.item(slot);
        let current = (!it.value().is_empty())
            .then(|| numeric::parse_u64(it.value()))
            .flatten()?;
        let new = if incr {
            current.wrapping_add(delta)
        } else {
            current.saturating_sub(delta)
        };
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(new).as_bytes();
        let cas = self.next_cas();
        let class = it.class;
        if digits.len() <= it.value().len() {
            let it = shard.item_mut(slot);
            let v = it.value_mut();
            v[..digits.len()].copy_from_slice(digits);
            v[digits.len()..].fill(b' ');
            it.cas = cas;
        } else {
            let total = slab::item_total(it.key().len(), digits.len(), it.flags, self.use_cas);
            let new_class = self.slabs.class_for(total).unwrap_or(class);
            let charge = self.slabs.charge(total);
            let old_charge = it.charge(&self.slabs, self.use_cas);
            // A counter grows by a few bytes at most: take them even past the limit rather
            // than fail an increment; the next store evicts to pay it back.
            self.mem.force_reserve(charge as u64);
            self.mem.release(old_charge);
            shard.replace_data(slot, digits, new_class);
            // memcached links a new item here: it starts unfetched, fresh and not stale.
            let it = shard.item_mut(slot);
            it.cas = cas;
            it.set_fetched(false);
            it.set_active(false);
            it.set_stale(false);
            it.set_token_sent(false);
            it.set_key_binary(false);
        }
        shard.item_mut(slot).time = now;
        let class = shard.item(slot).class;
        if incr {
            shard.stats.incr_hits += 1;
            shard.class_mut(class).incr_hits += 1;
        } else {
            shard.stats.decr_hits += 1;
            shard.class_mut(class).decr_hits += 1;
        }
        Some(new)
    }

    /// Sets a new exptime on `key`; true if it was there.
    pub fn touch(&self, key: &[u8], exptime: i64) -> bool {
        let now = self.now();
        self.check_flush(now);
        let rel = self.rel_exptime(exptime);
        let (hash, lock, _) = self.locate(key);
        let mut shard = lock.lock();
        shard.stats.cmd_touch += 1;
        match self.lookup(&mut shard, hash, key, now) {
            Lookup::Hit(slot) => {
                shard.set_exptime(slot, rel);
                let it = shard.item_mut(slot);
                it.time = now;
                // A touch is a fetch to memcached: it marks the item fetched (active if it was).
                if it.fetched() {
                    it.set_active(true);
                }
                it.set_fetched(true);
                shard.bump(slot);
                shard.stats.touch_hits += 1;
                let class = shard.item(slot).class;
                shard.class_mut(class).touch_hits += 1;
                true
            }
            _ => {
                shard.stats.touch_misses += 1;
                false
            }
        }
    }

    /// `flush_all [delay]`: with no or a non-positive delay every item goes now; otherwise
    /// items go when the delay (read as an exptime) passes, one second early as memcached's
    /// `oldest_live = realtime(delay) - 1` does.
    pub fn flush_all(&self, delay: i64) {
        let now = self.now();
        if delay > 0 {
            let at = self.rel_exptime(delay).saturating_sub(1);
            if at == 0 {
                // An absolute time already past: memcached's oldest_live becomes 0, a no-op
                // that still takes a cas unique.
                self.next_cas();
                return;
            }
            if at > now {
                self.flush_at.store(at, Ordering::Release);
                return;
            }
        }
        self.flush_at.store(0, Ordering::Release);
        self.flush_now();
    }

    /// Drops the items a `flush_all` invalidated, one shard lock at a time.
    fn sweep_flushed(&self, now: u32) {
        let mark = self.flushed_below.load(Ordering::Acquire);
        if self.swept_below.swap(mark, Ordering::AcqRel) == mark {
            return;
        }
        for lock in self.shards.iter() {
            let mut shard = lock.lock();
            let freed = shard.remove_older_than(mark, now);
            self.mem.release(freed);
        }
    }

    /// Background work: applies due flushes and reclaims expired items from every shard's
    /// timing wheel, taking each lock for at most `batch` wheel entries at a time. Returns the
    /// number of items reclaimed.
    pub fn housekeep(&self, batch: usize) -> usize {
        let now = self.now();
        self.check_flush(now);
        self.sweep_flushed(now);
        let mut reclaimed = 0;
        for lock in self.shards.iter() {
            loop {
                let mut budget = batch;
                let mut shard = lock.lock();
                while let Some(slot) = shard.next_expired(now, &mut budget) {
                    let it = shard.unlink(slot, Removal::Expired, now);
                    self.mem.release(it.charge(&self.slabs, self.use_cas));
                    reclaimed += 1;
                }
                if budget > 0 {
                    break;
                }
            }
        }
        reclaimed
    }

    /// Counters summed over all shards.
    pub fn stats(&self) -> ShardStats {
        let mut total = ShardStats::default();
        for lock in self.shards.iter() {
            total.add(&lock.lock().stats);
        }
        total
    }

    /// Zeroes the resettable counters (`stats reset`).
    pub fn reset_stats(&self) {
        for lock in self.shards.iter() {
            lock.lock().stats.reset();
        }
    }

    /// Per-class figures summed over the shards, for classes that ever held items.
    pub fn class_stats(&self) -> Vec<ClassStats> {
        let now = self.now();
        let mut out: Vec<ClassStats> = (1..=self.slabs.len() as u8)
            .map(|id| ClassStats {
                id,
                chunk_size: self.slabs.chunk_size(id),
                per_page: self.slabs.per_page(id),
                ..Default::default()
            })
            .collect();
        for lock in self.shards.iter() {
            let shard = lock.lock();
            for (c, s) in out.iter_mut().zip(shard.classes().iter().skip(1)) {
                c.counters.add(&s.counters);
            }
            for (c, age) in out.iter_mut().zip(shard.tail_ages(now).into_iter().skip(1)) {
                c.age = c.age.max(age);
            }
        }
        out
    }

    /// Slab bytes charged to items now.
    pub fn memory_used(&self) -> u64 {
        self.mem.used.load(Ordering::Acquire)
    }

    /// The memory limit in bytes.
    pub fn memory_limit(&self) -> u64 {
        self.mem.limit.load(Ordering::Acquire)
    }

    /// Changes the memory limit (`cache_memlimit`); later stores evict down to it.
    pub fn set_memory_limit(&self, bytes: u64) {
        self.mem.limit.store(bytes, Ordering::Release);
    }

    /// Entries scheduled in the timing wheels (for tests and stats).
    pub fn scheduled(&self) -> usize {
        self.shards.iter().map(|l| l.lock().scheduled()).sum()
    }

    /// Items currently linked.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|l| l.lock().len()).sum()
    }

    /// True when no item is linked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Binary-protocol delete with a cas unique: deletes `key` only if its cas is `cas`. Counts
    /// as memcached's binary delete does: a hit or a miss, nothing on a cas mismatch.
    pub fn delete_cas(&self, key: &[u8], cas: u64) -> MetaDelete {
        let now = self.now();
        self.check_flush(now);
        let (hash, lock, _) = self.locate(key);
        let mut shard = lock.lock();
        match self.lookup(&mut shard, hash, key, now) {
            Lookup::Hit(slot) if self.visible_cas(shard.item(slot).cas) != cas => {
                MetaDelete::Exists
            }
            Lookup::Hit(slot) => {
                let it = shard.unlink(slot, Removal::Client, now);
                self.mem.release(it.charge(&self.slabs, self.use_cas));
                shard.stats.delete_hits += 1;
                shard.class_mut(it.class).delete_hits += 1;
                MetaDelete::Deleted
            }
            _ => {
                shard.stats.delete_misses += 1;
                MetaDelete::NotFound
            }
        }
    }
}

fn rel_now(clock: &SharedClock) -> u32 {
    rel_secs(clock.now_nanos())
}

/// The store's relative second of a clock reading.
fn rel_secs(nanos: u64) -> u32 {
    (nanos / 1_000_000_000).min(u64::from(u32::MAX - TIME_BASE)) as u32 + TIME_BASE
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_shared;
