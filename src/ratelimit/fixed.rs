//! Fixed window: one counter per window `[a, a + period)`, `a = now - now % period` on the
//! server's clock (so windows are aligned to the clock's origin, not to wall-clock minutes).
//!
//! The state keeps the time of the last token counted instead of a window index, so a change
//! of period is detected and handled: the counter applies iff that time falls in the current
//! window of the current period.

use super::{Decision, Mode, Outcome, Params, State};

/// See the module docs of [`super`] for the meaning of each answer.
pub(super) fn decide(state: Option<&State>, p: &Params, mode: Mode, now_ns: u64) -> Outcome {
    let period = p.period_ns;
    let elapsed = now_ns % period;
    let window_start = now_ns - elapsed;
    let to_window_end = period - elapsed;
    let limit = u64::from(p.limit);
    let cost = u64::from(p.cost);
    // A token "spent" in the future (a state from a clock that ran ahead) counts as spent now.
    let (count, last) = match state {
        Some(&State::Fixed { last_ns, count })
            if count > 0 && last_ns.min(now_ns) >= window_start =>
        {
            (count, last_ns.min(now_ns))
        }
        _ => (0, 0),
    };
    let answer = |allowed: bool, count_after: u64, retry_after_ns: u64| Decision {
        allowed,
        limit,
        remaining: limit.saturating_sub(count_after),
        retry_after_ns: u128::from(retry_after_ns),
        reset_after_ns: if count_after > 0 {
            u128::from(to_window_end)
        } else {
            0
        },
    };
    match mode {
        Mode::Consume | Mode::Peek => {
            let after = count.saturating_add(cost);
            if after <= limit {
                let written = (mode == Mode::Consume).then_some(State::Fixed {
                    last_ns: now_ns,
                    count: after,
                });
                Outcome::new(answer(true, after, 0), written)
            } else {
                // cost <= limit, so the request passes as soon as the window turns.
                Outcome::new(answer(false, count, to_window_end), None)
            }
        }
        Mode::Refund => {
            if count == 0 {
                return Outcome::new(answer(true, 0, 0), None);
            }
            let left = count.saturating_sub(cost);
            let written = State::Fixed {
                last_ns: if left > 0 { last } else { 0 },
                count: left,
            };
            Outcome::new(answer(true, left, 0), Some(written))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{window_params as params, window_step};
    use super::super::{decide, Algorithm, Decision, Mode, Params, State, MAX_PERIOD_NS};

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    const S128: u128 = S as u128;

    fn run(state: &mut Option<State>, p: &Params, mode: Mode, now: u64) -> Decision {
        window_step(Algorithm::Fixed, state, p, mode, now)
    }

    #[test]
    fn windows() {
        let p = params(3, 60 * S, 1);
        let mut st = None;
        let t0 = 125 * S; // 5 s into the window [120 s, 180 s)
        for i in 0..3 {
            let d = run(&mut st, &p, Mode::Consume, t0 + i);
            assert_eq!(
                (d.allowed, d.remaining, d.reset_after_ns),
                (true, 2 - i, u128::from(55 * S - i))
            );
        }
        let d = run(&mut st, &p, Mode::Consume, t0 + 10 * S);
        assert_eq!((d.allowed, d.remaining), (false, 0));
        assert_eq!((d.retry_after_ns, d.reset_after_ns), (45 * S128, 45 * S128));
        assert_eq!(d.retry_after_ms(), 45_000);
        assert!(!run(&mut st, &p, Mode::Consume, 180 * S - 1).allowed);
        let d = run(&mut st, &p, Mode::Consume, 180 * S);
        assert_eq!(
            (d.allowed, d.remaining, d.reset_after_ns),
            (true, 2, 60 * S128)
        );
    }

    #[test]
    fn denial_keeps_partial_remaining() {
        let p = params(10, S, 8);
        let mut st = None;
        run(&mut st, &p, Mode::Consume, 0);
        let d = run(&mut st, &p, Mode::Consume, 0);
        assert_eq!((d.allowed, d.remaining, d.retry_after_ns), (false, 2, S128));
    }

    #[test]
    fn refund() {
        let p = params(10, S, 4);
        let out = decide(Algorithm::Fixed, None, &p, Mode::Refund, 5);
        assert_eq!((out.decision.allowed, out.new_state), (true, None));
        let mut st = None;
        run(&mut st, &p, Mode::Consume, 5);
        assert_eq!(
            run(&mut st, &params(10, S, 1), Mode::Refund, 6).remaining,
            7
        );
        let d = run(&mut st, &params(10, S, 9), Mode::Refund, 7);
        assert_eq!((d.remaining, d.reset_after_ns), (10, 0));
        assert_eq!(
            st,
            Some(State::Fixed {
                last_ns: 0,
                count: 0
            })
        );
        // A refund in a later window finds nothing to give back.
        run(&mut st, &p, Mode::Consume, 8);
        let out = decide(Algorithm::Fixed, st.as_ref(), &p, Mode::Refund, S);
        assert_eq!((out.decision.remaining, out.new_state), (10, None));
    }

    #[test]
    fn period_changes() {
        let mut st = None;
        // 60 spent at 10:05:30 in a one-minute window...
        let t = (10 * 3600 + 5 * 60 + 30) * S;
        assert!(run(&mut st, &params(60, 60 * S, 60), Mode::Consume, t).allowed);
        // ...still count in the hour window that contains them,
        let d = run(&mut st, &params(100, 3600 * S, 41), Mode::Consume, t + S);
        assert_eq!((d.allowed, d.remaining), (false, 40));
        assert_eq!(d.retry_after_ns, 3600 * S128 - (5 * 60 + 31) * S128);
        // and in the ten-second window 10:05:30 - 10:05:40 too, but not in the next one.
        let d = run(&mut st, &params(100, 10 * S, 41), Mode::Consume, t + S);
        assert_eq!((d.allowed, d.remaining), (false, 40));
        let d = run(&mut st, &params(100, 10 * S, 40), Mode::Consume, t + 10 * S);
        assert_eq!((d.allowed, d.remaining), (true, 60));
    }

    #[test]
    fn extremes() {
        for now in [0, 1, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            for period in [MS, MAX_PERIOD_NS] {
                let p = params(u32::MAX, period, u32::MAX);
                let mut st = None;
                let d = run(&mut st, &p, Mode::Consume, now);
                assert!(d.allowed && d.remaining == 0);
                assert_eq!(d.reset_after_ns, u128::from(period - now % period));
                let d = run(&mut st, &params(u32::MAX, period, 1), Mode::Consume, now);
                assert_eq!(
                    (d.allowed, d.retry_after_ns),
                    (false, u128::from(period - now % period))
                );
                assert_eq!(State::decode(&st.unwrap().to_bytes()), st);
                let d = run(&mut st, &params(1, period, 1), Mode::Consume, now);
                assert_eq!((d.allowed, d.remaining), (false, 0));
            }
        }
        // A forged state with a huge count and a future timestamp neither panics nor admits.
        let st = Some(State::Fixed {
            last_ns: u64::MAX,
            count: u64::MAX,
        });
        let out = decide(
            Algorithm::Fixed,
            st.as_ref(),
            &params(5, S, 1),
            Mode::Consume,
            3,
        );
        assert!(!out.decision.allowed);
        assert_eq!(out.decision.retry_after_ns, S128 - 3);
    }
}
