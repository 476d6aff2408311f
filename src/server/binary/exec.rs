//! Runs decoded binary-protocol requests against the store and writes memcached's response
//! packets: statuses, quiet rules, bodies.

use bytes::BytesMut;

use super::sasl::Sasl;
use crate::limit_stats::Outcome;
use crate::protocol::binary::{
    status, write_error, write_response, write_stat, Command, Header, Request, StoreOp,
    NO_AUTOVIVIFY,
};
use crate::protocol::command::Command as ExecCommand;
use crate::protocol::StatsKind;
use crate::ratelimit::Limit;
use crate::server::dispatch::Flow;
use crate::server::exec;
use crate::server::exec::binary::{BinaryReply, Shape};
use crate::server::output::Output;
use crate::server::stats_cmd::{self, StatsReport};
use crate::server::Context;
use crate::stats::ServerStats;
use crate::store::{ArithOptions, DeleteOptions, StoreMode, StoreOptions};

/// Runs one request. Returns [`Flow::Close`] where memcached closes.
pub fn execute(ctx: &Context, req: Request<'_>, out: &mut Output, sasl: &mut Sasl) -> Flow {
    let h = &req.header;
    let quiet = req.quiet;
    let reply = |shape| BinaryReply { h, quiet, shape };
    match req.command {
        Command::Get { key, with_key } => {
            let mut r = reply(Shape::Get { with_key });
            exec::execute(ctx, ExecCommand::Get { key, touch: None }, &mut r, out);
        }
        Command::Gat {
            key,
            exptime,
            with_key,
        } => {
            let cmd = ExecCommand::Get {
                key,
                touch: Some(i64::from(exptime)),
            };
            exec::execute(ctx, cmd, &mut reply(Shape::Get { with_key }), out);
        }
        Command::Touch { key, exptime } => {
            let cmd = ExecCommand::Touch {
                key,
                exptime: i64::from(exptime),
                fetch: true,
            };
            exec::execute(ctx, cmd, &mut reply(Shape::Touch), out);
        }
        Command::Store {
            op,
            key,
            flags,
            exptime,
            value,
        } => {
            // A non-zero cas makes set/add/replace a compare-and-swap; append/prepend compare
            // too. With -C items carry no cas and memcached ignores the request's.
            let cas = if ctx.config.use_cas { h.cas } else { 0 };
            let (mode, compare_cas) = match op {
                StoreOp::Set | StoreOp::Add | StoreOp::Replace if cas != 0 => {
                    (StoreMode::Cas(cas), None)
                }
                StoreOp::Set => (StoreMode::Set, None),
                StoreOp::Add => (StoreMode::Add, None),
                StoreOp::Replace => (StoreMode::Replace, None),
                StoreOp::Append => (StoreMode::Append, (cas != 0).then_some(cas)),
                StoreOp::Prepend => (StoreMode::Prepend, (cas != 0).then_some(cas)),
            };
            let cmd = ExecCommand::Store {
                key,
                mode,
                flags,
                exptime: i64::from(exptime),
                value,
                opts: StoreOptions {
                    compare_cas,
                    ..StoreOptions::default()
                },
            };
            let shape = Shape::Store { op, cas: cas != 0 };
            exec::execute(ctx, cmd, &mut reply(shape), out);
        }
        Command::StoreRefused { op, key, why } => {
            let cmd = ExecCommand::Refused {
                key,
                why,
                drop_existing: op == StoreOp::Set,
            };
            exec::execute(ctx, cmd, &mut reply(Shape::Refused), out);
        }
        Command::Delete { key } => {
            let opts = DeleteOptions {
                cas: (h.cas != 0).then_some(h.cas),
                ..DeleteOptions::default()
            };
            exec::execute(
                ctx,
                ExecCommand::Delete { key, opts },
                &mut reply(Shape::Other),
                out,
            );
        }
        Command::Arith {
            key,
            incr,
            delta,
            initial,
            exptime,
        } => {
            let opts = ArithOptions {
                incr,
                delta,
                vivify: (exptime != NO_AUTOVIVIFY).then_some((initial, i64::from(exptime))),
                cas: (h.cas != 0).then_some(h.cas),
                count_expired: true,
            };
            exec::execute(
                ctx,
                ExecCommand::Arith { key, opts },
                &mut reply(Shape::Other),
                out,
            );
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
        Command::RateLimit { args: None, .. } => {
            exec::count(ctx, &[], Outcome::Error);
            write_error(out, h, status::EINVAL);
        }
        Command::RateLimit { key, args: Some(a) } => {
            let limit = Limit {
                key,
                algorithm: a.algorithm,
                params: a.params,
                from_policy: false,
                group: crate::limiter::Group::NONE,
            };
            let cmd = ExecCommand::Decide {
                limit,
                mode: a.mode,
            };
            exec::execute(ctx, cmd, &mut reply(Shape::Other), out);
        }
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

/// A success reply (unless quiet) with `value` as body, or the error `st`.
fn success_or_error(out: &mut BytesMut, h: &Header, st: u16, cas: u64, value: &[u8], quiet: bool) {
    if st != status::SUCCESS {
        write_error(out, h, st);
    } else if !quiet {
        write_response(out, h, status::SUCCESS, cas, &[], &[], value);
    }
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
