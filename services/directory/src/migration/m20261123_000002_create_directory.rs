//! Customers, end-users, identities, idempotency keys and workspace settings.
//!
//! Written as SQL per backend because the parts that matter most are backend-specific:
//! partial unique indexes (uniqueness only among live users), the pg_trgm GIN index that
//! serves infix search on PostgreSQL and the FTS5 trigram table that does it on SQLite.
//! Every primary key and index leads with `workspace_id` so the schema can later be
//! sharded by workspace (DESIGN.md, "Scaling past one machine").

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000002_create_directory"
    }
}

/// Statuses whose users no longer hold their external id or e-mail.
const RETIRED: &str = "('deleted', 'merged', 'erased')";

fn user_columns(uuid_type: &str) -> String {
    format!(
        "workspace_id TEXT NOT NULL,
        user_id {uuid_type} NOT NULL,
        external_id TEXT NOT NULL DEFAULT '',
        email TEXT NOT NULL DEFAULT '',
        email_key TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL DEFAULT '',
        avatar_url TEXT NOT NULL DEFAULT '',
        customer_id TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        restore_status TEXT NULL,
        title TEXT NOT NULL DEFAULT '',
        first_name TEXT NOT NULL DEFAULT '',
        last_name TEXT NOT NULL DEFAULT '',
        phone TEXT NOT NULL DEFAULT '',
        mobile TEXT NOT NULL DEFAULT '',
        fax TEXT NOT NULL DEFAULT '',
        street TEXT NOT NULL DEFAULT '',
        zip TEXT NOT NULL DEFAULT '',
        city TEXT NOT NULL DEFAULT '',
        country TEXT NOT NULL DEFAULT '',
        notes TEXT NOT NULL DEFAULT '',
        search_text TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        confirmed_at BIGINT NULL,
        last_activity_at BIGINT NOT NULL DEFAULT 0,
        deleted_at BIGINT NULL,
        conversation_count BIGINT NOT NULL DEFAULT 0,
        merged_into {uuid_type} NULL,
        version BIGINT NOT NULL DEFAULT 1"
    )
}

fn common_statements(uuid_type: &str) -> Vec<String> {
    vec![
        "CREATE TABLE customers (
            workspace_id TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            domains TEXT NOT NULL DEFAULT '[]',
            notes TEXT NOT NULL DEFAULT '',
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            version BIGINT NOT NULL DEFAULT 1,
            PRIMARY KEY (workspace_id, customer_id)
        )"
        .to_owned(),
        format!(
            "CREATE TABLE end_user_identities (
                workspace_id TEXT NOT NULL,
                source TEXT NOT NULL,
                identity_key TEXT NOT NULL,
                user_id {uuid_type} NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, source, identity_key)
            )"
        ),
        "CREATE INDEX end_user_identities_by_user ON end_user_identities (workspace_id, user_id)"
            .to_owned(),
        format!(
            "CREATE TABLE create_requests (
                workspace_id TEXT NOT NULL,
                request_id TEXT NOT NULL,
                user_id {uuid_type} NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, request_id)
            )"
        ),
        "CREATE TABLE workspace_settings (
            workspace_id TEXT NOT NULL PRIMARY KEY,
            chat_access TEXT NOT NULL,
            require_customer BOOLEAN NOT NULL DEFAULT FALSE,
            widget_secret TEXT NULL,
            previous_widget_secret TEXT NULL,
            previous_secret_expires_at BIGINT NULL,
            widget_secret_grace_seconds BIGINT NOT NULL,
            widget_keys TEXT NOT NULL DEFAULT '[]',
            updated_at BIGINT NOT NULL,
            version BIGINT NOT NULL DEFAULT 1
        )"
        .to_owned(),
        format!(
            "CREATE UNIQUE INDEX end_users_live_external_id ON end_users (workspace_id, external_id)
             WHERE external_id <> '' AND status NOT IN {RETIRED}"
        ),
        format!(
            "CREATE UNIQUE INDEX end_users_live_email ON end_users (workspace_id, email_key)
             WHERE email_key <> '' AND status NOT IN {RETIRED}"
        ),
        // Keyset paging: one index per sort order, each ending in the tie-breaker user_id.
        "CREATE INDEX end_users_by_created ON end_users (workspace_id, created_at, user_id)".to_owned(),
        "CREATE INDEX end_users_by_email ON end_users (workspace_id, email_key, user_id)".to_owned(),
        "CREATE INDEX end_users_by_status ON end_users (workspace_id, status, user_id)".to_owned(),
        "CREATE INDEX end_users_by_conversations ON end_users (workspace_id, conversation_count, user_id)"
            .to_owned(),
        "CREATE INDEX end_users_by_activity ON end_users (workspace_id, last_activity_at, user_id)"
            .to_owned(),
        // Matching by external id must also find deleted users, which the unique index skips.
        "CREATE INDEX end_users_by_external_id ON end_users (workspace_id, external_id)".to_owned(),
        "CREATE INDEX end_users_by_customer ON end_users (workspace_id, customer_id, status)".to_owned(),
    ]
}

