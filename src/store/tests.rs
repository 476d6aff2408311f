//! Store tests: no sockets, time driven by a mock clock.

use std::sync::Arc;

use super::*;
use crate::clock::MockClock;

/// incr/decr as the text protocol asks it: the new number, or why not.
pub(super) fn delta(s: &Store, key: &[u8], incr: bool, by: u64) -> Result<u64, ArithOutcome> {
    match s.arith(key, ArithOptions::classic(incr, by)) {
        ArithOutcome::Value { value, .. } => Ok(value),
        other => Err(other),
    }
}

/// A plain delete: true if the key was there.
pub(super) fn delete(s: &Store, key: &[u8]) -> bool {
    s.delete(key, DeleteOptions::default()) == DeleteOutcome::Deleted
}

const ORIGIN: u64 = 1_700_000_000;

/// Under Miri (`scripts/miri.sh`) every shard's setup and every loop step is slow to
/// interpret: the tests keep their shape at smaller sizes there.
pub(super) const fn sized(native: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        native
    }
}

/// The default configuration with fewer shards under Miri.
pub(super) fn config() -> StoreConfig {
    StoreConfig {
        shards: sized(64, 2),
        ..StoreConfig::default()
    }
}

pub(super) fn store_with(cfg: StoreConfig) -> (Store, Arc<MockClock>) {
    let clock = Arc::new(MockClock::new(ORIGIN));
    (Store::new(&cfg, clock.clone()), clock)
}

pub(super) fn store() -> (Store, Arc<MockClock>) {
    store_with(config())
}

pub(super) fn get(s: &Store, key: &[u8]) -> Option<Vec<u8>> {
    s.get(key, None, |it| it.value.to_vec())
}

#[test]
fn set_get_delete() {
    let (s, _) = store();
    assert_eq!(
        s.store(StoreMode::Set, b"k", 5, 0, b"hello"),
        StoreOutcome::Stored
    );
    assert_eq!(
        s.get(b"k", None, |it| (it.value.to_vec(), it.flags)),
        Some((b"hello".to_vec(), 5))
    );
    assert!(delete(&s, b"k"));
    assert!(!delete(&s, b"k"));
    assert_eq!(get(&s, b"k"), None);
    let st = s.stats();
    assert_eq!(
        (st.get_hits, st.get_misses, st.delete_hits, st.delete_misses),
        (1, 1, 1, 1)
    );
    assert_eq!(s.memory_used(), 0);
}

#[test]
fn keys_spread_over_power_of_two_shards() {
    let (s, _) = store_with(StoreConfig {
        shards: 6,
        ..config()
    });
    assert_eq!(s.shard_count(), 8);
    let n = sized(800, 240);
    for i in 0..n {
        s.store(StoreMode::Set, format!("key{i}").as_bytes(), 0, 0, b"v");
    }
    let per_shard: Vec<usize> = s.shards.iter().map(|l| l.lock().len()).collect();
    assert_eq!(per_shard.iter().sum::<usize>(), n);
    assert!(
        per_shard.iter().all(|&k| k > n / 16),
        "uneven shards: {per_shard:?}"
    );
}

#[test]
fn add_replace_append_prepend() {
    let (s, _) = store();
    assert_eq!(
        s.store(StoreMode::Replace, b"k", 0, 0, b"x"),
        StoreOutcome::NotStored
    );
    assert_eq!(
        s.store(StoreMode::Append, b"k", 0, 0, b"x"),
        StoreOutcome::NotStored
    );
    assert_eq!(
        s.store(StoreMode::Add, b"k", 7, 0, b"mid"),
        StoreOutcome::Stored
    );
    assert_eq!(
        s.store(StoreMode::Add, b"k", 0, 0, b"no"),
        StoreOutcome::NotStored
    );
    assert_eq!(
        s.store(StoreMode::Append, b"k", 1, 0, b">>"),
        StoreOutcome::Stored
    );
    assert_eq!(
        s.store(StoreMode::Prepend, b"k", 1, 0, b"<<"),
        StoreOutcome::Stored
    );
    // append/prepend keep the original flags.
    assert_eq!(
        s.get(b"k", None, |it| (it.value.to_vec(), it.flags)),
        Some((b"<<mid>>".to_vec(), 7))
    );
    assert_eq!(
        s.store(StoreMode::Replace, b"k", 0, 0, b"new"),
        StoreOutcome::Stored
    );
    assert_eq!(get(&s, b"k"), Some(b"new".to_vec()));
}

