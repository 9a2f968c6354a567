//! Reading agents, the admin's changes (role, teams, extra permissions, status), the
//! agent's own profile, and seats.

use std::collections::BTreeSet;

use roster_core::paging::{Cursor, Order};
use roster_core::{Actor, etag::is_current};
use roster_db::outbox::FieldChange;
use roster_db::{in_write_txn, outbox};
use sea_orm::ConnectionTrait;
use serde_json::json;
use uuid::Uuid;

use super::access::access_parts;
use super::{AgentView, Staff, Usage, agent_context, change};
use crate::domain::access::{Granter, effective_access};
use crate::domain::filter::{AgentFilter, AgentOrderKey};
use crate::domain::{AgentStatus, InvitationState};
use crate::entity::{agent, staff_workspace};
use crate::error::{Result, StaffError, reason};
use crate::store;

/// UpdateAgent's admin-controlled fields; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct AgentPatch {
    /// A role's name (built-in or custom), resolved against the workspace's roles.
    pub role: Option<String>,
    pub teams: Option<TeamsChange>,
    pub extra_permissions: Option<Vec<String>>,
    /// ACTIVE (reactivate) or DEACTIVATED (deactivate).
    pub status: Option<AgentStatus>,
    /// Kept with a deactivation.
    pub deactivation_reason: String,
}

/// A change of an agent's teams: UpdateAgent replaces them, BulkUpdateAgents adds or
/// removes one (relative to each agent's own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TeamsChange {
    Set(Vec<Uuid>),
    Add(Uuid),
    Remove(Uuid),
}

impl TeamsChange {
    fn apply(&self, before: &[Uuid]) -> Vec<Uuid> {
        match self {
            TeamsChange::Set(ids) => ids.clone(),
            TeamsChange::Add(id) if before.contains(id) => before.to_vec(),
            TeamsChange::Add(id) => before.iter().copied().chain([*id]).collect(),
            TeamsChange::Remove(id) => before.iter().copied().filter(|t| t != id).collect(),
        }
    }
}

/// An agent after an admin's change, and whether anything changed (nothing is written,
/// and no event appended, when the agent already was as asked).
#[derive(Clone, Debug)]
pub struct Updated {
    pub view: AgentView,
    pub changed: bool,
}

/// UpdateMyProfile's fields; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProfilePatch {
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    /// JSON of the preferences.
    pub notification_preferences: Option<String>,
    pub signature: Option<String>,
    /// "", "light" or "dark".
    pub theme: Option<String>,
    pub language: Option<String>,
}

fn stored_status(agent: &agent::Model) -> Result<AgentStatus> {
    AgentStatus::parse(&agent.status).ok_or_else(|| {
        StaffError::Internal(format!(
            "agent {} has the unknown status '{}'",
            agent.agent_id, agent.status
        ))
    })
}

/// Nothing changes an erased agent: it is what history points at.
pub(super) fn erased_agent(agent_id: Uuid) -> StaffError {
    StaffError::failed_precondition(
        reason::AGENT_STATUS,
        format!("agent {agent_id} was erased; nothing about them can change"),
    )
}

pub fn extra_permissions(agent: &agent::Model) -> Result<Vec<String>> {
    serde_json::from_str(&agent.extra_permissions).map_err(|error| {
        StaffError::Internal(format!(
            "agent {}'s extra permissions do not parse: {error}",
            agent.agent_id
        ))
    })
}

fn permission_list(set: &BTreeSet<String>) -> serde_json::Value {
    json!(set.iter().collect::<Vec<_>>())
}

impl Staff {
    pub(super) async fn view<C: ConnectionTrait>(
        &self,
        conn: &C,
        agent: agent::Model,
    ) -> Result<AgentView> {
        let mut teams =
            store::agents::teams_of(conn, &agent.workspace_id, &[agent.agent_id]).await?;
        let team_ids = teams.remove(&agent.agent_id).unwrap_or_default();
        Ok(AgentView { agent, team_ids })
    }

