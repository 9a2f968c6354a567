//! The per-workspace cap on a widget token's lifetime.
//!
//! Widget secrets are encrypted from this release on, but a migration has no key-encryption
//! key, so rows written before it keep plaintext secrets until the service seals them: see
//! `Directory::seal_plaintext_widget_secrets`, which runs at every start.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000004_widget_token_lifetime"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The same statement on both backends; the default is the 24 hours the issue asks for.
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE workspace_settings
                 ADD COLUMN widget_token_max_lifetime_seconds BIGINT NOT NULL DEFAULT 86400",
            )
            .await?;
        Ok(())
    }
}
