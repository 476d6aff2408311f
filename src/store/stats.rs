//! The store's counters: per shard and per slab class, summed for `stats`, `stats items` and
//! `stats slabs`.

use super::*;

/// Declares a counter struct from one list of fields, with an `add` that sums every `u64`
/// field (and keeps the larger of an optional `max` field): a counter added to the list is
/// summed over the shards without another list to keep in step.
macro_rules! counters {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $($(#[$fm:meta])* $f:ident,)*
        }
        $(max: $(#[$xm:meta])* $x:ident: u32)?
    ) => {
        $(#[$m])*
        #[derive(Debug, Default, Clone, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fm])* pub $f: u64,)*
            $($(#[$xm])* pub $x: u32,)?
        }

        impl $name {
            /// Adds `o`'s counters to these.
            fn add(&mut self, o: &$name) {
                $(self.$f += o.$f;)*
                $(self.$x = self.$x.max(o.$x);)?
            }
        }
    };
}

counters! {
    /// Counters kept per shard (under its lock) and summed for `stats` (memcached's names).
    pub struct ShardStats {
        /// Retrievals that found the key.
        get_hits,
        /// Retrievals that did not.
        get_misses,
        /// Retrievals that found the key expired.
        get_expired,
        /// Retrievals that found the key flushed.
        get_flushed,
        /// `touch`/`gat` that found the key.
        touch_hits,
        /// `touch`/`gat` that did not.
        touch_misses,
        /// Deletes that found the key.
        delete_hits,
        /// Deletes that did not.
        delete_misses,
        /// `incr` that found the key.
        incr_hits,
        /// `incr` that did not.
        incr_misses,
        /// `decr` that found the key.
        decr_hits,
        /// `decr` that did not.
        decr_misses,
        /// `cas` that stored.
        cas_hits,
        /// `cas` on a missing key.
        cas_misses,
        /// `cas` with a stale unique.
        cas_badval,
        /// Keys asked for by retrievals.
        cmd_get,
        /// Storage commands.
        cmd_set,
        /// `touch`/`gat` commands.
        cmd_touch,
        /// Live items evicted for room.
        evictions,
        /// Evicted items never read.
        evicted_unfetched,
        /// Evicted items read recently.
        evicted_active,
        /// Expired items whose memory was reused.
        reclaimed,
        /// Expired items never read.
        expired_unfetched,
        /// Items stored now (a gauge).
        curr_items,
        /// Items ever stored.
        total_items,
        /// Bytes of the items stored now (a gauge).
        bytes,
        /// Stores refused as larger than `-I`.
        store_too_large,
        /// Stores refused for want of memory.
        store_no_memory,
    }
}

impl ShardStats {
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

counters! {
    /// Counters of one slab class (per shard, or summed for reports).
    pub struct ClassCounters {
        /// Items stored.
        count,
        /// Slab bytes charged.
        charged,
        /// Bytes requested by the items (memcached's `mem_requested`).
        requested,
        /// Live items evicted.
        evicted,
        /// Evicted items that had an expiry time.
        evicted_nonzero,
        /// Evicted items never read.
        evicted_unfetched,
        /// Evicted items read recently.
        evicted_active,
        /// Expired items whose memory was reused.
        reclaimed,
        /// Expired items never read.
        expired_unfetched,
        /// Stores refused for want of memory.
        outofmemory,
        /// Retrieval hits.
        get_hits,
        /// Storage commands.
        cmd_set,
        /// Delete hits.
        delete_hits,
        /// `incr` hits.
        incr_hits,
        /// `decr` hits.
        decr_hits,
        /// `cas` hits.
        cas_hits,
        /// `cas` with a stale unique.
        cas_badval,
        /// `touch` hits.
        touch_hits,
    }
    max:
    /// Age of the last evicted item (the largest over shards when summed).
    evicted_time: u32
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

impl Store {
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
}
