//! Tests of the command line: memcached's flags, errors and cross-checks, and ratecached's own.

use super::getopt::{LONG_OPTS, OWN_OPTS};
use super::suboptions::{CHECKED_SUBOPTS, INERT_SUBOPTS, NUMERIC_SUBOPTS};
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
    for (long, _, short) in LONG_OPTS.iter().filter(|o| !OWN_OPTS.contains(&o.2)) {
        assert!(
            help.contains(&format!("-{short}, --{long}")),
            "{long} missing from help"
        );
    }
    for (long, _, _) in LONG_OPTS.iter().filter(|o| OWN_OPTS.contains(&o.2)) {
        assert!(
            help.contains(&format!("\n--{long}=")),
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
    assert!(cfg.disable_dumping);
    assert_eq!(
        cfg.memory_file.as_deref(),
        Some(std::path::Path::new("/dev/shm/m"))
    );
    for flag in ["-r ", "-k ", "-L ", "-W ", "-N "] {
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
        msg.starts_with("failed to listen on one of interface(s) fooble.invalid: getaddrinfo(): "),
        "{msg}"
    );
    // memcached binds nothing with -p 0 -U 0, so it never looks the name up.
    assert_eq!(
        run(&["-p", "0", "-l", "fooble.invalid"]).listen,
        ["fooble.invalid"]
    );
}

#[test]
fn listen_entries_are_typed_hosts_and_ports() {
    let one = |spec: &str| run(&["-l", spec]).listen.remove(0);
    let ip = |s: &str| ListenHost::Ip(s.parse().unwrap());
    let cases = [
        ("10.0.0.1:11311", ip("10.0.0.1"), Some(11311), "10.0.0.1"),
        ("10.0.0.1", ip("10.0.0.1"), None, "10.0.0.1"),
        ("[::1]", ip("::1"), None, "::1"),
        ("::1", ip("::1"), None, "::1"),
        ("[::1]:5", ip("::1"), Some(5), "::1"),
        ("*", ListenHost::Any, None, "0.0.0.0"),
        (
            "localhost:7",
            ListenHost::Name("localhost".into()),
            Some(7),
            "localhost",
        ),
    ];
    for (spec, host, port, bind) in cases {
        let addr = one(spec);
        assert_eq!((&addr.host, addr.port), (&host, port), "{spec}");
        assert_eq!(addr.bind_host(), bind, "{spec}");
    }
    assert_eq!(
        run(&["-l", "0:0::1,[::1]:5,*"]).listen_list(),
        "[0:0::1],[::1]:5,*"
    );
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

    #[test]
    fn ratelimit_prefix_is_off_by_default_and_set_by_either_spelling() {
        assert_eq!(run(&[]).ratelimit_prefix, None);
        let long = run(&["--ratelimit-prefix", "rl:"]).ratelimit_prefix;
        assert_eq!(long.as_deref(), Some(&b"rl:"[..]));
        let sub = run(&["-o", "ratelimit_prefix=_limit/"]).ratelimit_prefix;
        assert_eq!(sub.as_deref(), Some(&b"_limit/"[..]));
        for bad in ["", "a b", "\x01", &"p".repeat(65)] {
            let msg = fail(&["--ratelimit-prefix", bad]);
            assert!(msg.contains("ratelimit_prefix must be"), "{bad:?}: {msg}");
        }
        assert!(fail(&["-o", "ratelimit_prefix"]).contains("Missing ratelimit_prefix"));
    }

    #[test]
    fn metrics_flag_takes_an_address_or_a_port() {
        let addr = |args: &[&str]| match parse(args.iter().copied()) {
            Ok(Action::Run(cfg)) => Ok(cfg.metrics),
            Ok(Action::Print(_)) => panic!(),
            Err(e) => Err(e.0),
        };
        assert_eq!(addr(&[]), Ok(None));
        assert_eq!(
            addr(&["--metrics", "127.0.0.1:9150"]),
            Ok(Some("127.0.0.1:9150".parse().unwrap()))
        );
        assert_eq!(
            addr(&["--metrics=[::1]:9150"]),
            Ok(Some("[::1]:9150".parse().unwrap()))
        );
        assert_eq!(
            addr(&["--metrics", "9150"]),
            Ok(Some("127.0.0.1:9150".parse().unwrap()))
        );
        assert_eq!(
            addr(&["--metrics", "localhost:9150"]),
            Err("Invalid --metrics address \"localhost:9150\": use IP:PORT (127.0.0.1:9150, [::1]:9150) or a port".into())
        );
        assert_eq!(
            addr(&["--metrics", "0"]),
            Err("Invalid --metrics address \"0\": the port must not be 0".into())
        );
        assert!(addr(&["--metrics"]).is_err(), "the address is required");
    }

    #[test]
    fn log_flag_sets_the_file_and_only_matches_in_full() {
        let Ok(Action::Run(cfg)) = parse(["--log", "/var/log/rc.log", "-d"]) else {
            panic!()
        };
        assert_eq!(
            cfg.log_file.as_deref(),
            Some(std::path::Path::new("/var/log/rc.log"))
        );
        assert!(cfg.daemonize);
        // memcached's abbreviations keep their meaning: --lo is still --lock-memory.
        let Ok(Action::Run(cfg)) = parse(["--lo"]) else {
            panic!()
        };
        assert!(cfg.log_file.is_none());
        assert!(parse(["--log"]).is_err(), "--log needs a file");
    }
}
