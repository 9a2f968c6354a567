//! What a user's status history and complete erasure need from the schema.
//!
//! - `end_users.deactivated_at`: a deactivated user that is then deleted keeps this mark,
//!   so undeleting brings it back deactivated, while `restore_status` keeps what it was
//!   before (guest, unconfirmed or active). Existing rows are backfilled: deactivated users
//!   from `updated_at`, users deleted while deactivated from `deleted_at` (their earlier
//!   status was lost; reactivation derives it from `confirmed_at`).
//! - An index on `merged_into`, so erasing a user finds the users merged into it without a
//!   scan of the workspace.
//! - SQLite: FTS5's `secure-delete`, so the trigram index really forgets erased text
//!   instead of keeping it in older segments behind a delete marker until a merge.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000003_status_history_and_erasure"
    }
}

const COMMON: &[&str] = &[
    "ALTER TABLE end_users ADD COLUMN deactivated_at BIGINT NULL",
    "UPDATE end_users SET deactivated_at = updated_at, restore_status = NULLIF(restore_status, 'deactivated') \
     WHERE status = 'deactivated'",
    "UPDATE end_users SET deactivated_at = deleted_at, restore_status = NULL \
     WHERE status = 'deleted' AND restore_status = 'deactivated'",
    "CREATE INDEX end_users_by_merged_into ON end_users (workspace_id, merged_into) \
     WHERE merged_into IS NOT NULL",
];

const SQLITE_ONLY: &[&str] =
    &["INSERT INTO end_users_fts(end_users_fts, rank) VALUES ('secure-delete', 1)"];

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend_only = match manager.get_database_backend() {
            DbBackend::Postgres => &[][..],
            DbBackend::Sqlite => SQLITE_ONLY,
            other => {
                return Err(DbErr::Migration(format!(
                    "the directory supports SQLite and PostgreSQL, not {other:?}"
                )));
            }
        };
        let connection = manager.get_connection();
        for statement in COMMON.iter().chain(backend_only) {
            connection.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
