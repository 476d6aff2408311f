//! Rate-limit counters per policy and per key prefix, and the `stats ratelimit` report.
//!
//! Every rate-limit request is counted once per policy row and once per distinct key-prefix
//! row it names (allowed, denied or error). Rows live in two bounded tables ([`RowTable`]):
//! policy names get rows when the policy file is loaded, key prefixes (the bytes before the
//! `-D` delimiter, as memcached's `stats detail` takes them) when a request first names them.
//! The live subjects of a row are counted by the limiter itself (the row is part of each
//! state's [`Group`]), so this module only adds them to the report.
//!
//! The request path takes no lock: a row is found by a lock-free probe of a fixed hash index
//! and counted with relaxed atomic adds. Only the first sight of a new name takes a mutex, at
//! most [`NAMED_ROWS`] times per table over the process's life.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use crate::limiter::{Group, GroupLive};
use crate::ratelimit::policy::{Policies, PolicyLimit};
use crate::ratelimit::Limit;
use crate::stats::Stat;

/// Named rows of a table (1..=254). Row 0 means "none" (a key without the delimiter, a
/// request without a policy) and row [`OVERFLOW`] counts every name that found the table
/// full. The bound keeps a hostile client from growing memory (at most 254 names of up to
/// 250 bytes, about 100 KB) and the Prometheus scrape (at most 254 label values per metric).
pub const NAMED_ROWS: usize = 254;
/// The row of names that came after the table was full.
pub const OVERFLOW: u8 = 255;
/// Slots of a table's hash index: twice the rows, so a probe for an absent name stops soon.
const INDEX_SLOTS: usize = 512;

/// What a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed.
    Allowed,
    /// Denied.
    Denied,
    /// Answered with an error.
    Error,
}

/// The counters of one row.
#[derive(Debug, Default)]
struct Row {
    name: OnceLock<Box<[u8]>>,
    allowed: AtomicU64,
    denied: AtomicU64,
    errors: AtomicU64,
}

/// Names to rows, bounded: found without a lock, added under a mutex, never removed (a
/// state's group keeps its row number for as long as it lives).
pub struct RowTable {
    /// `hash & !0xff | row` per used slot, 0 when free.
    index: Box<[AtomicU64]>,
    rows: Box<[CachePadded<Row>]>,
    /// Rows named so far.
    named: AtomicUsize,
    adding: Mutex<()>,
    hasher: ahash::RandomState,
}

impl Default for RowTable {
    fn default() -> Self {
        RowTable {
            index: (0..INDEX_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            rows: (0..=usize::from(OVERFLOW))
                .map(|_| CachePadded::new(Row::default()))
                .collect(),
            named: AtomicUsize::new(0),
            adding: Mutex::new(()),
            hasher: ahash::RandomState::new(),
        }
    }
}

impl RowTable {
    fn find(&self, hash: u64) -> Result<u8, usize> {
        let start = (hash >> 40) as usize;
        for i in 0..INDEX_SLOTS {
            let pos = (start + i) % INDEX_SLOTS;
            let v = self.index[pos].load(Ordering::Acquire);
            if v == 0 {
                return Err(pos);
            }
            if (v ^ hash) & !0xff == 0 {
                return Ok(v as u8);
            }
        }
        unreachable!("the index has more slots than rows")
    }

    /// The row of `name`, added if the table has room; [`OVERFLOW`] if it has none.
    pub fn row(&self, name: &[u8]) -> u8 {
        let hash = self.hasher.hash_one(name);
        if let Ok(row) = self.find(hash) {
            return row;
        }
        if self.named.load(Ordering::Relaxed) >= NAMED_ROWS {
            return OVERFLOW;
        }
        let _adding = self.adding.lock();
        let pos = match self.find(hash) {
            Ok(row) => return row,
            Err(pos) => pos,
        };
        let n = self.named.load(Ordering::Relaxed);
        if n >= NAMED_ROWS {
            return OVERFLOW;
        }
        let row = n as u8 + 1;
        let _ = self.rows[usize::from(row)].name.set(name.into());
        self.named.store(n + 1, Ordering::Relaxed);
        self.index[pos].store(hash & !0xff | u64::from(row), Ordering::Release);
        row
    }

