//! The revocation feed every service follows, and its retention.

use std::time::Duration;

use super::Staff;
use crate::entity::token_revocation;
use crate::error::Result;
use crate::store;

impl Staff {
    /// How long a revocation can still refuse a token: the lifetime of the last token
    /// issued before it, plus the verifiers' leeway.
    pub fn revocation_retention(&self) -> Duration {
        let keys = self.keys.settings();
        keys.access_token_ttl + keys.verifier_leeway
    }

    /// Revocations published at or after `from` (unix microseconds), oldest first.
    pub async fn revocations_since(&self, from: i64) -> Result<Vec<token_revocation::Model>> {
        store::revocations::since(self.db.conn(), from).await
    }

    /// Deletes revocations that can no longer refuse any token. Safe on every replica at
    /// once: each deletes the same rows or finds them gone.
    pub async fn purge_revocations(&self) -> Result<u64> {
        let retention = i64::try_from(self.revocation_retention().as_micros()).unwrap_or(i64::MAX);
        store::revocations::purge(self.db.conn(), self.now_us().saturating_sub(retention)).await
    }
}
