//! The binary protocol's session: decodes one request at a time with
//! [`crate::protocol::binary::decode`], charges large partial requests to the memory limit,
//! gates clients that have not authenticated (`-S`) by their header alone, and runs requests
//! with [`exec::execute`]. Every reply of every complete request is sent, in order.

mod exec;
mod sasl;

use super::conn::{decoded, Session, Step, Transit};
use super::output::Output;
use super::text::{decode_limits, step_of};
use super::verbose::{self, ConnLog};
use super::Context;
use crate::protocol::binary::{
    batch_keys, decode, opcode, status, write_error, Command, Header, StoreOp, HEADER_LEN,
    REQ_MAGIC,
};
use crate::protocol::{Decode, DecodeLimits, Frame};
use sasl::Sasl;

/// Most body bytes a SASL request may carry before its connection authenticated (a PLAIN
/// exchange needs a few dozen); a longer one closes the connection.
pub const PREAUTH_BODY_MAX: usize = 4096;

/// Per-connection state of the binary protocol.
pub struct BinarySession<'c> {
    ctx: &'c Context,
    limits: DecodeLimits,
    sasl: Sasl,
    /// Memory reserved for the request being received.
    transit: Transit<'c>,
    /// The connection's verbose log.
    log: ConnLog,
}

impl<'c> BinarySession<'c> {
    /// A session at the start of a connection.
    pub fn new(ctx: &'c Context) -> Self {
        BinarySession {
            ctx,
            limits: decode_limits(ctx),
            sasl: Sasl::default(),
            transit: Transit::new(&ctx.store),
            log: ConnLog::OFF,
        }
    }

    /// [`Session::step`] with memcached's verbose lines: the request header, the command's
    /// line, the response headers, and the `-v` errors.
    #[inline(never)]
    fn step_logged(&mut self, buf: &[u8], out: &mut Output) -> Step {
        let (log, mark) = (self.log, out.pending());
        let (authenticated, started) = (self.sasl.authenticated, self.sasl.started());
        if let Some(stop) = self.gate(buf, out) {
            verbose::binary::header(log, buf);
            verbose::binary::auth(log, buf[1], false);
            verbose::binary::replies(log, None, out.since(mark));
            return stop;
        }
        let d = decode(buf, &self.limits);
        if d == Decode::Close {
            verbose::binary::invalid_magic(log, buf);
            return Step::Close;
        }
        let mut ran = None;
        let (ctx, sasl) = (self.ctx, &mut self.sasl);
        let step = decoded(d, &mut self.transit, |f| {
            let Frame { req, len, skip } = f;
            ran = Some(req);
            step_of(exec::execute(ctx, req, out, sasl), len, skip)
        });
        if let Some(req) = ran {
            let op = req.header.opcode;
            verbose::binary::header(log, buf);
            if self.limits.sasl && req.command != Command::BadLengths {
                verbose::binary::auth(log, op, authenticated);
            }
            verbose::binary::command(log, &req);
            match req.command {
                Command::SaslAuth { .. } => {
                    if let Some(st) = verbose::binary::first_status(out.since(mark)) {
                        verbose::binary::sasl_result(log, &req, started, st);
                    }
                }
                // memcached's cas path: set, add and replace with a cas unique.
                Command::Store { op, key, .. }
                    if log.level() >= 2
                        && req.header.cas != 0
                        && matches!(op, StoreOp::Set | StoreOp::Add | StoreOp::Replace) =>
                {
                    let st = verbose::binary::first_status(out.since(mark));
                    if st == Some(status::KEY_EEXISTS) {
                        verbose::cas_failure(log, ctx, key, req.header.cas);
                    }
                }
                _ => {}
            }
            if log.level() >= 2 {
                verbose::binary::replies(log, Some(&req), out.since(mark));
            }
            if req.command == Command::Invalid {
                verbose::binary::protocol_error(log, op);
            }
        }
        step
    }

