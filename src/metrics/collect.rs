//! Which metric each stat becomes: the memcached exporter's names, types and labels for the
//! shared stats (its `parseStats` and `parseStatsSettings`), `ratecache_ratelimit_*` for the
//! rate-limit counters. A stat a report lacks is left out, as the exporter leaves it out.

use std::collections::{BTreeMap, HashMap};

use super::exposition::{Exposition, Kind, Value};
use crate::limit_stats::{Counts, Report};
use crate::stats::Stat;

/// The reports a scrape shows, as the `stats` commands produce them.
pub struct Reports<'a> {
    /// `stats`.
    pub general: &'a [Stat],
    /// `stats settings`.
    pub settings: &'a [Stat],
    /// `stats items`.
    pub items: &'a [Stat],
    /// `stats slabs`.
    pub slabs: &'a [Stat],
    /// `stats ratelimit`.
    pub ratelimit: &'a Report,
}

/// The exposition of `r`.
pub fn render(r: &Reports<'_>) -> String {
    let mut e = Exposition::new();
    let general = Lookup::new(r.general.iter());
    e.family(
        "memcached_up",
        Kind::Gauge,
        "Could the memcached server be reached.",
    )
    .sample(&[], 1u64);
    shared(&mut e, &general, &Lookup::new(r.settings.iter()), r.slabs);
    per_slab(&mut e, r.items, r.slabs);
    ratelimit(&mut e, &general, r.ratelimit);
    e.finish()
}

/// Stats by name.
struct Lookup<'a>(HashMap<&'a str, &'a str>);

impl<'a> Lookup<'a> {
    fn new(stats: impl Iterator<Item = &'a Stat>) -> Self {
        Lookup(stats.map(|(k, v)| (k.as_str(), v.as_str())).collect())
    }

    fn int(&self, key: &str) -> Option<u64> {
        self.0.get(key)?.parse().ok()
    }

    fn float(&self, key: &str) -> Option<f64> {
        self.0.get(key)?.parse().ok()
    }
}

/// Writes family `name` with one unlabelled sample, if the value is there.
fn single(e: &mut Exposition, name: &'static str, kind: Kind, help: &str, v: Option<Value>) {
    if let Some(v) = v {
        e.family(name, kind, help).sample(&[], v);
    }
}

/// Unlabelled exporter metrics of `stats`: (metric, type, help, stat).
const GENERAL: &[(&str, Kind, &str, &str)] = &[
    ("memcached_uptime_seconds", Kind::Counter, "Number of seconds since the server started.", "uptime"),
    ("memcached_time_seconds", Kind::Gauge, "current UNIX time according to the server.", "time"),
    ("memcached_current_bytes", Kind::Gauge, "Current number of bytes used to store items.", "bytes"),
    ("memcached_limit_bytes", Kind::Gauge, "Number of bytes this server is allowed to use for storage.", "limit_maxbytes"),
    ("memcached_current_items", Kind::Gauge, "Current number of items stored by this instance.", "curr_items"),
    ("memcached_items_total", Kind::Counter, "Total number of items stored during the life of this instance.", "total_items"),
    ("memcached_read_bytes_total", Kind::Counter, "Total number of bytes read by this server from network.", "bytes_read"),
    ("memcached_written_bytes_total", Kind::Counter, "Total number of bytes sent by this server to network.", "bytes_written"),
    ("memcached_current_connections", Kind::Gauge, "Current number of open connections.", "curr_connections"),
    ("memcached_connections_total", Kind::Counter, "Total number of connections opened since the server started running.", "total_connections"),
    ("memcached_connections_rejected_total", Kind::Counter, "Total number of connections rejected due to hitting the memcached's -c limit in maxconns_fast mode.", "rejected_connections"),
    ("memcached_connections_yielded_total", Kind::Counter, "Total number of connections yielded running due to hitting the memcached's -R limit.", "conn_yields"),
    ("memcached_connections_listener_disabled_total", Kind::Counter, "Number of times that memcached has hit its connections limit and disabled its listener.", "listen_disabled_num"),
    ("memcached_items_evicted_total", Kind::Counter, "Total number of valid items removed from cache to free memory for new items.", "evictions"),
    ("memcached_items_reclaimed_total", Kind::Counter, "Total number of times an entry was stored using memory from an expired entry.", "reclaimed"),
    ("memcached_item_too_large_total", Kind::Counter, "The number of times an item exceeded the max-item-size when being stored.", "store_too_large"),
    ("memcached_item_no_memory_total", Kind::Counter, "The number of times an item could not be stored due to no more memory.", "store_no_memory"),
    ("memcached_lru_crawler_starts_total", Kind::Counter, "Times an LRU crawler was started.", "lru_crawler_starts"),
    ("memcached_direct_reclaims_total", Kind::Counter, "Times worker threads had to directly reclaim or evict items.", "direct_reclaims"),
    ("memcached_lru_crawler_items_checked_total", Kind::Counter, "Total items examined by LRU Crawler.", "crawler_items_checked"),
    ("memcached_lru_crawler_reclaimed_total", Kind::Counter, "Total items freed by LRU Crawler.", "crawler_reclaimed"),
    ("memcached_lru_crawler_moves_to_cold_total", Kind::Counter, "Total number of items moved from HOT/WARM to COLD LRU's.", "moves_to_cold"),
    ("memcached_lru_crawler_moves_to_warm_total", Kind::Counter, "Total number of items moved from COLD to WARM LRU.", "moves_to_warm"),
    ("memcached_lru_crawler_moves_within_lru_total", Kind::Counter, "Total number of items reshuffled within HOT or WARM LRU's.", "moves_within_lru"),
    ("memcached_accepting_connections", Kind::Gauge, "The Memcached server is currently accepting new connections.", "accepting_conns"),
];

