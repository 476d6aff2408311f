//! Model tests: each algorithm against a reference written independently of it (a token bucket
//! for gcra, explicit spend events for fixed and sliding), over random request streams on a
//! mocked clock with random costs, peeks, refunds and parameter changes. Every step also checks
//! the contract shared by all algorithms (see [`check_contract`]).

use super::*;
use proptest::prelude::*;

const S: u64 = 1_000_000_000;

// ---------------------------------------------------------------------------------------------
// The public model.

#[test]
fn validate_ranges() {
    let ok = Params {
        limit: 100,
        period_ns: 60 * S,
        burst: 10,
        cost: 1,
    };
    assert_eq!(ok.validate(Algorithm::Gcra), Ok(()));
    let with = |f: fn(&mut Params)| {
        let mut p = ok;
        f(&mut p);
        p
    };
    let cases: [(Params, Algorithm, Result<(), ParamError>); 14] = [
        (
            with(|p| p.limit = 0),
            Algorithm::Gcra,
            Err(ParamError::Limit),
        ),
        (with(|p| p.limit = u32::MAX), Algorithm::Gcra, Ok(())),
        (
            with(|p| p.period_ns = MIN_PERIOD_NS - 1),
            Algorithm::Gcra,
            Err(ParamError::Period),
        ),
        (
            with(|p| p.period_ns = MIN_PERIOD_NS),
            Algorithm::Gcra,
            Ok(()),
        ),
        (
            with(|p| p.period_ns = MAX_PERIOD_NS),
            Algorithm::Gcra,
            Ok(()),
        ),
        (
            with(|p| p.period_ns = MAX_PERIOD_NS + 1),
            Algorithm::Gcra,
            Err(ParamError::Period),
        ),
        (with(|p| p.cost = 0), Algorithm::Gcra, Err(ParamError::Cost)),
        (with(|p| p.cost = 10), Algorithm::Gcra, Ok(())),
        (
            with(|p| p.cost = 11),
            Algorithm::Gcra,
            Err(ParamError::CostExceedsBurst),
        ),
        (with(|p| p.burst = 0), Algorithm::Fixed, Ok(())),
        (with(|p| p.burst = 100), Algorithm::Fixed, Ok(())),
        (ok, Algorithm::Fixed, Err(ParamError::Burst)),
        (ok, Algorithm::Sliding, Err(ParamError::Burst)),
        (
            with(|p| (p.burst, p.cost) = (0, 101)),
            Algorithm::Sliding,
            Err(ParamError::CostExceedsBurst),
        ),
    ];
    for (p, alg, expected) in cases {
        assert_eq!(p.validate(alg), expected, "{p:?} {alg:?}");
    }
    assert_eq!(
        ParamError::CostExceedsBurst.to_string(),
        "cost exceeds burst"
    );
    assert_eq!(ParamError::Period.to_string(), "invalid period");
}

#[test]
fn keywords_and_codes() {
    for alg in [Algorithm::Gcra, Algorithm::Fixed, Algorithm::Sliding] {
        assert_eq!(Algorithm::from_keyword(alg.keyword().as_bytes()), Some(alg));
        assert_eq!(Algorithm::from_code(alg.code()), Some(alg));
    }
    assert_eq!(Algorithm::from_code(3), None);
    assert_eq!(Algorithm::from_keyword(b"GCRA"), None);
    assert_eq!(Mode::from_keyword(b"peek"), Some(Mode::Peek));
    assert_eq!(Mode::from_keyword(b"refund"), Some(Mode::Refund));
    assert_eq!(Mode::from_keyword(b"consume"), None);
    assert_eq!(Mode::from_code(2), Some(Mode::Refund));
    assert_eq!(Mode::from_code(3), None);
    assert_eq!(
        (Algorithm::default(), Mode::default()),
        (Algorithm::Gcra, Mode::Consume)
    );
}

