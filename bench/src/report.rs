//! Results: the table, the ratios between servers, JSON and markdown.

use std::fmt::Write as _;

use serde::Serialize;

use crate::codec::{Protocol, Workload};

/// Latency summary in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

/// An untimed loading phase.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// Requests.
    pub ops: u64,
    /// Wrong replies.
    pub errors: u64,
    /// Seconds.
    pub elapsed_s: f64,
}

/// The item count after a fill with a TTL.
#[derive(Debug, Clone, Serialize)]
pub struct Expiry {
    /// TTL of the loaded keys.
    pub ttl_s: u32,
    /// How long the count was watched after the load ended.
    pub bound_s: f64,
    /// Items before the load (the count to get back to; 0 on a fresh server).
    pub items_before_load: u64,
    /// Items right after the load.
    pub items_after_load: Option<u64>,
    /// When the count was back to `items_before_load`, in ms after the load ended (None: not
    /// within the bound).
    pub zero_after_load_ms: Option<f64>,
    /// The same, minus the TTL: how long after the last key's expiry time (negative when a
    /// server's whole-second clock expired the keys early).
    pub zero_after_ttl_ms: Option<f64>,
    /// The last count read.
    pub items_at_end: Option<u64>,
    /// (seconds since the load ended, items).
    pub samples: Vec<(f64, u64)>,
    /// Why the watch stopped early.
    pub error: Option<String>,
}

/// One server's results.
#[derive(Debug, Clone, Serialize)]
pub struct ServerResult {
    /// Display name.
    pub name: String,
    /// host:port.
    pub addr: String,
    /// Its pid when known.
    pub pid: Option<u32>,
    /// Wire protocol.
    pub protocol: Protocol,
    /// Workload.
    pub workload: Workload,
    /// Connections.
    pub connections: usize,
    /// Pipeline depth.
    pub pipeline: usize,
    /// Requests answered or lost.
    pub ops: u64,
    /// Wrong replies, lost requests and failed setup steps.
    pub errors: u64,
    /// The first distinct error messages.
    pub error_samples: Vec<String>,
    /// Gets that found the stored value.
    pub hits: u64,
    /// Gets that found nothing.
    pub misses: u64,
    /// Sets stored.
    pub stored: u64,
    /// Counter replies.
    pub counters: u64,
    /// Rate-limit decisions allowed.
    pub allowed: u64,
    /// Rate-limit decisions denied.
    pub denied: u64,
    /// Measured seconds.
    pub elapsed_s: f64,
    /// Throughput: requests answered correctly per second (errors excluded).
    pub ops_per_sec: f64,
    /// Latency.
    pub latency_us: Latency,
    /// Server CPU seconds (utime + stime) over the measured phase.
    pub server_cpu_s: Option<f64>,
    /// Server CPU microseconds per request.
    pub server_cpu_us_per_op: Option<f64>,
    /// The load generator's own CPU microseconds per request.
    pub loadgen_cpu_us_per_op: Option<f64>,
    /// CPU used by every other process of the machine during the measured phase, in cores
    /// (0.3 = 30% of one core): a benchmark on a shared machine says how shared it was.
    pub other_cpu_share: Option<f64>,
    /// Server RSS before the measured phase.
    pub rss_before: Option<u64>,
    /// Server RSS after it.
    pub rss_after: Option<u64>,
    /// RSS growth per item the server holds at the end (fill and rl-fill only).
    pub rss_bytes_per_item: Option<f64>,
    /// Items the server held at the end of a fill over those before it (`curr_items`,
    /// `ratelimit_keys` after rl-fill, Redis DBSIZE): the divisor of `rss_bytes_per_item`
    /// when fewer than the fill created.
    pub items_held: Option<u64>,
    /// The loading phase, if any.
    pub prefill: Option<Phase>,
    /// The expiry watch, if any.
    pub expiry: Option<Expiry>,
    /// (percentile, µs) points of the latency curve.
    pub curve: Vec<(f64, f64)>,
}

/// The first server against another.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// The first server.
    pub server: String,
    /// The other one.
    pub versus: String,
    /// ops/s of the first over the other's.
    pub throughput: f64,
    /// p99 of the first over the other's.
    pub p99: f64,
    /// CPU per request of the first over the other's.
    pub cpu_per_op: Option<f64>,
    /// RSS per item of the first over the other's.
    pub bytes_per_item: Option<f64>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Title.
    pub title: String,
    /// The command line.
    pub command: String,
    /// Per server, in order.
    pub results: Vec<ServerResult>,
    /// The first server against each other one.
    pub ratios: Vec<Ratio>,
}

fn div(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        f64::NAN
    }
}

impl Report {
    /// Builds the report and its ratios.
    pub fn new(title: String, command: String, results: Vec<ServerResult>) -> Report {
        let mut ratios = Vec::new();
        if let Some((first, rest)) = results.split_first() {
            for o in rest {
                ratios.push(Ratio {
                    server: first.name.clone(),
                    versus: o.name.clone(),
                    throughput: div(first.ops_per_sec, o.ops_per_sec),
                    p99: div(first.latency_us.p99, o.latency_us.p99),
                    cpu_per_op: first
                        .server_cpu_us_per_op
                        .zip(o.server_cpu_us_per_op)
                        .map(|(a, b)| div(a, b)),
                    bytes_per_item: first
                        .rss_bytes_per_item
                        .zip(o.rss_bytes_per_item)
                        .map(|(a, b)| div(a, b)),
                });
            }
        }
        Report {
            title,
            command,
            results,
            ratios,
        }
    }

