//! The sessions' verbose lines, captured, and the replies they leave untouched.

use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;

use super::ConnLog;
use crate::config::Config;
use crate::server::binary::BinarySession;
use crate::server::conn::{Driver, Session};
use crate::server::text::TextSession;
use crate::server::Context;

/// Captured log output.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` and returns what it logged, one string per line.
fn logged(f: impl FnOnce()) -> Vec<String> {
    let cap = Capture::default();
    let writer = cap.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(cap.0.lock().clone()).unwrap();
    text.lines().map(str::to_string).collect()
}

fn ctx_at(verbosity: u8) -> Context {
    Context::for_tests(Config {
        verbosity,
        ..Config::default()
    })
}

/// Replies to `input`, from a session logging as fd 7 (or not logging).
fn replies<S: Session>(session: S, ctx: &Context, log: bool, input: &[u8]) -> Vec<u8> {
    let mut d = Driver::new(session);
    if log {
        d.session.set_log(ConnLog::new(7, ctx));
    }
    let (out, _) = d.feed_all(input);
    out
}

#[test]
fn text_lines_are_memcacheds() {
    let ctx = ctx_at(2);
    let input = b"set a 0 0 1\r\nx\r\nget a b a\r\nset k 0 0 1 noreply\r\nz\r\nmg a v\r\nmn\r\nbogus\r\nget\r\n";
    let lines = logged(|| {
        replies(TextSession::new(&ctx), &ctx, true, input);
    });
    assert_eq!(
        lines,
        [
            "<7 set a 0 0 1",
            ">7 STORED",
            "<7 get a b a",
            ">7 sending key a",
            ">7 sending key a",
            ">7 END",
            "<7 set k 0 0 1 noreply",
            ">7 NOREPLY STORED",
            "<7 mg a v",
            "<7 mn",
            ">7 MN",
            "<7 bogus",
            ">7 ERROR",
            "<7 get",
            ">7 ERROR",
        ]
    );
}

#[test]
fn logging_never_changes_a_reply() {
    let big = vec![b'v'; 300_000];
    let mut set_big = b"set big 0 0 300000\r\n".to_vec();
    set_big.extend_from_slice(&big);
    set_big.extend_from_slice(b"\r\n");
    let inputs: Vec<Vec<u8>> = vec![
        b"set a 0 0 1 noreply\r\nx\r\nincr a 1 noreply\r\ndelete a noreply\r\nget a\r\n".to_vec(),
        b"flush_all noreply\r\nverbosity 1 noreply\r\ntouch a 1 noreply\r\nversion\r\n".to_vec(),
        b"ratelimit k 10 1s noreply\r\nratelimit k 10 1s\r\nratelimit_all 1 noreply\r\nk 1 1s\r\n"
            .to_vec(),
        b"set k 0 0 1 noreply\r\nxyz\r\nmg k v q\r\nmn\r\nset k 0 0 abc noreply\r\n".to_vec(),
        [
            set_big.clone(),
            b"get big big big big big\r\ngets big\r\n".to_vec(),
        ]
        .concat(),
    ];
    for input in inputs {
        let (quiet, loud) = (ctx_at(2), ctx_at(2));
        let plain = replies(TextSession::new(&quiet), &quiet, false, &input);
        let mut with_log = Vec::new();
        let lines = logged(|| with_log = replies(TextSession::new(&loud), &loud, true, &input));
        assert_eq!(
            with_log,
            plain,
            "{:?}",
            String::from_utf8_lossy(&input[..input.len().min(80)])
        );
        assert!(!lines.is_empty());
    }
}

#[test]
fn a_paused_multiget_logs_its_line_once_and_every_key() {
    let ctx = ctx_at(2);
    let value = vec![b'v'; 300_000];
    ctx.store
        .store(crate::store::StoreMode::Set, b"big", 0, 0, &value);
    let lines = logged(|| {
        replies(
            TextSession::new(&ctx),
            &ctx,
            true,
            b"get big big big big big big\r\n",
        );
    });
    let mut want = vec!["<7 get big big big big big big".to_string()];
    want.extend(std::iter::repeat_n(">7 sending key big".to_string(), 6));
    want.push(">7 END".into());
    assert_eq!(lines, want);
}

