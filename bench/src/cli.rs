//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::codec::{Algo, Protocol, Spec, Workload};
use crate::keys::KeyDist;
use crate::runner::{Load, Target};

/// Key popularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dist {
    /// Every key equally likely.
    Uniform,
    /// Zipf with exponent `--zipf-s`.
    Zipf,
}

/// A closed-loop load generator for ratecached, memcached and Redis, side by side.
///
/// Each `--server` is benchmarked in turn with the same load; `--name`, `--server-pid`,
/// `--server-protocol` and `--server-workload` apply to the `--server` given before them.
#[derive(Debug, Parser)]
#[command(name = "ratecache-bench", version)]
pub struct Cli {
    /// A server to benchmark, host:port (repeat for side-by-side runs).
    #[arg(long = "server", required = true, value_name = "HOST:PORT")]
    pub servers: Vec<String>,
    /// Display name of the preceding --server.
    #[arg(long = "name")]
    pub names: Vec<String>,
    /// Pid of the preceding --server: its CPU time per operation (and RSS) is reported.
    #[arg(long = "server-pid")]
    pub pids: Vec<u32>,
    /// Protocol of the preceding --server (overrides --protocol).
    #[arg(long = "server-protocol", value_enum)]
    pub server_protocols: Vec<Protocol>,
    /// Workload of the preceding --server (overrides --workload).
    #[arg(long = "server-workload", value_enum)]
    pub server_workloads: Vec<Workload>,
    /// Wire protocol.
    #[arg(long, value_enum, default_value = "text")]
    pub protocol: Protocol,
    /// What the connections do.
    #[arg(long, value_enum, default_value = "getset")]
    pub workload: Workload,
    /// SET:GET ratio of the getset workload.
    #[arg(long, default_value = "1:10")]
    pub ratio: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 50)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Number of distinct keys (subjects, counters).
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Key popularity.
    #[arg(long, value_enum, default_value = "uniform")]
    pub key_dist: Dist,
    /// Zipf exponent.
    #[arg(long, default_value_t = 0.99)]
    pub zipf_s: f64,
    /// Key name prefix (default per workload: key:, ctr:, rl:, rlfw:, rlsl:, fill:, rlfill:).
    #[arg(long)]
    pub key_prefix: Option<String>,
    /// Key length in bytes (the index is zero-padded).
    #[arg(long, default_value_t = 20)]
    pub key_size: usize,
    /// Value length of sets.
    #[arg(long, default_value_t = 32)]
    pub value_size: usize,
    /// Expiration of stored items in seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    pub ttl: u32,
    /// Run time per server in seconds (default 10 unless --requests is given).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Requests per server (the run ends at whichever bound comes first).
    #[arg(long)]
    pub requests: Option<u64>,
    /// PRNG seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Rate limit: tokens per period.
    #[arg(long, default_value_t = 100)]
    pub rl_limit: u32,
    /// Rate limit: period in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub rl_period_ms: u64,
    /// Rate limit: burst (0 = limit; gcra only).
    #[arg(long, default_value_t = 0)]
    pub rl_burst: u32,
    /// Rate limit: algorithm of ratecached's command.
    #[arg(long, value_enum, default_value = "gcra")]
    pub rl_algo: Algo,
    /// Do not load the keys of getset / text incr before the run.
    #[arg(long)]
    pub no_prefill: bool,
    /// After a fill with --ttl, poll the item count (curr_items, DBSIZE) for up to this many
    /// seconds and report when it reaches 0.
    #[arg(long, value_name = "SECS")]
    pub watch_expiry: Option<f64>,
    /// Seconds without a reply after which a connection gives up (counted as errors).
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Load generator threads (default: the cores this process may run on).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Title of the run in the report.
    #[arg(long)]
    pub title: Option<String>,
    /// Write the results as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the table as markdown.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Draw the latency percentile curves of all servers into a PNG.
    #[arg(long, value_name = "FILE.png")]
    pub plot: Option<PathBuf>,
}

/// Everything a run needs, checked.
#[derive(Debug)]
pub struct Config {
    /// The servers, in order.
    pub targets: Vec<Target>,
    /// The load.
    pub load: Load,
    /// Encoder parameters (protocol set per target).
    pub spec: Spec,
    /// The parsed command line.
    pub cli: Cli,
}

