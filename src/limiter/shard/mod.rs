//! One shard of the limiter: its index (published for lock-free lookups), its two arenas of
//! entries, and, behind its lock, what only changes slowly: which entries are free, creation,
//! removal, rebuilds of the index, reclaiming and eviction.
//!
//! An entry's identity word carries the subject's identity (45 bits of hash, bit 0 set), the
//! algorithm of its state and its stats [`Group`], so a thread that locks an entry knows, under the lock, whose state it holds and how
//! to read it; a slot read before a change is never trusted for either.
//!
//! Lock order: a thread holding an entry's lock never waits for a shard's lock. Code under a
//! shard's lock may lock entries (their holders never wait on anything), and code that needs
//! several shards takes their locks in index order.

use std::sync::atomic::{AtomicPtr, Ordering};

use parking_lot::{Mutex, MutexGuard};

use super::arena::Arena;
use super::entry::{Entry, Locked, FREE};
use super::group::{Group, GroupLive, GROUP_BITS};
use super::index::{Index, Slot, MAX_ENTRY};
use super::pack::{alg_code, alg_of, pack, unpack_narrow, unpack_wide, Packed};
use crate::ratelimit::{Algorithm, State};
use crate::store::prefetch;

mod reclaim;

/// Seconds value of an expiry that never comes.
pub const NEVER: u32 = u32::MAX;

/// Bytes of a narrow entry.
pub const NARROW_BYTES: usize = std::mem::size_of::<Entry<2>>();
/// Bytes of a wide entry.
pub const WIDE_BYTES: usize = std::mem::size_of::<Entry<3>>();

/// Victims looked at when the shard is full.
const SAMPLE: usize = 16;

/// The bits of an identity word that hold the algorithm.
const ALG_BITS: u64 = 0b110;
/// The bits of an identity word that are not the subject's identity.
const NOT_ID: u64 = ALG_BITS | GROUP_BITS;

/// A subject's identity: the 64-bit identity its entry holds and the 32-bit tag its slot
/// holds, and the stats group a state created for it counts under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ident {
    /// The identity, with bit 0 set and the algorithm and group bits clear (45 bits of hash).
    pub id: u64,
    /// Stored in the index slot.
    pub tag: u32,
    /// The stats group of a state created under this identity (not compared by lookups).
    pub group: Group,
}

impl Ident {
    /// The identity of a subject from its two hashes.
    pub fn new(id_hash: u64, tag_hash: u64, group: Group) -> Ident {
        Ident {
            id: (id_hash & !NOT_ID) | 1,
            tag: (tag_hash >> 32) as u32,
            group,
        }
    }

    /// The identity of a saved state (a snapshot's `id` and `tag`, possibly written before
    /// identities had group bits), counted under no group.
    pub fn from_saved(id: u64, tag: u32) -> Ident {
        Ident {
            id: (id & !NOT_ID) | 1,
            tag,
            group: Group::NONE,
        }
    }

    /// The identity word of an entry holding this subject's state of algorithm `alg`.
    fn word(self, alg: Algorithm) -> u64 {
        self.id | u64::from(alg_code(alg)) << 1 | self.group.bits()
    }

    /// This identity with the group of the entry whose identity word is `word` (a state that
    /// moves to an entry of the other width keeps its group).
    pub(super) fn in_group_of(self, word: u64) -> Ident {
        Ident {
            group: Group::of_word(word),
            ..self
        }
    }

    /// True if an entry's identity word holds this subject (whatever its algorithm and group).
    fn holds(self, word: u64) -> bool {
        word | NOT_ID == self.id | NOT_ID
    }
}

/// The algorithm in an identity word.
fn alg_in(word: u64) -> Algorithm {
    alg_of(((word & ALG_BITS) >> 1) as u8)
}

/// What a subject holds: nothing, or a state (of its algorithm) and whether it is still live.
pub type Found = Option<State>;

/// The state to write for a subject and the second (on the limiter's clock) when it is full
/// again ([`NEVER`] for never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    /// The new state.
    pub state: State,
    /// Its expiry second.
    pub expiry: u32,
}

