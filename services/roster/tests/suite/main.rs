#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The services together, as they run in production: each on its own database and port,
//! talking over gRPC. One binary, many modules.

mod revocation;
