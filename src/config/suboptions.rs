//! The `-o` sub-options accepted for compatibility, by how their values are checked.

/// `-o` sub-options accepted for compatibility that change nothing here and need no value
/// check (a value, if given, is ignored as memcached ignores it).
pub(super) const INERT_SUBOPTS: &[&str] = &[
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
pub(super) const NUMERIC_SUBOPTS: &[&str] = &[
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
pub(super) const CHECKED_SUBOPTS: &[&str] = &[
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
