//! `create_requests` (CreateUser's idempotency keys) becomes `request_ids`, which every
//! create and counter change uses and which binds an id to the request's content. Existing
//! keys are kept, marked as CreateUser with no fingerprint (they match any content until
//! they are purged).
//!
//! The `created_at` index does not lead with `workspace_id`: the purge deletes expired ids
//! of every workspace at once (a documented exception, like the outbox's `seq` index).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000005_request_ids"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite keeps UUIDs as 16-byte blobs; their 32 hex digits parse as a UUID too.
        let user_id_text = match manager.get_database_backend() {
            DbBackend::Postgres => "user_id::text",
            DbBackend::Sqlite => "lower(hex(user_id))",
            other => {
                return Err(DbErr::Migration(format!(
                    "the directory supports SQLite and PostgreSQL, not {other:?}"
                )));
            }
        };
        let statements = [
            "CREATE TABLE request_ids (
                workspace_id TEXT NOT NULL,
                request_id TEXT NOT NULL,
                operation TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                result TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, request_id)
            )"
            .to_owned(),
            "CREATE INDEX request_ids_created_at ON request_ids (created_at)".to_owned(),
            format!(
                "INSERT INTO request_ids (workspace_id, request_id, operation, fingerprint, result, created_at)
                 SELECT workspace_id, request_id, 'CreateUser', '', {user_id_text}, created_at
                 FROM create_requests"
            ),
            "DROP TABLE create_requests".to_owned(),
        ];
        let connection = manager.get_connection();
        for statement in statements {
            connection.execute_unprepared(&statement).await?;
        }
        Ok(())
    }
}
