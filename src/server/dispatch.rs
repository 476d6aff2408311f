//! Executes decoded text-protocol requests against the store and writes their replies.
//! Knows neither sockets nor framing: the session hands it complete requests, values included.

use std::sync::atomic::Ordering;

use bytes::{BufMut, BytesMut};

use super::decision;
use super::output::Output;
use super::stats_cmd::{self, StatsReport};
use super::Context;
use crate::limit_stats::Outcome;
use crate::limiter::Group;
use crate::protocol::limits::{
    parse_limit_line, write_decision, write_meta_decision, MetaLimit, Target, MAX_LIMITS,
};
use crate::protocol::text::{
    write_metadump_line, write_number, write_reply, write_stat, write_value_header, Keys,
};
use crate::protocol::{Refusal, Reply, Request, StatsKind, StoreKind};
use crate::ratelimit::{apply, apply_one, ApplyError, Decision, Limit, Mode, Verdict};
use crate::stats::{self, PrefixOp, ServerStats};
use crate::store::smallvec::SmallVec;
use crate::store::{DeltaOutcome, DumpCursor, StoreMode, StoreOutcome};

/// Item slots `lru_crawler metadump` walks between checks of the output's high-water mark
/// (at most about 100 KB of lines).
const METADUMP_SLOTS: usize = 1024;

/// What the session must do after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The request is done: go on.
    Continue,
    /// Output is full part-way through a multi-get: run it again (from its cursor) once the
    /// output has drained.
    Paused,
    /// Send what is buffered, then close.
    Close,
}

/// A storage command and its options, as parsed from its line.
#[derive(Debug, Clone, Copy)]
pub struct PendingStore {
    /// Which command.
    pub kind: StoreKind,
    /// Client flags.
    pub flags: u32,
    /// Client exptime.
    pub exptime: i32,
    /// Cas unique (`cas`).
    pub cas: u64,
    /// Suppress the reply.
    pub noreply: bool,
}

fn reply(out: &mut BytesMut, r: Reply, noreply: bool) {
    if !noreply {
        write_reply(out, r);
    }
}

