//! The `stats` family for both protocols: one [`StatsKind`] (text `stats <what>`, binary
//! `stat` with memcached's key matching), run once here; each protocol only writes the
//! [`StatsReport`] its way.

use crate::protocol::StatsKind;
use crate::server::Context;
use crate::stats::{self, Stat};

/// What a `stats` request shows once its side effects are done.
#[derive(Debug)]
pub enum StatsReport {
    /// Name/value pairs (text: `STAT` lines and `END`; binary: one packet each and a last one).
    Pairs(Vec<Stat>),
    /// `stats detail dump`: the dump's lines.
    Dump(Vec<u8>),
    /// `stats reset` and `stats detail on|off` were done (text: `RESET` or `OK`).
    Done,
    /// Nothing to list (`stats cachedump`: items are not kept by slab page here).
    Empty,
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
            StatsReport::Done
        }
        StatsKind::DetailOn | StatsKind::DetailOff => {
            ctx.stats.detail.set_enabled(kind == StatsKind::DetailOn);
            StatsReport::Done
        }
        StatsKind::DetailDump => StatsReport::Dump(ctx.stats.detail.dump()),
        StatsKind::CacheDump(..) => StatsReport::Empty,
    }
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