#[test]
fn cas_checks_unique() {
    let (s, _) = store();
    assert_eq!(
        s.store(StoreMode::Cas(1), b"k", 0, 0, b"v"),
        StoreOutcome::NotFound
    );
    s.store(StoreMode::Set, b"k", 0, 0, b"v");
    let cas = s.get(b"k", None, |it| it.cas).unwrap();
    assert_ne!(cas, 0);
    assert_eq!(
        s.store(StoreMode::Cas(cas + 1), b"k", 0, 0, b"w"),
        StoreOutcome::Exists
    );
    assert_eq!(
        s.store(StoreMode::Cas(cas), b"k", 0, 0, b"w"),
        StoreOutcome::Stored
    );
    assert_eq!(
        s.store(StoreMode::Cas(cas), b"k", 0, 0, b"z"),
        StoreOutcome::Exists
    );
    let st = s.stats();
    assert_eq!((st.cas_misses, st.cas_hits, st.cas_badval), (1, 1, 2));
}

#[test]
fn cas_disabled_reports_zero() {
    let (s, _) = store_with(StoreConfig {
        use_cas: false,
        ..config()
    });
    s.store(StoreMode::Set, b"k", 0, 0, b"v");
    assert_eq!(s.get(b"k", None, |it| it.cas), Some(0));
}

#[test]
fn incr_decr_semantics() {
    let (s, _) = store();
    assert_eq!(delta(&s, b"n", true, 1), Err(ArithOutcome::NotFound));
    s.store(StoreMode::Set, b"n", 0, 0, b"100");
    assert_eq!(delta(&s, b"n", false, 1), Ok(99));
    // In place: the shorter number is padded with a space, as memcached does.
    assert_eq!(get(&s, b"n"), Some(b"99 ".to_vec()));
    assert_eq!(delta(&s, b"n", true, 1), Ok(100));
    assert_eq!(get(&s, b"n"), Some(b"100".to_vec()));
    assert_eq!(delta(&s, b"n", true, 900), Ok(1000));
    assert_eq!(get(&s, b"n"), Some(b"1000".to_vec()));
    assert_eq!(delta(&s, b"n", false, 5000), Ok(0));
    assert_eq!(get(&s, b"n"), Some(b"0   ".to_vec()));
    s.store(StoreMode::Set, b"n", 0, 0, b"18446744073709551615");
    assert_eq!(delta(&s, b"n", true, 2), Ok(1));
    s.store(StoreMode::Set, b"t", 0, 0, b"abc");
    assert_eq!(delta(&s, b"t", true, 1), Err(ArithOutcome::NonNumeric));
    s.store(StoreMode::Set, b"e", 0, 0, b"");
    assert_eq!(delta(&s, b"e", true, 1), Err(ArithOutcome::NonNumeric));
}

#[test]
fn incr_changes_cas() {
    let (s, _) = store();
    s.store(StoreMode::Set, b"n", 0, 0, b"1");
    let before = s.get(b"n", None, |it| it.cas).unwrap();
    assert_eq!(delta(&s, b"n", true, 1), Ok(2));
    let after = s.get(b"n", None, |it| it.cas).unwrap();
    assert!(after > before);
}

