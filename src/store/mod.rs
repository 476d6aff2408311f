//! The item store: power-of-two shards picked by the key's hash, each behind its own lock, with
//! memcached's slab-class memory accounting, a memory limit enforced by LRU eviction, a timing
//! wheel per shard that reclaims expired items in the background, and atomic read-modify-write
//! commands. It knows nothing of sockets or wire formats and reads time only from a [`Clock`](crate::clock::Clock).
//!
//! Here: the configuration, the request and outcome types, the `Store` and its locked lookup.
//! `classic.rs` has the classic commands, `meta.rs` the meta ones, `memory.rs` the accounting
//! and eviction, `time.rs` the clock, exptimes, flushes and background reclamation, `stats.rs`
//! the counters, `persist.rs` the snapshot of items; `shard.rs`, `item.rs`, `slab.rs` and
//! `wheel.rs` the structures under them.

mod classic;
mod dump;
mod item;
mod memory;
mod meta;
mod persist;
mod shard;
mod stats;
mod time;
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
pub use dump::{DumpCursor, ItemMeta};
pub use item::SharedValue;
use memory::MemAccount;
pub use meta::{DeleteOutcome, MetaArith, MetaGet, MetaItem};
pub use persist::SavedItem;
use shard::{Item, Removal, Shard, ShardIndex};
use slab::SlabClasses;
pub use smallvec;
pub use stats::{ClassCounters, ClassStats, ShardStats};
use time::rel_now;

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

/// What an incr/decr does ([`Store::arith`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArithOptions {
    /// incr (true) or decr.
    pub incr: bool,
    /// Amount.
    pub delta: u64,
    /// On a miss, create the item with this number and client exptime (binary, `ma N`).
    pub vivify: Option<(u64, i64)>,
    /// Only if the item's cas unique is this one (0 matches any).
    pub cas: Option<u64>,
    /// Count an expired or flushed item met by the lookup in `get_expired`/`get_flushed`, as
    /// memcached's meta and binary paths do (its classic text incr does not).
    pub count_expired: bool,
}

impl ArithOptions {
    /// A plain text `incr`/`decr`: no creation, no cas.
    pub fn classic(incr: bool, delta: u64) -> ArithOptions {
        ArithOptions {
            incr,
            delta,
            vivify: None,
            cas: None,
            count_expired: false,
        }
    }
}

/// Outcome of incr/decr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The new value and the item's cas unique.
    Value {
        /// The number now stored.
        value: u64,
        /// Its cas unique (0 when cas is off).
        cas: u64,
    },
    /// No such item (and no creation asked).
    NotFound,
    /// Cas mismatch.
    Exists,
    /// The value is not a decimal number.
    NonNumeric,
    /// No memory for a created item.
    NoMemory,
}

/// What a delete does ([`Store::delete`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Only if the item's cas unique is this one.
    pub cas: Option<u64>,
    /// `md I`: mark the item stale (new cas, win token released) instead of removing it.
    pub stale: bool,
    /// With `stale`: a new client exptime.
    pub exptime: Option<i64>,
    /// memcached's meta accounting: an expired or flushed item met counts in
    /// `get_expired`/`get_flushed`, and a cas mismatch in `delete_misses` (its text and
    /// binary deletes count neither).
    pub meta: bool,
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

/// `key`'s shard, locked, and what it holds under the key: how a command on one key starts.
struct Opened<'s> {
    shard: parking_lot::MutexGuard<'s, Shard>,
    hash: u64,
    now: u32,
    found: Lookup,
}

/// Lookup result inside a shard.
enum Lookup {
    Hit(u32),
    Miss,
    Expired,
    Flushed,
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
            mem: MemAccount::new(cfg.memory_limit),
            clock,
            cas: AtomicU64::new(0),
            use_cas: cfg.use_cas,
            no_evict: cfg.no_evict,
            flush_at: AtomicU32::new(0),
            flushed_below: AtomicU64::new(0),
            swept_below: AtomicU64::new(0),
        }
    }

    /// The slab classes.
    pub fn slabs(&self) -> &SlabClasses {
        &self.slabs
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
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

    /// Reads the clock, applies a due flush, locks `key`'s shard and looks the key up.
    fn open(&self, key: &[u8]) -> Opened<'_> {
        let now = self.now();
        self.check_flush(now);
        let (hash, lock, _) = self.locate(key);
        let mut shard = lock.lock();
        let found = self.lookup(&mut shard, hash, key, now);
        Opened {
            shard,
            hash,
            now,
            found,
        }
    }

    /// Unlinks the item in `slot` (`how` says why, for the counters) and gives its memory
    /// back to the budget.
    fn unlink(&self, shard: &mut Shard, slot: u32, how: Removal, now: u32) -> Item {
        let it = shard.unlink(slot, how, now);
        self.mem.release(it.charge(&self.slabs, self.use_cas));
        it
    }

    /// Looks up a key, dropping it if expired or flushed.
    fn lookup(&self, shard: &mut Shard, hash: u64, key: &[u8], now: u32) -> Lookup {
        match shard.find(hash, key) {
            None => Lookup::Miss,
            Some(slot) if shard.item(slot).is_expired(now) => {
                self.unlink(shard, slot, Removal::Expired, now);
                Lookup::Expired
            }
            Some(slot) if shard.item(slot).cas < self.flushed_below.load(Ordering::Acquire) => {
                self.unlink(shard, slot, Removal::Client, now);
                Lookup::Flushed
            }
            Some(slot) => Lookup::Hit(slot),
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_shared;
