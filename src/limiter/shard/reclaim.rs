//! Making room in a full shard (reclaiming states full again, else evicting the one closest
//! to full), sweeping expired states, and walks over every state (clear, snapshots).

use super::*;

impl ShardGuard<'_> {
    /// Frees one entry of the width `wide` when the shard is full: a state full again if the
    /// sample holds one (reclaimed), else, if the room policy evicts, the state closest to
    /// full (evicted).
    pub(super) fn make_room(&mut self, wide: bool, now_s: u32, room: Room, keep: &[usize]) -> bool {
        let cap = self.inner.index.capacity();
        let mut best: Option<(usize, Slot, u32)> = None;
        let mut seen = 0;
        for step in 0..cap {
            let pos = (self.inner.sample + step) % cap;
            let Some(slot) = self.inner.index.get(pos) else {
                continue;
            };
            if slot.wide() != wide || keep.contains(&pos) {
                continue;
            }
            let expiry = self.shard.expiry_hint(slot);
            if best.is_none_or(|(_, _, e)| expiry < e) {
                best = Some((pos, slot, expiry));
            }
            seen += 1;
            if seen == SAMPLE || expired(expiry, now_s) {
                self.inner.sample = pos + 1;
                break;
            }
        }
        let Some((pos, slot, expiry)) = best else {
            return false;
        };
        let full = expired(expiry, now_s);
        if !full && !room.evict {
            return false;
        }
        self.remove_at(pos, slot);
        if full {
            self.inner.reclaimed += 1;
        } else {
            self.inner.evictions += 1;
        }
        true
    }

    /// Looks at up to `budget` index slots from where the last sweep stopped and frees the
    /// states full again at `now_s`. Returns how many it freed.
    pub fn sweep(&mut self, now_s: u32, budget: usize) -> usize {
        let cap = self.inner.index.capacity();
        let mut freed = 0;
        for _ in 0..budget.min(cap) {
            let pos = self.inner.sweep % cap;
            self.inner.sweep = pos + 1;
            let Some(slot) = self.inner.index.get(pos) else {
                continue;
            };
            let entry = self.shard.lock_entry(slot);
            if !expired(entry.expiry(), now_s) {
                continue;
            }
            let word = entry.word();
            entry.free();
            drop(entry);
            self.inner.index.remove(pos);
            self.forget(slot, word);
            self.inner.reclaimed += 1;
            freed += 1;
        }
        if self.inner.used_slots > 2 * self.inner.live + 64 {
            self.rebuild(); // mostly removed slots: keep probing short
        }
        freed
    }

    /// Drops every subject.
    pub fn clear(&mut self) {
        let live: Vec<(usize, Slot)> = self.inner.index.live().collect();
        for (pos, slot) in live {
            self.remove_at(pos, slot);
        }
        self.publish(Box::new(Index::for_subjects(0)));
        self.inner.used_slots = 0;
    }

    /// Every live subject: its identity, state and expiry (for snapshots).
    pub fn for_each(&self, mut f: impl FnMut(Ident, State, u32)) {
        for (_, slot) in self.inner.index.live() {
            let entry = self.shard.lock_entry(slot);
            let word = entry.word();
            if let Some(state) = entry.state(0) {
                let id = Ident {
                    id: word & !NOT_ID,
                    tag: slot.tag(),
                    group: Group::of_word(word),
                };
                f(id, state, entry.expiry());
            }
        }
    }
}
