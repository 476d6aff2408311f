//! Tests of the stat -> metric mapping.

use super::collect::{render, Reports};
use crate::limit_stats::{Counts, PolicyReport, Report, RowReport};
use crate::ratelimit::policy::Policies;
use crate::stats::Stat;

fn stats(pairs: &[(&str, &str)]) -> Vec<Stat> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn shared_stats_take_the_exporters_names() {
    let general = stats(&[
        ("uptime", "42"),
        ("version", "1.6.18"),
        ("rusage_user", "0.250000"),
        ("cmd_set", "10"),
        ("cmd_flush", "1"),
        ("get_hits", "3"),
        ("get_misses", "4"),
        ("cas_misses", "1"),
        ("cas_hits", "2"),
        ("cas_badval", "3"),
        ("curr_items", "7"),
        ("bytes_written", "99"),
        ("ratelimit_allowed", "5"),
        ("ratelimit_denied", "2"),
        ("ratelimit_keys", "4"),
    ]);
    let settings = stats(&[("maxconns", "1024")]);
    let items = stats(&[("items:1:number", "7"), ("items:1:hits_to_cold", "3")]);
    let slabs = stats(&[
        ("1:chunk_size", "96"),
        ("1:cmd_set", "10"),
        ("1:cas_hits", "2"),
        ("1:cas_badval", "3"),
        ("active_slabs", "1"),
        ("total_malloced", "1048576"),
    ]);
    let report = Report {
        policies: Vec::new(),
        policy_overflow: Counts::default(),
        unknown_policy: 0,
        prefixes: Vec::new(),
        prefix_overflow: Counts::default(),
    };
    let text = render(&Reports {
        general: &general,
        settings: &settings,
        items: &items,
        slabs: &slabs,
        ratelimit: &report,
    });
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    for want in [
        "memcached_up 1",
        "memcached_version{version=\"1.6.18\"} 1",
        "memcached_commands_total{command=\"get\",status=\"hit\"} 3",
        "memcached_commands_total{command=\"get\",status=\"miss\"} 4",
        "memcached_commands_total{command=\"cas\",status=\"badval\"} 3",
        "memcached_commands_total{command=\"flush\",status=\"hit\"} 1",
        "memcached_commands_total{command=\"set\",status=\"hit\"} 4",
        "memcached_process_user_cpu_seconds_total 0.25",
        "memcached_uptime_seconds 42",
        "memcached_current_items 7",
        "memcached_written_bytes_total 99",
        "memcached_malloced_bytes 1048576",
        "memcached_max_connections 1024",
        "memcached_slab_current_items{slab=\"1\"} 7",
        "memcached_slab_lru_hits_total{slab=\"1\",lru=\"cold\"} 3",
        "memcached_slab_commands_total{slab=\"1\",command=\"set\",status=\"hit\"} 5",
        "memcached_slab_chunk_size_bytes{slab=\"1\"} 96",
        "ratecache_ratelimit_decisions_total{result=\"allowed\"} 5",
        "ratecache_ratelimit_decisions_total{result=\"denied\"} 2",
        "ratecache_ratelimit_keys 4",
    ] {
        assert!(lines.contains(&want), "{want} missing from\n{text}");
    }
    // A stat the report lacks is left out, family and all.
    assert!(!text.contains("memcached_current_bytes"));
    assert!(text.contains("# TYPE memcached_commands_total counter\n"));
}

#[test]
fn rate_limit_rows_become_labelled_series() {
    let p =
        Policies::parse("[policy.free]\nlimits = [ { limit = 100, period = \"1h\" } ]").unwrap();
    let (_, free) = p.sorted()[0];
    let counts = Counts {
        allowed: 3,
        denied: 1,
        errors: 2,
        keys: 1,
    };
    let report = Report {
        policies: vec![PolicyReport {
            name: "free".into(),
            limits: free.limits.clone(),
            counts: Some(counts),
        }],
        policy_overflow: Counts::default(),
        unknown_policy: 6,
        prefixes: vec![RowReport {
            name: "a\"b".into(),
            counts,
        }],
        prefix_overflow: Counts {
            denied: 9,
            ..Counts::default()
        },
    };
    let text = render(&Reports {
        general: &[],
        settings: &[],
        items: &[],
        slabs: &[],
        ratelimit: &report,
    });
    for want in [
        "ratecache_ratelimit_policies 1",
        "ratecache_ratelimit_unknown_policy_total 6",
        "ratecache_ratelimit_policy_decisions_total{policy=\"free\",result=\"allowed\"} 3",
        "ratecache_ratelimit_policy_decisions_total{policy=\"free\",result=\"denied\"} 1",
        "ratecache_ratelimit_policy_errors_total{policy=\"free\"} 2",
        "ratecache_ratelimit_policy_keys{policy=\"free\"} 1",
        "ratecache_ratelimit_policy_limit{policy=\"free\",index=\"0\",algorithm=\"gcra\"} 100",
        "ratecache_ratelimit_policy_period_seconds{policy=\"free\",index=\"0\"} 3600",
        "ratecache_ratelimit_policy_burst{policy=\"free\",index=\"0\"} 100",
        "ratecache_ratelimit_prefixes 1",
        "ratecache_ratelimit_prefix_limit 254",
        "ratecache_ratelimit_prefix_decisions_total{prefix=\"a\\\"b\",result=\"allowed\"} 3",
        "ratecache_ratelimit_overflow_decisions_total{table=\"prefix\",result=\"denied\"} 9",
        "ratecache_ratelimit_overflow_keys{table=\"policy\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "{want} missing from\n{text}"
        );
    }
}
