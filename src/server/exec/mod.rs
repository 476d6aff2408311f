//! The one executor: runs a [`Command`] of either protocol against the store, the limiter and
//! the decision keys, counts it (`stats detail`, rate-limit stats), and reports what happened
//! to a per-protocol [`Responder`] that writes the wire reply. A new command is one arm here
//! plus one decoder arm and one responder method per protocol.

pub mod binary;
pub mod meta;
pub mod text;

use super::decision::{self, DecisionError};
use super::output::Output;
use super::Context;
use crate::limit_stats::Outcome;
use crate::limiter::Group;
use crate::protocol::command::Command;
use crate::protocol::Refusal;
use crate::ratelimit::{apply, apply_one, ApplyError, Decision, Limit, Mode, Verdict};
use crate::stats::{PrefixOp, ServerStats};
use crate::store::{ArithOutcome, DeleteOutcome, ItemRef, StoreOutcome};

/// Why a command was refused before it reached the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A write (store, incr, touch, ...) of a key under `--ratelimit-prefix`.
    ReadOnly,
    /// A decision key that could not be decided.
    Decision(DecisionError),
}

/// Whether a command completed or failed with an error reply (a multi-get stops there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// Answered normally (hit, miss, stored, ...).
    Done,
    /// Answered with an error.
    Failed,
}

