//! Teams: groups of agents for routing, reporting and permissions. A team's permissions
//! are held by its members while they are members, so putting an agent in a team, or a
//! permission on a team, is a grant (the caller must hold what it grants). Every write
//! locks the workspace's row first, as agents' changes do.

use std::collections::BTreeSet;

use roster_core::paging::{Cursor, Order};
use roster_core::{Actor, etag::is_current};
use roster_db::{in_write_txn, outbox};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

use super::{AgentView, Staff, change};
use crate::domain::access::Granter;
use crate::domain::filter::{AgentFilter, AgentOrderKey};
use crate::entity::{agent, team};
use crate::error::{Result, StaffError, TEAM_RESOURCE, reason};
use crate::store;

/// UpdateTeam's fields; `None` leaves one as it is.
#[derive(Clone, Debug, Default)]
pub struct TeamPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub permissions: Option<BTreeSet<String>>,
}

/// A team after AddTeamMembers or RemoveTeamMembers, with the agents that call changed
/// (those already in, or already out, are left alone).
#[derive(Clone, Debug)]
pub struct MembersChanged {
    pub team: TeamView,
    pub changed: Vec<Uuid>,
}

/// A team as callers see it: the row and how many agents (of any status) are in it, so a
/// routing or reporting screen needs no ListTeamMembers per team.
#[derive(Clone, Debug)]
pub struct TeamView {
    pub row: team::Model,
    pub member_count: i64,
}

fn name_taken(existing: &team::Model) -> StaffError {
    StaffError::refused(
        Code::AlreadyExists,
        reason::TEAM_ALREADY_EXISTS,
        Some((TEAM_RESOURCE, existing.team_id.to_string())),
        format!("the workspace already has a team named '{}'", existing.name),
    )
}

fn permission_list(set: &BTreeSet<String>) -> serde_json::Value {
    json!(set.iter().collect::<Vec<_>>())
}

/// The agents a team event names, by id alone: the event is about the team, and an
/// agent's erasure reaches the events about or by the agent, so an e-mail or name written
/// here would outlive it.
fn agent_list(agents: &[agent::Model]) -> serde_json::Value {
    json!(
        agents
            .iter()
            .map(|agent| agent.agent_id.to_string())
            .collect::<Vec<_>>()
    )
}

/// What events about a team say of it, so a reader needs no lookup.
fn team_context(row: &team::Model) -> Vec<roster_db::outbox::FieldChange> {
    vec![change(
        "team.name",
        Some(row.name.clone().into()),
        Some(row.name.clone().into()),
    )]
}

/// The agents `agent_ids` in that order; NOT_FOUND for the first missing.
async fn require_agents<C: sea_orm::ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_ids: &[Uuid],
) -> Result<Vec<agent::Model>> {
    let found = store::agents::find_many(conn, workspace_id, agent_ids).await?;
    agent_ids
        .iter()
        .map(|id| {
            found
                .iter()
                .find(|agent| agent.agent_id == *id)
                .cloned()
                .ok_or_else(|| StaffError::agent_not_found(id))
        })
        .collect()
}