fn postgres_statements() -> Vec<String> {
    let mut statements = vec![
        "CREATE EXTENSION IF NOT EXISTS pg_trgm".to_owned(),
        "CREATE EXTENSION IF NOT EXISTS btree_gin".to_owned(),
        format!(
            "CREATE TABLE end_users ({}, PRIMARY KEY (workspace_id, user_id))",
            user_columns("UUID")
        ),
    ];
    statements.extend(common_statements("UUID"));
    statements.extend([
        // btree_gin lets the trigram index lead with workspace_id like every other index.
        "CREATE INDEX end_users_search_trgm ON end_users USING gin (workspace_id, search_text gin_trgm_ops)"
            .to_owned(),
        "CREATE INDEX end_users_customer_trgm ON end_users USING gin (workspace_id, lower(customer_id) gin_trgm_ops)"
            .to_owned(),
    ]);
    statements
}

fn sqlite_statements() -> Vec<String> {
    // FTS5 external content needs a stable integer rowid; an implicit rowid may change on
    // VACUUM, so SQLite gets an INTEGER PRIMARY KEY `seq` and the workspace-leading key
    // becomes a unique constraint. Nothing outside this migration reads `seq`.
    let mut statements = vec![format!(
        "CREATE TABLE end_users (seq INTEGER PRIMARY KEY, {}, UNIQUE (workspace_id, user_id))",
        user_columns("BLOB")
    )];
    statements.extend(common_statements("BLOB"));
    statements.extend([
        "CREATE VIRTUAL TABLE end_users_fts USING fts5(
            search_text, customer_id,
            content='end_users', content_rowid='seq', tokenize='trigram'
        )"
        .to_owned(),
        "CREATE TRIGGER end_users_fts_insert AFTER INSERT ON end_users BEGIN
            INSERT INTO end_users_fts(rowid, search_text, customer_id)
            VALUES (new.seq, new.search_text, new.customer_id);
        END"
        .to_owned(),
        "CREATE TRIGGER end_users_fts_delete AFTER DELETE ON end_users BEGIN
            INSERT INTO end_users_fts(end_users_fts, rowid, search_text, customer_id)
            VALUES ('delete', old.seq, old.search_text, old.customer_id);
        END"
        .to_owned(),
        "CREATE TRIGGER end_users_fts_update AFTER UPDATE OF search_text, customer_id ON end_users BEGIN
            INSERT INTO end_users_fts(end_users_fts, rowid, search_text, customer_id)
            VALUES ('delete', old.seq, old.search_text, old.customer_id);
            INSERT INTO end_users_fts(rowid, search_text, customer_id)
            VALUES (new.seq, new.search_text, new.customer_id);
        END"
        .to_owned(),
    ]);
    statements
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = match manager.get_database_backend() {
            DbBackend::Postgres => postgres_statements(),
            DbBackend::Sqlite => sqlite_statements(),
            other => {
                return Err(DbErr::Migration(format!(
                    "the directory supports SQLite and PostgreSQL, not {other:?}"
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