/// What `--help` or `--version` asks to print (to stdout, exit status 0), or why the command
/// line is wrong (to stderr, exit status 64).
#[derive(Debug, PartialEq, Eq)]
pub enum CliStop {
    /// `--help`, `-V`: the text to print.
    Print(String),
    /// A usage error.
    Usage(String),
}

impl From<String> for CliStop {
    fn from(e: String) -> CliStop {
        CliStop::Usage(e)
    }
}

impl From<&str> for CliStop {
    fn from(e: &str) -> CliStop {
        CliStop::Usage(e.to_string())
    }
}

/// Parses `args` (program name first).
pub fn parse<I, T>(args: I) -> Result<Config, CliStop>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let m = Cli::command().try_get_matches_from(args).map_err(|e| {
        use clap::error::ErrorKind;
        match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => CliStop::Print(e.to_string()),
            _ => CliStop::Usage(e.to_string()),
        }
    })?;
    let cli = Cli::from_arg_matches(&m).map_err(|e| e.to_string())?;
    let targets = targets(&m, &cli)?;
    let (set, get) = cli
        .ratio
        .split_once(':')
        .and_then(|(s, g)| Some((s.trim().parse::<f64>().ok()?, g.trim().parse::<f64>().ok()?)))
        .filter(|&(s, g)| s >= 0.0 && g >= 0.0 && s + g > 0.0)
        .ok_or_else(|| format!("--ratio {}: expected SET:GET, e.g. 1:10", cli.ratio))?;
    if cli.connections == 0 || cli.pipeline == 0 || cli.keys == 0 {
        return Err("--connections, --pipeline and --keys must be at least 1".into());
    }
    if cli.key_size > 250 {
        return Err("--key-size: at most 250".into());
    }
    let dist = match cli.key_dist {
        Dist::Uniform => KeyDist::Uniform,
        Dist::Zipf => KeyDist::zipf(cli.keys, cli.zipf_s),
    };
    let duration = match (cli.duration, cli.requests) {
        (Some(d), _) if !(d > 0.0 && d < 86_400.0) => {
            return Err("--duration: seconds, more than 0".into())
        }
        (Some(d), _) => Some(Duration::from_secs_f64(d)),
        (None, None) => Some(Duration::from_secs(10)),
        (None, Some(_)) => None,
    };
    let load = Load {
        connections: cli.connections,
        pipeline: cli.pipeline,
        keys: cli.keys,
        dist,
        set_share: set / (set + get),
        duration,
        requests: cli.requests,
        seed: cli.seed,
        timeout: Duration::from_secs_f64(cli.timeout.max(0.1)),
        prefill: !cli.no_prefill,
        watch_expiry: cli.watch_expiry.map(Duration::from_secs_f64),
        progress: true,
    };
    let spec = Spec {
        protocol: Protocol::Text,
        key_prefix: cli
            .key_prefix
            .clone()
            .map(String::into_bytes)
            .unwrap_or_default(),
        key_size: cli.key_size,
        value_size: cli.value_size,
        ttl: cli.ttl,
        zero_values: false,
        rl_limit: cli.rl_limit.max(1),
        rl_period_ms: cli.rl_period_ms.max(1),
        rl_burst: cli.rl_burst,
        rl_algo: cli.rl_algo,
        redis_fixed_sha: String::new(),
        redis_sliding_sha: String::new(),
    };
    Ok(Config {
        targets,
        load,
        spec,
        cli,
    })
}

/// The default key prefix of a workload.
pub fn default_prefix(w: Workload) -> &'static str {
    match w {
        Workload::Getset => "key:",
        Workload::Incr => "ctr:",
        Workload::Ratelimit => "rl:",
        Workload::RedisFixed => "rlfw:",
        Workload::RedisSliding => "rlsl:",
        Workload::Fill => "fill:",
        Workload::RlFill => "rlfill:",
    }
}

