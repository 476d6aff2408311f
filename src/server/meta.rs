//! Executes meta commands (`mg ms md ma me`) against the store and writes memcached's meta
//! replies: status code, returned flags in request order, win/stale markers, value.

use std::io::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{BufMut, BytesMut};

use super::decision;
use super::exec::meta::{num, ttl, MetaReply};
use super::exec::{self};
use super::output::Output;
use super::Context;
use crate::protocol::command::Command;
use crate::protocol::meta::{
    opaque_too_long, put_echoes, put_hit_head, put_key, MetaCmd, MetaRequest,
};
use crate::protocol::text::write_reply;
use crate::protocol::Reply;
use crate::stats::ServerStats;
use crate::store::{ArithOptions, DeleteOptions, MetaArith, MetaGet, StoreMode, StoreOptions};

/// Replaces what was written since `start` with memcached's opaque error.
fn opaque_error(out: &mut BytesMut, start: usize) {
    out.truncate(start);
    write_reply(out, Reply::ClientError("opaque token too long"));
}

/// Runs `mg`, `ms` (its value framed by the decoder), `md` or `ma`: `ms`, `md` and every
/// command on a decision key through the executor, `mg` and `ma` of items here (their reply
/// reads and changes the item itself).
pub fn execute(ctx: &Context, req: &MetaRequest<'_>, out: &mut Output) {
    let key: &[u8] = &req.key;
    let decision = decision::is_decision_key(ctx, key);
    if decision && req.tokens.iter().any(|t| opaque_too_long(t)) {
        return write_reply(out, Reply::ClientError("opaque token too long"));
    }
    let cmd = match req.cmd {
        MetaCmd::Get if !decision => return meta_get(ctx, req, out),
        MetaCmd::Arith if !decision => return meta_arith(ctx, req, out),
        MetaCmd::Get => Command::Get { key, touch: None },
        MetaCmd::Arith => Command::Arith {
            key,
            opts: ArithOptions::classic(true, 0),
        },
        MetaCmd::Set => store_command(req),
        MetaCmd::Delete => Command::Delete {
            key,
            opts: DeleteOptions {
                cas: req.cas,
                stale: req.invalidate,
                exptime: req.ttl.map(i64::from),
                meta: true,
            },
        },
    };
    exec::execute(ctx, cmd, &mut MetaReply { req }, out);
}

fn meta_get(ctx: &Context, req: &MetaRequest<'_>, out: &mut Output) {
    let store = &ctx.store;
    let has = |f: u8| req.tokens.iter().any(|t| t[0] == f);
    let how = MetaGet {
        vivify: req.vivify.is_some(),
        touch: req.ttl.is_some(),
        late_bump: b"NTRhl".iter().any(|&f| has(f)),
        no_update: req.no_update,
    };
    let start = out.len();
    store.meta_get(&req.key, how, |found| {
        let Some((it, created)) = found else {
            if req.tokens.iter().any(|t| opaque_too_long(t)) {
                opaque_error(out, start);
            } else if !req.quiet {
                out.put_slice(b"EN");
                put_echoes(out, req);
                out.put_slice(b"\r\n");
            }
            return;
        };
        let mut won = false;
        put_hit_head(out, req.value, it.value().len());
        // In request order: a T or N before a failing token has taken effect.
        for tok in &req.tokens {
            match tok[0] {
                b'T' => it.set_exptime(i64::from(req.ttl.unwrap_or(0))),
                b'N' if created => {
                    it.set_exptime(i64::from(req.vivify.unwrap_or(0)));
                    won = true;
                }
                b'R' => {
                    let recache = store.rel_exptime(i64::from(req.recache.unwrap_or(0)));
                    if !it.token_sent() && !created && it.exptime() != 0 && it.exptime() < recache {
                        won = true;
                    }
                }
                b's' => num(out, b's', it.value().len()),
                b't' => ttl(out, it.ttl()),
                b'c' => num(out, b'c', it.cas()),
                b'f' => num(out, b'f', it.flags()),
                b'l' => num(out, b'l', it.last_access()),
                b'h' => num(out, b'h', u8::from(it.fetched())),
                b'O' if opaque_too_long(tok) => {
                    it.abort();
                    opaque_error(out, start);
                    return;
                }
                b'O' => {
                    out.put_u8(b' ');
                    out.put_slice(tok);
                }
                b'k' => put_key(out, it.key(), it.key_binary()),
                _ => {}
            }
        }
        if it.token_sent() {
            out.put_slice(b" Z");
        }
        if it.stale() {
            out.put_slice(b" X");
            if !it.token_sent() {
                won = true;
            }
        }
        if won {
            out.put_slice(b" W");
            it.set_token_sent();
        }
        out.put_slice(b"\r\n");
        if req.value {
            out.put_meta_value(it);
            out.put_slice(b"\r\n");
        }
    });
}

