//! The texts: `-h` usage, `-V` version, `-i` license.

use super::suboptions::{CHECKED_SUBOPTS, INERT_SUBOPTS, NUMERIC_SUBOPTS};
use super::{Config, MEMCACHED_VERSION};

pub(super) fn version() -> String {
    format!(
        "ratecached {} (memcached {MEMCACHED_VERSION} compatible)\n",
        env!("CARGO_PKG_VERSION")
    )
}

pub(super) fn license() -> String {
    format!(
        "ratecached {}\n\nDistributed under the {} license.\n",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_LICENSE")
    )
}

/// `-h`: memcached's usage text with ratecached's defaults; flags without effect say so.
pub(super) fn usage() -> String {
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
-X, --disable-dumping     disable stats cachedump and lru_crawler metadump
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
--ratelimit-prefix=<p>    keys beginning with <p> are decisions: any get of
                          <p><limit>/<period>[/<burst>][/<alg>]/<subject> or
                          <p><policy>/<subject> decides (also -o ratelimit_prefix)
--metrics=<addr>          serve Prometheus metrics on http://<addr>/metrics; <addr> is
                          IP:PORT or a port on 127.0.0.1 (default: off). Per-policy
                          and per-prefix counters: "stats ratelimit"
--log=<file>              append the log (-v lines included) to <file>, reopened on
                          SIGHUP (default: stderr; with -d, syslog facility daemon)
-o ratelimit_memory=<mb>  memory for rate-limit states, apart from -m and never
                          evicted for cache items (default: {rl_mem})
-o ratelimit_full=<how>   when that memory is full: evict (the state closest to
                          full, default) or deny (refuse new subjects)
-o ratelimit_snapshot=<s> also save rate-limit states to the -e file every <s>
                          seconds, bounding what a crash loses (default: 0, off)

rate-limit commands (docs/ratelimit.md):
  ratelimit <key> <limit> <period> [<burst> [<cost>]] [gcra|fixed|sliding]
            [peek|refund] [noreply]     -> ALLOWED|DENIED <capacity> <remaining>
                                           <retry-after ms> <reset-after ms>
  ratelimit <key> @<policy> [<cost>] [peek|refund] [noreply]
  ratelimit_all <n> [peek] [noreply]    then <n> lines: <key> <limit> <period> ...
  ml <key> R<limit> W<period> [B<burst>] [D<cost>] [flags]   (meta form)
"#,
        version = version(),
        port = d.port,
        udp = d.udp_port,
        mask = d.unix_mask,
        listen = d.listen_list(),
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
        rl_mem = d.ratelimit_memory >> 20,
    )
}
