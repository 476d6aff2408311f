//! Tests of the limiter table: decisions, concurrency, memory budget, expiry, width changes.

use std::sync::Arc;

use super::*;
use crate::clock::MockClock;
use crate::ratelimit::Tat;

fn limiter(memory: u64, evict: bool) -> (Limiter, Arc<MockClock>) {
    let clock = Arc::new(MockClock::new(1_700_000_000));
    let cfg = LimiterConfig {
        memory_limit: memory,
        evict,
    };
    (Limiter::new(cfg, clock.clone()), clock)
}

fn subject(key: &[u8]) -> Subject<'_> {
    Subject::of(key)
}

/// A counter kept as a fixed-window state: `count` spent, full again after `ttl_s`.
fn bump(l: &Limiter, key: &[u8], max: u64, ttl_s: u64) -> Result<bool, Refused> {
    l.update_one(subject(key), |found, now| {
        let count = match found {
            Some(State::Fixed { count, .. }) => count,
            _ => 0,
        };
        if count >= max {
            return (false, None);
        }
        let state = State::Fixed {
            last_ns: now,
            count: count + 1,
        };
        (
            true,
            Some(NewState {
                state,
                ttl_ns: u128::from(ttl_s) * 1_000_000_000,
            }),
        )
    })
}

fn count(l: &Limiter, key: &[u8]) -> u64 {
    let locked = l
        .update_one(subject(key), |found, _| match found {
            Some(State::Fixed { count, .. }) => (count, None),
            _ => (0, None),
        })
        .unwrap();
    let read = match l.read_one(subject(key)).0 {
        Some(State::Fixed { count, .. }) => count,
        _ => 0,
    };
    assert_eq!(locked, read, "a lock-free read sees what a locked one sees");
    locked
}

#[test]
fn states_are_kept_per_subject_and_repeat() {
    let (l, _) = limiter(64 << 20, true);
    for i in 0..3 {
        assert_eq!(bump(&l, b"a", 10, 60), Ok(true), "{i}");
    }
    bump(&l, b"b", 10, 60).unwrap();
    assert_eq!(
        (count(&l, b"a"), count(&l, b"b"), count(&l, b"c")),
        (3, 1, 0)
    );
    let second = Subject {
        repeat: 1,
        ..Subject::of(b"a")
    };
    assert!(!l.contains(second));
    assert_eq!(l.stats().keys, 2);
    assert!(l.reset(b"a") && !l.reset(b"a"));
    assert_eq!(count(&l, b"a"), 0);
    l.flush();
    assert_eq!((l.stats().keys, count(&l, b"b")), (0, 0));
}

#[test]
fn prefetching_while_the_index_rebuilds_and_entries_move_is_harmless() {
    // One thread warms subjects (lock-free reads of published indexes and slots) while
    // another adds, grows, removes and flushes them: Miri checks that no prefetch reads freed
    // memory; the states stay exact.
    let (l, _) = limiter(64 << 20, true);
    let l = Arc::new(l);
    let n = if cfg!(miri) { 40 } else { 5_000 };
    let keys: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    let writer = {
        let (l, keys) = (l.clone(), keys.clone());
        std::thread::spawn(move || {
            for (i, k) in keys.iter().enumerate() {
                bump(&l, k.as_bytes(), 5, 60).unwrap();
                if i % 7 == 0 {
                    l.reset(k.as_bytes());
                }
            }
            l.flush();
            for k in &keys {
                bump(&l, k.as_bytes(), 5, 60).unwrap();
            }
        })
    };
    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
    for _ in 0..if cfg!(miri) { 4 } else { 200 } {
        for batch in refs.chunks(16) {
            l.prefetch(batch);
        }
    }
    writer.join().unwrap();
    assert_eq!(l.stats().keys, n as u64);
    assert!(refs.iter().all(|k| count(&l, k) == 1));
}

