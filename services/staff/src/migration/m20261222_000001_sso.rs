//! Single sign-on: a workspace's OpenID Connect connections, the identities linked through
//! them, the nonces already used, and the connection an attempt signed in through.
//!
//! Keys lead with `workspace_id` like every table here. A connection keeps its provider's
//! JWKS as text (no fetch at sign-in) and its latest test; `default_role` is a role's
//! name, as `agents.role` is, so a rename rewrites it under the workspace lock.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261222_000001_sso"
    }
}

fn statements(uuid: &str) -> Vec<String> {
    vec![
        // `last_test_*` are null until a test ran since `issuer`, `client_id` and `jwks`
        // last changed; enabling needs `last_test_succeeded`.
        format!(
            "CREATE TABLE sso_connections (
                workspace_id TEXT NOT NULL,
                connection_id {uuid} NOT NULL,
                display_name TEXT NOT NULL,
                display_name_key TEXT NOT NULL,
                provider TEXT NOT NULL,
                issuer TEXT NOT NULL,
                client_id TEXT NOT NULL,
                allowed_email_domains TEXT NOT NULL DEFAULT '[]',
                jwks TEXT NOT NULL,
                default_role TEXT NOT NULL,
                provisioning_mode TEXT NOT NULL,
                enabled BOOLEAN NOT NULL DEFAULT FALSE,
                last_test_at BIGINT NULL,
                last_test_succeeded BOOLEAN NULL,
                last_test_failure TEXT NOT NULL DEFAULT '',
                last_test_by_kind TEXT NOT NULL DEFAULT '',
                last_test_by_id TEXT NOT NULL DEFAULT '',
                last_test_subject TEXT NOT NULL DEFAULT '',
                last_test_email TEXT NOT NULL DEFAULT '',
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                version BIGINT NOT NULL DEFAULT 1,
                PRIMARY KEY (workspace_id, connection_id)
            )"
        ),
        "CREATE UNIQUE INDEX sso_connections_name ON sso_connections (workspace_id, display_name_key)"
            .to_owned(),
        "CREATE INDEX sso_connections_role ON sso_connections (workspace_id, default_role)"
            .to_owned(),
        // A provider's person (`subject`, its `sub`) linked to an agent, at most one per
        // agent and connection: later sign-ins match by `sub`, which outlives e-mail
        // changes, and a second person claiming a linked agent's address is refused.
        format!(
            "CREATE TABLE sso_identities (
                workspace_id TEXT NOT NULL,
                connection_id {uuid} NOT NULL,
                subject TEXT NOT NULL,
                agent_id {uuid} NOT NULL,
                email TEXT NOT NULL,
                linked_at BIGINT NOT NULL,
                last_sign_in_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, connection_id, subject)
            )"
        ),
        "CREATE UNIQUE INDEX sso_identities_agent ON sso_identities (workspace_id, connection_id, agent_id)"
            .to_owned(),
        "CREATE INDEX sso_identities_of_agent ON sso_identities (workspace_id, agent_id)".to_owned(),
        // Nonces of accepted ID tokens (SHA-256), kept until the token expires: the primary
        // key makes a replayed token lose, also between replicas.
        format!(
            "CREATE TABLE sso_nonces (
                workspace_id TEXT NOT NULL,
                connection_id {uuid} NOT NULL,
                nonce_hash TEXT NOT NULL,
                expires_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, connection_id, nonce_hash)
            )"
        ),
        "CREATE INDEX sso_nonces_expiry ON sso_nonces (workspace_id, expires_at)".to_owned(),
        format!("ALTER TABLE sign_in_attempts ADD COLUMN sso_connection_id {uuid} NULL"),
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
