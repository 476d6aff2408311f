//! Server-state items: hidden keys (a key space no client command reaches) and state TTLs.

use std::sync::Arc;

use super::*;
use crate::clock::MockClock;

fn store() -> (Store, Arc<MockClock>) {
    let clock = Arc::new(MockClock::new(1_700_000_000));
    (Store::new(&StoreConfig::default(), clock.clone()), clock)
}

/// Writes `value` under `key` through update_many (as the rate limiter does) with `ttl_ns`.
fn write(s: &Store, key: StateKey<'_>, value: &[u8], ttl_ns: Option<u64>) {
    s.update_many(&[key], |_, _| {
        let mut w = Writes::new();
        w.push(Some(Write {
            value: SmallVec::from_slice(value),
            ttl_ns,
        }));
        ((), w)
    })
    .unwrap();
}

/// What update_many sees under `key`: (value, internal).
fn read(s: &Store, key: StateKey<'_>) -> Option<(Vec<u8>, bool)> {
    s.update_many(&[key], |cur, _| {
        let seen = cur[0].map(|c| (c.value.to_vec(), c.internal));
        (seen, Writes::new())
    })
    .unwrap()
}

const HIDDEN: &[u8] = b"u42\0\x01";

#[test]
fn no_client_path_reaches_a_hidden_item() {
    let (s, _) = store();
    write(&s, StateKey::hidden(HIDDEN), b"\x00\x11state", None);
    assert_eq!(s.len(), 1);
    // Reads, touches, deletes and arithmetic all miss.
    assert_eq!(s.get(HIDDEN, None, |it| it.value.to_vec()), None);
    assert_eq!(s.get(HIDDEN, Some(100), |it| it.value.to_vec()), None);
    assert!(!s.touch(HIDDEN, 100));
    assert!(!s.delete(HIDDEN));
    assert_eq!(s.delete_cas(HIDDEN, 1), MetaDelete::NotFound);
    assert_eq!(s.delta(HIDDEN, true, 1), DeltaOutcome::NotFound);
    assert!(s.meta_peek(HIDDEN, |it| it.is_none()));
    assert!(s.meta_get(HIDDEN, MetaGet::default(), |it| it.is_none()));
    assert_eq!(
        s.meta_delete(HIDDEN, None, false, None),
        MetaDelete::NotFound
    );
    assert_eq!(
        s.store(StoreMode::Replace, HIDDEN, 0, 0, b"x"),
        StoreOutcome::NotStored
    );
    assert_eq!(
        s.store(StoreMode::Append, HIDDEN, 0, 0, b"x"),
        StoreOutcome::NotStored
    );
    // The hidden state is untouched by all of that.
    assert_eq!(
        read(&s, StateKey::hidden(HIDDEN)),
        Some((b"\x00\x11state".to_vec(), true))
    );
    assert_eq!(s.len(), 1);
}

#[test]
fn a_client_key_with_the_same_bytes_is_another_item() {
    let (s, _) = store();
    write(&s, StateKey::hidden(HIDDEN), b"state", None);
    assert_eq!(
        s.store(StoreMode::Add, HIDDEN, 3, 0, b"client"),
        StoreOutcome::Stored
    );
    assert_eq!(s.len(), 2);
    assert_eq!(
        s.get(HIDDEN, None, |it| (it.value.to_vec(), it.flags)),
        Some((b"client".to_vec(), 3))
    );
    assert_eq!(
        read(&s, StateKey::visible(HIDDEN)),
        Some((b"client".to_vec(), false))
    );
    assert_eq!(
        read(&s, StateKey::hidden(HIDDEN)),
        Some((b"state".to_vec(), true))
    );
    // Writing the hidden state leaves the client's value alone, and the other way round.
    write(&s, StateKey::hidden(HIDDEN), b"state2", None);
    assert_eq!(
        s.store(StoreMode::Set, HIDDEN, 0, 0, b"client2"),
        StoreOutcome::Stored
    );
    assert_eq!(
        s.get(HIDDEN, None, |it| it.value.to_vec()),
        Some(b"client2".to_vec())
    );
    assert_eq!(
        read(&s, StateKey::hidden(HIDDEN)),
        Some((b"state2".to_vec(), true))
    );
    assert!(s.delete(HIDDEN));
    assert!(!s.delete(HIDDEN));
    assert_eq!(
        read(&s, StateKey::hidden(HIDDEN)),
        Some((b"state2".to_vec(), true))
    );
    let st = s.stats();
    assert_eq!((st.curr_items, st.internal_items), (1, 1));
}

