//! `lru_crawler metadump` and `stats cachedump`: every live item's metadata, walked a bounded run of slots at a time
//! so a dump of millions of items streams instead of being built whole.

use super::Store;

/// One live item as `lru_crawler metadump` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemMeta<'a> {
    /// The key.
    pub key: &'a [u8],
    /// Stored with a base64 meta key (binary bytes).
    pub key_binary: bool,
    /// Bytes of the value.
    pub value_len: usize,
    /// Absolute expiry in Unix seconds (`None`: never).
    pub exptime: Option<u64>,
    /// Last access in Unix seconds.
    pub last_access: u64,
    /// Cas unique.
    pub cas: u64,
    /// Read since it was stored.
    pub fetched: bool,
    /// Slab class id.
    pub class: u8,
    /// memcached's total size of the item (header, key, flags, value, cas).
    pub size: usize,
}

/// Where a dump goes on: a shard and a slot in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DumpCursor {
    /// The shard.
    pub shard: usize,
    /// The slot within it.
    pub slot: usize,
}

impl Store {
    /// Calls `f` with the live items of up to `slots` slots from `at` (one shard at a time,
    /// under its lock). Returns where to go on, or `None` when every shard is done.
    pub fn metadump(
        &self,
        at: DumpCursor,
        slots: usize,
        mut f: impl FnMut(&ItemMeta<'_>),
    ) -> Option<DumpCursor> {
        let lock = self.shards.get(at.shard)?;
        let view = self.live_view();
        let shard = lock.lock();
        let (items, next) = shard.live_items_in(at.slot, slots);
        for it in items.filter(|it| view.shows(it)) {
            f(&ItemMeta {
                key: it.key(),
                key_binary: it.key_binary(),
                value_len: it.value().len(),
                exptime: (it.exptime != 0).then(|| view.unix(it.exptime)),
                last_access: view.unix(it.time),
                cas: it.cas,
                fetched: it.fetched(),
                class: it.class,
                size: it.size(),
            });
        }
        Some(match next {
            Some(slot) => DumpCursor { slot, ..at },
            None => DumpCursor {
                shard: at.shard + 1,
                slot: 0,
            },
        })
        .filter(|c| c.shard < self.shards.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::store::tests::store;
    use crate::store::{StoreMode, StoreOutcome};

    #[test]
    fn a_dump_in_small_steps_lists_every_live_item_once() {
        let (s, clock) = store();
        for i in 0..300 {
            let exptime = if i % 3 == 0 { 5 } else { 0 };
            let key = format!("key{i}");
            let stored = s.store(StoreMode::Set, key.as_bytes(), 7, exptime, b"value");
            assert_eq!(stored, StoreOutcome::Stored);
        }
        s.delete(b"key1", crate::store::DeleteOptions::default());
        let walk = |step: usize| {
            let (mut seen, mut at) = (Vec::new(), Some(DumpCursor::default()));
            while let Some(cursor) = at {
                at = s.metadump(cursor, step, |m| {
                    assert_eq!((m.value_len, m.class), (5, 1));
                    seen.push(String::from_utf8(m.key.to_vec()).unwrap());
                });
            }
            seen
        };
        let all = walk(3);
        let unique: BTreeSet<_> = all.iter().cloned().collect();
        assert_eq!((all.len(), unique.len()), (299, 299));
        assert!(!unique.contains("key1"));
        assert_eq!(walk(1 << 20).len(), 299);
        // Expired items are not listed.
        clock.advance_secs(10);
        assert_eq!(walk(7).len(), 199);
    }
}
