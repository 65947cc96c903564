//! The one clock of a service. Everything that records or decides by time — timestamps in the
//! database, the audit log, pseudonym epochs, overdue check-ins, proposal expiry — asks a
//! [`Clock`], so that a test can move time forward for the whole service at once.

use std::sync::Arc;

/// Reads the current time in Unix milliseconds. Cloning is cheap; clones read the same time.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// Returns the system clock.
    pub fn system() -> Self {
        Self(Arc::new(system_ms))
    }

    /// Returns a clock that reads `now` (Unix milliseconds).
    pub fn from_fn(now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// Returns the current time in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now_ms())
    }
}

fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A clock that stands still until a test sets or advances it.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<std::sync::atomic::AtomicI64>);

#[cfg(any(test, feature = "test-util"))]
impl ManualClock {
    /// Returns a clock standing at `at_ms`.
    pub fn at(at_ms: i64) -> Self {
        Self(Arc::new(std::sync::atomic::AtomicI64::new(at_ms)))
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Returns the [`Clock`] that reads this one.
    pub fn clock(&self) -> Clock {
        let at = Arc::clone(&self.0);
        Clock::from_fn(move || at.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_reads_now_and_a_manual_one_moves_when_told() {
        let before = system_ms();
        assert!(Clock::system().now_ms() >= before);
        let manual = ManualClock::at(1_000);
        let clock = manual.clock();
        assert_eq!(clock.now_ms(), 1_000);
        manual.advance(500);
        assert_eq!(clock.clone().now_ms(), 1_500);
    }
}
