//! memcached's UDP transport (`-U`): every datagram carries an 8-byte frame header (request
//! id, sequence number, datagram count, reserved) and one complete request batch; replies are
//! split into datagrams of at most 1400 bytes, each with the same request id. memcached sends
//! one such message per response object (one per hit of a multi-get); ratecached sends one per
//! datagram, which clients reassemble the same way.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use tokio::net::UdpSocket;

use super::session::Session;
use super::Context;
use crate::stats::ServerStats;

/// Frame header length.
const HEADER: usize = 8;
/// Largest datagram memcached sends.
const MAX_PAYLOAD: usize = 1400;

/// Splits `reply` into framed datagrams for request `id`.
pub fn frame_reply(id: u16, reply: &[u8]) -> Vec<BytesMut> {
    let chunk = MAX_PAYLOAD - HEADER;
    let count = reply.len().div_ceil(chunk).max(1);
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
    if datagram.len() < HEADER {
        return None;
    }
    let id = u16::from_be_bytes([datagram[0], datagram[1]]);
    let total = u16::from_be_bytes([datagram[4], datagram[5]]);
    if total != 1 {
        // memcached 1.6.18 drops requests that span several datagrams without a reply.
        return None;
    }
    let mut out = BytesMut::new();
    let mut rbuf = BytesMut::from(&datagram[HEADER..]);
    // As memcached does, each datagram picks its protocol by its first byte.
    if rbuf.first() == Some(&crate::protocol::binary::REQ_MAGIC) {
        super::binary::BinarySession::new().process(ctx, &mut rbuf, &mut out);
    } else {
        Session::new().process(ctx, &mut rbuf, &mut out);
    }
    (!out.is_empty()).then(|| frame_reply(id, &out))
}

/// Serves a UDP socket until the task is aborted.
pub async fn serve_udp(socket: UdpSocket, ctx: Arc<Context>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        ServerStats::add(&ctx.stats.bytes_read, n as u64);
        if let Some(datagrams) = handle_datagram(&ctx, &buf[..n]) {
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
        assert_eq!(
            handle_datagram(&ctx, b"\x00\x01\x00\x00\x00\x02\x00\x00get k\r\n"),
            None
        );
    }
}
