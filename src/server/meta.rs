//! Executes meta commands (`mg ms md ma me`) against the store and writes memcached's meta
//! replies: status code, returned flags in request order, win/stale markers, value.

use std::io::Write as _;

use bytes::{BufMut, BytesMut};

use super::Context;
use crate::protocol::meta::{put_echoes, put_key, MetaCmd, MetaRequest};
use crate::protocol::text::write_reply;
use crate::protocol::Reply;
use crate::stats::ServerStats;
use crate::store::{MetaArith, MetaDelete, StoreMode, StoreOptions, StoreOutcome};

fn num(out: &mut BytesMut, flag: u8, n: impl itoa::Integer) {
    let mut b = itoa::Buffer::new();
    out.put_u8(b' ');
    out.put_u8(flag);
    out.put_slice(b.format(n).as_bytes());
}

/// Runs `mg`, `md` or `ma` (an `ms` goes through [`meta_set`] once its value arrived).
pub fn execute(ctx: &Context, req: &MetaRequest<'_>, out: &mut BytesMut) {
    ServerStats::add(&ctx.stats.cmd_meta, 1);
    match req.cmd {
        MetaCmd::Get => meta_get(ctx, req, out),
        MetaCmd::Delete => meta_delete(ctx, req, out),
        MetaCmd::Arith => meta_arith(ctx, req, out),
        MetaCmd::Set => unreachable!("ms carries a value"),
    }
}

fn meta_get(ctx: &Context, req: &MetaRequest<'_>, out: &mut BytesMut) {
    let store = &ctx.store;
    let vivify = req.vivify.map(i64::from);
    store.meta_get(
        &req.key,
        vivify,
        req.ttl.is_some(),
        req.no_update,
        |found| {
            let Some((it, created)) = found else {
                if !req.quiet {
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
            for tok in &req.tokens {
                match tok[0] {
                    b'T' => it.set_exptime(i64::from(req.ttl.unwrap_or(0))),
                    b'N' if created => {
                        it.set_exptime(i64::from(req.vivify.unwrap_or(0)));
                        won = true;
                    }
                    b'R' => {
                        let recache = store.rel_exptime(i64::from(req.recache.unwrap_or(0)));
                        if !it.token_sent()
                            && !created
                            && it.exptime() != 0
                            && it.exptime() < recache
                        {
                            won = true;
                        }
                    }
                    b's' => num(out, b's', it.value().len()),
                    b't' => num(out, b't', it.ttl()),
                    b'c' => num(out, b'c', it.cas()),
                    b'f' => num(out, b'f', it.flags()),
                    b'l' => num(out, b'l', it.last_access()),
                    b'h' => num(out, b'h', u8::from(it.fetched())),
                    b'O' => {
                        out.put_u8(b' ');
                        out.put_slice(tok);
                    }
                    b'k' => put_key(out, it.key(), req.base64),
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
                out.put_slice(it.value());
                out.put_slice(b"\r\n");
            }
        },
    );
}

fn meta_delete(ctx: &Context, req: &MetaRequest<'_>, out: &mut BytesMut) {
    let ttl = req.ttl.map(i64::from);
    let code: &[u8] = match ctx
        .store
        .meta_delete(&req.key, req.cas, req.invalidate, ttl)
    {
        MetaDelete::Deleted if req.quiet => return,
        MetaDelete::Deleted => b"HD",
        MetaDelete::NotFound => b"NF",
        MetaDelete::Exists => b"EX",
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
            for tok in &req.tokens {
                match tok[0] {
                    b'c' => num(out, b'c', it.cas()),
                    b't' => num(out, b't', it.ttl()),
                    b'T' => it.set_exptime(i64::from(req.ttl.unwrap_or(0))),
                    b'N' if created => it.set_exptime(i64::from(req.vivify.unwrap_or(0))),
                    b'O' => {
                        out.put_u8(b' ');
                        out.put_slice(tok);
                    }
                    b'k' => put_key(out, it.key(), req.base64),
                    _ => {}
                }
            }
            out.put_slice(b"\r\n");
            if req.value {
                out.put_slice(&number);
                out.put_slice(b"\r\n");
            }
            created
        });
    let code: &[u8] = match r {
        MetaArith::Done(created) => {
            // memcached's q hides the answer for an existing counter, not a vivified one.
            if req.quiet && !created {
                out.truncate(start);
            }
            return;
        }
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
    out.put_slice(code);
    put_echoes(out, req);
    out.put_slice(b"\r\n");
}

/// Runs an `ms` whose value arrived: `data` is the value followed by what must be `\r\n`.
pub fn meta_set(ctx: &Context, req: &MetaRequest<'_>, data: &[u8], out: &mut BytesMut) {
    ServerStats::add(&ctx.stats.cmd_meta, 1);
    let (value, end) = data.split_at(data.len() - 2);
    if end != b"\r\n" {
        write_reply(out, Reply::ClientError("bad data chunk"));
        return;
    }
    let mut opts = StoreOptions {
        invalidate: req.invalidate,
        compare_cas: None,
    };
    let mode = match (req.mode.unwrap_or(b'S'), req.cas) {
        (b'E', _) => StoreMode::Add,
        (b'A', c) => {
            opts.compare_cas = c;
            StoreMode::Append
        }
        (b'P', c) => {
            opts.compare_cas = c;
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

/// Answers an `ms` whose value is over the item size limit (the session swallows the value).
pub fn reject_too_large(ctx: &Context, req: &MetaRequest<'_>, out: &mut BytesMut) {
    ServerStats::add(&ctx.stats.cmd_meta, 1);
    ctx.store.reject_too_large(&req.key, true);
    write_reply(out, Reply::ServerError("object too large for cache"));
}

/// `me <key>`: memcached's debug line for an item, or `EN`.
pub fn meta_debug(ctx: &Context, key: &[u8], base64: bool, out: &mut BytesMut) {
    ServerStats::add(&ctx.stats.cmd_meta, 1);
    ctx.store
        .meta_get(key, None, false, true, |found| match found {
            None => out.put_slice(b"EN\r\n"),
            Some((it, _)) => {
                out.put_slice(b"ME ");
                let mut k = BytesMut::new();
                put_key(&mut k, it.key(), base64);
                out.put_slice(&k[2..k.len() - if base64 { 2 } else { 0 }]);
                let exp = if it.exptime() == 0 { -1 } else { -it.ttl() };
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
