//! Rate-limit algorithms: the pure decision math behind the `ratelimit` commands.
//!
//! This module owns the model shared by every protocol ([`Algorithm`], [`Mode`], [`Params`],
//! [`Decision`]), the per-key [`State`] and its byte encoding, the period syntax
//! ([`parse_period`]) and [`decide`]: `(state, params, mode, now) -> (decision, new state, ttl)`.
//! The math does no I/O and reads no clock; [`apply()`] runs it on the limiter's states
//! ([`crate::limiter::Limiter`]: in place under an entry's sequence word for one key, all or
//! none for a set of keys).
//!
//! # Exactness
//! No floating point. With `T = period / limit`, every quantity is kept in units of `1/limit`
//! ns (`cost*T = cost*period` such units), so the gcra decision and the stored TAT are exact for
//! every fractional `T`; fixed and sliding compare cross-multiplied integers. Intermediates are
//! u128 (divisions take a u64 fast path when the quantity fits, see `wide`), and so are the
//! times a [`Decision`] reports: across the whole parameter range (limit 1..2^32-1, period
//! 1 ms..365 days, burst 0..2^32-1, cost 1..2^32-1) and any `now_ns: u64`, every answer is
//! exact, including debts far beyond 2^64 ns (up to `(2^32-1) * 365 days`, about 2^87 ns).
//! Nothing overflows or panics for any input, forged decoded states included (only those
//! can reach the saturating guards). The only rounding anywhere is always toward denial:
//! - times reported (`retry_after_ns`, `reset_after_ns`) are rounded UP to the nanosecond (and
//!   again to the millisecond by [`Decision::retry_after_ms`]), so waiting that long suffices;
//! - a gcra TAT written under another `limit` is rounded UP onto the new `1/limit` ns grid
//!   (less than 1/limit ns later).
//!
//! # What the answers mean
//! [`Decision`] describes the state *after* the decision (for peek: after the consume it
//! simulates). `limit` is the capacity, `remaining` the whole tokens left, `retry_after_ns` 0 when
//! allowed, else the shortest wait after which the same request passes (exact to the ns, >= 1),
//! `reset_after_ns` the time until the state is full again (and may be dropped: equal to the TTL).
//!
//! - **gcra**: capacity `b = burst` (or `limit`), `tau = b*T`, `debt = max(tat - now, 0)`.
//!   Allowed iff `debt + cost*T <= tau`; then `tat = max(tat, now) + cost*T`.
//!   `remaining = floor((tau - debt') / T)` (in `0..=b`), `reset_after = debt'` rounded up,
//!   `retry_after = debt + cost*T - tau` rounded up.
//! - **fixed**: capacity `limit`; window `[a, a+period)` with `a = now - now % period`.
//!   Allowed iff `count + cost <= limit`. `remaining = limit - count'` (floor 0),
//!   `reset_after = retry_after = a + period - now` while the window counts anything, else 0.
//! - **sliding**: capacity `limit`; `estimate = prev*(period - e)/period + curr` with
//!   `e = now % period`, compared exactly (`prev*(period-e) + (curr+cost)*period <=
//!   limit*period`); `remaining = floor(limit - estimate')` (floor 0). The estimate never grows
//!   with time, so `retry_after` is the first instant it fits (found in closed form).
//!   `reset_after` is `2*period - e` while `curr > 0`, `period - e` while only `prev > 0`, else 0.
//!
//! # Modes
//! - consume: if allowed, spend `cost`; a denial changes nothing (`new_state == None`).
//! - peek: the same [`Decision`] as consume, `new_state == None`.
//! - refund: give back `cost` (gcra `tat = max(now, tat - cost*T)`; counters subtract with a floor
//!   of 0, sliding takes from the current window first, then the previous one); always allowed.
//!   A refund on an empty (or already full) state writes nothing.
//!
//! # Parameter changes
//! `limit`, `period` and `burst` travel with each request and may differ from the ones the
//! state was written under; the state is then reinterpreted, never reset:
//! - gcra keeps the TAT, i.e. the debt in *time*; tokens left are recomputed with the new `T`
//!   and `tau` (a lower burst can leave `remaining` at 0 for longer).
//! - fixed/sliding counters carry the time of the last token they count (not a window index).
//!   At read time each counter is assigned to the window of the current period containing that
//!   time: current window, previous window (sliding), or older (dropped). Every token is thus
//!   counted in the latest window it may have been spent in: with an unchanged period this is the
//!   textbook algorithm exactly, after a change it errs toward denial for at most one window.
//!   TTLs are computed with the current period; if a later call uses a longer period, a state
//!   already reclaimed reads as empty.

mod apply;
mod fixed;
mod gcra;
mod period;
pub mod policy;
mod sliding;
mod state;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_extremes;
mod wide;

