//! One shard of the store: a hash table of slot numbers over a slab of items, an LRU list per
//! slab class, the shard's timing wheel, and its counters. Everything here runs under the
//! shard's lock; nothing here blocks or does I/O.

use hashbrown::HashTable;

use super::wheel::{Wheel, NO_BUCKET};
use super::{ClassCounters, ShardStats};

/// End-of-list marker for LRU links.
const NIL: u32 = u32::MAX;

/// One stored item.
#[derive(Debug)]
pub(crate) struct Item {
    /// Key bytes followed by value bytes.
    data: Box<[u8]>,
    pub cas: u64,
    pub flags: u32,
    /// Relative expiry second; 0 = never.
    pub exptime: u32,
    /// Relative second of the last store or touch.
    pub time: u32,
    prev: u32,
    next: u32,
    wheel_idx: u32,
    wheel_bucket: u16,
    key_len: u8,
    /// Slab class id (1-based).
    pub class: u8,
    /// Fetched at least once since stored.
    pub fetched: bool,
    /// Fetched since it last passed the LRU tail (second chance before eviction).
    pub active: bool,
    /// Holds server-side state (a rate limiter), not a client's value.
    pub internal: bool,
    /// Marked stale by a meta invalidation (`md I`, `ms I`).
    pub stale: bool,
    /// A meta win token (`W`) was handed out for this item.
    pub token_sent: bool,
    /// Stored by a meta command with a base64 key (`b`): meta replies show the key in base64.
    pub key_binary: bool,
    /// Slab bytes this item is charged.
    pub charge: u32,
}

impl Item {
    /// A new unlinked item.
    pub fn new(
        key: &[u8],
        value_parts: &[&[u8]],
        flags: u32,
        exptime: u32,
        class: u8,
        charge: usize,
    ) -> Item {
        let vlen: usize = value_parts.iter().map(|p| p.len()).sum();
        let mut data = Vec::with_capacity(key.len() + vlen);
        data.extend_from_slice(key);
        for p in value_parts {
            data.extend_from_slice(p);
        }
        Item {
            data: data.into_boxed_slice(),
            cas: 0,
            flags,
            exptime,
            time: 0,
            prev: NIL,
            next: NIL,
            wheel_idx: 0,
            wheel_bucket: NO_BUCKET,
            key_len: key.len() as u8,
            class,
            fetched: false,
            active: false,
            internal: false,
            stale: false,
            token_sent: false,
            key_binary: false,
            charge: charge as u32,
        }
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.data[..self.key_len as usize]
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.data[self.key_len as usize..]
    }

    /// The value, writable in place (its length is fixed).
    pub fn value_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.key_len as usize..]
    }

    /// True if expired at relative second `now`.
    pub fn is_expired(&self, now: u32) -> bool {
        self.exptime != 0 && self.exptime <= now
    }

    /// Bytes memcached reports for this item in `bytes` (key + value + overhead).
    pub fn size(&self) -> usize {
        super::slab::item_total(self.key_len as usize, self.value().len(), self.flags, true)
    }
}

/// Per-class LRU list ends plus the class's counters.
#[derive(Debug, Default, Clone)]
pub(crate) struct ClassState {
    head: u32,
    tail: u32,
    /// Counters for `stats items` / `stats slabs`.
    pub counters: ClassCounters,
}

impl ClassState {
    fn new() -> Self {
        ClassState {
            head: NIL,
            tail: NIL,
            ..Default::default()
        }
    }
}

/// Why an item leaves the shard, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// Deleted, replaced or flushed by a client.
    Client,
    /// Expired, found by the wheel or a read.
    Expired,
    /// Evicted to make room.
    Evicted,
}

/// A shard.
pub(crate) struct Shard {
    table: HashTable<u32>,
    items: Vec<Option<Item>>,
    free: Vec<u32>,
    classes: Vec<ClassState>,
    wheel: Wheel,
    hasher: ahash::RandomState,
    pub stats: ShardStats,
}

impl Shard {
    /// An empty shard with `classes` slab classes.
    pub fn new(classes: usize, now: u32, hasher: ahash::RandomState) -> Self {
        Shard {
            table: HashTable::new(),
            items: Vec::new(),
            free: Vec::new(),
            classes: (0..=classes).map(|_| ClassState::new()).collect(),
            wheel: Wheel::new(now),
            hasher,
            stats: ShardStats::default(),
        }
    }

    /// Number of linked items.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Per-class state, indexed by class id (index 0 unused).
    pub fn classes(&self) -> &[ClassState] {
        &self.classes
    }

    /// Mutable per-class counters for class `id`.
    pub fn class_mut(&mut self, id: u8) -> &mut ClassCounters {
        &mut self.classes[id as usize].counters
    }

    /// Number of entries in the timing wheel.
    pub fn scheduled(&self) -> usize {
        self.wheel.len()
    }

