//! Custom roles, and permissions carried by teams.
//!
//! Agents keep referring to their role by name in `agents.role` (a built-in's or a custom
//! role's, as tokens carry it), not by id as the first migration foresaw: a rename
//! rewrites its holders' rows under the workspace lock, and every read of an agent stays
//! one row. `agents_role` serves the holders' count that DeleteRole answers and renames.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261220_000010_roles_teams"
    }
}

fn statements(uuid: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE roles (
                workspace_id TEXT NOT NULL,
                role_id {uuid} NOT NULL,
                name TEXT NOT NULL,
                name_key TEXT NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                permissions TEXT NOT NULL DEFAULT '[]',
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                version BIGINT NOT NULL DEFAULT 1,
                PRIMARY KEY (workspace_id, role_id)
            )"
        ),
        "CREATE UNIQUE INDEX roles_name ON roles (workspace_id, name_key)".to_owned(),
        "CREATE INDEX agents_role ON agents (workspace_id, role)".to_owned(),
        "ALTER TABLE teams ADD COLUMN permissions TEXT NOT NULL DEFAULT '[]'".to_owned(),
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
