//! GCRA (generic cell rate algorithm), exact.
//!
//! All arithmetic is in units of `1/limit` ns, where `T = period/limit` is exactly `period`
//! units, `tau = burst*T` is `burst*period` units and the TAT is kept exactly ([`Tat`]).
//! `debt = max(tat - now, 0)` is the time until the bucket is full; tokens left are
//! `(tau - debt) / T`.

use super::{wide, Decision, Mode, Outcome, Params, State, Tat};

/// See the module docs of [`super`] for the meaning of each answer.
pub(super) fn decide(state: Option<&State>, p: &Params, mode: Mode, now_ns: u64) -> Outcome {
    let l = u128::from(p.limit);
    let period = u128::from(p.period_ns);
    let tau = u128::from(p.capacity()) * period;
    let cost = u128::from(p.cost) * period;
    let now = u128::from(now_ns) * l;
    let debt = match state {
        Some(State::Gcra(tat)) => tat.scaled(p.limit).saturating_sub(now),
        _ => 0,
    };
    let answer = |allowed: bool, debt_after: u128, retry: u128| Decision {
        allowed,
        limit: u64::from(p.capacity()),
        // tau - debt' <= tau = capacity * period, so the quotient is at most the capacity.
        remaining: wide::div_floor(tau.saturating_sub(debt_after), p.period_ns) as u64,
        // Exact: debts and retries are below 2^88 units, so below 2^88 ns.
        retry_after_ns: wide::div_ceil(retry, u64::from(p.limit)),
        reset_after_ns: wide::div_ceil(debt_after, u64::from(p.limit)),
    };
    match mode {
        Mode::Consume | Mode::Peek => {
            let after = debt.saturating_add(cost);
            if after <= tau {
                // now + after <= now + tau < 2^96 + 2^87: no overflow.
                let written = (mode == Mode::Consume)
                    .then(|| State::Gcra(Tat::from_scaled(now + after, p.limit)));
                Outcome::new(answer(true, after, 0), written)
            } else {
                Outcome::new(answer(false, debt, after - tau), None)
            }
        }
        Mode::Refund => {
            if debt == 0 {
                return Outcome::new(answer(true, 0, 0), None);
            }
            let left = debt.saturating_sub(cost);
            let tat = Tat::from_scaled(now.saturating_add(left), p.limit);
            Outcome::new(answer(true, left, 0), Some(State::Gcra(tat)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decide, Algorithm, Decision, Mode, Params, State, Tat, MAX_PERIOD_NS};

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    const MS128: u128 = MS as u128;
    const S128: u128 = S as u128;

    fn params(limit: u32, period_ns: u64, burst: u32, cost: u32) -> Params {
        Params {
            limit,
            period_ns,
            burst,
            cost,
        }
    }

    fn run(state: &mut Option<State>, p: &Params, mode: Mode, now: u64) -> Decision {
        let out = decide(Algorithm::Gcra, state.as_ref(), p, mode, now);
        if let Some(s) = out.new_state {
            *state = Some(s);
        }
        out.decision
    }

    fn wire(d: &Decision) -> (bool, u64, u64, u128, u128) {
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
        let p = params(100, 60 * S, 10, 1);
        let mut st = None;
        let t0 = 5 * S;
        assert_eq!(
            wire(&run(&mut st, &p, Mode::Consume, t0)),
            (true, 10, 9, 0, 600)
        );
        assert_eq!(
            st,
            Some(State::Gcra(Tat::from_ns(u128::from(t0 + 600 * MS))))
        );
        for i in 1..10 {
            let d = run(&mut st, &p, Mode::Consume, t0 + i);
            assert!(d.allowed, "call {i}");
            assert_eq!(d.remaining, 9 - i);
        }
        // Ten quick calls after the first one, the eleventh is denied.
        assert_eq!(
            wire(&run(&mut st, &p, Mode::Consume, t0 + 10)),
            (false, 10, 0, 600, 6000)
        );
        // A token comes back every 600 ms.
        let d = run(&mut st, &p, Mode::Consume, t0 + 600 * MS + 9);
        assert_eq!(wire(&d), (true, 10, 0, 0, 6000));
    }

    #[test]
    fn fractional_t_keeps_the_whole_burst() {
        // T = 1 s / 7 is not a whole number of ns: all 7 must pass at once, the 8th not.
        let p = params(7, S, 0, 1);
        let mut st = None;
        for i in 0..7 {
            let d = run(&mut st, &p, Mode::Consume, 42);
            assert!(d.allowed, "call {i}");
            assert_eq!(d.remaining, 6 - i);
        }
        let d = run(&mut st, &p, Mode::Consume, 42);
        assert!(!d.allowed);
        // Exactly T = 142857142.857 ns later (rounded up) one token is back.
        assert_eq!(d.retry_after_ns, 142_857_143);
        assert_eq!(d.reset_after_ns, S128);
        assert!(!run(&mut st, &p, Mode::Peek, 42 + 142_857_142).allowed);
        assert!(run(&mut st, &p, Mode::Consume, 42 + 142_857_143).allowed);
    }

    #[test]
    fn highest_rate() {
        // period 1 ms, limit 2^32-1: T is ~0.00023 ns.
        let p = params(u32::MAX, MS, 0, u32::MAX);
        let mut st = None;
        let d = run(&mut st, &p, Mode::Consume, 7);
        assert!(d.allowed);
        assert_eq!((d.remaining, d.reset_after_ns), (0, MS128));
        let p1 = Params { cost: 1, ..p };
        let d = run(&mut st, &p1, Mode::Consume, 7);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ns, 1); // one token per 0.00023 ns
        let d = run(&mut st, &p1, Mode::Consume, 8);
        assert!(d.allowed);
        assert_eq!(d.remaining, 4293); // floor(1 ns * limit / period - 1)
    }

    #[test]
    fn slowest_rate_and_huge_now() {
        // limit 1 per 365 days with the largest burst: tau is far beyond 2^64 ns.
        let p = params(1, MAX_PERIOD_NS, u32::MAX, u32::MAX);
        for now in [0, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let mut st = None;
            let d = run(&mut st, &p, Mode::Consume, now);
            assert!(d.allowed);
            assert_eq!(d.remaining, 0);
            // Exact far beyond 2^64 ns: (2^32-1) periods of 365 days.
            assert_eq!(
                d.reset_after_ns,
                u128::from(u32::MAX) * u128::from(MAX_PERIOD_NS)
            );
            let Some(State::Gcra(t)) = st else { panic!() };
            assert!(t.ns() > u128::from(u64::MAX));
            assert_eq!(State::decode(&st.unwrap().to_bytes()), st);
            let p1 = Params { cost: 1, ..p };
            let d = run(&mut st, &p1, Mode::Consume, now);
            assert!(!d.allowed);
            assert_eq!(d.retry_after_ns, u128::from(MAX_PERIOD_NS));
            let d = run(&mut st, &p1, Mode::Refund, now);
            assert!(d.allowed && d.remaining == 1);
        }
    }

    #[test]
    fn limit_one_and_cost_equal_burst() {
        let p = params(1, S, 0, 1);
        let mut st = None;
        assert!(run(&mut st, &p, Mode::Consume, 0).allowed);
        let d = run(&mut st, &p, Mode::Consume, 1);
        assert_eq!((d.allowed, d.retry_after_ns), (false, S128 - 1));
        assert!(run(&mut st, &p, Mode::Consume, S).allowed);

        let p = params(10, S, 5, 5);
        let mut st = None;
        assert!(run(&mut st, &p, Mode::Consume, 0).allowed);
        let d = run(&mut st, &p, Mode::Consume, 0);
        assert_eq!((d.allowed, d.retry_after_ns), (false, 500 * MS128));
    }

    #[test]
    fn refund() {
        let p = params(10, S, 0, 3);
        let mut st = None;
        // Nothing to give back on a fresh key: allowed, full, nothing written.
        let out = decide(Algorithm::Gcra, None, &p, Mode::Refund, 0);
        assert_eq!(out.new_state, None);
        assert_eq!((out.decision.allowed, out.decision.remaining), (true, 10));
        run(&mut st, &p, Mode::Consume, 0);
        assert_eq!(run(&mut st, &p, Mode::Consume, 0).remaining, 4);
        let p1 = Params { cost: 1, ..p };
        assert_eq!(run(&mut st, &p1, Mode::Refund, 0).remaining, 5);
        let p9 = Params { cost: 9, ..p };
        let out = decide(Algorithm::Gcra, st.as_ref(), &p9, Mode::Refund, 0);
        assert_eq!(out.new_state, Some(State::Gcra(Tat::from_ns(0))));
        assert_eq!((out.decision.remaining, out.ttl_ns), (10, 0));
    }

    #[test]
    fn peek_and_denial_write_nothing() {
        let p = params(2, S, 0, 1);
        let st = Some(State::Gcra(Tat::from_ns(u128::from(S / 2))));
        let peek = decide(Algorithm::Gcra, st.as_ref(), &p, Mode::Peek, 0);
        let consume = decide(Algorithm::Gcra, st.as_ref(), &p, Mode::Consume, 0);
        assert_eq!(peek.decision, consume.decision);
        assert_eq!(peek.new_state, None);
        assert!(consume.decision.allowed && consume.new_state.is_some());
        let denied = decide(
            Algorithm::Gcra,
            consume.new_state.as_ref(),
            &p,
            Mode::Consume,
            0,
        );
        assert!(!denied.decision.allowed && denied.new_state.is_none());
    }

    #[test]
    fn parameters_change() {
        // Debt is kept in time: 10 tokens at 1/s leave 10 s of debt; at 10/s that is 100 tokens,
        // more than a burst of 20, so the limiter waits 10 s - 1.9 s for the next token.
        let slow = params(1, S, 10, 10);
        let mut st = None;
        assert!(run(&mut st, &slow, Mode::Consume, 0).allowed);
        let fast = params(10, S, 20, 1);
        let d = run(&mut st, &fast, Mode::Consume, 0);
        assert_eq!((d.allowed, d.remaining), (false, 0));
        assert_eq!(d.retry_after_ns, 8_100 * MS128);
        assert_eq!(d.reset_after_ns, 10 * S128);
        // A fraction written under limit 3 is rounded up onto the 1/7 ns grid.
        let st = Some(State::Gcra(Tat::new(0, 1, 3).unwrap()));
        let out = decide(
            Algorithm::Gcra,
            st.as_ref(),
            &params(7, MS, 0, 1),
            Mode::Consume,
            0,
        );
        let Some(State::Gcra(t)) = out.new_state else {
            panic!()
        };
        assert_eq!((t.ns(), t.frac(), t.den()), (142_857, 4, 7)); // 3/7 + 1e6/7 ns
    }
}
