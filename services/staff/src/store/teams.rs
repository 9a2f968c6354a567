//! Teams and their members.

use std::collections::HashMap;

use roster_core::paging::Cursor;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::domain::access::TeamGrant;
use crate::entity::{agent, team, team_member};
use crate::error::{Result, StaffError};

pub async fn insert<C: ConnectionTrait>(conn: &C, row: team::Model) -> Result<()> {
    team::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn find_by_name<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    name_key: &str,
) -> Result<Option<team::Model>> {
    Ok(team::Entity::find()
        .filter(team::Column::WorkspaceId.eq(workspace_id))
        .filter(team::Column::NameKey.eq(name_key))
        .one(conn)
        .await?)
}

/// The teams named by `team_ids`, in that order; NOT_FOUND for the first that does not
/// exist in the workspace.
pub async fn require_all<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    team_ids: &[Uuid],
) -> Result<Vec<team::Model>> {
    if team_ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = team::Entity::find()
        .filter(team::Column::WorkspaceId.eq(workspace_id))
        .filter(team::Column::TeamId.is_in(team_ids.iter().copied()))
        .all(conn)
        .await?;
    team_ids
        .iter()
        .map(|id| {
            found
                .iter()
                .find(|team| team.team_id == *id)
                .cloned()
                .ok_or_else(|| StaffError::team_not_found(id))
        })
        .collect()
}

/// Up to `limit` teams by name, after `after`.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<team::Model>> {
    let mut query = team::Entity::find().filter(team::Column::WorkspaceId.eq(workspace_id));
    if let Some(cursor) = after {
        let name = cursor.text.clone().unwrap_or_default();
        let id = cursor
            .id
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| {
                StaffError::invalid("page_token", "is not a token this list returned")
            })?;
        query = query.filter(
            Condition::any()
                .add(team::Column::NameKey.gt(name.clone()))
                .add(
                    Condition::all()
                        .add(team::Column::NameKey.eq(name))
                        .add(team::Column::TeamId.gt(id)),
                ),
        );
    }
    Ok(query
        .order_by_asc(team::Column::NameKey)
        .order_by_asc(team::Column::TeamId)
        .limit(limit)
        .all(conn)
        .await?)
}

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    team_id: Uuid,
) -> Result<Option<team::Model>> {
    Ok(team::Entity::find_by_id((workspace_id.to_owned(), team_id))
        .one(conn)
        .await?)
}

pub async fn require<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    team_id: Uuid,
) -> Result<team::Model> {
    find(conn, workspace_id, team_id)
        .await?
        .ok_or_else(|| StaffError::team_not_found(team_id))
}

/// Writes what changed from `before` to `after` if the row still has `before.version`;
/// false when another writer changed it first.
pub async fn update<C: ConnectionTrait>(
    conn: &C,
    before: &team::Model,
    after: &team::Model,
) -> Result<bool> {
    Ok(
        roster_db::versioned::update_changed::<_, team::ActiveModel, _>(
            conn,
            before,
            after,
            Condition::all()
                .add(team::Column::WorkspaceId.eq(before.workspace_id.as_str()))
                .add(team::Column::TeamId.eq(before.team_id)),
            team::Column::Version,
            before.version,
        )
        .await?,
    )
}

/// Deletes the team and its memberships; false when its version moved on.
pub async fn delete<C: ConnectionTrait>(conn: &C, row: &team::Model) -> Result<bool> {
    let result = team::Entity::delete_many()
        .filter(team::Column::WorkspaceId.eq(row.workspace_id.as_str()))
        .filter(team::Column::TeamId.eq(row.team_id))
        .filter(team::Column::Version.eq(row.version))
        .exec(conn)
        .await?;
    if result.rows_affected != 1 {
        return Ok(false);
    }
    team_member::Entity::delete_many()
        .filter(team_member::Column::WorkspaceId.eq(row.workspace_id.as_str()))
        .filter(team_member::Column::TeamId.eq(row.team_id))
        .exec(conn)
        .await?;
    Ok(true)
}