    /// Before authentication (`-S`), only SASL and `version` are served, and only with small
    /// bodies; anything else is answered `Auth failure` and closes at its header, before a
    /// byte of its body is buffered. Lengths that disagree are left to the decoder, which
    /// answers them first, as memcached does.
    fn gate(&self, buf: &[u8], out: &mut Output) -> Option<Step> {
        if !self.limits.sasl || self.sasl.authenticated {
            return None;
        }
        let h = Header::parse(buf.first_chunk::<HEADER_LEN>()?);
        if h.magic != REQ_MAGIC
            || usize::from(h.keylen) + usize::from(h.extlen) > h.bodylen as usize
        {
            return None;
        }
        match h.opcode {
            opcode::SASL_LIST_MECHS | opcode::VERSION => None,
            opcode::SASL_AUTH | opcode::SASL_STEP if h.bodylen as usize <= PREAUTH_BODY_MAX => None,
            _ => {
                write_error(out, &h, status::AUTH_ERROR);
                Some(Step::Close)
            }
        }
    }
}

impl Session for BinarySession<'_> {
    fn batch_start(&mut self, buf: &[u8]) {
        let keys = batch_keys(buf);
        if keys.len() > 1 {
            self.ctx.store.prefetch(&keys);
        }
    }

    fn set_log(&mut self, log: ConnLog) {
        self.log = log;
    }

    fn step(&mut self, buf: &[u8], out: &mut Output) -> Step {
        if self.log.on() {
            return self.step_logged(buf, out);
        }
        if let Some(stop) = self.gate(buf, out) {
            return stop;
        }
        let (ctx, sasl) = (self.ctx, &mut self.sasl);
        decoded(decode(buf, &self.limits), &mut self.transit, |f| {
            let Frame { req, len, skip } = f;
            step_of(exec::execute(ctx, req, out, sasl), len, skip)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::protocol::binary::REQ_MAGIC;
    use crate::server::conn::{Driver, Stop};
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

    fn run(ctx: &Context, input: &[u8]) -> (Vec<u8>, Stop) {
        Driver::new(BinarySession::new(ctx)).feed_all(input)
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
        let (whole, stop) = run(&ctx, &input);
        assert_eq!(stop, Stop::Read);
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
            let mut d = Driver::new(BinarySession::new(&ctx));
            let (mut out, _) = d.feed_all(&input[..cut]);
            out.extend(d.feed_all(&input[cut..]).0);
            // Cas uniques are the same too: each run starts from a fresh store.
            assert_eq!(&out[..], &whole[..], "cut at {cut}");
            assert!(d.input.buf.is_empty());
        }
    }

    #[test]
    fn replies_are_not_held_while_a_value_arrives() {
        // memcached holds the replies of a batch while it reads a value; every reply of a
        // complete request goes out here at once.
        let ctx = Context::for_tests(Config::default());
        let mut d = Driver::new(BinarySession::new(&ctx));
        let mut input = req(opcode::VERSION, b"", &[], &[], 0, 0);
        let full = set(opcode::SET, b"k", b"value", 0);
        input.extend(&full[..full.len() - 2]);
        let (out, stop) = d.feed_all(&input);
        assert_eq!((packets(&out).len(), stop), (1, Stop::Read));
        let (out, _) = d.feed_all(&full[full.len() - 2..]);
        assert_eq!(packets(&out).len(), 1);

        // An unknown opcode discards its bodylen after extras and key.
        let mut d = Driver::new(BinarySession::new(&ctx));
        let (out, _) = d.feed_all(&req(0x40, b"ab", &[], b"", 0, 0));
        assert_eq!(packets(&out)[0].1, status::UNKNOWN_COMMAND);
        let (out, _) = d.feed_all(b"zz");
        assert!(out.is_empty() && d.input.buf.is_empty());
        let (out, _) = d.feed_all(&req(opcode::NOOP, b"", &[], &[], 0, 0));
        assert_eq!(packets(&out)[0].0, opcode::NOOP);
    }

    #[test]
    fn bad_magic_sends_every_earlier_reply_then_closes() {
        let ctx = Context::for_tests(Config::default());
        for n in [0, 1, 20, 21, 61] {
            let mut input = req(opcode::VERSION, b"", &[], &[], 0, 0).repeat(n);
            input.extend([0u8; 24]);
            let (out, stop) = run(&ctx, &input);
            assert_eq!(stop, Stop::Close);
            assert_eq!(packets(&out).len(), n, "{n} requests");
        }
    }

    #[test]
    fn protocol_errors_reply_and_close() {
        let ctx = Context::for_tests(Config::default());
        let (out, stop) = run(&ctx, &req(opcode::GET, &[b'k'; 251], &[], &[], 0, 0));
        assert_eq!(stop, Stop::Close);
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
        let (out, stop) = run(&ctx, &bad);
        assert_eq!(stop, Stop::Close);
        assert_eq!(packets(&out)[0].1, status::UNKNOWN_COMMAND);
        let (out, stop) = run(&ctx, &req(opcode::QUITQ, b"", &[], &[], 0, 0));
        assert_eq!((out.is_empty(), stop), (true, Stop::Close));
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
        let (out, stop) = run(&ctx, &input);
        assert_eq!(stop, Stop::Read);
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
        let (out, stop) = run(&ctx, &req(opcode::VERSION, b"", &[], &[], 0, 0));
        assert_eq!(stop, Stop::Read);
        assert_eq!(packets(&out)[0].3, b"1.6.18");
        let (out, stop) = run(&ctx, &req(opcode::GET, b"k", &[], &[], 0, 0));
        assert_eq!(stop, Stop::Close);
        assert_eq!(packets(&out)[0].1, status::AUTH_ERROR);
        let (out, _) = run(&ctx, &req(opcode::SASL_LIST_MECHS, b"", &[], &[], 0, 0));
        assert_eq!(packets(&out)[0].3, b"PLAIN");
    }

    #[test]
    fn nothing_big_is_buffered_before_authentication() {
        let ctx = Context::for_tests(Config {
            sasl: true,
            ..Config::default()
        });
        // A set's header closes the connection before its 1 MB value is read.
        let mut d = Driver::new(BinarySession::new(&ctx));
        let set = set(opcode::SET, b"k", &[b'x'; 1_000_000], 0);
        let (out, stop) = d.feed_all(&set[..40]);
        assert_eq!(
            (stop, packets(&out)[0].1),
            (Stop::Close, status::AUTH_ERROR)
        );
        // So does SASL data past the pre-auth bound, however it is announced.
        let mut d = Driver::new(BinarySession::new(&ctx));
        let mut big = req(opcode::SASL_AUTH, b"PLAIN", &[], &[], 0, 0);
        big[8..12].copy_from_slice(&300_000_005u32.to_be_bytes());
        let (_, stop) = d.feed_all(&big);
        assert_eq!(stop, Stop::Close);
        assert!(d.input.buf.len() <= HEADER_LEN + 5);
    }

    #[test]
    fn ratelimit_opcodes() {
        let ctx = Context::for_tests(Config::default());
        let mut e = 60_000u64.to_be_bytes().to_vec();
        e.extend(100u32.to_be_bytes());
        e.extend(10u32.to_be_bytes());
        e.extend(0u32.to_be_bytes());
        e.extend([0, 0, 0, 0]);
        let (out, _) = run(&ctx, &req(opcode::RATELIMIT, b"api:u42", &e, &[], 0, 9));
        assert_eq!(out[7], 0);
        let mut x = [0u8; 24];
        x.copy_from_slice(&out[24..48]);
        assert_eq!(&x[..4], &10u32.to_be_bytes());
        assert_eq!(&x[4..8], &9u32.to_be_bytes());
        assert_eq!(&x[16..], &600u64.to_be_bytes());
        let quiet = req(opcode::RATELIMITQ, b"api:u42", &e, &[], 0, 9).repeat(9);
        let (out, _) = run(&ctx, &quiet);
        assert_eq!(packets(&out).len(), 0);
        let (out, _) = run(&ctx, &quiet[..quiet.len() / 9]);
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
            let mut d = Driver::new(BinarySession::new(&ctx));
            for mut c in chunks {
                if magic && !c.is_empty() {
                    c[0] = REQ_MAGIC;
                }
                if d.feed_all(&c).1 != Stop::Read {
                    break;
                }
            }
        }
    }
}
