//! Connecting, migrating and writing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use sea_orm::sea_query::{Alias, CommonTableExpression, InsertStatement, WithClause};
use sea_orm::sqlx;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, SqlxPostgresConnector, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use secrecy::ExposeSecret;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::bulk::PgTxn;
use crate::error::{DbError, Result};
use crate::settings::DbSettings;

/// Pooled connections idle longer than this are pinged before use.
const STALE_AFTER_IDLE: Duration = Duration::from_secs(30);

/// Which database engine a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What a pool holds at one moment ([`Db::pool_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections, idle or in use.
    pub open: u32,
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// A connection pool plus what the crate needs to write safely. Cheap to clone: clones
/// share the pool and the SQLite write lock.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    backend: Backend,
    /// SQLite only: serialises write transactions within this process (see
    /// [`Db::begin_write`]).
    write_lock: Option<Arc<Mutex<()>>>,
    acquire_timeout: Duration,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

/// SQLite busy handler wait: how long a connection waits for another *process* holding
/// the write lock (writers in this process queue on the async mutex instead).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// Key for the PostgreSQL advisory lock that keeps replicas from migrating at once
/// ("roster_m" in ASCII). Advisory locks are scoped to one database, so services sharing a
/// server do not block each other.
const MIGRATION_LOCK_KEY: i64 = 0x726f_7374_6572_5f6d;

impl Db {
    /// Opens a pool for `settings.url`.
    ///
    /// SQLite files get WAL journaling, `synchronous=NORMAL`, `foreign_keys=ON` and a 5 s
    /// busy timeout on every pooled connection; with `?mode=rwc` missing parent directories
    /// and the file are created. `sqlite::memory:` uses exactly one connection that is never
    /// recycled, because each connection would otherwise see its own empty database.
    /// PostgreSQL uses the pool settings and `statement_timeout`.
    ///
    /// sqlx logs every statement at INFO by default; that stays off unless `RUST_LOG`
    /// mentions `sqlx`, or `log_statements` asks for them (at DEBUG). Each statement is a
    /// `sea_orm.*` span (OpenTelemetry's database client span), without its SQL.
    pub async fn connect(settings: &DbSettings) -> Result<Db> {
        let url = settings.url.expose_secret().trim();
        let backend = backend_of(url)?;
        let mut opts = ConnectOptions::new(url);
        opts.max_connections(settings.max_connections.max(1))
            .min_connections(
                settings
                    .min_connections
                    .min(settings.max_connections.max(1)),
            )
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(settings.idle_timeout)
            // sqlx pings a connection every time it leaves the pool by default: one extra
            // round trip per query. Only connections idle long enough to have gone stale
            // are checked; a dead one otherwise surfaces as Unavailable and is replaced.
            .test_before_acquire_if_idle_for(STALE_AFTER_IDLE)
            // SeaORM's spans (`sea_orm.query_all`, …: operation and system, under the
            // caller's span) go without the SQL: statements are long, and a literal in one
            // would put data into traces that must hold none.
            .record_stmt_in_spans(false);
        if settings.log_statements {
            opts.sqlx_logging(true)
                .sqlx_logging_level(tracing::log::LevelFilter::Debug);
        } else {
            opts.sqlx_logging(sqlx_logging_requested());
        }

        let write_lock = match backend {
            Backend::Postgres => {
                if let Some(timeout) = settings.statement_timeout {
                    opts.statement_timeout(timeout);
                }
                if settings.custom_plans {
                    opts.map_sqlx_postgres_opts(|o| {
                        o.options([("plan_cache_mode", "force_custom_plan")])
                    });
                }
                None
            }
            Backend::Sqlite => {
                if is_sqlite_memory(url) {
                    // One connection, kept forever: closing it would drop the database.
                    opts.max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None::<Duration>)
                        .max_lifetime(None::<Duration>);
                    opts.map_sqlx_sqlite_opts(|o| {
                        o.foreign_keys(true).busy_timeout(SQLITE_BUSY_TIMEOUT)
                    });
                    Some(Arc::new(Mutex::new(())))
                } else {
                    let path = prepare_sqlite_file(url)?;
                    opts.map_sqlx_sqlite_opts(|o| {
                        o.journal_mode(SqliteJournalMode::Wal)
                            .synchronous(SqliteSynchronous::Normal)
                            .foreign_keys(true)
                            .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    });
                    Some(sqlite_write_lock(&path))
                }
            }
        };