    /// Counts `outcome` in `row` (nothing for row 0).
    pub fn count(&self, row: u8, outcome: Outcome) {
        if row == 0 {
            return;
        }
        let r = &self.rows[usize::from(row)];
        let c = match outcome {
            Outcome::Allowed => &r.allowed,
            Outcome::Denied => &r.denied,
            Outcome::Error => &r.errors,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The name of `row`, once it has one.
    pub fn name(&self, row: u8) -> Option<&[u8]> {
        self.rows[usize::from(row)].name.get().map(|n| &**n)
    }

    /// The named rows, in the order they were added.
    pub fn named(&self) -> impl Iterator<Item = u8> + '_ {
        let n = self.named.load(Ordering::Relaxed).min(NAMED_ROWS);
        (1..=n as u8).filter(|&r| self.name(r).is_some())
    }

    /// The counts of `row` with its live states `keys`.
    fn counts(&self, row: u8, keys: u64) -> Counts {
        let r = &self.rows[usize::from(row)];
        Counts {
            allowed: r.allowed.load(Ordering::Relaxed),
            denied: r.denied.load(Ordering::Relaxed),
            errors: r.errors.load(Ordering::Relaxed),
            keys,
        }
    }

    /// Zeroes the counters (`stats reset`); names and rows stay.
    fn reset(&self) {
        for r in self.rows.iter() {
            for c in [&r.allowed, &r.denied, &r.errors] {
                c.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// The rate-limit counters by policy and by key prefix.
#[derive(Default)]
pub struct LimitStats {
    /// Policy rows, by policy name.
    pub policies: RowTable,
    /// Key-prefix rows.
    pub prefixes: RowTable,
    /// `@name` requests naming no loaded policy.
    pub unknown_policy: AtomicU64,
}

impl LimitStats {
    /// The prefix row of `key`: 0 when it has no `delimiter`.
    pub fn prefix_row(&self, key: &[u8], delimiter: u8) -> u8 {
        match memchr::memchr(delimiter, key) {
            Some(at) => self.prefixes.row(&key[..at]),
            None => 0,
        }
    }

    /// `limits` with their prefix rows set (the policy row is the policy's, already set).
    pub fn grouped<'a>(&self, limits: &[Limit<'a>], delimiter: u8) -> Grouped<'a> {
        let mut out = Grouped::new();
        for (i, l) in limits.iter().enumerate() {
            let prefix = match i.checked_sub(1).map(|p| limits[p]) {
                Some(prev) if prev.key == l.key => out[i - 1].group.prefix,
                _ => self.prefix_row(l.key, delimiter),
            };
            out.push(Limit {
                group: Group { prefix, ..l.group },
                ..*l
            });
        }
        out
    }

    /// Counts a request's outcome in its policy's row and in each distinct prefix row of its
    /// (grouped) limits.
    pub fn count(&self, limits: &[Limit<'_>], outcome: Outcome) {
        if let Some(first) = limits.first() {
            self.policies.count(first.group.policy, outcome);
        }
        for (i, l) in limits.iter().enumerate() {
            let row = l.group.prefix;
            if !limits[..i].iter().any(|p| p.group.prefix == row) {
                self.prefixes.count(row, outcome);
            }
        }
    }

    /// Zeroes the counters (`stats reset`).
    pub fn reset(&self) {
        self.policies.reset();
        self.prefixes.reset();
        self.unknown_policy.store(0, Ordering::Relaxed);
    }

    /// The report: every loaded policy (by name) and every prefix row (in first-seen order),
    /// with the live states `live` the limiter counts per row.
    pub fn report(&self, policies: &Policies, live: &GroupLive) -> Report {
        let row = |t: &RowTable, r: u8, live: &[u64; 256]| RowReport {
            name: t.name(r).map(printable).unwrap_or_default(),
            counts: t.counts(r, live[usize::from(r)]),
        };
        Report {
            policies: policies
                .sorted()
                .into_iter()
                .map(|(name, p)| PolicyReport {
                    name: printable(name),
                    limits: p.limits.clone(),
                    counts: (p.row != 0 && p.row != OVERFLOW)
                        .then(|| self.policies.counts(p.row, live.policy[usize::from(p.row)])),
                })
                .collect(),
            policy_overflow: self
                .policies
                .counts(OVERFLOW, live.policy[usize::from(OVERFLOW)]),
            unknown_policy: self.unknown_policy.load(Ordering::Relaxed),
            prefixes: self
                .prefixes
                .named()
                .map(|r| row(&self.prefixes, r, &live.prefix))
                .collect(),
            prefix_overflow: self
                .prefixes
                .counts(OVERFLOW, live.prefix[usize::from(OVERFLOW)]),
        }
    }
}

/// A request's limits with their stats groups (on the stack for up to 16 limits).
pub type Grouped<'a> = smallvec::SmallVec<[Limit<'a>; crate::protocol::limits::MAX_LIMITS]>;

/// A row's counters and live states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests allowed.
    pub allowed: u64,
    /// Requests denied.
    pub denied: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Live states created by the row's requests (as `ratelimit_keys` counts them).
    pub keys: u64,
}

/// A prefix row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowReport {
    /// The prefix, printable (see [`printable`]).
    pub name: String,
    /// Its counters.
    pub counts: Counts,
}

/// A loaded policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyReport {
    /// Its name, printable.
    pub name: String,
    /// Its limits.
    pub limits: Vec<PolicyLimit>,
    /// Its counters (`None` for a policy without a row of its own: it counts in
    /// `policy_overflow`).
    pub counts: Option<Counts>,
}