#[test]
fn exptime_rules() {
    let (s, clock) = store();
    s.store(StoreMode::Set, b"neg", 0, -1, b"v");
    assert_eq!(get(&s, b"neg"), None);
    s.store(StoreMode::Set, b"rel", 0, 10, b"v");
    s.store(StoreMode::Set, b"abs_past", 0, (ORIGIN - 100) as i64, b"v");
    s.store(StoreMode::Set, b"abs", 0, (ORIGIN + 20) as i64, b"v");
    s.store(StoreMode::Set, b"never", 0, 0, b"v");
    assert_eq!(get(&s, b"abs_past"), None);
    clock.advance_secs(9);
    assert!(get(&s, b"rel").is_some());
    clock.advance_secs(1);
    assert_eq!(get(&s, b"rel"), None);
    assert!(get(&s, b"abs").is_some());
    clock.advance_secs(10);
    assert_eq!(get(&s, b"abs"), None);
    assert!(get(&s, b"never").is_some());
    assert!(s.stats().get_expired >= 2);
}

#[test]
fn touch_and_gat_extend_life() {
    let (s, clock) = store();
    s.store(StoreMode::Set, b"k", 0, 5, b"v");
    assert!(s.touch(b"k", 100));
    clock.advance_secs(50);
    assert!(s.get(b"k", Some(2), |_| ()).is_some());
    clock.advance_secs(2);
    assert_eq!(get(&s, b"k"), None);
    assert!(!s.touch(b"k", 1));
}

#[test]
fn wheel_reclaims_without_reads() {
    let (s, clock) = store();
    let n = sized(1000, 100);
    for i in 0..n {
        s.store(StoreMode::Set, format!("k{i}").as_bytes(), 0, 2, b"v");
    }
    for i in 0..10 {
        s.store(StoreMode::Set, format!("long{i}").as_bytes(), 0, 1000, b"v");
    }
    assert_eq!(s.scheduled(), n + 10);
    assert_eq!(s.housekeep(64), 0);
    clock.advance_secs(1);
    assert_eq!(s.housekeep(64), 0);
    clock.advance_secs(1);
    // Bounded batches still finish the whole backlog in one call.
    assert_eq!(s.housekeep(64), n);
    assert_eq!(s.len(), 10);
    let st = s.stats();
    assert_eq!(
        (st.reclaimed, st.expired_unfetched, st.curr_items),
        (n as u64, n as u64, 10)
    );
    clock.advance_secs(998);
    assert_eq!(s.housekeep(64), 10);
    assert!(s.is_empty());
    assert_eq!(s.scheduled(), 0);
    assert_eq!(s.memory_used(), 0);
}

#[test]
fn rewritten_and_touched_items_are_rescheduled_not_duplicated() {
    let (s, clock) = store();
    for _ in 0..sized(100, 20) {
        s.store(StoreMode::Set, b"k", 0, 3, b"v");
    }
    assert_eq!(s.scheduled(), 1);
    s.touch(b"k", 0);
    assert_eq!(s.scheduled(), 0);
    clock.advance_secs(10);
    assert_eq!(s.housekeep(10), 0);
    assert!(get(&s, b"k").is_some());
}

#[test]
fn eviction_removes_least_recently_used_first() {
    // 200 KiB of memory (60 KiB under Miri), items of one class.
    let limit = sized(200, 60) as u64 * 1024;
    let (s, _) = store_with(StoreConfig {
        memory_limit: limit,
        shards: 1,
        ..config()
    });
    let value = vec![b'x'; 900]; // class of 1184-byte chunks
    let (count, fetch_at) = (sized(300, 90), sized(50, 15));
    let mut stored = 0;
    for i in 0..count {
        assert_eq!(
            s.store(StoreMode::Set, format!("k{i}").as_bytes(), 0, 0, &value),
            StoreOutcome::Stored
        );
        stored += 1;
        if i == fetch_at {
            // k0 is fetched twice: it becomes active and survives its first trip to the tail.
            get(&s, b"k0");
            get(&s, b"k0");
        }
    }
    assert!(s.memory_used() <= limit);
    let st = s.stats();
    assert!(st.evictions > 0);
    assert_eq!(st.curr_items + st.evictions, stored);
    assert!(get(&s, b"k1").is_none(), "oldest evicted first");
    let newest = format!("k{}", count - 1);
    assert!(get(&s, newest.as_bytes()).is_some(), "newest kept");
    assert!(
        get(&s, b"k0").is_some(),
        "second chance for the active item"
    );
}

