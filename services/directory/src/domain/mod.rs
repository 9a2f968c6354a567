//! Types and rules of the directory, free of protobuf and of SQL.

pub mod changes;
pub mod filter;
pub mod order;
pub mod status;
pub mod user_fields;
pub mod values;
pub mod widget_token;

/// The clock every Roster crate reads time from (`roster-core`), so the directory and the
/// token verifier agree on "now".
pub use roster_core::{Clock, ShiftedClock, SystemClock};
pub use status::{ChatAccess, CustomerStatus, IdentitySource, UserStatus};
pub use user_fields::UserField;
