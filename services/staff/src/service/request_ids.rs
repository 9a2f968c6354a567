//! Idempotency keys (AIP-155) of calls that answer more than one created thing, bound to
//! the request's content: a retry with the same key and content gets the first call's
//! answer, the same key with other content REQUEST_ID_REUSED. Keys are remembered for
//! [`REQUEST_ID_WINDOW_US`]; older ones are purged and never matched before that.

use sea_orm::ConnectionTrait;

use super::Staff;
use super::invitations::{RequestKey, request_id_reused};
use crate::entity::request_id;
use crate::error::Result;
use crate::store;

/// How long a request id is remembered: a day covers any client's retries.
pub const REQUEST_ID_WINDOW_US: i64 = 24 * 60 * 60 * 1_000_000;

impl Staff {
    /// What `operation` answered the first time `key` was used, if this is a retry of it;
    /// REQUEST_ID_REUSED when the key was used for another request. An expired record is
    /// deleted, so the key starts afresh.
    pub(super) async fn replayed<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        operation: &str,
        key: &RequestKey,
    ) -> Result<Option<String>> {
        let Some(stored) = store::request_ids::find(conn, workspace_id, &key.id).await? else {
            return Ok(None);
        };
        let cutoff = self.now_us() - REQUEST_ID_WINDOW_US;
        if stored.created_at < cutoff {
            store::request_ids::delete_older_than(conn, Some(workspace_id), cutoff).await?;
            return Ok(None);
        }
        if stored.operation != operation || stored.fingerprint != key.fingerprint {
            return Err(request_id_reused());
        }
        Ok(Some(stored.result))
    }

    /// Records what `operation` answered for `key`, in the change's transaction.
    pub(super) async fn record_request<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        operation: &str,
        key: &RequestKey,
        result: String,
    ) -> Result<()> {
        store::request_ids::insert(
            conn,
            request_id::Model {
                workspace_id: workspace_id.to_owned(),
                request_id: key.id.clone(),
                operation: operation.to_owned(),
                fingerprint: key.fingerprint.clone(),
                result,
                created_at: self.now_us(),
            },
        )
        .await
    }

    /// Deletes request ids older than the window, in every workspace. Safe on every
    /// replica at once: each deletes the same rows or finds them gone.
    pub async fn purge_request_ids(&self) -> Result<u64> {
        let cutoff = self.now_us() - REQUEST_ID_WINDOW_US;
        store::request_ids::delete_older_than(self.db.conn(), None, cutoff).await
    }
}
