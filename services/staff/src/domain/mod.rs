//! Types and rules of the staff service, free of protobuf and of SQL. Time and randomness
//! come in as arguments.

pub mod access;
pub mod bulk;
pub mod filter;
pub mod invitation;
pub mod password;
pub mod roles;
pub mod secret;
pub mod service_account;
pub mod sign_in;
pub mod sso;
pub mod status;
pub mod values;

pub use roles::{Role, RoleGrant};
pub use roster_core::{Clock, ShiftedClock, SystemClock};
pub use status::{AgentStatus, InvitationState};
