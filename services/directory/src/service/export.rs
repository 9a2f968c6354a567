//! ExportUser: everything the directory stores about one end-user, with their audit trail
//! read back from the audit service, for a data subject's access request.

use std::collections::HashSet;

use roster_db::outbox::{self, ERASURE_REQUESTED};
use roster_proto::audit::v1 as audit_pb;
use roster_service::audit_reader::{AuditReadError, AuditReader, Subject};
use uuid::Uuid;

use super::{Actor, Directory, UserView};
use crate::entity::customer;
use crate::error::{DirectoryError, Result, reason};
use crate::store;

/// The most audit events one export holds: a person's trail in a support directory is
/// dozens of events, and this keeps the answer far inside the message limit. Beyond it the
/// export is refused rather than cut short.
pub const MAX_EXPORTED_EVENTS: usize = 5000;

/// The target type of the directory's end-user events.
const END_USER_TARGET: &str = "end_user";

/// What the directory stores about one end-user.
#[derive(Debug)]
pub struct UserExport {
    pub user: UserView,
    pub customer: Option<customer::Model>,
    /// Users merged into this one, whose identities moved to it.
    pub merged: Vec<UserView>,
    /// Events the audit service recorded about or by any of them, in log order.
    pub recorded: Vec<audit_pb::AuditEvent>,
    /// Events not yet delivered to the audit service, oldest first.
    pub pending: Vec<outbox::AuditEvent>,
    /// The `end_user.exported` event written for this export.
    pub export_event: outbox::AuditEvent,
}

impl Directory {
    /// Gathers the export and records it (`end_user.exported`, with no values: the event
    /// says who exported whom, not what).
    ///
    /// The outbox is read before the audit service, so an event delivered in between is
    /// found twice (and kept once) rather than missed.
    pub async fn export_user(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: Uuid,
        audit: Option<&AuditReader>,
    ) -> Result<UserExport> {
        let audit = audit.ok_or_else(|| {
            DirectoryError::failed_precondition(
                reason::AUDIT_NOT_CONFIGURED,
                "this directory delivers to no audit service (ROSTER_DIRECTORY_AUDIT_URL is \
                 unset), so an export could not include the user's audit events",
            )
        })?;
        let user = self.get_user(workspace_id, user_id).await?;
        let conn = self.db.conn();
        let customer = match user.user.customer_id.as_str() {
            "" => None,
            customer_id => store::customers::get(conn, workspace_id, customer_id).await?,
        };
        let merged: Vec<UserView> = store::users::merged_chain(conn, workspace_id, user_id)
            .await?
            .into_iter()
            .map(|user| UserView {
                user,
                identities: Vec::new(),
            })
            .collect();
        let ids: Vec<String> = std::iter::once(user_id)
            .chain(merged.iter().map(|view| view.user.user_id))
            .map(|id| id.to_string())
            .collect();

        let pending = outbox::pending_about(conn, workspace_id, END_USER_TARGET, &ids).await?;
        let subjects: Vec<Subject<'_>> = ids
            .iter()
            .map(|id| Subject {
                target_type: END_USER_TARGET,
                id,
            })
            .collect();
        let recorded = audit
            .events_about(workspace_id, &subjects, MAX_EXPORTED_EVENTS)
            .await
            .map_err(|error| audit_read_error(workspace_id, user_id, error))?;
        let recorded_ids: HashSet<&str> = recorded.iter().map(|e| e.event_id.as_str()).collect();
        // An erasure request is an instruction to the audit service, not an event.
        let pending: Vec<outbox::AuditEvent> = pending
            .into_iter()
            .filter(|event| event.action != ERASURE_REQUESTED)
            .filter(|event| !recorded_ids.contains(event.event_id.to_string().as_str()))
            .collect();
        if recorded.len() + pending.len() > MAX_EXPORTED_EVENTS {
            return Err(too_many_events());
        }

        let export_event = self.event(
            actor,
            workspace_id,
            "end_user.exported",
            (END_USER_TARGET, user_id.to_string()),
            Vec::new(),
        );
        outbox::append(conn, std::slice::from_ref(&export_event)).await?;
        Ok(UserExport {
            user,
            customer,
            merged,
            recorded,
            pending,
            export_event,
        })
    }
}

fn too_many_events() -> DirectoryError {
    DirectoryError::failed_precondition(
        reason::EXPORT_TOO_LARGE,
        format!(
            "the user has more than {MAX_EXPORTED_EVENTS} audit events, more than one export \
             holds; page through them with the audit service's ListEvents (target end_user)"
        ),
    )
}

fn audit_read_error(workspace_id: &str, user_id: Uuid, error: AuditReadError) -> DirectoryError {
    match error {
        AuditReadError::TooMany { .. } => too_many_events(),
        AuditReadError::Unavailable(detail) => {
            tracing::warn!(workspace_id, %user_id, %detail, "ExportUser could not read the audit log");
            DirectoryError::unavailable(
                reason::AUDIT_UNAVAILABLE,
                "the audit service cannot be reached now, so the export would lack the user's \
                 audit events; retry later",
            )
        }
        // The directory's own credentials were refused: its operator's to fix, not the
        // caller's, so the detail goes to the log and the answer says whom to ask.
        AuditReadError::Refused(detail) => {
            tracing::error!(workspace_id, %user_id, %detail, "the audit service refused the directory's request to read events; does its service account hold audit_log.view?");
            DirectoryError::unavailable(
                reason::AUDIT_UNAVAILABLE,
                "the audit service refused the directory's request for the user's events \
                 (a configuration fault, logged for the operator)",
            )
        }
    }
}