/// The commands the exporter counts as `<op>_hits` / `<op>_misses`.
const OPS: [&str; 6] = ["get", "delete", "incr", "decr", "cas", "touch"];

fn shared(e: &mut Exposition, g: &Lookup<'_>, settings: &Lookup<'_>, slabs: &[Stat]) {
    if let Some(v) = g.0.get("version") {
        e.family(
            "memcached_version",
            Kind::Gauge,
            "The version of this memcached server.",
        )
        .sample(&[("version", v)], 1u64);
    }
    let mut f = e.family(
        "memcached_commands_total",
        Kind::Counter,
        "Total number of all requests broken down by command (get, set, etc.) and status.",
    );
    for op in OPS {
        for (suffix, status) in [("hits", "hit"), ("misses", "miss")] {
            if let Some(v) = g.int(&format!("{op}_{suffix}")) {
                f.sample(&[("command", op), ("status", status)], v);
            }
        }
    }
    for (key, command, status) in [
        ("cas_badval", "cas", "badval"),
        ("cmd_flush", "flush", "hit"),
    ] {
        if let Some(v) = g.int(key) {
            f.sample(&[("command", command), ("status", status)], v);
        }
    }
    // memcached counts cas commands in cmd_set too; the exporter takes them out.
    let cas = ["cas_misses", "cas_hits", "cas_badval"]
        .iter()
        .map(|k| g.int(k))
        .sum::<Option<u64>>();
    if let (Some(set), Some(cas)) = (g.int("cmd_set"), cas) {
        f.sample(
            &[("command", "set"), ("status", "hit")],
            set.saturating_sub(cas),
        );
    }
    let cpu = |k| g.float(k).map(Value::Float);
    single(
        e,
        "memcached_process_user_cpu_seconds_total",
        Kind::Counter,
        "Accumulated user time for this process.",
        cpu("rusage_user"),
    );
    single(
        e,
        "memcached_process_system_cpu_seconds_total",
        Kind::Counter,
        "Accumulated system time for this process.",
        cpu("rusage_system"),
    );
    for &(name, kind, help, key) in GENERAL {
        single(e, name, kind, help, g.int(key).map(Value::Int));
    }
    let malloced = Lookup::new(slabs.iter()).int("total_malloced");
    single(
        e,
        "memcached_malloced_bytes",
        Kind::Gauge,
        "Number of bytes of memory allocated to slab pages.",
        malloced.map(Value::Int),
    );
    single(
        e,
        "memcached_max_connections",
        Kind::Gauge,
        "Maximum number of clients allowed.",
        settings.int("maxconns").map(Value::Int),
    );
}

