//! roster-db integration tests. Each check runs on SQLite and, when
//! `ROSTER_TEST_DATABASE_URL` is set, on PostgreSQL. One binary, so one link.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod atomic_inserts;
mod bulk;
mod connect;
mod delivery;
mod errors;
#[cfg(target_os = "linux")]
mod nodelay;
mod outbox;
mod pool_release;
mod retry;
mod test_databases;
mod write_lock;
