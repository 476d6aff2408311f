//! Server-wide counters and the reports of the `stats` family, as name/value pairs with
//! memcached's field names (the protocol encoders turn pairs into wire lines).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::config::{Config, ProtocolChoice};
use crate::limiter::LimiterStats;
use crate::store::Store;

/// One `stats` line.
pub type Stat = (String, String);

/// Counters of the server (connections, bytes); item counters live in the store's shards.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Open client connections.
    pub curr_connections: AtomicU64,
    /// Connections ever accepted.
    pub total_connections: AtomicU64,
    /// Connections refused over `-c`, or answered with an error while out of descriptors.
    pub rejected_connections: AtomicU64,
    /// Times a listener paused accepting because the process ran out of descriptors.
    pub listen_disabled_num: AtomicU64,
    /// Microseconds listeners spent paused (added when a pause ends).
    pub time_in_listen_disabled_us: AtomicU64,
    /// Listeners paused right now; `accepting_conns` is 1 while this is 0.
    pub listeners_paused: AtomicU64,
    /// Bytes read from clients.
    pub bytes_read: AtomicU64,
    /// Bytes written to clients.
    pub bytes_written: AtomicU64,
    /// `flush_all` commands.
    pub cmd_flush: AtomicU64,
    /// Meta commands.
    pub cmd_meta: AtomicU64,
    /// Authentication attempts.
    pub auth_cmds: AtomicU64,
    /// Failed authentications.
    pub auth_errors: AtomicU64,
    /// Connections closed by `-o idle_timeout`.
    pub idle_kicks: AtomicU64,
    /// Times a connection gave way to others after `-R` requests.
    pub conn_yields: AtomicU64,
    /// `ratelimit` family commands.
    pub cmd_ratelimit: AtomicU64,
    /// Rate-limit requests allowed.
    pub ratelimit_allowed: AtomicU64,
    /// Rate-limit requests denied.
    pub ratelimit_denied: AtomicU64,
    /// Rate-limit requests answered with an error.
    pub ratelimit_errors: AtomicU64,
    /// Current verbosity (changed by `verbosity`).
    pub verbosity: AtomicU32,
    /// Per-prefix counters for `stats detail`.
    pub detail: PrefixStats,
}

impl ServerStats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Zeroes what `stats reset` resets.
    pub fn reset(&self) {
        for c in [
            &self.total_connections,
            &self.rejected_connections,
            &self.listen_disabled_num,
            &self.time_in_listen_disabled_us,
            &self.bytes_read,
            &self.bytes_written,
            &self.cmd_flush,
            &self.cmd_meta,
            &self.auth_cmds,
            &self.auth_errors,
            &self.idle_kicks,
            &self.conn_yields,
            &self.cmd_ratelimit,
            &self.ratelimit_allowed,
            &self.ratelimit_denied,
            &self.ratelimit_errors,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.detail.clear();
    }
}

/// Per-key-prefix counters kept while `stats detail on`.
#[derive(Debug, Default)]
pub struct PrefixStats {
    enabled: AtomicBool,
    map: Mutex<PrefixTable>,
}

/// Prefix counters in first-seen order (the order `stats detail dump` lists them).
#[derive(Debug, Default)]
struct PrefixTable {
    index: HashMap<Vec<u8>, usize>,
    rows: Vec<(Vec<u8>, [u64; 4])>,
}

/// What a detail record counts.
#[derive(Debug, Clone, Copy)]
pub enum PrefixOp {
    /// A get (hit or miss).
    Get(bool),
    /// A store.
    Set,
    /// A delete.
    Delete,
}

impl PrefixStats {
    /// Turns recording on or off.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// True while recording.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Records an operation on `key` if it has a prefix (bytes before `delimiter`).
    pub fn record(&self, key: &[u8], delimiter: u8, op: PrefixOp) {
        let Some(pos) = key.iter().position(|&b| b == delimiter) else {
            return;
        };
        let mut table = self.map.lock();
        let prefix = &key[..pos];
        let row = match table.index.get(prefix) {
            Some(&i) => i,
            None => {
                let i = table.rows.len();
                table.rows.push((prefix.to_vec(), [0; 4]));
                table.index.insert(prefix.to_vec(), i);
                i
            }
        };
        let e = &mut table.rows[row].1;
        match op {
            PrefixOp::Get(hit) => {
                e[0] += 1;
                if hit {
                    e[1] += 1;
                }
            }
            PrefixOp::Set => e[2] += 1,
            PrefixOp::Delete => e[3] += 1,
        }
    }