/// Runs one complete request. A multi-get stops at the output high-water mark with its place
/// in `cursor` (bytes of its key list answered) and [`Flow::Paused`]; run again, it goes on
/// from there.
pub fn execute(ctx: &Context, req: Request<'_>, out: &mut Output, cursor: &mut usize) -> Flow {
    let store = &ctx.store;
    let detail = ctx.stats.detail.enabled();
    let delim = ctx.config.prefix_delimiter;
    match req {
        Request::Get { cas, touch, keys } => {
            let list = keys.rest();
            if *cursor == 0 {
                if let Err(e) = decision::check_all(ctx, Keys::new(list)) {
                    write_reply(out, e.reply());
                    return Flow::Continue;
                }
            }
            let mut keys = Keys::new(&list[*cursor..]);
            loop {
                if out.is_full() {
                    *cursor = list.len() - keys.rest().len();
                    return Flow::Paused;
                }
                let Some(key) = keys.next() else { break };
                if let Some(verdict) = decision::decide(ctx, key) {
                    match verdict {
                        Ok(line) => {
                            let line = line.as_bytes();
                            write_value_header(out, key, 0, line.len(), cas.then_some(0));
                            out.put_slice(line);
                            out.put_slice(b"\r\n");
                        }
                        Err(e) => {
                            // Decisions already made stand; the rest of the line is not run.
                            *cursor = 0;
                            write_reply(out, e.reply());
                            return Flow::Continue;
                        }
                    }
                    continue;
                }
                let hit = store
                    .get(key, touch.map(i64::from), |it| {
                        write_value_header(
                            out,
                            it.key,
                            it.flags,
                            it.value.len(),
                            cas.then_some(it.cas),
                        );
                        out.put_value(&it);
                        out.put_slice(b"\r\n");
                    })
                    .is_some();
                if detail {
                    ctx.stats.detail.record(key, delim, PrefixOp::Get(hit));
                }
            }
            *cursor = 0;
            write_reply(out, Reply::End);
        }
        Request::GetBadKey { touch, before } => {
            // Keys before the bad one are fetched without replies; a decision key there is
            // not decided (nobody would see its verdict).
            for key in before.filter(|k| !decision::is_decision_key(ctx, k)) {
                let hit = store.get(key, touch.map(i64::from), |_| ()).is_some();
                if detail {
                    ctx.stats.detail.record(key, delim, PrefixOp::Get(hit));
                }
            }
            write_reply(out, Reply::ClientError("bad command line format"));
        }
        Request::Store {
            kind,
            key,
            flags,
            exptime,
            cas,
            noreply,
            data,
            ..
        } => {
            if decision::is_decision_key(ctx, key) {
                reply(out, decision::READ_ONLY, noreply);
                return Flow::Continue;
            }
            let p = PendingStore {
                kind,
                flags,
                exptime,
                cas,
                noreply,
            };
            store_value(ctx, p, key, data, out);
        }
        Request::Refused {
            key,
            why,
            drop_existing,
            noreply,
        } => {
            if decision::is_decision_key(ctx, &key) {
                reply(out, decision::READ_ONLY, noreply);
                return Flow::Continue;
            }
            if detail {
                ctx.stats.detail.record(&key, delim, PrefixOp::Set);
            }
            let (outcome, r) = match why {
                Refusal::TooLarge => (
                    StoreOutcome::TooLarge,
                    Reply::ServerError("object too large for cache"),
                ),
                Refusal::NoMemory => (
                    StoreOutcome::NoMemory,
                    Reply::ServerError("out of memory storing object"),
                ),
            };
            ctx.store.refuse_store(&key, outcome, drop_existing);
            reply(out, r, noreply);
        }
        Request::Delete { key, noreply } => {
            if detail {
                ctx.stats.detail.record(key, delim, PrefixOp::Delete);
            }
            let r = match decision::reset(ctx, key) {
                Some(Err(e)) => e.reply(),
                Some(Ok(true)) => Reply::Deleted,
                None if delete_key(ctx, key) => Reply::Deleted,
                Some(Ok(false)) | None => Reply::NotFound,
            };
            reply(out, r, noreply);
        }
        Request::Arith { key, noreply, .. } if decision::is_decision_key(ctx, key) => {
            reply(out, decision::READ_ONLY, noreply)
        }
        Request::Arith {
            key,
            incr,
            delta,
            noreply,
        } => match store.delta(key, incr, delta) {
            DeltaOutcome::Value(v) => {
                if !noreply {
                    write_number(out, v);
                }
            }
            DeltaOutcome::NotFound => reply(out, Reply::NotFound, noreply),
            DeltaOutcome::NonNumeric => reply(
                out,
                Reply::ClientError("cannot increment or decrement non-numeric value"),
                noreply,
            ),
        },
        Request::Touch {
            key,
            exptime,
            noreply,
        } => {
            let r = if decision::is_decision_key(ctx, key) {
                decision::READ_ONLY
            } else if store.touch(key, i64::from(exptime)) {
                Reply::Touched
            } else {
                Reply::NotFound
            };
            reply(out, r, noreply);
        }
        Request::FlushAll { delay, noreply } => {
            ServerStats::add(&ctx.stats.cmd_flush, 1);
            if ctx.config.disable_flush {
                reply(out, Reply::ClientError("flush_all not allowed"), noreply);
            } else if delay == i32::MIN {
                reply(out, Reply::ClientError("invalid exptime argument"), noreply);
            } else {
                ctx.flush_all(i64::from(delay));
                reply(out, Reply::Ok, noreply);
            }
        }
        Request::MetaDump { .. } if ctx.config.disable_dumping => {
            write_reply(out, Reply::Line("ERROR metadump not allowed"))
        }
        Request::MetaDump { classes } => {
            // The cursor holds where the dump goes on: the shard in the high bits, the slot
            // within it in the low 40.
            let mut at = DumpCursor {
                shard: *cursor >> 40,
                slot: *cursor & ((1 << 40) - 1),
            };
            loop {
                if out.is_full() {
                    *cursor = at.shard << 40 | at.slot;
                    return Flow::Paused;
                }
                let listed = |class: u8| class < 64 && classes >> class & 1 == 1;
                let next = store.metadump(at, METADUMP_SLOTS, |m| {
                    if listed(m.class) {
                        write_metadump_line(out, m);
                    }
                });
                match next {
                    Some(next) => at = next,
                    None => break,
                }
            }
            *cursor = 0;
            write_reply(out, Reply::End);
        }
        Request::Version => {
            out.put_slice(b"VERSION ");
            out.put_slice(crate::MEMCACHED_VERSION.as_bytes());
            out.put_slice(b"\r\n");
        }
        Request::Verbosity { level, noreply } => {
            ctx.stats.verbosity.store(level.min(2), Ordering::Relaxed);
            crate::logging::set_verbosity(level);
            reply(out, Reply::Ok, noreply);
        }
        Request::CacheMemlimit { megabytes, noreply } => {
            store.set_memory_limit(u64::from(megabytes) << 20);
            reply(out, Reply::Ok, noreply);
        }
        Request::Stats(kind) => stats_command(ctx, kind, out),
        Request::Quit => return Flow::Close,
        Request::Shutdown { valid, graceful } => {
            if !ctx.config.enable_shutdown {
                write_reply(out, Reply::Line("ERROR: shutdown not enabled"));
            } else if !valid {
                write_reply(out, Reply::ClientError("invalid shutdown mode"));
            } else {
                ctx.request_stop(graceful);
                return Flow::Close;
            }
        }
        Request::Reply { reply: r, noreply } => reply(out, r, noreply),
        Request::RateLimit {
            key,
            target,
            mode,
            noreply,
        } => match target {
            Target::Explicit(limit) => ratelimit(ctx, &[limit], mode, noreply, false, out),
            Target::Policy { name, cost } => {
                let policies = ctx.policies.read().clone();
                match policies.limits(name, key, cost) {
                    Some(limits) => {
                        // The request's cost must fit every limit, as on an explicit line.
                        match limits
                            .iter()
                            .find_map(|l| l.params.validate(l.algorithm).err())
                        {
                            Some(e) => {
                                let limits = ctx.limit_stats.grouped(&limits, delim);
                                count(ctx, &limits, Outcome::Error);
                                reply(out, Reply::ClientError(e.message()), noreply);
                            }
                            None => ratelimit(ctx, &limits, mode, noreply, true, out),
                        }
                    }
                    None => {
                        ctx.limit_stats
                            .unknown_policy
                            .fetch_add(1, Ordering::Relaxed);
                        ratelimit_error(ctx, Reply::ClientError("unknown policy"), noreply, out)
                    }
                }
            }
        },
        Request::RateLimitAll {
            count,
            lines,
            peek,
            noreply,
        } => ratelimit_all(ctx, count, lines, peek, noreply, out),
        Request::Meta(req) => super::meta::execute(ctx, &req, out),
        Request::MetaLimit(req) => meta_limit(ctx, &req, out),
        Request::LimitError { reply: r, noreply } => ratelimit_error(ctx, r, noreply, out),
        Request::MetaDebug { key } => super::meta::meta_debug(ctx, &key, out),
        Request::Swallow { reply: r, .. } => reply(out, r, false),
        Request::Close => return Flow::Close,
    }
    Flow::Continue
}

