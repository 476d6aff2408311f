//! Several subjects decided at once, all or none (`ratelimit_all`, named policies): the shards
//! of all the subjects are locked in index order, then their entries; the decision sees every
//! state and its writes are applied only when room for all of them is assured.

use super::pack::{pack, Packed};
use super::shard::{Found, Ident, LockedEntry, Refused, Room, Shard, ShardGuard, Write};
use crate::store::smallvec::SmallVec;

/// Writes of a multi-subject decision, one per subject (`None`: keep).
pub type Writes = SmallVec<[Option<Write>; 4]>;

/// Runs `f` over the states of `keys` (shard number and identity; distinct subjects) and
/// applies the writes it returns, all or none.
pub fn update_many<R>(
    shards: &[impl std::ops::Deref<Target = Shard>],
    keys: &[(usize, Ident)],
    now_s: u32,
    room: Room,
    f: impl FnOnce(&[Found]) -> (R, Writes),
) -> Result<R, Refused> {
    let mut order: SmallVec<[usize; 4]> = keys.iter().map(|k| k.0).collect();
    order.sort_unstable();
    order.dedup();
    let mut guards: SmallVec<[ShardGuard<'_>; 4]> =
        order.iter().map(|&s| shards[s].lock()).collect();
    let g = |s: usize| order.binary_search(&s).expect("locked shard");
    let found: SmallVec<[_; 4]> = keys.iter().map(|&(s, id)| guards[g(s)].find(id)).collect();
    let entries: SmallVec<[Option<LockedEntry<'_>>; 4]> = found
        .iter()
        .zip(keys)
        .map(|(f, &(s, _))| f.map(|(_, slot)| shards[s].lock_entry(slot)))
        .collect();
    let states: SmallVec<[Found; 4]> = entries
        .iter()
        .map(|e| e.as_ref().and_then(|e| e.state(now_s)))
        .collect();
    let (r, writes) = f(&states);

    // A write needs a new entry when its subject has none, or one of the other width.
    let needs_new = |i: usize| -> Option<bool> {
        let w = writes.get(i).copied().flatten()?;
        let wide = matches!(pack(&w.state), Packed::Wide(_));
        match &found[i] {
            Some((_, slot)) if slot.wide() == wide => None,
            _ => Some(wide),
        }
    };
    for (gi, &s) in order.iter().enumerate() {
        let keep: SmallVec<[usize; 4]> = found
            .iter()
            .zip(keys)
            .filter(|(_, k)| k.0 == s)
            .filter_map(|(f, _)| f.map(|(pos, _)| pos))
            .collect();
        for wide in [false, true] {
            let n = (0..keys.len())
                .filter(|&i| keys[i].0 == s && needs_new(i) == Some(wide))
                .count();
            if n > 0 && !guards[gi].reserve(wide, n, now_s, room, &keep) {
                return Err(Refused);
            }
        }
    }

    // Room is assured: apply without making room again (that could drop a subject just
    // written). Entries taken over by another width first (by index position), then new
    // subjects (an insert may rebuild the index and move every position).
    let reserved = Room {
        budget: usize::MAX,
        evict: false,
    };
    let mut entries = entries;
    let mut inserts: SmallVec<[(usize, Ident, Write); 4]> = SmallVec::new();
    for i in 0..keys.len() {
        let Some(w) = writes.get(i).copied().flatten() else {
            continue;
        };
        let (s, id) = keys[i];
        let guard = &mut guards[g(s)];
        match (found[i], entries[i].take()) {
            (Some((pos, slot)), Some(entry)) => {
                if !entry.write(id, &w) {
                    let id = id.in_group_of(entry.word());
                    let fresh = guard.allocate(&w, id, now_s, reserved, &[])?;
                    guard.take_over(pos, slot, entry, fresh);
                }
            }
            _ => inserts.push((s, id, w)),
        }
    }
    drop(entries);
    for (s, id, w) in inserts {
        let guard = &mut guards[g(s)];
        let slot = guard.allocate(&w, id, now_s, reserved, &[])?;
        guard.insert(id, slot);
    }
    Ok(r)
}
