//! Server configuration: memcached 1.6.18-compatible command line flags and the limits they set.
//!
//! [`parse`] turns `argv` into an [`Action`]; everything else in the server reads [`Config`].
//!
//! The command line is read by a small getopt_long(3) emulation instead of clap, because
//! memcached's syntax is exactly glibc getopt's and clap would change it: options are handled
//! strictly in order (`-h -t 0` prints help, `-t 0 -h` fails), non-option arguments anywhere are
//! skipped, long options may be abbreviated to any unambiguous prefix (`--thr=8`), `--verbose`
//! takes an optional `=value`, and the errors are getopt's and memcached's own words.
//!
//! Values are checked more strictly than memcached's `atoi`: memcached reads `-p abc` as port 0
//! and `-m 1g` as 1 MB; here both are errors. Where memcached refuses a value, our message is
//! its message.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

/// memcached's slab page size; fixed in 1.6 (large items are chained, pages do not grow).
const SLAB_PAGE_SIZE: usize = 1024 * 1024;
/// Smallest `-I` memcached accepts (ITEM_SIZE_MAX_LOWER_LIMIT).
const ITEM_SIZE_MIN: u64 = 1024;
/// Largest `-I` memcached accepts (ITEM_SIZE_MAX_UPPER_LIMIT).
const ITEM_SIZE_MAX: u64 = 1024 * 1024 * 1024;
/// The memcached release whose command line this module reproduces.
const MEMCACHED_VERSION: &str = "1.6.18";

/// Which wire protocols a server accepts (`-B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// Pick per connection: first byte 0x80 selects binary.
    Auto,
    /// Text (classic + meta) only.
    Ascii,
    /// Binary only.
    Binary,
}

/// Everything the server needs to know to run, with memcached's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    /// `-p`: TCP port (default 11211; 0 disables TCP). `-U` alone sets it too, as in memcached.
    pub port: u16,
    /// `-l`: interfaces to listen on (default `127.0.0.1`, unlike memcached's all interfaces).
    /// Each entry is `HOST` or `HOST:PORT` (an explicit port replaces `-p`/`-U` for that
    /// interface); IPv6 literals are bracketed (`[::1]`, `[::1]:11311`) and `*` means all
    /// interfaces. [`split_listen_addr`] takes an entry apart.
    pub listen: Vec<String>,
    /// `-U`: UDP port (0 = off, the default).
    pub udp_port: u16,
    /// `-s`: unix socket path; when set, TCP and UDP are off as in memcached.
    pub unix_socket: Option<PathBuf>,
    /// `-a`: access mask of the unix socket (octal, default 0700).
    pub unix_mask: u32,
    /// `-A`: enable the `shutdown` command.
    pub enable_shutdown: bool,
    /// `-Y`: ascii authentication token file.
    pub auth_file: Option<PathBuf>,
    /// `-S`: binary SASL authentication.
    pub sasl: bool,
    /// `-d`: run as a daemon.
    pub daemonize: bool,
    /// `-P`: pid file (with `-d`).
    pub pid_file: Option<PathBuf>,
    /// `-u`: user to run as.
    pub user: Option<String>,
    /// `-m`: item memory limit in bytes (default 64 MiB).
    pub memory_limit: u64,
    /// `-c`: maximum simultaneous connections (default 1024).
    pub max_connections: usize,
    /// `-t`: worker threads (default 4).
    pub threads: usize,
    /// `-I`: maximum item size in bytes (default 1 MiB).
    pub max_item_size: usize,
    /// `-M`: answer out-of-memory errors instead of evicting.
    pub no_evict: bool,
    /// `-C`: when false, cas uniques are disabled (all zero).
    pub use_cas: bool,
    /// `-F`: disable `flush_all`.
    pub disable_flush: bool,
    /// `-b`: listen backlog (default 1024).
    pub backlog: u32,
    /// `-B`: accepted protocols (`-S` implies binary and `-Y` ascii unless `-B` is given).
    pub protocol: ProtocolChoice,
    /// `-R`: maximum requests served per event before yielding (default 20).
    pub reqs_per_event: u32,
    /// `-f`: slab chunk growth factor (default 1.25).
    pub factor: f64,
    /// `-n`: minimum space for key + value + flags (default 48).
    pub min_chunk: usize,
    /// `-L`: large memory pages (accepted, ignored).
    pub large_pages: bool,
    /// `-D`: key prefix delimiter for `stats detail`.
    pub prefix_delimiter: u8,
    /// `-D` given: per-prefix stats collection starts on, as after `stats detail on`.
    pub detail_enabled: bool,
    /// `-v` count: 0 quiet, 1 errors/warnings, 2 requests/responses, 3 internal state.
    pub verbosity: u8,
    /// `-o slab_chunk_max` (bytes): largest slab chunk; larger items are chained (default
    /// 512 KiB; `-o no_chunked_items` or `-o no_modern` set it to the page size).
    pub slab_chunk_max: usize,
    /// Slab page size: 1 MiB, fixed as in memcached 1.6 (no flag sets it); `-I` and
    /// `slab_chunk_max` are checked against it.
    pub slab_page_size: usize,
    /// `-o idle_timeout`: seconds a connection may sit idle before it is closed (0 = never).
    pub idle_timeout: u32,
    /// `-e FILE`: where a graceful stop (SIGUSR1, `shutdown graceful`) saves the items and the
    /// rate-limit states, and where the next start restores them from.
    pub memory_file: Option<PathBuf>,
    /// `-o ratelimit_snapshot=SECONDS`: also save the rate-limit states to the `-e` file this
    /// often (0 = only at a graceful stop), so a crash loses at most that much.
    pub ratelimit_snapshot: u32,
    /// `-o ratelimit_memory=MB`: bytes the rate-limit states may use, apart from `-m`.
    pub ratelimit_memory: u64,
    /// `-o ratelimit_full=evict|deny`: when the rate-limit memory is full, evict the state
    /// closest to full (true, the default) or refuse new subjects.
    pub ratelimit_evict: bool,
    /// `--policies FILE`: named rate-limit policies (TOML), reloaded on SIGHUP.
    pub policies: Option<PathBuf>,
    /// Flags and `-o` options accepted for compatibility but without effect, for `-v`.
    pub ignored: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 11211,
            listen: vec!["127.0.0.1".to_string()],
            udp_port: 0,
            unix_socket: None,
            unix_mask: 0o700,
            enable_shutdown: false,
            auth_file: None,
            sasl: false,
            daemonize: false,
            pid_file: None,
            user: None,
            memory_limit: 64 * 1024 * 1024,
            max_connections: 1024,
            threads: 4,
            max_item_size: 1024 * 1024,
            no_evict: false,
            use_cas: true,
            disable_flush: false,
            backlog: 1024,
            protocol: ProtocolChoice::Auto,
            reqs_per_event: 20,
            factor: 1.25,
            min_chunk: 48,
            large_pages: false,
            prefix_delimiter: b':',
            detail_enabled: false,
            verbosity: 0,
            slab_chunk_max: 512 * 1024,
            slab_page_size: SLAB_PAGE_SIZE,
            idle_timeout: 0,
            memory_file: None,
            ratelimit_snapshot: 0,
            ratelimit_memory: 64 << 20,
            ratelimit_evict: true,
            policies: None,
            ignored: Vec::new(),
        }
    }
}

/// What `main` should do after reading the command line.
#[derive(Debug)]
pub enum Action {
    /// Start the server with this configuration.
    Run(Box<Config>),
    /// Print this text to stdout and exit 0 (`-h`, `-V`, `-i`).
    Print(String),
}

