//! Legal holds.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::entity::audit_legal_hold;
use crate::error::Result;

pub async fn insert<C: ConnectionTrait>(conn: &C, hold: audit_legal_hold::Model) -> Result<()> {
    audit_legal_hold::Entity::insert(hold.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Deletes a hold; answers it, or `None` when the workspace has no such hold.
pub async fn delete<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    hold_id: Uuid,
) -> Result<Option<audit_legal_hold::Model>> {
    let Some(hold) = audit_legal_hold::Entity::find_by_id((workspace_id.to_owned(), hold_id))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    audit_legal_hold::Entity::delete_many()
        .filter(audit_legal_hold::Column::WorkspaceId.eq(workspace_id))
        .filter(audit_legal_hold::Column::HoldId.eq(hold_id))
        .exec(conn)
        .await?;
    Ok(Some(hold))
}

/// A workspace's holds, oldest first.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
) -> Result<Vec<audit_legal_hold::Model>> {
    Ok(audit_legal_hold::Entity::find()
        .filter(audit_legal_hold::Column::WorkspaceId.eq(workspace_id))
        .order_by_asc(audit_legal_hold::Column::PlacedAt)
        .order_by_asc(audit_legal_hold::Column::HoldId)
        .all(conn)
        .await?)
}
