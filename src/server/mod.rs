//! The network side: listeners (TCP, unix socket), the connection limit, the connection loop
//! ([`conn`]) with its protocol sessions ([`text`], [`binary`]) and executors ([`dispatch`],
//! [`meta`]), background housekeeping, and shutdown. It moves bytes and owns connections.

pub mod auth;
pub mod binary;
pub mod conn;
#[cfg(test)]
mod conn_tests;
pub mod decision;
pub mod dispatch;
pub mod exec;
pub mod lifecycle;
pub mod listener;
pub mod meta;
pub mod metrics_http;
pub mod output;
pub mod process;
pub mod stats_cmd;
pub mod text;
pub mod transport;
pub mod udp;
pub mod verbose;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::net::{TcpListener, TcpSocket, UnixListener};
use tokio::sync::{Notify, Semaphore};

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::limit_stats::LimitStats;
use crate::limiter::{Limiter, LimiterConfig};
use crate::ratelimit::policy::Policies;
use crate::stats::{ServerStats, Stat};
use crate::store::{Store, StoreConfig};

/// Everything a connection needs, shared by all of them.
pub struct Context {
    /// The configuration the server started with.
    pub config: Config,
    /// The item store.
    pub store: Store,
    /// Rate-limit states, apart from the items.
    pub limiter: Limiter,
    /// Relative second (the store's clock) of a delayed `flush_all` the limiter still owes
    /// (0 = none).
    limiter_flush_at: AtomicU32,
    /// Server counters.
    pub stats: ServerStats,
    /// Rate-limit counters per policy and per key prefix.
    pub limit_stats: LimitStats,
    /// Open connections, for `stats conns`.
    pub conns: ConnRegistry,
    /// Start time, for `uptime`.
    pub started: Instant,
    /// Named rate-limit policies (replaced whole on reload).
    pub policies: RwLock<Arc<Policies>>,
    /// Users of ASCII authentication (`-Y`); `None` when off.
    pub auth: Option<auth::AuthFile>,
    /// Signalled once to stop the server.
    pub shutdown: Notify,
    stopping: AtomicBool,
    /// The stop asked for saves to the `-e` file (`shutdown graceful`).
    graceful: AtomicBool,
}

impl Context {
    /// A context for `config`, with a store and a limiter reading `clock`.
    pub fn new(config: Config, clock: SharedClock) -> Self {
        Context::with_seeds(config, clock, None)
    }

    /// [`Context::new`] with the limiter's hash seeds given (those of a snapshot to restore).
    pub fn with_seeds(config: Config, clock: SharedClock, seeds: Option<[u64; 8]>) -> Self {
        let store = Store::new(&store_config(&config), clock.clone());
        let limiter = match seeds {
            Some(s) => Limiter::with_seeds(limiter_config(&config), clock, s),
            None => Limiter::new(limiter_config(&config), clock),
        };
        Context {
            config,
            store,
            limiter,
            limiter_flush_at: AtomicU32::new(0),
            stats: ServerStats::default(),
            limit_stats: LimitStats::default(),
            conns: ConnRegistry::default(),
            started: Instant::now(),
            policies: RwLock::new(Arc::new(Policies::default())),
            auth: None,
            shutdown: Notify::new(),
            stopping: AtomicBool::new(false),
            graceful: AtomicBool::new(false),
        }
        .with_detail()
    }

    fn with_detail(self) -> Self {
        self.stats.detail.set_enabled(self.config.detail_enabled);
        self.stats
            .verbosity
            .store(u32::from(self.config.verbosity), Ordering::Relaxed);
        self
    }

    /// A context on the system clock, for unit tests of the request path.
    pub fn for_tests(config: Config) -> Self {
        Context::new(config, Arc::new(SystemClock::new()))
    }

    /// Loads the policy file named by `--policies` (if any) in place of the current policies.
    /// A file that cannot be read or parsed, or that defines no policy (an empty or truncated
    /// file), is refused: the current policies stay and the error (naming the file) says why.
    /// Live subjects of a policy whose algorithm changed start afresh (see
    /// [`crate::ratelimit::Limit::from_policy`]).
    pub fn reload_policies(&self) -> Result<usize, String> {
        let Some(path) = &self.config.policies else {
            return Ok(0);
        };
        let mut p = Policies::load(path)?;
        p.assign_rows(|name| self.limit_stats.policies.row(name));
        let n = p.len();
        *self.policies.write() = Arc::new(p);
        Ok(n)
    }

