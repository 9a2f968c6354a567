//! EraseAgent: an agent who left asks for their personal data to go. What history needs
//! stays (the id, and the display name when the workspace must keep it); the rest is
//! scrubbed here, in the pending outbox, and, through an erasure request in the outbox,
//! in the audit service's log.

use roster_core::Actor;
use roster_core::etag::is_current;
use roster_db::{in_write_txn, outbox};
use uuid::Uuid;

use super::{AgentView, Staff};
use crate::domain::AgentStatus;
use crate::domain::sign_in::account_key;
use crate::entity::agent;
use crate::error::{Result, StaffError, reason};
use crate::store;

/// What an erased agent is called when the name does not stay.
pub const FORMER_AGENT_NAME: &str = "Former agent";

/// The fields of agent events that are not about the person, kept when pending events
/// are redacted; every other field's values go.
const NOT_PERSONAL: &[&str] = &[
    "role",
    "status",
    "permissions",
    "extra_permissions",
    "teams",
    "sso_links_removed",
    "version",
];

fn is_personal_agent_field(field: &str) -> bool {
    !NOT_PERSONAL.contains(&field)
}

impl Staff {
    /// Erases a deactivated agent (see the proto). Erasing an erased agent again changes
    /// nothing and answers it as it is.
    pub async fn erase_agent(
        &self,
        actor: &Actor,
        workspace_id: &str,
        agent_id: Uuid,
        expected_version: Option<i64>,
        keep_name: bool,
    ) -> Result<AgentView> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let before = store::agents::require(conn, workspace_id, agent_id).await?;
            if !is_current(expected_version, before.version) {
                return Err(StaffError::stale_etag());
            }
            match AgentStatus::parse(&before.status) {
                Some(AgentStatus::Deactivated) => {}
                Some(AgentStatus::Erased) => return self.view(conn, before).await,
                Some(status) => {
                    return Err(StaffError::failed_precondition(
                        reason::AGENT_STATUS,
                        format!(
                            "only a DEACTIVATED agent can be erased; this one is {status}: deactivate them first (DeactivateAgent)"
                        ),
                    ));
                }
                None => {
                    return Err(StaffError::Internal(format!(
                        "agent {agent_id} has the unknown status '{}'",
                        before.status
                    )));
                }
            }
            let now = self.now_us();
            let after = erased(&before, keep_name, now);
            store::agents::delete_password(conn, workspace_id, agent_id).await?;
            store::sso::unlink_agent(conn, workspace_id, agent_id).await?;
            store::sign_in::delete_agent_tokens(conn, workspace_id, agent_id).await?;
            store::sign_in::scrub_attempts(conn, workspace_id, agent_id, &before.email_key).await?;
            store::sign_in::clear_attempts(conn, workspace_id, &account_key(&before.email_key))
                .await?;
            store::agents::set_teams(conn, workspace_id, agent_id, &[], now).await?;
            if !store::agents::update(conn, &before, &after).await? {
                return Err(StaffError::Database(roster_db::DbError::Conflict));
            }

            outbox::redact_pending(
                conn,
                workspace_id,
                "agent",
                &[agent_id.to_string()],
                is_personal_agent_field,
            )
            .await?;
            let target = ("agent", agent_id.to_string());
            // The event names what was scrubbed, never the values.
            let scrubbed = scrubbed_fields(&before, &after)
                .into_iter()
                .map(|field| super::change(field, None, None))
                .collect();
            let erased_event = self.event(
                actor,
                workspace_id,
                "agent.erased",
                target.clone(),
                scrubbed,
            );
            let mut request = self.event(
                actor,
                workspace_id,
                outbox::ERASURE_REQUESTED,
                target,
                Vec::new(),
            );
            request.peer_ip = None;
            request.user_agent = None;
            outbox::append(conn, &[erased_event, request]).await?;
            Ok(AgentView {
                agent: after,
                team_ids: Vec::new(),
            })
        })
    }
}

/// The agent as erasure leaves it.
fn erased(before: &agent::Model, keep_name: bool, now: i64) -> agent::Model {
    let name = if keep_name {
        before.name.clone()
    } else {
        FORMER_AGENT_NAME.to_owned()
    };
    agent::Model {
        email: String::new(),
        // Unique per workspace like an address, and never one: the address is free for
        // a new invitation of the same person as a new agent.
        email_key: format!("erased:{}", before.agent_id),
        name_key: name.to_lowercase(),
        name,
        avatar_url: String::new(),
        notification_preferences: "{}".to_owned(),
        signature: String::new(),
        theme: String::new(),
        language: String::new(),
        deactivation_reason: String::new(),
        extra_permissions: "[]".to_owned(),
        status: AgentStatus::Erased.as_str().to_owned(),
        updated_at: now,
        version: before.version + 1,
        ..before.clone()
    }
}

fn scrubbed_fields(before: &agent::Model, after: &agent::Model) -> Vec<&'static str> {
    let pairs: [(&'static str, bool); 9] = [
        ("email", before.email != after.email),
        ("name", before.name != after.name),
        ("avatar_url", before.avatar_url != after.avatar_url),
        (
            "notification_preferences",
            before.notification_preferences != after.notification_preferences,
        ),
        ("signature", before.signature != after.signature),
        ("theme", before.theme != after.theme),
        ("language", before.language != after.language),
        (
            "deactivation_reason",
            before.deactivation_reason != after.deactivation_reason,
        ),
        (
            "extra_permissions",
            before.extra_permissions != after.extra_permissions,
        ),
    ];
    pairs
        .into_iter()
        .filter_map(|(field, changed)| changed.then_some(field))
        .collect()
}