#[test]
fn eviction_crosses_shards_and_classes() {
    let limit = sized(100, 16) as u64 * 1024;
    let (s, _) = store_with(StoreConfig {
        memory_limit: limit,
        shards: sized(16, 8),
        ..config()
    });
    // More small items (96-byte chunks) than the memory holds, then big ones of another class.
    for i in 0..sized(2000, 200) {
        assert_eq!(
            s.store(StoreMode::Set, format!("small{i}").as_bytes(), 0, 0, b"v"),
            StoreOutcome::Stored
        );
    }
    let big = vec![b'b'; sized(20_000, 6_000)];
    for i in 0..3 {
        assert_eq!(
            s.store(StoreMode::Set, format!("big{i}").as_bytes(), 0, 0, &big),
            StoreOutcome::Stored
        );
    }
    assert!(s.memory_used() <= limit);
    assert!(get(&s, b"big2").is_some());
}

#[test]
fn no_evict_answers_out_of_memory() {
    let (s, _) = store_with(StoreConfig {
        memory_limit: 64 * 1024,
        no_evict: true,
        shards: 2,
        ..config()
    });
    let value = vec![b'x'; 1000];
    let mut outcomes = Vec::new();
    for i in 0..sized(100, 70) {
        outcomes.push(s.store(StoreMode::Set, format!("k{i}").as_bytes(), 0, 0, &value));
    }
    assert!(outcomes.contains(&StoreOutcome::NoMemory));
    assert_eq!(s.stats().evictions, 0);
    assert!(get(&s, b"k0").is_some());
}

#[test]
fn too_large_set_drops_old_value() {
    let (s, _) = store_with(StoreConfig {
        max_item_size: 2048,
        slab_chunk_max: 1024,
        ..config()
    });
    s.store(StoreMode::Set, b"k", 0, 0, b"old");
    assert_eq!(
        s.store(StoreMode::Set, b"k", 0, 0, &[b'x'; 3000]),
        StoreOutcome::TooLarge
    );
    assert_eq!(get(&s, b"k"), None);
    s.store(StoreMode::Set, b"j", 0, 0, b"old");
    assert_eq!(
        s.store(StoreMode::Add, b"j", 0, 0, &[b'x'; 3000]),
        StoreOutcome::NotStored
    );
    assert_eq!(
        s.store(StoreMode::Replace, b"j", 0, 0, &[b'x'; 3000]),
        StoreOutcome::TooLarge
    );
    assert_eq!(get(&s, b"j"), Some(b"old".to_vec()));
}

#[test]
fn flush_now_and_delayed() {
    let (s, clock) = store();
    s.store(StoreMode::Set, b"a", 0, 0, b"1");
    s.flush_all(0);
    assert_eq!(get(&s, b"a"), None);
    assert_eq!(s.memory_used(), 0);
    s.store(StoreMode::Set, b"b", 0, 0, b"1");
    s.flush_all(10);
    clock.advance_secs(8);
    assert!(get(&s, b"b").is_some());
    clock.advance_secs(1);
    assert_eq!(get(&s, b"b"), None);
    s.store(StoreMode::Set, b"c", 0, 0, b"1");
    clock.advance_secs(5);
    assert!(get(&s, b"c").is_some(), "a delayed flush happens once");
}

#[test]
fn flush_is_lazy_then_swept() {
    let (s, _) = store();
    for i in 0..sized(100, 40) {
        s.store(StoreMode::Set, format!("k{i}").as_bytes(), 0, 0, b"v");
    }
    s.flush_all(0);
    s.store(StoreMode::Set, b"after", 0, 0, b"v");
    assert_eq!(get(&s, b"k0"), None);
    assert_eq!(s.stats().get_flushed, 1);
    s.housekeep(16);
    assert_eq!(s.len(), 1);
    assert_eq!(s.memory_used(), 96);
    assert!(get(&s, b"after").is_some());
}

