//! Building blocks that every Roster crate's domain shares and that depend on nothing of
//! Roster's own: the clock that token checks, audit events and request-id windows all read
//! time from, etags, and the field violations that input checks report.

pub mod clock;
pub mod etag;
pub mod field_violation;

pub use clock::{Clock, ShiftedClock, SystemClock};
pub use field_violation::FieldViolation;
