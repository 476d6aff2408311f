//! Accept loops: each accepted connection is served by [`super::conn::serve`].

use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;

use super::transport::Transport;
use super::Context;
use crate::stats::ServerStats;

/// Accepts TCP connections until the task is aborted.
pub async fn accept_tcp(listener: TcpListener, ctx: Arc<Context>, limit: Arc<Semaphore>) {
    let local = listener
        .local_addr()
        .map(|a| format!("tcp:{a}"))
        .unwrap_or_default();
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        use std::os::fd::AsRawFd;
        let fd = stream.as_raw_fd();
        spawn_conn(
            stream,
            fd,
            format!("tcp:{peer}"),
            local.clone(),
            &ctx,
            &limit,
        );
    }
}

/// Accepts unix socket connections until the task is aborted.
pub async fn accept_unix(listener: UnixListener, ctx: Arc<Context>, limit: Arc<Semaphore>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        use std::os::fd::AsRawFd;
        let fd = stream.as_raw_fd();
        spawn_conn(stream, fd, "unix".into(), "unix".into(), &ctx, &limit);
    }
}

fn spawn_conn<S>(
    mut stream: S,
    fd: i32,
    peer: String,
    local: String,
    ctx: &Arc<Context>,
    limit: &Arc<Semaphore>,
) where
    S: Transport + AsyncWrite + Unpin + 'static,
{
    let ctx = ctx.clone();
    match limit.clone().try_acquire_owned() {
        Ok(permit) => {
            tokio::spawn(async move {
                ServerStats::add(&ctx.stats.curr_connections, 1);
                ServerStats::add(&ctx.stats.total_connections, 1);
                ctx.conns.add(fd, peer, local);
                super::conn::serve(&stream, &ctx).await;
                ctx.conns.remove(fd);
                ctx.stats
                    .curr_connections
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                drop(permit);
            });
        }
        Err(_) => {
            ServerStats::add(&ctx.stats.rejected_connections, 1);
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"ERROR Too many open connections\r\n")
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    }
}
