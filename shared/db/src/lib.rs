//! Database helpers shared by every Roster service, and the audit outbox.
//!
//! - [`DbSettings`]: pool and URL settings from `ROSTER_<SERVICE>_…` variables, validated
//!   with messages that name the variable.
//! - [`Db`]: a SeaORM pool over SQLite (embedded default) or PostgreSQL (production), with
//!   [`Db::migrate`] and [`Db::begin_write`]. Every write that must be atomic goes through
//!   `begin_write`, which on SQLite serialises writers so they never fail with
//!   `SQLITE_BUSY`, or, when it only inserts (a create and its audit event), through
//!   [`Db::insert_atomically`], one statement and one round trip on PostgreSQL.
//! - [`DbError`]: the only classification of database errors (unique/foreign-key
//!   violations, retryable conflicts, unavailability). Services convert it to gRPC status
//!   codes themselves; this crate knows nothing of tonic.
//! - [`outbox`]: audit events written in the caller's transaction ([`outbox::append`]) for
//!   a relay to deliver, and the [`CreateOutboxTable`] migration every service lists.
//! - [`delivery`]: the outbox as a queue for the relays of several replicas: claims with
//!   leases, retries with backoff, dead letters, purge, and the backlog.
//! - [`bulk`]: set-based writes of many SeaORM models in one statement on PostgreSQL, on a
//!   raw transaction from [`Db::begin_postgres`].
//! - [`retry`]: the one policy for writes that lost a race, and [`in_write_txn!`] to run a
//!   transaction under it.
//! - [`HealthProbe`]: readiness checks on a connection outside the pool, so a saturated
//!   pool does not read as a dead database.
//! - [`testing`]: a fresh SQLite file or PostgreSQL database per test.
//!
//! ```ignore
//! let db = Db::connect(&DbSettings::from_env("ROSTER_DIRECTORY_", DEFAULT_URL)?).await?;
//! db.migrate::<Migrator>().await?;
//! let txn = db.begin_write().await?;
//! end_user::Entity::update(model).exec(&*txn).await?;
//! roster_db::outbox::append(&*txn, &[event]).await?;
//! txn.commit().await?;
//! ```

pub mod bulk;
pub mod db;
pub mod ddl;
pub mod delivery;
pub mod error;
pub mod outbox;
pub mod probe;
pub mod retry;
pub mod settings;
pub mod testing;
pub mod versioned;

pub use db::{Backend, Db, PoolStats, WriteTxn, postgres_atomic_insert};
pub use error::{DbError, Result};
pub use outbox::{AuditEvent, CreateOutboxTable, FieldChange};
pub use probe::HealthProbe;
pub use settings::DbSettings;
