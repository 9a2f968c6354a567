//! Request ids (AIP-155) bound to the request's content. A create or counter change that
//! carries an id records (id → operation, content fingerprint, result) with its change; a
//! retry with the same id and content gets the first call's result without repeating the
//! change, and the same id with other content is refused with REQUEST_ID_REUSED. Ids are
//! remembered for [`REQUEST_ID_WINDOW_US`]; older ones are purged by
//! [`Directory::purge_request_ids`] and never matched before that.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::InsertStatement;

use super::Directory;
use crate::entity::request_id;
use crate::error::{DirectoryError, Result};
use crate::store;

/// How long a request id is remembered: a day covers any client's retries.
pub const REQUEST_ID_WINDOW_US: i64 = 24 * 60 * 60 * 1_000_000;

/// How often each replica purges expired request ids.
pub const REQUEST_ID_PURGE_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// A request's id with what it is bound to. The fingerprint is computed by the caller
/// (the API layer hashes the request message without its id).
#[derive(Clone, Debug)]
pub struct RequestKey {
    pub id: String,
    pub operation: &'static str,
    pub fingerprint: String,
}

impl Directory {
    /// The result the request already produced, if this is a retry of it; REQUEST_ID_REUSED
    /// when the id was used for another request. An expired record is deleted, so the id
    /// starts afresh.
    pub(super) async fn replayed<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        key: Option<&RequestKey>,
    ) -> Result<Option<String>> {
        let Some(key) = key else {
            return Ok(None);
        };
        let Some(stored) = store::request_ids::find(conn, workspace_id, &key.id).await? else {
            return Ok(None);
        };
        let cutoff = self.now_us() - REQUEST_ID_WINDOW_US;
        if stored.created_at < cutoff {
            store::request_ids::delete_older_than(conn, Some(workspace_id), cutoff).await?;
            return Ok(None);
        }
        let same_content = stored.fingerprint.is_empty() || stored.fingerprint == key.fingerprint;
        if stored.operation != key.operation || !same_content {
            return Err(DirectoryError::request_id_reused());
        }
        Ok(Some(stored.result))
    }

    pub(super) fn request_row(
        &self,
        workspace_id: &str,
        key: &RequestKey,
        result: String,
    ) -> request_id::Model {
        request_id::Model {
            workspace_id: workspace_id.to_owned(),
            request_id: key.id.clone(),
            operation: key.operation.to_owned(),
            fingerprint: key.fingerprint.clone(),
            result,
            created_at: self.now_us(),
        }
    }

    /// The INSERT recording `key`'s result, for a create's single statement.
    pub(super) fn request_statement(
        &self,
        workspace_id: &str,
        key: &RequestKey,
        result: String,
    ) -> InsertStatement {
        store::request_ids::insert_statement(&self.request_row(workspace_id, key, result))
    }

    /// Records `key`'s result in the change's transaction.
    pub(super) async fn record_request<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        key: Option<&RequestKey>,
        result: String,
    ) -> Result<()> {
        match key {
            Some(key) => {
                store::request_ids::insert(conn, &self.request_row(workspace_id, key, result)).await
            }
            None => Ok(()),
        }
    }

    /// Deletes request ids older than the window, in every workspace.
    pub async fn purge_request_ids(&self) -> Result<u64> {
        let cutoff = self.now_us() - REQUEST_ID_WINDOW_US;
        store::request_ids::delete_older_than(self.db.conn(), None, cutoff).await
    }

    /// Purges expired request ids every [`REQUEST_ID_PURGE_INTERVAL`] until dropped. Every
    /// replica runs it; the DELETE is idempotent, so they need no coordination.
    pub async fn purge_request_ids_periodically(self) {
        let mut ticks = tokio::time::interval(REQUEST_ID_PURGE_INTERVAL);
        loop {
            ticks.tick().await;
            match self.purge_request_ids().await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "purged expired request ids"),
                Err(error) => tracing::warn!(error = %error, "purging expired request ids failed"),
            }
        }
    }
}
