//! Signed checkpoints, one per append that grew a log.

use sea_orm::sea_query::InsertStatement;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QueryTrait,
};

use crate::entity::audit_checkpoint;
use crate::error::Result;

/// The INSERT that stores `row` (for [`super::insert_all`]).
pub fn insert_statement(row: audit_checkpoint::Model) -> InsertStatement {
    audit_checkpoint::Entity::insert(audit_checkpoint::ActiveModel {
        workspace_id: Set(row.workspace_id),
        tree_size: Set(row.tree_size),
        root_hash: Set(row.root_hash),
        signed_note: Set(row.signed_note),
        created_at: Set(row.created_at),
    })
    .into_query()
}

/// The checkpoint of the largest tree.
pub async fn latest<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
) -> Result<Option<audit_checkpoint::Model>> {
    Ok(audit_checkpoint::Entity::find()
        .filter(audit_checkpoint::Column::WorkspaceId.eq(workspace_id))
        .order_by_desc(audit_checkpoint::Column::TreeSize)
        .one(conn)
        .await?)
}