        let conn = Database::connect(opts).await?;
        Ok(Db {
            conn,
            backend,
            write_lock,
            acquire_timeout: settings.acquire_timeout,
        })
    }

    /// The pool, for reads (and for writes that need no transaction).
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool's connections now, for metrics.
    pub fn pool_stats(&self) -> PoolStats {
        fn of<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> PoolStats {
            PoolStats {
                open: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            }
        }
        match self.backend {
            Backend::Postgres => of(self.conn.get_postgres_connection_pool()),
            Backend::Sqlite => of(self.conn.get_sqlite_connection_pool()),
        }
    }

    pub(crate) fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }

    /// Checks that a pooled connection can be acquired and answers. Readiness probes use
    /// [`Db::health_probe`] instead, which does not queue behind a busy pool.
    pub async fn ping(&self) -> Result<()> {
        Ok(self.conn.ping().await?)
    }

    /// Applies pending migrations of `M` and logs how many ran.
    ///
    /// On PostgreSQL the run holds a session advisory lock, so replicas starting together
    /// migrate one at a time (the later ones find nothing pending), and uses a dedicated
    /// connection without `statement_timeout`, since building an index may legitimately take
    /// longer than any request should. On SQLite it holds the write lock.
    pub async fn migrate<M: MigratorTrait>(&self) -> Result<()> {
        let applied = match self.backend {
            Backend::Sqlite => {
                let _guard = self.lock_writes().await?;
                apply_migrations::<M>(&self.conn).await?
            }
            Backend::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                let options = (*pool.connect_options())
                    .clone()
                    .options([("statement_timeout", "0")]);
                let single = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .min_connections(0)
                    .acquire_timeout(self.acquire_timeout)
                    // The advisory lock belongs to the session: the one connection must
                    // live until the migrations are done.
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_with(options)
                    .await
                    .map_err(|e| crate::error::from_sqlx(&e))?;
                let conn = SqlxPostgresConnector::from_sqlx_postgres_pool(single);
                let result = migrate_locked::<M>(&conn).await;
                // Closing also releases the advisory lock if the unlock did not run.
                if let Err(e) = conn.close().await {
                    tracing::warn!(error = %e, "closing the migration connection failed");
                }
                result?
            }
        };
        tracing::info!(applied, backend = ?self.backend, "database migrations applied");
        Ok(())
    }

    /// Begins a write transaction.
    ///
    /// SQLite allows one writer at a time, and two deferred transactions that both read and
    /// then write deadlock into `SQLITE_BUSY`. So on SQLite this first waits (at most the
    /// pool's acquire timeout, then [`DbError::Unavailable`]) for an async mutex shared by
    /// every [`Db`] of that file in this process, then sends `BEGIN IMMEDIATE`, which takes
    /// the file's write lock at once and so also waits out writers in other processes. The
    /// returned [`WriteTxn`] holds the mutex until commit, rollback or drop. On PostgreSQL
    /// it is a plain `BEGIN` (READ COMMITTED).
    ///
    /// Run every statement of the unit of work through the transaction (`&*txn`); using
    /// [`Db::conn`] meanwhile takes a second pooled connection (and with `sqlite::memory:`
    /// there is none to take).
    pub async fn begin_write(&self) -> Result<WriteTxn> {
        // None on PostgreSQL, where there is no write lock.
        let guard = self.lock_writes().await?;
        let txn = match self.backend {
            Backend::Sqlite => {
                self.conn
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..TransactionOptions::default()
                    })
                    .await?
            }
            Backend::Postgres => self.conn.begin().await?,
        };
        Ok(WriteTxn { txn, _guard: guard })
    }

    /// Runs `inserts` so that all of them commit or none does: the writes of a create,
    /// which reads nothing it writes (a new row and its audit event, say).
    ///
    /// On PostgreSQL they go as ONE statement, the earlier inserts as data-modifying CTEs of
    /// the last (`WITH w0 AS (INSERT …) INSERT …`): a statement is atomic on its own, so
    /// this costs one round trip instead of four (`BEGIN`, two INSERTs, `COMMIT`). That
    /// round trip count, not the SQL, is most of what a create costs the service and the
    /// database. On SQLite, where a round trip is a function call, they run in one
    /// [`Db::begin_write`] transaction. Either way a violated constraint fails the whole
    /// write with its [`DbError`], and nothing is written.
    ///
    /// Returns the rows the last insert wrote: an `INSERT … SELECT` may write none (one
    /// whose `SELECT` finds the row it depends on gone, say), and the caller learns it here.
    pub async fn insert_atomically(&self, inserts: Vec<InsertStatement>) -> Result<u64> {
        match self.backend {
            Backend::Postgres => {
                let Some(statement) = postgres_atomic_insert(inserts) else {
                    return Ok(0);
                };
                Ok(self.conn.execute_raw(statement).await?.rows_affected())
            }
            Backend::Sqlite => {
                let txn = self.begin_write().await?;
                let mut written = 0;
                for insert in &inserts {
                    written = txn.execute(insert).await?.rows_affected();
                }
                txn.commit().await?;
                Ok(written)
            }
        }
    }

    /// Begins a PostgreSQL transaction on a raw sqlx connection from the pool, for bulk
    /// paths that write set-based ([`crate::bulk`]); `None` on SQLite, where such paths use
    /// [`Db::begin_write`]. Like `begin_write` it is READ COMMITTED, and the connection's
    /// `statement_timeout` applies.
    pub async fn begin_postgres(&self) -> Result<Option<PgTxn>> {
        match self.backend {
            Backend::Sqlite => Ok(None),
            Backend::Postgres => Ok(Some(
                self.conn.get_postgres_connection_pool().begin().await?,
            )),
        }
    }

    /// Closes the pool (for every clone), waiting for connections in use to come back.
    pub async fn close(self) {
        if let Err(e) = self.conn.close().await {
            tracing::warn!(error = %e, "closing the database pool failed");
        }
    }

    async fn lock_writes(&self) -> Result<Option<OwnedMutexGuard<()>>> {
        let Some(lock) = &self.write_lock else {
            return Ok(None);
        };
        match tokio::time::timeout(self.acquire_timeout, Arc::clone(lock).lock_owned()).await {
            Ok(guard) => Ok(Some(guard)),
            Err(_) => Err(DbError::Unavailable(
                "timed out waiting for the SQLite write lock".to_owned(),
            )),
        }
    }
}

