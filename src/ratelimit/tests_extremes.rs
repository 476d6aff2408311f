//! Exactness at the extremes of the parameter range (limit 1..2^32-1, period 1 ms..365 days,
//! burst 0..2^32-1, cost 1..2^32-1, any `now_ns: u64`): each algorithm against a
//! straightforward reference in u128 integers, written from the spec's definitions rather than
//! from the implementation (a token bucket for gcra, window indices for fixed and sliding, time
//! itself in u128 so answers beyond 2^64 ns are checked too). Streams use constant parameters
//! biased to the corners; every state goes through its byte encoding, as in the store.

use super::*;
use proptest::prelude::*;

/// The reply line `decide` leads to, as the text protocol prints it.
fn wire(d: &Decision) -> String {
    let verdict = if d.allowed { "ALLOWED" } else { "DENIED" };
    format!(
        "{verdict} {} {} {} {}",
        d.limit,
        d.remaining,
        d.retry_after_ms(),
        d.reset_after_ms()
    )
}

fn ceil_div(a: u128, b: u128) -> u128 {
    a.div_ceil(b)
}

#[test]
fn the_reported_example_is_exact() {
    // `ratelimit k 1 365d 1000 600`: 600 tokens at one per 365 days is 600 * 365 days of debt,
    // past 2^64 ns; the answer used to saturate at 18446744073710 ms.
    let p = Params {
        limit: 1,
        period_ns: MAX_PERIOD_NS,
        burst: 1000,
        cost: 600,
    };
    let out = decide(Algorithm::Gcra, None, &p, Mode::Consume, 5);
    assert_eq!(wire(&out.decision), "ALLOWED 1000 400 0 18921600000000");
    assert_eq!(out.ttl_ns, 600 * u128::from(MAX_PERIOD_NS));
    // The largest corner: 2^32-1 tokens of one per 365 days, then one more.
    let p = Params {
        limit: 1,
        period_ns: MAX_PERIOD_NS,
        burst: u32::MAX,
        cost: u32::MAX,
    };
    let out = decide(Algorithm::Gcra, None, &p, Mode::Consume, u64::MAX);
    let full_ms = u128::from(u32::MAX) * 31_536_000_000;
    assert_eq!(
        wire(&out.decision),
        format!("ALLOWED {} 0 0 {full_ms}", u32::MAX)
    );
    let st = State::decode(&out.new_state.unwrap().to_bytes());
    let one = Params { cost: 1, ..p };
    let d = decide(Algorithm::Gcra, st.as_ref(), &one, Mode::Consume, u64::MAX).decision;
    assert_eq!(
        wire(&d),
        format!("DENIED {} 0 31536000000 {full_ms}", u32::MAX)
    );
    // The binary protocol's u64 fields saturate only beyond 2^64 ms.
    assert_eq!(d.reset_after_ms_u64(), u64::MAX);
    assert_eq!(d.retry_after_ms_u64(), 31_536_000_000);
}

/// One request of a stream, as raw numbers mapped onto the stream's parameters.
#[derive(Clone, Debug)]
struct Step {
    dt_kind: u8,
    dt_raw: u64,
    mode: u8,
    cost_kind: u8,
    cost_raw: u32,
}

impl Step {
    /// Time since the previous request: none, 1 ns, about a token, up to two periods, anything.
    fn dt(&self, p: &Params) -> u64 {
        let t = p.period_ns / u64::from(p.limit);
        match self.dt_kind {
            0 => 0,
            1 => 1,
            2 => self.dt_raw % (t + 2),
            3 => self.dt_raw % (2 * p.period_ns + 1),
            _ => self.dt_raw,
        }
    }

    fn mode(&self) -> Mode {
        match self.mode {
            0..=3 => Mode::Consume,
            4 => Mode::Peek,
            _ => Mode::Refund,
        }
    }

    fn cost(&self, capacity: u32) -> u32 {
        match self.cost_kind {
            0 => 1,
            1 => capacity,
            _ => self.cost_raw % capacity + 1,
        }
    }
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (0u8..5, any::<u64>(), 0u8..6, 0u8..3, any::<u32>()).prop_map(
        |(dt_kind, dt_raw, mode, cost_kind, cost_raw)| Step {
            dt_kind,
            dt_raw,
            mode,
            cost_kind,
            cost_raw,
        },
    );
    proptest::collection::vec(step, 1..24)
}

fn limits() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(1u32),
        Just(2),
        Just(u32::MAX),
        Just(u32::MAX - 1),
        1..=u32::MAX
    ]
}

fn periods() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(MIN_PERIOD_NS),
        Just(MAX_PERIOD_NS),
        Just(MAX_PERIOD_NS - 1),
        MIN_PERIOD_NS..=MAX_PERIOD_NS
    ]
}

fn bursts() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0u32), Just(1), Just(u32::MAX), any::<u32>()]
}

fn starts() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        (0..=MAX_PERIOD_NS).prop_map(|d| u64::MAX - d),
        any::<u64>()
    ]
}

/// GCRA as a token bucket: `level` is tokens * period (a token is `period` units; `elapsed`
/// ns refill `elapsed * limit` units), at most capacity * period.
struct Bucket {
    level: u128,
    at: u64,
}

