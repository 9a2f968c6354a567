use std::time::{Duration, SystemTime, UNIX_EPOCH};

use roster_db::outbox::{AuditEvent, FieldChange};
use roster_db::testing::{TestBackend, TestDatabase};
use roster_db::{CreateOutboxTable, Db, DbSettings};
use sea_orm::{ConnectionTrait, DbBackend, DbErr};
use sea_orm_migration::{MigrationName, MigrationTrait, MigratorTrait, SchemaManager};

/// Runs `$check(&TestBackend)` as two tests, `$check::sqlite` and `$check::postgres`.
macro_rules! on_both_backends {
    ($check:ident) => {
        mod $check {
            #[tokio::test]
            async fn sqlite() {
                super::$check(&roster_db::testing::TestBackend::Sqlite).await;
            }

            // roster-testkit's macro cannot serve here (the testkit depends on this
            // crate), but the same build script decides what is skipped.
            #[tokio::test]
            #[cfg_attr(
                not(roster_postgres_tests),
                ignore = "ROSTER_TEST_DATABASE_URL is not set"
            )]
            async fn postgres() {
                let backend = crate::support::postgres()
                    .expect("ROSTER_TEST_DATABASE_URL names a PostgreSQL server");
                super::$check(&backend).await;
            }
        }
    };
}
pub(crate) use on_both_backends;

pub fn postgres() -> Option<TestBackend> {
    TestBackend::from_env_postgres()
}

/// Where a PostgreSQL-only test, compiled to run only with `ROSTER_TEST_DATABASE_URL`
/// set (see the crate's build script), finds the variable empty after all.
pub fn postgres_missing() -> ! {
    panic!("ROSTER_TEST_DATABASE_URL is set when cfg(roster_postgres_tests) is");
}

/// The outbox plus two small tables with a named unique constraint and a foreign key.
pub struct TestMigrator;

impl MigratorTrait for TestMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOutboxTable),
            Box::new(roster_db::delivery::AddDeliveryState),
            Box::new(roster_db::outbox::ADD_TRACEPARENT),
            Box::new(roster_db::delivery::ADD_WORKSPACE_DUE_INDEX),
            Box::new(CreateParentsAndChildren),
        ]
    }
}

struct CreateParentsAndChildren;

impl MigrationName for CreateParentsAndChildren {
    fn name(&self) -> &str {
        "m20261123_000002_create_parents_and_children"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateParentsAndChildren {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        for sql in [
            "CREATE TABLE parents (
                workspace_id TEXT NOT NULL,
                id TEXT NOT NULL,
                name TEXT NOT NULL,
                CONSTRAINT parents_pkey PRIMARY KEY (workspace_id, id),
                CONSTRAINT parents_workspace_id_name_key UNIQUE (workspace_id, name)
            )",
            "CREATE TABLE children (
                workspace_id TEXT NOT NULL,
                id TEXT NOT NULL,
                parent_id TEXT NOT NULL,
                CONSTRAINT children_pkey PRIMARY KEY (workspace_id, id),
                CONSTRAINT children_parent_fkey FOREIGN KEY (workspace_id, parent_id)
                    REFERENCES parents (workspace_id, id)
            )",
            "CREATE TABLE notes (
                workspace_id TEXT NOT NULL,
                id TEXT NOT NULL,
                body TEXT NOT NULL,
                tag TEXT NULL,
                stars BIGINT NULL,
                version BIGINT NOT NULL,
                CONSTRAINT notes_pkey PRIMARY KEY (workspace_id, id)
            )",
        ] {
            conn.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}

pub struct Fixture {
    pub db: Db,
    pub tdb: TestDatabase,
}

impl Fixture {
    pub async fn teardown(self) {
        self.db.close().await;
        self.tdb.cleanup().await;
    }
}

pub async fn setup(backend: &TestBackend) -> Fixture {
    setup_with(backend, |_| {}).await
}

pub async fn setup_with(backend: &TestBackend, tweak: impl FnOnce(&mut DbSettings)) -> Fixture {
    let tdb = TestDatabase::create(backend)
        .await
        .expect("create test database");
    let mut settings = DbSettings::new(&tdb.url);
    tweak(&mut settings);
    let db = Db::connect(&settings).await.expect("connect");
    db.migrate::<TestMigrator>().await.expect("migrate");
    Fixture { db, tdb }
}

pub fn now_us() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_micros()).unwrap()
}

pub fn event(workspace_id: &str, target_id: &str) -> AuditEvent {
    AuditEvent {
        event_id: uuid::Uuid::now_v7(),
        workspace_id: workspace_id.to_owned(),
        occurred_at_us: now_us(),
        actor_kind: "agent".to_owned(),
        actor_id: "agent-1".to_owned(),
        action: "end_user.deactivated".to_owned(),
        target_type: "end_user".to_owned(),
        target_id: target_id.to_owned(),
        changes: vec![
            FieldChange {
                field: "status".to_owned(),
                before: Some(serde_json::json!("ACTIVE")),
                after: Some(serde_json::json!("DEACTIVATED")),
            },
            FieldChange {
                field: "notes".to_owned(),
                before: None,
                after: Some(serde_json::json!({"text": "left the company", "n": 1})),
            },
        ],
        request_id: "req-1".to_owned(),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".to_owned()),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
        peer_ip: Some("203.0.113.7".to_owned()),
        user_agent: None,
        outcome: "success".to_owned(),
    }
}

/// An INSERT of one `parents` row in workspace `ws-1`.
pub fn parent(id: &str, name: &str) -> sea_orm::sea_query::InsertStatement {
    use sea_orm::sea_query::{Alias, Query};
    Query::insert()
        .into_table(Alias::new("parents"))
        .columns([
            Alias::new("workspace_id"),
            Alias::new("id"),
            Alias::new("name"),
        ])
        .values_panic(["ws-1".into(), id.into(), name.into()])
        .to_owned()
}

/// Runs one statement whose values are test literals.
pub async fn exec(conn: &impl ConnectionTrait, sql: &str) -> roster_db::Result<()> {
    conn.execute_unprepared(sql).await?;
    Ok(())
}

/// `SELECT count(*)` of a query, as i64 on both backends.
pub async fn count(conn: &impl ConnectionTrait, sql: &str) -> i64 {
    let backend: DbBackend = conn.get_database_backend();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// The `notes` table, for the set-based writes of `roster_db::bulk`.
pub mod note {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "notes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub workspace_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub body: String,
        pub tag: Option<String>,
        pub stars: Option<i64>,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