    pub async fn get_agent(&self, workspace_id: &str, agent_id: Uuid) -> Result<AgentView> {
        let conn = self.db.conn();
        let agent = store::agents::require(conn, workspace_id, agent_id).await?;
        self.view(conn, agent).await
    }

    pub async fn list_agents(
        &self,
        workspace_id: &str,
        filter: &AgentFilter,
        order: Order<AgentOrderKey>,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<AgentView>> {
        let conn = self.db.conn();
        // Stored names, as the filter compares them.
        let mut filter = filter.clone();
        for name in &mut filter.roles {
            *name = store::roles::resolve(conn, workspace_id, name)
                .await?
                .ok_or_else(|| {
                    StaffError::invalid(
                        "filter",
                        format!("role:'{name}' names no role of this workspace"),
                    )
                })?
                .name;
        }
        let rows = store::agents::list(conn, workspace_id, &filter, order, after, limit).await?;
        let ids: Vec<Uuid> = rows.iter().map(|row| row.agent_id).collect();
        let mut teams = store::agents::teams_of(conn, workspace_id, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|agent| {
                let team_ids = teams.remove(&agent.agent_id).unwrap_or_default();
                AgentView { agent, team_ids }
            })
            .collect())
    }

    /// The admin's change of an agent. `caller_agent` is the caller's own agent id (an
    /// agent's token), which may not change its own role. `granter` is what the caller
    /// holds: a new role, new extra permissions and new teams' permissions must be in it
    /// (`None` only for changes that grant nothing, deactivation and reactivation).
    #[allow(clippy::too_many_arguments)]
    pub async fn update_agent(
        &self,
        actor: &Actor,
        workspace_id: &str,
        agent_id: Uuid,
        expected_version: Option<i64>,
        caller_agent: Option<Uuid>,
        granter: Option<&Granter>,
        patch: AgentPatch,
    ) -> Result<AgentView> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            // First, so seat and last-admin counts below are decided one change at a time,
            // and no role or team changes under this one.
            let workspace = store::workspaces::lock(conn, workspace_id, self.now_us()).await?;
            let updated = self
                .update_one(
                    conn,
                    actor,
                    &workspace,
                    agent_id,
                    expected_version,
                    caller_agent,
                    granter,
                    &patch,
                )
                .await?;
            Ok(updated.view)
        })
    }

    /// One admin change of an agent, in the caller's transaction after it locked
    /// `workspace`: UpdateAgent's, DeactivateAgent's, ReactivateAgent's and every bulk
    /// item's, so their guards cannot drift.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn update_one<C: ConnectionTrait>(
        &self,
        conn: &C,
        actor: &Actor,
        workspace: &staff_workspace::Model,
        agent_id: Uuid,
        expected_version: Option<i64>,
        caller_agent: Option<Uuid>,
        granter: Option<&Granter>,
        patch: &AgentPatch,
    ) -> Result<Updated> {
        let workspace_id = workspace.workspace_id.as_str();
        let now = self.now_us();
        let before = store::agents::require(conn, workspace_id, agent_id).await?;
        if !is_current(expected_version, before.version) {
            return Err(StaffError::stale_etag());
        }
        let status_before = stored_status(&before)?;
        if status_before == AgentStatus::Erased {
            return Err(erased_agent(agent_id));
        }
        let access_before = access_parts(conn, &before, false).await?;
        let extra_before = access_before.extra.clone();
        let teams_before = store::agents::teams_of(conn, workspace_id, &[agent_id])
            .await?
            .remove(&agent_id)
            .unwrap_or_default();
        let role_after = match &patch.role {
            Some(name) => {
                self.resolve_role(conn, workspace_id, "agent.role", name)
                    .await?
            }
            None => access_before.role.clone(),
        };
        let role_changed = role_after.name != before.role;
        let extra_after = patch
            .extra_permissions
            .clone()
            .unwrap_or_else(|| extra_before.clone());
        let teams_after = patch.teams.as_ref().map_or_else(
            || teams_before.clone(),
            |change| change.apply(&teams_before),
        );
        let status_after = match patch.status {
            None => status_before,
            Some(AgentStatus::Deactivated) => AgentStatus::Deactivated,
            // Reactivation: back to ACTIVE, or to INVITED for one that never accepted.
            Some(_) if status_before == AgentStatus::Deactivated => {
                if before.activated_at.is_some() {
                    AgentStatus::Active
                } else {
                    AgentStatus::Invited
                }
            }
            Some(_) => status_before,
        };

        if role_changed && caller_agent == Some(agent_id) {
            return Err(StaffError::permission_denied(
                reason::OWN_ROLE,
                "an agent cannot change their own role; ask another administrator",
            ));
        }
        let teams = store::teams::require_all(conn, workspace_id, &teams_after).await?;
        let team_grants = teams
            .iter()
            .map(store::teams::grant_of)
            .collect::<Result<Vec<_>>>()?;
        // Only what the agent did not hold by the same means is granted here.
        let new_extra: Vec<&String> = extra_after
            .iter()
            .filter(|p| !extra_before.contains(p))
            .collect();
        let new_teams: Vec<_> = team_grants
            .iter()
            .filter(|team| !teams_before.contains(&team.team_id))
            .collect();
        if role_changed || !new_extra.is_empty() || !new_teams.is_empty() {
            let granter = granter.ok_or_else(|| {
                StaffError::Internal("an agent change that grants was not checked".into())
            })?;
            if role_changed {
                granter.may_grant_role(&role_after)?;
            }
            granter.may_grant(|| "extra permissions".to_owned(), new_extra)?;
            for team in new_teams {
                granter.may_grant(
                    || format!("membership of the team '{}'", team.name),
                    &team.permissions,
                )?;
            }
        }
        let was_active_admin =
            access_before.role.is_admin() && status_before == AgentStatus::Active;
        let stays_active_admin = role_after.is_admin() && status_after == AgentStatus::Active;
        if was_active_admin
            && !stays_active_admin
            && store::workspaces::active_admins(conn, workspace_id).await? <= 1
        {
            return Err(StaffError::failed_precondition(
                reason::LAST_ADMIN,
                format!(
                    "{} is the workspace's last active admin; make another agent admin first",
                    before.email
                ),
            ));
        }
        if !status_before.uses_seat() && status_after.uses_seat() {
            self.require_free_seat(conn, workspace).await?;
        }

        let mut after = before.clone();
        after.role = role_after.name.clone();
        after.extra_permissions = serde_json::to_string(&extra_after)
            .map_err(|error| StaffError::Internal(error.to_string()))?;
        after.status = status_after.as_str().to_owned();
        if status_after != status_before {
            if status_after == AgentStatus::Deactivated {
                after.deactivated_at = Some(now);
                after.deactivation_reason = patch.deactivation_reason.clone();
            } else {
                after.deactivated_at = None;
                after.deactivation_reason = String::new();
            }
        }
        let teams_changed = {
            let (mut a, mut b) = (teams_before.clone(), teams_after.clone());
            a.sort_unstable();
            b.sort_unstable();
            a != b
        };
        if after == before && !teams_changed {
            return Ok(Updated {
                view: self.view(conn, before).await?,
                changed: false,
            });
        }
        // Tokens carry the role and permissions they were issued with: any change to
        // what the agent holds, or a deactivation, ends the tokens issued before it.
        let deactivated =
            status_after == AgentStatus::Deactivated && status_before != AgentStatus::Deactivated;
        if role_changed || extra_after != extra_before || teams_changed || deactivated {
            after.token_generation += 1;
            store::revocations::publish(
                conn,
                workspace_id,
                agent_id.to_string(),
                after.token_generation,
                now,
            )
            .await?;
        }
        if deactivated {
            store::sign_in::revoke_agent_tokens(conn, workspace_id, agent_id, now).await?;
        }
        after.updated_at = now;
        after.version += 1;
        if !store::agents::update(conn, &before, &after).await? {
            return Err(StaffError::Database(roster_db::DbError::Conflict));
        }

        let target = ("agent", agent_id.to_string());
        let mut events = Vec::new();
        let permissions_before = access_before.effective().permissions;
        let permissions_after =
            effective_access(&role_after, &team_grants, &extra_after).permissions;
        let permissions_change = || {
            change(
                "permissions",
                Some(permission_list(&permissions_before)),
                Some(permission_list(&permissions_after)),
            )
        };
        // A role or extra-permission change is one event each, both naming the agent
        // and the effective permissions before and after.
        let grant_changes = [
            role_changed.then(|| {
                (
                    "agent.role_changed",
                    change(
                        "role",
                        Some(before.role.clone().into()),
                        Some(role_after.name.clone().into()),
                    ),
                )
            }),
            (extra_after != extra_before).then(|| {
                (
                    "agent.permissions_changed",
                    change(
                        "extra_permissions",
                        Some(json!(extra_before)),
                        Some(json!(extra_after)),
                    ),
                )
            }),
        ];
        for (action, grant) in grant_changes.into_iter().flatten() {
            let mut changes = agent_context(&before);
            changes.push(grant);
            changes.push(permissions_change());
            events.push(self.event(actor, workspace_id, action, target.clone(), changes));
        }
        if teams_changed {
            let named_before = store::teams::require_all(conn, workspace_id, &teams_before).await?;
            store::agents::set_teams(conn, workspace_id, agent_id, &teams_after, now).await?;
            let names = |teams: &[crate::entity::team::Model]| {
                json!(
                    teams
                        .iter()
                        .map(|team| team.name.clone())
                        .collect::<Vec<_>>()
                )
            };
            let mut changes = agent_context(&before);
            changes.push(change(
                "teams",
                Some(names(&named_before)),
                Some(names(&teams)),
            ));
            if permissions_after != permissions_before {
                changes.push(permissions_change());
            }
            events.push(self.event(
                actor,
                workspace_id,
                "agent.teams_changed",
                target.clone(),
                changes,
            ));
        }
        if status_after != status_before {
            let mut unlinked = 0;
            let action = if status_after == AgentStatus::Deactivated {
                // An invitation must not outlive the agent's deactivation.
                store::invitations::end_pending(
                    conn,
                    workspace_id,
                    agent_id,
                    InvitationState::Revoked,
                    now,
                )
                .await?;
                // Nor its SSO links: reactivated, the agent is linked anew by its next
                // sign-in, which is how an administrator settles an identity provider
                // that gave its address to someone else.
                unlinked = store::sso::unlink_agent(conn, workspace_id, agent_id).await?;
                "agent.deactivated"
            } else {
                "agent.reactivated"
            };
            let mut changes: Vec<FieldChange> = agent_context(&before);
            if unlinked > 0 {
                changes.push(change("sso_links_removed", None, Some(unlinked.into())));
            }
            changes.push(change(
                "status",
                Some(status_before.as_str().into()),
                Some(status_after.as_str().into()),
            ));
            if status_after == AgentStatus::Deactivated {
                changes.push(change(
                    "deactivation_reason",
                    None,
                    Some(after.deactivation_reason.clone().into()),
                ));
            }
            events.push(self.event(actor, workspace_id, action, target.clone(), changes));
        }
        outbox::append(conn, &events).await?;
        Ok(Updated {
            view: AgentView {
                agent: after,
                team_ids: teams_after,
            },
            changed: true,
        })
    }

    pub async fn deactivate_agent(
        &self,
        actor: &Actor,
        workspace_id: &str,
        agent_id: Uuid,
        expected_version: Option<i64>,
        reason: String,
    ) -> Result<AgentView> {
        let patch = AgentPatch {
            status: Some(AgentStatus::Deactivated),
            deactivation_reason: reason,
            ..AgentPatch::default()
        };
        self.update_agent(
            actor,
            workspace_id,
            agent_id,
            expected_version,
            None,
            None,
            patch,
        )
        .await
    }

    pub async fn reactivate_agent(
        &self,
        actor: &Actor,
        workspace_id: &str,
        agent_id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<AgentView> {
        let patch = AgentPatch {
            status: Some(AgentStatus::Active),
            ..AgentPatch::default()
        };
        self.update_agent(
            actor,
            workspace_id,
            agent_id,
            expected_version,
            None,
            None,
            patch,
        )
        .await
    }

    /// The caller's own personal settings.
    pub async fn update_my_profile(
        &self,
        actor: &Actor,
        workspace_id: &str,
        agent_id: Uuid,
        expected_version: Option<i64>,
        patch: ProfilePatch,
    ) -> Result<AgentView> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let before = store::agents::find(conn, workspace_id, agent_id)
                .await?
                .ok_or_else(|| {
                    StaffError::permission_denied(
                        reason::NOT_AN_AGENT,
                        "the access token's subject is not an agent of this workspace",
                    )
                })?;
            if !is_current(expected_version, before.version) {
                return Err(StaffError::stale_etag());
            }
            if matches!(
                stored_status(&before)?,
                AgentStatus::Deactivated | AgentStatus::Erased
            ) {
                return Err(StaffError::failed_precondition(
                    reason::AGENT_STATUS,
                    "a deactivated agent cannot change their profile",
                ));
            }
            let mut after = before.clone();
            let mut changes = Vec::new();
            let mut set = |field: &str, value: &Option<String>, slot: &mut String| {
                if let Some(value) = value
                    && value != slot
                {
                    changes.push(change(
                        field,
                        Some(slot.clone().into()),
                        Some(value.clone().into()),
                    ));
                    *slot = value.clone();
                }
            };
            set("name", &patch.name, &mut after.name);
            set("avatar_url", &patch.avatar_url, &mut after.avatar_url);
            set(
                "notification_preferences",
                &patch.notification_preferences,
                &mut after.notification_preferences,
            );
            set("signature", &patch.signature, &mut after.signature);
            set("theme", &patch.theme, &mut after.theme);
            set("language", &patch.language, &mut after.language);
            if changes.is_empty() {
                return self.view(conn, before).await;
            }
            after.name_key = after.name.to_lowercase();
            after.updated_at = self.now_us();
            after.version += 1;
            if !store::agents::update(conn, &before, &after).await? {
                return Err(StaffError::Database(roster_db::DbError::Conflict));
            }
            let event = self.event(
                actor,
                workspace_id,
                "agent.profile_updated",
                ("agent", agent_id.to_string()),
                changes,
            );
            outbox::append(conn, &[event]).await?;
            self.view(conn, after).await
        })
    }

    pub async fn set_seat_limit(
        &self,
        actor: &Actor,
        workspace_id: &str,
        seat_limit: i64,
    ) -> Result<Usage> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            let workspace = store::workspaces::lock(conn, workspace_id, now).await?;
            if workspace.seat_limit != seat_limit {
                store::workspaces::set_seat_limit(conn, &workspace, seat_limit, now).await?;
                let event = self.event(
                    actor,
                    workspace_id,
                    "workspace.seat_limit_changed",
                    ("workspace", workspace_id.to_owned()),
                    vec![change(
                        "seat_limit",
                        Some(workspace.seat_limit.into()),
                        Some(seat_limit.into()),
                    )],
                );
                outbox::append(conn, &[event]).await?;
            }
            let counts = store::workspaces::counts(conn, workspace_id).await?;
            Ok(Usage { seat_limit, counts })
        })
    }

    pub async fn usage(&self, workspace_id: &str) -> Result<Usage> {
        let conn = self.db.conn();
        let seat_limit = store::workspaces::get(conn, workspace_id)
            .await?
            .map_or(0, |row| row.seat_limit);
        let counts = store::workspaces::counts(conn, workspace_id).await?;
        Ok(Usage { seat_limit, counts })
    }
}
