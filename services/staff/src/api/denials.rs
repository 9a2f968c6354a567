//! Denied calls leave an audit event: an admin reviewing who tried what must see the
//! refusals, not only the changes that went through.
//!
//! A refusal can come from the workspace check, from the grant guard or from a guard rail
//! deep in the service, and each handler learns the caller and the workspace at its own
//! point. Rather than thread both through every error, the handler's call runs inside a
//! [`watch`] scope: [`super::caller`] and `authz`'s checks note what they established,
//! and when the call ends in PERMISSION_DENIED the scope has what the audit event needs.
//! A refusal before the workspace is known (a malformed id, a token that does not parse) is
//! not recorded here: there is no tenant to file it under, and the request log has it.

use std::sync::{Arc, Mutex, PoisonError};

use roster_core::Actor;
use tonic::Code;

use crate::error::{Result, StaffError};

/// What the running call established about itself before it was refused.
#[derive(Default)]
pub(super) struct Seen {
    pub actor: Option<Actor>,
    pub workspace_id: Option<String>,
    pub method: Option<String>,
}

/// A refused call with everything its audit event names.
pub(super) struct Denial {
    pub actor: Actor,
    pub workspace_id: String,
    pub method: String,
}

tokio::task_local! {
    static SEEN: Arc<Mutex<Seen>>;
}

/// Runs `work`, and returns with its result the denial to audit, if it was one.
pub(super) async fn watch<T>(work: impl Future<Output = Result<T>>) -> (Result<T>, Option<Denial>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let result = SEEN.scope(Arc::clone(&seen), work).await;
    let denied = matches!(&result, Err(error) if error.code() == Code::PermissionDenied);
    if !denied {
        return (result, None);
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
    let denial = match seen {
        Seen {
            actor: Some(actor),
            workspace_id: Some(workspace_id),
            method: Some(method),
        } => Some(Denial {
            actor,
            workspace_id,
            method,
        }),
        _ => None,
    };
    (result, denial)
}

fn note(update: impl FnOnce(&mut Seen)) {
    // Outside a watch scope (a unit test calling a helper directly) there is nothing to note.
    let _ = SEEN.try_with(|seen| update(&mut seen.lock().unwrap_or_else(PoisonError::into_inner)));
}

pub(super) fn note_caller(actor: &Actor) {
    note(|seen| seen.actor = Some(actor.clone()));
}

pub(super) fn note_workspace(workspace_id: &str, method: &str) {
    note(|seen| {
        seen.workspace_id = Some(workspace_id.to_owned());
        seen.method = Some(method.to_owned());
    });
}

impl Denial {
    /// The refusal's reason and message, as the caller received them.
    pub fn refusal(error: &StaffError) -> (&'static str, String) {
        match error {
            StaffError::Refused(refusal) => (refusal.reason, refusal.message.clone()),
            other => ("PERMISSION_DENIED", other.to_string()),
        }
    }
}