/// Attaches each per-server option to the `--server` given before it.
fn targets(m: &ArgMatches, cli: &Cli) -> Result<Vec<Target>, String> {
    let server_at: Vec<usize> = m
        .indices_of("servers")
        .map(Iterator::collect)
        .unwrap_or_default();
    let owner = |flag: &str, idx: usize| -> Result<usize, String> {
        server_at
            .iter()
            .rposition(|&s| s < idx)
            .ok_or_else(|| format!("--{flag} must follow the --server it belongs to"))
    };
    let mut targets: Vec<Target> = cli
        .servers
        .iter()
        .map(|addr| Target {
            name: addr.clone(),
            addr: addr.clone(),
            pid: None,
            protocol: cli.protocol,
            workload: cli.workload,
        })
        .collect();
    fn each<T: Clone>(m: &ArgMatches, id: &str, vals: &[T]) -> Vec<(usize, T)> {
        m.indices_of(id)
            .map(|ix| ix.zip(vals.iter().cloned()).collect())
            .unwrap_or_default()
    }
    for (i, v) in each(m, "names", &cli.names) {
        targets[owner("name", i)?].name = v;
    }
    for (i, v) in each(m, "pids", &cli.pids) {
        targets[owner("server-pid", i)?].pid = Some(v);
    }
    for (i, v) in each(m, "server_protocols", &cli.server_protocols) {
        targets[owner("server-protocol", i)?].protocol = v;
    }
    for (i, v) in each(m, "server_workloads", &cli.server_workloads) {
        targets[owner("server-workload", i)?].workload = v;
    }
    for t in &targets {
        let redis_only = matches!(t.workload, Workload::RedisFixed | Workload::RedisSliding);
        if redis_only && t.protocol != Protocol::Redis {
            return Err(format!(
                "{}: workload {:?} needs --protocol redis",
                t.name, t.workload
            ));
        }
        if t.protocol == Protocol::Redis && t.workload == Workload::Ratelimit {
            return Err(format!(
                "{}: Redis has no ratelimit command: use redis-fixed or redis-sliding",
                t.name
            ));
        }
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_and_version_are_printed_and_usage_errors_are_not() {
        let stop = |args: &[&str]| parse(args.iter().copied()).err().expect("no config");
        let CliStop::Print(help) = stop(&["ratecache-bench", "--help"]) else {
            panic!("--help is not a usage error")
        };
        assert!(
            help.contains("Usage") && help.contains("--pipeline"),
            "{help}"
        );
        let CliStop::Print(version) = stop(&["ratecache-bench", "-V"]) else {
            panic!("-V is not a usage error")
        };
        assert!(version.starts_with("ratecache-bench "), "{version}");
        assert!(matches!(
            stop(&["ratecache-bench", "--bogus"]),
            CliStop::Usage(_)
        ));
    }

    #[test]
    fn per_server_options_follow_their_server() {
        let c = parse([
            "b",
            "--server",
            "127.0.0.1:1",
            "--name",
            "a",
            "--server-pid",
            "5",
            "--server",
            "127.0.0.1:2",
            "--server-protocol",
            "redis",
            "--server-workload",
            "redis-fixed",
            "--name",
            "r",
            "--workload",
            "ratelimit",
        ])
        .unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(
            (c.targets[0].name.as_str(), c.targets[0].pid),
            ("a", Some(5))
        );
        assert_eq!(c.targets[0].workload, Workload::Ratelimit);
        assert_eq!(c.targets[1].name, "r");
        assert_eq!(c.targets[1].protocol, Protocol::Redis);
        assert_eq!(c.targets[1].workload, Workload::RedisFixed);
        assert!((c.load.set_share - 1.0 / 11.0).abs() < 1e-9);
    }

    #[test]
    fn rl_fill_runs_on_every_protocol_with_its_own_prefix() {
        let c = parse([
            "b",
            "--server",
            "h:1",
            "--server",
            "h:2",
            "--server-protocol",
            "redis",
            "--workload",
            "rl-fill",
        ])
        .unwrap();
        assert!(c.targets.iter().all(|t| t.workload == Workload::RlFill));
        assert_eq!(c.targets[1].protocol, Protocol::Redis);
        assert_eq!(default_prefix(Workload::RlFill), "rlfill:");
        assert!(Workload::RlFill.fills() && Workload::Fill.fills());
        assert!(!Workload::Ratelimit.fills());
    }

    #[test]
    fn bad_combinations_are_refused() {
        assert!(parse(["b", "--name", "x", "--server", "h:1"]).is_err());
        assert!(parse([
            "b",
            "--server",
            "h:1",
            "--protocol",
            "redis",
            "--workload",
            "ratelimit"
        ])
        .is_err());
        assert!(parse(["b", "--server", "h:1", "--workload", "redis-fixed"]).is_err());
        assert!(parse(["b", "--server", "h:1", "--ratio", "1-10"]).is_err());
        assert!(parse([
            "b",
            "--server",
            "h:1",
            "--protocol",
            "redis",
            "--workload",
            "getset"
        ])
        .is_ok());
    }
}