/// How a protocol answers the outcomes of [`execute`]. Each method writes the whole reply of
/// its outcome (or nothing, when the protocol's quiet or noreply rules say so).
pub trait Responder {
    /// A hit on `key`.
    fn item(&mut self, out: &mut Output, key: &[u8], item: &ItemRef<'_>);
    /// A decision key read: its verdict line is the value (client flags 0, cas 0).
    fn verdict(&mut self, out: &mut Output, key: &[u8], line: &[u8]);
    /// A miss on `key`.
    fn miss(&mut self, out: &mut Output, key: &[u8]);
    /// A storage command's outcome and the stored item's cas (0 when nothing was stored).
    fn stored(&mut self, out: &mut Output, outcome: StoreOutcome, cas: u64);
    /// A delete's outcome.
    fn deleted(&mut self, out: &mut Output, outcome: DeleteOutcome);
    /// An incr/decr's outcome.
    fn arith(&mut self, out: &mut Output, outcome: ArithOutcome);
    /// A touch: whether the key was there.
    fn touched(&mut self, out: &mut Output, found: bool);
    /// A rate-limit decision, or why there is none.
    fn decision(&mut self, out: &mut Output, decided: Result<&Decision, ApplyError>);
    /// A command refused before the store.
    fn refused(&mut self, out: &mut Output, why: Refused);
    /// Whether the protocol's commands count in `stats detail` (memcached's meta commands
    /// do not).
    fn counts_detail(&self) -> bool {
        true
    }
}

/// Runs one command and reports it to `r`.
pub fn execute(ctx: &Context, cmd: Command<'_>, r: &mut impl Responder, out: &mut Output) -> Ran {
    let counts_detail = r.counts_detail();
    let detail = |key: &[u8], op| {
        if counts_detail && ctx.stats.detail.enabled() {
            ctx.stats
                .detail
                .record(key, ctx.config.prefix_delimiter, op);
        }
    };
    let store = &ctx.store;
    match cmd {
        Command::Get { key, .. } if decision::is_decision_key(ctx, key) => {
            match decision::decide(ctx, key) {
                Some(Ok(line)) => r.verdict(out, key, line.as_bytes()),
                Some(Err(e)) => return refuse(r, out, Refused::Decision(e)),
                None => r.miss(out, key),
            }
        }
        Command::Get { key, touch } => {
            let hit = store.get(key, touch, |it| r.item(out, key, &it)).is_some();
            if !hit {
                r.miss(out, key);
            }
            detail(key, PrefixOp::Get(hit));
        }
        Command::Store { key, .. }
        | Command::Refused { key, .. }
        | Command::Arith { key, .. }
        | Command::Touch { key, .. }
            if decision::is_decision_key(ctx, key) =>
        {
            return refuse(r, out, Refused::ReadOnly);
        }
        Command::Store {
            key,
            mode,
            flags,
            exptime,
            value,
            opts,
        } => {
            detail(key, PrefixOp::Set);
            let (outcome, cas) = store.store_ext(mode, key, flags, exptime, value, opts);
            r.stored(out, outcome, cas);
        }
        Command::Refused {
            key,
            why,
            drop_existing,
        } => {
            detail(key, PrefixOp::Set);
            let outcome = match why {
                Refusal::TooLarge => StoreOutcome::TooLarge,
                Refusal::NoMemory => StoreOutcome::NoMemory,
            };
            store.refuse_store(key, outcome, drop_existing);
            r.stored(out, outcome, 0);
        }
        Command::Delete { key, .. } if decision::is_decision_key(ctx, key) => {
            match decision::reset(ctx, key) {
                Some(Ok(true)) => r.deleted(out, DeleteOutcome::Deleted),
                Some(Ok(false)) | None => r.deleted(out, DeleteOutcome::NotFound),
                Some(Err(e)) => return refuse(r, out, Refused::Decision(e)),
            }
        }
        Command::Delete { key, opts } => {
            detail(key, PrefixOp::Delete);
            let mut outcome = store.delete(key, opts);
            // An unconditional delete also resets the subject's rate-limit states.
            if opts.cas.is_none() && !opts.stale && ctx.limiter.reset(key) {
                outcome = DeleteOutcome::Deleted;
            }
            r.deleted(out, outcome);
        }
        Command::Arith { key, opts } => r.arith(out, store.arith(key, opts)),
        Command::Touch {
            key,
            exptime,
            fetch: true,
        } => {
            let hit = store
                .get(key, Some(exptime), |it| r.item(out, key, &it))
                .is_some();
            if !hit {
                r.miss(out, key);
            }
            detail(key, PrefixOp::Get(hit));
        }
        Command::Touch { key, exptime, .. } => r.touched(out, store.touch(key, exptime)),
        Command::Decide { limit, mode } => r.decision(
            out,
            decide_one_counted(ctx, &limit, mode)
                .as_ref()
                .map_err(|e| *e),
        ),
    }
    Ran::Done
}

fn refuse(r: &mut impl Responder, out: &mut Output, why: Refused) -> Ran {
    r.refused(out, why);
    Ran::Failed
}

/// Decides `limits` atomically and counts the request in the rate-limit stats (`cmd_ratelimit`
/// and one of allowed, denied, errors; the same per policy and per key prefix, `stats
/// ratelimit`). Every protocol's rate-limit command goes through here or, for a single
/// limit, [`decide_one_counted`]. New states are created in the request's stats group.
pub fn decide_counted(
    ctx: &Context,
    limits: &[Limit<'_>],
    mode: Mode,
) -> Result<Verdict, ApplyError> {
    let limits = ctx.limit_stats.grouped(limits, ctx.config.prefix_delimiter);
    let r = apply(&ctx.limiter, &ctx.store, &limits, mode);
    count(ctx, &limits, outcome(r.as_ref().map(|v| v.overall.allowed)));
    r
}

/// [`decide_counted`] for one limit, answering its decision alone.
pub fn decide_one_counted(
    ctx: &Context,
    limit: &Limit<'_>,
    mode: Mode,
) -> Result<Decision, ApplyError> {
    let prefix = ctx
        .limit_stats
        .prefix_row(limit.key, ctx.config.prefix_delimiter);
    let limit = Limit {
        group: Group {
            prefix,
            ..limit.group
        },
        ..*limit
    };
    let r = apply_one(&ctx.limiter, &ctx.store, &limit, mode);
    count(
        ctx,
        std::slice::from_ref(&limit),
        outcome(r.as_ref().map(|d| d.allowed)),
    );
    r
}

fn outcome(allowed: Result<bool, &ApplyError>) -> Outcome {
    match allowed {
        Ok(true) => Outcome::Allowed,
        Ok(false) => Outcome::Denied,
        Err(_) => Outcome::Error,
    }
}

/// Counts a request in the rate-limit stats: globally, and in the policy and prefix rows of
/// its (grouped) `limits`.
pub fn count(ctx: &Context, limits: &[Limit<'_>], outcome: Outcome) {
    ServerStats::add(&ctx.stats.cmd_ratelimit, 1);
    let counter = match outcome {
        Outcome::Allowed => &ctx.stats.ratelimit_allowed,
        Outcome::Denied => &ctx.stats.ratelimit_denied,
        Outcome::Error => &ctx.stats.ratelimit_errors,
    };
    ServerStats::add(counter, 1);
    ctx.limit_stats.count(limits, outcome);
}
