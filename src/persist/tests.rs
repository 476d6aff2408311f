//! Save and restore across a simulated restart: two processes' clocks, a downtime between them.

use std::sync::Arc;

use super::*;
use crate::clock::{Clock, MockClock};
use crate::limiter::LimiterConfig;
use crate::ratelimit::{apply, Algorithm, Limit, Mode, Params};
use crate::store::{StoreConfig, StoreMode};

const S: u64 = 1_000_000_000;

struct Process {
    clock: Arc<MockClock>,
    store: Store,
    limiter: Limiter,
}

impl Process {
    /// A process started at Unix second `origin`, with the limiter seeds of `seeds` (or fresh).
    fn start(origin: u64, seeds: Option<[u64; 8]>) -> Process {
        let clock = Arc::new(MockClock::new(origin));
        let cfg = LimiterConfig::default();
        let limiter = match seeds {
            Some(s) => Limiter::with_seeds(cfg, clock.clone(), s),
            None => Limiter::new(cfg, clock.clone()),
        };
        Process {
            store: Store::new(&StoreConfig::default(), clock.clone()),
            limiter,
            clock,
        }
    }

    /// Wall-clock ns now (the mock clock's origin plus its reading).
    fn wall(&self) -> u64 {
        self.clock.origin_unix_secs() * S + self.limiter.now_nanos()
    }

    fn decide(&self, key: &[u8], alg: Algorithm) -> (bool, u64, u128) {
        let l = Limit {
            key,
            algorithm: alg,
            params: Params {
                limit: 10,
                period_ns: 60 * S,
                burst: 0,
                cost: 1,
            },
            from_policy: false,
            group: crate::limiter::Group::NONE,
        };
        let d = apply(&self.limiter, &self.store, &[l], Mode::Consume)
            .unwrap()
            .overall;
        (d.allowed, d.remaining, d.retry_after_ms())
    }
}

fn file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ratecache-persist-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("snapshot")
}

#[test]
fn a_denied_subject_stays_denied_across_a_restart() {
    let path = file("denied");
    let a = Process::start(1_700_000_000, None);
    a.clock.advance_secs(100);
    for alg in [Algorithm::Gcra, Algorithm::Fixed, Algorithm::Sliding] {
        let key = format!("u-{}", alg.keyword());
        for _ in 0..10 {
            assert!(a.decide(key.as_bytes(), alg).0);
        }
        assert!(!a.decide(key.as_bytes(), alg).0, "{alg:?} spent");
    }
    let (_, _, retry_before) = a.decide(b"u-gcra", Algorithm::Gcra);
    assert_eq!(retry_before, 6_000);
    a.store.store(StoreMode::Set, b"item", 5, 0, b"value");
    let saved = save(&a.store, &a.limiter, &path, true, a.wall()).unwrap();
    assert_eq!(
        saved,
        Counts {
            items: 1,
            states: 3
        }
    );

    // The next process starts 2 s of wall time later (its monotonic clock starts from 0).
    let bytes = read(&path).unwrap().unwrap();
    let snap = parse(&bytes).unwrap();
    let b = Process::start(1_700_000_102, Some(snap.header.seeds));
    let restored = restore(&snap, &b.store, &b.limiter, b.wall());
    assert_eq!(
        restored,
        Counts {
            items: 1,
            states: 3
        }
    );
    // Still denied, 2 s less to wait (gcra: one token per 6 s).
    let (allowed, remaining, retry) = b.decide(b"u-gcra", Algorithm::Gcra);
    assert_eq!((allowed, remaining, retry), (false, 0, 4_000));
    for key in [&b"u-fixed"[..], b"u-sliding"] {
        let alg = if key == b"u-fixed" {
            Algorithm::Fixed
        } else {
            Algorithm::Sliding
        };
        assert!(!b.decide(key, alg).0, "{}", String::from_utf8_lossy(key));
    }
    assert_eq!(
        b.store
            .get(b"item", None, |it| (it.value.to_vec(), it.flags)),
        Some((b"value".to_vec(), 5))
    );
    // After the remaining wait the subject is let in again: the times carried over exactly.
    b.clock.advance_nanos(4_000 * 1_000_000 - 1);
    assert!(!b.decide(b"u-gcra", Algorithm::Gcra).0);
    b.clock.advance_nanos(1);
    assert!(b.decide(b"u-gcra", Algorithm::Gcra).0);
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[test]
fn states_full_again_during_the_downtime_are_dropped() {
    let path = file("downtime");
    let a = Process::start(1_700_000_000, None);
    assert!(a.decide(b"short", Algorithm::Gcra).0);
    save(&a.store, &a.limiter, &path, false, a.wall()).unwrap();
    let bytes = read(&path).unwrap().unwrap();
    let snap = parse(&bytes).unwrap();
    assert!(snap.items.is_empty(), "a states-only snapshot");
    // An hour later: the one token spent came back long ago.
    let b = Process::start(1_700_003_600, Some(snap.header.seeds));
    assert_eq!(restore(&snap, &b.store, &b.limiter, b.wall()).states, 0);
    assert_eq!(b.limiter.stats().keys, 0);
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[test]
fn a_missing_file_is_no_snapshot_and_a_foreign_one_is_refused() {
    let path = file("foreign");
    assert!(read(&path).unwrap().is_none());
    std::fs::write(&path, b"some other program's data").unwrap();
    let bytes = read(&path).unwrap().unwrap();
    assert!(matches!(
        parse(&bytes),
        Err(LoadError::Format(FormatError::Foreign))
    ));
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

#[test]
fn seconds_move_without_ever_coming_early() {
    assert_eq!(shift_second(10, -3 * S as i128), 7);
    assert_eq!(shift_second(10, -(S as i128) / 2), 10, "rounded up");
    assert_eq!(shift_second(10, -20 * S as i128), 0);
    assert_eq!(shift_second(NEVER, 5), NEVER);
    assert_eq!(shift_second(u32::MAX - 1, 10 * S as i128), NEVER);
}
