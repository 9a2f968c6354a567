//! `request_ids`: what a call that carried an idempotency key (AIP-155) answered, so a
//! retry gets the first answer without repeating the change. BulkInviteAgents is its
//! first user; InviteAgent keeps its key on the invitation it created, since it creates
//! exactly one.
//!
//! The `created_at` index does not lead with `workspace_id`: the purge deletes expired
//! keys of every workspace at once (a documented exception, like the revocation feed's).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261222_000001_request_ids"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let connection = manager.get_connection();
        for statement in [
            "CREATE TABLE request_ids (
                workspace_id TEXT NOT NULL,
                request_id TEXT NOT NULL,
                operation TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                result TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, request_id)
            )",
            "CREATE INDEX request_ids_created_at ON request_ids (created_at)",
        ] {
            connection.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
