//! One shard of the store: a chained hash table (chain heads, links inside the items) over a
//! slab of items, an LRU list per slab class, the shard's timing wheel, and its counters.
//! Everything here runs under the shard's lock, except the prefetch hints of [`ShardIndex`];
//! nothing here blocks or does I/O.

use super::slab::SlabClasses;
use super::wheel::{Wheel, NO_BUCKET};
use super::{ClassCounters, ShardStats};

use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

pub(crate) use super::item::Item;
use super::item::NIL;

/// Chain heads a new shard starts with.
const MIN_HEADS: usize = 64;

/// The chain heads of a shard. Written only under the shard's lock; read without it (by
/// [`ShardIndex::prefetch_item`]), hence atomics, which compile to plain loads and stores.
pub(crate) struct Heads {
    slots: Box<[AtomicU32]>,
}

impl Heads {
    fn new(n: usize) -> Box<Heads> {
        Box::new(Heads {
            slots: (0..n).map(|_| AtomicU32::new(NIL)).collect(),
        })
    }

    fn get(&self, b: usize) -> u32 {
        self.slots[b].load(Ordering::Relaxed)
    }

    fn set(&self, b: usize, slot: u32) {
        self.slots[b].store(slot, Ordering::Relaxed)
    }
}

/// Where a shard's chain heads and items are, published for lock-free prefetching: a
/// pipelined batch warms the cache lines of all its keys before the first lookup takes a lock.
/// Only hints come from here: nothing read through it is trusted or written.
pub(crate) struct ShardIndex {
    heads: AtomicPtr<Heads>,
    items: AtomicPtr<Item>,
    items_len: AtomicUsize,
}

impl ShardIndex {
    /// An index for a shard not created yet ([`Shard::new`] publishes its heads).
    pub fn new() -> Arc<ShardIndex> {
        Arc::new(ShardIndex {
            heads: AtomicPtr::new(std::ptr::null_mut()),
            items: AtomicPtr::new(std::ptr::null_mut()),
            items_len: AtomicUsize::new(0),
        })
    }

    /// First pass: asks the CPU to load the chain head of `hash`.
    pub fn prefetch_head(&self, hash: u64, _guard: &crossbeam_epoch::Guard) {
        let heads = self.heads.load(Ordering::Acquire);
        if heads.is_null() {
            return;
        }
        // SAFETY: a published `Heads` is freed only through the epoch, after every guard
        // pinned when it was retired (ours included) is dropped.
        let heads = unsafe { &*heads };
        let b = hash as usize & (heads.slots.len() - 1);
        prefetch(heads.slots[b].as_ptr() as *const u8);
    }

    /// Second pass: reads the chain head of `hash` (loaded by the first pass, with luck) and
    /// asks the CPU to load the item it names. The head may be stale; the load is only a hint.
    pub fn prefetch_item(&self, hash: u64, _guard: &crossbeam_epoch::Guard) {
        let heads = self.heads.load(Ordering::Acquire);
        if heads.is_null() {
            return;
        }
        // SAFETY: as in `prefetch_head`.
        let heads = unsafe { &*heads };
        let slot = heads.slots[hash as usize & (heads.slots.len() - 1)].load(Ordering::Relaxed);
        let items = self.items.load(Ordering::Acquire);
        if slot == NIL || slot as usize >= self.items_len.load(Ordering::Acquire) {
            return;
        }
        // The address is computed, never dereferenced: a prefetch of a freed or reallocated
        // block is harmless.
        let p = items.wrapping_add(slot as usize) as *const u8;
        prefetch(p);
        prefetch(p.wrapping_add(std::mem::size_of::<Item>() - 1));
    }
}

/// Asks the CPU to bring the cache line of `p` into L1; never faults, whatever `p` is.
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only hints the cache; it does not access memory architecturally.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
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
    /// Hash chain heads (a power-of-two count), indexed by the hash's low bits.
    heads: Box<Heads>,
    /// Where [`Shard::heads`] and the items are, for lock-free prefetching.
    index: Arc<ShardIndex>,
    /// Linked items.
    live: usize,
    items: Vec<Item>,
    free: Vec<u32>,
    classes: Vec<ClassState>,
    wheel: Wheel,
    hasher: ahash::RandomState,
    /// The slab classes, to compute items' charges.
    slabs: SlabClasses,
    use_cas: bool,
    pub stats: ShardStats,
}