/// The shard's memory is spent and the policy refuses new subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// Counters of a shard, read by `stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShardCounters {
    /// Live subjects.
    pub live: u64,
    /// Bytes of entries ever allocated and of the index.
    pub bytes: u64,
    /// States dropped before they were full again.
    pub evictions: u64,
    /// States dropped because they were full again.
    pub reclaimed: u64,
}

/// A shard.
pub struct Shard {
    /// The current index, for lock-free readers (owned by `inner`).
    published: AtomicPtr<Index>,
    narrow: Arena<2>,
    wide: Arena<3>,
    inner: Mutex<Inner>,
}

/// What changes only under the shard's lock.
struct Inner {
    index: Box<Index>,
    /// Slots in use: live and removed.
    used_slots: usize,
    live: usize,
    narrow_top: u32,
    wide_top: u32,
    free_narrow: Vec<u32>,
    free_wide: Vec<u32>,
    evictions: u64,
    reclaimed: u64,
    /// Live states by stats group.
    groups: Box<GroupLive>,
    /// Next index position the housekeeper looks at.
    sweep: usize,
    /// Where the next victim sample starts.
    sample: usize,
}

impl Inner {
    fn bytes(&self) -> usize {
        self.narrow_top as usize * NARROW_BYTES
            + self.wide_top as usize * WIDE_BYTES
            + self.index.bytes()
    }
}

/// A subject's entry, locked: either width.
pub(super) enum LockedEntry<'a> {
    Narrow(Locked<'a, 2>),
    Wide(Locked<'a, 3>),
}

impl LockedEntry<'_> {
    pub(super) fn word(&self) -> u64 {
        match self {
            LockedEntry::Narrow(l) => l.ident(),
            LockedEntry::Wide(l) => l.ident(),
        }
    }

    fn expiry(&self) -> u32 {
        match self {
            LockedEntry::Narrow(l) => l.expiry(),
            LockedEntry::Wide(l) => l.expiry(),
        }
    }

    /// The state ([`None`] once full again at `now_s`).
    pub(super) fn state(&self, now_s: u32) -> Found {
        if expired(self.expiry(), now_s) {
            return None;
        }
        let alg = alg_in(self.word());
        Some(match self {
            LockedEntry::Narrow(l) => unpack_narrow(alg, l.words()),
            LockedEntry::Wide(l) => unpack_wide(alg, l.words()),
        })
    }

    /// Writes `w` for `id` if it fits this entry's width; false otherwise. The entry keeps
    /// its stats group.
    pub(super) fn write(&self, id: Ident, w: &Write) -> bool {
        let word = id.in_group_of(self.word()).word(w.state.algorithm());
        match (self, pack(&w.state)) {
            (LockedEntry::Narrow(l), Packed::Narrow(words)) => {
                l.write(words, w.expiry);
                l.set_ident(word);
            }
            (LockedEntry::Wide(l), Packed::Wide(words)) => {
                l.write(words, w.expiry);
                l.set_ident(word);
            }
            _ => return false,
        }
        true
    }

    pub(super) fn free(&self) {
        match self {
            LockedEntry::Narrow(l) => l.set_ident(FREE),
            LockedEntry::Wide(l) => l.set_ident(FREE),
        }
    }
}

/// True if a state whose expiry is `expiry` is full again at second `now_s`.
pub fn expired(expiry: u32, now_s: u32) -> bool {
    expiry != NEVER && expiry <= now_s
}

impl Default for Shard {
    fn default() -> Self {
        let index = Box::new(Index::for_subjects(0));
        Shard {
            published: AtomicPtr::new(&*index as *const Index as *mut Index),
            narrow: Arena::default(),
            wide: Arena::default(),
            inner: Mutex::new(Inner {
                index,
                used_slots: 0,
                live: 0,
                narrow_top: 0,
                wide_top: 0,
                free_narrow: Vec::new(),
                free_wide: Vec::new(),
                evictions: 0,
                reclaimed: 0,
                groups: Box::default(),
                sweep: 0,
                sample: 0,
            }),
        }
    }
}

