//! The classic commands: get, the storage commands, delete, incr/decr and touch (the meta
//! forms are in `meta.rs`).

use super::meta::count_miss;
use super::*;

/// What [`Store::arith_in`] changed: the item's slot, its new number, whether it was just
/// created, and (when the number outgrew its item) the old item's client exptime.
pub(super) struct ArithDone {
    pub slot: u32,
    pub value: u64,
    pub created: bool,
    pub old_exptime: Option<u32>,
}

impl Store {
    /// Looks `key` up; on a hit, lends the item to `f` under the shard lock (`f` must be quick:
    /// copy what it needs). With `touch`, also sets a new client exptime (gat).
    pub fn get<R>(
        &self,
        key: &[u8],
        touch: Option<i64>,
        f: impl FnOnce(ItemRef<'_>) -> R,
    ) -> Option<R> {
        let Opened {
            mut shard,
            now,
            found,
            ..
        } = self.open(key);
        let exptime = touch.map(|t| self.rel_exptime(t));
        // memcached counts a gat as a touch, not as a get.
        if exptime.is_some() {
            shard.stats.cmd_touch += 1;
        } else {
            shard.stats.cmd_get += 1;
        }
        match found {
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
                        self.unlink(&mut shard, slot, Removal::Client, now);
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
                        self.unlink(&mut shard, slot, Removal::Client, now);
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
                self.unlink(&mut shard, slot, Removal::Client, now);
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

    /// True if `key` holds a live client item (no counter changes).
    pub fn holds(&self, key: &[u8]) -> bool {
        matches!(self.open(key).found, Lookup::Hit(_))
    }

    /// Deletes `key` or, with `opts.stale`, marks it stale (new cas, optional new client
    /// exptime, win token released); with `opts.cas`, only if the item's cas matches.
    pub fn delete(&self, key: &[u8], opts: DeleteOptions) -> DeleteOutcome {
        let Opened {
            mut shard,
            now,
            found,
            ..
        } = self.open(key);
        let slot = match found {
            Lookup::Hit(slot) => slot,
            miss => {
                if opts.meta {
                    count_miss(&mut shard, &miss);
                }
                shard.stats.delete_misses += 1;
                return DeleteOutcome::NotFound;
            }
        };
        if opts
            .cas
            .is_some_and(|c| c != self.visible_cas(shard.item(slot).cas))
        {
            if opts.meta {
                shard.stats.delete_misses += 1;
            }
            return DeleteOutcome::Exists;
        }
        if opts.stale {
            if let Some(e) = opts.exptime {
                let rel = self.rel_exptime(e);
                shard.set_exptime(slot, rel);
            }
            let seq = self.next_cas();
            let it = shard.item_mut(slot);
            it.set_stale(true);
            it.set_token_sent(false);
            it.cas = seq;
        } else {
            let it = self.unlink(&mut shard, slot, Removal::Client, now);
            shard.stats.delete_hits += 1;
            shard.class_mut(it.class).delete_hits += 1;
        }
        DeleteOutcome::Deleted
    }

    /// incr or decr (see [`ArithOptions`]): incr wraps at 2^64, decr stops at 0, the number
    /// is rewritten in place (space padded) when it fits, as memcached does. Returns the new
    /// number and the item's cas unique.
    pub fn arith(&self, key: &[u8], opts: ArithOptions) -> ArithOutcome {
        let mut opened = self.open(key);
        match self.arith_in(&mut opened, key, opts) {
            Ok(done) => ArithOutcome::Value {
                value: done.value,
                cas: self.visible_cas(opened.shard.item(done.slot).cas),
            },
            Err(failed) => failed,
        }
    }

    /// [`Store::arith`] inside an opened shard: the item changed (or created) and its new
    /// number, or why nothing changed.
    pub(super) fn arith_in(
        &self,
        opened: &mut Opened<'_>,
        key: &[u8],
        opts: ArithOptions,
    ) -> Result<ArithDone, ArithOutcome> {
        let Opened {
            shard,
            hash,
            now,
            found,
        } = opened;
        let (shard, now) = (&mut **shard, *now);
        match *found {
            Lookup::Hit(slot) => {
                // memcached refuses an empty value before it compares the cas.
                if shard.item(slot).value().is_empty() {
                    return Err(ArithOutcome::NonNumeric);
                }
                let item_cas = self.visible_cas(shard.item(slot).cas);
                if opts.cas.is_some_and(|c| c != 0 && c != item_cas) {
                    return Err(ArithOutcome::Exists);
                }
                let (old_len, old_exptime) = {
                    let it = shard.item(slot);
                    (it.value().len(), it.exptime)
                };
                let value = self
                    .apply_delta(shard, slot, opts.incr, opts.delta, now)
                    .ok_or(ArithOutcome::NonNumeric)?;
                // A number that outgrew its item got a new one (apply_delta's longer value).
                let regrown = shard.item(slot).value().len() != old_len;
                Ok(ArithDone {
                    slot,
                    value,
                    created: false,
                    old_exptime: regrown.then_some(old_exptime),
                })
            }
            ref miss => {
                if opts.count_expired {
                    count_miss(shard, miss);
                }
                let Some((initial, exptime)) = opts.vivify else {
                    if opts.incr {
                        shard.stats.incr_misses += 1;
                    } else {
                        shard.stats.decr_misses += 1;
                    }
                    return Err(ArithOutcome::NotFound);
                };
                let mut buf = itoa::Buffer::new();
                let digits = buf.format(initial).as_bytes();
                let slot = self
                    .create_in(shard, *hash, key, digits, 0, now)
                    .ok_or(ArithOutcome::NoMemory)?;
                if exptime != 0 {
                    let rel = self.rel_exptime(exptime);
                    shard.set_exptime(slot, rel);
                }
                Ok(ArithDone {
                    slot,
                    value: initial,
                    created: true,
                    old_exptime: None,
                })
            }
        }
    }

    /// incr/decr of the item in `slot` under its shard lock; `None` if its value is not a
    /// number. The new number overwrites the old in place (space padded) when it fits, and
    /// the item gets a new cas.
    pub(super) fn apply_delta(
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
        let Opened {
            mut shard,
            now,
            found,
            ..
        } = self.open(key);
        let rel = self.rel_exptime(exptime);
        shard.stats.cmd_touch += 1;
        match found {
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
}
