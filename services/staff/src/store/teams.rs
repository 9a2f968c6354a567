//! Teams.

use roster_core::paging::Cursor;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entity::team;
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
