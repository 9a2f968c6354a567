//! Agents, their passwords, invitations, teams and memberships, and the per-workspace row
//! that holds the seat limit and serialises seat and last-admin decisions.
//!
//! Every primary key and index leads with `workspace_id` (DESIGN.md, "Scaling past one
//! machine"). Times are unix microseconds in BIGINT columns, as in the directory.
//! Agent lists scan the workspace's agents for partial name/e-mail matches: a workspace
//! has hundreds to a few thousand agents, not the millions of end-users that need the
//! directory's trigram indexes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261210_000001_create_staff"
    }
}

fn statements(uuid: &str) -> Vec<String> {
    vec![
        // One row per workspace that has staff: its seat limit (0 = none) and the row every
        // seat-using or admin-removing change locks first, so two of them never decide on
        // the same count.
        "CREATE TABLE staff_workspaces (
            workspace_id TEXT NOT NULL,
            seat_limit BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            version BIGINT NOT NULL DEFAULT 1,
            PRIMARY KEY (workspace_id)
        )"
        .to_owned(),
        // `role` is a built-in role's name today; a custom role later is a role id in the
        // same column. `extra_permissions` and `notification_preferences` are JSON text.
        format!(
            "CREATE TABLE agents (
                workspace_id TEXT NOT NULL,
                agent_id {uuid} NOT NULL,
                email TEXT NOT NULL,
                email_key TEXT NOT NULL,
                name TEXT NOT NULL DEFAULT '',
                name_key TEXT NOT NULL DEFAULT '',
                avatar_url TEXT NOT NULL DEFAULT '',
                role TEXT NOT NULL,
                extra_permissions TEXT NOT NULL DEFAULT '[]',
                status TEXT NOT NULL,
                notification_preferences TEXT NOT NULL DEFAULT '{{}}',
                signature TEXT NOT NULL DEFAULT '',
                theme TEXT NOT NULL DEFAULT '',
                language TEXT NOT NULL DEFAULT '',
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                activated_at BIGINT NULL,
                deactivated_at BIGINT NULL,
                deactivation_reason TEXT NOT NULL DEFAULT '',
                last_sign_in_at BIGINT NOT NULL DEFAULT 0,
                version BIGINT NOT NULL DEFAULT 1,
                PRIMARY KEY (workspace_id, agent_id)
            )"
        ),
        "CREATE UNIQUE INDEX agents_email_key ON agents (workspace_id, email_key)".to_owned(),
        "CREATE INDEX agents_created ON agents (workspace_id, created_at, agent_id)".to_owned(),
        "CREATE INDEX agents_name ON agents (workspace_id, name_key, agent_id)".to_owned(),
        "CREATE INDEX agents_last_sign_in ON agents (workspace_id, last_sign_in_at, agent_id)"
            .to_owned(),
        "CREATE INDEX agents_status_role ON agents (workspace_id, status, role)".to_owned(),
        // Apart from agents, so no read of an agent ever carries a hash.
        format!(
            "CREATE TABLE agent_passwords (
                workspace_id TEXT NOT NULL,
                agent_id {uuid} NOT NULL,
                password_hash TEXT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, agent_id)
            )"
        ),
        // `state`: pending, accepted, revoked or superseded (a newer one was sent); expiry
        // is decided against `expires_at` when read. `request_id` and its fingerprint make
        // InviteAgent idempotent; invitations are kept, so request ids are remembered for
        // as long as their invitation.
        format!(
            "CREATE TABLE invitations (
                workspace_id TEXT NOT NULL,
                invitation_id {uuid} NOT NULL,
                agent_id {uuid} NOT NULL,
                secret_hash TEXT NOT NULL,
                state TEXT NOT NULL,
                invited_by_kind TEXT NOT NULL,
                invited_by_id TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                ended_at BIGINT NULL,
                request_id TEXT NULL,
                request_fingerprint TEXT NULL,
                PRIMARY KEY (workspace_id, invitation_id)
            )"
        ),
        "CREATE UNIQUE INDEX invitations_secret ON invitations (workspace_id, secret_hash)"
            .to_owned(),
        "CREATE UNIQUE INDEX invitations_request ON invitations (workspace_id, request_id)
            WHERE request_id IS NOT NULL"
            .to_owned(),
        "CREATE INDEX invitations_agent ON invitations (workspace_id, agent_id, state)".to_owned(),
        "CREATE INDEX invitations_open ON invitations (workspace_id, state, created_at, invitation_id)"
            .to_owned(),
        format!(
            "CREATE TABLE teams (
                workspace_id TEXT NOT NULL,
                team_id {uuid} NOT NULL,
                name TEXT NOT NULL,
                name_key TEXT NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                version BIGINT NOT NULL DEFAULT 1,
                PRIMARY KEY (workspace_id, team_id)
            )"
        ),
        "CREATE UNIQUE INDEX teams_name ON teams (workspace_id, name_key)".to_owned(),
        format!(
            "CREATE TABLE team_members (
                workspace_id TEXT NOT NULL,
                team_id {uuid} NOT NULL,
                agent_id {uuid} NOT NULL,
                added_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, team_id, agent_id)
            )"
        ),
        "CREATE INDEX team_members_agent ON team_members (workspace_id, agent_id)".to_owned(),
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
