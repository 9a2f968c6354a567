use std::time::Duration;

use roster_db::testing::{TestBackend, TestDatabase};
use roster_db::{Db, DbError, DbSettings, outbox};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use sea_orm_migration::MigratorTrait as _;

use crate::support::{TestMigrator, count, event, exec, on_both_backends, setup_with};

async fn pragma<T: sea_orm::TryGetable>(conn: &impl ConnectionTrait, name: &str) -> T {
    let row = conn
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            format!("PRAGMA {name}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<T>(0).unwrap()
}

#[tokio::test]
async fn every_sqlite_file_connection_gets_wal_and_the_pragmas() {
    let tdb = TestDatabase::create(&TestBackend::Sqlite).await.unwrap();
    let db = Db::connect(&DbSettings::new(&tdb.url)).await.unwrap();

    // Open transactions hold their connections, so these are three different ones.
    let mut txns = Vec::new();
    for _ in 0..3 {
        txns.push(db.conn().begin().await.unwrap());
    }
    for txn in &txns {
        assert_eq!(pragma::<String>(txn, "journal_mode").await, "wal");
        assert_eq!(pragma::<i64>(txn, "foreign_keys").await, 1);
        assert_eq!(pragma::<i64>(txn, "synchronous").await, 1, "NORMAL");
        assert_eq!(pragma::<i64>(txn, "busy_timeout").await, 5000);
    }

    drop(txns);
    db.close().await;
    tdb.cleanup().await;
}

#[tokio::test]
async fn sqlite_memory_is_one_database_whatever_the_pool_size() {
    let mut settings = DbSettings::new("sqlite::memory:");
    settings.max_connections = 8;
    let db = Db::connect(&settings).await.unwrap();
    db.migrate::<TestMigrator>().await.unwrap();

    let txn = db.begin_write().await.unwrap();
    outbox::append(&*txn, &[event("ws-1", "u-1")])
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let pending = outbox::pending(db.conn(), 10).await.unwrap();

    assert_eq!(pending.len(), 1);
    assert_eq!(pragma::<i64>(db.conn(), "foreign_keys").await, 1);
    db.close().await;
}

#[tokio::test]
async fn mode_rwc_creates_missing_parent_directories() {
    let root = std::env::temp_dir().join(format!("roster-rwc-{}", uuid::Uuid::new_v4().simple()));
    let file = root.join("nested/deeper/service.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());

    let db = Db::connect(&DbSettings::new(&url)).await.unwrap();
    db.ping().await.unwrap();

    assert!(file.exists());
    db.close().await;
    std::fs::remove_dir_all(root).unwrap();
}

#[tokio::test]
async fn missing_sqlite_file_without_rwc_is_a_configuration_error() {
    let file = std::env::temp_dir().join(format!("roster-missing-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", file.display());

    let err = Db::connect(&DbSettings::new(&url)).await.unwrap_err();

    match err {
        DbError::Config(text) => assert!(text.contains("mode=rwc"), "{text}"),
        other => panic!("expected Config, got {other:?}"),
    }
    assert!(!file.exists());
}

#[tokio::test]
async fn unsupported_scheme_is_a_configuration_error() {
    let err = Db::connect(&DbSettings::new("mysql://localhost/x"))
        .await
        .unwrap_err();

    assert!(
        matches!(err, DbError::Config(ref t) if t.contains("'mysql'")),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let mut settings = DbSettings::new("postgres://postgres@127.0.0.1:1/none");
    settings.acquire_timeout = Duration::from_millis(500);

    let err = Db::connect(&settings).await.unwrap_err();

    assert!(matches!(err, DbError::Unavailable(_)), "{err:?}");
}

async fn exhausted_pool_is_unavailable(backend: &TestBackend) {
    let fx = setup_with(backend, |s| {
        s.max_connections = 1;
        s.min_connections = 1;
        // Long enough to open the first connection on a busy test machine.
        s.acquire_timeout = Duration::from_secs(1);
    })
    .await;
    fx.db.ping().await.unwrap();
    let holder = fx.db.begin_write().await.unwrap();

    let query = exec(fx.db.conn(), "SELECT 1").await.unwrap_err();
    let second_writer = fx.db.begin_write().await.unwrap_err();

    assert!(matches!(query, DbError::Unavailable(_)), "{query:?}");
    assert!(
        matches!(second_writer, DbError::Unavailable(_)),
        "{second_writer:?}"
    );
    holder.rollback().await.unwrap();
    // The pool recovers once the connection is back.
    assert_eq!(
        count(fx.db.conn(), "SELECT count(*) FROM outbox_events").await,
        0
    );
    fx.teardown().await;
}
on_both_backends!(exhausted_pool_is_unavailable);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn replicas_migrating_one_postgres_database_at_once_both_succeed() {
    let Some(backend) = crate::support::postgres() else {
        crate::support::postgres_missing()
    };
    let tdb = TestDatabase::create(&backend).await.unwrap();
    let a = Db::connect(&DbSettings::new(&tdb.url)).await.unwrap();
    let b = Db::connect(&DbSettings::new(&tdb.url)).await.unwrap();

    let (ra, rb) = tokio::join!(a.migrate::<TestMigrator>(), b.migrate::<TestMigrator>());

    ra.unwrap();
    rb.unwrap();
    assert_eq!(
        count(a.conn(), "SELECT count(*) FROM seaql_migrations").await,
        i64::try_from(TestMigrator::migrations().len()).unwrap()
    );
    a.close().await;
    b.close().await;
    tdb.cleanup().await;
}

#[tokio::test]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn postgres_connections_carry_the_statement_timeout() {
    let Some(backend) = crate::support::postgres() else {
        crate::support::postgres_missing()
    };
    let tdb = TestDatabase::create(&backend).await.unwrap();
    let mut settings = DbSettings::new(&tdb.url);
    settings.statement_timeout = Some(Duration::from_millis(1500));
    let db = Db::connect(&settings).await.unwrap();

    let row = db
        .conn()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SHOW statement_timeout".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    let slow = exec(db.conn(), "SELECT pg_sleep(3)").await.unwrap_err();

    assert_eq!(row.try_get_by_index::<String>(0).unwrap(), "1500ms");
    assert!(matches!(slow, DbError::Unavailable(_)), "{slow:?}");
    db.close().await;
    tdb.cleanup().await;
}

#[tokio::test]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn missing_postgres_database_is_a_configuration_error() {
    let Some(roster_db::testing::TestBackend::Postgres(admin_url)) = crate::support::postgres()
    else {
        crate::support::postgres_missing()
    };
    let (server, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{server}/roster_no_such_database");

    let err = Db::connect(&DbSettings::new(&url)).await.unwrap_err();

    assert!(
        matches!(err, DbError::Config(ref t) if t.contains("does not exist")),
        "{err:?}"
    );
}