/// Per-class metrics of `stats items` (`items:<class>:<field>`): (metric, type, help, field).
const ITEMS: &[(&str, Kind, &str, &str)] = &[
    ("memcached_slab_current_items", Kind::Gauge, "Number of items currently stored in this slab class.", "number"),
    ("memcached_slab_items_age_seconds", Kind::Gauge, "Number of seconds the oldest item has been in the slab class.", "age"),
    ("memcached_slab_items_crawler_reclaimed_total", Kind::Counter, "Number of items freed by the LRU Crawler.", "crawler_reclaimed"),
    ("memcached_slab_items_evicted_total", Kind::Counter, "Total number of times an item had to be evicted from the LRU before it expired.", "evicted"),
    ("memcached_slab_items_evicted_nonzero_total", Kind::Counter, "Total number of times an item which had an explicit expire time set had to be evicted from the LRU before it expired.", "evicted_nonzero"),
    ("memcached_slab_items_evicted_time_seconds", Kind::Counter, "Seconds since the last access for the most recent item evicted from this class.", "evicted_time"),
    ("memcached_slab_items_evicted_unfetched_total", Kind::Counter, "Total number of items evicted and never fetched.", "evicted_unfetched"),
    ("memcached_slab_items_expired_unfetched_total", Kind::Counter, "Total number of valid items evicted from the LRU which were never touched after being set.", "expired_unfetched"),
    ("memcached_slab_items_outofmemory_total", Kind::Counter, "Total number of items for this slab class that have triggered an out of memory error.", "outofmemory"),
    ("memcached_slab_items_reclaimed_total", Kind::Counter, "Total number of items reclaimed.", "reclaimed"),
    ("memcached_slab_items_tailrepairs_total", Kind::Counter, "Total number of times the entries for a particular ID need repairing.", "tailrepairs"),
    ("memcached_slab_mem_requested_bytes", Kind::Counter, "Number of bytes of memory actual items take up within a slab.", "mem_requested"),
    ("memcached_slab_items_moves_to_cold", Kind::Counter, "Number of items moved from HOT or WARM into COLD.", "moves_to_cold"),
    ("memcached_slab_items_moves_to_warm", Kind::Counter, "Number of items moves from COLD into WARM.", "moves_to_warm"),
    ("memcached_slab_items_moves_within_lru", Kind::Counter, "Number of times active items were bumped within HOT or WARM.", "moves_within_lru"),
    ("memcached_slab_hot_items", Kind::Gauge, "Number of items presently stored in the HOT LRU.", "number_hot"),
    ("memcached_slab_warm_items", Kind::Gauge, "Number of items presently stored in the WARM LRU.", "number_warm"),
    ("memcached_slab_cold_items", Kind::Gauge, "Number of items presently stored in the COLD LRU.", "number_cold"),
    ("memcached_slab_temporary_items", Kind::Gauge, "Number of items presently stored in the TEMPORARY LRU.", "number_temp"),
    ("memcached_slab_hot_age_seconds", Kind::Gauge, "Age of the oldest item in HOT LRU.", "age_hot"),
    ("memcached_slab_warm_age_seconds", Kind::Gauge, "Age of the oldest item in WARM LRU.", "age_warm"),
];

/// Per-class metrics of `stats slabs` (`<class>:<field>`), all gauges.
const SLABS: &[(&str, &str, &str)] = &[
    (
        "memcached_slab_chunk_size_bytes",
        "Number of bytes allocated to each chunk within this slab class.",
        "chunk_size",
    ),
    (
        "memcached_slab_chunks_per_page",
        "Number of chunks within a single page for this slab class.",
        "chunks_per_page",
    ),
    (
        "memcached_slab_current_pages",
        "Number of pages allocated to this slab class.",
        "total_pages",
    ),
    (
        "memcached_slab_current_chunks",
        "Number of chunks allocated to this slab class.",
        "total_chunks",
    ),
    (
        "memcached_slab_chunks_used",
        "Number of chunks allocated to an item.",
        "used_chunks",
    ),
    (
        "memcached_slab_chunks_free",
        "Number of chunks not yet allocated items.",
        "free_chunks",
    ),
    (
        "memcached_slab_chunks_free_end",
        "Number of free chunks at the end of the last allocated page.",
        "free_chunks_end",
    ),
];

/// Stats of the form `[<skip>:]<class>:<field>`, by class.
fn by_class<'a>(stats: &'a [Stat], skip: &str) -> BTreeMap<u32, HashMap<&'a str, u64>> {
    let mut classes: BTreeMap<u32, HashMap<&str, u64>> = BTreeMap::new();
    for (k, v) in stats {
        let Some(rest) = k.strip_prefix(skip) else {
            continue;
        };
        let Some((class, field)) = rest.split_once(':') else {
            continue;
        };
        if let (Ok(class), Ok(v)) = (class.parse(), v.parse()) {
            classes.entry(class).or_default().insert(field, v);
        }
    }
    classes
}

