//! Agents and their team memberships.

use std::collections::HashMap;

use roster_core::paging::{Cursor, Order};
use sea_orm::sea_query::{Expr, ExprTrait as _, LikeExpr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::contains_pattern;
use crate::domain::filter::{AgentFilter, AgentOrderKey, Comparison};
use crate::entity::{agent, agent_password, team_member};
use crate::error::{Result, StaffError};

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
) -> Result<Option<agent::Model>> {
    Ok(
        agent::Entity::find_by_id((workspace_id.to_owned(), agent_id))
            .one(conn)
            .await?,
    )
}

pub async fn require<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
) -> Result<agent::Model> {
    find(conn, workspace_id, agent_id)
        .await?
        .ok_or_else(|| StaffError::agent_not_found(agent_id))
}

pub async fn find_many<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_ids: &[Uuid],
) -> Result<Vec<agent::Model>> {
    if agent_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(agent::Entity::find()
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .filter(agent::Column::AgentId.is_in(agent_ids.iter().copied()))
        .all(conn)
        .await?)
}

pub async fn find_by_email<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    email_key: &str,
) -> Result<Option<agent::Model>> {
    Ok(agent::Entity::find()
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .filter(agent::Column::EmailKey.eq(email_key))
        .one(conn)
        .await?)
}

/// The agent's argon2id PHC string; `None` for an agent that never set a password.
pub async fn password_hash<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
) -> Result<Option<String>> {
    Ok(
        agent_password::Entity::find_by_id((workspace_id.to_owned(), agent_id))
            .one(conn)
            .await?
            .map(|row| row.password_hash),
    )
}

