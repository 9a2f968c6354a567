//! The audit log's schema.
//!
//! - `audit_logs`: one row per workspace's log, the head: its tree size and root, locked by
//!   every append so a workspace's leaves are numbered without gaps, one append at a time;
//!   `retention_us` how long events are kept (NULL: for ever) and `min_index` the first
//!   leaf retention has not pruned.
//! - `audit_legal_holds`: holds that stop pruning, of a whole log (`subject_id` empty) or
//!   of the events by or about one subject; a lifted hold's row is deleted (the log itself
//!   records both).
//! - `audit_events`: one row per event at its leaf index, the envelope in columns (indexed
//!   for ListEvents' filters), `change_fields` and `commitments` as JSON text (what the
//!   leaf commits to), `personal_values` the erasable values with their salts.
//! - `audit_tree_hashes`: every hash of the tree at its `tlog` stored index (see
//!   `domain::tree`), written in index order and never changed.
//! - `audit_checkpoints`: every signed checkpoint, one per append that grew the log.
//! - `audit_log_key`: the one Ed25519 key that signs checkpoints, sealed with the audit
//!   KEK; a platform row with no workspace, like the staff service's `signing_keys`.
//!
//! Append-only is enforced by triggers on both engines: event rows, hashes and checkpoints
//! refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL). Two changes are sanctioned and
//! shaped into the triggers: `personal_values` is the one column an UPDATE may set (the
//! redaction of an erased person's values, whose commitments stay in the leaf), and an
//! event row below its log's `min_index` may be deleted (retention). JSON is stored as
//! TEXT rather than jsonb so the stored text is exactly what the service wrote.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261224_000001_create_audit_log"
    }
}

/// Every column of `audit_events` but `personal_values`: what an UPDATE may never set.
const IMMUTABLE_EVENT_COLUMNS: &str = "workspace_id, leaf_index, event_id, occurred_at, \
     recorded_at, source_service, schema_version, actor_kind, actor_id, action, target_type, \
     target_id, outcome, request_id, trace_id, change_fields, commitments";

