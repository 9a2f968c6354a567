#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The audit service as a caller sees it: real servers on port 0, generated clients, a
//! fresh database per test on SQLite and (when ROSTER_TEST_DATABASE_URL is set) on
//! PostgreSQL. One binary, many modules: each test binary costs a link.

mod helpers;
mod verifier;

mod append;
mod authz;
mod erasure;
mod list;
mod proofs;
mod retention;
mod tamper;
mod watch;
