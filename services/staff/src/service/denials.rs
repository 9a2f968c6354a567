//! The audit record of a refused call.

use roster_core::Actor;
use roster_db::in_write_txn;
use roster_db::outbox;

use super::{Staff, change};
use crate::error::{Result, StaffError};

/// The audit event's `outcome` for a refused call; changes succeed with "success".
const DENIED: &str = "denied";

impl Staff {
    /// Records that `actor` was refused `method` in a workspace, in a transaction of its own
    /// (the refused call wrote nothing to join). The event's target is the RPC, since a
    /// refusal may come before the call's resource is even read.
    pub async fn record_denial(
        &self,
        actor: &Actor,
        workspace_id: &str,
        method: &str,
        reason: &str,
        message: &str,
    ) -> Result<()> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let mut event = self.event(
                actor,
                workspace_id,
                "access.denied",
                ("rpc", format!("roster.staff.v1.StaffService/{method}")),
                vec![
                    change("reason", None, Some(reason.into())),
                    change("message", None, Some(message.into())),
                ],
            );
            event.outcome = DENIED.to_owned();
            outbox::append(&*txn, &[event]).await?;
            Ok(())
        })
    }
}
