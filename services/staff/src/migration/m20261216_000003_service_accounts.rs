//! Service accounts: the credentials internal callers exchange for access tokens.
//!
//! An account belongs to the workspace that created it and may act in the workspaces it
//! lists (`["*"]`: every workspace, for platform services). Its client id carries that
//! workspace and its id, so IssueServiceToken is a primary-key read; only the secret's
//! SHA-256 is stored.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261216_000003_service_accounts"
    }
}

fn statements(uuid: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE service_accounts (
                workspace_id TEXT NOT NULL,
                service_account_id {uuid} NOT NULL,
                name TEXT NOT NULL,
                name_key TEXT NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                workspaces TEXT NOT NULL,
                permissions TEXT NOT NULL,
                secret_hash TEXT NOT NULL,
                status TEXT NOT NULL,
                created_by_kind TEXT NOT NULL,
                created_by_id TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                revoked_at BIGINT NULL,
                token_generation BIGINT NOT NULL DEFAULT 0,
                version BIGINT NOT NULL DEFAULT 1,
                PRIMARY KEY (workspace_id, service_account_id)
            )"
        ),
        "CREATE UNIQUE INDEX service_accounts_name ON service_accounts (workspace_id, name_key)"
            .to_owned(),
    ]
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = match manager.get_database_backend() {
            DbBackend::Postgres => statements("UUID"),
            DbBackend::Sqlite => statements("BLOB"),
            other => {
                return Err(DbErr::Migration(format!(
                    "the staff service supports SQLite and PostgreSQL, not {other:?}"
                )));
            }
        };
        let connection = manager.get_connection();
        for statement in statements {
            connection.execute_unprepared(&statement).await?;
        }
        Ok(())
    }
}
