//! Idempotency keys and the answers they stand for.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter};

use crate::entity::request_id;
use crate::error::Result;

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    request_id: &str,
) -> Result<Option<request_id::Model>> {
    Ok(
        request_id::Entity::find_by_id((workspace_id.to_owned(), request_id.to_owned()))
            .one(conn)
            .await?,
    )
}

pub async fn insert<C: ConnectionTrait>(conn: &C, row: request_id::Model) -> Result<()> {
    request_id::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Deletes keys created before `before`, of one workspace or (the purge) of all.
pub async fn delete_older_than<C: ConnectionTrait>(
    conn: &C,
    workspace_id: Option<&str>,
    before: i64,
) -> Result<u64> {
    let mut delete =
        request_id::Entity::delete_many().filter(request_id::Column::CreatedAt.lt(before));
    if let Some(workspace_id) = workspace_id {
        delete = delete.filter(request_id::Column::WorkspaceId.eq(workspace_id));
    }
    Ok(delete.exec(conn).await?.rows_affected)
}
