//! The one place where database errors are classified.
//!
//! Services match on [`DbError`] variants (unique violation → ALREADY_EXISTS, unavailable →
//! UNAVAILABLE, …) and never on driver text, so every backend-specific code lives here.

use std::ops::Deref;

use sea_orm::sqlx;
use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr, SqlErr};

/// A database failure, classified by what a caller can do about it.
#[derive(thiserror::Error, Debug, Clone)]
pub enum DbError {
    /// Invalid settings (bad URL, unparsable number…); the text names what to fix.
    #[error("configuration: {0}")]
    Config(String),
    /// A unique or primary-key constraint rejected the write.
    ///
    /// `constraint` is the constraint or index name on PostgreSQL (`outbox_events_pkey`) and
    /// the column list on SQLite (`outbox_events.workspace_id, outbox_events.event_id`), which
    /// is all SQLite reports; it is empty when the driver said nothing. Match it with
    /// `contains` on a column or index name that appears in both forms.
    #[error("unique constraint violated: {constraint}")]
    UniqueViolation { constraint: String },
    /// A foreign-key constraint rejected the write or delete.
    #[error("foreign key violated")]
    ForeignKeyViolation,
    /// The transaction lost a race (serialization failure, deadlock, SQLite busy/locked);
    /// running the whole transaction again may succeed.
    #[error("transaction conflict, retry")]
    Conflict,
    /// The database could not be reached or is overloaded (pool timeout, connection refused
    /// or lost, I/O error, statement timeout).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else. The text is for logs only: it may contain SQL or data, so it must
    /// never be sent to a client.
    #[error("database error: {0}")]
    Other(String),
}

/// Result with [`DbError`] as the default error.
pub type Result<T, E = DbError> = std::result::Result<T, E>;

impl DbError {
    /// True when running the same transaction again may succeed ([`DbError::Conflict`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, DbError::Conflict)
    }
}

/// Settings errors already name the variable; they are configuration mistakes.
impl From<roster_settings::SettingsError> for DbError {
    fn from(err: roster_settings::SettingsError) -> Self {
        DbError::Config(err.to_string())
    }
}

impl From<DbErr> for DbError {
    fn from(err: DbErr) -> Self {
        match &err {
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout) => {
                DbError::Unavailable("timed out waiting for a pooled connection".to_owned())
            }
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed) => {
                DbError::Unavailable("connection pool is closed".to_owned())
            }
            DbErr::Conn(RuntimeErr::SqlxError(e))
            | DbErr::Exec(RuntimeErr::SqlxError(e))
            | DbErr::Query(RuntimeErr::SqlxError(e)) => from_sqlx(e.deref()),
            // sea-orm's own connection errors: its URL complaints quote the whole URL, password
            // included, so they are replaced rather than passed on.
            DbErr::Conn(RuntimeErr::Internal(text)) if text.contains("connection string") => {
                DbError::Config("the database URL cannot be parsed or has no driver".to_owned())
            }
            DbErr::Conn(RuntimeErr::Internal(text)) => DbError::Unavailable(text.clone()),
            // Only produced by inserts with ON CONFLICT DO NOTHING that inserted nothing: the
            // row was already there, which callers treat like a unique violation. The driver
            // names no constraint in that case.
            DbErr::RecordNotInserted => DbError::UniqueViolation {
                constraint: String::new(),
            },
            _ => match err.sql_err() {
                // A driver error that sea-orm recognises but we did not (e.g. another
                // backend enabled later); keep its classification.
                Some(SqlErr::UniqueConstraintViolation(_)) => DbError::UniqueViolation {
                    constraint: String::new(),
                },
                Some(SqlErr::ForeignKeyConstraintViolation(_)) => DbError::ForeignKeyViolation,
                _ => DbError::Other(err.to_string()),
            },
        }
    }
}

/// Raw sqlx errors, from bulk paths that talk to sqlx directly ([`crate::bulk`]).
impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        from_sqlx(&err)
    }
}

/// Classifies a raw sqlx error (also used where this crate talks to sqlx directly).
pub(crate) fn from_sqlx(err: &sqlx::Error) -> DbError {
    match err {
        sqlx::Error::Database(db) => from_database_error(db.as_ref()),
        sqlx::Error::PoolTimedOut => {
            DbError::Unavailable("timed out waiting for a pooled connection".to_owned())
        }
        sqlx::Error::PoolClosed => DbError::Unavailable("connection pool is closed".to_owned()),
        sqlx::Error::Io(e) => DbError::Unavailable(format!("i/o: {e}")),
        sqlx::Error::Tls(e) => DbError::Unavailable(format!("tls: {e}")),
        sqlx::Error::WorkerCrashed => {
            DbError::Unavailable("sqlite worker thread crashed".to_owned())
        }
        sqlx::Error::Configuration(e) => DbError::Config(e.to_string()),
        other => DbError::Other(other.to_string()),
    }
}

