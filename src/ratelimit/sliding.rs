//! Sliding-window counter: `estimate = prev*(period - e)/period + curr`, `e = now % period`.
//!
//! Each stored counter keeps the time of the last token it counts. At read time it is assigned
//! to the current window `[a, a+period)`, the previous one `[a-period, a)`, or dropped, by that
//! time and the current period; with an unchanged period this is the textbook two-counter roll.
//! Comparisons are cross-multiplied by `period`, so they are exact.

use super::{wide, Decision, Mode, Outcome, Params, State};

/// A counter assigned to a window: tokens and the time of the last one.
#[derive(Clone, Copy, Default)]
struct Bucket {
    count: u64,
    last_ns: u64,
}

impl Bucket {
    fn add(&mut self, count: u64, last_ns: u64) {
        self.count = self.count.saturating_add(count);
        self.last_ns = self.last_ns.max(last_ns);
    }

    /// The stored `last_ns`: 0 for an empty counter, so equal states encode equally.
    fn stored_last(&self) -> u64 {
        if self.count > 0 {
            self.last_ns
        } else {
            0
        }
    }
}

/// See the module docs of [`super`] for the meaning of each answer.
pub(super) fn decide(state: Option<&State>, p: &Params, mode: Mode, now_ns: u64) -> Outcome {
    let period = p.period_ns;
    let e = now_ns % period;
    let window_start = now_ns - e;
    // Before the clock's first full window, every earlier time is in the previous window.
    let prev_start = window_start.saturating_sub(period);
    let (mut curr, mut prev) = (Bucket::default(), Bucket::default());
    if let Some(&State::Sliding {
        curr_last_ns,
        curr: c,
        prev_last_ns,
        prev: pv,
    }) = state
    {
        for (count, last) in [(c, curr_last_ns), (pv, prev_last_ns)] {
            // A token "spent" in the future (clock ran ahead) counts as spent now.
            let last = last.min(now_ns);
            if count == 0 {
                continue;
            } else if last >= window_start {
                curr.add(count, last);
            } else if last >= prev_start {
                prev.add(count, last);
            }
        }
    }

    let per = u128::from(period);
    let lim = u128::from(p.limit);
    let cost = u128::from(p.cost);
    let e128 = u128::from(e);
    let capacity = lim * per;
    // estimate * period, exact.
    let estimate = |c: u64, pv: u64| u128::from(pv) * (per - e128) + u128::from(c) * per;
    let answer = |allowed: bool, c: u64, pv: u64, retry_after_ns: u128| Decision {
        allowed,
        limit: u64::from(p.limit),
        // <= capacity / period = limit
        remaining: wide::div_floor(capacity.saturating_sub(estimate(c, pv)), period) as u64,
        retry_after_ns,
        // 2 * period <= 2 * 365 days: no overflow.
        reset_after_ns: u128::from(if c > 0 {
            2 * period - e
        } else if pv > 0 {
            period - e
        } else {
            0
        }),
    };

    match mode {
        Mode::Consume | Mode::Peek => {
            let after = curr.count.saturating_add(u64::from(p.cost));
            if estimate(after, prev.count) <= capacity {
                let written = (mode == Mode::Consume).then(|| State::Sliding {
                    curr_last_ns: now_ns,
                    curr: after,
                    prev_last_ns: prev.stored_last(),
                    prev: prev.count,
                });
                return Outcome::new(answer(true, after, prev.count, 0), written);
            }
            // The estimate never grows with time (it is continuous at window boundaries), so
            // find the first offset x into a window where the request fits.
            let (c, pv) = (u128::from(curr.count), u128::from(prev.count));
            let retry = if c + cost <= lim {
                // Later in this window: pv*(per - x) <= (lim - c - cost)*per. x == per means the
                // next window's start, where curr becomes prev and c + cost <= lim fits.
                let room = (lim - c - cost) * per;
                let x = per - room.checked_div(pv).unwrap_or(per).min(per);
                x.saturating_sub(e128)
            } else {
                // Next window, where curr is prev: c*(per - x) <= (lim - cost)*per (c > 0).
                let room = (lim - cost) * per;
                let x = per - room.checked_div(c).unwrap_or(per).min(per);
                per - e128 + x
            };
            Outcome::new(answer(false, curr.count, prev.count, retry), None)
        }
        Mode::Refund => {
            if curr.count == 0 && prev.count == 0 {
                return Outcome::new(answer(true, 0, 0, 0), None);
            }
            let from_curr = curr.count.min(u64::from(p.cost));
            curr.count -= from_curr;
            prev.count = prev.count.saturating_sub(u64::from(p.cost) - from_curr);
            let written = State::Sliding {
                curr_last_ns: curr.stored_last(),
                curr: curr.count,
                prev_last_ns: prev.stored_last(),
                prev: prev.count,
            };
            Outcome::new(answer(true, curr.count, prev.count, 0), Some(written))
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
        window_step(Algorithm::Sliding, state, p, mode, now)
    }

    fn peek(state: &Option<State>, p: &Params, now: u64) -> bool {
        decide(Algorithm::Sliding, state.as_ref(), p, Mode::Peek, now)
            .decision
            .allowed
    }

    #[test]
    fn weighted_previous_window() {
        let mut st = None;
        let d = run(&mut st, &params(10, 60 * S, 10), Mode::Consume, 30 * S);
        assert_eq!(
            (d.allowed, d.remaining, d.reset_after_ns),
            (true, 0, 90 * S128)
        );
        // 15 s into the next window the previous 10 weigh 7.5.
        let d = run(&mut st, &params(10, 60 * S, 1), Mode::Consume, 75 * S);
        assert_eq!(
            (d.allowed, d.remaining, d.reset_after_ns),
            (true, 1, 105 * S128)
        );
        let p2 = params(10, 60 * S, 2);
        let d = run(&mut st, &p2, Mode::Consume, 75 * S);
        assert_eq!((d.allowed, d.remaining), (false, 1));
        // 10 * 42/60 + 1 + 2 = 10 fits at 78 s.
        assert_eq!(d.retry_after_ns, 3 * S128);
        assert!(!peek(&st, &p2, 78 * S - 1));
        assert!(peek(&st, &p2, 78 * S));
    }

    #[test]
    fn retry_in_the_next_window() {
        let mut st = None;
        run(&mut st, &params(10, 60 * S, 9), Mode::Consume, 0);
        let p2 = params(10, 60 * S, 2);
        let d = run(&mut st, &p2, Mode::Consume, 10 * S);
        assert!(!d.allowed);
        // 9 * (60 - x)/60 + 2 <= 10 from x = 6.666666667 s into the next window.
        assert_eq!(d.retry_after_ns, 50 * S128 + 6_666_666_667);
        assert!(!peek(&st, &p2, 66_666_666_666));
        assert!(peek(&st, &p2, 66_666_666_667));
        assert_eq!(d.reset_after_ns, 110 * S128);
    }

    #[test]
    fn estimate_is_continuous_at_the_boundary() {
        let mut st = None;
        let p = params(4, S, 4);
        run(&mut st, &p, Mode::Consume, 0);
        let p1 = params(4, S, 1);
        let d = run(&mut st, &p1, Mode::Consume, S - 1);
        assert_eq!((d.allowed, d.retry_after_ns), (false, S128 / 4 + 1));
        assert!(!peek(&st, &p1, S));
        assert!(peek(&st, &p1, S + S / 4));
        assert_eq!(run(&mut st, &p1, Mode::Peek, 2 * S).remaining, 3);
    }

    #[test]
    fn refund_takes_current_then_previous() {
        let mut st = None;
        run(&mut st, &params(10, S, 6), Mode::Consume, 0);
        run(&mut st, &params(10, S, 2), Mode::Consume, S);
        let d = run(&mut st, &params(10, S, 5), Mode::Refund, S);
        assert!(d.allowed);
        assert_eq!(
            st,
            Some(State::Sliding {
                curr_last_ns: 0,
                curr: 0,
                prev_last_ns: 0,
                prev: 3
            })
        );
        assert_eq!((d.remaining, d.reset_after_ns), (7, S128));
        let out = decide(
            Algorithm::Sliding,
            st.as_ref(),
            &params(10, S, 1),
            Mode::Refund,
            2 * S,
        );
        assert_eq!((out.decision.remaining, out.new_state), (10, None));
    }

    #[test]
    fn period_change_assigns_counters_by_time() {
        let mut st = None;
        run(&mut st, &params(100, 10 * S, 30), Mode::Consume, 5 * S); // [0, 10)
        run(&mut st, &params(100, 10 * S, 20), Mode::Consume, 15 * S); // [10, 20)
                                                                       // Under a 20 s period both counters fall in [0, 20): 50 in the current window.
        let d = run(&mut st, &params(100, 20 * S, 1), Mode::Peek, 16 * S);
        assert_eq!(d.remaining, 49);
        // Under a 5 s period, 20 (last at 15 s) is in [15, 20), 30 (last at 5 s) too old.
        let d = run(&mut st, &params(100, 5 * S, 1), Mode::Peek, 16 * S);
        assert_eq!(d.remaining, 79);
        // Under a 1 s period at 16.5 s, 20 are in the previous window with weight 1/2.
        let d = run(
            &mut st,
            &params(100, S, 1),
            Mode::Consume,
            16 * S + 500 * MS,
        );
        assert_eq!(d.remaining, 89);
        assert_eq!(
            st,
            Some(State::Sliding {
                curr_last_ns: 16 * S + 500 * MS,
                curr: 1,
                prev_last_ns: 15 * S,
                prev: 20
            })
        );
    }

    #[test]
    fn extremes() {
        for now in [0, 1, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            for period in [MS, MAX_PERIOD_NS] {
                let e = now % period;
                let mut st = None;
                let d = run(
                    &mut st,
                    &params(u32::MAX, period, u32::MAX),
                    Mode::Consume,
                    now,
                );
                assert!(d.allowed && d.remaining == 0);
                assert_eq!(d.reset_after_ns, u128::from(2 * period - e));
                let d = run(&mut st, &params(u32::MAX, period, 1), Mode::Consume, now);
                assert!(!d.allowed);
                // The full current window must slide out by about one token's share.
                let share = u64::try_from(
                    u128::from(period)
                        - u128::from(u32::MAX - 1) * u128::from(period) / u128::from(u32::MAX),
                )
                .unwrap();
                assert_eq!(d.retry_after_ns, u128::from(period - e + share));
                let d = run(&mut st, &params(1, period, 1), Mode::Consume, now);
                assert_eq!((d.allowed, d.remaining), (false, 0));
                assert_eq!(State::decode(&st.unwrap().to_bytes()), st);
            }
        }
        let forged = Some(State::Sliding {
            curr_last_ns: u64::MAX,
            curr: u64::MAX,
            prev_last_ns: u64::MAX,
            prev: u64::MAX,
        });
        let out = decide(
            Algorithm::Sliding,
            forged.as_ref(),
            &params(5, S, 1),
            Mode::Consume,
            3,
        );
        assert!(!out.decision.allowed);
        let out = decide(
            Algorithm::Sliding,
            forged.as_ref(),
            &params(5, S, 1),
            Mode::Refund,
            3,
        );
        assert!(out.decision.allowed);
    }
}
