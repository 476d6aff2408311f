//! The store side of memcached's meta commands: items lent under their shard lock with the
//! metadata meta flags read and change (ttl, last access, fetched, stale, win tokens), plus
//! autovivification and invalidation. Still no wire format here: the caller encodes.

use super::shard::{Item, Removal, Shard};
use super::{slab, Lookup, Store, ITEM_UPDATE_INTERVAL};

/// An item lent to a meta command while its shard is locked.
pub struct MetaItem<'a> {
    store: &'a Store,
    shard: &'a mut Shard,
    slot: u32,
    now: u32,
}

impl MetaItem<'_> {
    fn it(&self) -> &Item {
        self.shard.item(self.slot)
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        self.it().key()
    }
    /// The value.
    pub fn value(&self) -> &[u8] {
        self.it().value()
    }
    /// Client flags.
    pub fn flags(&self) -> u32 {
        self.it().flags
    }
    /// The cas unique clients see.
    pub fn cas(&self) -> u64 {
        self.store.visible_cas(self.it().cas)
    }
    /// Seconds to live, -1 for never.
    pub fn ttl(&self) -> i64 {
        match self.it().exptime {
            0 => -1,
            e => i64::from(e) - i64::from(self.now),
        }
    }
    /// Seconds since the last access.
    pub fn last_access(&self) -> u32 {
        self.now.saturating_sub(self.it().time)
    }
    /// Fetched before this request.
    pub fn fetched(&self) -> bool {
        self.it().fetched
    }
    /// Marked stale.
    pub fn stale(&self) -> bool {
        self.it().stale
    }
    /// A win token was already handed out.
    pub fn token_sent(&self) -> bool {
        self.it().token_sent
    }
    /// Records that a win token was handed out.
    pub fn set_token_sent(&mut self) {
        self.shard.item_mut(self.slot).token_sent = true;
    }
    /// Relative expiry second (0 never), for comparisons with [`Store::rel_exptime`].
    pub fn exptime(&self) -> u32 {
        self.it().exptime
    }
    /// Sets a new client exptime.
    pub fn set_exptime(&mut self, exptime: i64) {
        let rel = self.store.rel_exptime(exptime);
        self.shard.set_exptime(self.slot, rel);
    }
    /// Slab class id.
    pub fn class(&self) -> u8 {
        self.it().class
    }
    /// memcached's `ITEM_ntotal`.
    pub fn size(&self) -> usize {
        let it = self.it();
        slab::item_total(
            it.key().len(),
            it.value().len(),
            it.flags,
            self.store.use_cas,
        )
    }
}

/// Outcome of a meta delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaDelete {
    /// Deleted (or marked stale).
    Deleted,
    /// No such item.
    NotFound,
    /// Cas mismatch.
    Exists,
}

/// Outcome of a meta arithmetic command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaArith<R> {
    /// Done; the closure's result.
    Done(R),
    /// No such item (and no autovivification).
    NotFound,
    /// Cas mismatch.
    Exists,
    /// The value is not a number.
    NonNumeric,
    /// No memory for an autovivified item.
    NoMemory,
}

impl Store {
    /// Links a new item for `key` in `shard`, evicting in that shard if memory is short.
    fn create_in(
        &self,
        shard: &mut Shard,
        hash: u64,
        key: &[u8],
        value: &[u8],
        exptime: u32,
        now: u32,
    ) -> Option<u32> {
        let total = slab::item_total(key.len(), value.len(), 0, self.use_cas);
        let class = self.slabs.class_for(total)?;
        let charge = self.slabs.charge(total) as u64;
        let mut ok = self.mem.try_reserve(charge);
        while !ok
            && (self.evict_in(shard, Some(class), None, now)
                || self.evict_in(shard, None, None, now))
        {
            ok = self.mem.try_reserve(charge);
        }
        if !ok {
            return None;
        }
        let mut item = Item::new(key, &[value], 0, exptime, class, charge as usize);
        item.cas = self.next_cas();
        item.time = now;
        Some(shard.link(hash, item))
    }

