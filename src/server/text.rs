//! The text protocol's session (classic, meta and rate-limit commands): decodes one request
//! at a time with [`crate::protocol::text::decode`], charges large partial requests to the
//! memory limit, gates unauthenticated clients (`-Y`), and runs requests with
//! [`super::dispatch`], keeping a multi-get's place when output fills up.

use super::auth::AuthState;
use super::conn::{decoded, Session, Step, Transit};
use super::dispatch::{self, Flow};
use super::output::Output;
use super::verbose::{self, ConnLog};
use super::Context;
use crate::protocol::text::{batch_keys, decode};
use crate::protocol::{DecodeLimits, Frame};

/// Per-connection state of the text protocol.
pub struct TextSession<'c> {
    ctx: &'c Context,
    limits: DecodeLimits,
    /// Bytes of a paused multi-get's key list already answered (0 when none is paused).
    cursor: usize,
    /// Memory reserved for the request being received.
    transit: Transit<'c>,
    /// `-Y` authentication, until it succeeds.
    auth: Option<AuthState>,
    /// The connection's verbose log.
    log: ConnLog,
}

impl<'c> TextSession<'c> {
    /// A session at the start of a connection.
    pub fn new(ctx: &'c Context) -> Self {
        TextSession {
            ctx,
            limits: decode_limits(ctx),
            cursor: 0,
            transit: Transit::new(&ctx.store),
            auth: ctx.auth.as_ref().map(|_| AuthState::default()),
            log: ConnLog::OFF,
        }
    }

    /// Runs a `-Y` authentication step while the connection has not authenticated.
    fn auth_step(&mut self, buf: &[u8], out: &mut Output) -> Option<Step> {
        let auth = self.auth.as_mut()?;
        let file = self.ctx.auth.as_ref().expect("auth state only with -Y");
        let step = auth.step(self.ctx, file, buf, out);
        if auth.done {
            self.auth = None;
        }
        Some(step)
    }

    /// [`Session::step`] with memcached's verbose lines: the command line, then the replies
    /// (those `noreply` suppresses are written, logged as `NOREPLY`, and dropped).
    #[inline(never)]
    fn step_logged(&mut self, buf: &[u8], out: &mut Output) -> Step {
        let mark = out.pending();
        if let Some(step) = self.auth_step(buf, out) {
            // memcached logs the replies of authentication, not its lines.
            verbose::text::replies(
                self.log,
                &verbose::text::Shape::LINES,
                false,
                out.since(mark),
            );
            return step;
        }
        let (ctx, cursor, log) = (self.ctx, &mut self.cursor, &mut self.log);
        decoded(decode(buf, &self.limits), &mut self.transit, |f| {
            let Frame { mut req, len, skip } = f;
            if *cursor == 0 {
                // (A paused multi-get resuming logged its line when it started.)
                verbose::text::request(*log, buf);
            }
            let shape = verbose::text::shape(&req);
            let cas = verbose::text::cas_of(&req).filter(|_| log.level() >= 2);
            let noreply = log.level() >= 2 && verbose::text::take_noreply(&mut req);
            let flow = dispatch::execute(ctx, req, out, cursor);
            if shape.verbosity {
                log.refresh(ctx);
            }
            if let Some((key, unique)) = cas {
                if verbose::text::first_line_is(out.since(mark), b"EXISTS") {
                    verbose::cas_failure(*log, ctx, key, unique);
                }
            }
            if log.level() >= 2 || shape.memlimit.is_some() {
                verbose::text::replies(*log, &shape, noreply, out.since(mark));
            }
            if noreply {
                out.truncate(mark);
            }
            step_of(flow, len, skip)
        })
    }
}

/// The step a request's [`Flow`] makes of its frame (`len` bytes, then `skip` to discard).
#[inline]
pub fn step_of(flow: Flow, len: usize, skip: u64) -> Step {
    match flow {
        Flow::Continue => Step::Done { len, skip },
        Flow::Paused => Step::Paused,
        Flow::Close => Step::Close,
    }
}