fn from_database_error(db: &dyn sqlx::error::DatabaseError) -> DbError {
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        return from_sqlite_error(db);
    }
    if db
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        return from_postgres_error(db);
    }
    // Unknown driver: the portable kind still tells unique/FK apart.
    match db.kind() {
        sqlx::error::ErrorKind::UniqueViolation => DbError::UniqueViolation {
            constraint: db.constraint().unwrap_or_default().to_owned(),
        },
        sqlx::error::ErrorKind::ForeignKeyViolation => DbError::ForeignKeyViolation,
        _ => DbError::Other(db.message().to_owned()),
    }
}

/// PostgreSQL SQLSTATE codes: <https://www.postgresql.org/docs/current/errcodes-appendix.html>.
fn from_postgres_error(db: &dyn sqlx::error::DatabaseError) -> DbError {
    let code = db.code().unwrap_or_default();
    match code.as_ref() {
        "23505" => DbError::UniqueViolation {
            constraint: db.constraint().unwrap_or_default().to_owned(),
        },
        "23503" => DbError::ForeignKeyViolation,
        // serialization_failure, deadlock_detected, lock_not_available (NOWAIT/lock_timeout):
        // the transaction lost a race and can be run again.
        "40001" | "40P01" | "55P03" => DbError::Conflict,
        // query_canceled: in practice our statement_timeout fired, i.e. the database is too
        // slow right now.
        "57014" => DbError::Unavailable(format!("statement timed out: {}", db.message())),
        // too_many_connections, admin/crash shutdown, cannot_connect_now, and the whole
        // connection_exception class.
        "53300" | "57P01" | "57P02" | "57P03" => DbError::Unavailable(db.message().to_owned()),
        c if c.starts_with("08") => DbError::Unavailable(db.message().to_owned()),
        // invalid_catalog_name (no such database) and the invalid_authorization class (bad
        // role or password): the settings are wrong, retrying will not help.
        c if c == "3D000" || c.starts_with("28") => DbError::Config(db.message().to_owned()),
        c => DbError::Other(format!("{c}: {}", db.message())),
    }
}

/// SQLite result codes: <https://www.sqlite.org/rescode.html>. sqlx reports the extended
/// code; the primary code is its low byte.
fn from_sqlite_error(db: &dyn sqlx::error::DatabaseError) -> DbError {
    let extended: i32 = db.code().and_then(|c| c.parse().ok()).unwrap_or_default();
    match extended {
        // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
        2067 | 1555 => DbError::UniqueViolation {
            constraint: sqlite_unique_target(db.message()),
        },
        // SQLITE_CONSTRAINT_FOREIGNKEY
        787 => DbError::ForeignKeyViolation,
        _ => match extended & 0xff {
            // SQLITE_BUSY (incl. BUSY_SNAPSHOT), SQLITE_LOCKED
            5 | 6 => DbError::Conflict,
            // SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
            10 | 13 | 14 => DbError::Unavailable(db.message().to_owned()),
            _ => DbError::Other(format!("sqlite {extended}: {}", db.message())),
        },
    }
}

/// "UNIQUE constraint failed: t.a, t.b" → "t.a, t.b";
/// "UNIQUE constraint failed: index 'idx'" (expression indexes) → "idx".
fn sqlite_unique_target(message: &str) -> String {
    let target = message
        .strip_prefix("UNIQUE constraint failed: ")
        .unwrap_or(message);
    target
        .strip_prefix("index '")
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or(target)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_unique_message_yields_columns_or_index() {
        assert_eq!(
            sqlite_unique_target("UNIQUE constraint failed: users.workspace_id, users.email"),
            "users.workspace_id, users.email"
        );
        assert_eq!(
            sqlite_unique_target("UNIQUE constraint failed: index 'users_email_lower'"),
            "users_email_lower"
        );
    }

    #[test]
    fn pool_errors_are_unavailable_and_only_conflict_retries() {
        let timeout = DbError::from(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout));
        assert!(matches!(timeout, DbError::Unavailable(_)));
        assert!(!timeout.is_retryable());
        assert!(DbError::Conflict.is_retryable());
        assert!(matches!(
            DbError::from(DbErr::RecordNotInserted),
            DbError::UniqueViolation { .. }
        ));
    }
}