    /// `flush_all [delay]`: drops every item and every rate-limit state, now or when the
    /// delay (an exptime) is due.
    pub fn flush_all(&self, delay: i64) {
        self.store.flush_all(delay);
        if delay == 0 {
            self.limiter.flush();
        } else {
            let at = self.store.rel_exptime(delay);
            self.limiter_flush_at.store(at.max(1), Ordering::Release);
        }
    }

    /// Background work: expired items and rate-limit states freed in bounded batches, and a
    /// delayed `flush_all` carried out on the limiter when due.
    pub fn housekeep(&self) {
        self.store.housekeep(1024);
        self.limiter.housekeep(256);
        let at = self.limiter_flush_at.load(Ordering::Acquire);
        if at != 0
            && at <= self.store.now()
            && self
                .limiter_flush_at
                .compare_exchange(at, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.limiter.flush();
        }
    }

    /// Asks the server to stop (`graceful`: as SIGUSR1 does, saving to the `-e` file).
    pub fn request_stop(&self, graceful: bool) {
        self.graceful.store(graceful, Ordering::Release);
        self.stopping.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
        self.shutdown.notify_one();
    }

    /// True when the stop asked for is a graceful one.
    pub fn stop_is_graceful(&self) -> bool {
        self.graceful.load(Ordering::Acquire)
    }

    /// True once a shutdown was requested.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}

/// Limiter sizing and policy from the command line.
pub fn limiter_config(c: &Config) -> LimiterConfig {
    LimiterConfig {
        memory_limit: c.ratelimit_memory,
        evict: c.ratelimit_evict,
    }
}

/// Store sizing from the command line.
pub fn store_config(c: &Config) -> StoreConfig {
    StoreConfig {
        memory_limit: c.memory_limit,
        max_item_size: c.max_item_size,
        factor: c.factor,
        min_chunk: c.min_chunk,
        slab_chunk_max: c.slab_chunk_max.min(c.max_item_size.max(1)),
        page_size: c.slab_page_size.max(c.max_item_size),
        use_cas: c.use_cas,
        no_evict: c.no_evict,
        shards: (c.threads * 16).next_power_of_two().clamp(16, 1024),
    }
}

/// One open connection, as `stats conns` shows it.
#[derive(Debug)]
pub struct ConnEntry {
    addr: String,
    listen_addr: String,
    /// Second (since start) of the last command.
    pub last_cmd: AtomicU64,
}

/// The open connections and listeners, keyed by file descriptor as memcached's are.
#[derive(Debug, Default)]
pub struct ConnRegistry {
    conns: Mutex<BTreeMap<i32, Arc<ConnEntry>>>,
    listeners: Mutex<BTreeMap<i32, String>>,
}

impl ConnRegistry {
    fn add_listener(&self, fd: i32, addr: String) {
        self.listeners.lock().insert(fd, addr);
    }

    /// Registers a connection.
    pub fn add(&self, fd: i32, addr: String, listen_addr: String) -> Arc<ConnEntry> {
        let e = Arc::new(ConnEntry {
            addr,
            listen_addr,
            last_cmd: AtomicU64::new(0),
        });
        self.conns.lock().insert(fd, e.clone());
        e
    }

    /// Forgets a connection.
    pub fn remove(&self, fd: i32) {
        self.conns.lock().remove(&fd);
    }

    /// Shuts the reading side of every open connection: each answers the requests it has
    /// read, then sees the end of its input and closes. (A connection leaves the registry
    /// before its socket is closed, so under this lock every descriptor is still its own.)
    pub fn shutdown_reads(&self) {
        for fd in self.conns.lock().keys() {
            let _ = nix::sys::socket::shutdown(*fd, nix::sys::socket::Shutdown::Read);
        }
    }