#[test]
fn many_threads_on_one_subject_admit_exactly_the_limit() {
    let (l, _) = limiter(64 << 20, true);
    let l = Arc::new(l);
    let (threads, tries, max) = if cfg!(miri) {
        (3, 20, 25)
    } else {
        (8, 5_000, 20_000)
    };
    let admitted: u64 = (0..threads)
        .map(|_| {
            let l = l.clone();
            std::thread::spawn(move || {
                (0..tries)
                    .filter(|_| bump(&l, b"hot", max, 60).unwrap())
                    .count() as u64
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(admitted, max.min(threads * tries));
    assert_eq!(count(&l, b"hot"), admitted);
}

#[test]
fn states_full_again_read_as_absent_and_are_swept() {
    let (l, clock) = limiter(64 << 20, true);
    let n = if cfg!(miri) { 20 } else { 2_000 };
    for i in 0..n {
        bump(&l, format!("k{i}").as_bytes(), 5, 2).unwrap();
    }
    assert_eq!(l.stats().keys, n);
    clock.advance_secs(1);
    assert_eq!(count(&l, b"k0"), 1, "not full again yet");
    clock.advance_secs(2);
    assert_eq!(count(&l, b"k0"), 0, "full again: reads as absent");
    assert_eq!(l.housekeep(usize::MAX), n as usize);
    let st = l.stats();
    assert_eq!((st.keys, st.reclaimed, st.evictions), (0, n, 0));
}

#[test]
fn a_full_limiter_drops_full_states_first_then_the_closest_to_full() {
    // A budget of a few states per shard (a minimal index is 128 bytes, an entry 32), far
    // fewer than the subjects that come.
    let per_shard = if cfg!(miri) { 128 + 8 * 32 } else { 2048 };
    let budget = (SHARDS * per_shard) as u64;
    let (l, clock) = limiter(budget, true);
    let n = if cfg!(miri) { 1_000 } else { 20_000 };
    // Long-lived states first, then short-lived ones once time has moved.
    for i in 0..n {
        bump(&l, format!("long{i}").as_bytes(), 5, 3600).unwrap();
    }
    let st = l.stats();
    assert!(st.bytes <= budget + (SHARDS * 512) as u64, "{st:?}");
    assert!(st.evictions > 0 && st.keys < n);
    // The newest subjects are kept: the victim is the state closest to full.
    assert_eq!(count(&l, format!("long{}", n - 1).as_bytes()), 1);
    clock.advance_secs(7200);
    let before = l.stats();
    // Far fewer new subjects than states full again in any shard.
    let fresh = if cfg!(miri) { 20 } else { 200 };
    for i in 0..fresh {
        bump(&l, format!("new{i}").as_bytes(), 5, 60).unwrap();
    }
    let after = l.stats();
    assert_eq!(after.evictions, before.evictions, "full states went first");
    // Every new subject is kept; a shard that happened to hash fewer subjects than it has
    // room for takes one without reclaiming, so count what the new ones displaced.
    for i in 0..fresh {
        assert_eq!(count(&l, format!("new{i}").as_bytes()), 1);
    }
    let reclaimed = after.reclaimed - before.reclaimed;
    assert!(reclaimed > 0);
    assert_eq!(
        after.keys + reclaimed,
        before.keys + fresh,
        "{before:?} {after:?}"
    );
    assert_eq!(
        l.live_by_group().policy[0],
        after.keys,
        "evictions are uncounted too"
    );
}

#[test]
fn the_deny_policy_refuses_new_subjects_when_full() {
    // Room for a few states per shard, far fewer than the subjects that come.
    let per_shard = if cfg!(miri) { 128 + 2 * 32 } else { 1024 };
    let budget = (SHARDS * per_shard) as u64;
    let (l, clock) = limiter(budget, false);
    let n = if cfg!(miri) { 600 } else { 5_000 };
    let refused = (0..n)
        .filter(|i| bump(&l, format!("s{i}").as_bytes(), 5, 3600) == Err(Refused))
        .count();
    assert!(refused > 0);
    assert_eq!(l.stats().evictions, 0);
    // Existing subjects are still decided; once their states are full again, new ones fit.
    assert_eq!(bump(&l, b"s0", 5, 3600), Ok(true));
    clock.advance_secs(4000);
    assert_eq!(bump(&l, b"fresh", 5, 3600), Ok(true));
}

#[test]
fn a_state_moves_between_widths_and_algorithms() {
    let (l, _) = limiter(64 << 20, true);
    let write = |state: State| {
        l.update_one(subject(b"w"), move |found, _| {
            (
                found,
                Some(NewState {
                    state,
                    ttl_ns: 60_000_000_000,
                }),
            )
        })
        .unwrap()
    };
    let narrow = State::Gcra(Tat::from_ns(5));
    let wide = State::Gcra(Tat::new(1 << 80, 1, 3).unwrap());
    let sliding = State::Sliding {
        curr_last_ns: 1,
        curr: 2,
        prev_last_ns: 0,
        prev: 3,
    };
    assert_eq!(write(narrow), None);
    assert_eq!(write(wide), Some(narrow));
    assert_eq!(write(sliding), Some(wide));
    assert_eq!(write(narrow), Some(sliding));
    let fixed = State::Fixed {
        last_ns: 9,
        count: 4,
    };
    assert_eq!(write(fixed), Some(narrow));
    assert_eq!(count(&l, b"w"), 4);
    assert_eq!(l.stats().keys, 1);
}

#[test]
fn several_subjects_are_written_all_or_none() {
    let (l, _) = limiter(64 << 20, true);
    let subjects = [
        subject(b"x"),
        subject(b"y"),
        Subject {
            repeat: 1,
            ..Subject::of(b"x")
        },
    ];
    let run = |allow: bool| {
        l.update_many(&subjects, |found, now| {
            let counts: Vec<u64> = found
                .iter()
                .map(|f| match f {
                    Some(State::Fixed { count, .. }) => *count,
                    _ => 0,
                })
                .collect();
            let writes = counts
                .iter()
                .map(|&c| {
                    allow.then_some(NewState {
                        state: State::Fixed {
                            last_ns: now,
                            count: c + 1,
                        },
                        ttl_ns: 60_000_000_000,
                    })
                })
                .collect();
            (counts, writes)
        })
        .unwrap()
    };
    assert_eq!(run(true), vec![0, 0, 0]);
    assert_eq!(run(false), vec![1, 1, 1]);
    assert_eq!(run(true), vec![1, 1, 1]);
    assert_eq!(run(true), vec![2, 2, 2]);
    assert_eq!(l.stats().keys, 3);
    assert!(l.reset(b"x"));
    assert_eq!(
        run(false),
        vec![0, 3, 0],
        "a reset forgets every repeat of the key"
    );
}

#[test]
fn saved_states_restore_under_the_same_seeds() {
    let (l, clock) = limiter(64 << 20, true);
    for i in 0..50 {
        for _ in 0..(i % 5 + 1) {
            bump(&l, format!("r{i}").as_bytes(), 10, 600).unwrap();
        }
    }
    let mut saved = Vec::new();
    l.for_each(|shard, id, state, expiry| saved.push((shard, id, state, expiry)));
    assert_eq!(saved.len(), 50);
    let copy = Limiter::with_seeds(l.config(), clock.clone(), l.seeds());
    for (shard, id, state, expiry) in saved {
        copy.restore(shard, id, state, expiry).unwrap();
    }
    for i in 0..50 {
        assert_eq!(count(&copy, format!("r{i}").as_bytes()), i % 5 + 1);
    }
}

#[test]
fn memory_per_subject_stays_compact() {
    // 32-byte entries plus 9 to 13 bytes of index per subject (arena segments are counted
    // whole here; untouched pages of the last one cost no RSS).
    let (l, _) = limiter(1 << 30, true);
    let n = if cfg!(miri) { 500 } else { 200_000 };
    for i in 0..n {
        bump(&l, format!("user:{i:015}").as_bytes(), 5, 600).unwrap();
    }
    let st = l.stats();
    assert_eq!(st.keys, n);
    let per = st.bytes as f64 / n as f64;
    eprintln!("limiter: {per:.1} bytes per subject ({st:?})");
    assert!(per <= 48.0 || cfg!(miri), "{per} bytes per subject");
}

#[test]
fn live_states_are_counted_in_the_group_that_created_them() {
    let (l, clock) = limiter(64 << 20, true);
    let g = |policy, prefix| Group { policy, prefix };
    let write = |key: &'static [u8], group: Group, state: State, ttl_s: u64| {
        let s = Subject {
            group,
            ..Subject::of(key)
        };
        l.update_one(s, move |_, _| {
            let ttl_ns = u128::from(ttl_s) * 1_000_000_000;
            ((), Some(NewState { state, ttl_ns }))
        })
        .unwrap()
    };
    let live = |l: &Limiter| {
        let all = l.live_by_group();
        assert_eq!(all.policy.iter().sum::<u64>(), l.stats().keys);
        assert_eq!(all.prefix.iter().sum::<u64>(), l.stats().keys);
        (all.policy[1], all.policy[2], all.prefix[3], all.prefix[4])
    };
    let narrow = State::Gcra(Tat::from_ns(5));
    let wide = State::Gcra(Tat::new(1 << 80, 1, 3).unwrap());
    write(b"a", g(1, 3), narrow, 600);
    write(b"b", g(2, 3), narrow, 5);
    assert_eq!(live(&l), (1, 1, 2, 0));
    // Later writes, from another group, of the same or the other width, keep the group.
    write(b"a", g(2, 4), narrow, 600);
    write(b"a", g(2, 4), wide, 600);
    assert_eq!(live(&l), (1, 1, 2, 0));
    let subjects = [
        Subject {
            group: g(2, 4),
            ..Subject::of(b"a")
        },
        Subject {
            group: g(2, 4),
            ..Subject::of(b"c")
        },
    ];
    l.update_many(&subjects, |_, _| {
        let n = Some(NewState {
            state: narrow,
            ttl_ns: 600_000_000_000,
        });
        ((), [n, n].into_iter().collect())
    })
    .unwrap();
    assert_eq!(
        live(&l),
        (1, 2, 2, 1),
        "a keeps (1, 3) across its move back; c is new"
    );
    // Freed by expiry, by reset and by flush.
    clock.advance_secs(10);
    l.housekeep(1 << 20);
    assert_eq!(live(&l), (1, 1, 1, 1));
    assert!(l.reset(b"a"));
    assert_eq!(live(&l), (0, 1, 0, 1));
    // Saved states come back in no group, and under a pre-group identity too.
    let mut saved = Vec::new();
    l.for_each(|shard, id, state, expiry| saved.push((shard, id, state, expiry)));
    l.flush();
    assert_eq!(live(&l), (0, 0, 0, 0));
    for (shard, id, state, expiry) in saved {
        let old = Ident::from_saved(id.id | 0x5a5a << 3, id.tag);
        l.restore(shard, old, state, expiry).unwrap();
    }
    assert_eq!((live(&l), l.stats().keys), ((0, 0, 0, 0), 1));
    assert!(l.contains(subject(b"c")));
}
