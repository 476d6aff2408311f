//! A shard's index from subject identity to entry: open addressing over 64-bit slots, read
//! without a lock and changed only under the shard's lock.
//!
//! A slot holds a 32-bit tag (from a hash independent of the identity), the entry's width
//! class and the entry number. A lookup compares the tag in the slot, then the
//! identity in the entry (45 bits of its own hash): 77 bits in all, within a shard chosen by 6
//! more, so two subjects share a slot and an entry with a probability far below any hardware
//! error rate (about 10^-13 for 1.5 million subjects, 64 MB of states). A lock-free reader can miss an entry being
//! inserted or moved by a rebuild; it then takes the shard's lock and looks again, so a miss is
//! never wrong, only slower.
//!
//! Capacities are arbitrary (the home slot is `hash * capacity >> 64`), so the table grows by
//! half instead of doubling, and its load stays between 0.6 and 0.9: 9 to 13 bytes of index
//! per subject.

use std::sync::atomic::{AtomicU64, Ordering};

/// A slot never used.
const EMPTY: u64 = 0;
/// A slot whose entry was removed (probing goes on past it).
const TOMB: u64 = u64::MAX;
/// Fewest slots of an index.
const MIN_SLOTS: usize = 16;
/// Highest entry number a slot can name (the entry field, plus one, is never all ones, so no
/// live slot reads as [`TOMB`]).
pub const MAX_ENTRY: u32 = (1 << 29) - 3;

/// What a slot names: an entry and its width class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(u64);

impl Slot {
    /// A slot for entry `entry` (at most [`MAX_ENTRY`]) of width class `wide`, for a subject
    /// whose tag is `tag`.
    pub fn new(tag: u32, wide: bool, entry: u32) -> Slot {
        debug_assert!(entry <= MAX_ENTRY);
        Slot(u64::from(tag) << 32 | u64::from(wide) << 29 | u64::from(entry + 1))
    }

    /// The subject's tag.
    pub fn tag(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The entry is in the wide arena.
    pub fn wide(self) -> bool {
        self.0 >> 29 & 1 == 1
    }

    /// The entry number.
    pub fn entry(self) -> u32 {
        (self.0 & ((1 << 29) - 1)) as u32 - 1
    }

    fn live(raw: u64) -> Option<Slot> {
        (raw != EMPTY && raw != TOMB).then_some(Slot(raw))
    }
}

/// The slots.
pub struct Index {
    slots: Box<[AtomicU64]>,
}

impl Index {
    /// An index with room for about `n` subjects at a load of 0.6.
    pub fn for_subjects(n: usize) -> Index {
        let cap = (n * 5 / 3 + 1).max(MIN_SLOTS);
        Index {
            slots: (0..cap).map(|_| AtomicU64::new(EMPTY)).collect(),
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bytes of the slots.
    pub fn bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<AtomicU64>()
    }

    /// True when `used` slots (live and removed) leave too little room to probe well: time
    /// to rebuild.
    pub fn crowded(&self, used: usize) -> bool {
        used * 10 >= self.slots.len() * 9
    }

    fn home(&self, ident: u64) -> usize {
        ((u128::from(ident) * self.slots.len() as u128) >> 64) as usize
    }

    /// Probe positions of `ident`, from its home slot on (every slot at most once).
    fn probe(&self, ident: u64) -> impl Iterator<Item = usize> + '_ {
        let n = self.slots.len();
        let home = self.home(ident);
        (0..n).map(move |i| if home + i < n { home + i } else { home + i - n })
    }

    /// The slot of the subject (`ident`, `tag`): `is_it` tells whether the entry a slot with
    /// that tag names holds the subject. Returns its position and the slot.
    pub fn find(
        &self,
        ident: u64,
        tag: u32,
        is_it: impl Fn(Slot) -> bool,
    ) -> Option<(usize, Slot)> {
        for pos in self.probe(ident) {
            let raw = self.slots[pos].load(Ordering::Acquire);
            if raw == EMPTY {
                return None;
            }
            if let Some(s) = Slot::live(raw) {
                if s.tag() == tag && is_it(s) {
                    return Some((pos, s));
                }
            }
        }
        None
    }

    /// The address of `ident`'s home slot, for a prefetch.
    pub fn home_addr(&self, ident: u64) -> *const u8 {
        self.slots[self.home(ident)].as_ptr() as *const u8
    }

