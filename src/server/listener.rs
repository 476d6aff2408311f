//! Accept loops for TCP and unix listeners: the `-c` connection limit, and what happens when
//! the process runs out of file descriptors.
//!
//! On EMFILE/ENFILE a listener pauses, as memcached does (`listen_disabled_num`,
//! `accepting_conns`), and checks every 10 ms whether a descriptor is free again. While
//! paused it answers the clients waiting in the backlog instead of leaving them hanging: it
//! keeps one spare descriptor (`/dev/null`) open, and to answer a client it closes the spare,
//! accepts the client on the freed descriptor, writes `ERROR Too many open connections`,
//! closes it and reopens the spare.

use std::fs::File;
use std::future::poll_fn;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use super::transport::Transport;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;

use super::verbose::strerror;
use super::Context;
use crate::logging::wire;
use crate::stats::ServerStats;

/// The line a client gets when it cannot be served (memcached's, for a client over `-c`).
pub const TOO_MANY: &[u8] = b"ERROR Too many open connections\r\n";
/// How often a paused listener checks for a free descriptor (memcached polls every 10 ms).
const PAUSE: Duration = Duration::from_millis(10);
/// Most waiting clients answered per pause round, so a flood cannot hold the loop.
const ANSWER_BATCH: usize = 64;
/// The file held open as the spare descriptor.
const SPARE_PATH: &str = "/dev/null";

/// Accepts TCP connections until the task is aborted.
pub async fn accept_tcp(listener: TcpListener, ctx: Arc<Context>, limit: Arc<Semaphore>) {
    let local = listener
        .local_addr()
        .map(|a| format!("tcp:{a}"))
        .unwrap_or_default();
    accept_loop(listener, local, ctx, limit).await;
}

/// Accepts unix socket connections until the task is aborted.
pub async fn accept_unix(listener: UnixListener, ctx: Arc<Context>, limit: Arc<Semaphore>) {
    accept_loop(listener, "unix".into(), ctx, limit).await;
}

/// A listening socket the accept loop drives.
trait Listen {
    /// The accepted connection.
    type Stream: Transport + Unpin + 'static;
    /// Polls for one connection: the stream and its peer as `stats conns` names it.
    fn poll_accept(&self, cx: &mut TaskContext<'_>) -> Poll<io::Result<(Self::Stream, String)>>;
    /// Writes [`TOO_MANY`] without waiting (a fresh socket's send buffer is empty), then
    /// closes the stream: a client that never reads cannot hold anything.
    fn reject(stream: Self::Stream);
}

impl Listen for TcpListener {
    type Stream = TcpStream;

    fn poll_accept(&self, cx: &mut TaskContext<'_>) -> Poll<io::Result<(TcpStream, String)>> {
        TcpListener::poll_accept(self, cx).map_ok(|(stream, peer)| {
            let _ = stream.set_nodelay(true);
            (stream, format!("tcp:{peer}"))
        })
    }

    fn reject(stream: TcpStream) {
        if let Ok(s) = stream.into_std() {
            let _ = (&s).write(TOO_MANY);
        }
    }
}

impl Listen for UnixListener {
    type Stream = UnixStream;

    fn poll_accept(&self, cx: &mut TaskContext<'_>) -> Poll<io::Result<(UnixStream, String)>> {
        UnixListener::poll_accept(self, cx).map_ok(|(stream, _)| (stream, "unix".into()))
    }

