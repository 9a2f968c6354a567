//! Building blocks that every Roster crate's domain shares and that depend on nothing of
//! Roster's own: today the clock that token checks, audit events and request-id windows
//! all read time from.

pub mod clock;

pub use clock::{Clock, ShiftedClock, SystemClock};
