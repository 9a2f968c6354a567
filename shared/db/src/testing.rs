//! Throwaway databases for integration tests: a SQLite file in a fresh temporary
//! directory, or a PostgreSQL database named by a UUID, one per test.
//!
//! ```ignore
//! for backend in TestBackend::all() {
//!     let tdb = TestDatabase::create(&backend).await?;
//!     let db = Db::connect(&DbSettings::new(&tdb.url)).await?;
//!     db.migrate::<Migrator>().await?;
//!     // …
//!     db.close().await;
//!     tdb.cleanup().await;
//! }
//! ```

use std::path::PathBuf;

use sea_orm::sqlx::{self, Connection, Executor};

use crate::error::{DbError, Result, from_sqlx};

/// The environment variable that enables PostgreSQL tests, holding an admin URL
/// (a role allowed to create databases), e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub const TEST_DATABASE_URL_VAR: &str = "ROSTER_TEST_DATABASE_URL";

/// Where a test database lives.
#[derive(Clone, Debug)]
pub enum TestBackend {
    Sqlite,
    /// The admin URL used to create and drop test databases.
    Postgres(String),
}

impl TestBackend {
    /// `Some(Postgres(url))` when `ROSTER_TEST_DATABASE_URL` is set, else `None`.
    pub fn from_env_postgres() -> Option<TestBackend> {
        std::env::var(TEST_DATABASE_URL_VAR)
            .ok()
            .filter(|url| !url.trim().is_empty())
            .map(|url| TestBackend::Postgres(url.trim().to_owned()))
    }

    /// Always SQLite, plus PostgreSQL when `ROSTER_TEST_DATABASE_URL` is set.
    pub fn all() -> Vec<TestBackend> {
        std::iter::once(TestBackend::Sqlite)
            .chain(Self::from_env_postgres())
            .collect()
    }
}

/// A database that exists for one test. Call [`TestDatabase::cleanup`] at the end; if the
/// test panics first, `Drop` removes it anyway.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL for [`crate::DbSettings::new`].
    pub url: String,
    sqlite_dir: Option<PathBuf>,
    postgres: Option<PostgresTestDb>,
}

#[derive(Debug)]
struct PostgresTestDb {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// SQLite: `sqlite://<tmp>/roster-test-<uuid>/test.db?mode=rwc` (created on first
    /// connect). PostgreSQL: `CREATE DATABASE roster_test_<uuid>` through the admin URL.
    pub async fn create(backend: &TestBackend) -> Result<TestDatabase> {
        let id = uuid::Uuid::new_v4().simple();
        match backend {
            TestBackend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("roster-test-{id}"));
                std::fs::create_dir_all(&dir).map_err(|e| {
                    DbError::Unavailable(format!("creating {}: {e}", dir.display()))
                })?;
                let url = format!("sqlite://{}?mode=rwc", dir.join("test.db").display());
                Ok(TestDatabase {
                    url,
                    sqlite_dir: Some(dir),
                    postgres: None,
                })
            }
            TestBackend::Postgres(admin_url) => {
                let name = format!("roster_test_{id}");
                let url = replace_database(admin_url, &name)?;
                let mut admin = sqlx::PgConnection::connect(admin_url)
                    .await
                    .map_err(|e| from_sqlx(&e))?;
                // The name is generated from hex digits, so it needs no escaping.
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .map_err(|e| from_sqlx(&e))?;
                let _ = admin.close().await;
                Ok(TestDatabase {
                    url,
                    sqlite_dir: None,
                    postgres: Some(PostgresTestDb {
                        admin_url: admin_url.clone(),
                        name,
                    }),
                })
            }
        }
    }

    /// Drops the database (PostgreSQL, terminating any connection still open) or removes
    /// the temporary directory (SQLite). Failures are logged, not returned: there is nothing
    /// a test could do about them.
    pub async fn cleanup(mut self) {
        if let Some(pg) = self.postgres.take()
            && let Err(e) = drop_postgres_database(&pg).await
        {
            tracing::warn!(database = %pg.name, error = %e, "dropping test database failed");
        }
        if let Some(dir) = self.sqlite_dir.take() {
            remove_dir(&dir);
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(pg) = self.postgres.take() {
            // Drop cannot await, and the test's runtime may be the current-thread one we are
            // running on, so drop the database from a thread with its own small runtime.
            let dropper = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(rt) => {
                        if let Err(e) = rt.block_on(drop_postgres_database(&pg)) {
                            eprintln!("dropping test database {} failed: {e}", pg.name);
                        }
                    }
                    Err(e) => eprintln!("dropping test database {} failed: {e}", pg.name),
                }
            });
            let _ = dropper.join();
        }
        if let Some(dir) = self.sqlite_dir.take() {
            remove_dir(&dir);
        }
    }
}

async fn drop_postgres_database(pg: &PostgresTestDb) -> Result<()> {
    let mut admin = sqlx::PgConnection::connect(&pg.admin_url)
        .await
        .map_err(|e| from_sqlx(&e))?;
    let result = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            pg.name
        )))
        .await
        .map_err(|e| from_sqlx(&e));
    let _ = admin.close().await;
    result.map(|_| ())
}

fn remove_dir(dir: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "removing test database failed");
    }
}

/// `postgres://u@h:5432/admin?sslmode=x` → `postgres://u@h:5432/<name>?sslmode=x`.
fn replace_database(admin_url: &str, name: &str) -> Result<String> {
    let Some((scheme, rest)) = admin_url.split_once("://") else {
        return Err(DbError::Config(format!(
            "{TEST_DATABASE_URL_VAR}: not a postgres:// URL"
        )));
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or_default();
    let mut url = format!("{scheme}://{authority}/{name}");
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn database_name_is_replaced_and_query_kept() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/test", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgresql://u:p@h/test?sslmode=disable", "x").unwrap(),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://h:5432", "x").unwrap(),
            "postgres://h:5432/x"
        );
    }
}
