//! The directory's operations: each one validates against stored state and writes its
//! change together with its audit events in the outbox, atomically: in one transaction, or
//! for a create, which reads nothing it writes, in one statement (`insert_atomically`).

mod customers;
mod import;
mod request_ids;
mod settings;
mod settings_cache;
mod upsert;
mod users;

use std::sync::Arc;

use roster_db::outbox::{AuditEvent, FieldChange};
use roster_db::{Db, DbError};
use sea_orm::sea_query::InsertStatement;
use uuid::Uuid;

use crate::domain::Clock;
use crate::error::{DirectoryError, Result};
use crate::widget_kek::WidgetKeyring;

pub use customers::{CustomerEffect, CustomerPatch, CustomerRenames, NewCustomer};
pub use import::{ImportCounts, ImportError, ImportInterruption, ImportOptions, ImportRow};
pub use request_ids::{REQUEST_ID_WINDOW_US, RequestKey};
pub use roster_core::etag::etag;
pub use settings::{
    ChatAccessDecision, ChatAccessDenial, DEFAULT_WIDGET_TOKEN_MAX_LIFETIME_SECONDS,
    MAX_WIDGET_GRACE_SECONDS, SettingsPatch, WIDGET_TOKEN_MAX_LIFETIME_BOUNDS, WorkspaceSettings,
};
pub use upsert::{UpsertInput, UpsertOutcome, UpsertResult};
pub use users::{Lookup, UserView};

/// Who asked, and the request's context; recorded on every audit event.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub kind: String,
    pub id: String,
    pub request_id: String,
    pub trace_id: Option<String>,
    pub peer_ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone)]
pub struct Directory {
    db: Db,
    clock: Arc<dyn Clock>,
    settings_cache: Arc<settings_cache::SettingsCache>,
    /// Seals and opens the workspaces' widget secrets.
    widget_kek: WidgetKeyring,
}

/// Optimistic-concurrency races and concurrent inserts of the same new user are retried a
/// few times before the caller sees ABORTED.
const MAX_ATTEMPTS: u32 = 5;

fn is_retryable(error: &DirectoryError, retry_unique: bool) -> bool {
    match error {
        DirectoryError::Database(DbError::Conflict) => true,
        DirectoryError::Database(DbError::UniqueViolation { .. }) => retry_unique,
        _ => false,
    }
}

/// The error a caller sees once retries are spent: a conflict that kept recurring is
/// ABORTED, anything else is itself.
fn gave_up(error: DirectoryError) -> DirectoryError {
    match error {
        DirectoryError::Database(DbError::Conflict) => DirectoryError::aborted(
            crate::error::reason::CONCURRENT_CHANGE,
            "concurrent changes kept conflicting with this one; retry",
        ),
        other => other,
    }
}

/// Runs `$body` in a write transaction, commits on success, rolls back on error, and
/// retries transient conflicts. A macro rather than a closure-taking function because the
/// body borrows the transaction across awaits.
macro_rules! in_write_txn {
    ($directory:expr, retry_unique = $retry_unique:expr, |$txn:ident| $body:expr) => {{
        let mut attempt = 1u32;
        loop {
            let $txn = $directory.db.begin_write().await?;
            let outcome: $crate::error::Result<_> = async { $body }.await;
            match outcome {
                Ok(value) => {
                    $txn.commit().await?;
                    break Ok(value);
                }
                Err(error) => {
                    if let Err(rollback) = $txn.rollback().await {
                        tracing::warn!(error = %rollback, "rollback failed");
                    }
                    if attempt < $crate::service::MAX_ATTEMPTS && $crate::service::is_retryable(&error, $retry_unique) {
                        attempt += 1;
                        continue;
                    }
                    break Err($crate::service::gave_up(error));
                }
            }
        }
    }};
}
pub(crate) use in_write_txn;

impl Directory {
    pub fn new(db: Db, clock: Arc<dyn Clock>, widget_kek: WidgetKeyring) -> Self {
        Self {
            db,
            clock,
            settings_cache: Arc::default(),
            widget_kek,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    fn now_us(&self) -> i64 {
        self.clock.now_us()
    }

    /// The writes of a create, which reads nothing it writes, through
    /// [`Db::insert_atomically`] (one round trip on PostgreSQL). `attempt` builds the new
    /// rows with their audit events and is called again, for fresh ids and random values,
    /// when the write lost a transient conflict or, with `retry_unique`, hit a unique index.
    async fn insert_atomically<T>(
        &self,
        retry_unique: bool,
        attempt: impl FnMut() -> Result<(T, Vec<InsertStatement>)>,
    ) -> Result<T> {
        self.insert_atomically_counting(retry_unique, attempt)
            .await
            .map(|(created, _)| created)
    }

    /// [`Directory::insert_atomically`], also returning the rows the last insert wrote
    /// (none when its `INSERT … SELECT` found nothing to depend on).
    async fn insert_atomically_counting<T>(
        &self,
        retry_unique: bool,
        mut attempt: impl FnMut() -> Result<(T, Vec<InsertStatement>)>,
    ) -> Result<(T, u64)> {
        let mut attempts = 1u32;
        loop {
            let (created, inserts) = attempt()?;
            match self.db.insert_atomically(inserts).await {
                Ok(written) => return Ok((created, written)),
                Err(error) => {
                    let error = DirectoryError::from(error);
                    if attempts < MAX_ATTEMPTS && is_retryable(&error, retry_unique) {
                        attempts += 1;
                        continue;
                    }
                    return Err(gave_up(error));
                }
            }
        }
    }

    fn event(
        &self,
        actor: &Actor,
        workspace_id: &str,
        action: &str,
        target: (&str, String),
        changes: Vec<FieldChange>,
    ) -> AuditEvent {
        AuditEvent {
            event_id: Uuid::now_v7(),
            workspace_id: workspace_id.to_owned(),
            occurred_at_us: self.now_us(),
            actor_kind: actor.kind.clone(),
            actor_id: actor.id.clone(),
            action: action.to_owned(),
            target_type: target.0.to_owned(),
            target_id: target.1,
            changes,
            request_id: actor.request_id.clone(),
            trace_id: actor.trace_id.clone(),
            peer_ip: actor.peer_ip.clone(),
            user_agent: actor.user_agent.clone(),
            outcome: "success".to_owned(),
        }
    }
}

/// An empty etag means "no precondition".
pub fn parse_etag(field: &str, etag: &str) -> Result<Option<i64>> {
    Ok(roster_core::etag::parse_etag(field, etag)?)
}

fn check_etag(expected: Option<i64>, version: i64) -> Result<()> {
    if roster_core::etag::is_current(expected, version) {
        Ok(())
    } else {
        Err(DirectoryError::stale_etag())
    }
}