impl Shard {
    /// An empty shard with `classes` slab classes.
    pub fn new(
        slabs: SlabClasses,
        use_cas: bool,
        now: u32,
        hasher: ahash::RandomState,
        index: Arc<ShardIndex>,
    ) -> Self {
        let classes = slabs.len();
        let heads = Heads::new(MIN_HEADS);
        // The box's address stays put when the shard moves.
        index
            .heads
            .store(&*heads as *const Heads as *mut Heads, Ordering::Release);
        Shard {
            heads,
            index,
            live: 0,
            items: Vec::new(),
            free: Vec::new(),
            classes: (0..=classes).map(|_| ClassState::new()).collect(),
            wheel: Wheel::new(now),
            hasher,
            slabs,
            use_cas,
            stats: ShardStats::default(),
        }
    }

    /// Slab bytes the item in `slot` is charged.
    pub fn charge(&self, slot: u32) -> u64 {
        self.item(slot).charge(&self.slabs, self.use_cas)
    }

    /// Number of linked items.
    pub fn len(&self) -> usize {
        self.live
    }

    /// The linked items.
    pub fn live_items(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|it| it.is_live())
    }

    /// The live items in slots `from..from + n`, and the slot after them (`None`: the end).
    pub fn live_items_in(
        &self,
        from: usize,
        n: usize,
    ) -> (impl Iterator<Item = &Item>, Option<usize>) {
        let end = from.saturating_add(n).min(self.items.len());
        let items = self.items.get(from..end).unwrap_or_default();
        let next = (end < self.items.len()).then_some(end);
        (items.iter().filter(|it| it.is_live()), next)
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
        let mut s = self.heads.get(self.bucket(hash));
        while s != NIL {
            let it = &self.items[s as usize];
            if it.key() == key {
                return Some(s);
            }
            s = it.hnext;
        }
        None
    }

    fn bucket(&self, hash: u64) -> usize {
        hash as usize & (self.heads.slots.len() - 1)
    }

    /// Doubles the chain heads once the items outnumber them 3:2, as memcached's table does.
    fn maybe_grow(&mut self) {
        let n = self.heads.slots.len();
        if self.live <= n + n / 2 {
            return;
        }
        let heads = Heads::new(n * 2);
        let mask = n * 2 - 1;
        for (slot, it) in self.items.iter_mut().enumerate() {
            if it.is_live() {
                let b = self.hasher.hash_one(it.key()) as usize & mask;
                it.hnext = heads.get(b);
                heads.set(b, slot as u32);
            }
        }
        let old = std::mem::replace(&mut self.heads, heads);
        self.index.heads.store(
            &*self.heads as *const Heads as *mut Heads,
            Ordering::Release,
        );
        // A prefetcher may still read the old array: free it once every pinned one is done.
        crossbeam_epoch::pin().defer(move || drop(old));
    }

    /// The item in `slot`.
    pub fn item(&self, slot: u32) -> &Item {
        let it = &self.items[slot as usize];
        debug_assert!(it.is_live(), "live slot");
        it
    }

    /// The item in `slot`, mutably. Do not change `exptime` here: use [`Shard::set_exptime`].
    pub fn item_mut(&mut self, slot: u32) -> &mut Item {
        let it = &mut self.items[slot as usize];
        debug_assert!(it.is_live(), "live slot");
        it
    }

    /// Links a new item (whose key must not be present) and returns its slot.
    pub fn link(&mut self, hash: u64, item: Item) -> u32 {
        let class = item.class;
        let exptime = item.exptime;
        let slot = match self.free.pop() {
            Some(s) => {
                self.items[s as usize] = item;
                s
            }
            None => {
                self.items.push(item);
                self.index
                    .items
                    .store(self.items.as_mut_ptr(), Ordering::Release);
                self.index
                    .items_len
                    .store(self.items.len(), Ordering::Release);
                (self.items.len() - 1) as u32
            }
        };
        let b = self.bucket(hash);
        self.items[slot as usize].hnext = self.heads.get(b);
        self.heads.set(b, slot);
        self.live += 1;
        self.lru_push_head(class, slot);
        let it = &self.items[slot as usize];
        let (charge, size) = (it.charge(&self.slabs, self.use_cas), it.size() as u64);
        let cs = &mut self.classes[class as usize];
        cs.counters.count += 1;
        cs.counters.charged += charge;
        cs.counters.requested += size;
        self.stats.curr_items += 1;
        self.stats.total_items += 1;
        self.stats.bytes += size;
        if exptime != 0 {
            self.schedule(slot, exptime);
        }
        self.maybe_grow();
        slot
    }

    /// Unlinks the item in `slot`, updates the counters for `why`, and returns it.
    pub fn unlink(&mut self, slot: u32, why: Removal, now: u32) -> Item {
        let (class, bucket, idx) = {
            let it = self.item(slot);
            (it.class, it.wheel_bucket(), it.wheel_idx)
        };
        if bucket != NO_BUCKET {
            self.unschedule_at(bucket, idx);
        }
        self.lru_remove(class, slot);
        let hash = self.hasher.hash_one(self.item(slot).key());
        let b = self.bucket(hash);
        let next = self.items[slot as usize].hnext;
        if self.heads.get(b) == slot {
            self.heads.set(b, next);
        } else {
            let mut s = self.heads.get(b);
            while s != NIL {
                let it = &mut self.items[s as usize];
                if it.hnext == slot {
                    it.hnext = next;
                    break;
                }
                s = it.hnext;
            }
        }
        self.live -= 1;
        let item = std::mem::replace(&mut self.items[slot as usize], Item::vacant());
        self.free.push(slot);
        let size = item.size() as u64;
        let cs = &mut self.classes[class as usize];
        cs.counters.count -= 1;
        cs.counters.charged -= item.charge(&self.slabs, self.use_cas);
        cs.counters.requested -= size;
        self.stats.curr_items -= 1;
        self.stats.bytes -= size;
        match why {
            Removal::Client => {}
            Removal::Expired => {
                cs.counters.reclaimed += 1;
                self.stats.reclaimed += 1;
                if !item.fetched() {
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
                if !item.fetched() {
                    cs.counters.evicted_unfetched += 1;
                    self.stats.evicted_unfetched += 1;
                }
                if item.active() {
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
            (it.wheel_bucket(), it.wheel_idx, it.exptime)
        };
        if old == exptime && (exptime == 0 || bucket != NO_BUCKET) {
            // Same expiry second: the wheel entry stays where it is.
            return;
        }
        if bucket != NO_BUCKET {
            self.unschedule_at(bucket, idx);
            self.item_mut(slot).set_wheel_bucket(NO_BUCKET);
        }
        self.item_mut(slot).exptime = exptime;
        if exptime != 0 {
            self.schedule(slot, exptime);
        }
    }

    /// Replaces the bytes of the item in `slot` (same key), keeping its place in the table.
    /// The caller settles the memory charge.
    pub fn replace_data(&mut self, slot: u32, value: &[u8], class: u8) {
        let old_class = self.item(slot).class;
        let old_size = self.item(slot).size() as u64;
        let old_charge = self.charge(slot);
        if old_class != class {
            self.lru_remove(old_class, slot);
            self.lru_push_head(class, slot);
        }
        {
            let it = self.item_mut(slot);
            let key: smallvec::SmallVec<[u8; 64]> = it.key().into();
            it.fill(&key, &[value]);
            it.class = class;
        }
        let new_size = self.item(slot).size() as u64;
        let charge = self.charge(slot);
        let old = &mut self.classes[old_class as usize];
        old.counters.count -= 1;
        old.counters.charged -= old_charge;
        old.counters.requested -= old_size;
        let new = &mut self.classes[class as usize];
        new.counters.count += 1;
        new.counters.charged += charge;
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
            if it.active() {
                it.set_active(false);
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
                it.set_wheel_bucket(NO_BUCKET);
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
            let it = &self.items[slot as usize];
            if it.is_live() && it.cas < mark {
                let it = self.unlink(slot, Removal::Client, now);
                freed += it.charge(&self.slabs, self.use_cas);
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
        it.set_wheel_bucket(bucket);
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
