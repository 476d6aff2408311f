//! The store side of memcached's meta commands: items lent under their shard lock with the
//! metadata meta flags read and change (ttl, last access, fetched, stale, win tokens), plus
//! autovivification and invalidation. Still no wire format here: the caller encodes.

use super::shard::{Item, Shard};
use super::{
    slab, ArithOptions, ArithOutcome, Lookup, Opened, SharedValue, Store, ITEM_UPDATE_INTERVAL,
};

/// An item lent to a meta command while its shard is locked.
pub struct MetaItem<'a> {
    store: &'a Store,
    shard: &'a mut Shard,
    slot: u32,
    now: u32,
    aborted: bool,
    /// memcached answers an incr that outgrew its item from the old, unlinked copy: its
    /// expiry, which a later [`MetaItem::set_exptime`] changes without touching the new item.
    old_copy_exptime: Option<u32>,
}

/// How `mg` reads an item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaGet {
    /// On a miss, create an empty item that never expires (until the caller sets an expiry).
    pub vivify: bool,
    /// The request counts as a touch, not as a get.
    pub touch: bool,
    /// The item counts as fetched only once the reply is complete (memcached reads it that
    /// way for `h l N R T`): a reply that fails leaves it unfetched. Otherwise it counts as
    /// fetched as soon as it is found.
    pub late_bump: bool,
    /// Never count the item as fetched (`u`).
    pub no_update: bool,
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
    /// The value as a [`SharedValue`] that outlives the shard lock, when it lives in a heap
    /// block; `None` for a small inline value (copy [`MetaItem::value`]).
    pub fn shared_value(&self) -> Option<SharedValue> {
        self.it().shared_value()
    }
    /// Client flags.
    pub fn flags(&self) -> u32 {
        self.it().flags
    }
    /// The cas unique clients see.
    pub fn cas(&self) -> u64 {
        self.store.visible_cas(self.it().cas)
    }
    /// Seconds to live (negative once past the expiry a `T` or `N` just set), `None` for never.
    pub fn ttl(&self) -> Option<i64> {
        match self.exptime() {
            0 => None,
            e => Some(i64::from(e) - i64::from(self.now)),
        }
    }
    /// Seconds since the last access.
    pub fn last_access(&self) -> u32 {
        self.now.saturating_sub(self.it().time)
    }
    /// Fetched before this request.
    pub fn fetched(&self) -> bool {
        self.it().fetched()
    }
    /// Marked stale.
    pub fn stale(&self) -> bool {
        self.it().stale()
    }
    /// A win token was already handed out.
    pub fn token_sent(&self) -> bool {
        self.it().token_sent()
    }
    /// Records that a win token was handed out.
    pub fn set_token_sent(&mut self) {
        self.shard.item_mut(self.slot).set_token_sent(true);
    }
    /// Relative expiry second (0 never), for comparisons with [`Store::rel_exptime`].
    pub fn exptime(&self) -> u32 {
        self.old_copy_exptime.unwrap_or(self.it().exptime)
    }
    /// Stored with a base64 key (`ms b`): meta replies show the key in base64.
    pub fn key_binary(&self) -> bool {
        self.it().key_binary()
    }
    /// The reply failed and an error replaces it: the request counts in no statistics, and a
    /// late bump ([`MetaGet::late_bump`]) does not happen. Changes already made stay.
    pub fn abort(&mut self) {
        self.aborted = true;
    }
    /// Sets a new client exptime.
    pub fn set_exptime(&mut self, exptime: i64) {
        let rel = self.store.rel_exptime(exptime);
        match self.old_copy_exptime {
            Some(ref mut e) => *e = rel,
            None => self.shard.set_exptime(self.slot, rel),
        }
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

/// Outcome of a delete ([`Store::delete`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
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

/// memcached counts a lookup that found an expired or flushed item whatever the command.
pub(super) fn count_miss(shard: &mut Shard, miss: &Lookup) {
    match miss {
        Lookup::Expired => shard.stats.get_expired += 1,
        Lookup::Flushed => shard.stats.get_flushed += 1,
        _ => {}
    }
}

impl Store {
    /// Links a new item for `key` in `shard`, evicting in that shard if memory is short.
    pub(super) fn create_in(
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
        let mut item = Item::new(key, &[value], 0, exptime, class);
        item.cas = self.next_cas();
        item.time = now;
        Some(shard.link(hash, item))
    }

    /// `mg`: looks `key` up, creating an empty item on a miss when asked, and lends it to `f`
    /// with whether it was just created (`None` on a miss).
    pub fn meta_get<R>(
        &self,
        key: &[u8],
        how: MetaGet,
        f: impl FnOnce(Option<(&mut MetaItem<'_>, bool)>) -> R,
    ) -> R {
        let Opened {
            mut shard,
            hash,
            now,
            found,
        } = self.open(key);
        let (slot, created) = match found {
            Lookup::Hit(s) => (s, false),
            miss => {
                count_miss(&mut shard, &miss);
                let created = if how.vivify {
                    self.create_in(&mut shard, hash, key, b"", 0, now)
                } else {
                    None
                };
                match created {
                    Some(slot) => (slot, true),
                    None => {
                        // memcached counts every miss as a get, with or without T.
                        shard.stats.cmd_get += 1;
                        shard.stats.get_misses += 1;
                        return f(None);
                    }
                }
            }
        };
        let (r, aborted) = {
            let mut mi = MetaItem {
                store: self,
                shard: &mut shard,
                slot,
                now,
                aborted: false,
                old_copy_exptime: None,
            };
            let r = f(Some((&mut mi, created)));
            (r, mi.aborted)
        };
        if !aborted {
            let class = shard.item(slot).class;
            if how.touch {
                shard.stats.cmd_touch += 1;
                shard.stats.touch_hits += 1;
                shard.class_mut(class).touch_hits += 1;
            } else {
                shard.stats.cmd_get += 1;
                shard.stats.get_hits += 1;
                shard.class_mut(class).get_hits += 1;
            }
        }
        let bump = if aborted { !how.late_bump } else { true };
        if bump && !how.no_update {
            let it = shard.item_mut(slot);
            if it.fetched() {
                it.set_active(true);
            }
            it.set_fetched(true);
            if it.time + ITEM_UPDATE_INTERVAL < now {
                it.time = now;
            }
        }
        r
    }

    /// `me`: lends the item to `f` (`None` on a miss) without counting a fetch.
    pub fn meta_peek<R>(&self, key: &[u8], f: impl FnOnce(Option<&MetaItem<'_>>) -> R) -> R {
        let Opened {
            mut shard,
            now,
            found,
            ..
        } = self.open(key);
        match found {
            Lookup::Hit(slot) => f(Some(&MetaItem {
                store: self,
                shard: &mut shard,
                slot,
                now,
                aborted: false,
                old_copy_exptime: None,
            })),
            miss => {
                count_miss(&mut shard, &miss);
                f(None)
            }
        }
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
        let opts = ArithOptions {
            incr,
            delta,
            vivify: vivify.map(|v| (v, 0)),
            cas,
            count_expired: true,
        };
        let mut opened = self.open(key);
        let done = match self.arith_in(&mut opened, key, opts) {
            Ok(done) => done,
            Err(ArithOutcome::NotFound) => return MetaArith::NotFound,
            Err(ArithOutcome::Exists) => return MetaArith::Exists,
            Err(ArithOutcome::NonNumeric) => return MetaArith::NonNumeric,
            Err(ArithOutcome::NoMemory | ArithOutcome::Value { .. }) => return MetaArith::NoMemory,
        };
        let mut mi = MetaItem {
            store: self,
            shard: &mut opened.shard,
            slot: done.slot,
            now: opened.now,
            aborted: false,
            old_copy_exptime: done.old_exptime,
        };
        MetaArith::Done(f(&mut mi, done.created))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::MockClock;
    use crate::store::{DeleteOptions, StoreConfig, StoreMode, StoreOptions, StoreOutcome};

    fn store() -> Store {
        // Fewer shards under Miri, where each shard's setup is slow to interpret.
        let cfg = StoreConfig {
            shards: if cfg!(miri) { 4 } else { 64 },
            ..StoreConfig::default()
        };
        Store::new(&cfg, Arc::new(MockClock::new(1_700_000_000)))
    }

    fn fetched(s: &Store, key: &[u8]) -> bool {
        s.meta_peek(key, |it| it.expect("present").fetched())
    }

    #[test]
    fn meta_get_counts_misses_as_gets_and_aborted_replies_not_at_all() {
        let s = store();
        let touch = MetaGet {
            touch: true,
            ..MetaGet::default()
        };
        s.meta_get(b"k", touch, |found| assert!(found.is_none()));
        let st = s.stats();
        assert_eq!((st.cmd_get, st.get_misses, st.cmd_touch), (1, 1, 0));

        s.store(StoreMode::Set, b"k", 0, 0, b"v");
        let late = MetaGet {
            late_bump: true,
            ..MetaGet::default()
        };
        s.meta_get(b"k", late, |found| found.expect("hit").0.abort());
        assert!(!fetched(&s, b"k"));
        s.meta_get(b"k", MetaGet::default(), |found| {
            found.expect("hit").0.abort()
        });
        assert!(fetched(&s, b"k"));
        let st = s.stats();
        assert_eq!((st.cmd_get, st.get_hits, st.cmd_touch), (1, 0, 0));
    }

    #[test]
    fn meta_get_vivifies_without_expiry() {
        let s = store();
        let how = MetaGet {
            vivify: true,
            ..MetaGet::default()
        };
        let r = s.meta_get(b"k", how, |found| {
            let (it, created) = found.expect("created");
            (created, it.ttl(), it.value().len())
        });
        assert_eq!(r, (true, None, 0));
    }

    #[test]
    fn grown_counter_answers_from_the_old_copy() {
        let s = store();
        s.store(StoreMode::Set, b"n", 0, 0, b"9");
        let r = s.meta_arith(b"n", true, 1, None, None, |it, _| {
            it.set_exptime(-1);
            (it.value().to_vec(), it.ttl().is_some())
        });
        assert_eq!(r, MetaArith::Done((b"10".to_vec(), true)));
        // The new item kept no expiry.
        assert_eq!(s.meta_peek(b"n", |it| it.map(|it| it.ttl())), Some(None));
        // Grown in place on the next step: changes apply.
        s.meta_arith(b"n", true, 1, None, None, |it, _| it.set_exptime(-1));
        assert!(!s.meta_peek(b"n", |it| it.is_some()));
    }

    #[test]
    fn empty_value_is_non_numeric_before_the_cas_check() {
        let s = store();
        s.store(StoreMode::Set, b"n", 0, 0, b"");
        let r = s.meta_arith(b"n", true, 1, None, Some(12345), |_, _| ());
        assert_eq!(r, MetaArith::NonNumeric);
        s.store(StoreMode::Set, b"n", 0, 0, b"x");
        let r = s.meta_arith(b"n", true, 1, None, Some(12345), |_, _| ());
        assert_eq!(r, MetaArith::Exists);
    }

    #[test]
    fn stale_store_keeps_expiry_and_win_token() {
        let s = store();
        let (_, cas) = s.store_ext(
            StoreMode::Set,
            b"k",
            0,
            100,
            b"old",
            StoreOptions::default(),
        );
        let stale = DeleteOptions {
            stale: true,
            meta: true,
            ..DeleteOptions::default()
        };
        assert_eq!(s.delete(b"k", stale), DeleteOutcome::Deleted);
        s.meta_get(b"k", MetaGet::default(), |found| {
            found.expect("hit").0.set_token_sent()
        });
        let opts = StoreOptions {
            invalidate: true,
            ..StoreOptions::default()
        };
        let (outcome, _) = s.store_ext(StoreMode::Cas(cas), b"k", 0, 0, b"new", opts);
        assert_eq!(outcome, StoreOutcome::Stored);
        let seen = s.meta_peek(b"k", |it| {
            let it = it.expect("present");
            (it.stale(), it.token_sent(), it.ttl())
        });
        assert_eq!(seen, (true, true, Some(100)));
    }

    #[test]
    fn shared_value_of_a_meta_item_outlives_the_item() {
        let s = store();
        s.store(StoreMode::Set, b"small", 0, 0, b"v");
        assert!(s.meta_peek(b"small", |it| it.expect("present").shared_value().is_none()));
        s.store(StoreMode::Set, b"big", 0, 0, &[b'x'; 300]);
        let shared = s.meta_get(b"big", MetaGet::default(), |found| {
            found.expect("hit").0.shared_value().expect("a heap value")
        });
        assert_eq!(
            s.delete(b"big", DeleteOptions::default()),
            DeleteOutcome::Deleted
        );
        assert_eq!(shared.as_slice(), &[b'x'; 300][..]);
        assert_eq!(shared.len(), 300);
    }
}
