//! The binary protocol over a connection's buffers: frames requests with
//! [`crate::protocol::binary::decode`], waits for values, discards what memcached discards,
//! and executes requests against the store, appending response packets to the batch's output.
//!
//! Besides the replies, it reproduces when memcached 1.6.18 sends them, where that changes the
//! bytes a client receives:
//! - while a value is being read or bytes are being discarded (a too-large value, an unknown
//!   opcode's body), the replies of the batch are held ([`BinarySession::holds_output`]);
//! - a request with a bad magic byte closes the connection and drops the replies memcached had
//!   not flushed yet. memcached flushes after an error reply (unless it discards bytes next),
//!   a `noop`, and every 20 requests of a read batch (its `reqs_per_event` yield).

use bytes::{Buf, BytesMut};

use super::dispatch::Flow;
use super::Context;
use crate::protocol::binary::{
    decode, opcode, ratelimit_extras, status, write_error, write_error_msg, write_item,
    write_response, write_stat, Command, Decoded, Header, RateLimitArgs, Request, StoreOp,
    NO_AUTOVIVIFY,
};
use crate::ratelimit::{ApplyError, Limit};
use crate::stats::{self, PrefixOp, ServerStats};
use crate::store::smallvec::SmallVec;
use crate::store::{MetaArith, StoreMode, StoreOptions, StoreOutcome};

/// Requests memcached runs per read event before it flushes and yields.
const REQS_PER_EVENT: u32 = 20;
/// Longest SASL mechanism name memcached accepts.
const MAX_SASL_MECH_LEN: usize = 32;

/// Per-connection state of the binary protocol.
#[derive(Debug, Default)]
pub struct BinarySession {
    /// Bytes still to discard.
    swallow: u64,
    /// Bytes the buffer must hold before the pending request (one with a value) can run.
    need: usize,
    /// Length of the output memcached would have flushed already.
    committed: usize,
    /// Authenticated by SASL (only consulted with `-S`).
    authenticated: bool,
    /// A PLAIN exchange waits for its step.
    sasl_started: bool,
}

/// How a request ends.
struct Done {
    /// Bytes of the read buffer it used.
    consumed: usize,
    /// Bytes to discard after them.
    swallow: u64,
    /// memcached flushes its replies after this request.
    flush: bool,
    /// What the connection does next.
    flow: Flow,
}

impl Done {
    fn new(consumed: usize) -> Done {
        Done {
            consumed,
            swallow: 0,
            flush: false,
            flow: Flow::Continue,
        }
    }
    fn flushed(mut self) -> Done {
        self.flush = true;
        self
    }
    fn close(mut self) -> Done {
        self.flow = Flow::Close;
        self
    }
}

impl BinarySession {
    /// A session at the start of a connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// True while memcached would not send the replies of this batch yet: it is reading a
    /// value or discarding bytes.
    pub fn holds_output(&self) -> bool {
        self.swallow > 0 || self.need > 0
    }

    /// Runs every complete request in `rbuf`, consuming it and appending replies to `out`.
    pub fn process(&mut self, ctx: &Context, rbuf: &mut BytesMut, out: &mut BytesMut) -> Flow {
        // Replies written out since the last call were flushed.
        self.committed = self.committed.min(out.len());
        if self.swallow == 0 && self.need == 0 {
            let keys = batch_keys(rbuf);
            if keys.len() > 1 {
                ctx.store.prefetch(&keys);
            }
        }
        let mut batch = 0;
        loop {
            if self.swallow > 0 {
                let n = self.swallow.min(rbuf.len() as u64);
                rbuf.advance(n as usize);
                self.swallow -= n;
                if self.swallow > 0 {
                    return Flow::Continue;
                }
            }
            if rbuf.len() < self.need {
                return Flow::Continue;
            }
            self.need = 0;
            let done = match decode(rbuf) {
                Decoded::Incomplete => return Flow::Continue,
                Decoded::BadMagic => {
                    out.truncate(self.committed);
                    return Flow::Close;
                }
                Decoded::BadLengths(h) => {
                    write_error(out, &h, status::UNKNOWN_COMMAND);
                    return Flow::Close;
                }
                Decoded::Request(req) => self.run(ctx, req, rbuf, out),
            };
            let Some(done) = done else {
                // A value has not fully arrived: make room for it at once.
                rbuf.reserve(self.need - rbuf.len());
                return Flow::Continue;
            };
            rbuf.advance(done.consumed);
            self.swallow = done.swallow;
            if done.flow != Flow::Continue {
                return done.flow;
            }
            batch += 1;
            if done.flush || batch > REQS_PER_EVENT {
                self.committed = out.len();
                if batch > REQS_PER_EVENT {
                    batch = 1;
                }
            }
        }
    }