use std::fmt;

pub use apply::{apply, apply_one, ApplyError, Limit, Verdict};
pub use period::{parse_period, period_from_ms, PeriodError, MAX_PERIOD_NS, MIN_PERIOD_NS};
pub use state::{State, Tat, MAGIC, MAX_ENCODED_LEN, VERSION};

/// Which limiter algorithm a request uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Generic cell rate algorithm: a token bucket kept as one arrival time per key. The default.
    #[default]
    Gcra,
    /// One counter per window `floor(now / period)`, counted on the server's clock (windows
    /// start at multiples of the period since the clock's origin, not on the wall clock's
    /// minutes or hours).
    Fixed,
    /// Sliding-window counter: current and previous window, the previous one weighted.
    Sliding,
}

impl Algorithm {
    /// The text-protocol keyword: `gcra`, `fixed` or `sliding` (exact, lower case).
    pub fn from_keyword(word: &[u8]) -> Option<Algorithm> {
        match word {
            b"gcra" => Some(Algorithm::Gcra),
            b"fixed" => Some(Algorithm::Fixed),
            b"sliding" => Some(Algorithm::Sliding),
            _ => None,
        }
    }

    /// The text-protocol keyword for this algorithm.
    pub fn keyword(self) -> &'static str {
        match self {
            Algorithm::Gcra => "gcra",
            Algorithm::Fixed => "fixed",
            Algorithm::Sliding => "sliding",
        }
    }

    /// The binary-protocol code: 0 gcra, 1 fixed, 2 sliding.
    pub fn from_code(code: u8) -> Option<Algorithm> {
        [Algorithm::Gcra, Algorithm::Fixed, Algorithm::Sliding]
            .get(usize::from(code))
            .copied()
    }

    /// The binary-protocol code for this algorithm.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// What a request does with its decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Decide and, if allowed, spend `cost`. The default.
    #[default]
    Consume,
    /// Answer exactly what consume would, write nothing.
    Peek,
    /// Give `cost` back; always allowed.
    Refund,
}

impl Mode {
    /// The text-protocol keyword: `peek` or `refund` (consume has none).
    pub fn from_keyword(word: &[u8]) -> Option<Mode> {
        match word {
            b"peek" => Some(Mode::Peek),
            b"refund" => Some(Mode::Refund),
            _ => None,
        }
    }

    /// The binary-protocol code: 0 consume, 1 peek, 2 refund.
    pub fn from_code(code: u8) -> Option<Mode> {
        [Mode::Consume, Mode::Peek, Mode::Refund]
            .get(usize::from(code))
            .copied()
    }

    /// The binary-protocol code for this mode.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The parameters of one limit, sent with every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Params {
    /// Tokens admitted per period on average, 1..=2^32-1.
    pub limit: u32,
    /// Length of the period in ns, [`MIN_PERIOD_NS`]..=[`MAX_PERIOD_NS`].
    pub period_ns: u64,
    /// Capacity; 0 means "= limit". Fixed and sliding accept only 0 or `limit`.
    pub burst: u32,
    /// Tokens this request spends (or refunds), 1..=capacity.
    pub cost: u32,
}

/// Which parameter [`Params::validate`] refused; `Display` gives the text after `CLIENT_ERROR `.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamError {
    /// `limit` is 0.
    Limit,
    /// `period_ns` is outside 1 ms ..= 365 days.
    Period,
    /// fixed or sliding with a `burst` other than 0 or `limit`.
    Burst,
    /// `cost` is 0.
    Cost,
    /// `cost` is larger than the capacity: the request could never pass.
    CostExceedsBurst,
}

impl ParamError {
    /// The wire message: `invalid limit`, ..., `cost exceeds burst`.
    pub fn message(self) -> &'static str {
        match self {
            ParamError::Limit => "invalid limit",
            ParamError::Period => "invalid period",
            ParamError::Burst => "invalid burst",
            ParamError::Cost => "invalid cost",
            ParamError::CostExceedsBurst => "cost exceeds burst",
        }
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ParamError {}

impl Params {
    /// The capacity: the largest number of tokens spendable at once (`burst`, or `limit` if 0).
    pub fn capacity(&self) -> u32 {
        if self.burst == 0 {
            self.limit
        } else {
            self.burst
        }
    }