    /// Total errors over all servers.
    pub fn errors(&self) -> u64 {
        self.results.iter().map(|r| r.errors).sum()
    }

    fn rows(&self) -> (Vec<&'static str>, Vec<Vec<String>>) {
        let fill = self.results.iter().any(|r| r.workload.fills());
        let mut head = vec![
            "server",
            "protocol",
            "workload",
            "ops/s",
            "p50 µs",
            "p90 µs",
            "p99 µs",
            "p99.9 µs",
            "max µs",
            "errors",
            "CPU µs/op",
            "server CPU",
        ];
        if fill {
            head.extend(["RSS growth", "B/item", "expired"]);
        }
        let rows = self
            .results
            .iter()
            .map(|r| {
                let l = &r.latency_us;
                let mut row = vec![
                    r.name.clone(),
                    format!("{:?}", r.protocol).to_lowercase(),
                    serde_json::to_value(r.workload)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    format!("{:.0}", r.ops_per_sec),
                    format!("{:.1}", l.p50),
                    format!("{:.1}", l.p90),
                    format!("{:.1}", l.p99),
                    format!("{:.1}", l.p999),
                    format!("{:.0}", l.max),
                    r.errors.to_string(),
                    r.server_cpu_us_per_op
                        .map_or("-".into(), |c| format!("{c:.2}")),
                    r.server_cpu_s
                        .filter(|_| r.elapsed_s > 0.0)
                        .map_or("-".into(), |c| format!("{:.0}%", 100.0 * c / r.elapsed_s)),
                ];
                if fill {
                    row.push(match (r.rss_before, r.rss_after) {
                        (Some(a), Some(b)) => {
                            format!("{:.1} MiB", (b as f64 - a as f64) / (1u64 << 20) as f64)
                        }
                        _ => "-".into(),
                    });
                    row.push(
                        r.rss_bytes_per_item
                            .map_or("-".into(), |b| format!("{b:.1}")),
                    );
                    row.push(match &r.expiry {
                        None => "-".into(),
                        Some(e) => match (e.zero_after_load_ms, e.items_at_end) {
                            (Some(ms), _) => format!(
                                "all gone {:.2} s after the load (TTL {} s)",
                                ms / 1000.0,
                                e.ttl_s
                            ),
                            (None, Some(n)) => format!(
                                "{} left {:.0} s after load",
                                n.saturating_sub(e.items_before_load),
                                e.bound_s
                            ),
                            (None, None) => "unknown".into(),
                        },
                    });
                }
                row
            })
            .collect();
        (head, rows)
    }

    fn ratio_rows(&self) -> Vec<String> {
        self.ratios
            .iter()
            .map(|r| {
                let mut s = format!(
                    "{} vs {}: throughput {:.2}x, p99 {:.2}x",
                    r.server, r.versus, r.throughput, r.p99
                );
                if let Some(c) = r.cpu_per_op {
                    let _ = write!(s, ", CPU/op {c:.2}x");
                }
                if let Some(b) = r.bytes_per_item {
                    let _ = write!(s, ", bytes/item {b:.2}x");
                }
                s
            })
            .collect()
    }

    /// The plain-text table, ratios and error samples.
    pub fn table(&self) -> String {
        let (head, rows) = self.rows();
        let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
        for r in &rows {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.title);
        let line = |cells: Vec<String>| {
            cells
                .iter()
                .zip(&width)
                .enumerate()
                .map(|(i, (c, w))| {
                    let pad = w - c.chars().count();
                    if i < 3 {
                        format!("{c}{}", " ".repeat(pad))
                    } else {
                        format!("{}{c}", " ".repeat(pad))
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        };
        let _ = writeln!(
            out,
            "{}",
            line(head.iter().map(|h| h.to_string()).collect())
        );
        for r in rows {
            let _ = writeln!(out, "{}", line(r));
        }
        for r in self.ratio_rows() {
            let _ = writeln!(out, "{r}");
        }
        for r in &self.results {
            for s in &r.error_samples {
                let _ = writeln!(out, "  {} error: {s}", r.name);
            }
        }
        out
    }

    /// The table as markdown.
    pub fn markdown(&self) -> String {
        let (head, rows) = self.rows();
        let mut out = String::new();
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let align: Vec<&str> = (0..head.len())
            .map(|i| if i < 3 { "---" } else { "---:" })
            .collect();
        let _ = writeln!(out, "| {} |", align.join(" | "));
        for r in rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
        let ratios = self.ratio_rows();
        if !ratios.is_empty() {
            let _ = writeln!(out);
            for r in ratios {
                let _ = writeln!(out, "- {r}");
            }
        }
        let samples: Vec<String> = self
            .results
            .iter()
            .flat_map(|r| {
                r.error_samples
                    .iter()
                    .map(move |s| format!("- {}: `{s}`", r.name))
            })
            .collect();
        if !samples.is_empty() {
            let _ = writeln!(out, "\nErrors seen:\n");
            for s in samples {
                let _ = writeln!(out, "{s}");
            }
        }
        out
    }
}
