//! Time is passed in, never read inside domain logic, so tests can control it. One clock
//! for every crate: the token verifier and the directory disagreeing about "now" would make
//! expiry checks contradict each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + 'static {
    /// Unix time in microseconds.
    fn now_us(&self) -> i64;

    /// Unix time in whole seconds, rounded down (JWT claims are in seconds).
    fn now_secs(&self) -> i64 {
        self.now_us().div_euclid(1_000_000)
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// 0 if the system clock is before 1970, which no check can trust anyway.
    fn now_us(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down_from_microseconds() {
        struct At(i64);
        impl Clock for At {
            fn now_us(&self) -> i64 {
                self.0
            }
        }
        assert_eq!(At(1_999_999).now_secs(), 1);
        assert_eq!(At(-1).now_secs(), -1);
    }

    #[test]
    fn a_shifted_clock_moves_only_when_told() {
        let clock = ShiftedClock::default();
        let before = clock.now_us();
        clock.advance_secs(3600);
        let after = clock.now_us();
        assert!(after - before >= 3_600_000_000, "{before} → {after}");
    }
}
