//! Invitations.

use roster_core::paging::Cursor;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::domain::InvitationState;
use crate::entity::invitation;
use crate::error::{Result, StaffError};

pub async fn insert<C: ConnectionTrait>(conn: &C, row: invitation::Model) -> Result<()> {
    invitation::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn find_by_secret_hash<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    secret_hash: &str,
) -> Result<Option<invitation::Model>> {
    Ok(invitation::Entity::find()
        .filter(invitation::Column::WorkspaceId.eq(workspace_id))
        .filter(invitation::Column::SecretHash.eq(secret_hash))
        .one(conn)
        .await?)
}

pub async fn find_by_request_id<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    request_id: &str,
) -> Result<Option<invitation::Model>> {
    Ok(invitation::Entity::find()
        .filter(invitation::Column::WorkspaceId.eq(workspace_id))
        .filter(invitation::Column::RequestId.eq(request_id))
        .one(conn)
        .await?)
}

/// The invitations `invitation_ids` (those that exist), in no particular order.
pub async fn find_many<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    invitation_ids: &[Uuid],
) -> Result<Vec<invitation::Model>> {
    if invitation_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(invitation::Entity::find()
        .filter(invitation::Column::WorkspaceId.eq(workspace_id))
        .filter(invitation::Column::InvitationId.is_in(invitation_ids.iter().copied()))
        .all(conn)
        .await?)
}

/// The agent's pending invitation (there is at most one).
pub async fn pending_of<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
) -> Result<Option<invitation::Model>> {
    Ok(invitation::Entity::find()
        .filter(invitation::Column::WorkspaceId.eq(workspace_id))
        .filter(invitation::Column::AgentId.eq(agent_id))
        .filter(invitation::Column::State.eq(InvitationState::Pending.as_str()))
        .one(conn)
        .await?)
}

/// Ends the agent's pending invitations with `state`.
pub async fn end_pending<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
    state: InvitationState,
    now: i64,
) -> Result<u64> {
    let result = invitation::Entity::update_many()
        .col_expr(invitation::Column::State, Expr::val(state.as_str()))
        .col_expr(invitation::Column::EndedAt, Expr::val(now))
        .filter(invitation::Column::WorkspaceId.eq(workspace_id))
        .filter(invitation::Column::AgentId.eq(agent_id))
        .filter(invitation::Column::State.eq(InvitationState::Pending.as_str()))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// Which open invitations a list wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Open {
    Both,
    /// Not yet expired at `now`.
    Pending,
    /// Expired at `now`.
    Expired,
}

/// Up to `limit` pending invitations (expired or not, as `open` says), oldest first.
pub async fn list_open<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    open: Open,
    now: i64,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<invitation::Model>> {
    let mut query = invitation::Entity::find()
        .filter(invitation::Column::WorkspaceId.eq(workspace_id))
        .filter(invitation::Column::State.eq(InvitationState::Pending.as_str()));
    query = match open {
        Open::Both => query,
        Open::Pending => query.filter(invitation::Column::ExpiresAt.gt(now)),
        Open::Expired => query.filter(invitation::Column::ExpiresAt.lte(now)),
    };
    if let Some(cursor) = after {
        let (Some(created_at), Some(id)) = (
            cursor.number,
            cursor.id.as_deref().and_then(|id| Uuid::parse_str(id).ok()),
        ) else {
            return Err(StaffError::invalid(
                "page_token",
                "is not a token this list returned",
            ));
        };
        query = query.filter(
            Condition::any()
                .add(invitation::Column::CreatedAt.gt(created_at))
                .add(
                    Condition::all()
                        .add(invitation::Column::CreatedAt.eq(created_at))
                        .add(invitation::Column::InvitationId.gt(id)),
                ),
        );
    }
    Ok(query
        .order_by_asc(invitation::Column::CreatedAt)
        .order_by_asc(invitation::Column::InvitationId)
        .limit(limit)
        .all(conn)
        .await?)
}
