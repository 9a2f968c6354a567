//! Sign-in: refresh tokens, the record of every sign-in attempt, the counters that
//! throttle failed ones, and on agents their sign-in count and token generation.
//!
//! Keys lead with `workspace_id` like every table here. A refresh token carries its
//! workspace and id in the clear and only its secret is hashed, so redeeming one is a
//! primary-key read.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261215_000002_sign_in"
    }
}

fn statements(uuid: &str) -> Vec<String> {
    vec![
        "ALTER TABLE agents ADD COLUMN sign_in_count BIGINT NOT NULL DEFAULT 0".to_owned(),
        // Raised by every change that must end the agent's existing tokens (deactivation,
        // a new role or permissions); tokens carry the value they were issued under.
        "ALTER TABLE agents ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0".to_owned(),
        // A family is one sign-in's chain of rotated tokens. `rotated_at` marks a token
        // exchanged for its successor: presenting it again is reuse, which revokes the
        // family.
        format!(
            "CREATE TABLE refresh_tokens (
                workspace_id TEXT NOT NULL,
                token_id {uuid} NOT NULL,
                family_id {uuid} NOT NULL,
                agent_id {uuid} NOT NULL,
                secret_hash TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                rotated_at BIGINT NULL,
                revoked_at BIGINT NULL,
                PRIMARY KEY (workspace_id, token_id)
            )"
        ),
        "CREATE INDEX refresh_tokens_family ON refresh_tokens (workspace_id, family_id)"
            .to_owned(),
        "CREATE INDEX refresh_tokens_agent ON refresh_tokens (workspace_id, agent_id)".to_owned(),
        // Every attempt, successful or not; `agent_id` is null when the e-mail matched no
        // agent. `email` is what was typed (lower-cased), so attacks on unknown accounts
        // show too.
        format!(
            "CREATE TABLE sign_in_attempts (
                workspace_id TEXT NOT NULL,
                attempt_id {uuid} NOT NULL,
                agent_id {uuid} NULL,
                email TEXT NOT NULL,
                method TEXT NOT NULL,
                outcome TEXT NOT NULL,
                ip TEXT NOT NULL DEFAULT '',
                user_agent TEXT NOT NULL DEFAULT '',
                at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, attempt_id)
            )"
        ),
        "CREATE INDEX sign_in_attempts_agent ON sign_in_attempts (workspace_id, agent_id, attempt_id)"
            .to_owned(),
        "CREATE INDEX sign_in_attempts_at ON sign_in_attempts (workspace_id, at)".to_owned(),
        // Attempts in the current window per account (`account:<e-mail>`) and per address
        // (`address:<ip>`). An attempt is counted before its password is checked, in one
        // conditional UPDATE, so parallel attempts cannot all pass a check made before any
        // of them counted.
        "CREATE TABLE sign_in_throttles (
            workspace_id TEXT NOT NULL,
            throttle_key TEXT NOT NULL,
            attempts BIGINT NOT NULL,
            window_started_at BIGINT NOT NULL,
            PRIMARY KEY (workspace_id, throttle_key)
        )"
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