/// A write transaction from [`Db::begin_write`]. Dereferences to
/// [`DatabaseTransaction`], so `&*txn` is a `ConnectionTrait` and `TransactionTrait`.
/// Dropping it without [`WriteTxn::commit`] rolls back.
pub struct WriteTxn {
    // Field order matters: the transaction is dropped (its rollback queued) before the
    // guard lets the next SQLite writer in.
    txn: DatabaseTransaction,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl WriteTxn {
    pub async fn commit(self) -> Result<()> {
        let WriteTxn { txn, _guard } = self;
        Ok(txn.commit().await?)
    }

    pub async fn rollback(self) -> Result<()> {
        let WriteTxn { txn, _guard } = self;
        Ok(txn.rollback().await?)
    }
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl std::fmt::Debug for WriteTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTxn")
            .field("serialised", &self._guard.is_some())
            .finish()
    }
}

/// The one statement [`Db::insert_atomically`] sends on PostgreSQL (public so benchmarks
/// can replay it): the last insert as the statement, every earlier one as a CTE before it.
/// The CTEs are named by position; nothing refers to them, and PostgreSQL runs each exactly
/// once whether or not it is referred to.
pub fn postgres_atomic_insert(mut inserts: Vec<InsertStatement>) -> Option<sea_orm::Statement> {
    let last = inserts.pop()?;
    if inserts.is_empty() {
        return Some(DbBackend::Postgres.build(&last));
    }
    let mut with = WithClause::new();
    for (at, insert) in inserts.into_iter().enumerate() {
        with.cte(
            CommonTableExpression::new()
                .query(insert)
                .table_name(Alias::new(format!("w{at}")))
                .to_owned(),
        );
    }
    Some(DbBackend::Postgres.build(&with.query(last)))
}