#[test]
fn milliseconds_round_up() {
    let d = Decision {
        allowed: false,
        limit: 1,
        remaining: 0,
        retry_after_ns: 1,
        reset_after_ns: 2_000_001,
    };
    assert_eq!((d.retry_after_ms(), d.reset_after_ms()), (1, 3));
    assert_eq!(ns_to_ms_ceil(0), 0);
    assert_eq!(
        ns_to_ms_ceil(u128::from(u64::MAX)),
        u128::from(u64::MAX / 1_000_000 + 1)
    );
    assert_eq!(ns_to_ms_ceil(u128::MAX), u128::MAX / 1_000_000 + 1);
    let far = Decision {
        retry_after_ns: u128::from(u64::MAX) * 1_000_000 + 1,
        reset_after_ns: u128::from(u64::MAX) * 1_000_000,
        ..d
    };
    assert_eq!(far.retry_after_ms(), u128::from(u64::MAX) + 1);
    assert_eq!(far.retry_after_ms_u64(), u64::MAX);
    assert_eq!(far.reset_after_ms_u64(), u64::MAX);
    assert_eq!((d.retry_after_ms_u64(), d.reset_after_ms_u64()), (1, 3));
}

#[test]
fn refuses_what_the_caller_should_have_refused() {
    let p = Params {
        limit: 10,
        period_ns: S,
        burst: 0,
        cost: 1,
    };
    let foreign = State::Fixed {
        last_ns: 0,
        count: 0,
    };
    let out = decide(Algorithm::Gcra, Some(&foreign), &p, Mode::Consume, 0);
    assert!(!out.decision.allowed && out.new_state.is_none());
    let bad = Params { cost: 11, ..p };
    for mode in [Mode::Consume, Mode::Peek, Mode::Refund] {
        let out = decide(Algorithm::Sliding, None, &bad, mode, 0);
        assert_eq!(out.decision.retry_after_ns, u128::from(u64::MAX));
        assert!(!out.decision.allowed && out.new_state.is_none());
    }
    let zero = Params { limit: 0, ..p };
    assert!(
        !decide(Algorithm::Gcra, None, &zero, Mode::Consume, 0)
            .decision
            .allowed
    );
}

#[test]
fn spec_example_on_the_wire() {
    let p = Params {
        limit: 100,
        period_ns: 60 * S,
        burst: 10,
        cost: 1,
    };
    let mut st: Option<State> = None;
    let mut replies = Vec::new();
    for i in 0..11 {
        let out = decide(
            Algorithm::Gcra,
            st.as_ref(),
            &p,
            Mode::Consume,
            1_000 * S + i * 1_000,
        );
        if let Some(s) = out.new_state {
            // What the store would hold, byte for byte.
            st = State::decode(&s.to_bytes());
        }
        let d = out.decision;
        let verdict = if d.allowed { "ALLOWED" } else { "DENIED" };
        replies.push(format!(
            "{verdict} {} {} {} {}",
            d.limit,
            d.remaining,
            d.retry_after_ms(),
            d.reset_after_ms()
        ));
    }
    assert_eq!(replies[0], "ALLOWED 10 9 0 600");
    assert_eq!(replies[10], "DENIED 10 0 600 6000");
}

// ---------------------------------------------------------------------------------------------
// Random streams.

/// One request of a stream, in raw random numbers mapped onto the parameters in force.
#[derive(Clone, Debug)]
struct Step {
    dt_kind: u8,
    dt_raw: u64,
    mode: u8,
    cost_kind: u8,
    cost_raw: u32,
    change: Option<(u32, u64, u32)>,
}

impl Step {
    /// Time since the previous request: none, a few ns, about a token, a fraction of a period,
    /// up to one or two periods.
    fn dt(&self, p: &Params) -> u64 {
        let period = p.period_ns;
        let t = period / u64::from(p.limit);
        match self.dt_kind {
            0 => 0,
            1 => self.dt_raw % 3,
            2 => self.dt_raw % (t + 2),
            3 => self.dt_raw % (period / 8 + 1),
            4 => self.dt_raw % (2 * period + 1),
            _ => self.dt_raw % (period + 1),
        }
    }

    fn mode(&self) -> Mode {
        match self.mode {
            0..=4 => Mode::Consume,
            5 | 6 => Mode::Peek,
            _ => Mode::Refund,
        }
    }

    fn cost(&self, capacity: u32) -> u32 {
        match self.cost_kind {
            0 => 1,
            1 => capacity,
            2 => self.cost_raw % capacity + 1,
            _ => self.cost_raw % capacity.min(3) + 1,
        }
    }
}

fn steps(max: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = (
        0u8..6,
        any::<u64>(),
        0u8..8,
        0u8..4,
        any::<u32>(),
        prop::option::weighted(0.2, (any::<u32>(), any::<u64>(), any::<u32>())),
    )
        .prop_map(
            |(dt_kind, dt_raw, mode, cost_kind, cost_raw, change)| Step {
                dt_kind,
                dt_raw,
                mode,
                cost_kind,
                cost_raw,
                change,
            },
        );
    proptest::collection::vec(step, 1..max)
}

