//! Store tests of what is read outside a shard's lock: values shared past it
//! ([`super::SharedValue`]) and the lock-free prefetch index. `scripts/miri.sh` runs them.

use std::sync::Arc;

use super::tests::{config, delete, delta, get, sized, store, store_with};
use super::*;

#[test]
fn shared_values_outlive_overwrite_delete_and_in_place_writes() {
    let (s, _) = store();
    s.store(StoreMode::Set, b"small", 0, 0, b"v");
    let inline = s.get(b"small", None, |it| it.shared_value());
    assert!(matches!(inline, Some(None)), "inline values are copied");

    let old = vec![b'o'; 1000];
    s.store(StoreMode::Set, b"big", 0, 0, &old);
    let shared = s.get(b"big", None, |it| it.shared_value()).unwrap();
    let shared = shared.expect("a heap value");
    s.store(StoreMode::Set, b"big", 0, 0, b"replaced");
    let kept = s.get(b"big", None, |it| it.shared_value()).unwrap();
    assert!(kept.is_none(), "the new value is inline");
    s.store(StoreMode::Set, b"big", 0, 0, &[b'n'; 500]);
    let newer = s
        .get(b"big", None, |it| it.shared_value())
        .unwrap()
        .unwrap();
    assert!(delete(&s, b"big"));
    assert_eq!(shared.as_slice(), &old[..]);
    assert_eq!(newer.as_slice(), &[b'n'; 500][..]);

    // A counter under a long key lives on the heap; incr writes it in place, but not into
    // the block a reader holds.
    let key = [b'c'; 40];
    s.store(StoreMode::Set, &key, 0, 0, b"100");
    let before = s.get(&key, None, |it| it.shared_value()).unwrap().unwrap();
    assert_eq!(delta(&s, &key, true, 1), Ok(101));
    assert_eq!(before.as_slice(), b"100");
    assert_eq!(get(&s, &key), Some(b"101".to_vec()));

    assert!(delete(&s, &key) && delete(&s, b"small"));
    assert_eq!(s.memory_used(), 0);
}

#[test]
fn prefetching_while_the_table_grows_reads_no_freed_memory() {
    // One shard whose chain heads double several times while another thread prefetches:
    // an old head array is freed through the epoch, never under a pinned prefetcher, and item
    // addresses are only computed. Under Miri this checks the unsafe reads of `ShardIndex`.
    let (s, _) = store_with(StoreConfig {
        shards: 1,
        memory_limit: 1 << 30,
        ..config()
    });
    let s = Arc::new(s);
    let n = sized(5_000, 200);
    let keys: Arc<Vec<Vec<u8>>> = Arc::new((0..n).map(|i| format!("p{i}").into_bytes()).collect());
    let prefetcher = {
        let (s, keys) = (s.clone(), keys.clone());
        std::thread::spawn(move || {
            for round in 0..sized(2_000, 30) {
                let batch: Vec<&[u8]> = (0..16).map(|j| &keys[(round * 16 + j) % n][..]).collect();
                s.prefetch(&batch);
                std::thread::yield_now();
            }
        })
    };
    for (i, k) in keys.iter().enumerate() {
        let value = vec![b'v'; i % 50];
        assert_eq!(
            s.store(StoreMode::Set, k, 0, 0, &value),
            StoreOutcome::Stored
        );
    }
    prefetcher.join().unwrap();
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(get(&s, k), Some(vec![b'v'; i % 50]), "key {i}");
    }
}
