//! The directory's operations: each one validates against stored state and writes its
//! change together with its audit events in the outbox, atomically: in one transaction, or
//! for a create, which reads nothing it writes, in one statement (`insert_atomically`).

mod customers;
mod export;
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

use crate::domain::Clock;
use crate::error::{DirectoryError, Result};
use crate::widget_kek::WidgetKeyring;

pub use customers::{CustomerEffect, CustomerPatch, CustomerRenames, NewCustomer};
pub use export::{MAX_EXPORTED_EVENTS, UserExport};
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
pub use roster_core::Actor;

#[derive(Clone)]
pub struct Directory {
    db: Db,
    clock: Arc<dyn Clock>,
    settings_cache: Arc<settings_cache::SettingsCache>,
    /// Seals and opens the workspaces' widget secrets.
    widget_kek: WidgetKeyring,
}

pub(crate) use roster_db::retry::MAX_ATTEMPTS;

impl roster_db::retry::RetryableError for DirectoryError {
    fn as_db_error(&self) -> Option<&DbError> {
        match self {
            DirectoryError::Database(error) => Some(error),
            _ => None,
        }
    }
}

/// Whether a failed write attempt should run again, under the shared retry policy.
pub(crate) fn is_retryable(error: &DirectoryError, retry_unique: bool) -> bool {
    roster_db::retry::is_retryable(error, retry_unique)
}

/// [`roster_db::in_write_txn!`] on the directory's database with its error type.
macro_rules! in_write_txn {
    ($directory:expr, retry_unique = $retry_unique:expr, |$txn:ident| $body:expr) => {
        roster_db::in_write_txn!(
            $directory.db,
            $crate::error::DirectoryError,
            retry_unique = $retry_unique,
            |$txn| $body
        )
    };
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
        attempt: impl FnMut() -> Result<(T, Vec<InsertStatement>)>,
    ) -> Result<(T, u64)> {
        roster_db::retry::insert_atomically(&self.db, retry_unique, attempt).await
    }

    fn event(
        &self,
        actor: &Actor,
        workspace_id: &str,
        action: &str,
        target: (&str, String),
        changes: Vec<FieldChange>,
    ) -> AuditEvent {
        AuditEvent::new(actor, workspace_id, action, target, changes, self.now_us())
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