async fn migrate_locked<M: MigratorTrait>(conn: &DatabaseConnection) -> Result<usize> {
    conn.execute_unprepared(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .await?;
    let result = apply_migrations::<M>(conn).await;
    conn.execute_unprepared(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
        .await?;
    result
}

async fn apply_migrations<M: MigratorTrait>(conn: &DatabaseConnection) -> Result<usize> {
    let pending = M::get_pending_migrations(conn).await?.len();
    M::up(conn, None).await?;
    Ok(pending)
}

fn backend_of(url: &str) -> Result<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(DbError::Config(format!(
            "unsupported scheme '{scheme}'; use sqlite://… or postgres://…"
        )))
    }
}

fn sqlx_logging_requested() -> bool {
    std::env::var("RUST_LOG").is_ok_and(|filter| filter.contains("sqlx"))
}

fn is_sqlite_memory(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    path.is_empty() || path == ":memory:" || query.split('&').any(|kv| kv == "mode=memory")
}

/// Resolves the database file of a SQLite URL; with `mode=rwc` creates its parent
/// directories (SQLite creates only the file), otherwise checks that it exists so the error
/// says what to do instead of SQLite's "unable to open database file".
fn prepare_sqlite_file(url: &str) -> Result<PathBuf> {
    let opts: SqliteConnectOptions = url
        .parse()
        .map_err(|e| DbError::Config(format!("invalid SQLite URL: {e}")))?;
    let path = opts.get_filename().to_path_buf();
    let create = url
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv == "mode=rwc"));
    if create {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                DbError::Unavailable(format!("cannot create directory {}: {e}", parent.display()))
            })?;
        }
    } else if !path.exists() {
        return Err(DbError::Config(format!(
            "SQLite database {} does not exist; add ?mode=rwc to the URL to create it",
            path.display()
        )));
    }
    Ok(path)
}

/// One write mutex per database file per process, so two [`Db`]s opened on the same file
/// (e.g. a service and its migration command in one binary) still serialise their writers.
/// Entries are weak: a file's mutex goes away with its last `Db`.
fn sqlite_write_lock(path: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<StdMutex<HashMap<PathBuf, Weak<Mutex<()>>>>> = OnceLock::new();
    // The file may not exist yet; canonicalise the directory, which does.
    let key = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dir.canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    };
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        // The map stays consistent even if a holder panicked: every operation on it is a
        // single insert or retain.
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(lock) = locks.get(&key).and_then(Weak::upgrade) {
        return lock;
    }
    locks.retain(|_, weak| weak.strong_count() > 0);
    let lock = Arc::new(Mutex::new(()));
    locks.insert(key, Arc::downgrade(&lock));
    lock
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn memory_urls_are_recognised() {
        assert!(is_sqlite_memory("sqlite::memory:"));
        assert!(is_sqlite_memory("sqlite://:memory:"));
        assert!(is_sqlite_memory("sqlite://?mode=memory"));
        assert!(!is_sqlite_memory("sqlite://data/x.db?mode=rwc"));
    }

    fn insert_into(table: &str, value: &str) -> InsertStatement {
        sea_orm::sea_query::Query::insert()
            .into_table(Alias::new(table))
            .columns([Alias::new("id")])
            .values_panic([value.into()])
            .to_owned()
    }

    #[test]
    fn atomic_inserts_are_ctes_of_the_last_one() {
        let statement = postgres_atomic_insert(vec![
            insert_into("a", "1"),
            insert_into("b", "2"),
            insert_into("c", "3"),
        ])
        .unwrap();
        assert_eq!(
            statement.sql,
            r#"WITH "w0" AS (INSERT INTO "a" ("id") VALUES ($1)) , "w1" AS (INSERT INTO "b" ("id") VALUES ($2)) INSERT INTO "c" ("id") VALUES ($3)"#
        );
        let single = postgres_atomic_insert(vec![insert_into("a", "1")]).unwrap();
        assert_eq!(single.sql, r#"INSERT INTO "a" ("id") VALUES ($1)"#);
        assert!(postgres_atomic_insert(Vec::new()).is_none());
    }

    #[test]
    fn same_file_shares_one_write_lock() {
        let dir = std::env::temp_dir();
        let a = sqlite_write_lock(&dir.join("roster-lock-test.db"));
        let b = sqlite_write_lock(&dir.join(".").join("roster-lock-test.db"));
        let c = sqlite_write_lock(&dir.join("roster-other-lock-test.db"));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