/// `ml`: one limit, answered in the meta format (`q` hides `HD`).
fn meta_limit(ctx: &Context, req: &MetaLimit<'_>, out: &mut BytesMut) {
    ServerStats::add(&ctx.stats.cmd_meta, 1);
    let limit = Limit {
        key: &req.key,
        algorithm: req.algorithm,
        params: req.params,
        from_policy: false,
        group: crate::limiter::Group::NONE,
    };
    match decide_one_counted(ctx, &limit, req.mode) {
        Ok(d) => {
            if !(req.quiet && d.allowed) {
                write_meta_decision(out, req, &d);
            }
        }
        Err(e) => write_reply(out, apply_error_reply(e)),
    }
}

/// `delete key` in every protocol: removes the cache item and every rate-limit state of the
/// subject `key`; true if either was there.
pub fn delete_key(ctx: &Context, key: &[u8]) -> bool {
    let item = ctx.store.delete(key);
    let states = ctx.limiter.reset(key);
    item || states
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
fn count(ctx: &Context, limits: &[Limit<'_>], outcome: Outcome) {
    ServerStats::add(&ctx.stats.cmd_ratelimit, 1);
    let counter = match outcome {
        Outcome::Allowed => &ctx.stats.ratelimit_allowed,
        Outcome::Denied => &ctx.stats.ratelimit_denied,
        Outcome::Error => &ctx.stats.ratelimit_errors,
    };
    ServerStats::add(counter, 1);
    ctx.limit_stats.count(limits, outcome);
}

/// The text reply for a rate-limit request that could not be decided.
fn apply_error_reply(e: ApplyError) -> Reply {
    match e {
        ApplyError::Incompatible => Reply::ClientError("key holds incompatible value"),
        ApplyError::NoMemory => Reply::ServerError("out of memory storing object"),
    }
}

/// Counts and answers a rate-limit request that failed before a decision (before its policy
/// and subjects were known: counted globally only).
pub fn ratelimit_error(ctx: &Context, r: Reply, noreply: bool, out: &mut BytesMut) {
    count(ctx, &[], Outcome::Error);
    reply(out, r, noreply);
}

/// Decides `limits` atomically and answers: one decision line, or (`multi`) the overall line,
/// one line per limit and `END`.
pub fn ratelimit(
    ctx: &Context,
    limits: &[Limit<'_>],
    mode: Mode,
    noreply: bool,
    multi: bool,
    out: &mut BytesMut,
) {
    if let ([one], false) = (limits, multi) {
        match decide_one_counted(ctx, one, mode) {
            Ok(d) if !noreply => write_decision(out, &d),
            Ok(_) => {}
            Err(e) => reply(out, apply_error_reply(e), noreply),
        }
        return;
    }
    match decide_counted(ctx, limits, mode) {
        Ok(v) => {
            if noreply {
                return;
            }
            write_decision(out, &v.overall);
            if multi {
                for d in &v.decisions {
                    write_decision(out, d);
                }
                write_reply(out, Reply::End);
            }
        }
        Err(e) => reply(out, apply_error_reply(e), noreply),
    }
}

/// Runs a storage command with its value.
fn store_value(ctx: &Context, p: PendingStore, key: &[u8], value: &[u8], out: &mut BytesMut) {
    if ctx.stats.detail.enabled() {
        ctx.stats
            .detail
            .record(key, ctx.config.prefix_delimiter, PrefixOp::Set);
    }
    let mode = match p.kind {
        StoreKind::Set => StoreMode::Set,
        StoreKind::Add => StoreMode::Add,
        StoreKind::Replace => StoreMode::Replace,
        StoreKind::Append => StoreMode::Append,
        StoreKind::Prepend => StoreMode::Prepend,
        StoreKind::Cas => StoreMode::Cas(p.cas),
    };
    let r = match ctx
        .store
        .store(mode, key, p.flags, i64::from(p.exptime), value)
    {
        StoreOutcome::Stored => Reply::Stored,
        StoreOutcome::NotStored => Reply::NotStored,
        StoreOutcome::Exists => Reply::Exists,
        StoreOutcome::NotFound => Reply::NotFound,
        StoreOutcome::TooLarge => Reply::ServerError("object too large for cache"),
        StoreOutcome::NoMemory => Reply::ServerError("out of memory storing object"),
    };
    reply(out, r, p.noreply);
}

/// `ratelimit_all`: parses its limit lines (each `\n`-terminated) and decides them at once.
fn ratelimit_all(
    ctx: &Context,
    count: usize,
    lines: &[u8],
    peek: bool,
    noreply: bool,
    out: &mut BytesMut,
) {
    let mut limits: SmallVec<[Limit<'_>; MAX_LIMITS]> = SmallVec::new();
    let mut error = None;
    for line in lines.split_inclusive(|&b| b == b'\n').take(count) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match parse_limit_line(line) {
            Ok(l) => limits.push(l),
            Err(r) => {
                error.get_or_insert(r);
            }
        }
    }
    match error {
        Some(r) => ratelimit_error(ctx, r, noreply, out),
        None => {
            let mode = if peek { Mode::Peek } else { Mode::Consume };
            ratelimit(ctx, &limits, mode, noreply, true, out);
        }
    }
}

fn write_stats(out: &mut BytesMut, pairs: &[stats::Stat]) {
    for (k, v) in pairs {
        write_stat(out, k, v);
    }
    write_reply(out, Reply::End);
}

fn stats_command(ctx: &Context, kind: StatsKind, out: &mut BytesMut) {
    if matches!(kind, StatsKind::CacheDump(..)) && ctx.config.disable_dumping {
        return write_reply(out, Reply::ClientError("stats cachedump not allowed"));
    }
    match stats_cmd::run(ctx, kind) {
        StatsReport::Pairs(pairs) => write_stats(out, &pairs),
        StatsReport::Dump(dump) => {
            out.put_slice(&dump);
            write_reply(out, Reply::End);
        }
        StatsReport::Done if kind == StatsKind::Reset => write_reply(out, Reply::Reset),
        StatsReport::Done => write_reply(out, Reply::Ok),
    }
}