/// Everything `stats ratelimit` and the metrics endpoint show per policy and prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The loaded policies, by name.
    pub policies: Vec<PolicyReport>,
    /// Policies that found the policy table full.
    pub policy_overflow: Counts,
    /// `@name` requests naming no loaded policy.
    pub unknown_policy: u64,
    /// The prefix rows, in first-seen order.
    pub prefixes: Vec<RowReport>,
    /// Prefixes that found the prefix table full.
    pub prefix_overflow: Counts,
}

impl Report {
    /// The `stats ratelimit` lines (names documented in docs/ratelimit.md).
    pub fn stats(&self) -> Vec<Stat> {
        let mut out: Vec<Stat> = Vec::new();
        let mut pair = |k: String, v: String| out.push((k, v));
        pair("policies".into(), self.policies.len().to_string());
        pair("unknown_policy".into(), self.unknown_policy.to_string());
        for p in &self.policies {
            for (i, l) in p.limits.iter().enumerate() {
                pair(format!("policy:{}:limit:{i}", p.name), limit_text(l));
            }
            if let Some(c) = &p.counts {
                counts_stats(&mut pair, &format!("policy:{}", p.name), c);
            }
        }
        counts_stats(&mut pair, "policy_overflow", &self.policy_overflow);
        pair("prefixes".into(), self.prefixes.len().to_string());
        pair("prefix_limit".into(), NAMED_ROWS.to_string());
        for r in &self.prefixes {
            counts_stats(&mut pair, &format!("prefix:{}", r.name), &r.counts);
        }
        counts_stats(&mut pair, "prefix_overflow", &self.prefix_overflow);
        out
    }
}

fn counts_stats(pair: &mut impl FnMut(String, String), base: &str, c: &Counts) {
    pair(format!("{base}:allowed"), c.allowed.to_string());
    pair(format!("{base}:denied"), c.denied.to_string());
    pair(format!("{base}:errors"), c.errors.to_string());
    pair(format!("{base}:keys"), c.keys.to_string());
}

/// A policy limit as a `ratelimit` line would give it: `<limit> <period> <burst> <algorithm>`
/// (the burst is the capacity: the limit when the file gives none).
pub fn limit_text(l: &PolicyLimit) -> String {
    format!(
        "{} {} {} {}",
        l.params.limit,
        period_text(l.params.period_ns),
        l.params.capacity(),
        l.algorithm.keyword()
    )
}

/// A period in the largest unit that divides it (`1h`, `90s`, `250ms`).
pub fn period_text(ns: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
    ];
    for (unit, name) in UNITS {
        if ns.is_multiple_of(unit) {
            return format!("{}{name}", ns / unit);
        }
    }
    format!("{ns}ns")
}