#[test]
fn cas_disabled_refuses_cas_on_existing_items() {
    let (s, _) = store_with(StoreConfig {
        use_cas: false,
        ..config()
    });
    s.store(StoreMode::Set, b"k", 0, 0, b"v");
    assert_eq!(
        s.store(StoreMode::Cas(0), b"k", 0, 0, b"w"),
        StoreOutcome::Exists
    );
}

#[test]
fn append_past_the_item_limit_is_not_stored() {
    let (s, _) = store_with(StoreConfig {
        max_item_size: 2048,
        slab_chunk_max: 1024,
        ..config()
    });
    s.store(StoreMode::Set, b"k", 0, 0, &[b'x'; 1500]);
    assert_eq!(
        s.store(StoreMode::Append, b"k", 0, 0, &[b'y'; 1000]),
        StoreOutcome::NotStored
    );
    assert_eq!(get(&s, b"k").map(|v| v.len()), Some(1500));
}

#[test]
fn lowering_the_memory_limit_evicts_on_next_store() {
    let (s, _) = store_with(StoreConfig {
        shards: 1,
        ..config()
    });
    for i in 0..sized(100, 40) {
        s.store(
            StoreMode::Set,
            format!("k{i}").as_bytes(),
            0,
            0,
            &[b'v'; 1000],
        );
    }
    s.set_memory_limit(20 * 1024);
    s.store(StoreMode::Set, b"new", 0, 0, &[b'v'; 1000]);
    assert!(s.memory_used() <= 20 * 1024);
}

#[test]
fn class_stats_sum_shards() {
    let (s, _) = store();
    for i in 0..10 {
        s.store(StoreMode::Set, format!("k{i}").as_bytes(), 0, 0, b"v");
    }
    let cs = s.class_stats();
    assert_eq!(cs[0].id, 1);
    assert_eq!(cs[0].counters.count, 10);
    assert_eq!(cs[0].counters.charged, 960);
    assert_eq!(s.memory_used(), 960);
}

#[test]
fn concurrent_incr_is_atomic() {
    let (s, _) = store();
    let s = Arc::new(s);
    s.store(StoreMode::Set, b"ctr", 0, 0, b"0");
    let n = sized(5000, 50);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                for _ in 0..n {
                    delta(&s, b"ctr", true, 1).expect("a counter");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(get(&s, b"ctr"), Some((4 * n).to_string().into_bytes()));
}

#[test]
fn chained_table_survives_growth_and_removal_from_chain_middles() {
    // One shard, so 5,000 keys (200 under Miri) grow the chain heads from 64 several times
    // (twice at least) and chains are long enough that deletes unlink from their middles;
    // values cross the inline/heap boundary.
    let (s, _) = store_with(StoreConfig {
        shards: 1,
        memory_limit: 1 << 30,
        ..config()
    });
    let n = sized(5_000, 200) as u32;
    let key = |i: u32| format!("key:{i}").into_bytes();
    let value = |i: u32| vec![b'a' + (i % 26) as u8; (i % 40) as usize];
    for i in 0..n {
        assert_eq!(
            s.store(StoreMode::Set, &key(i), 0, 0, &value(i)),
            StoreOutcome::Stored
        );
    }
    for i in (0..n).step_by(3) {
        assert!(delete(&s, &key(i)), "{i}");
    }
    for i in (1..n).step_by(7) {
        // Grow inline values onto the heap and shrink heap values inline, in place.
        s.store(StoreMode::Set, &key(i), 0, 0, &value(i + 20));
    }
    for i in 0..n {
        // The rewrite loop also stores again some of the deleted keys.
        let want = if i % 7 == 1 {
            Some(value(i + 20))
        } else if i % 3 == 0 {
            None
        } else {
            Some(value(i))
        };
        assert_eq!(get(&s, &key(i)), want, "key {i}");
    }
    let live = (0..n).filter(|i| i % 7 == 1 || i % 3 != 0).count();
    assert_eq!(s.len(), live);
}