    fn reject(stream: UnixStream) {
        if let Ok(s) = stream.into_std() {
            let _ = (&s).write(TOO_MANY);
        }
    }
}

/// True for the errors that mean "no descriptor (or kernel memory) for a new socket": the
/// listener pauses on these instead of retrying at once.
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

async fn accept_loop<L: Listen>(
    listener: L,
    local: String,
    ctx: Arc<Context>,
    limit: Arc<Semaphore>,
) {
    let mut spare = File::open(SPARE_PATH).ok();
    let mut failed_before = false;
    loop {
        match poll_fn(|cx| listener.poll_accept(cx)).await {
            Ok((stream, peer)) => {
                failed_before = false;
                spawn_conn::<L>(stream, peer, local.clone(), &ctx, &limit);
            }
            Err(e) if out_of_descriptors(&e) => {
                failed_before = false;
                // memcached's lines: perror's always, its own at -v.
                wire(0, format_args!("accept4(): {}", strerror(&e)));
                if ctx.stats.verbosity.load(Ordering::Relaxed) >= 1 {
                    wire(1, format_args!("Too many open connections"));
                }
                pause(&listener, &mut spare, &ctx.stats).await;
            }
            Err(e) => {
                // A per-connection failure (ECONNABORTED, EPROTO, EINTR...): the next accept
                // is usually fine. One that repeats is retried at the pause rate, not spun on.
                wire(0, format_args!("accept4(): {}", strerror(&e)));
                wire(0, format_args!("accept(): {}", strerror(&e)));
                if failed_before {
                    tokio::time::sleep(PAUSE).await;
                }
                failed_before = true;
            }
        }
    }
}

/// Counts a listener as paused while alive (`accepting_conns` 0, `listen_disabled_num`),
/// and adds the time paused when dropped, even if the accept task is aborted meanwhile.
struct Paused<'a> {
    stats: &'a ServerStats,
    since: Instant,
}

impl<'a> Paused<'a> {
    fn new(stats: &'a ServerStats) -> Self {
        ServerStats::add(&stats.listen_disabled_num, 1);
        ServerStats::add(&stats.listeners_paused, 1);
        Paused {
            stats,
            since: Instant::now(),
        }
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        let us = u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX);
        ServerStats::add(&self.stats.time_in_listen_disabled_us, us);
        self.stats.listeners_paused.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Out of descriptors: answer the waiting clients, then wait until a descriptor is free.
async fn pause<L: Listen>(listener: &L, spare: &mut Option<File>, stats: &ServerStats) {
    let _paused = Paused::new(stats);
    loop {
        let answered = answer_waiting(listener, spare).await;
        ServerStats::add(&stats.rejected_connections, answered);
        tokio::time::sleep(PAUSE).await;
        if descriptor_free(spare) {
            return;
        }
    }
}

/// Lends the spare descriptor to answer up to [`ANSWER_BATCH`] clients waiting in the
/// backlog with [`TOO_MANY`]; returns how many were answered.
async fn answer_waiting<L: Listen>(listener: &L, spare: &mut Option<File>) -> u64 {
    let mut answered = 0;
    for _ in 0..ANSWER_BATCH {
        let Some(file) = spare.take() else {
            break;
        };
        drop(file);
        let waiting = poll_fn(|cx| match listener.poll_accept(cx) {
            Poll::Ready(Ok((stream, _))) => Poll::Ready(Some(stream)),
            Poll::Ready(Err(_)) | Poll::Pending => Poll::Ready(None),
        })
        .await;
        let got_one = waiting.map(L::reject).is_some();
        *spare = File::open(SPARE_PATH).ok();
        if !got_one {
            break;
        }
        answered += 1;
    }
    if spare.is_none() {
        *spare = File::open(SPARE_PATH).ok();
    }
    answered
}

/// True when a descriptor can be opened beside the spare (or the check itself cannot be made,
/// so the caller goes back to `accept`, which pauses again if it must). Re-arms a lost spare.
fn descriptor_free(spare: &mut Option<File>) -> bool {
    match File::open(SPARE_PATH) {
        Ok(f) if spare.is_none() => {
            *spare = Some(f);
            false
        }
        Ok(_) => true,
        Err(e) => !out_of_descriptors(&e),
    }
}

/// Serves `stream` within the `-c` limit, or answers [`TOO_MANY`] and closes it.
fn spawn_conn<L: Listen>(
    stream: L::Stream,
    peer: String,
    local: String,
    ctx: &Arc<Context>,
    limit: &Arc<Semaphore>,
) {
    let Ok(permit) = limit.clone().try_acquire_owned() else {
        ServerStats::add(&ctx.stats.rejected_connections, 1);
        L::reject(stream);
        return;
    };
    let ctx = ctx.clone();
    let fd = stream.as_raw_fd();
    tokio::spawn(async move {
        ServerStats::add(&ctx.stats.curr_connections, 1);
        ServerStats::add(&ctx.stats.total_connections, 1);
        ctx.conns.add(fd, peer, local);
        super::conn::serve(&stream, &ctx).await;
        ctx.conns.remove(fd);
        ctx.stats.curr_connections.fetch_sub(1, Ordering::Relaxed);
        drop(permit);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn load(c: &std::sync::atomic::AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    #[test]
    fn descriptor_exhaustion_is_told_apart_from_per_connection_errors() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(out_of_descriptors(&io::Error::from_raw_os_error(errno)));
        }
        for errno in [libc::ECONNABORTED, libc::EINTR, libc::EPROTO, libc::EPERM] {
            assert!(!out_of_descriptors(&io::Error::from_raw_os_error(errno)));
        }
        assert!(!out_of_descriptors(&io::Error::other("no errno")));
    }

    async fn read_all(mut s: tokio::net::TcpStream) -> Vec<u8> {
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn a_client_over_the_limit_is_answered_and_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ctx = Arc::new(Context::for_tests(Config::default()));
        let task = tokio::spawn(accept_tcp(
            listener,
            ctx.clone(),
            Arc::new(Semaphore::new(0)),
        ));
        // The client never writes; it must still get the line and an EOF.
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert_eq!(read_all(client).await, TOO_MANY);
        assert_eq!(load(&ctx.stats.rejected_connections), 1);
        assert_eq!(load(&ctx.stats.total_connections), 0);
        task.abort();
    }

    #[tokio::test]
    async fn a_client_within_the_limit_is_served() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ctx = Arc::new(Context::for_tests(Config::default()));
        let task = tokio::spawn(accept_tcp(
            listener,
            ctx.clone(),
            Arc::new(Semaphore::new(1)),
        ));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"version\r\nquit\r\n").await.unwrap();
        let reply = read_all(client).await;
        assert!(reply.starts_with(b"VERSION "), "{reply:?}");
        assert_eq!(load(&ctx.stats.rejected_connections), 0);
        task.abort();
    }