/// A name as stats lines and labels show it: bytes `!`..`~` as they are, except `\`; every
/// other byte (space, control, non-ASCII, `\`) as `\xNN`, so a name from a binary-protocol
/// key cannot break a line and two names never print alike.
pub fn printable(name: &[u8]) -> String {
    let mut s = String::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_graphic() && b != b'\\' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_found_again_and_bounded() {
        let t = RowTable::default();
        assert_eq!(t.row(b"api"), 1);
        assert_eq!(t.row(b"ip"), 2);
        assert_eq!(t.row(b"api"), 1);
        for i in 3..=NAMED_ROWS {
            assert_eq!(t.row(format!("p{i}").as_bytes()) as usize, i);
        }
        assert_eq!(t.row(b"one too many"), OVERFLOW);
        assert_eq!(t.row(b"ip"), 2, "named rows are still found when full");
        assert_eq!(t.named().count(), NAMED_ROWS);
        assert_eq!(t.name(2), Some(&b"ip"[..]));
        assert_eq!(t.name(OVERFLOW), None);
    }

    #[test]
    fn counts_per_policy_and_distinct_prefix() {
        let s = LimitStats::default();
        let limit = |key: &'static [u8], policy: u8| Limit {
            key,
            algorithm: crate::ratelimit::Algorithm::Gcra,
            params: crate::ratelimit::Params {
                limit: 1,
                period_ns: 1_000_000_000,
                burst: 0,
                cost: 1,
            },
            from_policy: policy != 0,
            group: Group { policy, prefix: 0 },
        };
        let pol = s.policies.row(b"free");
        let g = s.grouped(&[limit(b"u:1", pol), limit(b"u:1", pol)], b':');
        assert_eq!(
            (g[0].group, g[1].group),
            (
                Group {
                    policy: pol,
                    prefix: 1
                },
                Group {
                    policy: pol,
                    prefix: 1
                }
            )
        );
        s.count(&g, Outcome::Denied);
        let g = s.grouped(
            &[limit(b"u:2", 0), limit(b"ip:9", 0), limit(b"none", 0)],
            b':',
        );
        assert_eq!(g[2].group, Group::NONE);
        s.count(&g, Outcome::Allowed);
        let live = GroupLive::default();
        let r = s.report(&Policies::default(), &live);
        let counts: Vec<(&str, u64, u64)> = r
            .prefixes
            .iter()
            .map(|p| (p.name.as_str(), p.counts.allowed, p.counts.denied))
            .collect();
        assert_eq!(counts, [("u", 1, 1), ("ip", 1, 0)]);
        assert_eq!(s.policies.counts(pol, 0).denied, 1);
        s.reset();
        assert_eq!(s.prefixes.counts(1, 0), Counts::default());
        assert_eq!(s.prefixes.name(1), Some(&b"u"[..]), "reset keeps the rows");
    }

    #[test]
    fn policies_past_the_bound_count_as_overflow() {
        let s = LimitStats::default();
        for i in 0..NAMED_ROWS {
            s.policies.row(format!("old{i}").as_bytes());
        }
        let mut p =
            Policies::parse("[policy.late]\nlimits = [ { limit = 1, period = 1 } ]").unwrap();
        p.assign_rows(|name| s.policies.row(name));
        let limits = p.limits(b"late", b"k", 1).unwrap();
        s.count(&s.grouped(&limits, b':'), Outcome::Allowed);
        let r = s.report(&p, &GroupLive::default());
        assert_eq!(
            (r.policies[0].name.as_str(), r.policies[0].counts),
            ("late", None)
        );
        assert_eq!(r.policy_overflow.allowed, 1);
        let lines = r.stats();
        assert!(lines.iter().any(|(k, _)| k == "policy:late:limit:0"));
        assert!(!lines.iter().any(|(k, _)| k == "policy:late:allowed"));
    }

    #[test]
    fn names_print_safely() {
        assert_eq!(printable(b"api-v1.x"), "api-v1.x");
        assert_eq!(printable(b"a b\r\n\\\xff"), "a\\x20b\\x0d\\x0a\\x5c\\xff");
    }

    #[test]
    fn periods_print_in_their_largest_unit() {
        let s = 1_000_000_000;
        assert_eq!(period_text(3600 * s), "1h");
        assert_eq!(period_text(90 * s), "90s");
        assert_eq!(period_text(120 * s), "2m");
        assert_eq!(period_text(250_000_000), "250ms");
        assert_eq!(period_text(86_400 * s), "1d");
    }

    #[test]
    fn report_lines_name_policies_limits_and_prefixes() {
        let mut p =
            Policies::parse("[policy.free]\nlimits = [ { limit = 100, period = \"1h\" }, { limit = 5, period = \"1m\", burst = 5, algorithm = \"fixed\" } ]\n")
                .unwrap();
        let s = LimitStats::default();
        p.assign_rows(|name| s.policies.row(name));
        let limits = p.limits(b"free", b"k", 1).unwrap();
        let g = s.grouped(&limits, b':');
        s.count(&g, Outcome::Allowed);
        s.unknown_policy.fetch_add(1, Ordering::Relaxed);
        let mut live = GroupLive::default();
        live.policy[1] = 2;
        let lines = s.report(&p, &live).stats();
        let text: Vec<String> = lines.iter().map(|(k, v)| format!("{k} {v}")).collect();
        assert_eq!(
            text,
            [
                "policies 1",
                "unknown_policy 1",
                "policy:free:limit:0 100 1h 100 gcra",
                "policy:free:limit:1 5 1m 5 fixed",
                "policy:free:allowed 1",
                "policy:free:denied 0",
                "policy:free:errors 0",
                "policy:free:keys 2",
                "policy_overflow:allowed 0",
                "policy_overflow:denied 0",
                "policy_overflow:errors 0",
                "policy_overflow:keys 0",
                "prefixes 0",
                "prefix_limit 254",
                "prefix_overflow:allowed 0",
                "prefix_overflow:denied 0",
                "prefix_overflow:errors 0",
                "prefix_overflow:keys 0",
            ]
        );
    }
}