impl Bucket {
    fn step(&mut self, p: &Params, mode: Mode, now: u64) -> Decision {
        let (limit, period) = (u128::from(p.limit), u128::from(p.period_ns));
        let full = u128::from(p.capacity()) * period;
        self.level = full.min(self.level + u128::from(now - self.at) * limit);
        self.at = now;
        let cost = u128::from(p.cost) * period;
        let (allowed, level, retry) = match mode {
            Mode::Refund => (true, full.min(self.level + cost), 0),
            _ if self.level >= cost => (true, self.level - cost, 0),
            _ => (false, self.level, ceil_div(cost - self.level, limit)),
        };
        if mode != Mode::Peek {
            self.level = level;
        }
        Decision {
            allowed,
            limit: u64::from(p.capacity()),
            remaining: u64::try_from(level / period).unwrap(),
            retry_after_ns: retry,
            reset_after_ns: ceil_div(full - level, limit),
        }
    }
}

/// Runs `steps` through `decide` (states through their encoding) and `reference`, comparing
/// every decision and its wire line; a written state's TTL must equal `reset_after`.
fn stream(
    alg: Algorithm,
    p: Params,
    start: u64,
    steps: &[Step],
    mut reference: impl FnMut(&Params, Mode, u64) -> Decision,
) -> Result<(), TestCaseError> {
    let mut state: Option<State> = None;
    let mut now = start;
    for step in steps {
        now = now.saturating_add(step.dt(&p));
        let q = Params {
            cost: step.cost(p.capacity()),
            ..p
        };
        let mode = step.mode();
        let out = decide(alg, state.as_ref(), &q, mode, now);
        let expected = reference(&q, mode, now);
        prop_assert_eq!(out.decision, expected, "at {} with {:?} {:?}", now, q, mode);
        prop_assert_eq!(wire(&out.decision), wire(&expected));
        if let Some(s) = out.new_state {
            prop_assert_eq!(out.ttl_ns, expected.reset_after_ns);
            state = State::decode(&s.to_bytes());
            prop_assert_eq!(state, Some(s));
        }
    }
    Ok(())
}

/// Window counters by window index (`now / period`), time in u128: the textbook algorithms.
#[derive(Default)]
struct Windows {
    index: u128,
    curr: u128,
    prev: u128,
}

impl Windows {
    /// The counters as of time `t` (the current window's and the previous one's).
    fn at(&self, p: &Params, t: u128) -> (u128, u128) {
        match (t / u128::from(p.period_ns)).checked_sub(self.index) {
            Some(0) => (self.curr, self.prev),
            Some(1) => (0, self.curr),
            _ => (0, 0),
        }
    }

    /// `estimate * period` at `t` for the counters `(curr, prev)`.
    fn estimate(alg: Algorithm, p: &Params, t: u128, (curr, prev): (u128, u128)) -> u128 {
        let per = u128::from(p.period_ns);
        match alg {
            Algorithm::Fixed => curr * per,
            _ => prev * (per - t % per) + curr * per,
        }
    }

    fn fits(&self, alg: Algorithm, p: &Params, t: u128) -> bool {
        let per = u128::from(p.period_ns);
        Self::estimate(alg, p, t, self.at(p, t)) + u128::from(p.cost) * per
            <= u128::from(p.limit) * per
    }

    fn step(&mut self, alg: Algorithm, p: &Params, mode: Mode, now: u64) -> Decision {
        let t = u128::from(now);
        let per = u128::from(p.period_ns);
        let (curr, mut prev) = self.at(p, t);
        if alg == Algorithm::Fixed {
            prev = 0;
        }
        let cost = u128::from(p.cost);
        let allowed = mode == Mode::Refund || self.fits(alg, p, t);
        let (c, pv) = match mode {
            Mode::Refund => {
                let from_curr = curr.min(cost);
                (curr - from_curr, prev.saturating_sub(cost - from_curr))
            }
            _ if allowed => (curr + cost, prev),
            _ => (curr, prev),
        };
        // The first instant the request fits, by bisection: within two periods at the latest,
        // and the estimate never grows with time.
        let retry = if allowed {
            0
        } else {
            let (mut lo, mut hi) = (t, t + 2 * per);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.fits(alg, p, mid) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            lo - t
        };
        let e = t % per;
        let decision = Decision {
            allowed,
            limit: u64::from(p.limit),
            remaining: u64::try_from(
                (u128::from(p.limit) * per).saturating_sub(Self::estimate(alg, p, t, (c, pv)))
                    / per,
            )
            .unwrap(),
            retry_after_ns: retry,
            reset_after_ns: match (alg, c > 0, pv > 0) {
                (Algorithm::Fixed, true, _) => per - e,
                (_, true, _) => 2 * per - e,
                (_, false, true) => per - e,
                _ => 0,
            },
        };
        if mode != Mode::Peek {
            (self.index, self.curr, self.prev) = (t / per, c, pv);
        }
        decision
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// gcra equals the token bucket exactly at every corner, including debts far past 2^64 ns.
    #[test]
    fn gcra_exact_at_the_extremes(
        limit in limits(), period_ns in periods(), burst in bursts(), start in starts(),
        steps in steps(),
    ) {
        let p = Params { limit, period_ns, burst, cost: 1 };
        let full = u128::from(p.capacity()) * u128::from(period_ns);
        let mut bucket = Bucket { level: full, at: start };
        stream(Algorithm::Gcra, p, start, &steps, |q, mode, now| bucket.step(q, mode, now))?;
    }

    /// fixed and sliding equal the textbook windows at every corner, the clock's end included.
    #[test]
    fn windows_exact_at_the_extremes(
        sliding in any::<bool>(), limit in limits(), period_ns in periods(), start in starts(),
        steps in steps(),
    ) {
        let alg = if sliding { Algorithm::Sliding } else { Algorithm::Fixed };
        let p = Params { limit, period_ns, burst: 0, cost: 1 };
        let mut windows = Windows::default();
        stream(alg, p, start, &steps, |q, mode, now| windows.step(alg, q, mode, now))?;
    }
}