impl Shard {
    pub(super) fn lock_entry(&self, slot: Slot) -> LockedEntry<'_> {
        if slot.wide() {
            LockedEntry::Wide(self.wide.get(slot.entry()).lock())
        } else {
            LockedEntry::Narrow(self.narrow.get(slot.entry()).lock())
        }
    }

    /// The identity word of a slot's entry, read without its lock (a hint).
    fn word_hint(&self, slot: Slot) -> u64 {
        if slot.wide() {
            self.wide.get(slot.entry()).ident_hint()
        } else {
            self.narrow.get(slot.entry()).ident_hint()
        }
    }

    /// The expiry of a slot's entry, read without its lock (never waits: the caller may hold
    /// entry locks).
    fn expiry_hint(&self, slot: Slot) -> u32 {
        if slot.wide() {
            self.wide.get(slot.entry()).expiry_hint()
        } else {
            self.narrow.get(slot.entry()).expiry_hint()
        }
    }

    /// The fast path: finds the subject without the shard's lock and runs `f` on its state
    /// under its entry's lock. `f` returns what to write (`None`: nothing). Returns `None` when
    /// the subject was not found, or its write needs another entry width: then take
    /// [`Shard::lock`] and use [`ShardGuard::update`].
    pub fn update_fast<R>(
        &self,
        id: Ident,
        now_s: u32,
        f: &mut impl FnMut(Found) -> (R, Option<Write>),
    ) -> Option<R> {
        let guard = crossbeam_epoch::pin();
        // SAFETY: a published index is freed only through the epoch (after every guard pinned
        // when it was replaced, ours included, is dropped) or with the shard, which `&self`
        // keeps alive.
        let index = unsafe { &*self.published.load(Ordering::Acquire) };
        let (_, slot) = index.find(id.id, id.tag, |s| id.holds(self.word_hint(s)))?;
        drop(guard);
        let entry = self.lock_entry(slot);
        if !id.holds(entry.word()) {
            return None; // removed meanwhile: the slow path decides
        }
        let (r, write) = f(entry.state(now_s));
        match write {
            None => Some(r),
            Some(w) => entry.write(id, &w).then_some(r),
        }
    }

    /// First pass of a batch's prefetch: asks the CPU to load the subject's home index slot.
    pub fn prefetch_slot(&self, id: Ident, _guard: &crossbeam_epoch::Guard) {
        // SAFETY: as in `update_fast`; the caller's guard keeps the index alive.
        let index = unsafe { &*self.published.load(Ordering::Acquire) };
        prefetch(index.home_addr(id.id));
    }

    /// Second pass: reads the slots near home (loaded by the first pass, with luck) and asks
    /// the CPU to load the entry the first one with the subject's tag names. A hint only: it
    /// may be another subject's entry.
    pub fn prefetch_entry(&self, id: Ident, _guard: &crossbeam_epoch::Guard) {
        // SAFETY: as in `update_fast`; the caller's guard keeps the index alive.
        let index = unsafe { &*self.published.load(Ordering::Acquire) };
        let Some(slot) = index.hint(id.id, id.tag) else {
            return;
        };
        let p = if slot.wide() {
            self.wide
                .get_hint(slot.entry())
                .map(|e| e as *const _ as *const u8)
        } else {
            self.narrow
                .get_hint(slot.entry())
                .map(|e| e as *const _ as *const u8)
        };
        if let Some(p) = p {
            prefetch(p);
        }
    }

    /// Reads the subject's state without any lock (retrying while a writer is inside its
    /// entry): what `peek` needs. `None` when it was not found or changed meanwhile (then ask
    /// under the shard's lock).
    pub fn read_fast(&self, id: Ident, now_s: u32) -> Option<Found> {
        let guard = crossbeam_epoch::pin();
        // SAFETY: as in `update_fast`.
        let index = unsafe { &*self.published.load(Ordering::Acquire) };
        let (_, slot) = index.find(id.id, id.tag, |s| id.holds(self.word_hint(s)))?;
        drop(guard);
        let (word, expiry, state) = if slot.wide() {
            let s = self.wide.get(slot.entry()).read();
            (s.ident, s.expiry, unpack_wide(alg_in(s.ident), s.words))
        } else {
            let s = self.narrow.get(slot.entry()).read();
            (s.ident, s.expiry, unpack_narrow(alg_in(s.ident), s.words))
        };
        if !id.holds(word) {
            return None;
        }
        Some((!expired(expiry, now_s)).then_some(state))
    }

    /// Takes the shard's lock.
    pub fn lock(&self) -> ShardGuard<'_> {
        ShardGuard {
            shard: self,
            inner: self.inner.lock(),
        }
    }

    /// Its live states by stats group.
    pub fn live_by_group(&self) -> GroupLive {
        (*self.inner.lock().groups).clone()
    }

    /// Its counters.
    pub fn counters(&self) -> ShardCounters {
        let inner = self.inner.lock();
        ShardCounters {
            live: inner.live as u64,
            bytes: inner.bytes() as u64,
            evictions: inner.evictions,
            reclaimed: inner.reclaimed,
        }
    }
}

