//! What a PostgreSQL connection carries back into the pool: whatever the previous caller
//! abandoned on it (unread rows, an open transaction) must not reach the next one. sqlx's
//! ping on release is what guarantees it; these pin that down should anyone patch it out
//! again to save the round trip (vendor/README.md).

use std::time::Duration;

use futures_util::TryStreamExt;
use sea_orm::sqlx::{self, PgPool};

use crate::support::{Fixture, postgres, postgres_missing, setup_with};

async fn postgres_fixture(max_connections: u32) -> (Fixture, PgPool) {
    let Some(backend) = postgres() else {
        postgres_missing();
    };
    let fx = setup_with(&backend, |s| {
        s.max_connections = max_connections;
        s.acquire_timeout = Duration::from_secs(5);
    })
    .await;
    let pool = fx.db.conn().get_postgres_connection_pool().clone();
    (fx, pool)
}

/// A caller that gives up halfway through a result (a cancelled request) leaves unread
/// rows on its connection; the next caller on that connection must get its own answer.
#[tokio::test]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn a_query_after_a_cancelled_one_gets_its_own_answer() {
    let (fx, pool) = postgres_fixture(1).await;
    {
        let mut rows =
            sqlx::query_scalar::<_, i32>("SELECT g FROM generate_series(1, 200000) AS g")
                .fetch(&pool);
        assert_eq!(rows.try_next().await.unwrap(), Some(1));
        // Dropped here with most of the result unread.
    }
    let answer: i64 = sqlx::query_scalar("SELECT 42::int8")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(answer, 42);
    fx.teardown().await;
}

/// A transaction dropped without commit or rollback (a handler that returned early, or
/// was cancelled) must release its locks at once, not when its connection is next used.
#[tokio::test]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn a_dropped_transaction_releases_its_locks_at_once() {
    let (fx, pool) = postgres_fixture(2).await;
    sqlx::query(
        "INSERT INTO notes (workspace_id, id, body, version) VALUES ('ws-1', 'a', 'one', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    {
        let mut abandoned = pool.begin().await.unwrap();
        sqlx::query("SELECT id FROM notes WHERE id = 'a' FOR UPDATE")
            .execute(&mut *abandoned)
            .await
            .unwrap();
        // Dropped here: sqlx queues the ROLLBACK.
    }
    let mut other = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL lock_timeout = '3s'")
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query("UPDATE notes SET body = 'two' WHERE id = 'a'")
        .execute(&mut *other)
        .await
        .expect("the abandoned transaction's lock is gone");
    other.commit().await.unwrap();
    fx.teardown().await;
}
