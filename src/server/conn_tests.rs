//! Tests of the connection loop over an in-process socket pair: backpressure, frames split
//! anywhere, reply order, the idle timeout. Time is tokio's paused clock (idle timeouts) and
//! the store's mock clock (TTLs), so nothing here sleeps for real.
//!
//! A socket pair rather than `tokio::io::duplex`: the loop reads by readiness (an idle
//! connection holds no buffer), which a duplex stream does not offer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::conn::serve;
use super::output::HIGH_WATER;
use super::Context;
use crate::clock::MockClock;
use crate::config::Config;
use crate::store::StoreMode;

/// A server context on a mock clock, and that clock.
fn context(config: Config) -> (Arc<Context>, Arc<MockClock>) {
    let clock = Arc::new(MockClock::new(1_700_000_000));
    (Arc::new(Context::new(config, clock.clone())), clock)
}

/// Serves one end of a socket pair in a task; returns the other end and the task.
fn connect(ctx: &Arc<Context>) -> (UnixStream, tokio::task::JoinHandle<()>) {
    let (client, server) = UnixStream::pair().unwrap();
    let ctx = ctx.clone();
    let task = tokio::spawn(async move { serve(&server, &ctx).await });
    (client, task)
}

/// Reads until `end` closes the reply or the peer closes.
async fn read_until(c: &mut UnixStream, end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while !got.ends_with(end) {
        let n = c.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[tokio::test(start_paused = true)]
async fn a_client_that_does_not_read_stops_the_connection_at_the_high_water_mark() {
    let (ctx, _) = context(Config::default());
    let value = vec![b'v'; 100_000];
    ctx.store.store(StoreMode::Set, b"big", 0, 0, &value);
    let (mut c, _task) = connect(&ctx);
    // One small write asks for 60 MB of replies; the client reads none of them yet.
    let n = 600;
    c.write_all(&b"get big\r\n".repeat(n)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The server ran only what the socket took plus one high-water mark (and one reply).
    let per = b"VALUE big 0 100000\r\n".len() + value.len() + 2 + b"END\r\n".len();
    let ran = ctx.store.stats().get_hits as usize;
    let written = ctx.stats.bytes_written.load(Ordering::Relaxed) as usize;
    assert!(ran < n / 4, "ran {ran} of {n} gets");
    assert!(
        ran * per <= written + HIGH_WATER + per,
        "ran {ran}, wrote {written}"
    );
    // Once the client reads, every reply arrives, in order.
    let mut got = Vec::with_capacity(n * per);
    let mut buf = vec![0u8; 1 << 20];
    while got.len() < n * per {
        let k = c.read(&mut buf).await.unwrap();
        assert!(k > 0, "closed after {} bytes", got.len());
        got.extend_from_slice(&buf[..k]);
    }
    assert_eq!(got.len(), n * per);
    for reply in got.chunks(per) {
        assert!(reply.starts_with(b"VALUE big 0 100000\r\nvvv"));
        assert!(reply.ends_with(b"v\r\nEND\r\n"));
    }
    assert_eq!(ctx.store.stats().get_hits as usize, n);
}

#[tokio::test(start_paused = true)]
async fn requests_split_anywhere_answer_as_one_write() {
    let (ctx, _) = context(Config::default());
    let input: &[u8] = b"set a 1 0 3\r\nabc\r\nget a b\r\nincr n 1\r\nset n 0 0 2\r\n10\r\nincr n 5\r\ndelete a\r\nget a\r\nms m 2 T0\r\nhi\r\nmg m v\r\nratelimit_all 2\r\nu 5 1m\r\nu 1 1s\r\nversion\r\n";
    let (mut c, _task) = connect(&ctx);
    for (i, b) in input.iter().enumerate() {
        c.write_all(&[*b]).await.unwrap();
        if i % 3 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let got = read_until(&mut c, b"VERSION 1.6.18\r\n").await;
    let text = String::from_utf8(got).unwrap();
    assert!(
        text.starts_with("STORED\r\nVALUE a 1 3\r\nabc\r\nEND\r\nNOT_FOUND\r\nSTORED\r\n15\r\nDELETED\r\nEND\r\nHD\r\nVA 2\r\nhi\r\nALLOWED 1 0 0 1000\r\n"),
        "{text}"
    );
    assert!(text.ends_with("END\r\nVERSION 1.6.18\r\n"));
}

#[tokio::test(start_paused = true)]
async fn every_reply_of_every_complete_request_goes_out_in_order() {
    let (ctx, _) = context(Config::default());
    let (mut c, _task) = connect(&ctx);
    let long = "k".repeat(251);
    let req =
        format!("set a 0 0 1\r\nx\r\nget a\r\nget a {long}\r\nget a\r\nbogus\r\nquit\r\nget a\r\n");
    c.write_all(req.as_bytes()).await.unwrap();
    let got = read_until(&mut c, b"never").await;
    assert_eq!(
        String::from_utf8(got).unwrap(),
        "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\nCLIENT_ERROR bad command line format\r\nVALUE a 0 1\r\nx\r\nEND\r\nERROR\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_counts_completed_requests_not_bytes() {
    let (ctx, _) = context(Config {
        idle_timeout: 2,
        ..Config::default()
    });
    // A client trickling one byte a second of a line that never ends is closed.
    let (mut c, task) = connect(&ctx);
    let start = tokio::time::Instant::now();
    let mut closed = false;
    for _ in 0..10 {
        if c.write_all(b"g").await.is_err() {
            closed = true;
            break;
        }
        let mut b = [0u8; 16];
        match tokio::time::timeout(Duration::from_secs(1), c.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(closed, "the trickling client was never closed");
    task.await.unwrap();
    let after = start.elapsed();
    assert!(
        after >= Duration::from_secs(2) && after < Duration::from_secs(4),
        "{after:?}"
    );
    assert_eq!(ctx.stats.idle_kicks.load(Ordering::Relaxed), 1);

    // A client completing a request every 1.5 s stays.
    let (mut c, task) = connect(&ctx);
    for _ in 0..5 {
        c.write_all(b"version\r\n").await.unwrap();
        assert_eq!(read_until(&mut c, b"\r\n").await, b"VERSION 1.6.18\r\n");
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    assert!(!task.is_finished());
    assert_eq!(ctx.stats.idle_kicks.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn ttls_follow_the_store_clock() {
    let (ctx, clock) = context(Config::default());
    let (mut c, _task) = connect(&ctx);
    c.write_all(b"set t 0 2 1\r\nx\r\nget t\r\n").await.unwrap();
    assert_eq!(
        read_until(&mut c, b"END\r\n").await,
        b"STORED\r\nVALUE t 0 1\r\nx\r\nEND\r\n"
    );
    clock.advance_secs(3);
    c.write_all(b"get t\r\n").await.unwrap();
    assert_eq!(read_until(&mut c, b"END\r\n").await, b"END\r\n");
}

#[tokio::test(start_paused = true)]
async fn binary_connections_use_the_same_loop() {
    let (ctx, _) = context(Config::default());
    let (mut c, _task) = connect(&ctx);
    let mut req = Vec::new();
    crate::protocol::binary::encode_request(&mut req, 0x01, b"k", &[0; 8], b"val", 0, 1);
    crate::protocol::binary::encode_request(&mut req, 0x0c, b"k", &[], &[], 0, 2);
    // Sent in two pieces, cut inside the set's value.
    c.write_all(&req[..30]).await.unwrap();
    tokio::task::yield_now().await;
    c.write_all(&req[30..]).await.unwrap();
    let mut got = vec![0u8; 24 + 24 + 4 + 1 + 3];
    c.read_exact(&mut got).await.unwrap();
    assert_eq!((got[1], got[7]), (0x01, 0), "set succeeded");
    assert_eq!(&got[24 + 24 + 4..], b"kval");
}
