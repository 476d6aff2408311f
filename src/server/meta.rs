//! Executes meta commands (`mg ms md ma me`) against the store and writes memcached's meta
//! replies: status code, returned flags in request order, win/stale markers, value.

use std::io::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{BufMut, BytesMut};

use super::decision;
use super::output::Output;
use super::Context;
use crate::protocol::meta::{opaque_too_long, put_echoes, put_key, MetaCmd, MetaRequest};
use crate::protocol::text::write_reply;
use crate::protocol::Reply;
use crate::stats::ServerStats;
use crate::store::{
    DeleteOptions, DeleteOutcome, MetaArith, MetaGet, StoreMode, StoreOptions, StoreOutcome,
};

fn num(out: &mut BytesMut, flag: u8, n: impl itoa::Integer) {
    let mut b = itoa::Buffer::new();
    out.put_u8(b' ');
    out.put_u8(flag);
    out.put_slice(b.format(n).as_bytes());
}

/// ` t<ttl>`: -1 for never; memcached prints an expiry already past as an unsigned 32-bit
/// difference.
fn ttl(out: &mut BytesMut, ttl: Option<i64>) {
    match ttl {
        None => out.put_slice(b" t-1"),
        Some(t) => num(out, b't', t as u32),
    }
}

/// Replaces what was written since `start` with memcached's opaque error.
fn opaque_error(out: &mut BytesMut, start: usize) {
    out.truncate(start);
    write_reply(out, Reply::ClientError("opaque token too long"));
}

/// Runs `mg`, `ms` (its value framed by the decoder), `md` or `ma`.
pub fn execute(ctx: &Context, req: &MetaRequest<'_>, out: &mut Output) {
    if decision::is_decision_key(ctx, &req.key) {
        return decision_key(ctx, req, out);
    }
    match req.cmd {
        MetaCmd::Get => meta_get(ctx, req, out),
        MetaCmd::Set => meta_set(ctx, req, out),
        MetaCmd::Delete => meta_delete(ctx, req, out),
        MetaCmd::Arith => meta_arith(ctx, req, out),
    }
}

/// A meta command on a decision key: `mg` decides and always hits (flags 0, cas 0, no ttl,
/// value the verdict line); `md` resets the subject; `ms` and `ma` are refused.
fn decision_key(ctx: &Context, req: &MetaRequest<'_>, out: &mut BytesMut) {
    if req.tokens.iter().any(|t| opaque_too_long(t)) {
        return write_reply(out, Reply::ClientError("opaque token too long"));
    }
    match req.cmd {
        MetaCmd::Get => {}
        MetaCmd::Delete => {
            let code: &[u8] = match decision::reset(ctx, &req.key) {
                Some(Ok(true)) if req.quiet => return,
                Some(Ok(true)) => b"HD",
                Some(Ok(false)) | None => b"NF",
                Some(Err(e)) => return write_reply(out, e.reply()),
            };
            out.put_slice(code);
            put_echoes(out, req);
            return out.put_slice(b"\r\n");
        }
        MetaCmd::Set | MetaCmd::Arith => return write_reply(out, decision::READ_ONLY),
    }
    let line = match decision::decide(ctx, &req.key) {
        Some(Ok(line)) => line,
        Some(Err(e)) => return write_reply(out, e.reply()),
        None => return write_reply(out, decision::DecisionError::BadKey.reply()),
    };
    let line = line.as_bytes();
    if req.value {
        out.put_slice(b"VA ");
        out.put_slice(itoa::Buffer::new().format(line.len()).as_bytes());
    } else {
        out.put_slice(b"HD");
    }
    for tok in &req.tokens {
        match tok[0] {
            b's' => num(out, b's', line.len()),
            b't' => ttl(out, None),
            b'c' | b'f' | b'l' | b'h' => num(out, tok[0], 0),
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
        out.put_slice(line);
        out.put_slice(b"\r\n");
    }
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
        if req.value {
            out.put_slice(b"VA ");
            out.put_slice(itoa::Buffer::new().format(it.value().len()).as_bytes());
        } else {
            out.put_slice(b"HD");
        }
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

fn meta_delete(ctx: &Context, req: &MetaRequest<'_>, out: &mut BytesMut) {
    let opts = DeleteOptions {
        cas: req.cas,
        stale: req.invalidate,
        exptime: req.ttl.map(i64::from),
        meta: true,
    };
    let mut result = ctx.store.delete(&req.key, opts);
    // A plain `md` also resets the subject's rate-limit states, as `delete` does (a cas or an
    // invalidation is about the cache item alone).
    if req.cas.is_none() && !req.invalidate && ctx.limiter.reset(&req.key) {
        result = DeleteOutcome::Deleted;
    }
    let code: &[u8] = match result {
        DeleteOutcome::Deleted if req.quiet => return,
        DeleteOutcome::Deleted => b"HD",
        DeleteOutcome::NotFound => b"NF",
        DeleteOutcome::Exists => b"EX",
    };
    out.put_slice(code);
    put_echoes(out, req);
    out.put_slice(b"\r\n");
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
            if req.value {
                out.put_slice(b"VA ");
                out.put_slice(itoa::Buffer::new().format(number.len()).as_bytes());
            } else {
                out.put_slice(b"HD");
            }
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

/// Runs an `ms` with its value.
fn meta_set(ctx: &Context, req: &MetaRequest<'_>, out: &mut BytesMut) {
    let value = req.data;
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
    let ttl = i64::from(req.ttl.unwrap_or(0));
    let (outcome, cas) = ctx
        .store
        .store_ext(mode, &req.key, req.client_flags, ttl, value, opts);
    let code: &[u8] = match outcome {
        StoreOutcome::Stored if req.quiet => return,
        StoreOutcome::Stored => b"HD",
        StoreOutcome::NotStored => b"NS",
        StoreOutcome::Exists => b"EX",
        StoreOutcome::NotFound => b"NF",
        StoreOutcome::TooLarge => {
            write_reply(out, Reply::ServerError("object too large for cache"));
            return;
        }
        StoreOutcome::NoMemory => {
            write_reply(out, Reply::ServerError("out of memory storing object"));
            return;
        }
    };
    out.put_slice(code);
    for tok in &req.tokens {
        match tok[0] {
            b'O' => {
                out.put_u8(b' ');
                out.put_slice(tok);
            }
            b'k' => put_key(out, &req.key, req.base64),
            b'c' => num(out, b'c', cas),
            _ => {}
        }
    }
    out.put_slice(b"\r\n");
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