/// Writes family `name` with a sample per class that has `field` (none: no family).
fn class_family(
    e: &mut Exposition,
    classes: &BTreeMap<u32, HashMap<&str, u64>>,
    name: &'static str,
    kind: Kind,
    help: &str,
    samples: &[(&str, &[(&str, &str)])],
) {
    let present = classes
        .values()
        .any(|c| samples.iter().any(|(f, _)| c.contains_key(f)));
    if !present {
        return;
    }
    let mut fam = e.family(name, kind, help);
    for (class, fields) in classes {
        let slab = class.to_string();
        for (field, extra) in samples {
            if let Some(&v) = fields.get(field) {
                let mut labels = vec![("slab", slab.as_str())];
                labels.extend_from_slice(extra);
                fam.sample(&labels, v);
            }
        }
    }
}

fn per_slab(e: &mut Exposition, items: &[Stat], slabs: &[Stat]) {
    let items = by_class(items, "items:");
    for &(name, kind, help, field) in ITEMS {
        class_family(e, &items, name, kind, help, &[(field, &[])]);
    }
    let lru: Vec<(&str, &[(&str, &str)])> = vec![
        ("hits_to_hot", &[("lru", "hot")]),
        ("hits_to_warm", &[("lru", "warm")]),
        ("hits_to_cold", &[("lru", "cold")]),
        ("hits_to_temp", &[("lru", "temporary")]),
    ];
    class_family(
        e,
        &items,
        "memcached_slab_lru_hits_total",
        Kind::Counter,
        "Number of get_hits to the LRU.",
        &lru,
    );

    let mut slabs = by_class(slabs, "");
    for fields in slabs.values_mut() {
        // As the exporter: cas commands are taken out of cmd_set.
        let cas = fields.get("cas_hits").copied().unwrap_or(0)
            + fields.get("cas_badval").copied().unwrap_or(0);
        if let Some(set) = fields.get("cmd_set").copied() {
            fields.insert("set_hits", set.saturating_sub(cas));
        }
    }
    let commands: Vec<(String, [(&str, &str); 2])> = OPS
        .iter()
        .chain(&["set"])
        .map(|op| (format!("{op}_hits"), [("command", *op), ("status", "hit")]))
        .chain([(
            "cas_badval".to_string(),
            [("command", "cas"), ("status", "badval")],
        )])
        .collect();
    let commands: Vec<(&str, &[(&str, &str)])> =
        commands.iter().map(|(f, l)| (f.as_str(), &l[..])).collect();
    class_family(
        e,
        &slabs,
        "memcached_slab_commands_total",
        Kind::Counter,
        "Total number of all requests broken down by command (get, set, etc.) and status per slab.",
        &commands,
    );
    for &(name, help, field) in SLABS {
        class_family(e, &slabs, name, Kind::Gauge, help, &[(field, &[])]);
    }
}

/// Rate-limit metrics of `stats`: (metric, type, help, stat).
const RATELIMIT: &[(&str, Kind, &str, &str)] = &[
    ("ratecache_ratelimit_commands_total", Kind::Counter, "Rate-limit requests (ratelimit, ratelimit_all, ml, binary RATELIMIT, decision keys), whatever their outcome.", "cmd_ratelimit"),
    ("ratecache_ratelimit_errors_total", Kind::Counter, "Rate-limit requests answered with an error.", "ratelimit_errors"),
    ("ratecache_ratelimit_keys", Kind::Gauge, "Live rate-limit states.", "ratelimit_keys"),
    ("ratecache_ratelimit_bytes", Kind::Gauge, "Bytes of rate-limit states and their index.", "ratelimit_bytes"),
    ("ratecache_ratelimit_limit_bytes", Kind::Gauge, "Bytes the rate-limit states may use (-o ratelimit_memory).", "ratelimit_limit_maxbytes"),
    ("ratecache_ratelimit_evictions_total", Kind::Counter, "Rate-limit states dropped for memory before they were full again.", "ratelimit_evictions"),
    ("ratecache_ratelimit_reclaimed_total", Kind::Counter, "Rate-limit states dropped because they were full again.", "ratelimit_reclaimed"),
];

