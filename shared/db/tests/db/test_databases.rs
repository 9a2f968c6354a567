use std::path::PathBuf;

use roster_db::testing::{TestBackend, TestDatabase};
use roster_db::{Db, DbSettings};

use crate::support::{TestMigrator, count, postgres, postgres_missing};

fn database_name(url: &str) -> String {
    let path = url.rsplit('/').next().unwrap();
    path.split('?').next().unwrap().to_owned()
}

async fn database_exists(admin_url: &str, name: &str) -> bool {
    let admin = Db::connect(&DbSettings::new(admin_url)).await.unwrap();
    let n = count(
        admin.conn(),
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    )
    .await;
    admin.close().await;
    n == 1
}

#[tokio::test]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn postgres_test_database_is_dropped_by_cleanup_even_with_open_connections() {
    let Some(backend) = postgres() else {
        postgres_missing()
    };
    let TestBackend::Postgres(admin_url) = &backend else {
        unreachable!("from_env_postgres returns Postgres");
    };
    let tdb = TestDatabase::create(&backend).await.unwrap();
    let name = database_name(&tdb.url);
    let db = Db::connect(&DbSettings::new(&tdb.url)).await.unwrap();
    db.migrate::<TestMigrator>().await.unwrap();
    assert!(name.starts_with("roster_test_"));
    assert!(database_exists(admin_url, &name).await);

    tdb.cleanup().await;

    assert!(!database_exists(admin_url, &name).await);
    db.close().await;
}

#[tokio::test]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn postgres_test_database_is_dropped_when_a_test_forgets_cleanup() {
    let Some(backend) = postgres() else {
        postgres_missing()
    };
    let TestBackend::Postgres(admin_url) = &backend else {
        unreachable!("from_env_postgres returns Postgres");
    };
    let tdb = TestDatabase::create(&backend).await.unwrap();
    let name = database_name(&tdb.url);

    drop(tdb);

    assert!(!database_exists(admin_url, &name).await);
}

#[tokio::test]
async fn sqlite_test_database_directory_is_removed() {
    let tdb = TestDatabase::create(&TestBackend::Sqlite).await.unwrap();
    let db = Db::connect(&DbSettings::new(&tdb.url)).await.unwrap();
    db.migrate::<TestMigrator>().await.unwrap();
    let file = PathBuf::from(
        tdb.url
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap(),
    );
    assert!(file.exists());
    db.close().await;

    tdb.cleanup().await;

    assert!(!file.parent().unwrap().exists());
}

#[test]
fn all_backends_always_include_sqlite() {
    let all = TestBackend::all();

    assert!(matches!(all[0], TestBackend::Sqlite));
    assert_eq!(all.len(), 1 + usize::from(postgres().is_some()));
}
