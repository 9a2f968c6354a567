#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The services together, as `roster` runs them: each on its own database (both SQLite or
//! both PostgreSQL), talking over gRPC. One binary, many modules: each test binary costs a
//! link.

mod helpers;

mod audit;
mod export;
mod keys;
mod relay;
mod revocation;
mod telemetry;
mod workspace_keys;
