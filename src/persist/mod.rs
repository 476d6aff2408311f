//! Warm restarts, memcached's way (`-e FILE`): a graceful stop (SIGUSR1, `shutdown graceful`)
//! writes the cache items and the rate-limit states to FILE; the next start with the same `-e`
//! restores them, drops what expired meanwhile, and removes the file (so a later crash never
//! brings back stale data). With `-o ratelimit_snapshot=SECONDS` the rate-limit states alone
//! are also written every SECONDS, bounding what a crash (`kill -9`) loses.
//!
//! Rate-limit states carry times of the monotonic clock of the process that wrote them; the
//! snapshot records that clock and the wall clock at the same moment, and a restore moves every
//! time by the wall-clock difference, so a state continues exactly across the downtime (a
//! subject denied for another 30 s before a 10 s restart is denied for 20 s more after it).

pub mod format;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use format::{FormatError, Header, Snapshot, StateRecord, Writer};

use crate::limiter::{Ident, Limiter, NEVER};
use crate::ratelimit::{State, Tat};
use crate::store::Store;

/// Nanoseconds since the Unix epoch now.
pub fn wall_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What a save wrote or a restore brought back.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Cache items.
    pub items: usize,
    /// Rate-limit states.
    pub states: usize,
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".tmp");
    PathBuf::from(p)
}

/// Writes the rate-limit states (and the items, with `items`) to `path`: into `path.tmp`,
/// synced, then renamed over `path`, so a crash mid-write leaves the previous file whole.
pub fn save(
    store: &Store,
    limiter: &Limiter,
    path: &Path,
    items: bool,
    wall_ns: u64,
) -> std::io::Result<Counts> {
    let tmp = tmp_path(path);
    let file = std::fs::File::create(&tmp)?;
    let header = Header {
        wall_ns,
        mono_ns: limiter.now_nanos(),
        seeds: limiter.seeds(),
    };
    let mut w = Writer::new(std::io::BufWriter::new(file), &header)?;
    let mut counts = Counts::default();
    let mut result = Ok(());
    if items {
        store.for_each_item(|it| {
            if result.is_ok() {
                result = w.item(it);
                counts.items += 1;
            }
        });
    }
    limiter.for_each(|shard, id, state, expiry| {
        if result.is_ok() {
            result = w.state(&StateRecord {
                shard: shard as u16,
                id: id.id,
                tag: id.tag,
                expiry,
                state,
            });
            counts.states += 1;
        }
    });
    result?;
    let mut out = w.finish()?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(counts)
}

/// Why a snapshot could not be restored.
#[derive(Debug)]
pub enum LoadError {
    /// Reading the file failed.
    Io(std::io::Error),
    /// The file is not a whole snapshot of this format.
    Format(FormatError),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "{e}"),
            LoadError::Format(e) => write!(f, "{e}"),
        }
    }
}

/// The bytes of the snapshot at `path`, or `None` when there is none.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, LoadError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LoadError::Io(e)),
    }
}

/// Checks a snapshot whole (a damaged or foreign file is refused before anything is restored).
pub fn parse(bytes: &[u8]) -> Result<Snapshot<'_>, LoadError> {
    format::parse(bytes).map_err(LoadError::Format)
}

/// Puts a checked snapshot back: items that have not expired, and rate-limit states moved to
/// this process's clock (the limiter must use the snapshot's seeds) and not yet full again.
pub fn restore(snap: &Snapshot<'_>, store: &Store, limiter: &Limiter, wall_ns: u64) -> Counts {
    let mut counts = Counts::default();
    for it in &snap.items {
        if store.restore_item(it) {
            counts.items += 1;
        }
    }
    // new time = old time + delta: the wall clock moved by (wall_ns - header.wall_ns) while
    // the clocks' readings are mono_now and header.mono_ns.
    let mono_now = limiter.now_nanos();
    let delta = (i128::from(snap.header.wall_ns) - i128::from(snap.header.mono_ns))
        - (i128::from(wall_ns) - i128::from(mono_now));
    let now_s = mono_now / 1_000_000_000;
    for s in &snap.states {
        let expiry = shift_second(s.expiry, delta);
        if expiry != NEVER && u64::from(expiry) <= now_s {
            continue; // full again meanwhile: nothing to remember
        }
        let id = Ident::from_saved(s.id, s.tag);
        if limiter
            .restore(usize::from(s.shard), id, shift(s.state, delta), expiry)
            .is_ok()
        {
            counts.states += 1;
        }
    }
    counts
}

fn shift_u64(t: u64, delta: i128) -> u64 {
    (i128::from(t) + delta).clamp(0, i128::from(u64::MAX)) as u64
}

fn shift_second(s: u32, delta: i128) -> u32 {
    if s == NEVER {
        return NEVER;
    }
    let ns = i128::from(s) * 1_000_000_000 + delta;
    let secs = ns.max(0).div_euclid(1_000_000_000) + i128::from(ns.rem_euclid(1_000_000_000) != 0);
    u32::try_from(secs)
        .ok()
        .filter(|&s| s != NEVER)
        .unwrap_or(NEVER)
}

/// A state with every time moved by `delta` nanoseconds (clamped at the clock's origin: a
/// time before it is long past anyway).
fn shift(state: State, delta: i128) -> State {
    match state {
        State::Gcra(t) => {
            let ns = (t.ns() as i128).saturating_add(delta).max(0) as u128;
            State::Gcra(Tat::new(ns, t.frac(), t.den()).unwrap_or(Tat::from_ns(ns)))
        }
        State::Fixed { last_ns, count } => State::Fixed {
            last_ns: shift_u64(last_ns, delta),
            count,
        },
        State::Sliding {
            curr_last_ns,
            curr,
            prev_last_ns,
            prev,
        } => State::Sliding {
            curr_last_ns: shift_u64(curr_last_ns, delta),
            curr,
            prev_last_ns: shift_u64(prev_last_ns, delta),
            prev,
        },
    }
}

#[cfg(test)]
mod tests;
