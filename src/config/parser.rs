//! Applying options in order to a [`Config`], and memcached's cross-flag checks at the end.

use super::getopt::{LOG, METRICS, POLICIES, RATELIMIT_PREFIX};
use super::listen::listen_entry;
use super::suboptions::{INERT_SUBOPTS, NUMERIC_SUBOPTS};
use super::usage::{license, usage, version};
use super::values::{
    bad_number, check_slab_sizes, item_size, metrics_addr, need, number, port, positive, sub_number,
};
use super::{err, Action, Config, ConfigError, ProtocolChoice, ITEM_SIZE_MAX, ITEM_SIZE_MIN};

/// The configuration being built plus what memcached remembers to cross-check at the end.
pub(super) struct Parser {
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
    pub(super) fn new() -> Self {
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

    pub(super) fn ignore(&mut self, note: impl std::fmt::Display) {
        self.cfg.ignored.push(format!("{note}: ignored"));
    }

    /// Applies one option; `-h`, `-V` and `-i` end parsing with text to print.
    pub(super) fn option(&mut self, c: char, v: &str) -> Result<Option<Action>, ConfigError> {
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
            RATELIMIT_PREFIX => cfg.ratelimit_prefix = Some(ratelimit_prefix(v)?),
            METRICS => cfg.metrics = Some(metrics_addr(v)?),
            LOG => cfg.log_file = Some(v.into()),
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
            'X' => cfg.disable_dumping = true,
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
            "ratelimit_prefix" => {
                let v = need(value, "Missing ratelimit_prefix argument")?;
                self.cfg.ratelimit_prefix = Some(ratelimit_prefix(v)?);
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
    pub(super) fn finish(mut self) -> Result<Config, ConfigError> {
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

/// Checks a `--ratelimit-prefix`: 1 to 64 bytes that a key may hold (no space or control
/// character), so that every decision key can still carry a subject.
fn ratelimit_prefix(v: &str) -> Result<Vec<u8>, ConfigError> {
    if v.is_empty() || v.len() > 64 || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(err(
            "ratelimit_prefix must be 1 to 64 characters without spaces or control characters",
        ));
    }
    Ok(v.as_bytes().to_vec())
}