impl Staff {
    pub async fn create_team(
        &self,
        actor: &Actor,
        workspace_id: &str,
        granter: &Granter,
        name: &str,
        description: &str,
        permissions: &BTreeSet<String>,
    ) -> Result<TeamView> {
        in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            store::workspaces::lock(conn, workspace_id, now).await?;
            let name_key = name.to_lowercase();
            if let Some(existing) =
                store::teams::find_by_name(conn, workspace_id, &name_key).await?
            {
                return Err(name_taken(&existing));
            }
            granter.may_grant(
                || format!("the permissions of the team '{name}'"),
                permissions,
            )?;
            let now = self.now_us();
            let row = team::Model {
                workspace_id: workspace_id.to_owned(),
                team_id: uuid::Uuid::now_v7(),
                name: name.to_owned(),
                name_key,
                description: description.to_owned(),
                permissions: store::roles::permissions_json(permissions)?,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            store::teams::insert(conn, row.clone()).await?;
            let event = self.event(
                actor,
                workspace_id,
                "team.created",
                ("team", row.team_id.to_string()),
                vec![
                    change("name", None, Some(row.name.clone().into())),
                    change("description", None, Some(row.description.clone().into())),
                    change("permissions", None, Some(permission_list(permissions))),
                ],
            );
            outbox::append(conn, &[event]).await?;
            Ok(TeamView {
                row,
                member_count: 0,
            })
        })
    }

    pub async fn list_teams(
        &self,
        workspace_id: &str,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<TeamView>> {
        let conn = self.db.conn();
        let rows = store::teams::list(conn, workspace_id, after, limit).await?;
        let ids: Vec<Uuid> = rows.iter().map(|row| row.team_id).collect();
        let counts = store::teams::member_counts(conn, workspace_id, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|row| TeamView {
                member_count: counts.get(&row.team_id).copied().unwrap_or(0),
                row,
            })
            .collect())
    }

    pub async fn get_team(&self, workspace_id: &str, team_id: Uuid) -> Result<TeamView> {
        let row = store::teams::require(self.db.conn(), workspace_id, team_id).await?;
        self.team_view(self.db.conn(), row).await
    }

    async fn team_view<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        row: team::Model,
    ) -> Result<TeamView> {
        let counts = store::teams::member_counts(conn, &row.workspace_id, &[row.team_id]).await?;
        Ok(TeamView {
            member_count: counts.get(&row.team_id).copied().unwrap_or(0),
            row,
        })
    }

    pub async fn update_team(
        &self,
        actor: &Actor,
        workspace_id: &str,
        granter: &Granter,
        team_id: Uuid,
        expected_version: Option<i64>,
        patch: TeamPatch,
    ) -> Result<TeamView> {
        in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            store::workspaces::lock(conn, workspace_id, now).await?;
            let before = store::teams::require(conn, workspace_id, team_id).await?;
            if !is_current(expected_version, before.version) {
                return Err(StaffError::stale("team"));
            }
            let permissions_before = store::teams::grant_of(&before)?.permissions;
            let permissions_after = patch
                .permissions
                .clone()
                .unwrap_or_else(|| permissions_before.clone());
            let mut after = before.clone();
            if let Some(name) = &patch.name {
                after.name = name.clone();
                after.name_key = name.to_lowercase();
            }
            if let Some(description) = &patch.description {
                after.description = description.clone();
            }
            after.permissions = store::roles::permissions_json(&permissions_after)?;
            if after == before {
                return self.team_view(conn, before).await;
            }
            if after.name_key != before.name_key
                && let Some(existing) =
                    store::teams::find_by_name(conn, workspace_id, &after.name_key).await?
            {
                return Err(name_taken(&existing));
            }
            let members = store::teams::members(conn, workspace_id, team_id, None).await?;
            if permissions_after != permissions_before {
                granter.may_grant(
                    || format!("changes to the permissions of the team '{}'", before.name),
                    permissions_before.union(&permissions_after),
                )?;
            }
            after.updated_at = now;
            after.version += 1;
            if !store::teams::update(conn, &before, &after).await? {
                return Err(StaffError::Database(roster_db::DbError::Conflict));
            }
            if permissions_after != permissions_before {
                store::teams::raise_generation(conn, workspace_id, &members, now).await?;
            }
            let mut changes = team_context(&before);
            for (field, old, new) in [
                ("name", &before.name, &after.name),
                ("description", &before.description, &after.description),
            ] {
                if old != new {
                    changes.push(change(
                        field,
                        Some(old.clone().into()),
                        Some(new.clone().into()),
                    ));
                }
            }
            if permissions_after != permissions_before {
                changes.push(change(
                    "permissions",
                    Some(permission_list(&permissions_before)),
                    Some(permission_list(&permissions_after)),
                ));
                changes.push(change("members", None, Some(members.len().into())));
            }
            let event = self.event(
                actor,
                workspace_id,
                "team.updated",
                ("team", team_id.to_string()),
                changes,
            );
            outbox::append(conn, &[event]).await?;
            self.team_view(conn, after).await
        })
    }

    /// Deletes a team; its members leave it (and lose what it carried).
    pub async fn delete_team(
        &self,
        actor: &Actor,
        workspace_id: &str,
        team_id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<()> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            store::workspaces::lock(conn, workspace_id, now).await?;
            let before = store::teams::require(conn, workspace_id, team_id).await?;
            if !is_current(expected_version, before.version) {
                return Err(StaffError::stale("team"));
            }
            let member_ids = store::teams::members(conn, workspace_id, team_id, None).await?;
            let members = require_agents(conn, workspace_id, &member_ids).await?;
            if !store::teams::delete(conn, &before).await? {
                return Err(StaffError::Database(roster_db::DbError::Conflict));
            }
            store::teams::touch_agents(conn, workspace_id, &member_ids, now).await?;
            let permissions = store::teams::grant_of(&before)?.permissions;
            let event = self.event(
                actor,
                workspace_id,
                "team.deleted",
                ("team", team_id.to_string()),
                vec![
                    change("name", Some(before.name.clone().into()), None),
                    change("description", Some(before.description.clone().into()), None),
                    change("permissions", Some(permission_list(&permissions)), None),
                    change("members", Some(agent_list(&members)), None),
                ],
            );
            outbox::append(conn, &[event]).await?;
            Ok(())
        })
    }

    /// Puts agents in a team; those already in stay as they are.
    pub async fn add_team_members(
        &self,
        actor: &Actor,
        workspace_id: &str,
        granter: &Granter,
        team_id: Uuid,
        agent_ids: &[Uuid],
    ) -> Result<MembersChanged> {
        self.change_members(actor, workspace_id, Some(granter), team_id, agent_ids)
            .await
    }

    /// Takes agents out of a team; those not in it are left alone.
    pub async fn remove_team_members(
        &self,
        actor: &Actor,
        workspace_id: &str,
        team_id: Uuid,
        agent_ids: &[Uuid],
    ) -> Result<MembersChanged> {
        self.change_members(actor, workspace_id, None, team_id, agent_ids)
            .await
    }

    /// Adds (with the granter that must hold the team's permissions) or removes (`None`).
    async fn change_members(
        &self,
        actor: &Actor,
        workspace_id: &str,
        adding: Option<&Granter>,
        team_id: Uuid,
        agent_ids: &[Uuid],
    ) -> Result<MembersChanged> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            store::workspaces::lock(conn, workspace_id, now).await?;
            let team = store::teams::require(conn, workspace_id, team_id).await?;
            let agents = require_agents(conn, workspace_id, agent_ids).await?;
            let members =
                store::teams::members(conn, workspace_id, team_id, Some(agent_ids)).await?;
            let changed: Vec<agent::Model> = agents
                .into_iter()
                .filter(|agent| members.contains(&agent.agent_id) != adding.is_some())
                .collect();
            let changed_ids: Vec<Uuid> = changed.iter().map(|agent| agent.agent_id).collect();
            if changed.is_empty() {
                return Ok(MembersChanged {
                    team: self.team_view(conn, team).await?,
                    changed: changed_ids,
                });
            }
            let permissions = store::teams::grant_of(&team)?.permissions;
            let action = if let Some(granter) = adding {
                granter.may_grant(
                    || format!("membership of the team '{}'", team.name),
                    &permissions,
                )?;
                store::teams::add_members(conn, workspace_id, team_id, &changed_ids, now).await?;
                "team.members_added"
            } else {
                store::teams::remove_members(conn, workspace_id, team_id, &changed_ids).await?;
                "team.members_removed"
            };
            store::teams::touch_agents(conn, workspace_id, &changed_ids, now).await?;
            let mut changes = team_context(&team);
            changes.push(change(
                "team.permissions",
                Some(permission_list(&permissions)),
                Some(permission_list(&permissions)),
            ));
            let agents = agent_list(&changed);
            changes.push(if adding.is_some() {
                change("members", None, Some(agents))
            } else {
                change("members", Some(agents), None)
            });
            let event = self.event(
                actor,
                workspace_id,
                action,
                ("team", team_id.to_string()),
                changes,
            );
            outbox::append(conn, &[event]).await?;
            Ok(MembersChanged {
                team: self.team_view(conn, team).await?,
                changed: changed_ids,
            })
        })
    }

    /// A page of the team's members, ordered as ListAgents orders.
    pub async fn list_team_members(
        &self,
        workspace_id: &str,
        team_id: Uuid,
        order: Order<AgentOrderKey>,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<AgentView>> {
        store::teams::require(self.db.conn(), workspace_id, team_id).await?;
        let filter = AgentFilter {
            teams: vec![team_id],
            ..AgentFilter::default()
        };
        self.list_agents(workspace_id, &filter, order, after, limit)
            .await
    }
}
