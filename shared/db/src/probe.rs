//! Readiness checks on a connection of their own.
//!
//! A probe that queued for a pooled connection would report a busy service as a dead
//! database: under load every connection is out, the probe's checkout times out, health
//! turns NOT_SERVING and Kubernetes takes the busiest replicas out of rotation, which makes
//! the others busier. [`HealthProbe`] keeps one connection outside the pool instead, opened
//! with the pool's own options, so it answers whether the database answers and nothing else.

use std::time::Duration;

use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _};

use crate::db::{Backend, Db};
use crate::error::{DbError, Result, from_sqlx};

/// A connection dedicated to asking the database whether it answers. See the module docs.
pub struct HealthProbe {
    target: Target,
    conn: Option<ProbeConnection>,
    timeout: Duration,
}

enum Target {
    Postgres(sqlx::postgres::PgConnectOptions),
    Sqlite(sqlx::sqlite::SqliteConnectOptions),
}

enum ProbeConnection {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Db {
    /// A [`HealthProbe`] for this database, connecting lazily with the pool's options. A
    /// check, connect included, fails after the pool's acquire timeout: a database that
    /// takes longer to answer one ping is not ready.
    pub fn health_probe(&self) -> HealthProbe {
        let target = match self.backend() {
            Backend::Postgres => Target::Postgres(
                (*self.conn().get_postgres_connection_pool().connect_options()).clone(),
            ),
            Backend::Sqlite => Target::Sqlite(
                (*self.conn().get_sqlite_connection_pool().connect_options()).clone(),
            ),
        };
        HealthProbe {
            target,
            conn: None,
            timeout: self.acquire_timeout(),
        }
    }
}

impl HealthProbe {
    /// Pings the database, connecting first if the last check found the connection broken
    /// (or none was opened yet). Fails with [`DbError::Unavailable`].
    pub async fn check(&mut self) -> Result<()> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.ping())
            .await
            .unwrap_or_else(|_| {
                Err(DbError::Unavailable(format!(
                    "the database did not answer a ping within {timeout:?}"
                )))
            })
    }

    /// The connection is kept only after a ping it answered: one that failed, or was
    /// abandoned mid-ping by the timeout, is dropped, and the next check connects afresh.
    async fn ping(&mut self) -> Result<()> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.target.connect().await?,
        };
        let pinged = match &mut conn {
            ProbeConnection::Postgres(conn) => conn.ping().await,
            ProbeConnection::Sqlite(conn) => conn.ping().await,
        };
        pinged.map_err(|error| unavailable(&error))?;
        self.conn = Some(conn);
        Ok(())
    }
}

impl Target {
    async fn connect(&self) -> Result<ProbeConnection> {
        let conn = match self {
            Target::Postgres(options) => options.connect().await.map(ProbeConnection::Postgres),
            Target::Sqlite(options) => options.connect().await.map(ProbeConnection::Sqlite),
        };
        conn.map_err(|error| unavailable(&error))
    }
}

/// Every failure of a probe means "not ready", whatever the driver calls it (a server
/// shutting down answers with an SQL error, for one).
fn unavailable(error: &sqlx::Error) -> DbError {
    match from_sqlx(error) {
        DbError::Unavailable(text) => DbError::Unavailable(text),
        other => DbError::Unavailable(other.to_string()),
    }
}