    #[tokio::test]
    async fn waiting_clients_are_answered_through_the_spare_descriptor() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let a = tokio::net::TcpStream::connect(addr).await.unwrap();
        let b = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut spare = File::open(SPARE_PATH).ok();
        assert!(spare.is_some());
        // Both connections sit in the backlog (connect completes before accept); the
        // readiness may not be seen at once, so give the reactor a few turns.
        let mut answered = 0;
        for _ in 0..100 {
            answered += answer_waiting(&listener, &mut spare).await;
            if answered == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(answered, 2);
        assert!(spare.is_some(), "the spare descriptor is reopened");
        assert_eq!(read_all(a).await, TOO_MANY);
        assert_eq!(read_all(b).await, TOO_MANY);
        // Nobody left: nothing answered, the spare is still held.
        assert_eq!(answer_waiting(&listener, &mut spare).await, 0);
        assert!(spare.is_some());
    }

    #[test]
    fn without_a_spare_nothing_is_answered_and_the_spare_is_rearmed() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut spare = None;
            assert_eq!(answer_waiting(&listener, &mut spare).await, 0);
            assert!(spare.is_some());
        });
    }

    #[test]
    fn a_free_descriptor_ends_the_pause_and_a_lost_spare_is_rearmed_first() {
        let mut spare = None;
        assert!(
            !descriptor_free(&mut spare),
            "first the spare is taken back"
        );
        assert!(spare.is_some());
        assert!(descriptor_free(&mut spare));
    }

    #[test]
    fn a_pause_is_counted_and_timed() {
        let stats = ServerStats::default();
        {
            let _p = Paused::new(&stats);
            assert_eq!(load(&stats.listeners_paused), 1);
            assert_eq!(load(&stats.listen_disabled_num), 1);
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(load(&stats.listeners_paused), 0);
        assert_eq!(load(&stats.listen_disabled_num), 1);
        assert!(load(&stats.time_in_listen_disabled_us) >= 2000);
    }
}
