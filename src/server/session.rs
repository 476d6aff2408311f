//! Framing of the text protocol over a connection's buffers: finds command lines, waits for
//! storage values, swallows refused values, and enforces the line-length rules. Pure buffer
//! work, so it is tested without sockets.

use bytes::{Buf, BytesMut};

use super::dispatch::{self, Flow, PendingStore};
use super::meta;
use super::Context;
use crate::protocol::limits::parse_limit_line;
use crate::protocol::meta::MetaCmd;
use crate::protocol::text::write_reply;
use crate::protocol::text::{may_be_long_multiget, parse_command};
use crate::protocol::{Request, KEY_MAX_LENGTH, MAX_LINE_WITHOUT_NEWLINE, MAX_MULTIGET_LINE};
use crate::ratelimit::Mode;
use crate::store::smallvec::SmallVec;

/// Per-connection protocol state.
#[derive(Debug, Default)]
pub struct Session {
    /// Bytes of a refused value still to discard.
    swallow: usize,
    /// Bytes the buffer must hold before the pending storage command can run.
    need: usize,
    /// ASCII authentication progress (`-Y`).
    auth: super::auth::AuthState,
}

impl Session {
    /// A session at the start of a connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs every complete request in `rbuf`, consuming it and appending replies to `out`.
    pub fn process(&mut self, ctx: &Context, rbuf: &mut BytesMut, out: &mut BytesMut) -> Flow {
        if let Some(file) = &ctx.auth {
            if !self.auth.done {
                let flow = self.auth.process(ctx, file, rbuf, out);
                if !self.auth.done {
                    return flow;
                }
            }
        }
        if self.swallow == 0 && self.need == 0 {
            prefetch_batch(ctx, rbuf);
        }
        loop {
            if self.swallow > 0 {
                let n = self.swallow.min(rbuf.len());
                rbuf.advance(n);
                self.swallow -= n;
                if self.swallow > 0 {
                    return Flow::Continue;
                }
            }
            if rbuf.is_empty() || rbuf.len() < self.need {
                return Flow::Continue;
            }
            let Some(nl) = memchr::memchr(b'\n', rbuf) else {
                if rbuf.len() > MAX_LINE_WITHOUT_NEWLINE
                    && (!may_be_long_multiget(rbuf) || rbuf.len() > MAX_MULTIGET_LINE)
                {
                    return Flow::Close;
                }
                return Flow::Continue;
            };
            // memcached strips a '\r' before the '\n' only when the line has more than it.
            let end = if nl > 1 && rbuf[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            let req = parse_command(&rbuf[..end]);
            if let Request::Store {
                kind,
                key,
                flags,
                exptime,
                len,
                cas,
                noreply,
            } = req
            {
                let p = PendingStore {
                    kind,
                    flags,
                    exptime,
                    cas,
                    noreply,
                };
                if !ctx.store.fits(key.len(), len, flags) {
                    dispatch::reject_too_large(ctx, p, key, out);
                    rbuf.advance(nl + 1);
                    self.swallow = len + 2;
                    continue;
                }
                let total = nl + 1 + len + 2;
                if rbuf.len() < total {
                    self.need = total;
                    rbuf.reserve(total - rbuf.len());
                    return Flow::Continue;
                }
                self.need = 0;
                dispatch::store(ctx, p, key, &rbuf[nl + 1..total], out);
                rbuf.advance(total);
                continue;
            }
            match req {
                Request::Swallow { reply, len } => {
                    write_reply(out, reply);
                    rbuf.advance(nl + 1);
                    self.swallow = len;
                    continue;
                }
                Request::Meta(ref m) if m.cmd == MetaCmd::Set => {
                    if !ctx.store.fits(m.key.len(), m.datalen, m.client_flags) {
                        meta::reject_too_large(ctx, m, out);
                        self.swallow = m.datalen + 2;
                        rbuf.advance(nl + 1);
                        continue;
                    }
                    let total = nl + 1 + m.datalen + 2;
                    if rbuf.len() < total {
                        self.need = total;
                        rbuf.reserve(total - rbuf.len());
                        return Flow::Continue;
                    }
                    self.need = 0;
                    meta::meta_set(ctx, m, &rbuf[nl + 1..total], out);
                    drop(req);
                    rbuf.advance(total);
                    continue;
                }
                _ => {}
            }
            if let Request::RateLimitAll {
                count,
                peek,
                noreply,
            } = req
            {
                // The limit lines follow the command line; wait until all have arrived.
                let mut ends = [0usize; crate::protocol::limits::MAX_LIMITS];
                let mut pos = nl + 1;
                for end in ends.iter_mut().take(count) {
                    match memchr::memchr(b'\n', &rbuf[pos..]) {
                        Some(i) => {
                            *end = pos + i;
                            pos += i + 1;
                        }
                        None => {
                            if rbuf.len() - (nl + 1) > count * MAX_LINE_WITHOUT_NEWLINE {
                                return Flow::Close;
                            }
                            self.need = rbuf.len() + 1;
                            return Flow::Continue;
                        }
                    }
                }
                self.need = 0;
                let mut limits = Vec::with_capacity(count);
                let mut start = nl + 1;
                let mut error = None;
                for &end in &ends[..count] {
                    let line_end = if end > start && rbuf[end - 1] == b'\r' {
                        end - 1
                    } else {
                        end
                    };
                    match parse_limit_line(&rbuf[start..line_end]) {
                        Ok(l) => limits.push(l),
                        Err(r) => {
                            error.get_or_insert(r);
                        }
                    }
                    start = end + 1;
                }
                match error {
                    Some(r) => dispatch::ratelimit_error(ctx, r, noreply, out),
                    None => {
                        let mode = if peek { Mode::Peek } else { Mode::Consume };
                        dispatch::ratelimit(ctx, &limits, mode, noreply, true, out);
                    }
                }
                rbuf.advance(pos);
                continue;
            }
            let flow = dispatch::execute(ctx, req, out);
            rbuf.advance(nl + 1);
            if flow != Flow::Continue {
                return flow;
            }
        }
    }
}

/// Lines of a pipelined batch whose keys are prefetched at most (the rest wait their turn).
const PREFETCH_LINES: usize = 16;

/// Warms the cache for the keys of a pipelined batch (the second token of each of the first
/// [`PREFETCH_LINES`] lines), so their lookups' memory misses overlap. A hint only: a
/// storage command's data line is skipped, and a wrong guess costs a wasted prefetch.
fn prefetch_batch(ctx: &Context, buf: &[u8]) {
    match memchr::memchr(b'\n', buf) {
        Some(nl) if nl + 1 < buf.len() => {}
        _ => return, // zero or one line: nothing to overlap
    }
    let keys = batch_keys(buf);
    if keys.len() > 1 {
        ctx.store.prefetch(&keys);
    }
}

/// The keys [`prefetch_batch`] warms: the second token of each complete line, up to
/// [`PREFETCH_LINES`], skipping the data line after a storage command.
fn batch_keys(buf: &[u8]) -> SmallVec<[&[u8]; PREFETCH_LINES]> {
    let mut keys: SmallVec<[&[u8]; PREFETCH_LINES]> = SmallVec::new();
    let mut rest = buf;
    let mut data_next = false;
    while keys.len() < PREFETCH_LINES {
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            break;
        };
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        if std::mem::take(&mut data_next) {
            continue;
        }
        let mut toks = line
            .strip_suffix(b"\r")
            .unwrap_or(line)
            .split(|&b| b == b' ')
            .filter(|t| !t.is_empty());
        let (Some(cmd), Some(key)) = (toks.next(), toks.next()) else {
            continue;
        };
        data_next = matches!(
            cmd,
            b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" | b"ms"
        );
        if key.len() <= KEY_MAX_LENGTH {
            keys.push(key);
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn batch_keys_take_second_tokens_and_skip_data_lines() {
        let buf =
            b"get a\r\nset b 0 0 3\r\nget\r\nratelimit  c 10 1s\r\nmg d v\r\nincr e 1\r\npartial f";
        let keys: Vec<&[u8]> = batch_keys(buf).into_iter().collect();
        // "get" right after the set is its data line; "partial f" has no newline yet.
        assert_eq!(keys, vec![&b"a"[..], b"b", b"c", b"d", b"e"]);
        let many: Vec<u8> = (0..40)
            .flat_map(|i| format!("get k{i}\r\n").into_bytes())
            .collect();
        assert_eq!(batch_keys(&many).len(), PREFETCH_LINES);
        let long = format!("get {}\r\nget x\r\n", "k".repeat(251));
        assert_eq!(
            batch_keys(long.as_bytes()).into_iter().collect::<Vec<_>>(),
            vec![&b"x"[..]]
        );
    }

    #[test]
    fn prefetching_a_batch_while_shards_grow_is_harmless() {
        // Prefetch reads the chain heads without a lock while another thread grows them.
        let ctx = std::sync::Arc::new(Context::for_tests(Config::default()));
        let writer = {
            let ctx = ctx.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    let key = format!("key{i}");
                    ctx.store
                        .store(crate::store::StoreMode::Set, key.as_bytes(), 0, 0, b"v");
                }
            })
        };
        let batch: Vec<u8> = (0..16)
            .flat_map(|i| format!("get key{i}\r\n").into_bytes())
            .collect();
        while !writer.is_finished() {
            prefetch_batch(&ctx, &batch);
        }
        writer.join().unwrap();
        let (out, _) = run(&ctx, b"get key19999\r\n");
        assert_eq!(out, b"VALUE key19999 0 1\r\nv\r\nEND\r\n");
    }

    fn run(ctx: &Context, input: &[u8]) -> (Vec<u8>, Flow) {
        let mut s = Session::new();
        let mut rbuf = BytesMut::from(input);
        let mut out = BytesMut::new();
        let flow = s.process(ctx, &mut rbuf, &mut out);
        (out.to_vec(), flow)
    }

    #[test]
    fn pipelined_requests_split_anywhere_give_the_same_replies() {
        let input: &[u8] = b"set a 1 0 3\r\nabc\r\nget a b\r\nincr n 1\r\nset n 0 0 2\r\n10\r\nincr n 5\r\ndelete a\r\nget a\r\n";
        let ctx = Context::for_tests(Config::default());
        let (whole, _) = run(&ctx, input);
        assert_eq!(
            &whole[..],
            &b"STORED\r\nVALUE a 1 3\r\nabc\r\nEND\r\nNOT_FOUND\r\nSTORED\r\n15\r\nDELETED\r\nEND\r\n"[..]
        );
        for cut in 0..input.len() {
            let ctx = Context::for_tests(Config::default());
            let mut s = Session::new();
            let mut rbuf = BytesMut::new();
            let mut out = BytesMut::new();
            rbuf.extend_from_slice(&input[..cut]);
            s.process(&ctx, &mut rbuf, &mut out);
            rbuf.extend_from_slice(&input[cut..]);
            s.process(&ctx, &mut rbuf, &mut out);
            assert_eq!(&out[..], &whole[..], "cut at {cut}");
            assert!(rbuf.is_empty());
        }
    }

    #[test]
    fn bad_data_chunk_and_too_large_values() {
        let ctx = Context::for_tests(Config {
            max_item_size: 1024,
            slab_chunk_max: 512,
            ..Config::default()
        });
        let (out, _) = run(&ctx, b"set k 0 0 3\r\nabcde\r\n");
        assert_eq!(&out[..], b"CLIENT_ERROR bad data chunk\r\nERROR\r\n");
        let big = format!("set k 0 0 2000\r\n{}\r\nget k\r\n", "x".repeat(2000));
        let (out, _) = run(&ctx, big.as_bytes());
        assert_eq!(
            &out[..],
            b"SERVER_ERROR object too large for cache\r\nEND\r\n"
        );
    }

    #[test]
    fn long_lines_close_unless_multiget() {
        let ctx = Context::for_tests(Config::default());
        let (_, flow) = run(&ctx, &[b'x'; 3000]);
        assert_eq!(flow, Flow::Close);
        let mut get = b"get ".to_vec();
        get.extend(std::iter::repeat_n(b'k', 3000));
        let (out, flow) = run(&ctx, &get);
        assert_eq!(flow, Flow::Continue);
        assert!(out.is_empty());
    }

    #[test]
    fn noreply_suppresses_replies_and_errors() {
        let ctx = Context::for_tests(Config::default());
        let (out, _) = run(
            &ctx,
            b"set k 0 0 1 noreply\r\nx\r\nincr k 1 noreply\r\nget k\r\n",
        );
        assert_eq!(&out[..], b"VALUE k 0 1\r\nx\r\nEND\r\n");
    }

    #[test]
    fn ratelimit_family_over_the_session() {
        let ctx = Context::for_tests(Config::default());
        let (out, _) = run(&ctx, b"ratelimit api:u42 100 60s 10\r\n");
        assert_eq!(&out[..], b"ALLOWED 10 9 0 600\r\n");
        let input: &[u8] = b"ratelimit_all 2\r\nu 100 1h\r\nu 1 1m fixed\r\nratelimit_all 2\r\nu 100 1h\r\nu 1 1m fixed\r\n";
        let (out, _) = run(&ctx, input);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ALLOWED 1 0 0 "));
        assert!(lines[1].starts_with("ALLOWED 100 99 0 "));
        assert!(lines[2].starts_with("ALLOWED 1 0 0 "));
        assert_eq!(lines[3], "END");
        assert!(lines[4].starts_with("DENIED 1 0 "));
        assert_eq!(lines[7], "END");
        // Split at every byte, the set still parses once.
        for cut in 0..input.len() {
            let ctx = Context::for_tests(Config::default());
            let mut s = Session::new();
            let mut rbuf = BytesMut::from(&input[..cut]);
            let mut out = BytesMut::new();
            s.process(&ctx, &mut rbuf, &mut out);
            rbuf.extend_from_slice(&input[cut..]);
            s.process(&ctx, &mut rbuf, &mut out);
            assert_eq!(
                out.iter().filter(|&&b| b == b'\n').count(),
                8,
                "cut at {cut}"
            );
        }
        let (out, _) = run(
            &ctx,
            b"set plain 0 0 1\r\nx\r\nratelimit plain 1 1s\r\nratelimit k 1 1s 5 6\r\n",
        );
        assert_eq!(
            &out[..],
            b"STORED\r\nCLIENT_ERROR key holds incompatible value\r\nCLIENT_ERROR cost exceeds burst\r\n"
        );
    }

    #[test]
    fn quit_closes() {
        let ctx = Context::for_tests(Config::default());
        let (out, flow) = run(&ctx, b"version\r\nquit\r\nversion\r\n");
        assert_eq!(flow, Flow::Close);
        assert_eq!(&out[..], b"VERSION 1.6.18\r\n");
    }
}
