//! End-to-end tests of the runtime: a real server on port 0 and a real tonic client.
//! One binary for all of them, since each test binary costs a link.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod concurrency;
mod connections;
mod context;
mod deadlines;
mod health;
mod panics;
mod reflection;
mod shutdown;
mod support;
mod telemetry;