    /// `mg`: looks `key` up, creating an empty item with client exptime `vivify` on a miss when
    /// asked, and lends it to `f` with whether it was just created. `touch` counts the request
    /// as a touch (the `T` flag). Unless `no_update`, the item counts as fetched afterwards.
    pub fn meta_get<R>(
        &self,
        key: &[u8],
        vivify: Option<i64>,
        touch: bool,
        no_update: bool,
        f: impl FnOnce(Option<(&mut MetaItem<'_>, bool)>) -> R,
    ) -> R {
        let now = self.now();
        self.check_flush(now);
        let (hash, lock, _) = self.locate(key);
        let mut shard = lock.lock();
        let found = self.lookup(&mut shard, hash, key, now);
        let (slot, created) = match found {
            Lookup::Hit(s) => (Some(s), false),
            miss => {
                let rel = vivify.map(|v| self.rel_exptime(v));
                let slot = rel.and_then(|rel| self.create_in(&mut shard, hash, key, b"", rel, now));
                if slot.is_none() {
                    if touch {
                        shard.stats.cmd_touch += 1;
                        shard.stats.touch_misses += 1;
                    } else {
                        shard.stats.cmd_get += 1;
                        shard.stats.get_misses += 1;
                        match miss {
                            Lookup::Expired => shard.stats.get_expired += 1,
                            Lookup::Flushed => shard.stats.get_flushed += 1,
                            _ => {}
                        }
                    }
                    return f(None);
                }
                (slot, true)
            }
        };
        let slot = slot.expect("hit or created");
        let class = shard.item(slot).class;
        if touch {
            shard.stats.cmd_touch += 1;
            shard.stats.touch_hits += 1;
            shard.class_mut(class).touch_hits += 1;
        } else {
            shard.stats.cmd_get += 1;
            shard.stats.get_hits += 1;
            shard.class_mut(class).get_hits += 1;
        }
        let r = {
            let mut mi = MetaItem {
                store: self,
                shard: &mut shard,
                slot,
                now,
            };
            f(Some((&mut mi, created)))
        };
        if !no_update {
            let it = shard.item_mut(slot);
            if it.fetched {
                it.active = true;
            }
            it.fetched = true;
            if it.time + ITEM_UPDATE_INTERVAL < now {
                it.time = now;
            }
        }
        r
    }

    /// `md`: deletes `key`, or with `stale` marks it stale (new cas, optional new client
    /// exptime, win token released). With `cas`, only if the item's cas matches.
    pub fn meta_delete(
        &self,
        key: &[u8],
        cas: Option<u64>,
        stale: bool,
        exptime: Option<i64>,
    ) -> MetaDelete {
        let now = self.now();
        self.check_flush(now);
        let (hash, lock, _) = self.locate(key);
        let mut shard = lock.lock();
        let Lookup::Hit(slot) = self.lookup(&mut shard, hash, key, now) else {
            shard.stats.delete_misses += 1;
            return MetaDelete::NotFound;
        };
        if cas.is_some_and(|c| c != self.visible_cas(shard.item(slot).cas)) {
            shard.stats.delete_misses += 1;
            return MetaDelete::Exists;
        }
        if stale {
            if let Some(e) = exptime {
                let rel = self.rel_exptime(e);
                shard.set_exptime(slot, rel);
            }
            let seq = self.next_cas();
            let it = shard.item_mut(slot);
            it.stale = true;
            it.token_sent = false;
            it.cas = seq;
        } else {
            let it = shard.unlink(slot, Removal::Client, now);
            self.mem.release(u64::from(it.charge));
            shard.stats.delete_hits += 1;
            shard.class_mut(it.class).delete_hits += 1;
        }
        MetaDelete::Deleted
    }

    /// `ma`: incr/decr by `delta`; on a miss with `vivify` (initial value), creates the item
    /// with that number and no expiry. With a non-zero `cas`, only if the item's cas matches.
    /// `f` sees the item and whether it was created.
    pub fn meta_arith<R>(
        &self,
        key: &[u8],
        incr: bool,
        delta: u64,
        vivify: Option<u64>,
        cas: Option<u64>,
        f: impl FnOnce(&mut MetaItem<'_>, bool) -> R,
    ) -> MetaArith<R> {
        let now = self.now();
        self.check_flush(now);
        let (hash, lock, _) = self.locate(key);
        let mut shard = lock.lock();
        let (slot, created) = match self.lookup(&mut shard, hash, key, now) {
            Lookup::Hit(slot) => {
                if cas.is_some_and(|c| c != 0 && c != self.visible_cas(shard.item(slot).cas)) {
                    return MetaArith::Exists;
                }
                if self
                    .apply_delta(&mut shard, slot, incr, delta, now)
                    .is_none()
                {
                    return MetaArith::NonNumeric;
                }
                (slot, false)
            }
            _ => match vivify {
                None => {
                    if incr {
                        shard.stats.incr_misses += 1;
                    } else {
                        shard.stats.decr_misses += 1;
                    }
                    return MetaArith::NotFound;
                }
                Some(initial) => {
                    let mut buf = itoa::Buffer::new();
                    let digits = buf.format(initial).as_bytes();
                    match self.create_in(&mut shard, hash, key, digits, 0, now) {
                        Some(slot) => (slot, true),
                        None => return MetaArith::NoMemory,
                    }
                }
            },
        };
        let mut mi = MetaItem {
            store: self,
            shard: &mut shard,
            slot,
            now,
        };
        MetaArith::Done(f(&mut mi, created))
    }
}
