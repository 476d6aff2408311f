//! Executes decoded text-protocol requests against the store and writes their replies.
//! Knows neither sockets nor framing: the session hands it complete requests, values included.

use std::sync::atomic::Ordering;

use bytes::{BufMut, BytesMut};

use super::decision;
use super::exec::text::{apply_error_reply, TextReply};
use super::exec::{self, decide_counted, decide_one_counted, Ran};
use super::output::Output;
use super::stats_cmd::{self, StatsReport};
use super::Context;
use crate::limit_stats::Outcome;
use crate::limiter::Group;
use crate::protocol::command::Command;
use crate::protocol::limits::{
    parse_limit_line, write_decision, write_meta_decision, MetaLimit, Target, MAX_LIMITS,
};
use crate::protocol::text::{write_metadump_line, write_reply, write_stat, Keys};
use crate::protocol::{Reply, Request, StatsKind, StoreKind};
use crate::ratelimit::{Limit, Mode};
use crate::stats::{self, PrefixOp, ServerStats};
use crate::store::smallvec::SmallVec;
use crate::store::{ArithOptions, DeleteOptions, DumpCursor, StoreMode, StoreOptions};

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
            let mut r = TextReply {
                cas,
                noreply: false,
            };
            let touch = touch.map(i64::from);
            loop {
                if out.is_full() {
                    *cursor = list.len() - keys.rest().len();
                    return Flow::Paused;
                }
                let Some(key) = keys.next() else { break };
                if exec::execute(ctx, Command::Get { key, touch }, &mut r, out) == Ran::Failed {
                    // Decisions already made stand; the rest of the line is not run.
                    *cursor = 0;
                    return Flow::Continue;
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
            let mode = match kind {
                StoreKind::Set => StoreMode::Set,
                StoreKind::Add => StoreMode::Add,
                StoreKind::Replace => StoreMode::Replace,
                StoreKind::Append => StoreMode::Append,
                StoreKind::Prepend => StoreMode::Prepend,
                StoreKind::Cas => StoreMode::Cas(cas),
            };
            let cmd = Command::Store {
                key,
                mode,
                flags,
                exptime: i64::from(exptime),
                value: data,
                opts: StoreOptions::default(),
            };
            exec::execute(ctx, cmd, &mut TextReply::new(noreply), out);
        }
        Request::Refused {
            key,
            why,
            drop_existing,
            noreply,
        } => {
            let cmd = Command::Refused {
                key: &key,
                why,
                drop_existing,
            };
            exec::execute(ctx, cmd, &mut TextReply::new(noreply), out);
        }
        Request::Delete { key, noreply } => {
            let cmd = Command::Delete {
                key,
                opts: DeleteOptions::default(),
            };
            exec::execute(ctx, cmd, &mut TextReply::new(noreply), out);
        }
        Request::Arith {
            key,
            incr,
            delta,
            noreply,
        } => {
            let opts = ArithOptions::classic(incr, delta);
            exec::execute(
                ctx,
                Command::Arith { key, opts },
                &mut TextReply::new(noreply),
                out,
            );
        }
        Request::Touch {
            key,
            exptime,
            noreply,
        } => {
            let cmd = Command::Touch {
                key,
                exptime: i64::from(exptime),
                fetch: false,
            };
            exec::execute(ctx, cmd, &mut TextReply::new(noreply), out);
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
                                exec::count(ctx, &limits, Outcome::Error);
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
        group: Group::NONE,
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

/// Counts and answers a rate-limit request that failed before a decision (before its policy
/// and subjects were known: counted globally only).
pub fn ratelimit_error(ctx: &Context, r: Reply, noreply: bool, out: &mut BytesMut) {
    exec::count(ctx, &[], Outcome::Error);
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
    out: &mut Output,
) {
    if let ([limit], false) = (limits, multi) {
        let cmd = Command::Decide {
            limit: *limit,
            mode,
        };
        exec::execute(ctx, cmd, &mut TextReply::new(noreply), out);
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

/// `ratelimit_all`: parses its limit lines (each `\n`-terminated) and decides them at once.
fn ratelimit_all(
    ctx: &Context,
    count: usize,
    lines: &[u8],
    peek: bool,
    noreply: bool,
    out: &mut Output,
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
