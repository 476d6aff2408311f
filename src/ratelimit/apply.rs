//! Runs limit decisions on the store: one atomic read-modify-write over every key of a request
//! ([`Store::update_many`]), so concurrent requests on a key are serialised and a set of limits
//! is spent all or none.

use std::borrow::Cow;

use super::{decide, Algorithm, Decision, Mode, Outcome, Params, State, MAX_ENCODED_LEN};
use crate::store::smallvec::SmallVec;
use crate::store::{Current, StateKey, Store, UpdateError, Write, Writes};

/// One limit of a request: the subject and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit<'a> {
    /// The key (subject).
    pub key: &'a [u8],
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Limit, period, burst and cost.
    pub params: Params,
    /// Set for the limits of a named policy (`@name`): server state under the key that this
    /// limit cannot use (another algorithm's, as after a reload changed the policy) is replaced
    /// by a fresh state instead of refused. Explicit requests keep refusing it
    /// ([`ApplyError::Incompatible`]), as the spec requires; a client's value is refused by both.
    pub from_policy: bool,
}

/// Why a request was not decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyError {
    /// A key holds a client's value or another algorithm's state.
    Incompatible,
    /// No memory for the new state.
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

/// The keys the limits' states are stored under (and whether each is hidden). A subject that
/// appears again in the same request (sustained + burst limits on one key) keeps its k-th extra
/// state under the hidden key `key NUL k`: hidden items are a key space of their own that no
/// client command can address (a client key with the same bytes is another item), so the
/// states stay apart and out of clients' reach.
fn storage_keys<'a>(limits: &[Limit<'a>]) -> SmallVec<[(Cow<'a, [u8]>, bool); 4]> {
    let mut out: SmallVec<[(Cow<'a, [u8]>, bool); 4]> = SmallVec::new();
    for (i, l) in limits.iter().enumerate() {
        let repeats = limits[..i].iter().filter(|p| p.key == l.key).count();
        if repeats == 0 {
            out.push((Cow::Borrowed(l.key), false));
        } else {
            let mut k = l.key.to_vec();
            k.push(0);
            k.push(repeats as u8);
            out.push((Cow::Owned(k), true));
        }
    }
    out
}

/// Decides `limits` together in `mode` (consume spends every limit only if all allow; peek
/// writes nothing; refund gives back to every limit).
pub fn apply(store: &Store, limits: &[Limit<'_>], mode: Mode) -> Result<Verdict, ApplyError> {
    if let [one] = limits {
        return apply_one(store, one, mode);
    }
    let keys = storage_keys(limits);
    let key_refs: SmallVec<[StateKey<'_>; 4]> = keys
        .iter()
        .map(|(k, hidden)| StateKey {
            key: k,
            hidden: *hidden,
        })
        .collect();
    let result = store.update_many(&key_refs, |current, now_ns| {
        let mut states: SmallVec<[Option<State>; 4]> = SmallVec::new();
        for (cur, l) in current.iter().zip(limits) {
            match current_state(cur.as_ref(), l) {
                Ok(s) => states.push(s),
                Err(e) => return (Err(e), Writes::new()),
            }
        }
        let outcomes: SmallVec<[_; 4]> = limits
            .iter()
            .zip(&states)
            .map(|(l, s)| decide(l.algorithm, s.as_ref(), &l.params, mode, now_ns))
            .collect();
        let all_allowed = outcomes.iter().all(|o| o.decision.allowed);
        let writes = if all_allowed && mode != Mode::Peek {
            outcomes.iter().map(state_write).collect()
        } else {
            Writes::new()
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
    match result {
        Ok(v) => v,
        Err(UpdateError::NoMemory) => Err(ApplyError::NoMemory),
    }
}

/// The state stored for `limit`, or an error if the key holds something else. Under a policy,
/// server state of another algorithm reads as absent: the decision starts afresh and, when it
/// writes, replaces it. (Converting instead is not exact: a window count or a TAT does not say
/// when the tokens were spent, which the other algorithms need.)
fn current_state(cur: Option<&Current<'_>>, l: &Limit<'_>) -> Result<Option<State>, ApplyError> {
    let Some(c) = cur else { return Ok(None) };
    if !c.internal {
        return Err(ApplyError::Incompatible);
    }
    match State::decode(c.value) {
        Some(s) if s.algorithm() == l.algorithm => Ok(Some(s)),
        _ if l.from_policy => Ok(None),
        _ => Err(ApplyError::Incompatible),
    }
}

/// The write that stores an allowed outcome's new state.
fn state_write(o: &Outcome) -> Option<Write> {
    o.new_state.map(|s| {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let n = s.encode_into(&mut buf);
        Write {
            value: SmallVec::from_slice(&buf[..n]),
            // A TTL beyond 2^64 ns (584 years) is "never": the state must not expire early.
            ttl_ns: u64::try_from(o.ttl_ns).ok(),
        }
    })
}

/// [`apply`] for a single limit (the common case), over [`Store::update_one`].
fn apply_one(store: &Store, l: &Limit<'_>, mode: Mode) -> Result<Verdict, ApplyError> {
    let result = store.update_one(l.key, |cur, now_ns| {
        let state = match current_state(cur.as_ref(), l) {
            Ok(s) => s,
            Err(e) => return (Err(e), None),
        };
        let o = decide(l.algorithm, state.as_ref(), &l.params, mode, now_ns);
        let write = if o.decision.allowed && mode != Mode::Peek {
            state_write(&o)
        } else {
            None
        };
        (Ok(o.decision), write)
    });
    // The verdict is built here, not in the closure: moving it out of the nested results
    // would copy all its inline decisions once more.
    let d = result.map_err(|UpdateError::NoMemory| ApplyError::NoMemory)??;
    let mut decisions = SmallVec::new();
    decisions.push(d);
    Ok(Verdict {
        overall: d,
        decisions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MockClock;
    use crate::store::{StoreConfig, StoreMode};
    use std::sync::Arc;

    fn store() -> (Store, Arc<MockClock>) {
        let clock = Arc::new(MockClock::new(1_700_000_000));
        (Store::new(&StoreConfig::default(), clock.clone()), clock)
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
        }
    }

    #[test]
    fn spec_example_over_the_store() {
        let (s, _) = store();
        let l = [limit(b"api:u42", 100, 60, 10, Algorithm::Gcra)];
        let v = apply(&s, &l, Mode::Consume).unwrap();
        let d = v.overall;
        assert_eq!(
            (
                d.allowed,
                d.limit,
                d.remaining,
                d.retry_after_ms(),
                d.reset_after_ms()
            ),
            (true, 10, 9, 0, 600)
        );
        for _ in 0..9 {
            assert!(apply(&s, &l, Mode::Consume).unwrap().overall.allowed);
        }
        let d = apply(&s, &l, Mode::Consume).unwrap().overall;
        assert_eq!(
            (
                d.allowed,
                d.limit,
                d.remaining,
                d.retry_after_ms(),
                d.reset_after_ms()
            ),
            (false, 10, 0, 600, 6000)
        );
        assert_eq!(s.stats().internal_items, 1);
    }

    #[test]
    fn a_set_is_spent_all_or_none() {
        let (s, _) = store();
        let set = [
            limit(b"u", 100, 3600, 0, Algorithm::Gcra),
            limit(b"u", 2, 60, 0, Algorithm::Fixed),
        ];
        assert!(apply(&s, &set, Mode::Consume).unwrap().overall.allowed);
        let v = apply(&s, &set, Mode::Consume).unwrap();
        assert!(v.overall.allowed);
        assert_eq!(
            v.overall.remaining, 0,
            "the burst limit is the most restrictive"
        );
        let v = apply(&s, &set, Mode::Consume).unwrap();
        assert!(!v.overall.allowed);
        // The hourly limit was not spent by the denied request: 98 left after two passes.
        let peek = apply(&s, &set[..1], Mode::Peek).unwrap();
        assert_eq!(peek.decisions[0].remaining, 97);
    }

    #[test]
    fn incompatible_values_are_refused_not_reset() {
        let (s, _) = store();
        s.store(StoreMode::Set, b"plain", 0, 0, b"hello");
        let l = [limit(b"plain", 10, 60, 0, Algorithm::Gcra)];
        assert_eq!(apply(&s, &l, Mode::Consume), Err(ApplyError::Incompatible));
        // A client value that happens to decode as state is still a client value.
        let forged = State::Gcra(super::super::Tat::from_ns(0)).to_bytes();
        s.store(StoreMode::Set, b"forged", 0, 0, &forged);
        let l = [limit(b"forged", 10, 60, 0, Algorithm::Gcra)];
        assert_eq!(apply(&s, &l, Mode::Consume), Err(ApplyError::Incompatible));
        let g = [limit(b"k", 10, 60, 0, Algorithm::Gcra)];
        apply(&s, &g, Mode::Consume).unwrap();
        let f = [limit(b"k", 10, 60, 0, Algorithm::Fixed)];
        assert_eq!(apply(&s, &f, Mode::Consume), Err(ApplyError::Incompatible));
    }

    #[test]
    fn idle_state_expires_through_the_wheel() {
        let (s, clock) = store();
        let l = [limit(b"k", 10, 10, 0, Algorithm::Gcra)];
        apply(&s, &l, Mode::Consume).unwrap();
        assert_eq!(s.len(), 1);
        clock.advance_secs(3);
        s.housekeep(100);
        assert_eq!(
            s.len(),
            0,
            "one token refills in 1 s; the state is gone after its TTL"
        );
    }

    #[test]
    fn concurrent_consumers_never_over_admit() {
        let (s, _) = store();
        let s = Arc::new(s);
        for alg in [Algorithm::Gcra, Algorithm::Fixed, Algorithm::Sliding] {
            let key = format!("hot-{}", alg.keyword()).into_bytes();
            let admitted: usize = (0..8)
                .map(|_| {
                    let s = s.clone();
                    let key = key.clone();
                    std::thread::spawn(move || {
                        (0..200)
                            .filter(|_| {
                                let l = [limit(&key, 500, 3600, 0, alg)];
                                apply(&s, &l, Mode::Consume).unwrap().overall.allowed
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

    fn get(s: &Store, key: &[u8]) -> Option<Vec<u8>> {
        s.get(key, None, |it| it.value.to_vec())
    }

    #[test]
    fn a_policy_restarts_a_state_of_another_algorithm() {
        let (s, _) = store();
        // A gcra state, spent down to nothing.
        let gcra = [limit(b"k", 1, 3600, 0, Algorithm::Gcra)];
        assert!(apply(&s, &gcra, Mode::Consume).unwrap().overall.allowed);
        let before = get(&s, b"k").unwrap();
        // An explicit fixed request is refused, and changes nothing.
        let fixed = [limit(b"k", 2, 3600, 0, Algorithm::Fixed)];
        assert_eq!(
            apply(&s, &fixed, Mode::Consume),
            Err(ApplyError::Incompatible)
        );
        // A policy's fixed limit: peek answers as a fresh state and writes nothing...
        let by_policy = [policy(fixed[0])];
        let d = apply(&s, &by_policy, Mode::Peek).unwrap().overall;
        assert_eq!((d.allowed, d.remaining), (true, 1));
        assert_eq!(get(&s, b"k").unwrap(), before);
        // ...consume starts afresh and replaces the state with a fixed one.
        let d = apply(&s, &by_policy, Mode::Consume).unwrap().overall;
        assert_eq!((d.allowed, d.remaining), (true, 1));
        assert_eq!(
            State::decode(&get(&s, b"k").unwrap()).map(|st| st.algorithm()),
            Some(Algorithm::Fixed)
        );
        // From now on the fixed state counts, for the policy and for explicit requests alike.
        assert!(apply(&s, &fixed, Mode::Consume).unwrap().overall.allowed);
        assert!(
            !apply(&s, &by_policy, Mode::Consume)
                .unwrap()
                .overall
                .allowed
        );
        assert_eq!(
            apply(&s, &gcra, Mode::Consume),
            Err(ApplyError::Incompatible)
        );
        assert_eq!(s.stats().internal_items, 1);
    }

    #[test]
    fn a_policy_still_refuses_a_client_value() {
        let (s, _) = store();
        s.store(StoreMode::Set, b"plain", 0, 0, b"hello");
        let l = [policy(limit(b"plain", 10, 60, 0, Algorithm::Gcra))];
        assert_eq!(apply(&s, &l, Mode::Consume), Err(ApplyError::Incompatible));
        let forged = State::Gcra(super::super::Tat::from_ns(0)).to_bytes();
        s.store(StoreMode::Set, b"forged", 0, 0, &forged);
        let l = [policy(limit(b"forged", 10, 60, 0, Algorithm::Fixed))];
        assert_eq!(apply(&s, &l, Mode::Consume), Err(ApplyError::Incompatible));
        assert_eq!(get(&s, b"plain").unwrap(), b"hello");
    }

    #[test]
    fn a_policy_restarts_the_hidden_state_at_the_same_position() {
        let (s, _) = store();
        let old = [
            policy(limit(b"u", 100, 3600, 0, Algorithm::Gcra)),
            policy(limit(b"u", 1, 60, 0, Algorithm::Gcra)),
        ];
        assert!(apply(&s, &old, Mode::Consume).unwrap().overall.allowed);
        assert!(!apply(&s, &old, Mode::Consume).unwrap().overall.allowed);
        // The second limit becomes a sliding window: it starts afresh, the first one keeps
        // its state (99 left of 100 after one spend, 98 after this one).
        let new = [old[0], policy(limit(b"u", 2, 60, 0, Algorithm::Sliding))];
        let v = apply(&s, &new, Mode::Consume).unwrap();
        assert!(v.overall.allowed);
        assert_eq!(
            (v.decisions[0].remaining, v.decisions[1].remaining),
            (98, 1)
        );
        assert!(apply(&s, &new, Mode::Consume).unwrap().overall.allowed);
        assert!(!apply(&s, &new, Mode::Consume).unwrap().overall.allowed);
        // The same change in an explicit set is refused.
        let explicit = [
            limit(b"u", 100, 3600, 0, Algorithm::Gcra),
            limit(b"u", 2, 60, 0, Algorithm::Fixed),
        ];
        assert_eq!(
            apply(&s, &explicit, Mode::Consume),
            Err(ApplyError::Incompatible)
        );
    }

    #[test]
    fn a_repeated_subject_keeps_its_second_state_hidden() {
        let (s, _) = store();
        let set = [
            limit(b"u42", 100, 3600, 0, Algorithm::Gcra),
            limit(b"u42", 2, 60, 0, Algorithm::Fixed),
        ];
        assert!(apply(&s, &set, Mode::Consume).unwrap().overall.allowed);
        assert_eq!(s.len(), 2);
        let hidden: &[u8] = b"u42\0\x01";
        // No client command sees it, and a client's item under those bytes is separate.
        assert_eq!(get(&s, hidden), None);
        assert!(!s.delete(hidden));
        assert_eq!(
            s.store(StoreMode::Set, hidden, 0, 0, b"mine"),
            crate::store::StoreOutcome::Stored
        );
        assert_eq!(get(&s, hidden).unwrap(), b"mine");
        assert_eq!(s.len(), 3);
        // The set still sees its own state: one of the fixed window's 2 is spent.
        let v = apply(&s, &set, Mode::Consume).unwrap();
        assert_eq!((v.overall.allowed, v.decisions[1].remaining), (true, 0));
        assert!(!apply(&s, &set, Mode::Consume).unwrap().overall.allowed);
        assert!(s.delete(hidden));
        assert!(!apply(&s, &set, Mode::Consume).unwrap().overall.allowed);
        assert_eq!(s.stats().internal_items, 2);
    }

    #[test]
    fn a_state_full_again_past_2_64_ns_never_expires_early() {
        let (s, clock) = store();
        let far = Limit {
            params: Params {
                limit: 1,
                period_ns: super::super::MAX_PERIOD_NS,
                burst: u32::MAX,
                cost: u32::MAX,
            },
            ..limit(b"far", 1, 1, 0, Algorithm::Gcra)
        };
        let v = apply(&s, &[far], Mode::Consume).unwrap();
        assert!(v.overall.reset_after_ns > u128::from(u64::MAX));
        // Stored without an expiry (the store cannot express one that far), not cut short.
        assert_eq!((s.len(), s.scheduled()), (1, 0));
        clock.advance_secs(100 * 365 * 86_400);
        s.housekeep(100);
        let one = Limit {
            params: Params {
                cost: 1,
                ..far.params
            },
            ..far
        };
        // 100 periods later, 100 tokens are back (a lost state would show 2^32-2 left).
        let d = apply(&s, &[one], Mode::Peek).unwrap().overall;
        assert_eq!((d.allowed, d.remaining), (true, 99));
        // An ordinary state is scheduled on the wheel.
        apply(
            &s,
            &[limit(b"near", 10, 60, 0, Algorithm::Gcra)],
            Mode::Consume,
        )
        .unwrap();
        assert_eq!(s.scheduled(), 1);
    }
}