/// How many agents (of any status) are in each of `team_ids`; empty teams are absent.
pub async fn member_counts<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    team_ids: &[Uuid],
) -> Result<HashMap<Uuid, i64>> {
    if team_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, i64)> = team_member::Entity::find()
        .select_only()
        .column(team_member::Column::TeamId)
        .column_as(team_member::Column::AgentId.count(), "n")
        .filter(team_member::Column::WorkspaceId.eq(workspace_id))
        .filter(team_member::Column::TeamId.is_in(team_ids.iter().copied()))
        .group_by(team_member::Column::TeamId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Which of `agent_ids` are members of the team (all members when `agent_ids` is `None`).
pub async fn members<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    team_id: Uuid,
    agent_ids: Option<&[Uuid]>,
) -> Result<Vec<Uuid>> {
    let mut query = team_member::Entity::find()
        .select_only()
        .column(team_member::Column::AgentId)
        .filter(team_member::Column::WorkspaceId.eq(workspace_id))
        .filter(team_member::Column::TeamId.eq(team_id));
    if let Some(agent_ids) = agent_ids {
        query = query.filter(team_member::Column::AgentId.is_in(agent_ids.iter().copied()));
    }
    Ok(query
        .order_by_asc(team_member::Column::AgentId)
        .into_tuple()
        .all(conn)
        .await?)
}

pub async fn add_members<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    team_id: Uuid,
    agent_ids: &[Uuid],
    now: i64,
) -> Result<()> {
    if agent_ids.is_empty() {
        return Ok(());
    }
    let rows = agent_ids.iter().map(|agent_id| team_member::ActiveModel {
        workspace_id: Set(workspace_id.to_owned()),
        team_id: Set(team_id),
        agent_id: Set(*agent_id),
        added_at: Set(now),
    });
    team_member::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn remove_members<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    team_id: Uuid,
    agent_ids: &[Uuid],
) -> Result<()> {
    if agent_ids.is_empty() {
        return Ok(());
    }
    team_member::Entity::delete_many()
        .filter(team_member::Column::WorkspaceId.eq(workspace_id))
        .filter(team_member::Column::TeamId.eq(team_id))
        .filter(team_member::Column::AgentId.is_in(agent_ids.iter().copied()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Marks the agents changed (their teams did): new versions, so etags read before the
/// change no longer match, and new token generations, since what they hold changed
/// (published as revocations).
pub async fn touch_agents<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_ids: &[Uuid],
    now: i64,
) -> Result<()> {
    if agent_ids.is_empty() {
        return Ok(());
    }
    let touched = agent::Entity::update_many()
        .col_expr(agent::Column::UpdatedAt, Expr::val(now))
        .col_expr(
            agent::Column::Version,
            Expr::col(agent::Column::Version).add(1),
        )
        .col_expr(
            agent::Column::TokenGeneration,
            Expr::col(agent::Column::TokenGeneration).add(1),
        )
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .filter(agent::Column::AgentId.is_in(agent_ids.iter().copied()))
        .exec_with_returning(conn)
        .await?;
    super::revocations::publish_agents(conn, &touched, now).await
}

/// Ends the agents' tokens (what they hold changed, their rows did not): raises their
/// token generation and publishes the revocation.
pub async fn raise_generation<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_ids: &[Uuid],
    now: i64,
) -> Result<()> {
    if agent_ids.is_empty() {
        return Ok(());
    }
    let raised = agent::Entity::update_many()
        .col_expr(
            agent::Column::TokenGeneration,
            Expr::col(agent::Column::TokenGeneration).add(1),
        )
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .filter(agent::Column::AgentId.is_in(agent_ids.iter().copied()))
        .exec_with_returning(conn)
        .await?;
    super::revocations::publish_agents(conn, &raised, now).await
}

pub fn grant_of(row: &team::Model) -> Result<TeamGrant> {
    Ok(TeamGrant {
        team_id: row.team_id,
        name: row.name.clone(),
        permissions: super::roles::parse_permissions(&row.permissions, || {
            format!("team '{}'", row.name)
        })?,
    })
}
