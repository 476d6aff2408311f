//! Test helpers shared by the fixed-window and sliding-window tests.

use super::{decide, Algorithm, Decision, Mode, Params, State};

/// Window parameters (windows take no burst).
pub fn window_params(limit: u32, period_ns: u64, cost: u32) -> Params {
    Params {
        limit,
        period_ns,
        burst: 0,
        cost,
    }
}

/// One window decision on `state`, checking the contract both windows share: a denial writes
/// nothing, and a written state lives exactly until the window resets.
pub fn window_step(
    alg: Algorithm,
    state: &mut Option<State>,
    p: &Params,
    mode: Mode,
    now: u64,
) -> Decision {
    let out = decide(alg, state.as_ref(), p, mode, now);
    assert!(out.decision.allowed || out.new_state.is_none());
    if let Some(s) = out.new_state {
        assert_eq!(out.ttl_ns, out.decision.reset_after_ns);
        *state = Some(s);
    }
    out.decision
}