    /// Checks every range of the spec, in the order limit, period, burst, cost, cost vs capacity.
    /// `burst` other than 0 or `limit` is refused for fixed (as the spec says) and for sliding
    /// (whose capacity is `limit` by definition), never silently ignored.
    pub fn validate(&self, alg: Algorithm) -> Result<(), ParamError> {
        if self.limit == 0 {
            return Err(ParamError::Limit);
        }
        if !(MIN_PERIOD_NS..=MAX_PERIOD_NS).contains(&self.period_ns) {
            return Err(ParamError::Period);
        }
        if alg != Algorithm::Gcra && self.burst != 0 && self.burst != self.limit {
            return Err(ParamError::Burst);
        }
        if self.cost == 0 {
            return Err(ParamError::Cost);
        }
        if self.cost > self.capacity() {
            return Err(ParamError::CostExceedsBurst);
        }
        Ok(())
    }
}

/// The answer to one request (see the module docs for the exact meaning per algorithm).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decision {
    /// Whether the request passes (always true for refunds).
    pub allowed: bool,
    /// The capacity: the largest value `remaining` can take.
    pub limit: u64,
    /// Whole tokens left after this decision.
    pub remaining: u64,
    /// 0 when allowed; else the shortest wait (ns, >= 1) after which this request passes.
    /// Exact: up to about 2^87 ns (cost `2^32-1` at one token per 365 days).
    pub retry_after_ns: u128,
    /// Time (ns) until the state is full again. Exact, up to about 2^88 ns.
    pub reset_after_ns: u128,
}

/// Nanoseconds rounded UP to whole milliseconds, as the wire reports durations.
pub fn ns_to_ms_ceil(ns: u128) -> u128 {
    wide::div_ceil(ns, 1_000_000)
}

impl Decision {
    /// `retry_after` for the wire: milliseconds, rounded up (>= 1 when denied). Exact; it can
    /// exceed `u64::MAX` (see [`Decision::retry_after_ms_u64`] for a 64-bit field).
    pub fn retry_after_ms(&self) -> u128 {
        ns_to_ms_ceil(self.retry_after_ns)
    }

    /// `reset_after` for the wire: milliseconds, rounded up. Exact, as `retry_after_ms`.
    pub fn reset_after_ms(&self) -> u128 {
        ns_to_ms_ceil(self.reset_after_ns)
    }

    /// `retry_after_ms` for a 64-bit wire field (the binary protocol's extras): exact below
    /// 2^64 ms (about 584 million years), else `u64::MAX`.
    pub fn retry_after_ms_u64(&self) -> u64 {
        u64::try_from(self.retry_after_ms()).unwrap_or(u64::MAX)
    }

    /// `reset_after_ms` for a 64-bit wire field, as [`Decision::retry_after_ms_u64`].
    pub fn reset_after_ms_u64(&self) -> u64 {
        u64::try_from(self.reset_after_ms()).unwrap_or(u64::MAX)
    }
}

/// The result of [`decide`]: the answer and what to write back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The answer for the client.
    pub decision: Decision,
    /// `None`: write nothing, leave the key as it is. `Some`: store this state (encoded with
    /// [`State::encode`]) with a TTL of `ttl_ns`.
    pub new_state: Option<State>,
    /// With `Some` state: the time until it is full again, after which it is equivalent to an
    /// absent key and may be reclaimed. 0 means it already is (deleting the key or storing it
    /// are equally correct). 0 when `new_state` is `None`.
    pub ttl_ns: u128,
}

/// Decides one request at `now_ns` (server monotonic clock) against the key's decoded state
/// (`None` for an absent key). Pure and total: it never panics.
///
/// The caller must refuse a stored state of another algorithm (`State::algorithm() != alg`) and
/// invalid parameters ([`Params::validate`]) before calling; if it does not, the request is
/// denied with `retry_after_ns == u64::MAX` (the sentinel it always had, so a caller that
/// lets such a request through answers as before) and nothing is written (never a silent
/// reset).
pub fn decide(
    alg: Algorithm,
    state: Option<&State>,
    params: &Params,
    mode: Mode,
    now_ns: u64,
) -> Outcome {
    if params.validate(alg).is_err() || state.is_some_and(|s| s.algorithm() != alg) {
        return Outcome {
            decision: Decision {
                allowed: false,
                limit: u64::from(params.capacity()),
                remaining: 0,
                retry_after_ns: u128::from(u64::MAX),
                reset_after_ns: 0,
            },
            new_state: None,
            ttl_ns: 0,
        };
    }
    match alg {
        Algorithm::Gcra => gcra::decide(state, params, mode, now_ns),
        Algorithm::Fixed => fixed::decide(state, params, mode, now_ns),
        Algorithm::Sliding => sliding::decide(state, params, mode, now_ns),
    }
}

impl Outcome {
    /// Assembles an outcome: `ttl_ns` is the decision's `reset_after_ns` when a state is written.
    fn new(decision: Decision, new_state: Option<State>) -> Outcome {
        let ttl_ns = if new_state.is_some() {
            decision.reset_after_ns
        } else {
            0
        };
        Outcome {
            decision,
            new_state,
            ttl_ns,
        }
    }
}