    /// Runs one request whose header, extras and key are in `rbuf`; `None` if it must wait for
    /// its value.
    fn run(
        &mut self,
        ctx: &Context,
        req: Request<'_>,
        rbuf: &[u8],
        out: &mut BytesMut,
    ) -> Option<Done> {
        let h = &req.header;
        let prefix = h.prefix_len();
        if ctx.config.sasl
            && !self.authenticated
            && !matches!(
                h.opcode,
                opcode::SASL_LIST_MECHS | opcode::SASL_AUTH | opcode::SASL_STEP | opcode::VERSION
            )
        {
            write_error(out, h, status::AUTH_ERROR);
            return Some(Done::new(prefix).close());
        }
        let quiet = req.quiet;
        let detail = ctx.stats.detail.enabled();
        let delim = ctx.config.prefix_delimiter;
        let store = &ctx.store;
        let done = match req.command {
            Command::Get { key, with_key } => {
                let hit = store
                    .get(key, None, |it| {
                        write_item(
                            out,
                            h,
                            it.cas,
                            it.flags,
                            if with_key { key } else { &[] },
                            it.value,
                        )
                    })
                    .is_some();
                if detail {
                    ctx.stats.detail.record(key, delim, PrefixOp::Get(hit));
                }
                miss(out, h, hit, quiet, with_key.then_some(key), prefix)
            }
            Command::Gat {
                key,
                exptime,
                with_key,
            } => {
                let hit = store
                    .get(key, Some(i64::from(exptime)), |it| {
                        write_item(
                            out,
                            h,
                            it.cas,
                            it.flags,
                            if with_key { key } else { &[] },
                            it.value,
                        )
                    })
                    .is_some();
                if detail {
                    ctx.stats.detail.record(key, delim, PrefixOp::Get(hit));
                }
                miss(out, h, hit, quiet, with_key.then_some(key), prefix)
            }
            Command::Touch { key, exptime } => {
                let hit = store
                    .get(key, Some(i64::from(exptime)), |it| {
                        write_response(
                            out,
                            h,
                            status::SUCCESS,
                            it.cas,
                            &it.flags.to_be_bytes(),
                            &[],
                            &[],
                        )
                    })
                    .is_some();
                if detail {
                    ctx.stats.detail.record(key, delim, PrefixOp::Get(hit));
                }
                miss(out, h, hit, false, None, prefix)
            }
            Command::Store {
                op,
                key,
                flags,
                exptime,
                value_len,
            } => {
                if !store.fits(key.len(), value_len, flags) {
                    if detail {
                        ctx.stats.detail.record(key, delim, PrefixOp::Set);
                    }
                    store.reject_too_large(key, op == StoreOp::Set);
                    write_error(out, h, status::E2BIG);
                    let mut d = Done::new(prefix);
                    d.swallow = value_len as u64;
                    return Some(d);
                }
                let total = prefix + value_len;
                if rbuf.len() < total {
                    self.need = total;
                    return None;
                }
                if detail {
                    ctx.stats.detail.record(key, delim, PrefixOp::Set);
                }
                store_value(
                    ctx,
                    h,
                    quiet,
                    op,
                    key,
                    flags,
                    exptime,
                    &rbuf[prefix..total],
                    out,
                )
                .map_or_else(|| Done::new(total), |()| Done::new(total).flushed())
            }
            Command::Delete { key } => {
                if detail {
                    ctx.stats.detail.record(key, delim, PrefixOp::Delete);
                }
                let st = if h.cas == 0 {
                    if store.delete(key) {
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
                success_or_error(out, h, st, 0, &[], quiet, prefix)
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
                    MetaArith::Done((value, cas)) => success_or_error(
                        out,
                        h,
                        status::SUCCESS,
                        cas,
                        &value.to_be_bytes(),
                        quiet,
                        prefix,
                    ),
                    MetaArith::NotFound => error(out, h, status::KEY_ENOENT, prefix),
                    MetaArith::Exists => error(out, h, status::KEY_EEXISTS, prefix),
                    MetaArith::NonNumeric => error(out, h, status::DELTA_BADVAL, prefix),
                    MetaArith::NoMemory => {
                        write_error_msg(
                            out,
                            h,
                            status::ENOMEM,
                            "Out of memory allocating new item",
                        );
                        Done::new(prefix).flushed()
                    }
                }
            }
            Command::Quit => {
                if !quiet {
                    write_response(out, h, status::SUCCESS, 0, &[], &[], &[]);
                }
                Done::new(prefix).close()
            }
            Command::Flush { exptime } => {
                if ctx.config.disable_flush {
                    error(out, h, status::AUTH_ERROR, prefix)
                } else {
                    store.flush_all(i64::from(exptime));
                    ServerStats::add(&ctx.stats.cmd_flush, 1);
                    success_or_error(out, h, status::SUCCESS, 0, &[], quiet, prefix)
                }
            }
            Command::Noop => {
                write_response(out, h, status::SUCCESS, 0, &[], &[], &[]);
                Done::new(prefix).flushed()
            }
            Command::Version => {
                write_response(
                    out,
                    h,
                    status::SUCCESS,
                    0,
                    &[],
                    &[],
                    crate::MEMCACHED_VERSION.as_bytes(),
                );
                Done::new(prefix)
            }
            Command::Stat { key } => stat(ctx, h, key, out, prefix),
            Command::SaslListMechs | Command::SaslAuth { .. } if !ctx.config.sasl => {
                // memcached answers as for an unknown opcode, discarding the data.
                let swallow = match req.command {
                    Command::SaslAuth { value_len, .. } => value_len as u64,
                    _ => 0,
                };
                write_error(out, h, status::UNKNOWN_COMMAND);
                let mut d = Done::new(prefix);
                d.swallow = swallow;
                d.flush = swallow == 0;
                d
            }
            Command::SaslListMechs => {
                write_response(out, h, status::SUCCESS, 0, &[], &[], b"PLAIN");
                Done::new(prefix)
            }
            Command::SaslAuth {
                mech,
                step,
                value_len,
            } => {
                if mech.len() > MAX_SASL_MECH_LEN {
                    write_error(out, h, status::EINVAL);
                    let mut d = Done::new(prefix);
                    d.swallow = value_len as u64;
                    d.flush = value_len == 0;
                    return Some(d);
                }
                let total = prefix + value_len;
                if rbuf.len() < total {
                    self.need = total;
                    return None;
                }
                let d = self.sasl_auth(ctx, h, mech, step, &rbuf[prefix..total], out);
                Done {
                    consumed: total,
                    ..d
                }
            }
            Command::RateLimit { key, args, rest } => {
                let mut d = ratelimit(ctx, h, quiet, key, args, out, prefix);
                d.swallow = rest as u64;
                d
            }
            Command::Unknown { swallow } => {
                write_error(out, h, status::UNKNOWN_COMMAND);
                let mut d = Done::new(prefix);
                d.swallow = u64::from(swallow);
                d.flush = swallow == 0;
                d
            }
            Command::Invalid => {
                write_error(out, h, status::EINVAL);
                Done::new(prefix).close()
            }
        };
        Some(done)
    }

    /// SASL PLAIN against the `user:password` lines of `$MEMCACHED_SASL_PWDB`: the credentials
    /// come with the start, or (after an empty start answered "continue") with one step.
    fn sasl_auth(
        &mut self,
        ctx: &Context,
        h: &Header,
        mech: &[u8],
        step: bool,
        data: &[u8],
        out: &mut BytesMut,
    ) -> Done {
        let plain = mech == b"PLAIN";
        if !step && plain && data.is_empty() {
            self.sasl_started = true;
            write_response(out, h, status::AUTH_CONTINUE, 0, &[], &[], &[]);
            return Done::new(0).flushed();
        }
        let ok = if step {
            std::mem::take(&mut self.sasl_started) && plain && plain_auth_ok(data)
        } else {
            self.sasl_started = false;
            plain && plain_auth_ok(data)
        };
        ServerStats::add(&ctx.stats.auth_cmds, 1);
        if ok {
            self.authenticated = true;
            write_response(out, h, status::SUCCESS, 0, &[], &[], b"Authenticated");
            Done::new(0)
        } else {
            ServerStats::add(&ctx.stats.auth_errors, 1);
            write_error(out, h, status::AUTH_ERROR);
            Done::new(0).flushed()
        }
    }
}

/// Checks a PLAIN message (`authzid NUL authcid NUL password`) against the password file named
/// by `MEMCACHED_SASL_PWDB` (lines `user:password`), as memcached's own SASL database does.
fn plain_auth_ok(data: &[u8]) -> bool {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (Some(_authz), Some(user), Some(pass)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Some(path) = std::env::var_os("MEMCACHED_SASL_PWDB") else {
        return false;
    };
    let Ok(db) = std::fs::read(path) else {
        return false;
    };
    db.split(|&b| b == b'\n').any(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match line.iter().position(|&b| b == b':') {
            Some(i) => &line[..i] == user && &line[i + 1..] == pass,
            None => false,
        }
    })
}

/// An error reply memcached flushes at once.
fn error(out: &mut BytesMut, h: &Header, st: u16, consumed: usize) -> Done {
    write_error(out, h, st);
    Done::new(consumed).flushed()
}

/// A success reply (unless quiet) with `value` as body, or the error `st`.
fn success_or_error(
    out: &mut BytesMut,
    h: &Header,
    st: u16,
    cas: u64,
    value: &[u8],
    quiet: bool,
    consumed: usize,
) -> Done {
    if st != status::SUCCESS {
        return error(out, h, st, consumed);
    }
    if !quiet {
        write_response(out, h, status::SUCCESS, cas, &[], &[], value);
    }
    Done::new(consumed)
}

/// The reply to a get/gat/touch miss: nothing when quiet, the key alone for getk/gatk (not
/// flushed), else `Not found` (flushed).
fn miss(
    out: &mut BytesMut,
    h: &Header,
    hit: bool,
    quiet: bool,
    key: Option<&[u8]>,
    consumed: usize,
) -> Done {
    if hit || quiet {
        return Done::new(consumed);
    }
    match key {
        Some(key) => {
            write_response(out, h, status::KEY_ENOENT, 0, &[], key, &[]);
            Done::new(consumed)
        }
        None => error(out, h, status::KEY_ENOENT, consumed),
    }
}

/// Runs a storage command whose value has arrived. `Some(())` when the reply was an error
/// (memcached flushes those).
#[allow(clippy::too_many_arguments)]
fn store_value(
    ctx: &Context,
    h: &Header,
    quiet: bool,
    op: StoreOp,
    key: &[u8],
    flags: u32,
    exptime: u32,
    value: &[u8],
    out: &mut BytesMut,
) -> Option<()> {
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
            return None;
        }
        StoreOutcome::Exists => status::KEY_EEXISTS,
        StoreOutcome::NotFound => status::KEY_ENOENT,
        StoreOutcome::NoMemory if !matches!(op, StoreOp::Append | StoreOp::Prepend) => {
            // memcached fails the allocation before reading the value.
            write_error_msg(out, h, status::ENOMEM, "Out of memory allocating item");
            return Some(());
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
    Some(())
}

/// `stat` with memcached's key matching: `reset`, `settings` and `detail` by prefix, the
/// `get_stats` reports (`items`, `slabs`, `sizes`...) exactly; anything else is `Not found`.
fn stat(ctx: &Context, h: &Header, key: &[u8], out: &mut BytesMut, consumed: usize) -> Done {
    let cfg = &ctx.config;
    let pairs = |out: &mut BytesMut, pairs: &[stats::Stat]| {
        for (k, v) in pairs {
            write_stat(out, h, k.as_bytes(), v.as_bytes());
        }
    };
    if key.is_empty() {
        pairs(
            out,
            &stats::general(
                cfg,
                &ctx.store,
                &ctx.stats,
                ctx.started.elapsed().as_secs(),
                cfg.threads,
            ),
        );
    } else if key.starts_with(b"reset") {
        ctx.store.reset_stats();
        ctx.stats.reset();
    } else if key.starts_with(b"settings") {
        pairs(out, &stats::settings(cfg, &ctx.store, &ctx.stats));
    } else if let Some(sub) = key.strip_prefix(b"detail") {
        if sub.starts_with(b" dump") {
            let mut dump = ctx.stats.detail.dump();
            dump.extend_from_slice(b"END\r\n");
            write_stat(out, h, b"detailed", &dump);
        } else if sub.starts_with(b" on") {
            ctx.stats.detail.set_enabled(true);
        } else if sub.starts_with(b" off") {
            ctx.stats.detail.set_enabled(false);
        } else {
            return error(out, h, status::KEY_ENOENT, consumed);
        }
    } else {
        match key {
            b"items" => pairs(out, &stats::items(&ctx.store)),
            b"slabs" => pairs(out, &stats::slabs(&ctx.store)),
            b"sizes" => write_stat(out, h, b"sizes_status", b"disabled"),
            b"sizes_enable" | b"sizes_disable" => {
                // memcached sends this single packet without a terminating one.
                write_stat(out, h, b"sizes_status", b"disabled");
                return Done::new(consumed);
            }
            _ => return error(out, h, status::KEY_ENOENT, consumed),
        }
    }
    write_stat(out, h, &[], &[]);
    Done::new(consumed)
}

/// The rate-limit opcodes (see `docs/ratelimit.md`), decided and counted by
/// [`super::dispatch::decide_counted`] as every protocol's rate-limit command is.
fn ratelimit(
    ctx: &Context,
    h: &Header,
    quiet: bool,
    key: &[u8],
    args: Option<RateLimitArgs>,
    out: &mut BytesMut,
    consumed: usize,
) -> Done {
    let Some(a) = args else {
        ServerStats::add(&ctx.stats.cmd_ratelimit, 1);
        ServerStats::add(&ctx.stats.ratelimit_errors, 1);
        return error(out, h, status::EINVAL, consumed);
    };
    let limit = Limit {
        key,
        algorithm: a.algorithm,
        params: a.params,
        from_policy: false,
    };
    match super::dispatch::decide_counted(ctx, &[limit], a.mode) {
        Ok(v) => {
            let d = &v.overall;
            if !(quiet && d.allowed) {
                let st = if d.allowed {
                    status::SUCCESS
                } else {
                    status::NOT_STORED
                };
                write_response(out, h, st, 0, &ratelimit_extras(d), &[], &[]);
            }
            Done::new(consumed)
        }
        Err(e) => {
            match e {
                ApplyError::Incompatible => {
                    write_error_msg(out, h, status::DELTA_BADVAL, "key holds incompatible value")
                }
                ApplyError::NoMemory => write_error(out, h, status::ENOMEM),
            }
            Done::new(consumed).flushed()
        }
    }
}

/// Frames of a pipelined batch whose keys are prefetched at most.
const PREFETCH_FRAMES: usize = 16;

/// The keys of the complete request frames at the front of `buf` (up to [`PREFETCH_FRAMES`]),
/// for [`crate::store::Store::prefetch`]. Stops at the first frame that is incomplete or not a
/// request; a hint only.
fn batch_keys(buf: &[u8]) -> SmallVec<[&[u8]; PREFETCH_FRAMES]> {
    let mut keys = SmallVec::new();
    let mut rest = buf;
    while keys.len() < PREFETCH_FRAMES && rest.len() >= 24 && rest[0] == 0x80 {
        let key_len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let ext_len = usize::from(rest[4]);
        let body = u32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize;
        let Some(frame) = rest.get(..24 + body) else {
            break;
        };
        if let Some(key) = frame.get(24 + ext_len..24 + ext_len + key_len) {
            if !key.is_empty() {
                keys.push(key);
            }
        }
        rest = &rest[24 + body..];
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::protocol::binary::{HEADER_LEN, REQ_MAGIC};
    use proptest::prelude::*;

    #[test]
    fn batch_keys_walk_complete_frames() {
        let mut buf = Vec::new();
        crate::protocol::binary::encode_request(&mut buf, 0x00, b"k1", &[], &[], 0, 1);
        crate::protocol::binary::encode_request(&mut buf, 0x01, b"k2", &[0; 8], b"value", 0, 2);
        crate::protocol::binary::encode_request(&mut buf, 0x0a, b"", &[], &[], 0, 3); // noop
        crate::protocol::binary::encode_request(&mut buf, 0x00, b"k3", &[], &[], 0, 4);
        let whole = buf.len();
        crate::protocol::binary::encode_request(&mut buf, 0x00, b"k4", &[], &[], 0, 5);
        let keys: Vec<&[u8]> = batch_keys(&buf[..whole + 25]).into_iter().collect();
        assert_eq!(
            keys,
            vec![&b"k1"[..], b"k2", b"k3"],
            "k4's frame is incomplete"
        );
        assert!(batch_keys(b"get k1\r\n").is_empty(), "not a binary frame");
    }

    fn req(op: u8, key: &[u8], extras: &[u8], value: &[u8], cas: u64, opaque: u32) -> Vec<u8> {
        let mut v = Vec::new();
        crate::protocol::binary::encode_request(&mut v, op, key, extras, value, cas, opaque);
        v
    }

    fn set(op: u8, key: &[u8], value: &[u8], flags: u32) -> Vec<u8> {
        let mut e = flags.to_be_bytes().to_vec();
        e.extend(0u32.to_be_bytes());
        req(op, key, &e, value, 0, 0)
    }

    /// (opcode, status, key, value) of every packet in `out`.
    fn packets(mut out: &[u8]) -> Vec<(u8, u16, Vec<u8>, Vec<u8>)> {
        let mut v = Vec::new();
        while out.len() >= HEADER_LEN {
            assert_eq!(out[0], 0x81);
            let keylen = usize::from(u16::from_be_bytes([out[2], out[3]]));
            let extlen = usize::from(out[4]);
            let status = u16::from_be_bytes([out[6], out[7]]);
            let body = u32::from_be_bytes(out[8..12].try_into().unwrap()) as usize;
            let b = &out[HEADER_LEN..HEADER_LEN + body];
            v.push((
                out[1],
                status,
                b[extlen..extlen + keylen].to_vec(),
                b[extlen + keylen..].to_vec(),
            ));
            out = &out[HEADER_LEN + body..];
        }
        assert!(out.is_empty());
        v
    }

    fn run(ctx: &Context, input: &[u8]) -> (Vec<u8>, Flow, bool) {
        let mut s = BinarySession::new();
        let mut rbuf = BytesMut::from(input);
        let mut out = BytesMut::new();
        let flow = s.process(ctx, &mut rbuf, &mut out);
        (out.to_vec(), flow, s.holds_output())
    }

    #[test]
    fn pipeline_split_anywhere_gives_the_same_replies() {
        let mut input = set(opcode::SET, b"a", b"hello", 7);
        input.extend(req(opcode::GETK, b"a", &[], &[], 0, 1));
        input.extend(req(opcode::GETQ, b"nope", &[], &[], 0, 2));
        input.extend(set(opcode::SETQ, b"n", b"10", 0));
        let mut arith = 5u64.to_be_bytes().to_vec();
        arith.extend(0u64.to_be_bytes());
        arith.extend(u32::MAX.to_be_bytes());
        input.extend(req(opcode::INCREMENT, b"n", &arith, &[], 0, 3));
        input.extend(req(opcode::DELETE, b"a", &[], &[], 0, 4));
        input.extend(req(opcode::GET, b"a", &[], &[], 0, 5));
        input.extend(req(opcode::NOOP, b"", &[], &[], 0, 6));
        let ctx = Context::for_tests(Config::default());
        let (whole, flow, hold) = run(&ctx, &input);
        assert_eq!((flow, hold), (Flow::Continue, false));
        let p = packets(&whole);
        let summary: Vec<(u8, u16)> = p.iter().map(|x| (x.0, x.1)).collect();
        assert_eq!(
            summary,
            vec![
                (opcode::SET, 0),
                (opcode::GETK, 0),
                (opcode::INCREMENT, 0),
                (opcode::DELETE, 0),
                (opcode::GET, 1),
                (opcode::NOOP, 0)
            ]
        );
        assert_eq!(
            (p[1].2.as_slice(), p[1].3.as_slice()),
            (&b"a"[..], &b"hello"[..])
        );
        assert_eq!(p[2].3, 15u64.to_be_bytes());
        assert_eq!(p[4].3, b"Not found");
        for cut in 0..input.len() {
            let ctx = Context::for_tests(Config::default());
            let mut s = BinarySession::new();
            let mut rbuf = BytesMut::from(&input[..cut]);
            let mut out = BytesMut::new();
            s.process(&ctx, &mut rbuf, &mut out);
            rbuf.extend_from_slice(&input[cut..]);
            s.process(&ctx, &mut rbuf, &mut out);
            // Cas uniques are the same too: each run starts from a fresh store.
            assert_eq!(&out[..], &whole[..], "cut at {cut}");
            assert!(rbuf.is_empty());
        }
    }

    #[test]
    fn output_is_held_while_a_value_or_discarded_bytes_are_pending() {
        let ctx = Context::for_tests(Config::default());
        let mut s = BinarySession::new();
        let mut out = BytesMut::new();
        let mut input = req(opcode::VERSION, b"", &[], &[], 0, 0);
        let full = set(opcode::SET, b"k", b"value", 0);
        input.extend(&full[..full.len() - 2]);
        let mut rbuf = BytesMut::from(&input[..]);
        assert_eq!(s.process(&ctx, &mut rbuf, &mut out), Flow::Continue);
        assert!(s.holds_output());
        assert_eq!(packets(&out).len(), 1);
        rbuf.extend_from_slice(&full[full.len() - 2..]);
        s.process(&ctx, &mut rbuf, &mut out);
        assert!(!s.holds_output());
        assert_eq!(packets(&out).len(), 2);

        // An unknown opcode discards its bodylen after extras and key.
        let mut rbuf = BytesMut::from(&req(0x40, b"ab", &[], b"", 0, 0)[..]);
        let mut out = BytesMut::new();
        let mut s = BinarySession::new();
        s.process(&ctx, &mut rbuf, &mut out);
        assert!(s.holds_output());
        rbuf.extend_from_slice(b"zz");
        s.process(&ctx, &mut rbuf, &mut out);
        assert!(!s.holds_output() && rbuf.is_empty());
        assert_eq!(packets(&out)[0].1, status::UNKNOWN_COMMAND);
    }

    #[test]
    fn bad_magic_drops_unflushed_replies() {
        let ctx = Context::for_tests(Config::default());
        let mut input = req(opcode::VERSION, b"", &[], &[], 0, 0);
        input.extend([0u8; 24]);
        let (out, flow, _) = run(&ctx, &input);
        assert_eq!(flow, Flow::Close);
        assert!(out.is_empty());
        let mut input = req(opcode::VERSION, b"", &[], &[], 0, 0);
        input.extend(req(opcode::NOOP, b"", &[], &[], 0, 0));
        input.extend(req(opcode::VERSION, b"", &[], &[], 0, 0));
        input.extend([0u8; 24]);
        let (out, flow, _) = run(&ctx, &input);
        assert_eq!(flow, Flow::Close);
        assert_eq!(packets(&out).len(), 2);
        // memcached flushes every 20 requests of a batch.
        for (n, kept) in [(20, 0), (21, 21), (40, 21), (41, 41), (61, 61)] {
            let mut input = req(opcode::VERSION, b"", &[], &[], 0, 0).repeat(n);
            input.extend([0u8; 24]);
            let (out, _, _) = run(&ctx, &input);
            assert_eq!(packets(&out).len(), kept, "{n} requests");
        }
    }

    #[test]
    fn protocol_errors_reply_and_close() {
        let ctx = Context::for_tests(Config::default());
        let (out, flow, _) = run(&ctx, &req(opcode::GET, &[b'k'; 251], &[], &[], 0, 0));
        assert_eq!(flow, Flow::Close);
        assert_eq!(
            packets(&out),
            vec![(
                opcode::GET,
                status::EINVAL,
                vec![],
                b"Invalid arguments".to_vec()
            )]
        );
        let mut bad = req(opcode::GET, b"abcde", &[], &[], 0, 0);
        bad[11] = 3; // bodylen 3 < keylen 5
        let (out, flow, _) = run(&ctx, &bad);
        assert_eq!(flow, Flow::Close);
        assert_eq!(packets(&out)[0].1, status::UNKNOWN_COMMAND);
        let (out, flow, _) = run(&ctx, &req(opcode::QUITQ, b"", &[], &[], 0, 0));
        assert_eq!((out.is_empty(), flow), (true, Flow::Close));
    }

    #[test]
    fn too_large_values_are_swallowed() {
        let ctx = Context::for_tests(Config {
            max_item_size: 1024,
            slab_chunk_max: 512,
            ..Config::default()
        });
        let mut input = set(opcode::SETQ, b"k", &[b'x'; 2000], 0);
        input.extend(req(opcode::GET, b"k", &[], &[], 0, 0));
        let (out, flow, hold) = run(&ctx, &input);
        assert_eq!((flow, hold), (Flow::Continue, false));
        let p = packets(&out);
        assert_eq!(
            (p[0].0, p[0].1, p[0].3.as_slice()),
            (opcode::SETQ, status::E2BIG, &b"Too large."[..])
        );
        assert_eq!(p[1].1, status::KEY_ENOENT);
    }

    #[test]
    fn sasl_gate() {
        let ctx = Context::for_tests(Config {
            sasl: true,
            ..Config::default()
        });
        let (out, flow, _) = run(&ctx, &req(opcode::VERSION, b"", &[], &[], 0, 0));
        assert_eq!(flow, Flow::Continue);
        assert_eq!(packets(&out)[0].3, b"1.6.18");
        let (out, flow, _) = run(&ctx, &req(opcode::GET, b"k", &[], &[], 0, 0));
        assert_eq!(flow, Flow::Close);
        assert_eq!(packets(&out)[0].1, status::AUTH_ERROR);
        let (out, _, _) = run(&ctx, &req(opcode::SASL_LIST_MECHS, b"", &[], &[], 0, 0));
        assert_eq!(packets(&out)[0].3, b"PLAIN");
    }

    #[test]
    fn ratelimit_opcodes() {
        let ctx = Context::for_tests(Config::default());
        let mut e = 60_000u64.to_be_bytes().to_vec();
        e.extend(100u32.to_be_bytes());
        e.extend(10u32.to_be_bytes());
        e.extend(0u32.to_be_bytes());
        e.extend([0, 0, 0, 0]);
        let (out, _, _) = run(&ctx, &req(opcode::RATELIMIT, b"api:u42", &e, &[], 0, 9));
        assert_eq!(out[7], 0);
        let mut x = [0u8; 24];
        x.copy_from_slice(&out[24..48]);
        assert_eq!(&x[..4], &10u32.to_be_bytes());
        assert_eq!(&x[4..8], &9u32.to_be_bytes());
        assert_eq!(&x[16..], &600u64.to_be_bytes());
        let quiet = req(opcode::RATELIMITQ, b"api:u42", &e, &[], 0, 9).repeat(9);
        let (out, _, _) = run(&ctx, &quiet);
        assert_eq!(packets(&out).len(), 0);
        let (out, _, _) = run(&ctx, &quiet[..quiet.len() / 9]);
        assert_eq!(packets(&out)[0].1, status::NOT_STORED);
        assert_eq!(
            ctx.stats
                .ratelimit_denied
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }

    proptest! {
        #[test]
        fn session_never_panics(chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..64), 0..8), magic in any::<bool>()) {
            let ctx = Context::for_tests(Config::default());
            let mut s = BinarySession::new();
            let mut rbuf = BytesMut::new();
            let mut out = BytesMut::new();
            for mut c in chunks {
                if magic && !c.is_empty() {
                    c[0] = REQ_MAGIC;
                }
                rbuf.extend_from_slice(&c);
                if s.process(&ctx, &mut rbuf, &mut out) != Flow::Continue {
                    break;
                }
            }
        }
    }
}
