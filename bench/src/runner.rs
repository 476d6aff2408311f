//! Connections, pipelining, the request budget, latency histograms and progress.
//!
//! Closed loop: each connection keeps up to `pipeline` requests in flight, writes new ones as
//! soon as replies come back, and stops at whichever comes first, the request budget (shared
//! by all connections) or the deadline; requests in flight at the deadline are still awaited
//! and checked.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::codec::{Check, Codec, OpKind, Outcome, Protocol, Spec, Workload};
use crate::keys::{KeyDist, Rng};
use crate::probe::{count_items, held_stat, load_scripts, watch_expiry};
use crate::procfs;
use crate::report::{Latency, Phase, ServerResult};

/// At most this many distinct error messages are kept per server.
const MAX_SAMPLES: usize = 8;
/// Pipeline depth of the (untimed) loading phase.
const PREFILL_PIPELINE: usize = 32;

/// One server to benchmark.
#[derive(Debug, Clone)]
pub struct Target {
    /// Display name.
    pub name: String,
    /// host:port.
    pub addr: String,
    /// Its pid, for CPU time and RSS.
    pub pid: Option<u32>,
    /// Wire protocol.
    pub protocol: Protocol,
    /// Workload.
    pub workload: Workload,
}

/// The shape of the load.
#[derive(Debug, Clone)]
pub struct Load {
    /// Concurrent connections.
    pub connections: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Distinct keys.
    pub keys: u64,
    /// Key popularity.
    pub dist: KeyDist,
    /// Share of sets in the getset workload.
    pub set_share: f64,
    /// Time bound.
    pub duration: Option<Duration>,
    /// Request bound.
    pub requests: Option<u64>,
    /// PRNG seed.
    pub seed: u64,
    /// Silence after which a connection gives up.
    pub timeout: Duration,
    /// Load keys before getset / text incr.
    pub prefill: bool,
    /// Poll the item count after a fill for up to this long.
    pub watch_expiry: Option<Duration>,
    /// Show a progress bar (only ever drawn on a terminal).
    pub progress: bool,
}

/// State shared by the connections of one phase.
struct Shared {
    /// Requests handed out so far.
    issued: AtomicU64,
    /// Request budget.
    limit: u64,
    /// No new request after this.
    deadline: Instant,
    /// Replies checked so far (progress).
    done: AtomicU64,
}

impl Shared {
    /// Takes up to `want` requests from the budget: (number of the first, how many).
    fn take(&self, want: u64) -> (u64, u64) {
        if Instant::now() >= self.deadline {
            return (0, 0);
        }
        let before = self.issued.fetch_add(want, Ordering::Relaxed);
        (before, want.min(self.limit.saturating_sub(before)))
    }
}

/// Picks the next request.
struct OpGen {
    workload: Workload,
    rng: Rng,
    dist: KeyDist,
    keys: u64,
    set_share: f64,
    /// The decision of `rl-fill`: ratecached's, or the Redis fixed-window script.
    rl_op: OpKind,
    /// Fill: the next key is the request's number in the budget.
    shared: Arc<Shared>,
}

impl OpGen {
    fn next(&mut self, ticket: u64) -> (OpKind, u64) {
        let key = |g: &mut OpGen| g.dist.pick(&mut g.rng, g.keys);
        match self.workload {
            Workload::Getset => {
                let kind = if self.rng.next_f64() < self.set_share {
                    OpKind::Set
                } else {
                    OpKind::Get
                };
                (kind, key(self))
            }
            Workload::Incr => (OpKind::Incr, key(self)),
            Workload::Ratelimit => (OpKind::RateLimit, key(self)),
            Workload::RedisFixed => (OpKind::RedisFixed, key(self)),
            Workload::RedisSliding => (OpKind::RedisSliding, key(self)),
            Workload::Fill => (OpKind::Set, ticket),
            Workload::RlFill => (self.rl_op, ticket),
        }
    }
}

/// What one connection (or, merged, one phase) saw.
#[derive(Debug)]
pub struct Tally {
    /// Latency of every checked reply, in nanoseconds.
    pub hist: Histogram<u64>,
    /// Replies checked (right or wrong) plus requests lost with a failed connection.
    pub ops: u64,
    /// Wrong replies and lost requests.
    pub errors: u64,
    /// Distinct error messages (first few).
    pub samples: Vec<String>,
    /// Correct replies by kind: hits, misses, stored, counters, allowed, denied.
    pub outcomes: [u64; 6],
}

impl Tally {
    fn new() -> Tally {
        Tally {
            hist: Histogram::new_with_bounds(1, 120_000_000_000, 3).expect("histogram bounds"),
            ops: 0,
            errors: 0,
            samples: Vec::new(),
            outcomes: [0; 6],
        }
    }