fn meta_arith(ctx: &Context, req: &MetaRequest<'_>, out: &mut BytesMut) {
    let incr = !matches!(req.mode, Some(b'D' | b'-'));
    let vivify = req.vivify.map(|_| req.initial);
    let start = out.len();
    let r = ctx
        .store
        .meta_arith(&req.key, incr, req.delta, vivify, req.cas, |it, created| {
            let number: Vec<u8> = it
                .value()
                .iter()
                .copied()
                .take_while(|&b| b != b' ')
                .collect();
            put_hit_head(out, req.value, number.len());
            // In request order; a long opaque fails the reply after the update happened.
            for tok in &req.tokens {
                match tok[0] {
                    b'c' => num(out, b'c', it.cas()),
                    b't' => ttl(out, it.ttl()),
                    b'T' => it.set_exptime(i64::from(req.ttl.unwrap_or(0))),
                    b'N' if created => it.set_exptime(i64::from(req.vivify.unwrap_or(0))),
                    b'O' if opaque_too_long(tok) => return Err(()),
                    b'O' => {
                        out.put_u8(b' ');
                        out.put_slice(tok);
                    }
                    b'k' => put_key(out, &req.key, req.base64),
                    _ => {}
                }
            }
            out.put_slice(b"\r\n");
            if req.value {
                out.put_slice(&number);
                out.put_slice(b"\r\n");
            }
            Ok(created)
        });
    let code: &[u8] = match r {
        MetaArith::Done(Ok(created)) => {
            // memcached's q hides the answer for an existing counter, not a vivified one.
            if req.quiet && !created {
                out.truncate(start);
            }
            return;
        }
        MetaArith::Done(Err(())) => return opaque_error(out, start),
        MetaArith::NotFound => b"NF",
        MetaArith::Exists => b"EX",
        MetaArith::NonNumeric => {
            write_reply(
                out,
                Reply::ClientError("cannot increment or decrement non-numeric value"),
            );
            return;
        }
        MetaArith::NoMemory => {
            write_reply(out, Reply::ServerError("Out of memory allocating new item"));
            return;
        }
    };
    if req.tokens.iter().any(|t| opaque_too_long(t)) {
        return opaque_error(out, start);
    }
    out.put_slice(code);
    put_echoes(out, req);
    out.put_slice(b"\r\n");
}

/// The store command of an `ms` with its value.
fn store_command<'a>(req: &'a MetaRequest<'_>) -> Command<'a> {
    // memcached never matches a cas of 0, nor lets it write a stale value; append and prepend
    // treat it as no cas at all.
    let mut opts = StoreOptions {
        invalidate: req.invalidate && req.cas != Some(0),
        compare_cas: None,
        key_binary: req.base64,
    };
    let mode = match (req.mode.unwrap_or(b'S'), req.cas) {
        (b'E', _) => StoreMode::Add,
        (b'A', c) => {
            opts.compare_cas = c.filter(|&c| c != 0);
            StoreMode::Append
        }
        (b'P', c) => {
            opts.compare_cas = c.filter(|&c| c != 0);
            StoreMode::Prepend
        }
        (b'R' | b'S', Some(c)) => StoreMode::Cas(c),
        (b'R', None) => StoreMode::Replace,
        _ => StoreMode::Set,
    };
    Command::Store {
        key: &req.key,
        mode,
        flags: req.client_flags,
        exptime: i64::from(req.ttl.unwrap_or(0)),
        value: req.data,
        opts,
    }
}

/// `me <key>`: memcached's debug line for an item, or `EN` (the only meta command memcached
/// 1.6.18 counts in `cmd_meta`).
pub fn meta_debug(ctx: &Context, key: &[u8], out: &mut BytesMut) {
    ServerStats::add(&ctx.stats.cmd_meta, 1);
    ctx.store.meta_peek(key, |found| match found {
        None => out.put_slice(b"EN\r\n"),
        Some(it) => {
            out.put_slice(b"ME ");
            if it.key_binary() {
                out.put_slice(STANDARD.encode(it.key()).as_bytes());
            } else {
                out.put_slice(it.key());
            }
            let exp = it.ttl().map_or(-1, |t| (t as i32).wrapping_neg());
            let mut w = out.writer();
            let _ = write!(
                w,
                " exp={exp} la={} cas={} fetch={} cls={} size={}\r\n",
                it.last_access(),
                it.cas(),
                if it.fetched() { "yes" } else { "no" },
                it.class(),
                it.size()
            );
        }
    });
}
