//! Runs decoded binary-protocol requests against the store and writes memcached's response
//! packets: statuses, quiet rules, bodies.

use bytes::{BufMut, BytesMut};

use super::sasl::Sasl;
use crate::protocol::binary::{
    ratelimit_extras, status, write_error, write_error_msg, write_item_header, write_response,
    write_stat, Command, Header, RateLimitArgs, Request, StoreOp, NO_AUTOVIVIFY,
};
use crate::protocol::{Refusal, StatsKind};
use crate::ratelimit::{ApplyError, Limit};
use crate::server::decision;
use crate::server::dispatch::Flow;
use crate::server::output::Output;
use crate::server::stats_cmd::{self, StatsReport};
use crate::server::Context;
use crate::stats::{PrefixOp, ServerStats};
use crate::store::{MetaArith, StoreMode, StoreOptions, StoreOutcome};

/// Runs one request. Returns [`Flow::Close`] where memcached closes.
pub fn execute(ctx: &Context, req: Request<'_>, out: &mut Output, sasl: &mut Sasl) -> Flow {
    let h = &req.header;
    let quiet = req.quiet;
    let detail = ctx.stats.detail.enabled();
    let delim = ctx.config.prefix_delimiter;
    let store = &ctx.store;
    match req.command {
        Command::Get { key, with_key } | Command::Gat { key, with_key, .. }
            if decision::is_decision_key(ctx, key) =>
        {
            decide(ctx, h, key, with_key, out)
        }
        Command::Touch { key, .. }
        | Command::Store { key, .. }
        | Command::StoreRefused { key, .. }
        | Command::Arith { key, .. }
            if decision::is_decision_key(ctx, key) =>
        {
            let (st, msg) = decision::READ_ONLY_STATUS;
            write_error_msg(out, h, st, msg)
        }
        Command::Delete { key } if decision::is_decision_key(ctx, key) => {
            match decision::reset(ctx, key) {
                Some(Ok(true)) => success_or_error(out, h, status::SUCCESS, 0, &[], quiet),
                Some(Ok(false)) | None => write_error(out, h, status::KEY_ENOENT),
                Some(Err(e)) => {
                    let (st, msg) = e.status();
                    write_error_msg(out, h, st, msg)
                }
            }
        }
        Command::Get { key, with_key } => {
            let hit = store
                .get(key, None, |it| {
                    let k = if with_key { key } else { &[] };
                    write_item_header(out, h, it.cas, it.flags, k, it.value.len());
                    out.put_value(&it);
                })
                .is_some();
            if detail {
                ctx.stats.detail.record(key, delim, PrefixOp::Get(hit));
            }
            miss(out, h, hit, quiet, with_key.then_some(key));
        }
        Command::Gat {
            key,
            exptime,
            with_key,
        } => {
            let hit = store
                .get(key, Some(i64::from(exptime)), |it| {
                    let k = if with_key { key } else { &[] };
                    write_item_header(out, h, it.cas, it.flags, k, it.value.len());
                    out.put_value(&it);
                })
                .is_some();
            if detail {
                ctx.stats.detail.record(key, delim, PrefixOp::Get(hit));
            }
            miss(out, h, hit, quiet, with_key.then_some(key));
        }
        Command::Touch { key, exptime } => {
            let hit = store
                .get(key, Some(i64::from(exptime)), |it| {
                    let flags = it.flags.to_be_bytes();
                    write_response(out, h, status::SUCCESS, it.cas, &flags, &[], &[])
                })
                .is_some();
            if detail {
                ctx.stats.detail.record(key, delim, PrefixOp::Get(hit));
            }
            miss(out, h, hit, false, None);
        }
        Command::Store {
            op,
            key,
            flags,
            exptime,
            value,
        } => {
            if detail {
                ctx.stats.detail.record(key, delim, PrefixOp::Set);
            }
            let args = StoreArgs {
                op,
                key,
                flags,
                exptime,
                value,
            };
            store_value(ctx, h, quiet, args, out);
        }
        Command::StoreRefused { op, key, why } => {
            if detail {
                ctx.stats.detail.record(key, delim, PrefixOp::Set);
            }
            let outcome = match why {
                Refusal::TooLarge => {
                    write_error(out, h, status::E2BIG);
                    StoreOutcome::TooLarge
                }
                Refusal::NoMemory => {
                    write_error_msg(out, h, status::ENOMEM, "Out of memory allocating item");
                    StoreOutcome::NoMemory
                }
            };
            store.refuse_store(key, outcome, op == StoreOp::Set);
        }
        Command::Delete { key } => {
            if detail {
                ctx.stats.detail.record(key, delim, PrefixOp::Delete);
            }
            let st = if h.cas == 0 {
                if crate::server::dispatch::delete_key(ctx, key) {
                    status::SUCCESS
                } else {
                    status::KEY_ENOENT
                }
            } else {
                match store.delete_cas(key, h.cas) {
                    crate::store::MetaDelete::Deleted => status::SUCCESS,
                    crate::store::MetaDelete::NotFound => status::KEY_ENOENT,
                    crate::store::MetaDelete::Exists => status::KEY_EEXISTS,
                }
            };
            success_or_error(out, h, st, 0, &[], quiet);
        }
        Command::Arith {
            key,
            incr,
            delta,
            initial,
            exptime,
        } => {
            let vivify = (exptime != NO_AUTOVIVIFY).then_some(initial);
            let cas = (h.cas != 0).then_some(h.cas);
            let r = store.meta_arith(key, incr, delta, vivify, cas, |mi, created| {
                if created {
                    mi.set_exptime(i64::from(exptime));
                    (initial, mi.cas())
                } else {
                    (crate::numeric::parse_u64(mi.value()).unwrap_or(0), mi.cas())
                }
            });
            match r {
                MetaArith::Done((value, cas)) => {
                    success_or_error(out, h, status::SUCCESS, cas, &value.to_be_bytes(), quiet)
                }
                MetaArith::NotFound => write_error(out, h, status::KEY_ENOENT),
                MetaArith::Exists => write_error(out, h, status::KEY_EEXISTS),
                MetaArith::NonNumeric => write_error(out, h, status::DELTA_BADVAL),
                MetaArith::NoMemory => {
                    write_error_msg(out, h, status::ENOMEM, "Out of memory allocating new item")
                }
            }
        }
        Command::Quit => {
            if !quiet {
                write_response(out, h, status::SUCCESS, 0, &[], &[], &[]);
            }
            return Flow::Close;
        }
        Command::Flush { exptime } => {
            if ctx.config.disable_flush {
                write_error(out, h, status::AUTH_ERROR);
            } else {
                ctx.flush_all(i64::from(exptime));
                ServerStats::add(&ctx.stats.cmd_flush, 1);
                success_or_error(out, h, status::SUCCESS, 0, &[], quiet);
            }
        }
        Command::Noop => write_response(out, h, status::SUCCESS, 0, &[], &[], &[]),
        Command::Version => write_response(
            out,
            h,
            status::SUCCESS,
            0,
            &[],
            &[],
            crate::MEMCACHED_VERSION.as_bytes(),
        ),
        Command::Stat { key } => stat(ctx, h, key, out),
        Command::RateLimit { key, args } => ratelimit(ctx, h, quiet, key, args, out),
        Command::Unknown => write_error(out, h, status::UNKNOWN_COMMAND),
        Command::Error(st) => write_error(out, h, st),
        Command::SaslListMechs => Sasl::list_mechs(out, h),
        Command::SaslAuth { mech, step, data } => sasl.auth(ctx, h, mech, step, data, out),
        Command::Invalid => {
            write_error(out, h, status::EINVAL);
            return Flow::Close;
        }
        Command::BadLengths => {
            write_error(out, h, status::UNKNOWN_COMMAND);
            return Flow::Close;
        }
    }
    Flow::Continue
}

