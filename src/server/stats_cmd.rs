//! The `stats` family for both protocols: one [`StatsKind`] (text `stats <what>`, binary
//! `stat` with memcached's key matching), run once here; each protocol only writes the
//! [`StatsReport`] its way.

use crate::protocol::StatsKind;
use crate::server::Context;
use crate::stats::{self, Stat};
use crate::store::{DumpCursor, Store};

/// What a `stats` request shows once its side effects are done.
#[derive(Debug)]
pub enum StatsReport {
    /// Name/value pairs (text: `STAT` lines and `END`; binary: one packet each and a last one).
    Pairs(Vec<Stat>),
    /// `stats detail dump` and `stats cachedump`: their lines.
    Dump(Vec<u8>),
    /// `stats reset` and `stats detail on|off` were done (text: `RESET` or `OK`).
    Done,
}

/// The binary `stat` key as memcached's `process_bin_stat` matches it: empty for the general
/// report, `reset`, `settings` and `detail ...` by prefix, the other reports exactly. `None`:
/// not a report (`Not found`).
pub fn binary_kind(key: &[u8]) -> Option<StatsKind> {
    if key.is_empty() {
        return Some(StatsKind::General);
    }
    if key.starts_with(b"reset") {
        return Some(StatsKind::Reset);
    }
    if key.starts_with(b"settings") {
        return Some(StatsKind::Settings);
    }
    if let Some(sub) = key.strip_prefix(b"detail") {
        return if sub.starts_with(b" dump") {
            Some(StatsKind::DetailDump)
        } else if sub.starts_with(b" on") {
            Some(StatsKind::DetailOn)
        } else if sub.starts_with(b" off") {
            Some(StatsKind::DetailOff)
        } else {
            None
        };
    }
    match key {
        b"items" => Some(StatsKind::Items),
        b"slabs" => Some(StatsKind::Slabs),
        b"sizes" => Some(StatsKind::Sizes),
        b"sizes_enable" => Some(StatsKind::SizesEnable),
        b"sizes_disable" => Some(StatsKind::SizesDisable),
        b"ratelimit" => Some(StatsKind::RateLimit),
        _ => None,
    }
}

/// Runs a `stats` request: resets and switches take effect, reports are gathered.
pub fn run(ctx: &Context, kind: StatsKind) -> StatsReport {
    let cfg = &ctx.config;
    match kind {
        StatsKind::General => StatsReport::Pairs(stats::general(
            cfg,
            &ctx.store,
            &ctx.limiter.stats(),
            &ctx.stats,
            ctx.started.elapsed().as_secs(),
            cfg.threads,
        )),
        StatsKind::Settings => StatsReport::Pairs(stats::settings(cfg, &ctx.store, &ctx.stats)),
        StatsKind::Items => StatsReport::Pairs(stats::items(&ctx.store)),
        StatsKind::Slabs => StatsReport::Pairs(stats::slabs(&ctx.store)),
        StatsKind::Sizes | StatsKind::SizesEnable | StatsKind::SizesDisable => {
            StatsReport::Pairs(vec![("sizes_status".into(), "disabled".into())])
        }
        StatsKind::Conns => StatsReport::Pairs(ctx.conns.report()),
        StatsKind::Reset => {
            ctx.store.reset_stats();
            ctx.stats.reset();
            ctx.limit_stats.reset();
            StatsReport::Done
        }
        StatsKind::DetailOn | StatsKind::DetailOff => {
            ctx.stats.detail.set_enabled(kind == StatsKind::DetailOn);
            StatsReport::Done
        }
        StatsKind::DetailDump => StatsReport::Dump(ctx.stats.detail.dump()),
        StatsKind::CacheDump(class, limit) => {
            StatsReport::Dump(cachedump(&ctx.store, class, limit))
        }
        StatsKind::RateLimit => StatsReport::Pairs(ratelimit_report(ctx).stats()),
    }
}

/// The per-policy and per-prefix rate-limit counters with the live states of each row.
pub fn ratelimit_report(ctx: &Context) -> crate::limit_stats::Report {
    let policies = ctx.policies.read().clone();
    ctx.limit_stats
        .report(&policies, &ctx.limiter.live_by_group())
}

/// Most bytes of a `stats cachedump` reply, `END` included (memcached's).
const CACHEDUMP_MAX: usize = 2 * 1024 * 1024;

/// `stats cachedump <class> <limit>`: an `ITEM <key> [<bytes> b; <exptime> s]` line for up to
/// `limit` items of the class (0: no limit) within memcached's 2 MB, items with binary keys
/// left out as memcached leaves them out.
fn cachedump(store: &Store, class: u32, limit: u32) -> Vec<u8> {
    use std::io::Write as _;
    let mut out = Vec::new();
    let mut listed = 0u32;
    let mut full = false;
    let mut at = Some(DumpCursor::default());
    while let Some(cursor) = at.filter(|_| !full) {
        at = store.metadump(cursor, 4096, |m| {
            if full || u32::from(m.class) != class || m.key_binary {
                return;
            }
            let start = out.len();
            out.extend_from_slice(b"ITEM ");
            out.extend_from_slice(m.key);
            let _ = write!(
                out,
                " [{} b; {} s]\r\n",
                m.value_len,
                m.exptime.unwrap_or(0)
            );
            // memcached stops before a line that would leave no room for `END\r\n\0`.
            if out.len() + 6 > CACHEDUMP_MAX {
                out.truncate(start);
                full = true;
                return;
            }
            listed += 1;
            full = limit != 0 && listed == limit;
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_keys_match_as_memcached_matches_them() {
        let cases: &[(&[u8], Option<StatsKind>)] = &[
            (b"", Some(StatsKind::General)),
            (b"resetxyz", Some(StatsKind::Reset)),
            (b"settings please", Some(StatsKind::Settings)),
            (b"detail dump", Some(StatsKind::DetailDump)),
            (b"detail on", Some(StatsKind::DetailOn)),
            (b"detail offx", Some(StatsKind::DetailOff)),
            (b"detail", None),
            (b"items", Some(StatsKind::Items)),
            (b"items ", None),
            (b"sizes_enable", Some(StatsKind::SizesEnable)),
            (b"conns", None),
            (b"cachedump 1 1", None),
            (b"ratelimit", Some(StatsKind::RateLimit)),
            (b"ratelimit ", None),
        ];
        for (key, kind) in cases {
            assert_eq!(
                binary_kind(key),
                *kind,
                "{:?}",
                String::from_utf8_lossy(key)
            );
        }
    }
}