    /// `stats detail dump` lines, without the final `END`.
    pub fn dump(&self) -> Vec<u8> {
        let table = self.map.lock();
        let mut out = Vec::new();
        for (prefix, c) in &table.rows {
            out.extend_from_slice(b"PREFIX ");
            out.extend_from_slice(prefix);
            out.extend_from_slice(
                format!(" get {} hit {} set {} del {}\r\n", c[0], c[1], c[2], c[3]).as_bytes(),
            );
        }
        out
    }

    fn clear(&self) {
        *self.map.lock() = PrefixTable::default();
    }
}

fn pair(name: impl Into<String>, value: impl ToString) -> Stat {
    (name.into(), value.to_string())
}

/// Process CPU time (user, system) in seconds.
fn rusage() -> (f64, f64) {
    use nix::sys::resource::{getrusage, UsageWho};
    use nix::sys::time::TimeValLike;
    let Ok(ru) = getrusage(UsageWho::RUSAGE_SELF) else {
        return (0.0, 0.0);
    };
    let t = |tv: nix::sys::time::TimeVal| tv.num_microseconds() as f64 / 1e6;
    (t(ru.user_time()), t(ru.system_time()))
}

/// The general `stats` report.
pub fn general(
    cfg: &Config,
    store: &Store,
    limiter: &LimiterStats,
    s: &ServerStats,
    uptime: u64,
    threads: usize,
) -> Vec<Stat> {
    let st = store.stats();
    let (user, sys) = rusage();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut v = vec![
        pair("pid", std::process::id()),
        pair("uptime", uptime),
        pair("time", now),
        pair("version", crate::MEMCACHED_VERSION),
        pair("libevent", "tokio"),
        pair("pointer_size", 64),
        pair("rusage_user", format!("{user:.6}")),
        pair("rusage_system", format!("{sys:.6}")),
        pair("max_connections", cfg.max_connections),
        pair("curr_connections", r(&s.curr_connections)),
        pair("total_connections", r(&s.total_connections)),
        pair("rejected_connections", r(&s.rejected_connections)),
        pair("connection_structures", r(&s.curr_connections)),
        pair("response_obj_oom", 0),
        pair("response_obj_count", 0),
        pair("response_obj_bytes", 0),
        pair("read_buf_count", 0),
        pair("read_buf_bytes", 0),
        pair("read_buf_bytes_free", 0),
        pair("read_buf_oom", 0),
        pair("reserved_fds", 0),
        pair("cmd_get", st.cmd_get),
        pair("cmd_set", st.cmd_set),
        pair("cmd_flush", r(&s.cmd_flush)),
        pair("cmd_touch", st.cmd_touch),
        pair("cmd_meta", r(&s.cmd_meta)),
        pair("get_hits", st.get_hits),
        pair("get_misses", st.get_misses),
        pair("get_expired", st.get_expired),
        pair("get_flushed", st.get_flushed),
        pair("delete_misses", st.delete_misses),
        pair("delete_hits", st.delete_hits),
        pair("incr_misses", st.incr_misses),
        pair("incr_hits", st.incr_hits),
        pair("decr_misses", st.decr_misses),
        pair("decr_hits", st.decr_hits),
        pair("cas_misses", st.cas_misses),
        pair("cas_hits", st.cas_hits),
        pair("cas_badval", st.cas_badval),
        pair("touch_hits", st.touch_hits),
        pair("touch_misses", st.touch_misses),
        pair("store_too_large", st.store_too_large),
        pair("store_no_memory", st.store_no_memory),
        pair("auth_cmds", r(&s.auth_cmds)),
        pair("auth_errors", r(&s.auth_errors)),
        pair("bytes_read", r(&s.bytes_read)),
        pair("bytes_written", r(&s.bytes_written)),
        pair("limit_maxbytes", store.memory_limit()),
        pair("accepting_conns", u8::from(r(&s.listeners_paused) == 0)),
        pair("listen_disabled_num", r(&s.listen_disabled_num)),
        pair(
            "time_in_listen_disabled_us",
            r(&s.time_in_listen_disabled_us),
        ),
        pair("threads", threads),
        pair("conn_yields", r(&s.conn_yields)),
        pair("hash_power_level", 16),
        pair("hash_bytes", 524288),
        pair("hash_is_expanding", 0),
        pair("slab_reassign_rescues", 0),
        pair("slab_reassign_chunk_rescues", 0),
        pair("slab_reassign_evictions_nomem", 0),
        pair("slab_reassign_inline_reclaim", 0),
        pair("slab_reassign_busy_items", 0),
        pair("slab_reassign_busy_deletes", 0),
        pair("slab_reassign_running", 0),
        pair("slabs_moved", 0),
        pair("lru_crawler_running", 0),
        pair("lru_crawler_starts", 0),
        pair("lru_maintainer_juggles", 0),
        pair("malloc_fails", 0),
        pair("log_worker_dropped", 0),
        pair("log_worker_written", 0),
        pair("log_watcher_skipped", 0),
        pair("log_watcher_sent", 0),
        pair("log_watchers", 0),
        pair("unexpected_napi_ids", 0),
        pair("round_robin_fallback", 0),
        pair("bytes", st.bytes),
        pair("curr_items", st.curr_items),
        pair("total_items", st.total_items),
        pair("slab_global_page_pool", 0),
        pair("expired_unfetched", st.expired_unfetched),
        pair("evicted_unfetched", st.evicted_unfetched),
        pair("evicted_active", st.evicted_active),
        pair("evictions", st.evictions),
        pair("reclaimed", st.reclaimed),
        pair("crawler_reclaimed", 0),
        pair("crawler_items_checked", 0),
        pair("lrutail_reflocked", 0),
        pair("moves_to_cold", 0),
        pair("moves_to_warm", 0),
        pair("moves_within_lru", 0),
        pair("direct_reclaims", 0),
        pair("lru_bumps_dropped", 0),
        pair("cmd_ratelimit", r(&s.cmd_ratelimit)),
        pair("ratelimit_allowed", r(&s.ratelimit_allowed)),
        pair("ratelimit_denied", r(&s.ratelimit_denied)),
        pair("ratelimit_keys", limiter.keys),
        pair("ratelimit_errors", r(&s.ratelimit_errors)),
        pair("ratelimit_bytes", limiter.bytes),
        pair("ratelimit_limit_maxbytes", limiter.limit_maxbytes),
        pair("ratelimit_evictions", limiter.evictions),
        pair("ratelimit_reclaimed", limiter.reclaimed),
    ];
    if cfg.idle_timeout > 0 {
        // memcached reports it (after auth_errors) only when the idle timeout is on.
        let at = v
            .iter()
            .position(|(k, _)| k == "bytes_read")
            .unwrap_or(v.len());
        v.insert(at, pair("idle_kicks", r(&s.idle_kicks)));
    }
    v
}

