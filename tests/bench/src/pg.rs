//! The bench's own PostgreSQL databases: created under generated names, migrated with the
//! services' real migrations, dropped at the end.

use std::time::Duration;

use anyhow::{Context as _, bail};
use roster_db::DbSettings;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sea_orm::sqlx::{self, Connection as _, Executor as _, PgConnection};

/// Checks that `url` is a PostgreSQL URL on this machine's loopback: the bench loads the
/// server hard and must never be pointed at a shared one by accident.
pub fn check_local(url: &str) -> anyhow::Result<()> {
    let options: PgConnectOptions = url
        .parse()
        .with_context(|| format!("--database-url: not a PostgreSQL URL: {url}"))?;
    let host = options.get_host();
    if !matches!(host, "127.0.0.1" | "localhost" | "::1") {
        bail!("--database-url: the bench only runs against a local server (127.0.0.1), not {host}");
    }
    Ok(())
}

/// `postgres://u@h:5432/admin?x` → `postgres://u@h:5432/<name>?x`.
fn with_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    let (scheme, rest) = admin_url
        .split_once("://")
        .context("--database-url: expected postgres://…")?;
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or_default();
    Ok(match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    })
}

/// A database the bench created; [`BenchDatabase::drop_now`] removes it.
pub struct BenchDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl BenchDatabase {
    /// `CREATE DATABASE roster_bench_<run>_<role>`, empty; migrate it with [`migrate`].
    pub async fn create(admin_url: &str, run_id: &str, role: &str) -> anyhow::Result<Self> {
        let name = format!("roster_bench_{run_id}_{role}");
        let mut admin = PgConnection::connect(admin_url)
            .await
            .context("connecting to PostgreSQL with --database-url")?;
        // The name is built from hex digits and a fixed word, so it needs no quoting.
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .with_context(|| format!("creating database {name}"))?;
        admin.close().await.ok();
        Ok(Self {
            url: with_database(admin_url, &name)?,
            name,
            admin_url: admin_url.to_owned(),
        })
    }

    /// Makes PostgreSQL log every statement run on this database from new connections on
    /// (to compare what the service sends with the bench's SQL; see the server's log).
    pub async fn log_statements(&self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "ALTER DATABASE {} SET log_statement = 'all'",
                self.name
            )))
            .await
            .with_context(|| format!("turning on log_statement for {}", self.name))?;
        admin.close().await.ok();
        Ok(())
    }

    pub async fn drop_now(self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .await
            .with_context(|| format!("dropping database {}", self.name))?;
        admin.close().await.ok();
        Ok(())
    }

    /// Pool settings for the directory under test: the service's defaults (16 connections,
    /// 30 s statement timeout) with the URL of this database.
    pub fn service_settings(&self) -> DbSettings {
        DbSettings::new(&self.url)
    }

    /// One connection, for bulk loading and EXPLAIN; no statement timeout.
    pub async fn connection(&self) -> anyhow::Result<PgConnection> {
        PgConnection::connect(&self.url)
            .await
            .with_context(|| format!("connecting to {}", self.name))
    }
}

/// The server's version, and whether `conn` uses TLS: every connection of a run is opened
/// from the same URL, so one tells for all.
pub async fn server_info(conn: &mut PgConnection) -> anyhow::Result<(String, bool)> {
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut *conn)
        .await?;
    let tls: bool = sqlx::query_scalar(
        "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((version, tls))
}

/// A plain sqlx pool of `size` connections (all opened now), for the baselines.
pub async fn pool(url: &str, size: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(size)
        .min_connections(size)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .context("connecting a pool for the baselines")
}

/// Runs the directory's migrations (the real ones: pg_trgm, the trigram GIN indexes, the
/// outbox) on `database` and closes the pool again.
pub async fn migrate(database: &BenchDatabase) -> anyhow::Result<()> {
    let db = roster_directory::prepare_database(&database.service_settings())
        .await
        .with_context(|| format!("migrating {}", database.name))?;
    db.close().await;
    Ok(())
}