fn ratelimit(e: &mut Exposition, g: &Lookup<'_>, r: &Report) {
    let mut f = e.family(
        "ratecache_ratelimit_decisions_total",
        Kind::Counter,
        "Rate-limit requests decided, by result.",
    );
    for (key, result) in [
        ("ratelimit_allowed", "allowed"),
        ("ratelimit_denied", "denied"),
    ] {
        if let Some(v) = g.int(key) {
            f.sample(&[("result", result)], v);
        }
    }
    for &(name, kind, help, key) in RATELIMIT {
        single(e, name, kind, help, g.int(key).map(Value::Int));
    }
    let n = |v: usize| Some(Value::Int(v as u64));
    single(
        e,
        "ratecache_ratelimit_policies",
        Kind::Gauge,
        "Policies loaded from --policies.",
        n(r.policies.len()),
    );
    single(
        e,
        "ratecache_ratelimit_unknown_policy_total",
        Kind::Counter,
        "@policy requests naming no loaded policy.",
        Some(Value::Int(r.unknown_policy)),
    );

    let policies: Vec<(&str, &Counts)> = r
        .policies
        .iter()
        .filter_map(|p| Some((p.name.as_str(), p.counts.as_ref()?)))
        .collect();
    rows(
        e,
        "policy",
        &policies,
        [
            "ratecache_ratelimit_policy_decisions_total",
            "ratecache_ratelimit_policy_errors_total",
            "ratecache_ratelimit_policy_keys",
        ],
    );
    let mut limit = e.family(
        "ratecache_ratelimit_policy_limit",
        Kind::Gauge,
        "Tokens per period of each limit of a loaded policy.",
    );
    for p in &r.policies {
        for (i, l) in p.limits.iter().enumerate() {
            let i = i.to_string();
            limit.sample(
                &[
                    ("policy", &p.name),
                    ("index", &i),
                    ("algorithm", l.algorithm.keyword()),
                ],
                u64::from(l.params.limit),
            );
        }
    }
    let mut period = e.family(
        "ratecache_ratelimit_policy_period_seconds",
        Kind::Gauge,
        "Period of each limit of a loaded policy.",
    );
    for p in &r.policies {
        for (i, l) in p.limits.iter().enumerate() {
            let i = i.to_string();
            period.sample(
                &[("policy", &p.name), ("index", &i)],
                l.params.period_ns as f64 / 1e9,
            );
        }
    }
    let mut burst = e.family(
        "ratecache_ratelimit_policy_burst",
        Kind::Gauge,
        "Capacity (burst) of each limit of a loaded policy.",
    );
    for p in &r.policies {
        for (i, l) in p.limits.iter().enumerate() {
            let i = i.to_string();
            burst.sample(
                &[("policy", &p.name), ("index", &i)],
                u64::from(l.params.capacity()),
            );
        }
    }

    single(
        e,
        "ratecache_ratelimit_prefixes",
        Kind::Gauge,
        "Key prefixes counted (at most ratecache_ratelimit_prefix_limit).",
        n(r.prefixes.len()),
    );
    single(
        e,
        "ratecache_ratelimit_prefix_limit",
        Kind::Gauge,
        "Most key prefixes counted; later ones count as overflow.",
        n(crate::limit_stats::NAMED_ROWS),
    );
    let prefixes: Vec<(&str, &Counts)> = r
        .prefixes
        .iter()
        .map(|p| (p.name.as_str(), &p.counts))
        .collect();
    rows(
        e,
        "prefix",
        &prefixes,
        [
            "ratecache_ratelimit_prefix_decisions_total",
            "ratecache_ratelimit_prefix_errors_total",
            "ratecache_ratelimit_prefix_keys",
        ],
    );
    let overflow = [
        ("policy", &r.policy_overflow),
        ("prefix", &r.prefix_overflow),
    ];
    rows(
        e,
        "table",
        &overflow,
        [
            "ratecache_ratelimit_overflow_decisions_total",
            "ratecache_ratelimit_overflow_errors_total",
            "ratecache_ratelimit_overflow_keys",
        ],
    );
}

/// The decisions, errors and live states of rows labelled `label`.
fn rows(e: &mut Exposition, label: &str, rows: &[(&str, &Counts)], names: [&'static str; 3]) {
    let [decisions, errors, keys] = names;
    let mut f = e.family(
        decisions,
        Kind::Counter,
        &format!("Rate-limit requests decided per {label}, by result."),
    );
    for (name, c) in rows {
        f.sample(&[(label, name), ("result", "allowed")], c.allowed);
        f.sample(&[(label, name), ("result", "denied")], c.denied);
    }
    let mut f = e.family(
        errors,
        Kind::Counter,
        &format!("Rate-limit requests answered with an error per {label}."),
    );
    for (name, c) in rows {
        f.sample(&[(label, name)], c.errors);
    }
    let mut f = e.family(
        keys,
        Kind::Gauge,
        &format!("Live rate-limit states created by requests per {label}."),
    );
    for (name, c) in rows {
        f.sample(&[(label, name)], c.keys);
    }
}