    /// `stats conns` lines.
    pub fn report(&self) -> Vec<Stat> {
        let mut out = Vec::new();
        for (fd, addr) in self.listeners.lock().iter() {
            out.push((format!("{fd}:addr"), addr.clone()));
            out.push((format!("{fd}:state"), "conn_listening".into()));
            out.push((format!("{fd}:secs_since_last_cmd"), "0".into()));
        }
        for (fd, c) in self.conns.lock().iter() {
            out.push((format!("{fd}:addr"), c.addr.clone()));
            out.push((format!("{fd}:listen_addr"), c.listen_addr.clone()));
            out.push((format!("{fd}:state"), "conn_parse_cmd".into()));
            out.push((format!("{fd}:secs_since_last_cmd"), "0".into()));
        }
        out
    }
}

/// Runs the server until `shutdown` (or SIGINT/SIGTERM). Returns after the listeners close.
pub async fn run(config: Config) -> std::io::Result<()> {
    let auth = match &config.auth_file {
        Some(path) => Some(auth::AuthFile::load(path).map_err(std::io::Error::other)?),
        None => None,
    };
    let mut ctx =
        lifecycle::start(config, Arc::new(SystemClock::new())).map_err(std::io::Error::other)?;
    ctx.auth = auth;
    let ctx = Arc::new(ctx);
    ctx.reload_policies().map_err(std::io::Error::other)?;
    if ctx.config.sasl && ctx.config.verbosity >= 1 {
        crate::logging::wire(1, format_args!("Initialized SASL."));
    }
    verbose::slab_classes(&ctx);
    let limit = Arc::new(Semaphore::new(ctx.config.max_connections));
    let mut tasks = Vec::new();
    // Bound before the clients' listeners, so it answers once they do.
    let metrics = match ctx.config.metrics {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| std::io::Error::new(e.kind(), format!("--metrics {addr}: {e}")))?;
            tracing::info!("metrics on http://{addr}/metrics");
            Some(listener)
        }
        None => None,
    };

    if let Some(path) = ctx.config.unix_socket.clone() {
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(ctx.config.unix_mask))?;
        use std::os::fd::AsRawFd;
        ctx.conns
            .add_listener(listener.as_raw_fd(), format!("unix:{}", path.display()));
        verbose::listening(&ctx, listener.as_raw_fd(), false);
        tasks.push(tokio::spawn(listener::accept_unix(
            listener,
            ctx.clone(),
            limit.clone(),
        )));
    } else if ctx.config.port != 0 {
        for entry in &ctx.config.listen {
            let port = entry.port.unwrap_or(ctx.config.port);
            for addr in tokio::net::lookup_host((entry.bind_host(), port)).await? {
                let socket = if addr.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                socket.set_reuseaddr(true)?;
                socket.set_nodelay(true)?;
                socket.bind(addr)?;
                let listener: TcpListener = socket.listen(ctx.config.backlog)?;
                use std::os::fd::AsRawFd;
                ctx.conns
                    .add_listener(listener.as_raw_fd(), format!("tcp:{addr}"));
                verbose::listening(&ctx, listener.as_raw_fd(), false);
                tracing::info!("listening on {addr}");
                tasks.push(tokio::spawn(listener::accept_tcp(
                    listener,
                    ctx.clone(),
                    limit.clone(),
                )));
            }
        }
    }
    if ctx.config.udp_port != 0 && ctx.config.unix_socket.is_none() {
        for entry in &ctx.config.listen {
            for addr in tokio::net::lookup_host((entry.bind_host(), ctx.config.udp_port)).await? {
                let socket = tokio::net::UdpSocket::bind(addr).await?;
                use std::os::fd::AsRawFd;
                verbose::listening(&ctx, socket.as_raw_fd(), true);
                tracing::info!("listening on udp {addr}");
                tasks.push(tokio::spawn(udp::serve_udp(socket, ctx.clone())));
            }
        }
    }
    if tasks.is_empty() {
        return Err(std::io::Error::other("nothing to listen on"));
    }
    if let Some(listener) = metrics {
        tasks.push(tokio::spawn(metrics_http::serve(listener, ctx.clone())));
    }

    let housekeeper = {
        let ctx = ctx.clone();
        std::thread::Builder::new()
            .name("housekeeper".into())
            .spawn(move || {
                while !ctx.is_stopping() {
                    std::thread::sleep(Duration::from_millis(100));
                    ctx.housekeep();
                }
            })?
    };

    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let reloader = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            while sighup.recv().await.is_some() {
                if let Err(e) = crate::logging::reopen() {
                    tracing::error!("log file reopen failed, keeping the old file: {e}");
                }
                match ctx.reload_policies() {
                    Ok(n) => tracing::info!("reloaded {n} policies"),
                    Err(e) => {
                        tracing::error!("policy reload failed, keeping the old policies: {e}")
                    }
                }
            }
        })
    };
    tasks.push(reloader);
    tasks.push(tokio::spawn(lifecycle::snapshots(ctx.clone())));
    let kind = lifecycle::wait_for_stop(&ctx).await?;
    // Stop accepting (the accept tasks own the listeners), then let the connections finish.
    for t in tasks {
        t.abort();
    }
    lifecycle::drain(&ctx).await;
    ctx.request_stop(kind == lifecycle::StopKind::Graceful);
    let _ = housekeeper.join();
    if let Some(path) = &ctx.config.unix_socket {
        let _ = std::fs::remove_file(path);
    }
    lifecycle::finish(&ctx, kind)
}
