//! Runs limit decisions on the limiter ([`crate::limiter::Limiter`]): one subject in place
//! under its entry's lock, several at once all or none, so concurrent requests on a subject
//! are serialised and a set of limits is spent all or none.

use super::{decide, Algorithm, Decision, Mode, Outcome, Params, State};
use crate::limiter::{Found, Group, Limiter, NewState, Refused, Subject};
use crate::store::smallvec::SmallVec;
use crate::store::Store;

/// One limit of a request: the subject and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit<'a> {
    /// The key (subject).
    pub key: &'a [u8],
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Limit, period, burst and cost.
    pub params: Params,
    /// Set for the limits of a named policy (`@name`): a state of another algorithm under the
    /// subject (as after a reload changed the policy) is replaced by a fresh state instead of
    /// refused. Explicit requests keep refusing it ([`ApplyError::Incompatible`]), as the spec
    /// requires; a key holding a client's value is refused by both.
    pub from_policy: bool,
    /// The stats rows (policy, key prefix) a state this limit creates is counted under while
    /// it lives; [`Group::NONE`] until the server sets it before deciding.
    pub group: Group,
}

/// Why a request was not decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyError {
    /// A key holds a client's value or another algorithm's state.
    Incompatible,
    /// No memory for the new state (`-o ratelimit_full=deny`).
    NoMemory,
}

/// The answer to a request: the overall verdict and each limit's decision, in request order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The most restrictive decision: when allowed, the one with the fewest tokens left; when
    /// denied, the denial with the longest retry.
    pub overall: Decision,
    /// One decision per limit. When the set is denied nothing was spent, and each line says
    /// what that limit alone would have answered (as `peek` does).
    pub decisions: SmallVec<[Decision; 4]>,
}

/// The subjects of the limits: a key that appears again in the same request (sustained +
/// burst limits on one key) is its next repeat, so each limit keeps a state of its own.
fn subjects<'a>(limits: &[Limit<'a>]) -> SmallVec<[Subject<'a>; 4]> {
    limits
        .iter()
        .enumerate()
        .map(|(i, l)| Subject {
            key: l.key,
            repeat: limits[..i].iter().filter(|p| p.key == l.key).count() as u8,
            group: l.group,
        })
        .collect()
}