    /// `n` requests lost (never answered): they count as requests and as errors.
    fn error(&mut self, n: u64, why: String) {
        self.ops += n;
        self.wrong(n, why);
    }

    /// `n` answered requests had wrong replies.
    fn wrong(&mut self, n: u64, why: String) {
        self.errors += n;
        if self.samples.len() < MAX_SAMPLES && !self.samples.contains(&why) {
            self.samples.push(why);
        }
    }

    fn merge(&mut self, o: Tally) {
        self.hist.add(&o.hist).expect("same histogram bounds");
        self.ops += o.ops;
        self.errors += o.errors;
        for s in o.samples {
            if self.samples.len() < MAX_SAMPLES && !self.samples.contains(&s) {
                self.samples.push(s);
            }
        }
        for (a, b) in self.outcomes.iter_mut().zip(o.outcomes) {
            *a += b;
        }
    }

    fn count(&mut self, o: Outcome) {
        let i = match o {
            Outcome::Hit => 0,
            Outcome::Miss => 1,
            Outcome::Stored => 2,
            Outcome::Counter(_) => 3,
            Outcome::Allowed => 4,
            Outcome::Denied => 5,
        };
        self.outcomes[i] += 1;
    }
}

/// Drives one connection until the budget or the deadline runs out.
async fn drive(
    mut stream: TcpStream,
    mut codec: Codec,
    mut gen: OpGen,
    pipeline: usize,
    timeout: Duration,
) -> Tally {
    let shared = gen.shared.clone();
    let mut t = Tally::new();
    let mut wbuf = BytesMut::with_capacity(16 << 10);
    let mut rbuf = BytesMut::with_capacity(64 << 10);
    let mut inflight: VecDeque<(crate::codec::Expect, Instant)> = VecDeque::with_capacity(pipeline);
    loop {
        let room = (pipeline - inflight.len()) as u64;
        if room > 0 {
            let (first, n) = shared.take(room);
            if n > 0 {
                let now = Instant::now();
                for i in 0..n {
                    let (kind, key) = gen.next(first + i);
                    inflight.push_back((codec.encode(kind, key, &mut wbuf), now));
                }
                if let Err(e) = stream.write_all(&wbuf).await {
                    t.error(inflight.len() as u64, format!("write: {e}"));
                    return t;
                }
                wbuf.clear();
            }
        }
        if inflight.is_empty() {
            return t;
        }
        rbuf.reserve(16 << 10);
        let read = tokio::time::timeout(timeout, stream.read_buf(&mut rbuf)).await;
        let now = Instant::now();
        match read {
            Ok(Ok(0)) => {
                t.error(
                    inflight.len() as u64,
                    "connection closed by the server".into(),
                );
                return t;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                t.error(inflight.len() as u64, format!("read: {e}"));
                return t;
            }
            Err(_) => {
                let why = format!("no reply within {:?}", timeout);
                t.error(inflight.len() as u64, why);
                return t;
            }
        }
        let mut checked = 0;
        while let Some((e, sent)) = inflight.front() {
            match codec.check(&rbuf, e) {
                Check::Incomplete => break,
                Check::Done { len, result } => {
                    rbuf.advance(len);
                    let _ = t
                        .hist
                        .record(now.duration_since(*sent).as_nanos().max(1) as u64);
                    t.ops += 1;
                    match result {
                        Ok(o) => t.count(o),
                        Err(why) => t.wrong(1, why),
                    }
                    inflight.pop_front();
                    checked += 1;
                }
                Check::Desync(why) => {
                    t.error(inflight.len() as u64, format!("stream out of step: {why}"));
                    shared.done.fetch_add(checked, Ordering::Relaxed);
                    return t;
                }
            }
        }
        shared.done.fetch_add(checked, Ordering::Relaxed);
    }
}

