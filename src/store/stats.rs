//! The store's counters: per shard and per slab class, summed for `stats`, `stats items` and
//! `stats slabs`.

use super::*;

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