/// A retrieval (GET, GAT and their quiet and key-returning forms) of a decision key: always a
/// hit whose value is the verdict line (flags 0, cas 0), or an error.
fn decide(ctx: &Context, h: &Header, key: &[u8], with_key: bool, out: &mut Output) {
    match decision::decide(ctx, key) {
        Some(Ok(line)) => {
            let line = line.as_bytes();
            let k = if with_key { key } else { &[] };
            write_item_header(out, h, 0, 0, k, line.len());
            out.put_slice(line);
        }
        Some(Err(e)) => {
            let (st, msg) = e.status();
            write_error_msg(out, h, st, msg)
        }
        None => write_error(out, h, status::KEY_ENOENT),
    }
}

/// A success reply (unless quiet) with `value` as body, or the error `st`.
fn success_or_error(out: &mut BytesMut, h: &Header, st: u16, cas: u64, value: &[u8], quiet: bool) {
    if st != status::SUCCESS {
        write_error(out, h, st);
    } else if !quiet {
        write_response(out, h, status::SUCCESS, cas, &[], &[], value);
    }
}

/// The reply to a get/gat/touch miss: nothing when quiet, the key alone for getk/gatk,
/// else `Not found`.
fn miss(out: &mut BytesMut, h: &Header, hit: bool, quiet: bool, key: Option<&[u8]>) {
    if hit || quiet {
        return;
    }
    match key {
        Some(key) => write_response(out, h, status::KEY_ENOENT, 0, &[], key, &[]),
        None => write_error(out, h, status::KEY_ENOENT),
    }
}

/// A storage command's parameters, as decoded.
struct StoreArgs<'a> {
    op: StoreOp,
    key: &'a [u8],
    flags: u32,
    exptime: u32,
    value: &'a [u8],
}