/// The `stats settings` report.
pub fn settings(cfg: &Config, store: &Store, s: &ServerStats) -> Vec<Stat> {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let inter = if cfg.listen.is_empty() {
        "NULL".to_string()
    } else {
        cfg.listen_list()
    };
    let domain = cfg
        .unix_socket
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "NULL".into());
    let protocol = match cfg.protocol {
        ProtocolChoice::Auto => "auto-negotiate",
        ProtocolChoice::Ascii => "ascii",
        ProtocolChoice::Binary => "binary",
    };
    vec![
        pair("maxbytes", store.memory_limit()),
        pair("maxconns", cfg.max_connections),
        pair("tcpport", cfg.port),
        pair("udpport", cfg.udp_port),
        pair("inter", inter),
        pair("verbosity", s.verbosity.load(Ordering::Relaxed)),
        pair("oldest", 0),
        pair("evictions", if cfg.no_evict { "off" } else { "on" }),
        pair("domain_socket", domain),
        pair("umask", format!("{:o}", cfg.unix_mask)),
        pair("shutdown_command", yes_no(cfg.enable_shutdown)),
        pair("growth_factor", format!("{:.2}", cfg.factor)),
        pair("chunk_size", cfg.min_chunk),
        pair("num_threads", cfg.threads),
        pair("num_threads_per_udp", cfg.threads),
        pair("stat_key_prefix", cfg.prefix_delimiter as char),
        pair("detail_enabled", yes_no(s.detail.enabled())),
        pair("reqs_per_event", cfg.reqs_per_event),
        pair("cas_enabled", yes_no(cfg.use_cas)),
        pair("tcp_backlog", cfg.backlog),
        pair("binding_protocol", protocol),
        pair("auth_enabled_sasl", yes_no(cfg.sasl)),
        pair("auth_enabled_ascii", yes_no(cfg.auth_file.is_some())),
        pair("item_size_max", cfg.max_item_size),
        pair("maxconns_fast", "yes"),
        pair("hashpower_init", 0),
        pair("slab_reassign", "no"),
        pair("slab_automove", 0),
        pair("slab_chunk_max", cfg.slab_chunk_max),
        pair("lru_crawler", "no"),
        pair("flush_enabled", yes_no(!cfg.disable_flush)),
        pair("dump_enabled", yes_no(!cfg.disable_dumping)),
        pair("hash_algorithm", "ahash"),
        pair("lru_maintainer_thread", "no"),
        pair("lru_segmented", "no"),
        pair("idle_timeout", cfg.idle_timeout),
        pair(
            "memory_file",
            cfg.memory_file
                .as_ref()
                .map_or("(null)".to_string(), |p| p.display().to_string()),
        ),
        pair("ratelimit_snapshot", cfg.ratelimit_snapshot),
        pair("ratelimit_memory", cfg.ratelimit_memory >> 20),
        pair(
            "ratelimit_full",
            if cfg.ratelimit_evict { "evict" } else { "deny" },
        ),
        pair(
            "ratelimit_prefix",
            cfg.ratelimit_prefix
                .as_deref()
                .map_or("(null)".to_string(), |p| String::from_utf8_lossy(p).into_owned()),
        ),
        pair("track_sizes", "no"),
        pair("shards", store.shard_count()),
        pair("timing_wheel", "yes"),
    ]
}