#[test]
fn hidden_and_visible_states_of_one_call_stay_apart() {
    let (s, _) = store();
    let keys = [StateKey::visible(b"k"), StateKey::hidden(b"k")];
    s.update_many(&keys, |cur, _| {
        assert!(cur.iter().all(Option::is_none));
        let w = |v: &[u8]| {
            Some(Write {
                value: SmallVec::from_slice(v),
                ttl_ns: None,
            })
        };
        ((), [w(b"first"), w(b"second")].into_iter().collect())
    })
    .unwrap();
    let seen = s
        .update_many(&keys, |cur, _| {
            let v: Vec<Vec<u8>> = cur.iter().map(|c| c.unwrap().value.to_vec()).collect();
            (v, Writes::new())
        })
        .unwrap();
    assert_eq!(seen, [b"first".to_vec(), b"second".to_vec()]);
    assert_eq!(
        s.get(b"k", None, |it| it.value.to_vec()),
        Some(b"first".to_vec())
    );
}

#[test]
fn hidden_items_expire_flush_and_survive_table_growth() {
    let (s, clock) = store();
    write(&s, StateKey::hidden(b"short"), b"v", Some(1_500_000_000));
    write(&s, StateKey::hidden(HIDDEN), b"v", None);
    // Many client keys, some with the hidden keys' bytes, grow the chain heads several times.
    for i in 0..5_000u32 {
        s.store(StoreMode::Set, format!("key{i}").as_bytes(), 0, 0, b"x");
    }
    s.store(StoreMode::Set, b"short", 0, 0, b"client");
    assert_eq!(read(&s, StateKey::hidden(HIDDEN)).unwrap().0, b"v");
    assert_eq!(read(&s, StateKey::hidden(b"short")).unwrap().0, b"v");
    clock.advance_secs(3);
    s.housekeep(10_000);
    assert_eq!(read(&s, StateKey::hidden(b"short")), None);
    assert_eq!(
        s.get(b"short", None, |it| it.value.to_vec()),
        Some(b"client".to_vec())
    );
    s.flush_all(0);
    assert_eq!(read(&s, StateKey::hidden(HIDDEN)), None);
}

#[test]
fn state_ttls_round_up_and_far_ones_never_expire() {
    const S: u64 = 1_000_000_000;
    let base = u64::from(TIME_BASE);
    assert_eq!(state_exptime(10 * S, None), 0);
    assert_eq!(state_exptime(10 * S, Some(0)), 10 + TIME_BASE);
    assert_eq!(state_exptime(10 * S, Some(1)), 11 + TIME_BASE);
    // The last second the store's 32-bit relative time can hold, then beyond it: never.
    let last = (u64::from(u32::MAX) - base) * S;
    assert_eq!(state_exptime(0, Some(last)), u32::MAX);
    assert_eq!(state_exptime(0, Some(last + 1)), 0);
    assert_eq!(state_exptime(5 * S, Some(u64::MAX)), 0);
    assert_eq!(state_exptime(u64::MAX, Some(u64::MAX)), 0);
}

#[test]
fn a_far_future_state_is_kept() {
    let (s, clock) = store();
    write(&s, StateKey::visible(b"far"), b"v", Some(u64::MAX));
    clock.advance_secs(10 * 365 * 86_400);
    s.housekeep(100);
    assert_eq!(read(&s, StateKey::visible(b"far")).unwrap().0, b"v");
}
