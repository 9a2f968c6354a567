#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The staff service as a caller sees it: real servers on port 0, generated clients, a
//! fresh database per test on SQLite and (when ROSTER_TEST_DATABASE_URL is set) on
//! PostgreSQL. One binary, many modules: each test binary costs a link.

mod helpers;
mod idp;

mod access;
mod agents;
mod authz;
mod bulk;
mod erasure;
mod invitations;
mod keys;
mod revocations;
mod roles;
mod seats;
mod service_accounts;
mod sign_in;
mod sso;
mod teams;