#[test]
fn verbosity_1_stops_the_lines_at_once_and_v_shows_errors_only() {
    let ctx = ctx_at(2);
    let lines = logged(|| {
        replies(
            TextSession::new(&ctx),
            &ctx,
            true,
            b"verbosity 1\r\nget a\r\ncache_memlimit 100\r\n",
        );
    });
    assert_eq!(
        lines,
        ["<7 verbosity 1", "maxbytes adjusted to 100m"],
        "no `>7 OK` after it: the level dropped first, as in memcached"
    );
}

#[test]
fn quiet_below_v() {
    let ctx = ctx_at(0);
    let lines = logged(|| {
        replies(TextSession::new(&ctx), &ctx, true, b"get a\r\nbogus\r\n");
        let mut bin = Vec::new();
        crate::protocol::binary::encode_request(&mut bin, 0x00, b"k", &[], &[], 0, 0);
        replies(BinarySession::new(&ctx), &ctx, true, &bin);
    });
    assert!(lines.is_empty(), "{lines:?}");
}

#[test]
fn binary_lines_are_memcacheds() {
    use crate::protocol::binary::encode_request;
    let ctx = ctx_at(2);
    let mut input = Vec::new();
    encode_request(
        &mut input,
        0x01,
        b"a",
        &[0, 0, 0, 5, 0, 0, 0, 0],
        b"xy",
        0,
        1,
    );
    encode_request(&mut input, 0x00, b"a", &[], &[], 0, 0);
    encode_request(&mut input, 0x09, b"b", &[], &[], 0, 0); // getq miss: no reply
    encode_request(&mut input, 0x04, b"b", &[], &[], 0, 0);
    let lines = logged(|| {
        replies(BinarySession::new(&ctx), &ctx, true, &input);
    });
    let text = lines.join("\n");
    let expected = "<7 Read binary protocol data:
<7    0x80 0x01 0x00 0x01
<7    0x08 0x00 0x00 0x00
<7    0x00 0x00 0x00 0x0b
<7    0x00 0x00 0x00 0x01
<7    0x00 0x00 0x00 0x00
<7    0x00 0x00 0x00 0x00
<7 SET a Value len is 2
>7 Writing bin response:
>7   0x81 0x01 0x00 0x00
>7   0x00 0x00 0x00 0x00
>7   0x00 0x00 0x00 0x00
>7   0x00 0x00 0x00 0x01
>7   0x00 0x00 0x00 0x00
>7   0x00 0x00 0x00 0x01
<7 Read binary protocol data:
<7    0x80 0x00 0x00 0x01
<7    0x00 0x00 0x00 0x00
<7    0x00 0x00 0x00 0x01
<7    0x00 0x00 0x00 0x00
<7    0x00 0x00 0x00 0x00
<7    0x00 0x00 0x00 0x00
<7 GET a
>7 Writing bin response:
>7   0x81 0x00 0x00 0x00
>7   0x04 0x00 0x00 0x00
>7   0x00 0x00 0x00 0x06
>7   0x00 0x00 0x00 0x00
>7   0x00 0x00 0x00 0x00
>7   0x00 0x00 0x00 0x00
<7 Read binary protocol data:
<7    0x80 0x09 0x00 0x01
<7    0x00 0x00 0x00 0x00
<7    0x00 0x00 0x00 0x01
<7    0x00 0x00 0x00 0x00
<7    0x00 0x00 0x00 0x00
<7    0x00 0x00 0x00 0x00
<7 GET b
<7 Read binary protocol data:
<7    0x80 0x04 0x00 0x01
<7    0x00 0x00 0x00 0x00
<7    0x00 0x00 0x00 0x01
<7    0x00 0x00 0x00 0x00
<7    0x00 0x00 0x00 0x00
<7    0x00 0x00 0x00 0x00
Deleting b
>7 Writing an error: Not found
>7 Writing bin response:
>7   0x81 0x04 0x00 0x00
>7   0x00 0x00 0x00 0x01
>7   0x00 0x00 0x00 0x09
>7   0x00 0x00 0x00 0x00
>7   0x00 0x00 0x00 0x00
>7   0x00 0x00 0x00 0x00";
    assert_eq!(text, expected);
}