fn postgres() -> Vec<String> {
    let mut statements: Vec<String> = [
        "CREATE TABLE audit_logs (
            workspace_id TEXT NOT NULL PRIMARY KEY,
            tree_size BIGINT NOT NULL,
            root_hash BYTEA NOT NULL,
            min_index BIGINT NOT NULL DEFAULT 0,
            retention_us BIGINT NULL,
            updated_at BIGINT NOT NULL
        )",
        "CREATE TABLE audit_legal_holds (
            workspace_id TEXT NOT NULL,
            hold_id UUID NOT NULL,
            subject_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            placed_by TEXT NOT NULL,
            placed_at BIGINT NOT NULL,
            PRIMARY KEY (workspace_id, hold_id)
        )",
        // `action` sorts bytewise (COLLATE \"C\"), so an action prefix is an index range.
        "CREATE TABLE audit_events (
            workspace_id TEXT NOT NULL,
            leaf_index BIGINT NOT NULL,
            event_id UUID NOT NULL,
            occurred_at BIGINT NOT NULL,
            recorded_at BIGINT NOT NULL,
            source_service TEXT NOT NULL,
            schema_version INTEGER NOT NULL,
            actor_kind TEXT NOT NULL,
            actor_id TEXT NOT NULL,
            action TEXT COLLATE \"C\" NOT NULL,
            target_type TEXT NOT NULL,
            target_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            request_id TEXT NOT NULL,
            trace_id TEXT NOT NULL,
            change_fields TEXT NOT NULL,
            commitments TEXT NOT NULL,
            personal_values TEXT NULL,
            PRIMARY KEY (workspace_id, leaf_index)
        )",
        "CREATE TABLE audit_tree_hashes (
            workspace_id TEXT NOT NULL,
            stored_index BIGINT NOT NULL,
            hash BYTEA NOT NULL,
            PRIMARY KEY (workspace_id, stored_index)
        )",
        "CREATE TABLE audit_checkpoints (
            workspace_id TEXT NOT NULL,
            tree_size BIGINT NOT NULL,
            root_hash BYTEA NOT NULL,
            signed_note TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (workspace_id, tree_size)
        )",
        "CREATE TABLE audit_log_key (
            slot INTEGER NOT NULL PRIMARY KEY CHECK (slot = 1),
            private_key_sealed TEXT NOT NULL,
            public_key BYTEA NOT NULL,
            created_at BIGINT NOT NULL
        )",
        "CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
        END $$",
        "CREATE FUNCTION audit_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND OLD.leaf_index < COALESCE(
                (SELECT min_index FROM audit_logs WHERE workspace_id = OLD.workspace_id), 0)
            THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION 'audit_events is append-only: % of event % refused',
                TG_OP, OLD.event_id;
        END $$",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    statements.push(format!(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OF {IMMUTABLE_EVENT_COLUMNS} OR DELETE
            ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_events_guard()"
    ));
    for table in ["audit_events", "audit_tree_hashes", "audit_checkpoints"] {
        if table != "audit_events" {
            statements.push(format!(
                "CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
            ));
        }
        statements.push(format!(
            "CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        ));
    }
    statements
}

fn sqlite() -> Vec<String> {
    let mut statements: Vec<String> = [
        "CREATE TABLE audit_logs (
            workspace_id TEXT NOT NULL PRIMARY KEY,
            tree_size INTEGER NOT NULL,
            root_hash BLOB NOT NULL,
            min_index INTEGER NOT NULL DEFAULT 0,
            retention_us INTEGER NULL,
            updated_at INTEGER NOT NULL
        ) STRICT",
        "CREATE TABLE audit_legal_holds (
            workspace_id TEXT NOT NULL,
            hold_id BLOB NOT NULL,
            subject_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            placed_by TEXT NOT NULL,
            placed_at INTEGER NOT NULL,
            PRIMARY KEY (workspace_id, hold_id)
        ) STRICT",
        "CREATE TABLE audit_events (
            workspace_id TEXT NOT NULL,
            leaf_index INTEGER NOT NULL,
            event_id BLOB NOT NULL,
            occurred_at INTEGER NOT NULL,
            recorded_at INTEGER NOT NULL,
            source_service TEXT NOT NULL,
            schema_version INTEGER NOT NULL,
            actor_kind TEXT NOT NULL,
            actor_id TEXT NOT NULL,
            action TEXT NOT NULL,
            target_type TEXT NOT NULL,
            target_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            request_id TEXT NOT NULL,
            trace_id TEXT NOT NULL,
            change_fields TEXT NOT NULL,
            commitments TEXT NOT NULL,
            personal_values TEXT NULL,
            PRIMARY KEY (workspace_id, leaf_index)
        ) STRICT",
        "CREATE TABLE audit_tree_hashes (
            workspace_id TEXT NOT NULL,
            stored_index INTEGER NOT NULL,
            hash BLOB NOT NULL,
            PRIMARY KEY (workspace_id, stored_index)
        ) STRICT",
        "CREATE TABLE audit_checkpoints (
            workspace_id TEXT NOT NULL,
            tree_size INTEGER NOT NULL,
            root_hash BLOB NOT NULL,
            signed_note TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (workspace_id, tree_size)
        ) STRICT",
        "CREATE TABLE audit_log_key (
            slot INTEGER NOT NULL PRIMARY KEY CHECK (slot = 1),
            private_key_sealed TEXT NOT NULL,
            public_key BLOB NOT NULL,
            created_at INTEGER NOT NULL
        ) STRICT",
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
            WHEN OLD.leaf_index >= COALESCE(
                (SELECT min_index FROM audit_logs WHERE workspace_id = OLD.workspace_id), 0)
            BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE refused'); END",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    statements.push(format!(
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE OF {IMMUTABLE_EVENT_COLUMNS}
            ON audit_events
            BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE refused'); END"
    ));
    for table in ["audit_tree_hashes", "audit_checkpoints"] {
        for operation in ["UPDATE", "DELETE"] {
            let lower = operation.to_ascii_lowercase();
            statements.push(format!(
                "CREATE TRIGGER {table}_no_{lower} BEFORE {operation} ON {table}
                    BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
            ));
        }
    }
    statements
}

/// Indexes for ListEvents' filters, each leading with the workspace and ending with the
/// leaf index it pages by.
const INDEXES: &[&str] = &[
    "CREATE UNIQUE INDEX audit_events_event_id ON audit_events (workspace_id, event_id)",
    "CREATE INDEX audit_events_actor ON audit_events (workspace_id, actor_id, leaf_index)",
    "CREATE INDEX audit_events_target
        ON audit_events (workspace_id, target_type, target_id, leaf_index)",
    "CREATE INDEX audit_events_action ON audit_events (workspace_id, action, leaf_index)",
    "CREATE INDEX audit_events_occurred ON audit_events (workspace_id, occurred_at)",
];

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = match manager.get_database_backend() {
            DbBackend::Postgres => postgres(),
            DbBackend::Sqlite => sqlite(),
            other => {
                return Err(DbErr::Migration(format!(
                    "audit: unsupported backend {other:?}"
                )));
            }
        };
        let connection = manager.get_connection();
        for statement in statements
            .iter()
            .map(String::as_str)
            .chain(INDEXES.iter().copied())
        {
            connection.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    /// All or nothing on both engines.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