pub async fn set_password_hash<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
    password_hash: &str,
    now: i64,
) -> Result<()> {
    delete_password(conn, workspace_id, agent_id).await?;
    agent_password::Entity::insert(
        agent_password::Model {
            workspace_id: workspace_id.to_owned(),
            agent_id,
            password_hash: password_hash.to_owned(),
            updated_at: now,
        }
        .into_active_model(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Forgets the agent's password (erasure).
pub async fn delete_password<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
) -> Result<()> {
    agent_password::Entity::delete_many()
        .filter(agent_password::Column::WorkspaceId.eq(workspace_id))
        .filter(agent_password::Column::AgentId.eq(agent_id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn insert<C: ConnectionTrait>(conn: &C, row: agent::Model) -> Result<()> {
    agent::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Writes what changed from `before` to `after` if nobody changed the row since it was
/// read (its version is still `before.version`); false when someone did.
pub async fn update<C: ConnectionTrait>(
    conn: &C,
    before: &agent::Model,
    after: &agent::Model,
) -> Result<bool> {
    Ok(
        roster_db::versioned::update_changed::<_, agent::ActiveModel, _>(
            conn,
            before,
            after,
            Condition::all()
                .add(agent::Column::WorkspaceId.eq(before.workspace_id.as_str()))
                .add(agent::Column::AgentId.eq(before.agent_id)),
            agent::Column::Version,
            before.version,
        )
        .await?,
    )
}

/// The teams of each agent in `agent_ids` (agents in no team are absent).
pub async fn teams_of<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    let mut teams: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    if agent_ids.is_empty() {
        return Ok(teams);
    }
    let rows = team_member::Entity::find()
        .filter(team_member::Column::WorkspaceId.eq(workspace_id))
        .filter(team_member::Column::AgentId.is_in(agent_ids.iter().copied()))
        .order_by_asc(team_member::Column::AgentId)
        .order_by_asc(team_member::Column::TeamId)
        .all(conn)
        .await?;
    for row in rows {
        teams.entry(row.agent_id).or_default().push(row.team_id);
    }
    Ok(teams)
}

/// Makes the agent's memberships exactly `team_ids`.
pub async fn set_teams<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
    team_ids: &[Uuid],
    now: i64,
) -> Result<()> {
    team_member::Entity::delete_many()
        .filter(team_member::Column::WorkspaceId.eq(workspace_id))
        .filter(team_member::Column::AgentId.eq(agent_id))
        .exec(conn)
        .await?;
    if team_ids.is_empty() {
        return Ok(());
    }
    let rows = team_ids.iter().map(|team_id| team_member::ActiveModel {
        workspace_id: Set(workspace_id.to_owned()),
        team_id: Set(*team_id),
        agent_id: Set(agent_id),
        added_at: Set(now),
    });
    team_member::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

fn sort_column(key: AgentOrderKey) -> agent::Column {
    match key {
        AgentOrderKey::CreatedAt => agent::Column::CreatedAt,
        AgentOrderKey::Email => agent::Column::EmailKey,
        AgentOrderKey::Name => agent::Column::NameKey,
        AgentOrderKey::LastSignInAt => agent::Column::LastSignInAt,
    }
}

/// The sort value of `row` under `key`, as a cursor holds it.
pub fn cursor_of(row: &agent::Model, key: AgentOrderKey, query: String) -> Cursor {
    let (text, number) = match key {
        AgentOrderKey::CreatedAt => (None, Some(row.created_at)),
        AgentOrderKey::LastSignInAt => (None, Some(row.last_sign_in_at)),
        AgentOrderKey::Email => (Some(row.email_key.clone()), None),
        AgentOrderKey::Name => (Some(row.name_key.clone()), None),
    };
    Cursor {
        text,
        number,
        id: Some(row.agent_id.to_string()),
        query,
    }
}

/// Up to `limit` agents matching `filter` in `order`, after `after`.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    filter: &AgentFilter,
    order: Order<AgentOrderKey>,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<agent::Model>> {
    let mut query = agent::Entity::find().filter(agent::Column::WorkspaceId.eq(workspace_id));
    for fragment in &filter.text {
        let pattern = contains_pattern(fragment);
        query = query.filter(
            Condition::any()
                .add(
                    Expr::col(agent::Column::EmailKey)
                        .like(LikeExpr::new(pattern.clone()).escape('\\')),
                )
                .add(Expr::col(agent::Column::NameKey).like(LikeExpr::new(pattern).escape('\\'))),
        );
    }
    for status in &filter.statuses {
        query = query.filter(agent::Column::Status.eq(status.as_str()));
    }
    for role in &filter.roles {
        query = query.filter(agent::Column::Role.eq(role.as_str()));
    }
    for team in &filter.teams {
        query = query.filter(
            agent::Column::AgentId.in_subquery(
                Query::select()
                    .column(team_member::Column::AgentId)
                    .from(team_member::Entity)
                    .and_where(team_member::Column::WorkspaceId.eq(workspace_id))
                    .and_where(team_member::Column::TeamId.eq(*team))
                    .to_owned(),
            ),
        );
    }
    for (comparison, at) in &filter.last_sign_in {
        let column = agent::Column::LastSignInAt;
        // "Never" is stored as 0, so it is before every time, as an access review wants.
        query = query.filter(match comparison {
            Comparison::Before => column.lt(*at),
            Comparison::AtOrBefore => column.lte(*at),
            Comparison::After => column.gt(*at),
            Comparison::AtOrAfter => column.gte(*at),
        });
    }
    let column = sort_column(order.key);
    if let Some(cursor) = after {
        let id = cursor
            .id
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| {
                StaffError::invalid("page_token", "is not a token this list returned")
            })?;
        let value: sea_orm::Value = match (order.key, &cursor.text, cursor.number) {
            (AgentOrderKey::Email | AgentOrderKey::Name, Some(text), _) => text.clone().into(),
            (AgentOrderKey::CreatedAt | AgentOrderKey::LastSignInAt, _, Some(number)) => {
                number.into()
            }
            _ => {
                return Err(StaffError::invalid(
                    "page_token",
                    "is not a token this list returned",
                ));
            }
        };
        let (beyond, id_beyond) = if order.descending {
            (
                Expr::col(column).lt(value.clone()),
                agent::Column::AgentId.lt(id),
            )
        } else {
            (
                Expr::col(column).gt(value.clone()),
                agent::Column::AgentId.gt(id),
            )
        };
        query = query.filter(
            Condition::any().add(beyond).add(
                Condition::all()
                    .add(Expr::col(column).eq(value))
                    .add(id_beyond),
            ),
        );
    }
    let query = if order.descending {
        query
            .order_by_desc(column)
            .order_by_desc(agent::Column::AgentId)
    } else {
        query
            .order_by_asc(column)
            .order_by_asc(agent::Column::AgentId)
    };
    Ok(query.limit(limit).all(conn).await?)
}
