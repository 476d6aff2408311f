//! The per-connection read/process/write loop.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::binary::BinarySession;
use super::dispatch::Flow;
use super::session::Session;
use super::Context;
use crate::config::ProtocolChoice;
use crate::protocol::binary::REQ_MAGIC;
use crate::stats::ServerStats;

/// Initial buffer size per connection; buffers grown past `SHRINK_ABOVE` are released after use.
const BUF_SIZE: usize = 16 * 1024;
const SHRINK_ABOVE: usize = 256 * 1024;

/// Serves one connection: read what arrived, run every complete request, write all replies
/// of that batch in one write.
///
/// As memcached does, the protocol is chosen per connection: with `-B auto` a first byte of
/// 0x80 selects the binary protocol, anything else the text protocol; `-B ascii` and
/// `-B binary` force one (a client speaking the other gets that protocol's answer to its bytes).
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, ctx: &Context) {
    let mut rbuf = BytesMut::with_capacity(BUF_SIZE);
    let mut out = BytesMut::with_capacity(BUF_SIZE);
    let mut session = Session::new();
    let mut binary = (ctx.config.protocol == ProtocolChoice::Binary).then(BinarySession::new);
    let mut negotiating = ctx.config.protocol == ProtocolChoice::Auto;
    loop {
        if rbuf.capacity() - rbuf.len() < 1024 {
            rbuf.reserve(BUF_SIZE);
        }
        let read = stream.read_buf(&mut rbuf);
        let n = match ctx.config.idle_timeout {
            0 => read.await,
            secs => match tokio::time::timeout(Duration::from_secs(u64::from(secs)), read).await {
                Ok(r) => r,
                Err(_) => return,
            },
        };
        let n = match n {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        ServerStats::add(&ctx.stats.bytes_read, n as u64);
        if negotiating {
            negotiating = false;
            if rbuf[0] == REQ_MAGIC {
                binary = Some(BinarySession::new());
            }
        }
        let (flow, hold) = match &mut binary {
            Some(b) => {
                let flow = b.process(ctx, &mut rbuf, &mut out);
                (flow, b.holds_output())
            }
            None => (session.process(ctx, &mut rbuf, &mut out), false),
        };
        if flow == Flow::Shutdown {
            ctx.request_shutdown();
            return;
        }
        // memcached holds a batch's replies while it reads a value or discards bytes.
        let held = hold && flow == Flow::Continue;
        if !out.is_empty() && !held {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            ServerStats::add(&ctx.stats.bytes_written, out.len() as u64);
            out.clear();
            if out.capacity() > SHRINK_ABOVE {
                out = BytesMut::with_capacity(BUF_SIZE);
            }
        }
        if flow == Flow::Close {
            let _ = stream.shutdown().await;
            return;
        }
        if rbuf.is_empty() && rbuf.capacity() > SHRINK_ABOVE {
            rbuf = BytesMut::with_capacity(BUF_SIZE);
        }
    }
}