/// Decides `limits` together in `mode` (consume spends every limit only if all allow; peek
/// writes nothing; refund gives back to every limit). `store` holds the cache items: a key
/// that holds a client's value cannot become a rate-limit subject.
pub fn apply(
    limiter: &Limiter,
    store: &Store,
    limits: &[Limit<'_>],
    mode: Mode,
) -> Result<Verdict, ApplyError> {
    if let [one] = limits {
        let d = apply_one(limiter, store, one, mode)?;
        let mut decisions = SmallVec::new();
        decisions.push(d);
        return Ok(Verdict {
            overall: d,
            decisions,
        });
    }
    let subjects = subjects(limits);
    let result = limiter.update_many(&subjects, |found, now_ns| {
        let mut states: SmallVec<[Option<State>; 4]> = SmallVec::new();
        for (f, l) in found.iter().zip(limits) {
            match current_state(*f, l, store) {
                Ok(s) => states.push(s),
                Err(e) => return (Err(e), SmallVec::new()),
            }
        }
        let outcomes: SmallVec<[_; 4]> = limits
            .iter()
            .zip(&states)
            .map(|(l, s)| decide(l.algorithm, s.as_ref(), &l.params, mode, now_ns))
            .collect();
        let all_allowed = outcomes.iter().all(|o| o.decision.allowed);
        let writes = if all_allowed && mode != Mode::Peek {
            outcomes.iter().map(new_state).collect()
        } else {
            SmallVec::new()
        };
        let decisions: SmallVec<[Decision; 4]> = outcomes.iter().map(|o| o.decision).collect();
        let overall = if all_allowed {
            *decisions
                .iter()
                .min_by_key(|d| d.remaining)
                .expect("at least one limit")
        } else {
            *decisions
                .iter()
                .filter(|d| !d.allowed)
                .max_by_key(|d| d.retry_after_ns)
                .expect("a denial")
        };
        (Ok(Verdict { overall, decisions }), writes)
    });
    result.map_err(|Refused| ApplyError::NoMemory)?
}

/// The live state for `limit`, or an error if the subject cannot take it. A subject without a
/// state may not be a key holding a client's value. Under a policy, a state of another
/// algorithm reads as absent: the decision starts afresh and, when it writes, replaces it.
/// (Converting instead is not exact: a window count or a TAT does not say when the tokens were
/// spent, which the other algorithms need.)
fn current_state(found: Found, l: &Limit<'_>, store: &Store) -> Result<Option<State>, ApplyError> {
    match found {
        None if store.holds(l.key) => Err(ApplyError::Incompatible),
        None => Ok(None),
        Some(s) if s.algorithm() == l.algorithm => Ok(Some(s)),
        Some(_) if l.from_policy => Ok(None),
        Some(_) => Err(ApplyError::Incompatible),
    }
}

/// The state an allowed outcome writes.
fn new_state(o: &Outcome) -> Option<NewState> {
    o.new_state.map(|state| NewState {
        state,
        ttl_ns: o.ttl_ns,
    })
}

/// [`apply`] for a single limit (the common case), answering its decision alone: in place
/// under the subject's entry lock, or (peek) read without any lock.
pub fn apply_one(
    limiter: &Limiter,
    store: &Store,
    l: &Limit<'_>,
    mode: Mode,
) -> Result<Decision, ApplyError> {
    let subject = Subject {
        key: l.key,
        repeat: 0,
        group: l.group,
    };
    if mode == Mode::Peek {
        let (found, now_ns) = limiter.read_one(subject);
        let state = current_state(found, l, store)?;
        Ok(decide(l.algorithm, state.as_ref(), &l.params, mode, now_ns).decision)
    } else {
        let result = limiter.update_one(subject, |found, now_ns| {
            let state = match current_state(found, l, store) {
                Ok(s) => s,
                Err(e) => return (Err(e), None),
            };
            let o = decide(l.algorithm, state.as_ref(), &l.params, mode, now_ns);
            let write = if o.decision.allowed {
                new_state(&o)
            } else {
                None
            };
            (Ok(o.decision), write)
        });
        result.map_err(|Refused| ApplyError::NoMemory)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MockClock;
    use crate::limiter::LimiterConfig;
    use crate::store::{StoreConfig, StoreMode};
    use std::sync::Arc;

    struct Env {
        l: Limiter,
        s: Store,
        clock: Arc<MockClock>,
    }

    fn env() -> Env {
        let clock = Arc::new(MockClock::new(1_700_000_000));
        Env {
            l: Limiter::new(LimiterConfig::default(), clock.clone()),
            s: Store::new(&StoreConfig::default(), clock.clone()),
            clock,
        }
    }

    impl Env {
        fn apply(&self, limits: &[Limit<'_>], mode: Mode) -> Result<Verdict, ApplyError> {
            apply(&self.l, &self.s, limits, mode)
        }

        fn algorithm(&self, key: &[u8]) -> Option<Algorithm> {
            self.l.read_one(Subject::of(key)).0.map(|s| s.algorithm())
        }
    }

    fn limit(key: &[u8], limit: u32, period_s: u64, burst: u32, alg: Algorithm) -> Limit<'_> {
        Limit {
            key,
            algorithm: alg,
            params: Params {
                limit,
                period_ns: period_s * 1_000_000_000,
                burst,
                cost: 1,
            },
            from_policy: false,
            group: Group::NONE,
        }
    }

    fn summary(d: &Decision) -> (bool, u64, u64, u128, u128) {
        (
            d.allowed,
            d.limit,
            d.remaining,
            d.retry_after_ms(),
            d.reset_after_ms(),
        )
    }

    #[test]
    fn spec_example() {
        let e = env();
        let l = [limit(b"api:u42", 100, 60, 10, Algorithm::Gcra)];
        let v = e.apply(&l, Mode::Consume).unwrap();
        assert_eq!(summary(&v.overall), (true, 10, 9, 0, 600));
        for _ in 0..9 {
            assert!(e.apply(&l, Mode::Consume).unwrap().overall.allowed);
        }
        let d = e.apply(&l, Mode::Consume).unwrap().overall;
        assert_eq!(summary(&d), (false, 10, 0, 600, 6000));
        let peek = e.apply(&l, Mode::Peek).unwrap().overall;
        assert_eq!(peek, d, "peek answers what consume would");
        assert_eq!(e.l.stats().keys, 1);
        assert_eq!(e.s.len(), 0, "limiter states are not cache items");
    }

    #[test]
    fn a_set_is_spent_all_or_none() {
        let e = env();
        let set = [
            limit(b"u", 100, 3600, 0, Algorithm::Gcra),
            limit(b"u", 2, 60, 0, Algorithm::Fixed),
        ];
        assert!(e.apply(&set, Mode::Consume).unwrap().overall.allowed);
        let v = e.apply(&set, Mode::Consume).unwrap();
        assert!(v.overall.allowed);
        assert_eq!(
            v.overall.remaining, 0,
            "the burst limit is the most restrictive"
        );
        let v = e.apply(&set, Mode::Consume).unwrap();
        assert!(!v.overall.allowed);
        // The hourly limit was not spent by the denied request: 98 left after two passes.
        let peek = e.apply(&set[..1], Mode::Peek).unwrap();
        assert_eq!(peek.decisions[0].remaining, 97);
    }

    #[test]
    fn incompatible_values_are_refused_not_reset() {
        let e = env();
        e.s.store(StoreMode::Set, b"plain", 0, 0, b"hello");
        let l = [limit(b"plain", 10, 60, 0, Algorithm::Gcra)];
        assert_eq!(e.apply(&l, Mode::Consume), Err(ApplyError::Incompatible));
        assert_eq!(e.apply(&l, Mode::Peek), Err(ApplyError::Incompatible));
        let g = [limit(b"k", 10, 60, 0, Algorithm::Gcra)];
        e.apply(&g, Mode::Consume).unwrap();
        let f = [limit(b"k", 10, 60, 0, Algorithm::Fixed)];
        assert_eq!(e.apply(&f, Mode::Consume), Err(ApplyError::Incompatible));
        // A subject's state is not an item: a later `set` of its key does not reset it.
        e.s.store(StoreMode::Set, b"k", 0, 0, b"client");
        assert_eq!(e.apply(&g, Mode::Consume).unwrap().overall.remaining, 8);
    }

    #[test]
    fn idle_state_is_reclaimed_once_full_again() {
        let e = env();
        let l = [limit(b"k", 10, 10, 0, Algorithm::Gcra)];
        e.apply(&l, Mode::Consume).unwrap();
        assert_eq!(e.l.stats().keys, 1);
        e.clock.advance_secs(3);
        e.l.housekeep(usize::MAX);
        assert_eq!(
            e.l.stats().keys,
            0,
            "one token refills in 1 s; the state is gone after its TTL"
        );
    }

    #[test]
    fn concurrent_consumers_never_over_admit() {
        let e = Arc::new(env());
        for alg in [Algorithm::Gcra, Algorithm::Fixed, Algorithm::Sliding] {
            let key = format!("hot-{}", alg.keyword()).into_bytes();
            let admitted: usize = (0..8)
                .map(|_| {
                    let e = e.clone();
                    let key = key.clone();
                    std::thread::spawn(move || {
                        (0..200)
                            .filter(|_| {
                                let l = [limit(&key, 500, 3600, 0, alg)];
                                e.apply(&l, Mode::Consume).unwrap().overall.allowed
                            })
                            .count()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum();
            assert_eq!(admitted, 500, "{alg:?}");
        }
    }

    fn policy(mut l: Limit<'_>) -> Limit<'_> {
        l.from_policy = true;
        l
    }

    #[test]
    fn a_policy_restarts_a_state_of_another_algorithm() {
        let e = env();
        // A gcra state, spent down to nothing.
        let gcra = [limit(b"k", 1, 3600, 0, Algorithm::Gcra)];
        assert!(e.apply(&gcra, Mode::Consume).unwrap().overall.allowed);
        // An explicit fixed request is refused, and changes nothing.
        let fixed = [limit(b"k", 2, 3600, 0, Algorithm::Fixed)];
        assert_eq!(
            e.apply(&fixed, Mode::Consume),
            Err(ApplyError::Incompatible)
        );
        // A policy's fixed limit: peek answers as a fresh state and writes nothing...
        let by_policy = [policy(fixed[0])];
        let d = e.apply(&by_policy, Mode::Peek).unwrap().overall;
        assert_eq!((d.allowed, d.remaining), (true, 1));
        assert_eq!(e.algorithm(b"k"), Some(Algorithm::Gcra));
        // ...consume starts afresh and replaces the state with a fixed one.
        let d = e.apply(&by_policy, Mode::Consume).unwrap().overall;
        assert_eq!((d.allowed, d.remaining), (true, 1));
        assert_eq!(e.algorithm(b"k"), Some(Algorithm::Fixed));
        // From now on the fixed state counts, for the policy and for explicit requests alike.
        assert!(e.apply(&fixed, Mode::Consume).unwrap().overall.allowed);
        assert!(!e.apply(&by_policy, Mode::Consume).unwrap().overall.allowed);
        assert_eq!(e.apply(&gcra, Mode::Consume), Err(ApplyError::Incompatible));
        assert_eq!(e.l.stats().keys, 1);
    }

    #[test]
    fn a_policy_still_refuses_a_client_value() {
        let e = env();
        e.s.store(StoreMode::Set, b"plain", 0, 0, b"hello");
        let l = [policy(limit(b"plain", 10, 60, 0, Algorithm::Gcra))];
        assert_eq!(e.apply(&l, Mode::Consume), Err(ApplyError::Incompatible));
        assert!(e.s.holds(b"plain"));
    }

    #[test]
    fn a_policy_restarts_the_repeat_at_the_same_position() {
        let e = env();
        let old = [
            policy(limit(b"u", 100, 3600, 0, Algorithm::Gcra)),
            policy(limit(b"u", 1, 60, 0, Algorithm::Gcra)),
        ];
        assert!(e.apply(&old, Mode::Consume).unwrap().overall.allowed);
        assert!(!e.apply(&old, Mode::Consume).unwrap().overall.allowed);
        // The second limit becomes a sliding window: it starts afresh, the first one keeps
        // its state (99 left of 100 after one spend, 98 after this one).
        let new = [old[0], policy(limit(b"u", 2, 60, 0, Algorithm::Sliding))];
        let v = e.apply(&new, Mode::Consume).unwrap();
        assert!(v.overall.allowed);
        assert_eq!(
            (v.decisions[0].remaining, v.decisions[1].remaining),
            (98, 1)
        );
        assert!(e.apply(&new, Mode::Consume).unwrap().overall.allowed);
        assert!(!e.apply(&new, Mode::Consume).unwrap().overall.allowed);
        // The same change in an explicit set is refused.
        let explicit = [
            limit(b"u", 100, 3600, 0, Algorithm::Gcra),
            limit(b"u", 2, 60, 0, Algorithm::Fixed),
        ];
        assert_eq!(
            e.apply(&explicit, Mode::Consume),
            Err(ApplyError::Incompatible)
        );
    }

    #[test]
    fn a_reset_forgets_every_state_of_a_subject() {
        let e = env();
        let set = [
            limit(b"u42", 100, 3600, 0, Algorithm::Gcra),
            limit(b"u42", 1, 60, 0, Algorithm::Fixed),
        ];
        assert!(e.apply(&set, Mode::Consume).unwrap().overall.allowed);
        assert!(!e.apply(&set, Mode::Consume).unwrap().overall.allowed);
        assert_eq!(e.l.stats().keys, 2);
        // No cache command reaches the states: a client item under the old hidden name is
        // just an item.
        e.s.store(StoreMode::Set, b"u42\0\x01", 0, 0, b"mine");
        assert!(!e.apply(&set, Mode::Consume).unwrap().overall.allowed);
        assert!(e.l.reset(b"u42"));
        assert_eq!(e.l.stats().keys, 0);
        assert!(e.apply(&set, Mode::Consume).unwrap().overall.allowed);
    }

    #[test]
    fn a_state_full_again_past_2_64_ns_never_expires_early() {
        let e = env();
        let far = Limit {
            params: Params {
                limit: 1,
                period_ns: super::super::MAX_PERIOD_NS,
                burst: u32::MAX,
                cost: u32::MAX,
            },
            ..limit(b"far", 1, 1, 0, Algorithm::Gcra)
        };
        let v = e.apply(&[far], Mode::Consume).unwrap();
        assert!(v.overall.reset_after_ns > u128::from(u64::MAX));
        e.clock.advance_secs(100 * 365 * 86_400);
        e.l.housekeep(usize::MAX);
        let one = Limit {
            params: Params {
                cost: 1,
                ..far.params
            },
            ..far
        };
        // 100 periods later, 100 tokens are back (a lost state would show 2^32-2 left).
        let d = e.apply(&[one], Mode::Peek).unwrap().overall;
        assert_eq!((d.allowed, d.remaining), (true, 99));
        assert_eq!(e.l.stats().keys, 1);
    }
}