    /// The first live slot carrying `tag` within the first few positions of `ident`'s probe
    /// sequence (those share the home slot's cache line, mostly): a hint of where the
    /// subject's entry is; it may name another subject's, or the subject sit further on.
    pub fn hint(&self, ident: u64, tag: u32) -> Option<Slot> {
        for pos in self.probe(ident).take(4) {
            let raw = self.slots[pos].load(Ordering::Relaxed);
            if raw == EMPTY {
                return None;
            }
            if let Some(s) = Slot::live(raw).filter(|s| s.tag() == tag) {
                return Some(s);
            }
        }
        None
    }

    /// Puts `slot` for `ident` in the first free slot of its probe sequence (the caller holds
    /// the shard's lock and made sure the subject is absent and the index not crowded).
    /// Returns the position, and whether it took a never-used slot (rather than a removed one).
    pub fn insert(&self, ident: u64, slot: Slot) -> (usize, bool) {
        for pos in self.probe(ident) {
            let raw = self.slots[pos].load(Ordering::Relaxed);
            if raw == EMPTY || raw == TOMB {
                self.slots[pos].store(slot.0, Ordering::Release);
                return (pos, raw == EMPTY);
            }
        }
        unreachable!("an index that is not crowded has a free slot");
    }

    /// Replaces the slot at `pos` (the caller holds the shard's lock).
    pub fn replace(&self, pos: usize, slot: Slot) {
        self.slots[pos].store(slot.0, Ordering::Release);
    }

    /// Removes the slot at `pos` (the caller holds the shard's lock).
    pub fn remove(&self, pos: usize) {
        self.slots[pos].store(TOMB, Ordering::Release);
    }

    /// The slot at `pos`, if it names an entry.
    pub fn get(&self, pos: usize) -> Option<Slot> {
        Slot::live(self.slots[pos].load(Ordering::Acquire))
    }

    /// Every live slot, with its position.
    pub fn live(&self) -> impl Iterator<Item = (usize, Slot)> + '_ {
        (0..self.slots.len()).filter_map(|pos| self.get(pos).map(|s| (pos, s)))
    }

    /// A new index holding this one's live slots; `ident_of` gives each entry's identity.
    pub fn rebuilt(&self, live: usize, ident_of: impl Fn(Slot) -> u64) -> Index {
        let next = Index::for_subjects(live);
        for (_, s) in self.live() {
            next.insert(ident_of(s), s);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_their_fields() {
        for (tag, wide, entry) in [
            (0, false, 0),
            (u32::MAX, true, MAX_ENTRY),
            (7, false, 12345),
        ] {
            let s = Slot::new(tag, wide, entry);
            assert_eq!((s.tag(), s.wide(), s.entry()), (tag, wide, entry));
            assert!(Slot::live(s.0).is_some());
        }
    }

    #[test]
    fn find_insert_remove_and_rebuild() {
        let idents: Vec<u64> = (0..1000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
            .collect();
        let index = Index::for_subjects(idents.len());
        let ident_of = |s: Slot| idents[s.entry() as usize];
        let is = |id: u64| move |s: Slot| ident_of(s) == id;
        for (i, &id) in idents.iter().enumerate() {
            assert!(index.find(id, i as u32, is(id)).is_none());
            index.insert(id, Slot::new(i as u32, false, i as u32));
            assert!(!index.crowded(i + 1));
        }
        for (i, &id) in idents.iter().enumerate() {
            let (pos, s) = index.find(id, i as u32, is(id)).expect("present");
            assert_eq!(s.entry() as usize, i);
            assert!(
                index.find(id, i as u32 + 1, is(id)).is_none(),
                "the tag must match too"
            );
            if i % 2 == 0 {
                index.remove(pos);
            }
        }
        // Removed slots are passed over: the odd ones are still found.
        for (i, &id) in idents.iter().enumerate() {
            assert_eq!(index.find(id, i as u32, is(id)).is_some(), i % 2 == 1);
        }
        let next = index.rebuilt(500, ident_of);
        assert_eq!(next.live().count(), 500);
        for (i, &id) in idents.iter().enumerate() {
            assert_eq!(next.find(id, i as u32, is(id)).is_some(), i % 2 == 1);
        }
        assert!(next.capacity() < index.capacity());
    }

    #[test]
    fn crowded_at_nine_tenths() {
        let index = Index::for_subjects(60);
        let cap = index.capacity();
        assert!(!index.crowded(cap * 9 / 10 - 1));
        assert!(index.crowded(cap * 9 / 10 + 1));
    }
}
