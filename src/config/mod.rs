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
//!
//! `getopt` reads the syntax, `parser` applies each option in order to a [`Config`] and makes
//! memcached's cross-flag checks at the end, `suboptions` lists the `-o` names accepted for
//! compatibility, `listen` checks `-l` items, `values` the numbers and sizes, `usage` holds
//! the `-h`, `-V` and `-i` texts.

use std::path::PathBuf;

mod getopt;
mod listen;
mod parser;
mod suboptions;
#[cfg(test)]
mod tests;
mod usage;
mod values;

use getopt::{Arg, Getopt};
pub use listen::{ListenAddr, ListenHost};
use parser::Parser;

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
    /// interfaces.
    pub listen: Vec<ListenAddr>,
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
    /// `-X`: refuse `stats cachedump` and `lru_crawler metadump`.
    pub disable_dumping: bool,
    /// `--policies FILE`: named rate-limit policies (TOML), reloaded on SIGHUP.
    pub policies: Option<PathBuf>,
    /// `--ratelimit-prefix PREFIX` (`-o ratelimit_prefix`): keys that begin with it are
    /// decision keys, decided by every retrieval command (off by default).
    pub ratelimit_prefix: Option<Vec<u8>>,
    /// `--metrics ADDR`: serve Prometheus metrics on `http://ADDR/metrics` (off by default).
    pub metrics: Option<std::net::SocketAddr>,
    /// `--log FILE`: append the log to FILE (reopened on SIGHUP) instead of stderr, or of
    /// syslog under `-d`.
    pub log_file: Option<PathBuf>,
    /// Flags and `-o` options accepted for compatibility but without effect, for `-v`.
    pub ignored: Vec<String>,
}

impl Config {
    /// The `-l` items as memcached shows them, comma-separated.
    pub fn listen_list(&self) -> String {
        let items: Vec<String> = self.listen.iter().map(ToString::to_string).collect();
        items.join(",")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 11211,
            listen: vec![ListenAddr::ip(std::net::Ipv4Addr::LOCALHOST)],
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
            disable_dumping: false,
            policies: None,
            ratelimit_prefix: None,
            metrics: None,
            log_file: None,
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

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}
