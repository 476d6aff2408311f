//! Decision keys at execution (`--ratelimit-prefix`, docs/ratelimit.md "Any client, any
//! proxy"): the one place every protocol's retrieval, delete and write of a key under the
//! prefix comes to. A retrieval decides (cost 1, counted as `ratelimit` is) and always hits
//! with the verdict line; a delete resets the subject; writes are refused (read-only).

use super::exec::{count, decide_counted, decide_one_counted};
use super::Context;
use crate::limit_stats::Outcome;
use crate::protocol::decision_key::{self, VerdictLine};
use crate::protocol::limits::Target;
use crate::protocol::Reply;
use crate::ratelimit::{ApplyError, Limit, Mode};
use crate::store::smallvec::SmallVec;

/// Why a decision key was not decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionError {
    /// The key does not parse, or names an unknown policy: never a miss.
    BadKey,
    /// The subject holds a client's value or another algorithm's state.
    Incompatible,
    /// No memory for a new state (`-o ratelimit_full=deny`).
    NoMemory,
}

impl DecisionError {
    /// The text-protocol (and meta) reply.
    pub fn reply(self) -> Reply {
        match self {
            DecisionError::BadKey => Reply::ClientError("bad rate-limit key"),
            DecisionError::Incompatible => Reply::ClientError("key holds incompatible value"),
            DecisionError::NoMemory => Reply::ServerError("out of memory storing object"),
        }
    }

    /// The binary protocol's status and message.
    pub fn status(self) -> (u16, &'static str) {
        use crate::protocol::binary::status;
        match self {
            DecisionError::BadKey => (status::EINVAL, "bad rate-limit key"),
            DecisionError::Incompatible => (status::EINVAL, "key holds incompatible value"),
            DecisionError::NoMemory => (status::ENOMEM, "Out of memory allocating item"),
        }
    }
}

impl From<ApplyError> for DecisionError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Incompatible => DecisionError::Incompatible,
            ApplyError::NoMemory => DecisionError::NoMemory,
        }
    }
}

/// The reply to a write (set, add, incr, touch, ...) of a decision key.
pub const READ_ONLY: Reply = Reply::ClientError("rate-limit key is read-only");
/// [`READ_ONLY`] in the binary protocol: status and message.
pub const READ_ONLY_STATUS: (u16, &str) = (
    crate::protocol::binary::status::EINVAL,
    "rate-limit key is read-only",
);

/// True if `key` lies under `--ratelimit-prefix`: it can be read (decided) and deleted
/// (reset), never written.
#[inline]
pub fn is_decision_key(ctx: &Context, key: &[u8]) -> bool {
    ctx.config
        .ratelimit_prefix
        .as_deref()
        .is_some_and(|p| key.starts_with(p))
}

/// The limits a decision key decides, each on its subject at cost 1.
type Limits<'a> = SmallVec<[Limit<'a>; 4]>;

/// Parses `key` and looks up its policy: `None` for an ordinary key.
fn resolve<'a>(ctx: &Context, key: &'a [u8]) -> Option<Result<Limits<'a>, DecisionError>> {
    let prefix = ctx.config.ratelimit_prefix.as_deref()?;
    let parsed = decision_key::parse(prefix, key)?;
    Some(parsed.map_err(|_| DecisionError::BadKey).and_then(|k| {
        let mut limits = Limits::new();
        match k.target {
            Target::Explicit(limit) => limits.push(limit),
            Target::Policy { name, cost } => {
                let policies = ctx.policies.read().clone();
                let found = policies
                    .limits(name, k.subject, cost)
                    .ok_or(DecisionError::BadKey)?;
                if found
                    .iter()
                    .any(|l| l.params.validate(l.algorithm).is_err())
                {
                    return Err(DecisionError::BadKey);
                }
                for l in found {
                    limits.push(l);
                }
            }
        }
        Ok(limits)
    }))
}

/// Counts a decision key refused before a decision in the rate-limit stats (globally: its
/// policy and subjects are not known).
fn count_error(ctx: &Context) {
    count(ctx, &[], Outcome::Error);
}

/// The get form: decides `key` (cost 1) if it is a decision key and returns its verdict line,
/// the value every protocol answers as a hit. `None` for an ordinary key.
pub fn decide(ctx: &Context, key: &[u8]) -> Option<Result<VerdictLine, DecisionError>> {
    let limits = match resolve(ctx, key)? {
        Ok(limits) => limits,
        Err(e) => {
            count_error(ctx);
            return Some(Err(e));
        }
    };
    let decision = match &limits[..] {
        [one] => decide_one_counted(ctx, one, Mode::Consume),
        all => decide_counted(ctx, all, Mode::Consume).map(|v| v.overall),
    };
    Some(
        decision
            .map(|d| VerdictLine::new(&d))
            .map_err(DecisionError::from),
    )
}

/// Checks every decision key among `keys` before a multi-key retrieval decides any: a bad
/// one fails the whole command, with nothing decided (counted as one error).
pub fn check_all<'k>(
    ctx: &Context,
    keys: impl IntoIterator<Item = &'k [u8]>,
) -> Result<(), DecisionError> {
    if ctx.config.ratelimit_prefix.is_none() {
        return Ok(());
    }
    for key in keys {
        if let Some(Err(e)) = resolve(ctx, key) {
            count_error(ctx);
            return Err(e);
        }
    }
    Ok(())
}

/// `delete` of a decision key: resets every state of its subject. `None` for an ordinary
/// key; `Some(Ok(false))` when the subject had no state.
pub fn reset(ctx: &Context, key: &[u8]) -> Option<Result<bool, DecisionError>> {
    let limits = resolve(ctx, key)?;
    Some(limits.map(|limits| {
        let mut any = false;
        for l in &limits {
            any |= ctx.limiter.reset(l.key);
        }
        any
    }))
}
