//! Time: the relative clock, exptimes, `flush_all` (immediate and delayed) and the background
//! reclamation of expired and flushed items.

use super::*;

pub(super) fn rel_now(clock: &SharedClock) -> u32 {
    rel_secs(clock.now_nanos())
}

/// The store's relative second of a clock reading.
pub(super) fn rel_secs(nanos: u64) -> u32 {
    (nanos / 1_000_000_000).min(u64::from(u32::MAX - TIME_BASE)) as u32 + TIME_BASE
}

impl Store {
    /// The store's relative time in seconds (memcached's `current_time`).
    pub fn now(&self) -> u32 {
        rel_now(&self.clock)
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

    /// Makes every item stored so far invalid: items stamped below the new watermark are
    /// dropped on access and swept by [`Store::housekeep`].
    pub(super) fn flush_now(&self) {
        let mark = self.next_cas() + 1;
        self.flushed_below.fetch_max(mark, Ordering::AcqRel);
    }

    /// Applies a delayed `flush_all` whose time has come.
    pub(super) fn check_flush(&self, now: u32) {
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
    pub(super) fn sweep_flushed(&self, now: u32) {
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
                    self.unlink(&mut shard, slot, Removal::Expired, now);
                    reclaimed += 1;
                }
                if budget > 0 {
                    break;
                }
            }
        }
        reclaimed
    }
}