/// Runs one phase: `load.connections` connections with the given workload.
#[allow(clippy::too_many_arguments)]
async fn phase(
    target: &Target,
    spec: &Arc<Spec>,
    workload: Workload,
    load: &Load,
    pipeline: usize,
    limit: u64,
    duration: Duration,
    label: &str,
    seed: u64,
) -> (Tally, Duration) {
    let mut tally = Tally::new();
    let mut streams = Vec::with_capacity(load.connections);
    for _ in 0..load.connections {
        match connect(&target.addr).await {
            Ok(s) => streams.push(s),
            Err(e) => tally.wrong(1, format!("connect {}: {e}", target.addr)),
        }
    }
    if streams.is_empty() {
        return (tally, Duration::ZERO);
    }
    let start = Instant::now();
    let shared = Arc::new(Shared {
        issued: AtomicU64::new(0),
        limit,
        deadline: start + duration,
        done: AtomicU64::new(0),
    });
    let bar = progress_bar(load.progress, limit, duration, label);
    let ticker = {
        let (shared, bar) = (shared.clone(), bar.clone());
        let bounded_by_count = limit != u64::MAX;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let done = shared.done.load(Ordering::Relaxed);
                let el = start.elapsed();
                bar.set_position(if bounded_by_count {
                    done
                } else {
                    el.as_millis() as u64
                });
                bar.set_message(format!("{:.0} ops/s", done as f64 / el.as_secs_f64()));
            }
        })
    };
    let mut tasks = Vec::with_capacity(streams.len());
    for (i, stream) in streams.into_iter().enumerate() {
        let gen = OpGen {
            workload,
            rng: Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(i as u64)),
            dist: load.dist.clone(),
            keys: load.keys,
            set_share: load.set_share,
            rl_op: if spec.protocol == Protocol::Redis {
                OpKind::RedisFixed
            } else {
                OpKind::RateLimit
            },
            shared: shared.clone(),
        };
        let codec = Codec::new(spec.clone(), i as u32);
        tasks.push(tokio::spawn(drive(
            stream,
            codec,
            gen,
            pipeline,
            load.timeout,
        )));
    }
    for task in tasks {
        match task.await {
            Ok(t) => tally.merge(t),
            Err(e) => tally.error(0, format!("connection task failed: {e}")),
        }
    }
    let elapsed = start.elapsed();
    ticker.abort();
    bar.finish_and_clear();
    (tally, elapsed)
}

fn progress_bar(enabled: bool, limit: u64, duration: Duration, label: &str) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let len = if limit != u64::MAX {
        limit
    } else {
        duration.as_millis() as u64
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>24} [{bar:40}] {percent:>3}% {msg}")
            .expect("progress template")
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}

/// Connects to `addr` (5 s at most), with Nagle's algorithm off.
pub(crate) async fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    s.set_nodelay(true)?;
    Ok(s)
}

fn cpu(pid: Option<u32>) -> Option<u64> {
    pid.and_then(|p| procfs::cpu_micros(p).ok())
}

