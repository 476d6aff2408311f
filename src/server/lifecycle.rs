//! The server's life around the connections: restoring a `-e` snapshot at start, periodic
//! rate-limit snapshots, and the orderly stop.
//!
//! Stopping (SIGTERM, SIGINT, SIGUSR1, the `shutdown` command): the listeners close, every
//! connection answers the complete requests it has already read and closes (its socket's
//! reading side is shut, so a connection waiting for more bytes ends at once), the server waits
//! for them (at most [`DRAIN`]: a client that never reads its replies cannot hold the stop up),
//! then, for a graceful stop (SIGUSR1, `shutdown graceful`) with `-e FILE`, saves the items and
//! the rate-limit states to FILE, and removes the pid file.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use super::Context;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::persist;

/// Longest wait for connections to finish their requests at a stop.
pub const DRAIN: Duration = Duration::from_secs(5);

/// How the server was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// SIGTERM, SIGINT, `shutdown`.
    Now,
    /// SIGUSR1, `shutdown graceful`: also save to the `-e` file.
    Graceful,
}

/// The context for `config`, with the `-e` snapshot restored when there is one (the file is
/// removed once restored, so a later crash never brings back stale data). A damaged or
/// foreign file is refused: the error says why, and nothing of it is loaded.
pub fn start(config: Config, clock: SharedClock) -> Result<Context, String> {
    let Some(path) = config.memory_file.clone() else {
        return Ok(Context::new(config, clock));
    };
    let bytes = persist::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let Some(bytes) = bytes else {
        return Ok(Context::new(config, clock));
    };
    let snap = persist::parse(&bytes)
        .map_err(|e| format!("{}: {e}; move it away to start without it", path.display()))?;
    let ctx = Context::with_seeds(config, clock, Some(snap.header.seeds));
    let counts = persist::restore(&snap, &ctx.store, &ctx.limiter, persist::wall_now_ns());
    std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    tracing::info!(
        "restored {} items and {} rate-limit states from {}",
        counts.items,
        counts.states,
        path.display()
    );
    Ok(ctx)
}

/// Saves the rate-limit states to the `-e` file every `-o ratelimit_snapshot` seconds.
pub async fn snapshots(ctx: Arc<Context>) {
    let (Some(path), secs) = (
        ctx.config.memory_file.clone(),
        ctx.config.ratelimit_snapshot,
    ) else {
        return;
    };
    if secs == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(u64::from(secs)));
    tick.tick().await;
    loop {
        tick.tick().await;
        let (ctx, path) = (ctx.clone(), path.clone());
        let saved = tokio::task::spawn_blocking(move || {
            persist::save(
                &ctx.store,
                &ctx.limiter,
                &path,
                false,
                persist::wall_now_ns(),
            )
        })
        .await;
        match saved {
            Ok(Ok(c)) => tracing::debug!("saved {} rate-limit states", c.states),
            Ok(Err(e)) => tracing::error!("rate-limit snapshot failed: {e}"),
            Err(e) => tracing::error!("rate-limit snapshot failed: {e}"),
        }
    }
}

/// Waits for a stop request: a signal or the `shutdown` command.
pub async fn wait_for_stop(ctx: &Context) -> std::io::Result<StopKind> {
    let mut term = signal(SignalKind::terminate())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    Ok(tokio::select! {
        _ = ctx.shutdown.notified() => {
            if ctx.stop_is_graceful() { StopKind::Graceful } else { StopKind::Now }
        }
        _ = tokio::signal::ctrl_c() => StopKind::Now,
        _ = term.recv() => StopKind::Now,
        _ = usr1.recv() => StopKind::Graceful,
    })
}

/// Lets every connection answer what it has read and close; returns once none is left, or
/// after [`DRAIN`].
pub async fn drain(ctx: &Context) {
    ctx.conns.shutdown_reads();
    let deadline = tokio::time::Instant::now() + DRAIN;
    while ctx.stats.curr_connections.load(Ordering::Acquire) > 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a stop does after the connections: the graceful save and the pid file.
pub fn finish(ctx: &Context, kind: StopKind) -> std::io::Result<()> {
    if kind == StopKind::Graceful {
        crate::logging::wire(0, format_args!("Gracefully stopping"));
        if let Some(path) = &ctx.config.memory_file {
            let c = persist::save(&ctx.store, &ctx.limiter, path, true, persist::wall_now_ns())?;
            tracing::info!(
                "saved {} items and {} rate-limit states to {}",
                c.items,
                c.states,
                path.display()
            );
        }
    }
    if let Some(pid) = &ctx.config.pid_file {
        let _ = std::fs::remove_file(pid);
    }
    if kind == StopKind::Now && ctx.stats.verbosity.load(Ordering::Relaxed) >= 1 {
        crate::logging::wire(1, format_args!("Exiting normally"));
    }
    Ok(())
}
