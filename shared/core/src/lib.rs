//! Building blocks that every Roster crate's domain shares and that depend on nothing of
//! Roster's own: the clock that token checks, audit events and request-id windows all read
//! time from, the actor a change is recorded under, etags, list paging, and the field
//! violations that input checks report, the checks of values every service takes
//! (workspace ids, e-mails, text), and AIP-134 update masks.

pub mod actor;
pub mod clock;
pub mod etag;
pub mod field_violation;
pub mod paging;
pub mod update_mask;
pub mod values;

pub use actor::{Actor, RequestContext};
pub use clock::{Clock, ShiftedClock, SystemClock};
pub use field_violation::FieldViolation;