impl Session for TextSession<'_> {
    fn batch_start(&mut self, buf: &[u8]) {
        if self.auth.is_some() || self.cursor != 0 {
            return;
        }
        let keys = batch_keys(buf);
        if keys.store.len() > 1 {
            self.ctx.store.prefetch(&keys.store);
        }
        if keys.subjects.len() > 1 {
            self.ctx.limiter.prefetch(&keys.subjects);
        }
    }

    fn set_log(&mut self, log: ConnLog) {
        self.log = log;
    }

    fn step(&mut self, buf: &[u8], out: &mut Output) -> Step {
        if self.log.on() {
            return self.step_logged(buf, out);
        }
        if let Some(step) = self.auth_step(buf, out) {
            return step;
        }
        let (ctx, cursor) = (self.ctx, &mut self.cursor);
        decoded(decode(buf, &self.limits), &mut self.transit, |f| {
            let Frame { req, len, skip } = f;
            step_of(dispatch::execute(ctx, req, out, cursor), len, skip)
        })
    }
}

/// The store's size rules for the decoders, from the configuration.
pub fn decode_limits(ctx: &Context) -> DecodeLimits {
    DecodeLimits {
        item_size_max: ctx.config.max_item_size,
        use_cas: ctx.config.use_cas,
        sasl: ctx.config.sasl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::protocol::SMALL_FRAME;
    use crate::server::conn::{Driver, Stop};
    use crate::server::output::HIGH_WATER;

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
        let mut s = TextSession::new(&ctx);
        while !writer.is_finished() {
            s.batch_start(&batch);
        }
        writer.join().unwrap();
        let (out, _) = run(&ctx, b"get key19999\r\n");
        assert_eq!(out, b"VALUE key19999 0 1\r\nv\r\nEND\r\n");
    }

    fn run(ctx: &Context, input: &[u8]) -> (Vec<u8>, Stop) {
        Driver::new(TextSession::new(ctx)).feed_all(input)
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
            let mut d = Driver::new(TextSession::new(&ctx));
            let (mut out, _) = d.feed_all(&input[..cut]);
            let (rest, _) = d.feed_all(&input[cut..]);
            out.extend(rest);
            assert_eq!(&out[..], &whole[..], "cut at {cut}");
            assert!(d.input.buf.is_empty());
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
        // The refused value is discarded as it arrives, in any number of pieces.
        let mut d = Driver::new(TextSession::new(&ctx));
        let mut out = Vec::new();
        for chunk in big.as_bytes().chunks(7) {
            out.extend(d.feed_all(chunk).0);
            assert!(d.input.buf.len() <= 64, "nothing of the value is buffered");
        }
        assert_eq!(
            &out[..],
            b"SERVER_ERROR object too large for cache\r\nEND\r\n"
        );
    }

    #[test]
    fn long_lines_close_unless_multiget() {
        let ctx = Context::for_tests(Config::default());
        let (_, stop) = run(&ctx, &[b'x'; 3000]);
        assert_eq!(stop, Stop::Close);
        let mut get = b"get ".to_vec();
        get.extend(std::iter::repeat_n(b'k', 3000));
        let (out, stop) = run(&ctx, &get);
        assert_eq!(stop, Stop::Read);
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
    fn replies_of_earlier_requests_survive_a_later_error() {
        // memcached answers both; a too-long key fails only its own command.
        let ctx = Context::for_tests(Config::default());
        let line = format!(
            "set a 0 0 1\r\nx\r\nget a\r\nget a {}\r\nget a\r\n",
            "k".repeat(251)
        );
        let (out, _) = run(&ctx, line.as_bytes());
        assert_eq!(
            &out[..],
            &b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\nCLIENT_ERROR bad command line format\r\nVALUE a 0 1\r\nx\r\nEND\r\n"[..]
        );
    }

    #[test]
    fn a_multiget_pauses_at_the_high_water_mark_and_resumes() {
        let ctx = Context::for_tests(Config::default());
        let value = vec![b'v'; 300_000];
        ctx.store
            .store(crate::store::StoreMode::Set, b"big", 0, 0, &value);
        let n = 20;
        let mut line = b"get".to_vec();
        for _ in 0..n {
            line.extend_from_slice(b" big");
        }
        line.extend_from_slice(b"\r\nget nope\r\n");
        let mut d = Driver::new(TextSession::new(&ctx));
        let mut stop = d.feed(&line);
        let mut out = Vec::new();
        let mut pauses = 0;
        while stop == Stop::Flush {
            assert!(
                d.out.pending() < HIGH_WATER + value.len() + 64,
                "bounded by one value"
            );
            pauses += 1;
            out.extend(d.out.take_all());
            stop = d.input.execute(&mut d.session, &mut d.out).0;
        }
        out.extend(d.out.take_all());
        assert!(
            pauses >= n * value.len() / HIGH_WATER - 1,
            "{pauses} pauses"
        );
        let header = b"VALUE big 0 300000\r\n";
        assert_eq!(out.len(), n * (header.len() + value.len() + 2) + 5 + 5);
        assert!(out.ends_with(b"\r\nEND\r\nEND\r\n"));
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
            let mut d = Driver::new(TextSession::new(&ctx));
            let (mut out, _) = d.feed_all(&input[..cut]);
            out.extend(d.feed_all(&input[cut..]).0);
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
        let (out, stop) = run(&ctx, b"version\r\nquit\r\nversion\r\n");
        assert_eq!(stop, Stop::Close);
        assert_eq!(&out[..], b"VERSION 1.6.18\r\n");
    }

    #[test]
    fn a_value_past_the_small_frame_is_charged_until_it_completes() {
        let ctx = Context::for_tests(Config {
            memory_limit: 8 << 20,
            ..Config::default()
        });
        let mut d = Driver::new(TextSession::new(&ctx));
        let header = b"set k 0 0 500000\r\n";
        assert_eq!(d.feed(header), Stop::Read);
        assert!(ctx.store.transit_bytes() >= 500_000 - SMALL_FRAME as u64);
        let (out, _) = d.feed_all(&[b'x'; 500_000]);
        assert!(out.is_empty());
        let (out, _) = d.feed_all(b"\r\n");
        assert_eq!(&out[..], b"STORED\r\n");
        assert_eq!(ctx.store.transit_bytes(), 0);
        // Dropping a session half-way gives its reservation back.
        let mut d = Driver::new(TextSession::new(&ctx));
        d.feed(header);
        assert!(ctx.store.transit_bytes() > 0);
        drop(d);
        assert_eq!(ctx.store.transit_bytes(), 0);
    }

    #[test]
    fn no_room_for_a_value_refuses_it_and_discards_it() {
        let ctx = Context::for_tests(Config::default());
        ctx.store
            .store(crate::store::StoreMode::Set, b"sentinel", 0, 0, b"v");
        let header = b"set k 0 0 900000\r\n";
        let fit = ctx.store.transit_limit() / (900_000 - SMALL_FRAME as u64);
        let mut sessions: Vec<_> = (0..=fit)
            .map(|_| Driver::new(TextSession::new(&ctx)))
            .collect();
        for d in &mut sessions[..fit as usize] {
            assert_eq!(d.feed_all(header), (Vec::new(), Stop::Read));
        }
        // The next cannot reserve: refused at once, its value discarded as it arrives; no
        // cached item was evicted to make room.
        let d = sessions.last_mut().unwrap();
        let (out, _) = d.feed_all(header);
        assert_eq!(&out[..], b"SERVER_ERROR out of memory storing object\r\n");
        let (out, _) = d.feed_all(&[b'x'; 100_000]);
        assert!(out.is_empty() && d.input.buf.is_empty());
        let mut rest = vec![b'x'; 800_000];
        rest.extend_from_slice(b"\r\nget k\r\nget sentinel\r\n");
        assert_eq!(
            &d.feed_all(&rest).0[..],
            b"END\r\nVALUE sentinel 0 1\r\nv\r\nEND\r\n"
        );
    }
}
