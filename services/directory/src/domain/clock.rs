//! Time is passed in, never read inside domain logic, so tests can control it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync + 'static {
    /// Unix time in microseconds.
    fn now_us(&self) -> i64;

    fn now_secs(&self) -> i64 {
        self.now_us().div_euclid(1_000_000)
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> i64 {
        let now = time::OffsetDateTime::now_utc();
        i64::try_from(now.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
    }
}

/// Real time plus an offset that tests move forward, to expire grace periods and tokens
/// without sleeping.
#[derive(Clone, Debug, Default)]
pub struct ShiftedClock(Arc<AtomicI64>);

impl ShiftedClock {
    pub fn advance_us(&self, delta: i64) {
        self.0.fetch_add(delta, Ordering::SeqCst);
    }

    pub fn advance_secs(&self, delta: i64) {
        self.advance_us(delta * 1_000_000);
    }
}

impl Clock for ShiftedClock {
    fn now_us(&self) -> i64 {
        SystemClock.now_us() + self.0.load(Ordering::SeqCst)
    }
}
