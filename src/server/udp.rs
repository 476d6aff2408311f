//! memcached's UDP transport (`-U`): every datagram carries an 8-byte frame header (request
//! id, sequence number, datagram count, reserved) and one complete request batch; replies are
//! split into datagrams of at most 1400 bytes, each with the same request id. memcached sends
//! one such message per response object (one per hit of a multi-get); ratecached sends one per
//! datagram, which clients reassemble the same way.
//!
//! A datagram's reply is bounded: requests stop running once it reaches [`MAX_REPLY`] (one
//! more value may follow), and a reply cut short ends with
//! `SERVER_ERROR out of memory writing get response`, memcached's line for a reply it could
//! not build. The datagram count therefore never nears its 16-bit limit.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use tokio::net::UdpSocket;

use super::binary::BinarySession;
use super::conn::{Driver, Session, Stop};
use super::output::HIGH_WATER;
use super::text::TextSession;
use super::verbose::ConnLog;
use super::Context;
use crate::stats::ServerStats;

/// Frame header length.
const HEADER: usize = 8;
/// Largest datagram memcached sends.
const MAX_PAYLOAD: usize = 1400;
/// Reply bytes past which a datagram's requests stop running.
pub const MAX_REPLY: usize = HIGH_WATER;
/// The line ending a reply cut short at [`MAX_REPLY`].
const CUT_SHORT: &[u8] = b"SERVER_ERROR out of memory writing get response\r\n";

/// Splits `reply` into framed datagrams for request `id` (empty if it would need more
/// datagrams than the 16-bit count can number; [`MAX_REPLY`] keeps replies far below that).
pub fn frame_reply(id: u16, reply: &[u8]) -> Vec<BytesMut> {
    let chunk = MAX_PAYLOAD - HEADER;
    let count = reply.len().div_ceil(chunk).max(1);
    if count > usize::from(u16::MAX) {
        return Vec::new();
    }
    (0..count)
        .map(|seq| {
            let body = &reply[(seq * chunk).min(reply.len())..((seq + 1) * chunk).min(reply.len())];
            let mut d = BytesMut::with_capacity(HEADER + body.len());
            d.put_u16(id);
            d.put_u16(seq as u16);
            d.put_u16(count as u16);
            d.put_u16(0);
            d.put_slice(body);
            d
        })
        .collect()
}

/// Answers one datagram: `None` when it gets no reply (too short, or no complete request).
pub fn handle_datagram(ctx: &Context, datagram: &[u8]) -> Option<Vec<BytesMut>> {
    answer(ctx, ConnLog::OFF, datagram)
}

/// [`handle_datagram`], its requests logged as the socket's (`-vv`).
fn answer(ctx: &Context, log: ConnLog, datagram: &[u8]) -> Option<Vec<BytesMut>> {
    if datagram.len() < HEADER {
        return None;
    }
    let id = u16::from_be_bytes([datagram[0], datagram[1]]);
    let total = u16::from_be_bytes([datagram[4], datagram[5]]);
    if total != 1 {
        // memcached 1.6.18 drops requests that span several datagrams without a reply.
        return None;
    }
    // As memcached does, each datagram picks its protocol by its first byte.
    let body = &datagram[HEADER..];
    let out = if body.first() == Some(&crate::protocol::binary::REQ_MAGIC) {
        run_datagram(BinarySession::new(ctx), log, body)
    } else {
        run_datagram(TextSession::new(ctx), log, body)
    };
    (!out.is_empty()).then(|| frame_reply(id, &out))
}

/// Runs a datagram's requests; the reply stops growing at [`MAX_REPLY`].
fn run_datagram<S: Session>(session: S, log: ConnLog, body: &[u8]) -> Vec<u8> {
    let mut d = Driver::new(session);
    d.session.set_log(log);
    let stop = d.feed(body);
    let mut out = d.out.take_all();
    if stop == Stop::Flush {
        out.extend_from_slice(CUT_SHORT);
    }
    out
}

/// Serves a UDP socket until the task is aborted.
pub async fn serve_udp(socket: UdpSocket, ctx: Arc<Context>) {
    let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        ServerStats::add(&ctx.stats.bytes_read, n as u64);
        if let Some(datagrams) = answer(&ctx, ConnLog::new(fd, &ctx), &buf[..n]) {
            for d in datagrams {
                if socket.send_to(&d, peer).await.is_ok() {
                    ServerStats::add(&ctx.stats.bytes_written, d.len() as u64);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn frames_requests_and_long_replies() {
        let ctx = Context::for_tests(Config::default());
        let mut d = vec![0, 7, 0, 0, 0, 1, 0, 0];
        d.extend_from_slice(b"set k 0 0 3000\r\n");
        d.extend(std::iter::repeat_n(b'x', 3000));
        d.extend_from_slice(b"\r\nget k\r\n");
        let out = handle_datagram(&ctx, &d).unwrap();
        assert_eq!(out.len(), 3);
        for (i, dg) in out.iter().enumerate() {
            assert_eq!(&dg[..8], &[0, 7, 0, i as u8, 0, 3, 0, 0]);
            assert!(dg.len() <= MAX_PAYLOAD);
        }
        let body: Vec<u8> = out.iter().flat_map(|d| d[8..].to_vec()).collect();
        assert!(body.starts_with(b"STORED\r\nVALUE k 0 3000\r\n"));
        assert!(body.ends_with(b"\r\nEND\r\n"));
        assert_eq!(handle_datagram(&ctx, &[0, 1, 0]), None);
        // A reply past the bound is cut short, never wrapping the datagram count.
        let value = vec![b'x'; 1_000_000];
        ctx.store
            .store(crate::store::StoreMode::Set, b"big", 0, 0, &value);
        let mut d = vec![0, 9, 0, 0, 0, 1, 0, 0];
        d.extend_from_slice(b"get");
        for _ in 0..100 {
            d.extend_from_slice(b" big");
        }
        d.extend_from_slice(b"\r\n");
        let out = handle_datagram(&ctx, &d).unwrap();
        assert!(out.len() * (MAX_PAYLOAD - HEADER) < 2 * MAX_REPLY + 100_000);
        let last = out.last().unwrap();
        assert!(last.ends_with(CUT_SHORT));
        assert_eq!(&last[4..6], &(out.len() as u16).to_be_bytes());
        assert_eq!(
            handle_datagram(&ctx, b"\x00\x01\x00\x00\x00\x02\x00\x00get k\r\n"),
            None
        );
    }
}