fn limits() -> impl Strategy<Value = u32> {
    prop_oneof![1..=10u32, 1..=1_000u32, 1..=u32::MAX, Just(u32::MAX)]
}

fn periods() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(MIN_PERIOD_NS),
        Just(MAX_PERIOD_NS),
        MIN_PERIOD_NS..=MAX_PERIOD_NS,
        (1..=3_600u64).prop_map(|s| s * S),
        (1..=1_000u64).prop_map(|ms| ms * 1_000_000),
    ]
}

/// A period in range from raw bits, biased toward round values.
fn period_from(raw: u64) -> u64 {
    match raw % 4 {
        0 => MIN_PERIOD_NS + (raw >> 2) % (MAX_PERIOD_NS - MIN_PERIOD_NS + 1),
        1 => ((raw >> 2) % 3_600 + 1) * S,
        2 => ((raw >> 2) % 1_000 + 1) * 1_000_000,
        _ => ((raw >> 2) % 365 + 1) * 86_400 * S,
    }
}

fn starts() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        0..1_000_000_000_000u64,
        u64::MAX / 4..=u64::MAX / 2
    ]
}

/// The contract every algorithm honours, checked on one decision.
fn check_contract(
    alg: Algorithm,
    state: Option<&State>,
    p: &Params,
    mode: Mode,
    now: u64,
    out: &Outcome,
) -> Result<(), TestCaseError> {
    let d = out.decision;
    let cap = u64::from(p.capacity());
    prop_assert_eq!(d.limit, cap);
    prop_assert!(d.remaining <= cap);
    prop_assert_eq!(d.allowed, d.retry_after_ns == 0);
    if let Some(s) = out.new_state {
        prop_assert!(mode != Mode::Peek && d.allowed);
        prop_assert_eq!(out.ttl_ns, d.reset_after_ns);
        prop_assert_eq!(s.algorithm(), alg);
        prop_assert_eq!(State::decode(&s.to_bytes()), Some(s));
    } else {
        prop_assert_eq!(out.ttl_ns, 0);
    }
    if mode == Mode::Refund {
        prop_assert!(d.allowed);
    }
    // Peek answers what consume answers, and writes nothing.
    let consume = decide(alg, state, p, Mode::Consume, now);
    if mode == Mode::Peek {
        prop_assert_eq!(d, consume.decision);
    }
    // A denial writes nothing, and retrying exactly retry_after later passes, 1 ns earlier not.
    // (Instants past the clock's 2^64 ns cannot be asked: tests_extremes checks those.)
    if !d.allowed {
        if let Ok(t) = u64::try_from(u128::from(now) + d.retry_after_ns) {
            prop_assert!(decide(alg, state, p, Mode::Peek, t).decision.allowed);
            prop_assert!(!decide(alg, state, p, Mode::Peek, t - 1).decision.allowed);
        }
    }
    // reset_after later, the state left by this decision is as good as an absent key.
    let after = match mode {
        Mode::Peek => consume.new_state.or(state.copied()),
        _ => out.new_state.or(state.copied()),
    };
    if let Ok(t) = u64::try_from(u128::from(now) + d.reset_after_ns) {
        for cost in [1, p.capacity()] {
            let q = Params { cost, ..*p };
            prop_assert_eq!(
                decide(alg, after.as_ref(), &q, Mode::Peek, t).decision,
                decide(alg, None, &q, Mode::Peek, t).decision
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// GCRA against a token bucket.

/// A token bucket, exact: `level` is tokens * period (so refilling `elapsed` ns adds
/// `elapsed * limit`, spending `cost` removes `cost * period`). Negative after a change of
/// parameters leaves more debt than the new burst.
struct TokenBucket {
    level: i128,
    at: u64,
}

impl TokenBucket {
    fn full(p: &Params) -> i128 {
        i128::from(p.capacity()) * i128::from(p.period_ns)
    }

    fn new(p: &Params, now: u64) -> TokenBucket {
        TokenBucket {
            level: Self::full(p),
            at: now,
        }
    }

    fn refill(&mut self, p: &Params, now: u64) {
        let gained = i128::from(now - self.at) * i128::from(p.limit);
        self.level = (self.level + gained).min(Self::full(p));
        self.at = now;
    }

    /// New parameters keep the debt (time to full): `debt * limit = full - level`.
    fn reparam(&mut self, old: &Params, new: &Params) {
        let debt_x_old_limit = Self::full(old) - self.level;
        let scaled = debt_x_old_limit * i128::from(new.limit);
        assert_eq!(
            scaled % i128::from(old.limit),
            0,
            "test picks exact changes"
        );
        self.level = Self::full(new) - scaled / i128::from(old.limit);
    }

    fn apply(&mut self, p: &Params, mode: Mode, now: u64) -> Decision {
        self.refill(p, now);
        let cost = i128::from(p.cost) * i128::from(p.period_ns);
        let limit = i128::from(p.limit);
        let ceil_div = |a: i128| (a + limit - 1).div_euclid(limit);
        let (allowed, level, retry) = match mode {
            Mode::Refund => (true, (self.level + cost).min(Self::full(p)), 0),
            _ if self.level >= cost => (true, self.level - cost, 0),
            _ => (false, self.level, ceil_div(cost - self.level)),
        };
        if allowed && mode != Mode::Peek {
            self.level = level;
        }
        Decision {
            allowed,
            limit: u64::from(p.capacity()),
            remaining: level.div_euclid(i128::from(p.period_ns)).max(0) as u64,
            retry_after_ns: u128::try_from(retry).unwrap(),
            reset_after_ns: u128::try_from(ceil_div(Self::full(p) - level)).unwrap(),
        }
    }
}

/// Runs a gcra stream against the token bucket; `change` maps a step's raw change onto new
/// parameters (or none).
fn gcra_stream(
    first: Params,
    start: u64,
    steps: &[Step],
    change: impl Fn(&Params, (u32, u64, u32)) -> Params,
) -> Result<(), TestCaseError> {
    let mut p = first;
    let mut state: Option<State> = None;
    let mut bucket = TokenBucket::new(&p, start);
    let mut now = start;
    for step in steps {
        now += step.dt(&p);
        if let Some(raw) = step.change {
            let next = change(&p, raw);
            bucket.refill(&p, now);
            bucket.reparam(&p, &next);
            p = next;
        }
        p.cost = step.cost(p.capacity());
        let mode = step.mode();
        let out = decide(Algorithm::Gcra, state.as_ref(), &p, mode, now);
        check_contract(Algorithm::Gcra, state.as_ref(), &p, mode, now, &out)?;
        let expected = bucket.apply(&p, mode, now);
        prop_assert_eq!(out.decision, expected, "at {} with {:?} {:?}", now, p, mode);
        if out.new_state.is_some() {
            state = out.new_state;
        }
    }
    Ok(())
}

fn bursts() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), 1..=20u32, 1..=u32::MAX]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any limit, period and burst, fixed for the stream: gcra is exactly a token bucket,
    /// also when `T = period / limit` is a fraction of a nanosecond.
    #[test]
    fn gcra_is_a_token_bucket(
        limit in limits(), period_ns in periods(), burst in bursts(), start in starts(),
        steps in steps(50),
    ) {
        let p = Params { limit, period_ns, burst, cost: 1 };
        gcra_stream(p, start, &steps, |p, _| *p)?;
    }

    /// Changing period and burst under a fixed limit keeps the debt in time, exactly.
    #[test]
    fn gcra_period_and_burst_changes(
        limit in limits(), period_ns in periods(), burst in bursts(), start in starts(),
        steps in steps(50),
    ) {
        let p = Params { limit, period_ns, burst, cost: 1 };
        gcra_stream(p, start, &steps, |p, (b, period, _)| Params {
            period_ns: period_from(period),
            burst: if b % 3 == 0 { 0 } else { b % 50 + 1 },
            ..*p
        })?;
    }

    /// Changing everything while T stays a whole number of ns keeps the debt exactly.
    #[test]
    fn gcra_all_parameter_changes(
        limit in 1..=1_000u32, t in any::<u64>(), burst in bursts(), start in starts(),
        steps in steps(50),
    ) {
        // period = limit * T, T a whole number of ns, period in range.
        let with_t = |limit: u32, raw: u64| {
            let l = u64::from(limit);
            let lo = MIN_PERIOD_NS.div_ceil(l);
            let hi = MAX_PERIOD_NS / l;
            let t = if raw.is_multiple_of(2) { lo + (raw >> 1) % 1_000 } else { lo + (raw >> 1) % (hi - lo + 1) };
            l * t
        };
        let p = Params { limit, period_ns: with_t(limit, t), burst, cost: 1 };
        gcra_stream(p, start, &steps, |_, (l, t, b)| {
            let limit = l % 1_000 + 1;
            Params {
                limit,
                period_ns: with_t(limit, t),
                burst: if b % 3 == 0 { 0 } else { b % 2_000 + 1 },
                cost: 1,
            }
        })?;
    }
}

/// The TAT gcra decides on (rounded onto the `1/limit` ns grid) in units of `1/den` ns, where
/// `den` is a multiple of every limit used.
fn tat_in(state: Option<&State>, limit: u32, den: u128) -> u128 {
    match state {
        Some(State::Gcra(t)) => t.scaled(limit) * (den / u128::from(limit)),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A limit change with a fractional T rounds the TAT up onto the new grid: gcra then
    /// never admits what exact rational GCRA would deny on the same history, and stays within
    /// about 1 ns per limit change of it.
    #[test]
    fn gcra_limit_changes_never_over_admit(
        start in starts(), period_ns in periods(), steps in steps(50),
    ) {
        const LIMITS: [u32; 5] = [3, 7, 10, 12, 1_000];
        const DEN: u128 = 21_000; // lcm of LIMITS
        let mut p = Params { limit: 7, period_ns, burst: 0, cost: 1 };
        let mut state: Option<State> = None;
        let mut exact: u128 = 0; // TAT in 1/DEN ns
        let mut changes: u128 = 0;
        let mut now = start;
        for step in &steps {
            now += step.dt(&p);
            if let Some((l, period, b)) = step.change {
                let limit = LIMITS[l as usize % LIMITS.len()];
                changes += u128::from(limit != p.limit);
                p = Params {
                    limit,
                    period_ns: period_from(period),
                    burst: if b % 2 == 0 { 0 } else { b % 2_000 + 1 },
                    cost: 1,
                };
            }
            p.cost = step.cost(p.capacity());
            let mode = step.mode();
            let out = decide(Algorithm::Gcra, state.as_ref(), &p, mode, now);
            check_contract(Algorithm::Gcra, state.as_ref(), &p, mode, now, &out)?;

            let now_d = u128::from(now) * DEN;
            let unit = u128::from(p.period_ns) * (DEN / u128::from(p.limit)); // T in 1/DEN ns
            let tau = u128::from(p.capacity()) * unit;
            let cost = u128::from(p.cost) * unit;
            let exact_eff = exact.max(now_d);
            let impl_eff = tat_in(state.as_ref(), p.limit, DEN).max(now_d);
            prop_assert!(impl_eff >= exact_eff);
            prop_assert!(impl_eff - exact_eff <= (changes + 1) * DEN);
            let exact_allows = mode == Mode::Refund || exact_eff - now_d + cost <= tau;
            if out.decision.allowed {
                prop_assert!(exact_allows);
            } else if impl_eff == exact_eff {
                prop_assert!(!exact_allows);
            }
            // Follow the history the implementation made.
            match mode {
                Mode::Consume if out.decision.allowed => exact = exact_eff + cost,
                Mode::Refund => exact = exact_eff.saturating_sub(cost).max(now_d),
                _ => {}
            }
            if mode != Mode::Peek {
                let debt = exact.max(now_d) - now_d;
                let exact_remaining = (tau.saturating_sub(debt) / unit) as u64;
                prop_assert!(out.decision.remaining <= exact_remaining);
            }
            if out.new_state.is_some() {
                state = out.new_state;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed and sliding windows against explicit spend events.

/// Every admitted spend with its time, refunds taken back from the latest ones.
#[derive(Clone, Default)]
struct Events(Vec<(u64, u64)>);

impl Events {
    /// Tokens spent in `[from, to)` (bounds may be negative).
    fn sum(&self, from: i128, to: i128) -> u128 {
        self.0
            .iter()
            .filter(|&&(t, _)| (from..to).contains(&i128::from(t)))
            .map(|&(_, c)| u128::from(c))
            .sum()
    }

    fn window_start(p: &Params, now: u64) -> i128 {
        i128::from(now - now % p.period_ns)
    }

    /// `estimate * period`: the current window's count (fixed), or the weighted sum (sliding).
    fn estimate(&self, alg: Algorithm, p: &Params, now: u64) -> u128 {
        let a = Self::window_start(p, now);
        let per = i128::from(p.period_ns);
        let curr = self.sum(a, i128::MAX);
        match alg {
            Algorithm::Fixed => curr * p.period_ns as u128,
            _ => {
                let prev = self.sum(a - per, a);
                let e = u128::from(now % p.period_ns);
                prev * (u128::from(p.period_ns) - e) + curr * u128::from(p.period_ns)
            }
        }
    }

    fn fits(&self, alg: Algorithm, p: &Params, now: u64) -> bool {
        let per = u128::from(p.period_ns);
        self.estimate(alg, p, now) + u128::from(p.cost) * per <= u128::from(p.limit) * per
    }

    fn remaining(&self, alg: Algorithm, p: &Params, now: u64) -> u64 {
        let per = u128::from(p.period_ns);
        let cap = u128::from(p.limit) * per;
        (cap.saturating_sub(self.estimate(alg, p, now)) / per) as u64
    }

    /// Time until nothing spent so far counts any more.
    fn reset(&self, alg: Algorithm, p: &Params, now: u64) -> u64 {
        let a = Self::window_start(p, now);
        let per = i128::from(p.period_ns);
        let e = now % p.period_ns;
        if self.sum(a, i128::MAX) > 0 {
            match alg {
                Algorithm::Fixed => p.period_ns - e,
                _ => 2 * p.period_ns - e,
            }
        } else if alg == Algorithm::Sliding && self.sum(a - per, a) > 0 {
            p.period_ns - e
        } else {
            0
        }
    }

    /// The first instant >= now at which the request fits, by bisection (it fits 2 periods
    /// later at the latest, and the estimate never grows with time).
    fn first_fit(&self, alg: Algorithm, p: &Params, now: u64) -> u64 {
        let (mut lo, mut hi) = (now, now + 2 * p.period_ns);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.fits(alg, p, mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// Takes `cost` back from the latest spends that still count.
    fn refund(&mut self, alg: Algorithm, p: &Params, now: u64, mut cost: u64) {
        let a = Self::window_start(p, now);
        let from = match alg {
            Algorithm::Fixed => a,
            _ => a - i128::from(p.period_ns),
        };
        for ev in self.0.iter_mut().rev() {
            if i128::from(ev.0) < from || cost == 0 {
                break;
            }
            let take = ev.1.min(cost);
            ev.1 -= take;
            cost -= take;
        }
        self.0.retain(|&(_, c)| c > 0);
    }

    /// The expected answer (and the events it leaves, for modes that write).
    fn answer(&self, alg: Algorithm, p: &Params, mode: Mode, now: u64) -> (Decision, Events) {
        let mut after = self.clone();
        let allowed = match mode {
            Mode::Refund => {
                after.refund(alg, p, now, u64::from(p.cost));
                true
            }
            _ if self.fits(alg, p, now) => {
                after.0.push((now, u64::from(p.cost)));
                true
            }
            _ => false,
        };
        let decision = Decision {
            allowed,
            limit: u64::from(p.limit),
            remaining: after.remaining(alg, p, now),
            retry_after_ns: if allowed {
                0
            } else {
                u128::from(self.first_fit(alg, p, now) - now)
            },
            reset_after_ns: u128::from(after.reset(alg, p, now)),
        };
        if mode == Mode::Peek {
            after = self.clone();
        }
        (decision, after)
    }
}

/// Runs a fixed or sliding stream. With a constant period the answers must equal the events'
/// exactly; with period changes the implementation may only be stricter than the events of
/// the history it made.
fn window_stream(
    alg: Algorithm,
    first: Params,
    start: u64,
    steps: &[Step],
    period_changes: bool,
) -> Result<(), TestCaseError> {
    let mut p = first;
    let mut state: Option<State> = None;
    let mut events = Events::default();
    let mut now = start;
    for step in steps {
        now += step.dt(&p);
        if let Some((l, period, b)) = step.change {
            p.limit = if l % 2 == 0 { l % 20 + 1 } else { l.max(1) };
            p.burst = if b % 2 == 0 { 0 } else { p.limit };
            if period_changes {
                p.period_ns = period_from(period);
            }
        }
        p.cost = step.cost(p.capacity());
        let mode = step.mode();
        let out = decide(alg, state.as_ref(), &p, mode, now);
        check_contract(alg, state.as_ref(), &p, mode, now, &out)?;
        if period_changes {
            if out.decision.allowed {
                if mode != Mode::Refund {
                    prop_assert!(
                        events.fits(alg, &p, now),
                        "over-admitted at {} {:?}",
                        now,
                        p
                    );
                }
                let (truth, after) = events.answer(alg, &p, mode, now);
                prop_assert!(out.decision.remaining <= truth.remaining);
                events = after;
            } else {
                prop_assert!(out.decision.remaining <= events.remaining(alg, &p, now));
            }
        } else {
            let (expected, after) = events.answer(alg, &p, mode, now);
            prop_assert_eq!(out.decision, expected, "at {} with {:?} {:?}", now, p, mode);
            events = after;
        }
        if out.new_state.is_some() {
            state = out.new_state;
            // A write keeps only the windows that count now (fixed: the current one; sliding:
            // the current and the previous one); forget what the state forgot.
            let a = Events::window_start(&p, now);
            let keep_from = match alg {
                Algorithm::Fixed => a,
                _ => a - i128::from(p.period_ns),
            };
            events.0.retain(|&(t, _)| i128::from(t) >= keep_from);
        }
    }
    Ok(())
}

fn window_limits() -> impl Strategy<Value = u32> {
    prop_oneof![1..=5u32, 1..=100u32, 1..=u32::MAX, Just(u32::MAX)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Fixed window with a constant period (limit and burst changing) equals the counts of
    /// the spends in the current window.
    #[test]
    fn fixed_counts_the_current_window(
        limit in window_limits(), period_ns in periods(), same in any::<bool>(),
        start in starts(), steps in steps(50),
    ) {
        let p = Params { limit, period_ns, burst: if same { limit } else { 0 }, cost: 1 };
        window_stream(Algorithm::Fixed, p, start, &steps, false)?;
    }

    /// Fixed window across period changes never admits more than the spends in the current
    /// window allow.
    #[test]
    fn fixed_period_changes_never_over_admit(
        limit in window_limits(), period_ns in periods(), start in starts(), steps in steps(50),
    ) {
        let p = Params { limit, period_ns, burst: 0, cost: 1 };
        window_stream(Algorithm::Fixed, p, start, &steps, true)?;
    }

    /// Sliding window with a constant period equals the estimate computed from the spends.
    #[test]
    fn sliding_estimates_from_spends(
        limit in window_limits(), period_ns in periods(), same in any::<bool>(),
        start in starts(), steps in steps(50),
    ) {
        let p = Params { limit, period_ns, burst: if same { limit } else { 0 }, cost: 1 };
        window_stream(Algorithm::Sliding, p, start, &steps, false)?;
    }

    /// Sliding window across period changes never admits more than the spends allow.
    #[test]
    fn sliding_period_changes_never_over_admit(
        limit in window_limits(), period_ns in periods(), start in starts(), steps in steps(50),
    ) {
        let p = Params { limit, period_ns, burst: 0, cost: 1 };
        window_stream(Algorithm::Sliding, p, start, &steps, true)?;
    }

    /// decide and decode are total: any bytes, any parameters, any time.
    #[test]
    fn never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..40),
        alg in 0u8..3, mode in 0u8..3,
        limit in any::<u32>(), period_ns in any::<u64>(), burst in any::<u32>(), cost in any::<u32>(),
        now in any::<u64>(),
    ) {
        let mut bytes = bytes;
        if bytes.len() > 2 {
            bytes[0] = MAGIC;
            bytes[1] = (VERSION << 4) | (alg + 1);
        }
        let state = State::decode(&bytes);
        let alg = Algorithm::from_code(alg).unwrap();
        let p = Params { limit, period_ns, burst, cost };
        let out = decide(alg, state.as_ref(), &p, Mode::from_code(mode).unwrap(), now);
        prop_assert!(out.decision.allowed || out.new_state.is_none());
        // The same with valid parameters, so forged states reach the algorithms.
        let limit = limit.max(1);
        let burst = if alg == Algorithm::Gcra { burst } else { 0 };
        let mut q = Params { limit, period_ns: period_ns.clamp(MIN_PERIOD_NS, MAX_PERIOD_NS), burst, cost: 1 };
        q.cost = cost % q.capacity() + 1;
        prop_assert_eq!(q.validate(alg), Ok(()));
        let out = decide(alg, state.as_ref(), &q, Mode::from_code(mode).unwrap(), now);
        prop_assert!(out.decision.allowed || out.new_state.is_none());
        prop_assert!(out.decision.remaining <= u64::from(q.capacity()));
    }
}