/// The `stats items` report.
pub fn items(store: &Store) -> Vec<Stat> {
    let mut out = Vec::new();
    for c in store.class_stats().iter().filter(|c| c.counters.count > 0) {
        let id = c.id;
        let mut p = |name: &str, v: u64| out.push(pair(format!("items:{id}:{name}"), v));
        p("number", c.counters.count);
        p("number_hot", 0);
        p("number_warm", 0);
        p("number_cold", c.counters.count);
        p("age_hot", 0);
        p("age_warm", 0);
        p("age", u64::from(c.age));
        p("mem_requested", c.counters.requested);
        p("evicted", c.counters.evicted);
        p("evicted_nonzero", c.counters.evicted_nonzero);
        p("evicted_time", u64::from(c.counters.evicted_time));
        p("outofmemory", c.counters.outofmemory);
        p("tailrepairs", 0);
        p("reclaimed", c.counters.reclaimed);
        p("expired_unfetched", c.counters.expired_unfetched);
        p("evicted_unfetched", c.counters.evicted_unfetched);
        p("evicted_active", c.counters.evicted_active);
        p("crawler_reclaimed", 0);
        p("crawler_items_checked", 0);
        p("lrutail_reflocked", 0);
        p("moves_to_cold", 0);
        p("moves_to_warm", 0);
        p("moves_within_lru", 0);
        p("direct_reclaims", 0);
        p("hits_to_hot", 0);
        p("hits_to_warm", 0);
        p("hits_to_cold", c.counters.get_hits);
        p("hits_to_temp", 0);
    }
    out
}

/// The `stats slabs` report. Pages are derived from the chunks in use (ratecache charges
/// chunks, it does not carve pages).
pub fn slabs(store: &Store) -> Vec<Stat> {
    let mut out = Vec::new();
    let mut active = 0;
    let mut pages_total = 0u64;
    for c in store
        .class_stats()
        .iter()
        .filter(|c| c.counters.count > 0 || c.counters.cmd_set > 0)
    {
        active += 1;
        let id = c.id;
        let per_page = c.per_page.max(1) as u64;
        let used = c.counters.charged / c.chunk_size as u64;
        let pages = used.div_ceil(per_page).max(1);
        pages_total += pages;
        let mut p = |name: &str, v: u64| out.push(pair(format!("{id}:{name}"), v));
        p("chunk_size", c.chunk_size as u64);
        p("chunks_per_page", per_page);
        p("total_pages", pages);
        p("total_chunks", pages * per_page);
        p("used_chunks", used);
        p("free_chunks", pages * per_page - used);
        p("free_chunks_end", 0);
        p("get_hits", c.counters.get_hits);
        p("cmd_set", c.counters.cmd_set);
        p("delete_hits", c.counters.delete_hits);
        p("incr_hits", c.counters.incr_hits);
        p("decr_hits", c.counters.decr_hits);
        p("cas_hits", c.counters.cas_hits);
        p("cas_badval", c.counters.cas_badval);
        p("touch_hits", c.counters.touch_hits);
    }
    out.push(pair("active_slabs", active));
    out.push(pair(
        "total_malloced",
        pages_total * store.slabs().page_size() as u64,
    ));
    out
}
