//! An agent's effective access, loaded for `domain::access::effective_access`: what
//! GetEffectivePermissions and ExplainAccess answer and what Login will put in tokens.

use sea_orm::ConnectionTrait;

use super::Staff;
use super::agents::extra_permissions;
use crate::domain::RoleGrant;
use crate::domain::access::{EffectiveAccess, TeamGrant, effective_access};
use crate::entity::agent;
use crate::error::{Result, StaffError, reason};
use crate::store;

/// What an agent's access is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct AccessParts {
    pub role: RoleGrant,
    pub teams: Vec<TeamGrant>,
    pub extra: Vec<String>,
}

impl AccessParts {
    pub(super) fn effective(&self) -> EffectiveAccess {
        effective_access(&self.role, &self.teams, &self.extra)
    }
}

/// Loads what `agent`'s access is made of. An agent whose stored role no longer resolves
/// holds nothing by it: `strict` refuses such an agent (FAILED_PRECONDITION, fail closed),
/// otherwise the role counts as empty, so UpdateAgent can still give it a role.
pub(super) async fn access_parts<C: ConnectionTrait>(
    conn: &C,
    agent: &agent::Model,
    strict: bool,
) -> Result<AccessParts> {
    let role = match store::roles::resolve(conn, &agent.workspace_id, &agent.role).await? {
        Some(role) => role,
        None if strict => {
            return Err(StaffError::failed_precondition(
                reason::ROLE_UNKNOWN,
                format!(
                    "agent {} holds the role '{}', which no longer exists; give it a role with UpdateAgent",
                    agent.agent_id, agent.role
                ),
            ));
        }
        None => RoleGrant {
            role_id: String::new(),
            name: agent.role.clone(),
            built_in: None,
            permissions: Default::default(),
        },
    };
    let team_ids = store::agents::teams_of(conn, &agent.workspace_id, &[agent.agent_id])
        .await?
        .remove(&agent.agent_id)
        .unwrap_or_default();
    let teams = team_grants(conn, &agent.workspace_id, &team_ids).await?;
    Ok(AccessParts {
        role,
        teams,
        extra: extra_permissions(agent)?,
    })
}

/// The teams `team_ids` as their members hold them.
pub(super) async fn team_grants<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    team_ids: &[uuid::Uuid],
) -> Result<Vec<TeamGrant>> {
    store::teams::require_all(conn, workspace_id, team_ids)
        .await?
        .iter()
        .map(store::teams::grant_of)
        .collect()
}

/// The effective access of `agent`, read over `conn`: Login reads it in the transaction
/// that checks the agent, so the token carries what the agent held at that moment.
pub async fn load_effective_access<C: ConnectionTrait>(
    conn: &C,
    agent: &agent::Model,
) -> Result<EffectiveAccess> {
    Ok(access_parts(conn, agent, true).await?.effective())
}

impl Staff {
    /// The agent's effective permissions in its workspace and every reason for each: its
    /// role (built-in or custom) ∪ its teams' permissions ∪ its extra grants.
    pub async fn effective_access(
        &self,
        workspace_id: &str,
        agent_id: uuid::Uuid,
    ) -> Result<EffectiveAccess> {
        Ok(self.agent_access(workspace_id, agent_id).await?.1)
    }

    /// [`Staff::effective_access`] with the agent it belongs to.
    pub async fn agent_access(
        &self,
        workspace_id: &str,
        agent_id: uuid::Uuid,
    ) -> Result<(agent::Model, EffectiveAccess)> {
        let conn = self.db.conn();
        let agent = store::agents::require(conn, workspace_id, agent_id).await?;
        let access = load_effective_access(conn, &agent).await?;
        Ok((agent, access))
    }
}