/// Runs a storage command with its value.
fn store_value(ctx: &Context, h: &Header, quiet: bool, a: StoreArgs<'_>, out: &mut BytesMut) {
    let StoreArgs {
        op,
        key,
        flags,
        exptime,
        value,
    } = a;
    // A non-zero cas makes set/add/replace a compare-and-swap; append/prepend compare too.
    // With -C items carry no cas and memcached ignores the request's.
    let cas = if ctx.config.use_cas { h.cas } else { 0 };
    let (mode, compare_cas) = match op {
        StoreOp::Set | StoreOp::Add | StoreOp::Replace if cas != 0 => (StoreMode::Cas(cas), None),
        StoreOp::Set => (StoreMode::Set, None),
        StoreOp::Add => (StoreMode::Add, None),
        StoreOp::Replace => (StoreMode::Replace, None),
        StoreOp::Append => (StoreMode::Append, (cas != 0).then_some(cas)),
        StoreOp::Prepend => (StoreMode::Prepend, (cas != 0).then_some(cas)),
    };
    let opts = StoreOptions {
        compare_cas,
        ..StoreOptions::default()
    };
    let (outcome, new_cas) = ctx
        .store
        .store_ext(mode, key, flags, i64::from(exptime), value, opts);
    let st = match outcome {
        StoreOutcome::Stored => {
            if !quiet {
                write_response(out, h, status::SUCCESS, new_cas, &[], &[], &[]);
            }
            return;
        }
        StoreOutcome::Exists => status::KEY_EEXISTS,
        StoreOutcome::NotFound => status::KEY_ENOENT,
        StoreOutcome::NoMemory if !matches!(op, StoreOp::Append | StoreOp::Prepend) => {
            // memcached fails the allocation before reading the value.
            write_error_msg(out, h, status::ENOMEM, "Out of memory allocating item");
            return;
        }
        StoreOutcome::NotStored | StoreOutcome::TooLarge | StoreOutcome::NoMemory => {
            match (mode, op) {
                (StoreMode::Cas(_), _) => status::NOT_STORED,
                (_, StoreOp::Add) => status::KEY_EEXISTS,
                (_, StoreOp::Replace) => status::KEY_ENOENT,
                _ => status::NOT_STORED,
            }
        }
    };
    write_error(out, h, st);
}

/// `stat`: the report its key names (memcached's matching, [`stats_cmd::binary_kind`]), one
/// packet per pair and an empty one to end; `Not found` for any other key.
fn stat(ctx: &Context, h: &Header, key: &[u8], out: &mut BytesMut) {
    let Some(kind) = stats_cmd::binary_kind(key) else {
        return write_error(out, h, status::KEY_ENOENT);
    };
    match stats_cmd::run(ctx, kind) {
        StatsReport::Pairs(pairs) => {
            for (k, v) in &pairs {
                write_stat(out, h, k.as_bytes(), v.as_bytes());
            }
            if matches!(kind, StatsKind::SizesEnable | StatsKind::SizesDisable) {
                // memcached sends this single packet without a terminating one.
                return;
            }
        }
        StatsReport::Dump(mut dump) => {
            dump.extend_from_slice(b"END\r\n");
            write_stat(out, h, b"detailed", &dump);
        }
        StatsReport::Done => {}
    }
    write_stat(out, h, &[], &[]);
}

/// The rate-limit opcodes (see `docs/ratelimit.md`), decided and counted by
/// [`crate::server::dispatch::decide_counted`] as every protocol's rate-limit command is.
fn ratelimit(
    ctx: &Context,
    h: &Header,
    quiet: bool,
    key: &[u8],
    args: Option<RateLimitArgs>,
    out: &mut BytesMut,
) {
    let Some(a) = args else {
        ServerStats::add(&ctx.stats.cmd_ratelimit, 1);
        ServerStats::add(&ctx.stats.ratelimit_errors, 1);
        return write_error(out, h, status::EINVAL);
    };
    let limit = Limit {
        key,
        algorithm: a.algorithm,
        params: a.params,
        from_policy: false,
        group: crate::limiter::Group::NONE,
    };
    match crate::server::dispatch::decide_one_counted(ctx, &limit, a.mode) {
        Ok(d) => {
            let d = &d;
            if !(quiet && d.allowed) {
                let st = if d.allowed {
                    status::SUCCESS
                } else {
                    status::NOT_STORED
                };
                write_response(out, h, st, 0, &ratelimit_extras(d), &[], &[]);
            }
        }
        Err(ApplyError::Incompatible) => {
            write_error_msg(out, h, status::DELTA_BADVAL, "key holds incompatible value")
        }
        Err(ApplyError::NoMemory) => write_error(out, h, status::ENOMEM),
    }
}