    /// The slot holding `key`, expired or not.
    pub fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let items = &self.items;
        self.table
            .find(hash, |&s| {
                items[s as usize].as_ref().is_some_and(|it| it.key() == key)
            })
            .copied()
    }

    /// The item in `slot`.
    pub fn item(&self, slot: u32) -> &Item {
        self.items[slot as usize].as_ref().expect("live slot")
    }

    /// The item in `slot`, mutably. Do not change `exptime` here: use [`Shard::set_exptime`].
    pub fn item_mut(&mut self, slot: u32) -> &mut Item {
        self.items[slot as usize].as_mut().expect("live slot")
    }

    /// Links a new item (whose key must not be present) and returns its slot.
    pub fn link(&mut self, hash: u64, item: Item) -> u32 {
        let class = item.class;
        let exptime = item.exptime;
        let slot = match self.free.pop() {
            Some(s) => {
                self.items[s as usize] = Some(item);
                s
            }
            None => {
                self.items.push(Some(item));
                (self.items.len() - 1) as u32
            }
        };
        let items = &self.items;
        let hasher = &self.hasher;
        self.table.insert_unique(hash, slot, |&s| {
            hasher.hash_one(items[s as usize].as_ref().expect("live slot").key())
        });
        self.lru_push_head(class, slot);
        let it = self.items[slot as usize].as_ref().expect("live slot");
        let (charge, size) = (it.charge as u64, it.size() as u64);
        let cs = &mut self.classes[class as usize];
        cs.counters.count += 1;
        cs.counters.charged += charge;
        cs.counters.requested += size;
        self.stats.curr_items += 1;
        self.stats.total_items += 1;
        if self.items[slot as usize]
            .as_ref()
            .is_some_and(|it| it.internal)
        {
            self.stats.internal_items += 1;
        }
        self.stats.bytes += size;
        if exptime != 0 {
            self.schedule(slot, exptime);
        }
        slot
    }

    /// Unlinks the item in `slot`, updates the counters for `why`, and returns it.
    pub fn unlink(&mut self, slot: u32, why: Removal, now: u32) -> Item {
        let (class, bucket, idx) = {
            let it = self.item(slot);
            (it.class, it.wheel_bucket, it.wheel_idx)
        };
        if bucket != NO_BUCKET {
            self.unschedule_at(bucket, idx);
        }
        self.lru_remove(class, slot);
        let hash = self.hasher.hash_one(self.item(slot).key());
        if let Ok(e) = self.table.find_entry(hash, |&s| s == slot) {
            e.remove();
        }
        let item = self.items[slot as usize].take().expect("live slot");
        self.free.push(slot);
        let size = item.size() as u64;
        let cs = &mut self.classes[class as usize];
        cs.counters.count -= 1;
        cs.counters.charged -= item.charge as u64;
        cs.counters.requested -= size;
        self.stats.curr_items -= 1;
        self.stats.bytes -= size;
        if item.internal {
            self.stats.internal_items -= 1;
        }
        match why {
            Removal::Client => {}
            Removal::Expired => {
                cs.counters.reclaimed += 1;
                self.stats.reclaimed += 1;
                if !item.fetched {
                    cs.counters.expired_unfetched += 1;
                    self.stats.expired_unfetched += 1;
                }
            }
            Removal::Evicted => {
                cs.counters.evicted += 1;
                cs.counters.evicted_time = now.saturating_sub(item.time);
                self.stats.evictions += 1;
                if item.exptime != 0 {
                    cs.counters.evicted_nonzero += 1;
                }
                if !item.fetched {
                    cs.counters.evicted_unfetched += 1;
                    self.stats.evicted_unfetched += 1;
                }
                if item.active {
                    cs.counters.evicted_active += 1;
                    self.stats.evicted_active += 1;
                }
            }
        }
        item
    }

    /// Changes the expiry of the item in `slot`, rescheduling it.
    pub fn set_exptime(&mut self, slot: u32, exptime: u32) {
        let (bucket, idx, old) = {
            let it = self.item(slot);
            (it.wheel_bucket, it.wheel_idx, it.exptime)
        };
        if old == exptime && (exptime == 0 || bucket != NO_BUCKET) {
            // Same expiry second: the wheel entry stays where it is.
            return;
        }
        if bucket != NO_BUCKET {
            self.unschedule_at(bucket, idx);
            self.item_mut(slot).wheel_bucket = NO_BUCKET;
        }
        self.item_mut(slot).exptime = exptime;
        if exptime != 0 {
            self.schedule(slot, exptime);
        }
    }

    /// Replaces the bytes of the item in `slot` (same key), keeping its place in the table.
    /// The caller settles the memory charge.
    pub fn replace_data(&mut self, slot: u32, value: &[u8], class: u8, charge: usize) {
        let old_class = self.item(slot).class;
        let old_size = self.item(slot).size() as u64;
        let old_charge = self.item(slot).charge as u64;
        if old_class != class {
            self.lru_remove(old_class, slot);
            self.lru_push_head(class, slot);
        }
        {
            let it = self.item_mut(slot);
            let mut data = Vec::with_capacity(it.key_len as usize + value.len());
            data.extend_from_slice(it.key());
            data.extend_from_slice(value);
            it.data = data.into_boxed_slice();
            it.class = class;
            it.charge = charge as u32;
        }
        let new_size = self.item(slot).size() as u64;
        let old = &mut self.classes[old_class as usize];
        old.counters.count -= 1;
        old.counters.charged -= old_charge;
        old.counters.requested -= old_size;
        let new = &mut self.classes[class as usize];
        new.counters.count += 1;
        new.counters.charged += charge as u64;
        new.counters.requested += new_size;
        self.stats.bytes = self.stats.bytes - old_size + new_size;
    }

    /// Moves the item in `slot` to the head of its class's LRU list.
    pub fn bump(&mut self, slot: u32) {
        let class = self.item(slot).class;
        if self.classes[class as usize].head != slot {
            self.lru_remove(class, slot);
            self.lru_push_head(class, slot);
        }
    }

    /// Chooses the item to evict from class `class` (or any class when `None`): the LRU tail,
    /// giving recently fetched items one second chance, as memcached's active bit does.
    /// Expired items found on the way are returned first. Returns `None` if the class is empty.
    pub fn eviction_victim(&mut self, class: Option<u8>, now: u32) -> Option<(u32, Removal)> {
        let class = match class {
            Some(c) => c,
            None => self.oldest_class()?,
        };
        for _ in 0..5 {
            let tail = self.classes[class as usize].tail;
            if tail == NIL {
                return None;
            }
            let it = self.item_mut(tail);
            if it.is_expired(now) {
                return Some((tail, Removal::Expired));
            }
            if it.active {
                it.active = false;
                self.bump(tail);
                continue;
            }
            return Some((tail, Removal::Evicted));
        }
        let tail = self.classes[class as usize].tail;
        (tail != NIL).then_some((tail, Removal::Evicted))
    }

    /// The class whose LRU tail is oldest.
    fn oldest_class(&self) -> Option<u8> {
        self.classes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.tail != NIL)
            .min_by_key(|(_, c)| self.item(c.tail).time)
            .map(|(i, _)| i as u8)
    }

    /// Pops the next slot the wheel says may have expired by `now`; the item is unscheduled.
    /// Returns `Some(slot)` only for items really expired; items whose deadline is still ahead
    /// are rescheduled internally and skipped. `budget` bounds the entries looked at.
    pub fn next_expired(&mut self, now: u32, budget: &mut usize) -> Option<u32> {
        while *budget > 0 {
            let slot = self.wheel.pop_due(now)?;
            *budget -= 1;
            let exptime = {
                let it = self.item_mut(slot);
                it.wheel_bucket = NO_BUCKET;
                it.exptime
            };
            if exptime != 0 && exptime <= now {
                return Some(slot);
            }
            if exptime != 0 {
                self.schedule(slot, exptime);
            }
        }
        None
    }

    /// Drops every item stamped (cas) below `mark`; returns the slab bytes freed.
    pub fn remove_older_than(&mut self, mark: u64, now: u32) -> u64 {
        let mut freed = 0;
        for slot in 0..self.items.len() as u32 {
            if self.items[slot as usize]
                .as_ref()
                .is_some_and(|it| it.cas < mark)
            {
                freed += u64::from(self.unlink(slot, Removal::Client, now).charge);
            }
        }
        freed
    }

    /// Seconds since the LRU tail of each class was stored (index = class id; 0 when empty).
    pub fn tail_ages(&self, now: u32) -> Vec<u32> {
        self.classes
            .iter()
            .map(|c| {
                if c.tail == NIL {
                    0
                } else {
                    now.saturating_sub(self.item(c.tail).time)
                }
            })
            .collect()
    }

    fn schedule(&mut self, slot: u32, exptime: u32) {
        let (bucket, idx) = self.wheel.insert(slot, exptime);
        let it = self.item_mut(slot);
        it.wheel_bucket = bucket;
        it.wheel_idx = idx;
    }

    fn unschedule_at(&mut self, bucket: u16, idx: u32) {
        if let Some(moved) = self.wheel.remove(bucket, idx) {
            self.item_mut(moved).wheel_idx = idx;
        }
    }

    fn lru_push_head(&mut self, class: u8, slot: u32) {
        let head = self.classes[class as usize].head;
        {
            let it = self.item_mut(slot);
            it.prev = NIL;
            it.next = head;
        }
        if head != NIL {
            self.item_mut(head).prev = slot;
        }
        let cs = &mut self.classes[class as usize];
        cs.head = slot;
        if cs.tail == NIL {
            cs.tail = slot;
        }
    }

    fn lru_remove(&mut self, class: u8, slot: u32) {
        let (prev, next) = {
            let it = self.item(slot);
            (it.prev, it.next)
        };
        if prev != NIL {
            self.item_mut(prev).next = next;
        } else {
            self.classes[class as usize].head = next;
        }
        if next != NIL {
            self.item_mut(next).prev = prev;
        } else {
            self.classes[class as usize].tail = prev;
        }
        let it = self.item_mut(slot);
        it.prev = NIL;
        it.next = NIL;
    }
}
