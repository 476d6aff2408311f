//! Rate-limit state, apart from cache data: its own memory budget, compact entries, and
//! decisions that take no shard-wide lock.
//!
//! A subject (a key, and for a key named twice in one request its repeat number) is known by
//! two hashes: a 64-bit identity hash, 45 bits of which its entry keeps (beside the algorithm
//! and the stats [`Group`]), and a 32-bit tag kept in the index slot (77 bits: no two
//! subjects are confused in practice), so no key bytes are stored. An entry
//! is 32 bytes (a gcra arrival time, a fixed window) or 40 (a sliding window), in arenas that
//! never move; the index costs 9 to 13 bytes more per subject.
//!
//! - **Decisions**: a single-subject decision on an existing state locks only that entry (a
//!   compare-and-swap of its sequence word, [`entry`]); creating a subject, changing the width
//!   of its entry, removing it and rebuilding an index take the shard's lock.
//! - **Memory**: the budget (`-o ratelimit_memory`) is split between the shards. A full shard
//!   first drops a state that is full again (it carries no information: no decision changes),
//!   then, by default, the state closest to full among a sample of 16; with
//!   `-o ratelimit_full=deny` it refuses new subjects instead. Cache items never compete with
//!   limiter states for memory.
//! - **Stats groups**: a state carries the policy and key-prefix rows of the request that
//!   created it ([`Group`]); each shard counts its live states per row under its lock, so
//!   `stats ratelimit` reads live subjects per policy and prefix without walking the states.
//! - **Expiry**: a state past its expiry (the second it is full again) reads as absent, and
//!   the housekeeper frees such states in bounded sweeps.

mod arena;
mod entry;
mod group;
mod index;
mod many;
mod pack;
mod shard;
mod sync;
#[cfg(test)]
mod tests;

use crossbeam_utils::CachePadded;

use crate::clock::SharedClock;
use crate::ratelimit::State;
pub use group::{Group, GroupLive};
pub use many::Writes;
pub use shard::{Found, Ident, Refused, Write, NEVER};
use shard::{Room, Shard};

/// Shards of the limiter (creation and eviction contend per shard; decisions do not).
const SHARDS: usize = 64;

/// Limiter sizing and policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    /// Bytes the limiter states may use (`-o ratelimit_memory`, in megabytes there).
    pub memory_limit: u64,
    /// When full, evict the state closest to full (true) or refuse new subjects (false,
    /// `-o ratelimit_full=deny`).
    pub evict: bool,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        LimiterConfig {
            memory_limit: 64 << 20,
            evict: true,
        }
    }
}

/// Counters of the whole limiter, for `stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LimiterStats {
    /// Live subjects' states.
    pub keys: u64,
    /// Bytes of entries and indexes.
    pub bytes: u64,
    /// The budget.
    pub limit_maxbytes: u64,
    /// States dropped before they were full again.
    pub evictions: u64,
    /// States dropped because they were full again.
    pub reclaimed: u64,
}

/// A subject: a key, and which of its repeats in one request (0 for the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The key.
    pub key: &'a [u8],
    /// 0 for the key's first limit in a request, 1 for its second...
    pub repeat: u8,
    /// The stats group a state created for the subject counts under (not part of its
    /// identity: a later request of another group finds the same state, which keeps its own).
    pub group: Group,
}

impl<'a> Subject<'a> {
    /// The first subject of `key`, in no stats group.
    pub fn of(key: &'a [u8]) -> Subject<'a> {
        Subject {
            key,
            repeat: 0,
            group: Group::NONE,
        }
    }
}

/// A state to write and how long until it is full again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewState {
    /// The state.
    pub state: State,
    /// Nanoseconds from now until it is full again.
    pub ttl_ns: u128,
}

/// The limiter.
pub struct Limiter {
    shards: Box<[CachePadded<Shard>]>,
    id_hasher: ahash::RandomState,
    tag_hasher: ahash::RandomState,
    seeds: [u64; 8],
    clock: SharedClock,
    cfg: LimiterConfig,
}

