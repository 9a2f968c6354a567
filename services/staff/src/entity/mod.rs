//! SeaORM models of the staff schema (`migration/`). Plain data: `domain/` reads them as
//! its records, `store/` is what touches a connection.

pub mod agent;
pub mod agent_password;
pub mod invitation;
pub mod refresh_token;
pub mod request_id;
pub mod role;
pub mod service_account;
pub mod sign_in_attempt;
pub mod sign_in_throttle;
pub mod signing_key;
pub mod sso_connection;
pub mod sso_identity;
pub mod sso_nonce;
pub mod staff_workspace;
pub mod team;
pub mod team_member;
pub mod token_revocation;