/// A command line memcached would refuse: printed to stderr, exit code non-zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Parses memcached-style arguments (without the program name).
pub fn parse<I, S>(args: I) -> Result<Action, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    let args = args
        .into_iter()
        .map(|a| {
            a.into()
                .into_string()
                .map_err(|a| err(format!("argument is not valid UTF-8: {a:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut parser = Parser::new();
    for arg in Getopt::new(args) {
        match arg? {
            // memcached (getopt) silently skips non-option arguments.
            Arg::Free(word) => parser.ignore(format!("non-option argument \"{word}\"")),
            Arg::Opt(c, value) => {
                if let Some(action) = parser.option(c, value.as_deref().unwrap_or(""))? {
                    return Ok(action);
                }
            }
        }
    }
    parser.finish().map(|cfg| Action::Run(Box::new(cfg)))
}

/// Splits a [`Config::listen`] entry into host (brackets removed) and explicit port:
/// `"10.0.0.1:11311"` gives `("10.0.0.1", Some(11311))`, `"[::1]"` gives `("::1", None)`,
/// `"*"` gives `("*", None)`.
pub fn split_listen_addr(entry: &str) -> (&str, Option<u16>) {
    if let Some((host, tail)) = entry.strip_prefix('[').and_then(|r| r.split_once(']')) {
        return (host, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match entry.split_once(':') {
        Some((host, port)) => (host, port.parse().ok()),
        None => (entry, None),
    }
}

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

// ---------------------------------------------------------------------------------------------
// getopt_long emulation

/// memcached's getopt short option string: a letter followed by `:` takes an argument.
const SHORT_OPTS: &str = "a:AZp:s:U:m:Mc:khiVrvdl:u:P:f:n:t:D:LR:Cb:B:I:SFXWY:e:o:N:";

/// Whether a long option takes an argument (getopt's `has_arg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HasArg {
    No,
    Required,
    Optional,
}

/// memcached's long options in its table order, which getopt follows when it lists the
/// candidates of an ambiguous abbreviation.
const LONG_OPTS: &[(&str, HasArg, char)] = &[
    ("unix-mask", HasArg::Required, 'a'),
    ("enable-shutdown", HasArg::No, 'A'),
    ("enable-ssl", HasArg::No, 'Z'),
    ("port", HasArg::Required, 'p'),
    ("unix-socket", HasArg::Required, 's'),
    ("udp-port", HasArg::Required, 'U'),
    ("memory-limit", HasArg::Required, 'm'),
    ("disable-evictions", HasArg::No, 'M'),
    ("conn-limit", HasArg::Required, 'c'),
    ("lock-memory", HasArg::No, 'k'),
    ("help", HasArg::No, 'h'),
    ("license", HasArg::No, 'i'),
    ("version", HasArg::No, 'V'),
    ("enable-coredumps", HasArg::No, 'r'),
    ("verbose", HasArg::Optional, 'v'),
    ("daemon", HasArg::No, 'd'),
    ("listen", HasArg::Required, 'l'),
    ("user", HasArg::Required, 'u'),
    ("pidfile", HasArg::Required, 'P'),
    ("slab-growth-factor", HasArg::Required, 'f'),
    ("slab-min-size", HasArg::Required, 'n'),
    ("threads", HasArg::Required, 't'),
    ("enable-largepages", HasArg::No, 'L'),
    ("max-reqs-per-event", HasArg::Required, 'R'),
    ("disable-cas", HasArg::No, 'C'),
    ("listen-backlog", HasArg::Required, 'b'),
    ("protocol", HasArg::Required, 'B'),
    ("max-item-size", HasArg::Required, 'I'),
    ("enable-sasl", HasArg::No, 'S'),
    ("disable-flush-all", HasArg::No, 'F'),
    ("disable-dumping", HasArg::No, 'X'),
    ("disable-watch", HasArg::No, 'W'),
    ("auth-file", HasArg::Required, 'Y'),
    ("memory-file", HasArg::Required, 'e'),
    ("extended", HasArg::Required, 'o'),
    ("napi-ids", HasArg::Required, 'N'),
    // ratecached's own options (long form only).
    ("policies", HasArg::Required, POLICIES),
];

/// Option letter of `--policies` (it has no short form).
const POLICIES: char = '\u{1}';

/// One command line element as getopt returns it.
#[derive(Debug, PartialEq, Eq)]
enum Arg {
    /// An option (by its short letter) and its argument.
    Opt(char, Option<String>),
    /// A non-option argument.
    Free(String),
}

/// GNU getopt_long over owned arguments, permuting mode: non-options are yielded in place.
struct Getopt {
    args: std::vec::IntoIter<String>,
    /// Unread rest of a short option cluster (`vp11211` after the first `-v` of `-vvp11211`).
    cluster: String,
    /// `--` was seen: everything after it is a non-option.
    end: bool,
}

impl Getopt {
    fn new(args: Vec<String>) -> Self {
        Getopt {
            args: args.into_iter(),
            cluster: String::new(),
            end: false,
        }
    }

    fn short(&mut self, cluster: &str) -> Result<Arg, ConfigError> {
        let mut chars = cluster.chars();
        let c = chars.next().unwrap_or('-');
        let rest = chars.as_str();
        let Some(at) = SHORT_OPTS.find(c).filter(|_| c != ':') else {
            return Err(err(format!("invalid option -- '{c}'")));
        };
        if !SHORT_OPTS[at + 1..].starts_with(':') {
            self.cluster = rest.to_string();
            return Ok(Arg::Opt(c, None));
        }
        if !rest.is_empty() {
            return Ok(Arg::Opt(c, Some(rest.to_string())));
        }
        match self.args.next() {
            Some(value) => Ok(Arg::Opt(c, Some(value))),
            None => Err(err(format!("option requires an argument -- '{c}'"))),
        }
    }

    fn long(&mut self, body: &str) -> Result<Arg, ConfigError> {
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let (long, has_arg, c) = match LONG_OPTS.iter().find(|o| o.0 == name) {
            Some(&exact) => exact,
            None => {
                // ratecached's own options match only in full, so every abbreviation memcached
                // accepts keeps its meaning.
                let found: Vec<_> = LONG_OPTS
                    .iter()
                    .filter(|o| o.2 != POLICIES && o.0.starts_with(name))
                    .collect();
                match found.as_slice() {
                    [] => return Err(err(format!("unrecognized option '--{body}'"))),
                    [&only] => only,
                    _ => {
                        let list: String = found.iter().map(|o| format!(" '--{}'", o.0)).collect();
                        return Err(err(format!(
                            "option '--{body}' is ambiguous; possibilities:{list}"
                        )));
                    }
                }
            }
        };
        let value = match (has_arg, inline) {
            (HasArg::No, Some(_)) => {
                return Err(err(format!("option '--{long}' doesn't allow an argument")))
            }
            (HasArg::Required, None) => Some(
                self.args
                    .next()
                    .ok_or_else(|| err(format!("option '--{long}' requires an argument")))?,
            ),
            (_, inline) => inline.map(str::to_string),
        };
        Ok(Arg::Opt(c, value))
    }
}

impl Iterator for Getopt {
    type Item = Result<Arg, ConfigError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.cluster.is_empty() {
            let cluster = std::mem::take(&mut self.cluster);
            return Some(self.short(&cluster));
        }
        let arg = self.args.next()?;
        if self.end || arg == "-" || !arg.starts_with('-') {
            return Some(Ok(Arg::Free(arg)));
        }
        if arg == "--" {
            self.end = true;
            return self.next();
        }
        Some(match arg.strip_prefix("--") {
            Some(long) => self.long(long),
            None => self.short(&arg[1..]),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Applying options

/// `-o` sub-options accepted for compatibility that change nothing here and need no value
/// check (a value, if given, is ignored as memcached ignores it).
const INERT_SUBOPTS: &[&str] = &[
    "maxconns_fast",
    "no_maxconns_fast",
    "no_hashexpand",
    "slab_reassign",
    "no_slab_reassign",
    "no_slab_automove",
    "lru_crawler",
    "no_lru_crawler",
    "lru_maintainer",
    "no_lru_maintainer",
    "track_sizes",
    "modern",
    "inline_ascii_resp",
    "no_inline_ascii_resp",
    "drop_privileges",
    "no_drop_privileges",
    "resp_obj_mem_limit",
    "ssl_session_cache",
    "ssl_kernel_tls",
    "ext_drop_unread",
];

/// `-o` sub-options without effect here whose value must be an unsigned 32-bit number.
const NUMERIC_SUBOPTS: &[&str] = &[
    "watcher_logbuf_size",
    "worker_logbuf_size",
    "read_buf_mem_limit",
    "sock_cookie_id",
    "ssl_keyformat",
    "ssl_wbuf_size",
    "ext_wbuf_size",
    "ext_threads",
    "ext_io_depth",
    "ext_item_size",
    "ext_item_age",
    "ext_low_ttl",
    "ext_recache_rate",
    "ext_compact_under",
    "ext_drop_under",
    "ext_max_sleep",
];

/// `-o` sub-options with value checks (see [`Parser::subopt`]) but no effect here.
const CHECKED_SUBOPTS: &[&str] = &[
    "hashpower",
    "hash_algorithm",
    "tail_repair_time",
    "slab_automove",
    "slab_automove_ratio",
    "slab_automove_window",
    "slab_automove_freeratio",
    "slab_sizes",
    "lru_crawler_sleep",
    "lru_crawler_tocrawl",
    "hot_lru_pct",
    "warm_lru_pct",
    "hot_max_factor",
    "warm_max_factor",
    "temporary_ttl",
    "ssl_chain_cert",
    "ssl_key",
    "ssl_ciphers",
    "ssl_ca_cert",
    "ssl_verify_mode",
    "ssl_min_version",
    "ext_path",
    "ext_page_size",
    "ext_max_frag",
];

/// The configuration being built plus what memcached remembers to cross-check at the end.
struct Parser {
    cfg: Config,
    /// `-I` in bytes, kept wide until it has been range-checked.
    item_size: u64,
    /// Raw `-l` arguments; checked at the end, as memcached only looks at them when binding.
    listen: Vec<String>,
    tcp_specified: bool,
    udp_specified: bool,
    protocol_specified: bool,
    /// `-o slab_chunk_max` was given, so `-I` above 1 MiB leaves slab_chunk_max alone.
    chunk_max_changed: bool,
    /// memcached's LRU maintainer state (on by default), which `temporary_ttl` needs.
    lru_maintainer: bool,
    temporary_ttl: bool,
    hot_lru_pct: i64,
    warm_lru_pct: i64,
    slab_sizes: Option<String>,
    ext_path: bool,
    napi_ids: Option<usize>,
}

impl Parser {
    fn new() -> Self {
        let cfg = Config::default();
        Parser {
            item_size: cfg.max_item_size as u64,
            cfg,
            listen: Vec::new(),
            tcp_specified: false,
            udp_specified: false,
            protocol_specified: false,
            chunk_max_changed: false,
            lru_maintainer: true,
            temporary_ttl: false,
            hot_lru_pct: 20,
            warm_lru_pct: 40,
            slab_sizes: None,
            ext_path: false,
            napi_ids: None,
        }
    }

    fn ignore(&mut self, note: impl std::fmt::Display) {
        self.cfg.ignored.push(format!("{note}: ignored"));
    }

    /// Applies one option; `-h`, `-V` and `-i` end parsing with text to print.
    fn option(&mut self, c: char, v: &str) -> Result<Option<Action>, ConfigError> {
        let cfg = &mut self.cfg;
        match c {
            'p' => {
                cfg.port = port(c, v)?;
                self.tcp_specified = true;
            }
            'U' => {
                cfg.udp_port = port(c, v)?;
                self.udp_specified = true;
            }
            's' => cfg.unix_socket = Some(v.into()),
            POLICIES => cfg.policies = Some(v.into()),
            'a' => {
                cfg.unix_mask = u32::from_str_radix(v, 8)
                    .ok()
                    .filter(|&mask| mask <= 0o7777)
                    .ok_or_else(|| err(format!("Invalid octal access mask for -a: \"{v}\"")))?
            }
            'A' => cfg.enable_shutdown = true,
            'l' => self.listen.push(v.to_string()),
            'd' => cfg.daemonize = true,
            'u' => cfg.user = Some(v.to_string()),
            'm' => {
                cfg.memory_limit = number::<u64>(c, v)?
                    .checked_mul(1024 * 1024)
                    .ok_or_else(|| bad_number(c, v))?
            }
            'M' => cfg.no_evict = true,
            'c' => {
                cfg.max_connections = positive(c, v, "Maximum connections must be greater than 0")?
            }
            'v' => cfg.verbosity = cfg.verbosity.saturating_add(1),
            'h' => return Ok(Some(Action::Print(usage()))),
            'i' => return Ok(Some(Action::Print(license()))),
            'V' => return Ok(Some(Action::Print(version()))),
            'P' => cfg.pid_file = Some(v.into()),
            'f' => {
                let factor = v
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .ok_or_else(|| bad_number(c, v))?;
                if factor <= 1.0 {
                    return Err(err("Factor must be greater than 1"));
                }
                cfg.factor = factor;
            }
            'n' => cfg.min_chunk = positive(c, v, "Chunk size must be greater than 0")?,
            't' => cfg.threads = positive(c, v, "Number of threads must be greater than 0")?,
            'D' => {
                // Only the first byte counts, as in memcached.
                let Some(&delimiter) = v.as_bytes().first() else {
                    return Err(err("No delimiter specified"));
                };
                cfg.prefix_delimiter = delimiter;
                cfg.detail_enabled = true;
            }
            'R' => {
                cfg.reqs_per_event =
                    positive(c, v, "Number of requests per event must be greater than 0")?
            }
            'C' => cfg.use_cas = false,
            'b' => cfg.backlog = number(c, v)?,
            'B' => {
                cfg.protocol = match v {
                    "auto" => ProtocolChoice::Auto,
                    "binary" => ProtocolChoice::Binary,
                    "ascii" => ProtocolChoice::Ascii,
                    _ => {
                        return Err(err(format!(
                            "Invalid value for binding protocol: {v} \
                             -- should be one of auto, binary, or ascii"
                        )))
                    }
                };
                self.protocol_specified = true;
            }
            'I' => self.item_size = item_size(v)?,
            'S' => cfg.sasl = true,
            'F' => cfg.disable_flush = true,
            'Y' => cfg.auth_file = Some(v.into()),
            // memcached's own answer when built without TLS; serving plaintext to someone who
            // asked for TLS would be worse than refusing.
            'Z' => return Err(err("This server is not built with TLS support.")),
            'L' => {
                cfg.large_pages = true;
                self.ignore("-L (--enable-largepages)");
            }
            'r' => self.ignore("-r (--enable-coredumps)"),
            'k' => self.ignore("-k (--lock-memory)"),
            'X' => self.ignore("-X (--disable-dumping)"),
            'W' => self.ignore("-W (--disable-watch)"),
            'e' => cfg.memory_file = Some(v.into()),
            'N' => {
                let n: usize = positive(c, v, "Maximum number of NAPI IDs must be greater than 0")?;
                self.napi_ids = Some(n);
                self.ignore(format!("-N (--napi-ids) {n}"));
            }
            'o' => self.extended(v)?,
            _ => unreachable!("getopt only returns letters of SHORT_OPTS"),
        }
        Ok(None)
    }

    /// `-o a,b=1,...`: getsubopt(3) splitting; a trailing comma ends the list, an empty item
    /// elsewhere is illegal.
    fn extended(&mut self, list: &str) -> Result<(), ConfigError> {
        let mut rest = list;
        while !rest.is_empty() {
            let (item, tail) = rest.split_once(',').unwrap_or((rest, ""));
            rest = tail;
            match item.split_once('=') {
                Some((name, value)) => self.subopt(item, name, Some(value))?,
                None => self.subopt(item, item, None)?,
            }
        }
        Ok(())
    }

    /// One `-o` sub-option, with memcached's checks and messages.
    fn subopt(&mut self, item: &str, name: &str, value: Option<&str>) -> Result<(), ConfigError> {
        let page = self.cfg.slab_page_size;
        match name {
            "slab_chunk_max" => {
                let v = need(value, "Missing slab_chunk_max argument")?;
                let bytes: i64 = sub_number(name, v)?;
                // memcached divides by zero on 0 and misbehaves on negatives.
                self.cfg.slab_chunk_max = usize::try_from(bytes)
                    .ok()
                    .filter(|&b| b > 0)
                    .ok_or_else(|| err("slab_chunk_max must be greater than 0"))?;
                self.chunk_max_changed = true;
                return Ok(());
            }
            "no_chunked_items" => {
                self.cfg.slab_chunk_max = page;
                return Ok(());
            }
            "idle_timeout" => {
                let v = need(value, "Missing numeric argument for idle_timeout")?;
                self.cfg.idle_timeout = sub_number(name, v)?;
                return Ok(());
            }
            "ratelimit_memory" => {
                let v = need(value, "Missing numeric argument for ratelimit_memory")?;
                let mb: u64 = sub_number(name, v)?;
                if mb == 0 || mb > 1 << 20 {
                    return Err(err("ratelimit_memory must be 1 to 1048576 megabytes"));
                }
                self.cfg.ratelimit_memory = mb << 20;
                return Ok(());
            }
            "ratelimit_snapshot" => {
                let v = need(value, "Missing numeric argument for ratelimit_snapshot")?;
                self.cfg.ratelimit_snapshot = sub_number(name, v)?;
                return Ok(());
            }
            "ratelimit_full" => {
                self.cfg.ratelimit_evict = match need(value, "Missing ratelimit_full argument")? {
                    "evict" => true,
                    "deny" => false,
                    _ => return Err(err("ratelimit_full must be evict or deny")),
                };
                return Ok(());
            }
            "no_modern" => {
                if !self.chunk_max_changed {
                    self.cfg.slab_chunk_max = page;
                }
                self.lru_maintainer = false;
                self.ignore("-o no_modern (apart from slab_chunk_max)");
                return Ok(());
            }
            "lru_maintainer" => self.lru_maintainer = true,
            "no_lru_maintainer" => self.lru_maintainer = false,
            _ if INERT_SUBOPTS.contains(&name) => {}
            _ if NUMERIC_SUBOPTS.contains(&name) => {
                sub_number::<u32>(name, need(value, format!("Missing {name} argument"))?)?;
            }
            "hashpower" => {
                let v = need(value, "Missing numeric argument for hashpower")?;
                let n: i64 = sub_number(name, v)?;
                if n < 12 {
                    return Err(err(format!(
                        "Initial hashtable multiplier of {n} is too low"
                    )));
                }
                if n > 32 {
                    return Err(err(format!(
                        "Initial hashtable multiplier of {n} is too high. Choose a value \
                         based on \"STAT hash_power_level\" from a running instance"
                    )));
                }
            }
            "hash_algorithm" => {
                let v = need(value, "Missing hash_algorithm argument")?;
                if !["jenkins", "murmur3", "xxh3"].contains(&v) {
                    return Err(err(
                        "Unknown hash_algorithm option (jenkins, murmur3, xxh3)",
                    ));
                }
            }
            "tail_repair_time" => {
                let v = need(value, "Missing numeric argument for tail_repair_time")?;
                if sub_number::<i64>(name, v)? < 10 {
                    return Err(err("Cannot set tail_repair_time to less than 10 seconds"));
                }
            }
            "slab_automove" => {
                if let Some(v) = value {
                    if !(0..=2).contains(&sub_number::<i64>(name, v)?) {
                        return Err(err("slab_automove must be between 0 and 2"));
                    }
                }
            }
            "slab_automove_ratio" => {
                let v = need(value, "Missing slab_automove_ratio argument")?;
                let ratio: f64 = sub_number(name, v)?;
                // memcached's test is `<= 0 || > 1`, whatever its message says.
                if ratio <= 0.0 || ratio > 1.0 {
                    return Err(err("slab_automove_ratio must be > 0 and < 1"));
                }
            }
            "slab_automove_window" => {
                let v = need(value, "Missing slab_automove_window argument")?;
                if sub_number::<i64>(name, v)? < 3 {
                    return Err(err("slab_automove_window must be > 2"));
                }
            }
            "slab_sizes" => {
                // Checked at the end against the final -n and slab_chunk_max.
                let v = need(value, "Missing slab_sizes argument")?;
                self.slab_sizes = Some(v.to_string());
            }
            "lru_crawler_sleep" => {
                let v = need(value, "Missing lru_crawler_sleep value")?;
                if !(0..=1_000_000).contains(&sub_number::<i64>(name, v)?) {
                    return Err(err("LRU crawler sleep must be between 0 and 1 second"));
                }
            }
            "lru_crawler_tocrawl" => {
                let v = need(value, "Missing lru_crawler_tocrawl value")?;
                v.parse::<u32>()
                    .map_err(|_| err("lru_crawler_tocrawl takes a numeric 32bit value"))?;
            }
            "hot_lru_pct" | "warm_lru_pct" => {
                let v = need(value, format!("Missing {name} argument"))?;
                let pct: i64 = sub_number(name, v)?;
                // memcached's test is `< 1 || >= 80`, whatever its message says.
                if !(1..80).contains(&pct) {
                    return Err(err(format!("{name} must be > 1 and < 80")));
                }
                if name == "hot_lru_pct" {
                    self.hot_lru_pct = pct;
                } else {
                    self.warm_lru_pct = pct;
                }
            }
            "hot_max_factor" | "warm_max_factor" => {
                let v = need(value, format!("Missing {name} argument"))?;
                if sub_number::<f64>(name, v)? <= 0.0 {
                    return Err(err(format!("{name} must be > 0")));
                }
            }
            "temporary_ttl" => {
                sub_number::<u32>(name, need(value, "Missing temporary_ttl argument")?)?;
                self.temporary_ttl = true;
            }
            "ssl_chain_cert" | "ssl_key" | "ssl_ciphers" | "ssl_ca_cert" => {
                need(value, format!("Missing {name} argument"))?;
            }
            "ssl_verify_mode" | "ssl_min_version" => {
                let v = need(value, format!("Missing {name} argument"))?;
                if sub_number::<u32>(name, v)? > 3 {
                    return Err(err(format!(
                        "Invalid {name}. Use help to see valid options."
                    )));
                }
            }
            "ext_page_size" => {
                sub_number::<u32>(name, need(value, "Missing ext_page_size argument")?)?;
                if self.ext_path {
                    return Err(err(
                        "Must specify ext_page_size before any ext_path arguments",
                    ));
                }
            }
            "ext_max_frag" | "slab_automove_freeratio" => {
                sub_number::<f64>(name, need(value, format!("Missing {name} argument"))?)?;
            }
            "ext_path" => {
                let v = need(
                    value,
                    "missing argument to ext_path, ie: ext_path=/d/file:5G",
                )?;
                match v.split_once(':') {
                    Some((path, size)) if !path.is_empty() && !size.is_empty() => {}
                    _ => {
                        return Err(err("must supply size to ext_path, \
                             ie: ext_path=/f/e:64m (M|G|T|P supported)"))
                    }
                }
                self.ext_path = true;
            }
            _ => return Err(err(format!("Illegal suboption \"{item}\""))),
        }
        self.ignore(format!("-o {item}"));
        Ok(())
    }

    /// memcached's checks between flags, in its order, then the `-l` entries.
    fn finish(mut self) -> Result<Config, ConfigError> {
        let threads = self.cfg.threads;
        if let Some(n) = self.napi_ids.filter(|&n| n > threads) {
            return Err(err(format!(
                "Number of napi_ids({n}) cannot be greater than number of threads({threads})"
            )));
        }
        let item = self.item_size;
        if item < ITEM_SIZE_MIN {
            return Err(err("Item max size cannot be less than 1024 bytes."));
        }
        if item > self.cfg.memory_limit / 2 {
            return Err(err(
                "Cannot set item size limit higher than 1/2 of memory max.",
            ));
        }
        if item > ITEM_SIZE_MAX {
            return Err(err("Cannot set item size limit higher than a gigabyte."));
        }
        let item = item as usize; // at most 1 GiB
        let page = self.cfg.slab_page_size;
        if item > 1024 * 1024 && !self.chunk_max_changed {
            self.cfg.slab_chunk_max = page / 2;
        }
        let chunk = self.cfg.slab_chunk_max;
        if chunk > item {
            return Err(err(format!(
                "slab_chunk_max (bytes: {chunk}) cannot be larger than -I (item_size_max {item})"
            )));
        }
        if !item.is_multiple_of(chunk) {
            return Err(err(format!(
                "-I (item_size_max: {item}) must be evenly divisible by slab_chunk_max (bytes: {chunk})"
            )));
        }
        if !page.is_multiple_of(chunk) {
            return Err(err(format!(
                "slab_chunk_max (bytes: {chunk}) must divide evenly into {page} (slab_page_size)"
            )));
        }
        self.cfg.max_item_size = item;
        if let Some(sizes) = &self.slab_sizes {
            check_slab_sizes(sizes, self.cfg.min_chunk, chunk)?;
        }
        if self.hot_lru_pct + self.warm_lru_pct > 80 {
            return Err(err(
                "hot_lru_pct + warm_lru_pct cannot be more than 80% combined",
            ));
        }
        if self.temporary_ttl && !self.lru_maintainer {
            return Err(err("temporary_ttl requires lru_maintainer to be enabled"));
        }

        let cfg = &mut self.cfg;
        if cfg.ratelimit_snapshot > 0 && cfg.memory_file.is_none() {
            return Err(err(
                "ratelimit_snapshot needs -e (--memory-file) to write to",
            ));
        }
        if cfg.sasl {
            if !self.protocol_specified {
                cfg.protocol = ProtocolChoice::Binary;
            } else if cfg.protocol != ProtocolChoice::Binary {
                return Err(err(
                    "ERROR: You cannot allow the ASCII protocol while using SASL.",
                ));
            }
            if cfg.udp_port != 0 {
                return Err(err(
                    "ERROR: Cannot enable UDP while using binary SASL authentication.",
                ));
            }
        }
        if cfg.auth_file.is_some() {
            if !self.protocol_specified {
                cfg.protocol = ProtocolChoice::Ascii;
            } else if cfg.protocol != ProtocolChoice::Ascii {
                return Err(err(
                    "ERROR: You cannot allow the BINARY protocol while using \
                     ascii authentication tokens.",
                ));
            }
        }
        if self.udp_specified && cfg.udp_port != 0 && !self.tcp_specified {
            cfg.port = cfg.udp_port;
        }
        if cfg.auth_file.is_some() && cfg.udp_port != 0 {
            return Err(err(
                "Cannot use UDP with ascii authentication enabled (-U 0 to disable)",
            ));
        }
        if self.ext_path && cfg.udp_port != 0 {
            return Err(err(
                "Cannot use UDP with extstore enabled (-U 0 to disable)",
            ));
        }

        // memcached resolves -l only when it binds, so only when TCP or UDP is on.
        let network = cfg.unix_socket.is_none() && (cfg.port != 0 || cfg.udp_port != 0);
        if !self.listen.is_empty() {
            cfg.listen.clear();
        }
        for raw in &self.listen {
            let specs: Vec<&str> = raw.split([',', ';']).filter(|s| !s.is_empty()).collect();
            if specs.is_empty() {
                // memcached would start without any TCP/UDP listener.
                return Err(err(format!("No interface given to -l: \"{raw}\"")));
            }
            for spec in specs {
                let entry = listen_entry(spec, network, &mut cfg.ignored)?;
                if !cfg.listen.contains(&entry) {
                    cfg.listen.push(entry);
                }
            }
        }
        if cfg.unix_socket.is_some()
            && (self.tcp_specified || self.udp_specified || !self.listen.is_empty())
        {
            cfg.ignored
                .push("-p/-U/-l: ignored: -s disables network support".to_string());
        }
        Ok(self.cfg)
    }
}

/// Validates and normalizes one `-l` item: `[notls:][proto[NAME]:][tag[NAME]:]HOST[:PORT]`,
/// HOST being `*`, a name, an IPv4 literal, or an IPv6 literal (bracketed when a port follows).
///
/// memcached reports these errors, and unknown host names, only when it binds (and adds a
/// second line, `failed to listen on one of interface(s) ...: Success`); here they are
/// reported while parsing, with the same first line.
fn listen_entry(spec: &str, resolve: bool, notes: &mut Vec<String>) -> Result<String, ConfigError> {
    let mut p = spec;
    if p.starts_with("notls:") {
        // TLS is never on here (-Z is refused).
        return Err(err("'notls' option is valid only when SSL is enabled"));
    }
    if let Some(rest) = p.strip_prefix("proto[") {
        let Some((name, rest)) = rest.split_once("]:") else {
            return Err(err(format!("Invalid protocol spec: \"[{rest}\"")));
        };
        if name == "proxy" {
            return Err(err(format!(
                "Server not built with proxy: \"proto[{name}\""
            )));
        }
        notes.push(format!("-l {spec}: protocol \"{name}\": ignored"));
        p = rest;
    }
    if let Some(rest) = p.strip_prefix("tag[") {
        let Some((tag, rest)) = rest.split_once("]:") else {
            return Err(err(format!("Invalid tag in socket config: \"[{rest}\"")));
        };
        if tag.is_empty() || tag.len() > 8 {
            return Err(err(format!(
                "Listener tags must be between 1 and 8 characters: \"{tag}\""
            )));
        }
        notes.push(format!("-l {spec}: tag \"{tag}\": ignored"));
        p = rest;
    }
    let (host, port) = if let Some(rest) = p.strip_prefix('[') {
        let bad = || err(format!("Invalid IPV6 address: \"{p}\""));
        let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
        match tail {
            "" => (host, None),
            _ => (host, Some(tail.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match p.split_once(':') {
            // More than one colon: an IPv6 address without a port.
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            _ => (p, None),
        }
    };
    let port = port
        .map(|s| {
            s.parse::<u16>()
                .map_err(|_| err(format!("Invalid port number: \"{s}\"")))
        })
        .transpose()?;
    if resolve && host != "*" && host.parse::<IpAddr>().is_err() {
        let failed = |why: String| {
            err(format!(
                "failed to listen on one of interface(s) {spec}: getaddrinfo(): {why}"
            ))
        };
        match (host, 0).to_socket_addrs() {
            Ok(mut addrs) => {
                if addrs.next().is_none() {
                    return Err(failed("no address".to_string()));
                }
            }
            Err(e) => {
                let why = e.to_string();
                let why = why.strip_prefix("failed to lookup address information: ");
                return Err(failed(why.unwrap_or(&e.to_string()).to_string()));
            }
        }
    }
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Ok(match port {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// `-o slab_sizes=A-B-C`: memcached's `_parse_slab_sizes` checks.
fn check_slab_sizes(list: &str, min: usize, max: usize) -> Result<(), ConfigError> {
    if list.is_empty() {
        // memcached exits without a message.
        return Err(err("Missing slab_sizes argument"));
    }
    let mut last = 0;
    for (count, token) in list.split('-').filter(|t| !t.is_empty()).enumerate() {
        let size = token
            .parse::<u32>()
            .ok()
            .map(|s| s as usize)
            .filter(|s| (min..=max).contains(s))
            .ok_or_else(|| err(format!("slab size {token} is out of valid range")))?;
        if last >= size {
            return Err(err(format!(
                "slab size {size} cannot be lower than or equal to a previous class size"
            )));
        }
        if size <= last + 8 {
            return Err(err(format!(
                "slab size {size} must be at least 8 bytes larger than previous class"
            )));
        }
        if count + 1 >= 63 {
            return Err(err("too many slab classes specified"));
        }
        last = size;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Values

fn bad_number(flag: char, v: &str) -> ConfigError {
    err(format!("Invalid numeric argument for -{flag}: \"{v}\""))
}

fn number<T: FromStr>(flag: char, v: &str) -> Result<T, ConfigError> {
    v.parse().map_err(|_| bad_number(flag, v))
}

/// A count that memcached requires to be above zero, with memcached's message when it is not.
fn positive<T: TryFrom<i64>>(flag: char, v: &str, message: &str) -> Result<T, ConfigError> {
    let n: i64 = number(flag, v)?;
    if n <= 0 {
        return Err(err(message));
    }
    T::try_from(n).map_err(|_| bad_number(flag, v))
}

fn port(flag: char, v: &str) -> Result<u16, ConfigError> {
    let n: i64 = number(flag, v)?;
    u16::try_from(n).map_err(|_| err(format!("ERROR: Invalid port number {n}.")))
}

/// `-I`: bytes, or a number with a `k`/`K` or `m`/`M` suffix.
fn item_size(v: &str) -> Result<u64, ConfigError> {
    let (digits, unit) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1024),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1024 * 1024),
        _ => (v, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| bad_number('I', v))
}

fn need(value: Option<&str>, missing: impl Into<String>) -> Result<&str, ConfigError> {
    value.ok_or_else(|| err(missing))
}

fn sub_number<T: FromStr>(name: &str, v: &str) -> Result<T, ConfigError> {
    v.parse()
        .map_err(|_| err(format!("could not parse argument to {name}")))
}

// ---------------------------------------------------------------------------------------------
// Texts

fn version() -> String {
    format!(
        "ratecached {} (memcached {MEMCACHED_VERSION} compatible)\n",
        env!("CARGO_PKG_VERSION")
    )
}

fn license() -> String {
    format!(
        "ratecached {}\n\nDistributed under the {} license.\n",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_LICENSE")
    )
}

/// `-h`: memcached's usage text with ratecached's defaults; flags without effect say so.
fn usage() -> String {
    let d = Config::default();
    let mut ignored: Vec<&str> = INERT_SUBOPTS.to_vec();
    ignored.extend(NUMERIC_SUBOPTS);
    ignored.extend(CHECKED_SUBOPTS);
    ignored.sort_unstable();
    let mut names = String::new();
    let mut line = String::from("    ");
    for name in ignored {
        if line.len() + name.len() + 2 > 80 {
            names.push_str(line.trim_end());
            names.push('\n');
            line = String::from("    ");
        }
        line.push_str(name);
        line.push_str(", ");
    }
    names.push_str(line.trim_end_matches([' ', ',']));
    format!(
        r#"{version}-p, --port=<num>          TCP port to listen on (default: {port})
-U, --udp-port=<num>      UDP port to listen on (default: {udp}, off)
-s, --unix-socket=<file>  UNIX socket to listen on (disables network support)
-a, --unix-mask=<mask>    access mask for UNIX socket, in octal (default: {mask:o})
-A, --enable-shutdown     enable ascii "shutdown" command
-l, --listen=<addr>       interface to listen on (default: {listen}, loopback only;
                          use -l 0.0.0.0 or -l '*' for all interfaces).
                          <addr>[:<port>], [<ipv6>]:<port>, comma separated or repeated
-d, --daemon              run as a daemon
-r, --enable-coredumps    maximize core file limit (ignored)
-u, --user=<user>         assume identity of <username> (only when run as root)
-m, --memory-limit=<num>  item memory in megabytes (default: {mem})
-M, --disable-evictions   return error on memory exhausted instead of evicting
-c, --conn-limit=<num>    max simultaneous connections (default: {conns})
-k, --lock-memory         lock down all paged memory (ignored)
-v, --verbose             verbose (print errors/warnings while in event loop)
-vv                       very verbose (also print client commands/responses)
-vvv                      extremely verbose (internal state transitions)
-h, --help                print this help and exit
-i, --license             print license and exit
-V, --version             print version and exit
-P, --pidfile=<file>      save PID in <file>, only used with -d option
-f, --slab-growth-factor=<num> chunk size growth factor (default: {factor})
-n, --slab-min-size=<bytes> min space used for key+value+flags (default: {min_chunk})
-L, --enable-largepages  try to use large memory pages (ignored)
-D <char>     Use <char> as the delimiter between key prefixes and IDs.
              This is used for per-prefix stats reporting. The default is
              "{delim}" (colon). If this option is specified, stats collection
              is turned on automatically; if not, then it may be turned on
              by sending the "stats detail on" command to the server.
-t, --threads=<num>       number of threads to use (default: {threads})
-R, --max-reqs-per-event  maximum number of requests per event, limits the
                          requests processed per connection to prevent
                          starvation (default: {reqs})
-C, --disable-cas         disable use of CAS
-b, --listen-backlog=<num> set the backlog queue limit (default: {backlog})
-B, --protocol=<name>     protocol - one of ascii, binary, or auto (default: auto-negotiate)
-I, --max-item-size=<num> adjusts max item size
                          (default: 1m, min: 1k, max: 1024m)
-S, --enable-sasl         turn on Sasl authentication
-F, --disable-flush-all   disable flush_all command
-X, --disable-dumping     disable stats cachedump and lru_crawler metadump (ignored)
-W, --disable-watch       disable watch commands (live logging) (ignored)
-Y, --auth-file=<file>    (EXPERIMENTAL) enable ASCII protocol authentication. format:
                          user:pass\nuser2:pass2\n
-e, --memory-file=<file>  save items and rate-limit states to <file> on a graceful stop
                          (SIGUSR1) and restore them from it at start
-Z, --enable-ssl          enable TLS/SSL (not supported: refused)
-o, --extended            comma separated list of extended options
                          most options have a 'no_' prefix to disable
   - idle_timeout:        timeout for idle connections. (default: {idle}, no timeout)
   - slab_chunk_max:      (EXPERIMENTAL) maximum slab size in bytes. use extreme care. (default: {chunk})
   - no_chunked_items:    slab_chunk_max = slab page size ({page})
   - no_modern:           uses defaults of previous major version (1.4.x)
                          (only its slab_chunk_max change applies)
   accepted and checked like memcached, but without effect:
{names}
-N, --napi-ids            number of napi ids (ignored)

ratecached:
--policies=<file>         named rate-limit policies (TOML), reloaded on SIGHUP
"#,
        version = version(),
        port = d.port,
        udp = d.udp_port,
        mask = d.unix_mask,
        listen = d.listen.join(","),
        mem = d.memory_limit / (1024 * 1024),
        conns = d.max_connections,
        factor = d.factor,
        min_chunk = d.min_chunk,
        delim = d.prefix_delimiter as char,
        threads = d.threads,
        reqs = d.reqs_per_event,
        backlog = d.backlog,
        idle = d.idle_timeout,
        chunk = d.slab_chunk_max,
        page = d.slab_page_size,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Config {
        match parse(args) {
            Ok(Action::Run(cfg)) => *cfg,
            other => panic!("{args:?}: expected a config, got {other:?}"),
        }
    }

    fn fail(args: &[&str]) -> String {
        match parse(args) {
            Err(ConfigError(msg)) => msg,
            other => panic!("{args:?}: expected an error, got {other:?}"),
        }
    }

    fn print(args: &[&str]) -> String {
        match parse(args) {
            Ok(Action::Print(text)) => text,
            other => panic!("{args:?}: expected text, got {other:?}"),
        }
    }

    fn has_note(cfg: &Config, needle: &str) -> bool {
        cfg.ignored.iter().any(|n| n.contains(needle))
    }

    #[test]
    fn no_arguments_give_the_defaults() {
        let cfg = run(&[]);
        assert_eq!(format!("{cfg:?}"), format!("{:?}", Config::default()));
        assert_eq!(cfg.port, 11211);
        assert_eq!(cfg.listen, ["127.0.0.1"]);
        assert_eq!(cfg.udp_port, 0);
        assert_eq!(cfg.memory_limit, 64 << 20);
        assert_eq!(cfg.max_item_size, 1 << 20);
        assert_eq!(cfg.slab_chunk_max, 512 << 10);
        assert_eq!(cfg.slab_page_size, 1 << 20);
        assert_eq!(cfg.protocol, ProtocolChoice::Auto);
        assert!(cfg.use_cas && cfg.ignored.is_empty());
    }

    #[test]
    fn network_flags() {
        let cfg = run(&[
            "-p", "22122", "-U", "22123", "-b", "64", "-c", "10", "-R", "5",
        ]);
        assert_eq!((cfg.port, cfg.udp_port), (22122, 22123));
        assert_eq!(
            (cfg.backlog, cfg.max_connections, cfg.reqs_per_event),
            (64, 10, 5)
        );
        assert_eq!(run(&["-p0"]).port, 0);
        assert_eq!(run(&["-b", "0"]).backlog, 0);
        // -U alone moves TCP to the same port, as memcached does.
        let cfg = run(&["-U", "5000"]);
        assert_eq!((cfg.port, cfg.udp_port), (5000, 5000));
        assert_eq!(run(&["-U", "0"]).port, 11211);
    }

    #[test]
    fn unix_socket_flags() {
        let cfg = run(&["-s", "/tmp/r.sock", "-a", "755"]);
        assert_eq!(cfg.unix_socket, Some(PathBuf::from("/tmp/r.sock")));
        assert_eq!(cfg.unix_mask, 0o755);
        assert!(cfg.ignored.is_empty());
        assert_eq!(run(&["-a", "0777"]).unix_mask, 0o777);
        // Network flags with -s are noted, not checked (memcached never binds them).
        let cfg = run(&["-s", "/tmp/r.sock", "-p", "1", "-l", "no.such.host.invalid"]);
        assert!(has_note(&cfg, "-s disables network support"));
    }

    #[test]
    fn process_flags() {
        let cfg = run(&[
            "-d",
            "-P",
            "/run/r.pid",
            "-u",
            "nobody",
            "-A",
            "-F",
            "-C",
            "-M",
        ]);
        assert!(cfg.daemonize && cfg.enable_shutdown && cfg.disable_flush && cfg.no_evict);
        assert!(!cfg.use_cas);
        assert_eq!(cfg.pid_file, Some(PathBuf::from("/run/r.pid")));
        assert_eq!(cfg.user.as_deref(), Some("nobody"));
        assert!(cfg.ignored.is_empty());
    }

    #[test]
    fn memory_and_slab_flags() {
        let cfg = run(&["-m", "128", "-t", "8", "-f", "1.5", "-n", "96"]);
        assert_eq!(cfg.memory_limit, 128 << 20);
        assert_eq!((cfg.threads, cfg.min_chunk), (8, 96));
        assert_eq!(cfg.factor, 1.5);
        assert_eq!(run(&["-m", "4096"]).memory_limit, 4096 << 20);
    }

    #[test]
    fn item_size_units() {
        assert_eq!(run(&["-I", "1m"]).max_item_size, 1 << 20);
        assert_eq!(run(&["-I", "1M"]).max_item_size, 1 << 20);
        assert_eq!(run(&["-I", "2048k"]).max_item_size, 2 << 20);
        assert_eq!(run(&["-I", "1048576"]).max_item_size, 1 << 20);
        assert_eq!(run(&["-I", "512k"]).max_item_size, 512 << 10);
        let cfg = run(&["-I", "1536K"]);
        assert_eq!(
            (cfg.max_item_size, cfg.slab_chunk_max),
            (1536 << 10, 512 << 10)
        );
        let cfg = run(&["-m", "4096", "-I", "1024m"]);
        assert_eq!(cfg.max_item_size, 1 << 30);
    }

    #[test]
    fn item_size_limits() {
        assert_eq!(
            fail(&["-I", "1000"]),
            "Item max size cannot be less than 1024 bytes."
        );
        assert_eq!(
            fail(&["-I", "256m"]),
            "Cannot set item size limit higher than 1/2 of memory max."
        );
        assert_eq!(
            fail(&["-m", "4096", "-I", "1025m"]),
            "Cannot set item size limit higher than a gigabyte."
        );
        assert_eq!(
            fail(&["-m", "1"]),
            "Cannot set item size limit higher than 1/2 of memory max."
        );
        assert_eq!(
            fail(&["-m", "0"]),
            "Cannot set item size limit higher than 1/2 of memory max."
        );
        assert_eq!(run(&["-m", "2"]).memory_limit, 2 << 20);
    }

    #[test]
    fn item_size_against_slab_chunk_max() {
        assert_eq!(
            fail(&["-I", "1k"]),
            "slab_chunk_max (bytes: 524288) cannot be larger than -I (item_size_max 1024)"
        );
        assert_eq!(
            fail(&["-I", "1500k"]),
            "-I (item_size_max: 1536000) must be evenly divisible by slab_chunk_max (bytes: 524288)"
        );
        assert_eq!(
            fail(&["-o", "slab_chunk_max=3"]),
            "-I (item_size_max: 1048576) must be evenly divisible by slab_chunk_max (bytes: 3)"
        );
        assert_eq!(
            fail(&["-I", "4m", "-o", "slab_chunk_max=2097152"]),
            "slab_chunk_max (bytes: 2097152) must divide evenly into 1048576 (slab_page_size)"
        );
        // slab_chunk_max is in bytes (memcached's help says kilobytes; its code uses bytes).
        let cfg = run(&["-I", "1k", "-o", "slab_chunk_max=1024"]);
        assert_eq!((cfg.max_item_size, cfg.slab_chunk_max), (1024, 1024));
        let cfg = run(&["-I", "2m", "-o", "slab_chunk_max=16384"]);
        assert_eq!(cfg.slab_chunk_max, 16384);
    }

    #[test]
    fn no_modern_and_no_chunked_items_move_slab_chunk_max() {
        assert_eq!(run(&["-o", "no_chunked_items"]).slab_chunk_max, 1 << 20);
        let cfg = run(&["-o", "no_modern"]);
        assert_eq!(cfg.slab_chunk_max, 1 << 20);
        assert!(has_note(&cfg, "no_modern"));
        assert_eq!(
            fail(&["-o", "no_modern", "-I", "512k"]),
            "slab_chunk_max (bytes: 1048576) cannot be larger than -I (item_size_max 524288)"
        );
        // -I above 1 MiB brings an unset slab_chunk_max back to half a page.
        assert_eq!(
            run(&["-I", "2m", "-o", "no_modern"]).slab_chunk_max,
            512 << 10
        );
        // An explicit slab_chunk_max survives no_modern.
        let cfg = run(&["-o", "slab_chunk_max=262144,no_modern"]);
        assert_eq!(cfg.slab_chunk_max, 256 << 10);
    }

    #[test]
    fn verbosity_counts() {
        assert_eq!(run(&["-v"]).verbosity, 1);
        assert_eq!(run(&["-vv"]).verbosity, 2);
        assert_eq!(run(&["-vvv"]).verbosity, 3);
        assert_eq!(run(&["-vv", "-v", "--verbose", "--verbose=9"]).verbosity, 5);
        let many = format!("-{}", "v".repeat(300));
        assert_eq!(run(&[many.as_str()]).verbosity, 255);
    }

    #[test]
    fn bundled_short_options() {
        let cfg = run(&["-dvMp11311", "-vt8"]);
        assert!(cfg.daemonize && cfg.no_evict);
        assert_eq!((cfg.verbosity, cfg.port, cfg.threads), (2, 11311, 8));
        // An option argument is taken whole, even when it looks like an option.
        assert_eq!(run(&["-u", "-p"]).user.as_deref(), Some("-p"));
        assert_eq!(fail(&["-vp"]), "option requires an argument -- 'p'");
    }

    #[test]
    fn long_options() {
        let cfg = run(&[
            "--port=22122",
            "--udp-port",
            "22123",
            "--memory-limit=256",
            "--conn-limit=99",
            "--threads=2",
            "--max-item-size=2m",
            "--protocol=ascii",
            "--listen=127.0.0.2",
            "--slab-growth-factor=2",
            "--slab-min-size=64",
            "--max-reqs-per-event=7",
            "--listen-backlog=10",
            "--unix-mask=711",
            "--user=u",
            "--pidfile=/p",
            "--extended=idle_timeout=30",
            "--daemon",
            "--disable-evictions",
            "--disable-cas",
            "--disable-flush-all",
            "--enable-shutdown",
        ]);
        assert_eq!((cfg.port, cfg.udp_port), (22122, 22123));
        assert_eq!((cfg.memory_limit, cfg.max_connections), (256 << 20, 99));
        assert_eq!((cfg.threads, cfg.max_item_size), (2, 2 << 20));
        assert_eq!(cfg.protocol, ProtocolChoice::Ascii);
        assert_eq!(cfg.listen, ["127.0.0.2"]);
        assert_eq!(
            (cfg.factor, cfg.min_chunk, cfg.reqs_per_event),
            (2.0, 64, 7)
        );
        assert_eq!(
            (cfg.backlog, cfg.unix_mask, cfg.idle_timeout),
            (10, 0o711, 30)
        );
        assert_eq!(cfg.user.as_deref(), Some("u"));
        assert_eq!(cfg.pid_file, Some(PathBuf::from("/p")));
        assert!(cfg.daemonize && cfg.no_evict && !cfg.use_cas);
        assert!(cfg.disable_flush && cfg.enable_shutdown);
        let cfg = run(&[
            "--unix-socket",
            "/s",
            "--enable-sasl",
            "--enable-largepages",
        ]);
        assert!(cfg.sasl && cfg.large_pages && cfg.unix_socket.is_some());
        let cfg = run(&["--auth-file", "/a"]);
        assert_eq!(cfg.auth_file, Some(PathBuf::from("/a")));
        assert_eq!(print(&["--lic"]), print(&["-i"]));
    }

    #[test]
    fn long_option_abbreviations_and_errors() {
        assert_eq!(run(&["--thr=8"]).threads, 8);
        assert_eq!(run(&["--po", "0"]).port, 0);
        assert_eq!(run(&["--verbos"]).verbosity, 1);
        assert_eq!(
            fail(&["--p=0"]),
            "option '--p=0' is ambiguous; possibilities: '--port' '--pidfile' '--protocol'"
        );
        assert_eq!(
            fail(&["--mem", "64"]),
            "option '--mem' is ambiguous; possibilities: '--memory-limit' '--memory-file'"
        );
        assert_eq!(
            fail(&["--ver"]),
            "option '--ver' is ambiguous; possibilities: '--version' '--verbose'"
        );
        assert_eq!(fail(&["--fooble=3"]), "unrecognized option '--fooble=3'");
        assert_eq!(
            fail(&["--napi_ids=1"]),
            "unrecognized option '--napi_ids=1'"
        );
        assert_eq!(
            fail(&["--help=3"]),
            "option '--help' doesn't allow an argument"
        );
        assert_eq!(fail(&["--po"]), "option '--port' requires an argument");
    }

    #[test]
    fn unknown_short_options_fail() {
        assert_eq!(fail(&["-x"]), "invalid option -- 'x'");
        assert_eq!(fail(&["-vx"]), "invalid option -- 'x'");
        assert_eq!(fail(&["-:"]), "invalid option -- ':'");
        assert_eq!(fail(&["-p"]), "option requires an argument -- 'p'");
    }

    #[test]
    fn non_options_are_skipped_like_getopt() {
        let cfg = run(&["foo", "-p", "1", "-", "--", "-x"]);
        assert_eq!(cfg.port, 1);
        assert!(has_note(&cfg, "\"foo\""));
        assert!(has_note(&cfg, "\"-\""));
        assert!(has_note(&cfg, "\"-x\""));
    }

    #[test]
    fn help_version_and_license() {
        let help = print(&["-h"]);
        assert!(help.starts_with("ratecached 0.1.0 (memcached 1.6.18 compatible)\n-p, --port"));
        assert!(help.contains("(default: 127.0.0.1, loopback only;"));
        assert!(help.contains("(default: 11211)"));
        for (long, _, short) in LONG_OPTS.iter().filter(|o| o.2 != POLICIES) {
            assert!(
                help.contains(&format!("-{short}, --{long}")),
                "{long} missing from help"
            );
        }
        for name in INERT_SUBOPTS
            .iter()
            .chain(NUMERIC_SUBOPTS)
            .chain(CHECKED_SUBOPTS)
        {
            assert!(help.contains(name), "{name} missing from help");
        }
        assert_eq!(print(&["--help"]), help);
        assert_eq!(
            print(&["-V"]),
            "ratecached 0.1.0 (memcached 1.6.18 compatible)\n"
        );
        assert_eq!(print(&["--version"]), print(&["-V"]));
        assert!(print(&["-i"]).contains("MIT"));
        // Options are handled in order: what comes first wins.
        assert_eq!(print(&["-vVv"]), print(&["-V"]));
        assert_eq!(print(&["-h", "-t", "0"]), help);
        assert_eq!(
            fail(&["-t", "0", "-h"]),
            "Number of threads must be greater than 0"
        );
        // Checks between flags come after the loop, so -h still wins.
        assert_eq!(print(&["-I", "1000", "-h"]), help);
    }

    #[test]
    fn memcached_range_errors() {
        assert_eq!(
            fail(&["-c", "0"]),
            "Maximum connections must be greater than 0"
        );
        assert_eq!(
            fail(&["-c", "-3"]),
            "Maximum connections must be greater than 0"
        );
        assert_eq!(
            fail(&["-t", "0"]),
            "Number of threads must be greater than 0"
        );
        assert_eq!(
            fail(&["-R", "0"]),
            "Number of requests per event must be greater than 0"
        );
        assert_eq!(fail(&["-n", "0"]), "Chunk size must be greater than 0");
        assert_eq!(fail(&["-f", "0.5"]), "Factor must be greater than 1");
        assert_eq!(fail(&["-f", "1.0"]), "Factor must be greater than 1");
        assert_eq!(
            fail(&["-N", "0"]),
            "Maximum number of NAPI IDs must be greater than 0"
        );
        assert_eq!(fail(&["-D", ""]), "No delimiter specified");
        assert_eq!(fail(&["-p", "70000"]), "ERROR: Invalid port number 70000.");
        assert_eq!(fail(&["-p", "-1"]), "ERROR: Invalid port number -1.");
        assert_eq!(fail(&["-U", "65536"]), "ERROR: Invalid port number 65536.");
        assert_eq!(
            fail(&["-B", "http"]),
            "Invalid value for binding protocol: http -- should be one of auto, binary, or ascii"
        );
        assert_eq!(fail(&["-Z"]), "This server is not built with TLS support.");
    }

    #[test]
    fn non_numeric_values_fail() {
        for (flag, value) in [
            ("-p", "abc"),
            ("-U", "1x"),
            ("-m", "1g"),
            ("-m", "64m"),
            ("-m", "-5"),
            ("-m", "99999999999999999"),
            ("-c", "abc"),
            ("-t", "four"),
            ("-R", ""),
            ("-b", "-1"),
            ("-n", "1.5"),
            ("-f", "abc"),
            ("-f", "nan"),
            ("-f", "inf"),
            ("-I", "abc"),
            ("-I", "1.5m"),
            ("-I", "2g"),
            ("-I", "m"),
            ("-N", "x"),
        ] {
            assert_eq!(
                fail(&[flag, value]),
                format!("Invalid numeric argument for {flag}: \"{value}\"")
            );
        }
        assert_eq!(
            fail(&["-a", "999"]),
            "Invalid octal access mask for -a: \"999\""
        );
        assert_eq!(
            fail(&["-a", "17777"]),
            "Invalid octal access mask for -a: \"17777\""
        );
    }

    #[test]
    fn delimiter_turns_on_detail_stats() {
        let cfg = run(&["-D", "#x"]);
        assert_eq!(cfg.prefix_delimiter, b'#');
        assert!(cfg.detail_enabled);
        assert!(!run(&[]).detail_enabled);
    }

    #[test]
    fn flags_without_effect_are_noted() {
        let cfg = run(&["-r", "-k", "-L", "-X", "-W", "-e", "/dev/shm/m", "-N", "2"]);
        assert!(cfg.large_pages);
        assert_eq!(
            cfg.memory_file.as_deref(),
            Some(std::path::Path::new("/dev/shm/m"))
        );
        for flag in ["-r ", "-k ", "-L ", "-X ", "-W ", "-N "] {
            assert!(
                has_note(&cfg, flag),
                "{flag} not noted in {:?}",
                cfg.ignored
            );
        }
        assert_eq!(
            fail(&["-N", "5"]),
            "Number of napi_ids(5) cannot be greater than number of threads(4)"
        );
        assert!(has_note(&run(&["-N", "5", "-t", "8"]), "-N (--napi-ids) 5"));
    }

    #[test]
    fn sasl_and_auth_file_pick_protocols() {
        assert_eq!(run(&["-S"]).protocol, ProtocolChoice::Binary);
        assert_eq!(
            run(&["-S", "-B", "binary"]).protocol,
            ProtocolChoice::Binary
        );
        for proto in ["ascii", "auto"] {
            assert_eq!(
                fail(&["-S", "-B", proto]),
                "ERROR: You cannot allow the ASCII protocol while using SASL."
            );
        }
        assert_eq!(
            fail(&["-S", "-U", "5"]),
            "ERROR: Cannot enable UDP while using binary SASL authentication."
        );
        assert_eq!(run(&["-Y", "/a"]).protocol, ProtocolChoice::Ascii);
        for proto in ["binary", "auto"] {
            assert_eq!(
                fail(&["-Y", "/a", "-B", proto]),
                "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens."
            );
        }
        assert_eq!(
            fail(&["-Y", "/a", "-U", "5"]),
            "Cannot use UDP with ascii authentication enabled (-U 0 to disable)"
        );
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(run(&["-l", "10.0.0.1"]).listen, ["10.0.0.1"]);
        assert_eq!(
            run(&["-l", "127.0.0.1,127.0.0.2;127.0.0.3", "-l", "127.0.0.4"]).listen,
            ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
        );
        // Duplicates are dropped; empty items and a trailing comma are skipped.
        assert_eq!(
            run(&["-l", "127.0.0.1,", "-l", "127.0.0.1,,127.0.0.2"]).listen,
            ["127.0.0.1", "127.0.0.2"]
        );
        assert_eq!(
            run(&[
                "-l",
                "127.0.0.1:22411",
                "-l",
                "[::1]:22412",
                "-l",
                "::1",
                "-l",
                "[::1]"
            ])
            .listen,
            ["127.0.0.1:22411", "[::1]:22412", "[::1]"]
        );
        assert_eq!(run(&["-l", "*"]).listen, ["*"]);
        assert_eq!(run(&["-l", "localhost:0"]).listen, ["localhost:0"]);
        assert_eq!(run(&["-l", "[127.0.0.1]:5"]).listen, ["127.0.0.1:5"]);
        let cfg = run(&[
            "-l",
            "tag[ab]:127.0.0.1",
            "-l",
            "proto[ascii]:tag[x]:127.0.0.2",
        ]);
        assert_eq!(cfg.listen, ["127.0.0.1", "127.0.0.2"]);
        assert!(has_note(&cfg, "tag \"ab\""));
        assert!(has_note(&cfg, "protocol \"ascii\""));
    }

    #[test]
    fn listen_errors() {
        assert_eq!(fail(&["-l", "[::1"]), "Invalid IPV6 address: \"[::1\"");
        assert_eq!(fail(&["-l", "[::1]x"]), "Invalid IPV6 address: \"[::1]x\"");
        assert_eq!(
            fail(&["-l", "127.0.0.1:abc"]),
            "Invalid port number: \"abc\""
        );
        assert_eq!(fail(&["-l", "127.0.0.1:"]), "Invalid port number: \"\"");
        assert_eq!(fail(&["-l", "[::1]:"]), "Invalid port number: \"\"");
        assert_eq!(
            fail(&["-l", "127.0.0.1:99999"]),
            "Invalid port number: \"99999\""
        );
        assert_eq!(
            fail(&["-l", "tag[ab]127.0.0.1"]),
            "Invalid tag in socket config: \"[ab]127.0.0.1\""
        );
        assert_eq!(
            fail(&["-l", "notls:127.0.0.1"]),
            "'notls' option is valid only when SSL is enabled"
        );
        assert_eq!(
            fail(&["-l", "tag[]:127.0.0.1"]),
            "Listener tags must be between 1 and 8 characters: \"\""
        );
        assert_eq!(
            fail(&["-l", "tag[abcdefghij]:127.0.0.1"]),
            "Listener tags must be between 1 and 8 characters: \"abcdefghij\""
        );
        assert_eq!(
            fail(&["-l", "tag[abc:127.0.0.1"]),
            "Invalid tag in socket config: \"[abc:127.0.0.1\""
        );
        assert_eq!(
            fail(&["-l", "proto[proxy]:127.0.0.1"]),
            "Server not built with proxy: \"proto[proxy\""
        );
        assert_eq!(
            fail(&["-l", "proto[x:127.0.0.1"]),
            "Invalid protocol spec: \"[x:127.0.0.1\""
        );
        assert_eq!(fail(&["-l", ","]), "No interface given to -l: \",\"");
        let msg = fail(&["-l", "fooble.invalid"]);
        assert!(
            msg.starts_with(
                "failed to listen on one of interface(s) fooble.invalid: getaddrinfo(): "
            ),
            "{msg}"
        );
        // memcached binds nothing with -p 0 -U 0, so it never looks the name up.
        assert_eq!(
            run(&["-p", "0", "-l", "fooble.invalid"]).listen,
            ["fooble.invalid"]
        );
    }

    #[test]
    fn split_listen_entries() {
        assert_eq!(
            split_listen_addr("10.0.0.1:11311"),
            ("10.0.0.1", Some(11311))
        );
        assert_eq!(split_listen_addr("10.0.0.1"), ("10.0.0.1", None));
        assert_eq!(split_listen_addr("[::1]"), ("::1", None));
        assert_eq!(split_listen_addr("[::1]:5"), ("::1", Some(5)));
        assert_eq!(split_listen_addr("*"), ("*", None));
        assert_eq!(split_listen_addr("localhost:7"), ("localhost", Some(7)));
    }

    #[test]
    fn extended_options_parse() {
        let cfg = run(&[
            "-o",
            "idle_timeout=60,modern,hashpower=16",
            "-o",
            "lru_crawler,",
        ]);
        assert_eq!(cfg.idle_timeout, 60);
        for item in ["-o modern", "-o hashpower=16", "-o lru_crawler"] {
            assert!(
                has_note(&cfg, item),
                "{item} not noted in {:?}",
                cfg.ignored
            );
        }
        assert!(!has_note(&cfg, "idle_timeout"));
        assert!(run(&["-o", ""]).ignored.is_empty());
        assert_eq!(fail(&["-o", ","]), "Illegal suboption \"\"");
        assert_eq!(
            fail(&["-o", "modern,,lru_crawler"]),
            "Illegal suboption \"\""
        );
        assert_eq!(fail(&["-o", "fooble"]), "Illegal suboption \"fooble\"");
        assert_eq!(
            fail(&["-o", "slab_page_size=2"]),
            "Illegal suboption \"slab_page_size=2\""
        );
        assert_eq!(fail(&["-o", " modern"]), "Illegal suboption \" modern\"");
    }

    #[test]
    fn every_listed_suboption_is_accepted() {
        let value = |name: &str| match name {
            "hashpower" => "16",
            "hash_algorithm" => "xxh3",
            "tail_repair_time" => "20",
            "slab_automove" | "ssl_verify_mode" | "ssl_min_version" => "1",
            "slab_automove_ratio" | "ext_max_frag" | "slab_automove_freeratio" => "0.5",
            "slab_sizes" => "100-200",
            "hot_lru_pct" | "warm_lru_pct" => "10",
            "ext_path" => "/mnt/x:64m",
            _ => "3",
        };
        for name in INERT_SUBOPTS {
            assert!(has_note(&run(&["-o", name]), name));
        }
        for name in NUMERIC_SUBOPTS.iter().chain(CHECKED_SUBOPTS) {
            let item = format!("{name}={}", value(name));
            assert!(has_note(&run(&["-U", "0", "-o", &item]), &item), "{item}");
        }
        let cfg = run(&[
            "-o",
            "resp_obj_mem_limit=5,ssl_session_cache,ext_drop_unread=1",
        ]);
        assert_eq!(cfg.ignored.len(), 3);
    }

    #[test]
    fn extended_option_errors() {
        for (item, msg) in [
            ("slab_chunk_max", "Missing slab_chunk_max argument"),
            (
                "slab_chunk_max=abc",
                "could not parse argument to slab_chunk_max",
            ),
            ("slab_chunk_max=0", "slab_chunk_max must be greater than 0"),
            ("slab_chunk_max=-1", "slab_chunk_max must be greater than 0"),
            ("idle_timeout", "Missing numeric argument for idle_timeout"),
            (
                "idle_timeout=-5",
                "could not parse argument to idle_timeout",
            ),
            ("hashpower", "Missing numeric argument for hashpower"),
            ("hashpower=abc", "could not parse argument to hashpower"),
            (
                "hashpower=11",
                "Initial hashtable multiplier of 11 is too low",
            ),
            (
                "hashpower=33",
                "Initial hashtable multiplier of 33 is too high. Choose a value based on \
                 \"STAT hash_power_level\" from a running instance",
            ),
            ("hash_algorithm", "Missing hash_algorithm argument"),
            (
                "hash_algorithm=md5",
                "Unknown hash_algorithm option (jenkins, murmur3, xxh3)",
            ),
            (
                "tail_repair_time",
                "Missing numeric argument for tail_repair_time",
            ),
            (
                "tail_repair_time=9",
                "Cannot set tail_repair_time to less than 10 seconds",
            ),
            ("slab_automove=3", "slab_automove must be between 0 and 2"),
            ("slab_automove=-1", "slab_automove must be between 0 and 2"),
            (
                "slab_automove_ratio",
                "Missing slab_automove_ratio argument",
            ),
            (
                "slab_automove_ratio=0",
                "slab_automove_ratio must be > 0 and < 1",
            ),
            (
                "slab_automove_ratio=1.5",
                "slab_automove_ratio must be > 0 and < 1",
            ),
            (
                "slab_automove_window",
                "Missing slab_automove_window argument",
            ),
            ("slab_automove_window=2", "slab_automove_window must be > 2"),
            ("lru_crawler_sleep", "Missing lru_crawler_sleep value"),
            (
                "lru_crawler_sleep=1000001",
                "LRU crawler sleep must be between 0 and 1 second",
            ),
            ("lru_crawler_tocrawl", "Missing lru_crawler_tocrawl value"),
            (
                "lru_crawler_tocrawl=-1",
                "lru_crawler_tocrawl takes a numeric 32bit value",
            ),
            ("hot_lru_pct", "Missing hot_lru_pct argument"),
            ("hot_lru_pct=0", "hot_lru_pct must be > 1 and < 80"),
            ("warm_lru_pct=80", "warm_lru_pct must be > 1 and < 80"),
            (
                "hot_lru_pct=79",
                "hot_lru_pct + warm_lru_pct cannot be more than 80% combined",
            ),
            (
                "hot_lru_pct=41,warm_lru_pct=40",
                "hot_lru_pct + warm_lru_pct cannot be more than 80% combined",
            ),
            ("hot_max_factor", "Missing hot_max_factor argument"),
            ("hot_max_factor=0", "hot_max_factor must be > 0"),
            ("warm_max_factor=-1", "warm_max_factor must be > 0"),
            ("temporary_ttl", "Missing temporary_ttl argument"),
            (
                "temporary_ttl=5,no_lru_maintainer",
                "temporary_ttl requires lru_maintainer to be enabled",
            ),
            (
                "no_modern,temporary_ttl=5",
                "temporary_ttl requires lru_maintainer to be enabled",
            ),
            (
                "watcher_logbuf_size",
                "Missing watcher_logbuf_size argument",
            ),
            (
                "watcher_logbuf_size=abc",
                "could not parse argument to watcher_logbuf_size",
            ),
            (
                "worker_logbuf_size=abc",
                "could not parse argument to worker_logbuf_size",
            ),
            ("read_buf_mem_limit", "Missing read_buf_mem_limit argument"),
            ("ssl_key", "Missing ssl_key argument"),
            (
                "ssl_verify_mode=4",
                "Invalid ssl_verify_mode. Use help to see valid options.",
            ),
            (
                "ssl_min_version=abc",
                "could not parse argument to ssl_min_version",
            ),
            ("ext_threads", "Missing ext_threads argument"),
            (
                "ext_item_size=abc",
                "could not parse argument to ext_item_size",
            ),
            (
                "ext_max_frag=abc",
                "could not parse argument to ext_max_frag",
            ),
            (
                "ext_path",
                "missing argument to ext_path, ie: ext_path=/d/file:5G",
            ),
            (
                "ext_path=/tmp/x",
                "must supply size to ext_path, ie: ext_path=/f/e:64m (M|G|T|P supported)",
            ),
            (
                "ext_path=:64m",
                "must supply size to ext_path, ie: ext_path=/f/e:64m (M|G|T|P supported)",
            ),
            (
                "ext_path=/x:64m,ext_page_size=8",
                "Must specify ext_page_size before any ext_path arguments",
            ),
            ("slab_sizes", "Missing slab_sizes argument"),
            ("slab_sizes=", "Missing slab_sizes argument"),
            ("slab_sizes=abc", "slab size abc is out of valid range"),
            ("slab_sizes=47", "slab size 47 is out of valid range"),
            (
                "slab_sizes=100-524289",
                "slab size 524289 is out of valid range",
            ),
            (
                "slab_sizes=100-90",
                "slab size 90 cannot be lower than or equal to a previous class size",
            ),
            (
                "slab_sizes=48-56",
                "slab size 56 must be at least 8 bytes larger than previous class",
            ),
        ] {
            assert_eq!(fail(&["-o", item]), msg, "-o {item}");
        }
        assert_eq!(
            fail(&["-U", "5", "-o", "ext_path=/x:64m"]),
            "Cannot use UDP with extstore enabled (-U 0 to disable)"
        );
        // slab_sizes is checked against the final -n, wherever -n appears.
        assert_eq!(
            fail(&["-o", "slab_sizes=60", "-n", "100"]),
            "slab size 60 is out of valid range"
        );
        let many = |n: usize| {
            (0..n)
                .map(|i| (100 + 10 * i).to_string())
                .collect::<Vec<_>>()
        };
        run(&["-o", &format!("slab_sizes={}", many(62).join("-"))]);
        assert_eq!(
            fail(&["-o", &format!("slab_sizes={}", many(63).join("-"))]),
            "too many slab classes specified"
        );
        let cfg = run(&[
            "-o",
            "slab_sizes=48-57,hot_lru_pct=40,warm_lru_pct=40,temporary_ttl=5",
        ]);
        assert!(has_note(&cfg, "-o slab_sizes=48-57"));
    }

    #[test]
    fn non_utf8_arguments_fail() {
        use std::os::unix::ffi::OsStringExt;
        let arg = std::ffi::OsString::from_vec(vec![b'-', b'p', 0xff]);
        assert!(
            matches!(parse([arg]), Err(ConfigError(m)) if m.starts_with("argument is not valid UTF-8"))
        );
    }
}

#[cfg(test)]
mod ratecache_options {
    use super::*;

    #[test]
    fn policies_flag_sets_the_path() {
        let Ok(Action::Run(cfg)) = parse(["--policies", "/etc/rc.toml"]) else {
            panic!()
        };
        assert_eq!(
            cfg.policies.as_deref(),
            Some(std::path::Path::new("/etc/rc.toml"))
        );
        let Ok(Action::Run(cfg)) = parse(["--policies=p.toml"]) else {
            panic!()
        };
        assert_eq!(
            cfg.policies.as_deref(),
            Some(std::path::Path::new("p.toml"))
        );
    }
}