/// Benchmarks one server: setup (scripts, loading), the measured phase, and for a fill the
/// memory growth and, when asked, the expiry watch.
pub async fn run_target(target: &Target, load: &Load, base: &Spec) -> ServerResult {
    let mut spec = base.clone();
    spec.protocol = target.protocol;
    if spec.key_prefix.is_empty() {
        spec.key_prefix = crate::cli::default_prefix(target.workload)
            .as_bytes()
            .to_vec();
    }
    let mut setup_errors: Vec<String> = Vec::new();
    let scripted = matches!(
        target.workload,
        Workload::RedisFixed | Workload::RedisSliding | Workload::RlFill
    );
    if scripted && target.protocol == Protocol::Redis {
        match load_scripts(&target.addr).await {
            Ok((fixed, sliding)) => {
                spec.redis_fixed_sha = fixed;
                spec.redis_sliding_sha = sliding;
            }
            Err(e) => setup_errors.push(format!("SCRIPT LOAD: {e}")),
        }
    }
    let mut loading_samples = Vec::new();
    // Loading phase: getset needs its keys, text incr its counters (meta `ma N`, binary
    // incr and Redis INCR create them).
    let needs_prefill = load.prefill
        && (target.workload == Workload::Getset
            || (target.workload == Workload::Incr && target.protocol == Protocol::Text));
    let mut prefill = None;
    if needs_prefill {
        let mut pspec = spec.clone();
        pspec.ttl = 0;
        pspec.zero_values = target.workload == Workload::Incr;
        let pspec = Arc::new(pspec);
        let label = format!("{} load", target.name);
        let (t, el) = phase(
            target,
            &pspec,
            Workload::Fill,
            load,
            PREFILL_PIPELINE,
            load.keys,
            Duration::from_secs(300),
            &label,
            load.seed ^ 0xf111,
        )
        .await;
        loading_samples.extend(t.samples.iter().map(|s| format!("loading: {s}")));
        prefill = Some(Phase {
            ops: t.ops,
            errors: t.errors,
            elapsed_s: el.as_secs_f64(),
        });
    }
    let spec = Arc::new(spec);
    let is_fill = target.workload.fills();
    let limit = if is_fill {
        load.requests.unwrap_or(load.keys).min(load.keys)
    } else {
        load.requests.unwrap_or(u64::MAX)
    };
    let duration = load.duration.unwrap_or(Duration::from_secs(3600));
    let watch = target.workload == Workload::Fill && spec.ttl > 0 && load.watch_expiry.is_some();
    let stat = held_stat(target.workload);
    let items_before = if is_fill {
        match connect(&target.addr).await {
            Ok(mut s) => count_items(&mut s, target.protocol, stat).await.ok(),
            Err(_) => None,
        }
    } else {
        None
    };
    let rss_before = target.pid.and_then(|p| procfs::rss_bytes(p).ok());
    let cpu_before = cpu(target.pid);
    let gen_before = procfs::cpu_micros(std::process::id()).ok();
    let machine_before = procfs::machine_busy_micros().ok();
    let (tally, elapsed) = phase(
        target,
        &spec,
        target.workload,
        load,
        load.pipeline,
        limit,
        duration,
        &target.name,
        load.seed,
    )
    .await;
    let loaded_at = Instant::now();
    let cpu_after = cpu(target.pid);
    let gen_after = procfs::cpu_micros(std::process::id()).ok();
    let machine_after = procfs::machine_busy_micros().ok();
    let rss_after = target.pid.and_then(|p| procfs::rss_bytes(p).ok());
    let stored = tally.outcomes[2];
    // What the fill created: items stored, or subjects decided on (each one new).
    let created = if target.workload == Workload::RlFill {
        tally.outcomes[4] + tally.outcomes[5]
    } else {
        stored
    };
    // Bytes per item count the items the server still holds: a server that evicted during the
    // fill must not look smaller for it.
    let held = if is_fill && !watch {
        match connect(&target.addr).await {
            Ok(mut s) => count_items(&mut s, target.protocol, stat)
                .await
                .ok()
                .map(|n| n.saturating_sub(items_before.unwrap_or(0))),
            Err(_) => None,
        }
    } else {
        None
    };
    let per_item_count = match held {
        Some(h) if h < created => {
            eprintln!(
                "warning: {}: {created} items created but {h} held (evicted?): bytes per item are over the {h} held",
                target.name
            );
            h
        }
        _ => created,
    };
    let expiry = match load.watch_expiry {
        Some(bound) if watch => {
            let base = items_before.unwrap_or(0);
            Some(watch_expiry(target, spec.ttl, loaded_at, bound, base).await)
        }
        _ => None,
    };
    let h = &tally.hist;
    let us = |ns: u64| ns as f64 / 1000.0;
    let ops = tally.ops.max(1) as f64;
    let setup_failures = setup_errors.len() as u64;
    let mut samples = setup_errors;
    samples.extend(loading_samples);
    samples.extend(tally.samples.iter().cloned());
    ServerResult {
        name: target.name.clone(),
        addr: target.addr.clone(),
        pid: target.pid,
        protocol: target.protocol,
        workload: target.workload,
        connections: load.connections,
        pipeline: load.pipeline,
        ops: tally.ops,
        errors: tally.errors + setup_failures + prefill.as_ref().map_or(0, |p| p.errors),
        error_samples: samples,
        hits: tally.outcomes[0],
        misses: tally.outcomes[1],
        stored,
        counters: tally.outcomes[3],
        allowed: tally.outcomes[4],
        denied: tally.outcomes[5],
        elapsed_s: elapsed.as_secs_f64(),
        // A wrong or missing reply is not throughput.
        ops_per_sec: if elapsed.is_zero() {
            0.0
        } else {
            tally.ops.saturating_sub(tally.errors) as f64 / elapsed.as_secs_f64()
        },
        latency_us: Latency {
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        },
        server_cpu_s: match (cpu_before, cpu_after) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e6),
            _ => None,
        },
        server_cpu_us_per_op: match (cpu_before, cpu_after) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / ops),
            _ => None,
        },
        loadgen_cpu_us_per_op: match (gen_before, gen_after) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / ops),
            _ => None,
        },
        other_cpu_share: match (machine_before, machine_after, cpu_before, cpu_after) {
            (Some(m0), Some(m1), Some(c0), Some(c1)) if !elapsed.is_zero() => {
                let gen = gen_after
                    .zip(gen_before)
                    .map_or(0, |(b, a)| b.saturating_sub(a));
                let other =
                    m1.saturating_sub(m0) as f64 - c1.saturating_sub(c0) as f64 - gen as f64;
                Some((other / 1e6 / elapsed.as_secs_f64()).max(0.0))
            }
            _ => None,
        },
        rss_before,
        rss_after,
        rss_bytes_per_item: match (rss_before, rss_after) {
            (Some(a), Some(b)) if is_fill && per_item_count > 0 => {
                Some((b as f64 - a as f64) / per_item_count as f64)
            }
            _ => None,
        },
        items_held: held,
        prefill,
        expiry,
        curve: percentile_curve(h),
    }
}

/// (percentile, latency µs) points for the plot: 0 to 99.999 on a log-of-tail spacing.
fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut pts = Vec::new();
    // x = log10(1 / (1 - q)): 0 at the median's left, 1 at 90%, 2 at 99%, ...
    let steps = 100;
    for i in 0..=5 * steps {
        let x = i as f64 / steps as f64;
        let q = 1.0 - 10f64.powf(-x);
        pts.push((q * 100.0, h.value_at_quantile(q) as f64 / 1000.0));
    }
    pts.push((100.0, h.max() as f64 / 1000.0));
    pts
}
