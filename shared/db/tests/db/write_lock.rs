use std::sync::Arc;

use roster_db::testing::{TestBackend, TestDatabase};
use roster_db::{Db, DbError, DbSettings, outbox};
use sea_orm::TransactionTrait;

use crate::support::{TestMigrator, count, event, setup};

const WRITERS: usize = 8;

/// Each writer reads and then writes in one transaction: the pattern that makes two
/// deferred SQLite transactions fail with SQLITE_BUSY.
async fn concurrent_read_then_write_transactions_all_commit(backend: &TestBackend) {
    let fx = setup(backend).await;
    let db = Arc::new(fx.db.clone());

    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let db = Arc::clone(&db);
        tasks.push(tokio::spawn(async move {
            let txn = db.begin_write().await?;
            let before = outbox::pending(&*txn, 1_000).await?.len();
            tokio::task::yield_now().await;
            outbox::append(&*txn, &[event("ws-1", &format!("u-{i}"))]).await?;
            txn.commit().await?;
            Ok::<usize, DbError>(before)
        }));
    }
    let mut seen_before = Vec::new();
    for task in tasks {
        seen_before.push(task.await.unwrap().unwrap());
    }

    // Serialised: each writer saw a distinct number of earlier commits.
    seen_before.sort_unstable();
    let expected_counts: Vec<usize> = (0..WRITERS).collect();
    let total = count(fx.db.conn(), "SELECT count(*) FROM outbox_events").await;
    if fx.db.backend() == roster_db::Backend::Sqlite {
        assert_eq!(seen_before, expected_counts);
    }
    assert_eq!(total, WRITERS as i64);
    fx.teardown().await;
}

mod concurrent_read_then_write_transactions_all_commit {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        super::concurrent_read_then_write_transactions_all_commit(
            &roster_db::testing::TestBackend::Sqlite,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[cfg_attr(
        not(roster_postgres_tests),
        ignore = "ROSTER_TEST_DATABASE_URL is not set"
    )]
    async fn postgres() {
        match crate::support::postgres() {
            Some(backend) => {
                super::concurrent_read_then_write_transactions_all_commit(&backend).await
            }
            None => crate::support::postgres_missing(),
        }
    }
}

/// Why `begin_write` exists: without it, a deferred transaction whose snapshot is older
/// than another writer's commit cannot upgrade to a writer.
#[tokio::test]
async fn plain_sqlite_transactions_that_upgrade_late_conflict() {
    let tdb = TestDatabase::create(&TestBackend::Sqlite).await.unwrap();
    let db = Db::connect(&DbSettings::new(&tdb.url)).await.unwrap();
    db.migrate::<TestMigrator>().await.unwrap();
    let first = db.conn().begin().await.unwrap();
    let second = db.conn().begin().await.unwrap();
    outbox::pending(&first, 10).await.unwrap();
    outbox::pending(&second, 10).await.unwrap();
    outbox::append(&first, &[event("ws-1", "u-1")])
        .await
        .unwrap();
    first.commit().await.unwrap();

    let err = outbox::append(&second, &[event("ws-1", "u-2")])
        .await
        .unwrap_err();

    assert!(
        matches!(err, DbError::Conflict),
        "expected Conflict, got {err:?}"
    );
    assert!(err.is_retryable());
    second.rollback().await.unwrap();
    db.close().await;
    tdb.cleanup().await;
}

/// Two `Db`s on one file (e.g. two components of one binary) share the write lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_on_one_sqlite_file_share_the_write_lock() {
    let tdb = TestDatabase::create(&TestBackend::Sqlite).await.unwrap();
    let a = Db::connect(&DbSettings::new(&tdb.url)).await.unwrap();
    a.migrate::<TestMigrator>().await.unwrap();
    let b = Db::connect(&DbSettings::new(&tdb.url)).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let db = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let txn = db.begin_write().await?;
            outbox::pending(&*txn, 1_000).await?;
            tokio::task::yield_now().await;
            outbox::append(&*txn, &[event("ws-1", &format!("u-{i}"))]).await?;
            txn.commit().await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    assert_eq!(
        count(a.conn(), "SELECT count(*) FROM outbox_events").await,
        WRITERS as i64
    );
    a.close().await;
    b.close().await;
    tdb.cleanup().await;
}
