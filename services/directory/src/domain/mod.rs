//! Types and rules of the directory, free of protobuf and of SQL.

pub mod changes;
pub mod clock;
pub mod filter;
pub mod paging;
pub mod status;
pub mod user_fields;
pub mod values;
pub mod widget_token;

pub use clock::{Clock, ShiftedClock, SystemClock};
pub use status::{ChatAccess, CustomerStatus, IdentitySource, UserStatus};
pub use user_fields::UserField;