/// A shard under its lock.
pub struct ShardGuard<'a> {
    shard: &'a Shard,
    inner: MutexGuard<'a, Inner>,
}

/// How a full shard makes room for a new subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    /// Bytes the shard may use.
    pub budget: usize,
    /// Evict the state closest to full (true), or refuse the new subject (false), when no
    /// state is full again.
    pub evict: bool,
}

impl ShardGuard<'_> {
    pub(super) fn find(&self, id: Ident) -> Option<(usize, Slot)> {
        let shard = self.shard;
        self.inner
            .index
            .find(id.id, id.tag, |s| id.holds(shard.word_hint(s)))
    }

    /// True if the subject has a state (full again or not).
    pub fn contains(&self, id: Ident) -> bool {
        self.find(id).is_some()
    }

    /// The subject's state ([`None`] when it has none or it is full again at `now_s`).
    pub fn read(&self, id: Ident, now_s: u32) -> Found {
        let (_, slot) = self.find(id)?;
        self.shard.lock_entry(slot).state(now_s)
    }

    /// The slow path of one subject: `f` sees its state and returns what to write; the write
    /// may create the subject, change its algorithm or move it to the other width.
    pub fn update<R>(
        &mut self,
        id: Ident,
        now_s: u32,
        room: Room,
        f: &mut impl FnMut(Found) -> (R, Option<Write>),
    ) -> Result<R, Refused> {
        let Some((pos, slot)) = self.find(id) else {
            let (r, write) = f(None);
            if let Some(w) = write {
                let slot = self.allocate(&w, id, now_s, room, &[])?;
                self.insert(id, slot);
            }
            return Ok(r);
        };
        let entry = self.shard.lock_entry(slot);
        let (r, write) = f(entry.state(now_s));
        let Some(w) = write else { return Ok(r) };
        if entry.write(id, &w) {
            return Ok(r);
        }
        // The other width: a new entry takes over while the old one is still locked, so no
        // decision can slip in between.
        let fresh = self.allocate(&w, id.in_group_of(entry.word()), now_s, room, &[pos])?;
        self.take_over(pos, slot, entry, fresh);
        Ok(r)
    }

    /// Points index position `pos` at `fresh` in place of `slot`, whose entry (still locked,
    /// so no decision slipped in) is freed.
    pub(super) fn take_over(&mut self, pos: usize, slot: Slot, old: LockedEntry<'_>, fresh: Slot) {
        self.inner.index.replace(pos, fresh);
        let word = old.word();
        old.free();
        drop(old);
        self.forget(slot, word);
    }

    /// Makes sure `n` entries of width `wide` can be allocated without going over the room's
    /// budget, freeing states (never those at index positions `keep`) if needed.
    pub(super) fn reserve(
        &mut self,
        wide: bool,
        n: usize,
        now_s: u32,
        room: Room,
        keep: &[usize],
    ) -> bool {
        let size = if wide { WIDE_BYTES } else { NARROW_BYTES };
        loop {
            let free = if wide {
                self.inner.free_wide.len()
            } else {
                self.inner.free_narrow.len()
            };
            let grow = n.saturating_sub(free);
            if grow == 0 || self.inner.bytes() + grow * size <= room.budget {
                return true;
            }
            if !self.make_room(wide, now_s, room, keep) {
                return false;
            }
        }
    }

    /// An entry holding `w` for `id`, making room when the shard's memory is spent (never by
    /// removing the slots at index positions `keep`).
    pub(super) fn allocate(
        &mut self,
        w: &Write,
        id: Ident,
        now_s: u32,
        room: Room,
        keep: &[usize],
    ) -> Result<Slot, Refused> {
        let packed = pack(&w.state);
        let wide = matches!(packed, Packed::Wide(_));
        if !self.reserve(wide, 1, now_s, room, keep) {
            return Err(Refused);
        }
        let inner = &mut *self.inner;
        let (free, top) = if wide {
            (&mut inner.free_wide, &mut inner.wide_top)
        } else {
            (&mut inner.free_narrow, &mut inner.narrow_top)
        };
        let n = free.pop().unwrap_or_else(|| {
            *top += 1;
            *top - 1
        });
        assert!(
            n <= MAX_ENTRY,
            "a shard holds at most 2^29 entries of a width"
        );
        let word = id.word(w.state.algorithm());
        match packed {
            Packed::Narrow(words) => {
                let l = self.shard.narrow.allocate(n).lock();
                l.write(words, w.expiry);
                l.set_ident(word);
            }
            Packed::Wide(words) => {
                let l = self.shard.wide.allocate(n).lock();
                l.write(words, w.expiry);
                l.set_ident(word);
            }
        }
        inner.live += 1;
        inner.groups.tally(word, true);
        Ok(Slot::new(id.tag, wide, n))
    }

    /// Puts a freed slot's entry back on its free list (its entry, whose identity word was
    /// `word`, is already marked free and its index slot removed or replaced).
    fn forget(&mut self, slot: Slot, word: u64) {
        if slot.wide() {
            self.inner.free_wide.push(slot.entry());
        } else {
            self.inner.free_narrow.push(slot.entry());
        }
        self.inner.live -= 1;
        self.inner.groups.tally(word, false);
    }

    /// Removes the subject at index position `pos`.
    fn remove_at(&mut self, pos: usize, slot: Slot) {
        let entry = self.shard.lock_entry(slot);
        let word = entry.word();
        entry.free();
        drop(entry);
        self.inner.index.remove(pos);
        self.forget(slot, word);
    }

    /// Adds `slot` for `id` to the index (which may be rebuilt: index positions found before
    /// are stale afterwards).
    pub(super) fn insert(&mut self, id: Ident, slot: Slot) {
        if self.inner.index.crowded(self.inner.used_slots + 1) {
            self.rebuild();
        }
        let (_, fresh) = self.inner.index.insert(id.id, slot);
        if fresh {
            self.inner.used_slots += 1;
        }
    }

    /// Publishes `next` in place of the current index; the old one is freed once no lock-free
    /// reader can still hold it.
    fn publish(&mut self, next: Box<Index>) {
        self.shard
            .published
            .store(&*next as *const Index as *mut Index, Ordering::Release);
        let old = std::mem::replace(&mut self.inner.index, next);
        let guard = crossbeam_epoch::pin();
        guard.defer(move || drop(old));
        // Hand it to the global queue now: a thread-local batch of deferred indexes would
        // otherwise hold megabytes until 64 more pile up.
        guard.flush();
    }

    /// Replaces the index with a fresh one holding the live slots.
    fn rebuild(&mut self) {
        let shard = self.shard;
        let next = self
            .inner
            .index
            .rebuilt(self.inner.live + 1, |s| shard.word_hint(s) & !NOT_ID);
        self.publish(Box::new(next));
        self.inner.used_slots = self.inner.live;
    }

    /// Removes the subject; true if it was there.
    pub fn remove(&mut self, id: Ident) -> bool {
        let Some((pos, slot)) = self.find(id) else {
            return false;
        };
        self.remove_at(pos, slot);
        true
    }
}
