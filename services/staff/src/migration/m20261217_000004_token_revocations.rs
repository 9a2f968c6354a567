//! The revocation feed: each row says a subject's tokens below a generation are revoked.
//!
//! Every service follows this feed (WatchRevocations), so unlike the other tables it is
//! read across workspaces, by time: `revoked_at` has an index of its own, as the outbox's
//! delivery order does. Rows older than the longest token lifetime refuse nothing any
//! more and are purged.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261217_000004_token_revocations"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let connection = manager.get_connection();
        for statement in [
            "CREATE TABLE token_revocations (
                workspace_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                min_generation BIGINT NOT NULL,
                revoked_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, subject, min_generation)
            )",
            "CREATE INDEX token_revocations_at ON token_revocations (revoked_at)",
        ] {
            connection.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
