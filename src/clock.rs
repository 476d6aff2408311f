//! Time sources. The store and the rate limiter never read the system clock directly: they ask a
//! [`Clock`], so tests can drive time with [`MockClock`] instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A monotonic time source anchored to a wall-clock origin.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic nanoseconds elapsed since the clock's origin.
    fn now_nanos(&self) -> u64;
    /// Wall-clock Unix seconds at the clock's origin (to read absolute exptimes).
    fn origin_unix_secs(&self) -> u64;
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock: `Instant` for elapsed time, `SystemTime` read once for the origin.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
    origin_unix: u64,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        let origin_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        SystemClock {
            origin: Instant::now(),
            origin_unix,
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_nanos(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
    fn origin_unix_secs(&self) -> u64 {
        self.origin_unix
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct MockClock {
    nanos: AtomicU64,
    origin_unix: u64,
}

impl MockClock {
    /// A mock clock at elapsed time zero whose origin is the given Unix time.
    pub fn new(origin_unix: u64) -> Self {
        MockClock {
            nanos: AtomicU64::new(0),
            origin_unix,
        }
    }
    /// Moves the clock forward by `secs` seconds.
    pub fn advance_secs(&self, secs: u64) {
        self.nanos.fetch_add(secs * 1_000_000_000, Ordering::SeqCst);
    }
    /// Moves the clock forward by `nanos` nanoseconds.
    pub fn advance_nanos(&self, nanos: u64) {
        self.nanos.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for MockClock {
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
    fn origin_unix_secs(&self) -> u64 {
        self.origin_unix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_clock_moves_only_when_told() {
        let c = MockClock::new(1_700_000_000);
        assert_eq!(c.now_nanos(), 0);
        c.advance_secs(2);
        c.advance_nanos(5);
        assert_eq!(c.now_nanos(), 2_000_000_005);
        assert_eq!(c.origin_unix_secs(), 1_700_000_000);
    }

    #[test]
    fn system_clock_is_monotonic() {
        let c = SystemClock::new();
        let a = c.now_nanos();
        let b = c.now_nanos();
        assert!(b >= a);
        assert!(c.origin_unix_secs() > 1_600_000_000);
    }
}