impl Limiter {
    /// An empty limiter on `clock`, with fresh random hash seeds.
    pub fn new(cfg: LimiterConfig, clock: SharedClock) -> Limiter {
        let seeds = std::array::from_fn(|i| {
            ahash::RandomState::new().hash_one(i as u64 ^ clock.now_nanos())
        });
        Limiter::with_seeds(cfg, clock, seeds)
    }

    /// An empty limiter whose subjects hash with `seeds` (those of a snapshot it restores).
    pub fn with_seeds(cfg: LimiterConfig, clock: SharedClock, seeds: [u64; 8]) -> Limiter {
        Limiter {
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Shard::default()))
                .collect(),
            id_hasher: ahash::RandomState::with_seeds(seeds[0], seeds[1], seeds[2], seeds[3]),
            tag_hasher: ahash::RandomState::with_seeds(seeds[4], seeds[5], seeds[6], seeds[7]),
            seeds,
            clock,
            cfg,
        }
    }

    /// The hash seeds (kept by snapshots, so restored identities still match).
    pub fn seeds(&self) -> [u64; 8] {
        self.seeds
    }

    /// The configuration.
    pub fn config(&self) -> LimiterConfig {
        self.cfg
    }

    /// The clock's monotonic nanoseconds.
    pub fn now_nanos(&self) -> u64 {
        self.clock.now_nanos()
    }

    /// The shard and identity of a subject.
    pub fn ident(&self, s: Subject<'_>) -> (usize, Ident) {
        let id = self.id_hasher.hash_one((s.key, s.repeat));
        let tag = self.tag_hasher.hash_one((s.key, s.repeat));
        (tag as usize & (SHARDS - 1), Ident::new(id, tag, s.group))
    }

    /// Warms the CPU cache for decisions on `keys` about to come (a pipelined batch's
    /// subjects, first limit of each): first every subject's home index slot, then the entry
    /// each slot names, so the batch's misses overlap. Takes no lock and changes nothing.
    pub fn prefetch(&self, keys: &[&[u8]]) {
        let guard = crossbeam_epoch::pin();
        let located: crate::store::smallvec::SmallVec<[(usize, Ident); 16]> = keys
            .iter()
            .map(|&key| {
                let (s, id) = self.ident(Subject::of(key));
                self.shards[s].prefetch_slot(id, &guard);
                (s, id)
            })
            .collect();
        for (s, id) in located {
            self.shards[s].prefetch_entry(id, &guard);
        }
    }

    fn room(&self) -> Room {
        Room {
            budget: (self.cfg.memory_limit / SHARDS as u64) as usize,
            evict: self.cfg.evict,
        }
    }

    /// The expiry second of a state full again `ttl_ns` after `now_ns`.
    fn expiry(now_ns: u64, ttl_ns: u128) -> u32 {
        let at = u128::from(now_ns).saturating_add(ttl_ns);
        u32::try_from(at.div_ceil(1_000_000_000))
            .ok()
            .filter(|&s| s != NEVER)
            .unwrap_or(NEVER)
    }

    /// Decides for one subject: `f` sees its live state (`None`: none, or full again) and the
    /// time, and returns its answer and the state to write (`None`: keep). `f` may run more
    /// than once (when the subject changes under it); only the last run's write is applied.
    pub fn update_one<R>(
        &self,
        subject: Subject<'_>,
        mut f: impl FnMut(Found, u64) -> (R, Option<NewState>),
    ) -> Result<R, Refused> {
        let (s, id) = self.ident(subject);
        let now_ns = self.clock.now_nanos();
        let now_s = (now_ns / 1_000_000_000) as u32;
        let mut g = |found: Found| {
            let (r, new) = f(found, now_ns);
            let w = new.map(|n| Write {
                state: n.state,
                expiry: Self::expiry(now_ns, n.ttl_ns),
            });
            (r, w)
        };
        let shard = &self.shards[s];
        if let Some(r) = shard.update_fast(id, now_s, &mut g) {
            return Ok(r);
        }
        shard.lock().update(id, now_s, self.room(), &mut g)
    }

    /// The live state of one subject (`None`: none, or full again), read without taking any
    /// lock a writer could wait for: what `peek` needs.
    pub fn read_one(&self, subject: Subject<'_>) -> (Found, u64) {
        let (s, id) = self.ident(subject);
        let now_ns = self.clock.now_nanos();
        let now_s = (now_ns / 1_000_000_000) as u32;
        let shard = &self.shards[s];
        let found = match shard.read_fast(id, now_s) {
            Some(found) => found,
            None => shard.lock().read(id, now_s),
        };
        (found, now_ns)
    }

    /// Decides for several distinct subjects at once: `f` sees every live state and returns
    /// its answer and one write per subject; the writes are applied all or none.
    pub fn update_many<R>(
        &self,
        subjects: &[Subject<'_>],
        f: impl FnOnce(&[Found], u64) -> (R, crate::store::smallvec::SmallVec<[Option<NewState>; 4]>),
    ) -> Result<R, Refused> {
        let keys: crate::store::smallvec::SmallVec<[(usize, Ident); 4]> =
            subjects.iter().map(|&s| self.ident(s)).collect();
        let now_ns = self.clock.now_nanos();
        let now_s = (now_ns / 1_000_000_000) as u32;
        many::update_many(&self.shards, &keys, now_s, self.room(), |found| {
            let (r, news) = f(found, now_ns);
            let writes = news
                .iter()
                .map(|n| {
                    n.map(|n| Write {
                        state: n.state,
                        expiry: Self::expiry(now_ns, n.ttl_ns),
                    })
                })
                .collect();
            (r, writes)
        })
    }

    /// True if `subject` has a state (full again or not).
    pub fn contains(&self, subject: Subject<'_>) -> bool {
        let (s, id) = self.ident(subject);
        self.shards[s].lock().contains(id)
    }

    /// Forgets every state of `key` (all its repeats); true if it had any.
    pub fn reset(&self, key: &[u8]) -> bool {
        let mut any = false;
        for repeat in 0..=crate::protocol::limits::MAX_LIMITS as u8 {
            let (s, id) = self.ident(Subject {
                repeat,
                ..Subject::of(key)
            });
            any |= self.shards[s].lock().remove(id);
        }
        any
    }

    /// Forgets every state.
    pub fn flush(&self) {
        for shard in self.shards.iter() {
            shard.lock().clear();
        }
    }

    /// Frees states full again: looks at up to `budget` index slots per shard. Returns how
    /// many it freed.
    pub fn housekeep(&self, budget: usize) -> usize {
        let now_s = (self.clock.now_nanos() / 1_000_000_000) as u32;
        self.shards
            .iter()
            .map(|s| s.lock().sweep(now_s, budget))
            .sum()
    }

    /// The counters.
    pub fn stats(&self) -> LimiterStats {
        let mut st = LimiterStats {
            limit_maxbytes: self.cfg.memory_limit,
            ..LimiterStats::default()
        };
        for shard in self.shards.iter() {
            let c = shard.counters();
            st.keys += c.live;
            st.bytes += c.bytes;
            st.evictions += c.evictions;
            st.reclaimed += c.reclaimed;
        }
        st
    }

    /// Live states by stats group row, summed over the shards (each shard's lock is taken
    /// once, briefly).
    pub fn live_by_group(&self) -> GroupLive {
        let mut all = GroupLive::default();
        for shard in self.shards.iter() {
            all.add(&shard.live_by_group());
        }
        all
    }

    /// Every live state: shard, identity, state and expiry second (for snapshots).
    pub fn for_each(&self, mut f: impl FnMut(usize, Ident, State, u32)) {
        for (i, shard) in self.shards.iter().enumerate() {
            shard
                .lock()
                .for_each(|id, state, expiry| f(i, id, state, expiry));
        }
    }

    /// Puts back a state saved by [`Limiter::for_each`] under the same seeds.
    pub fn restore(
        &self,
        shard: usize,
        id: Ident,
        state: State,
        expiry: u32,
    ) -> Result<(), Refused> {
        let now_s = (self.clock.now_nanos() / 1_000_000_000) as u32;
        let mut f = |_found: Found| ((), Some(Write { state, expiry }));
        self.shards[shard % SHARDS]
            .lock()
            .update(id, now_s, self.room(), &mut f)
    }
}
