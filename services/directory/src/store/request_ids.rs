//! The `request_ids` table: which request a request id was first used for, and its result.

use sea_orm::sea_query::InsertStatement;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryTrait,
};

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
            .await
            .map_err(roster_db::DbError::from)?,
    )
}

/// The INSERT of a request id, written with the change it made (in its transaction or, for
/// a create, in its statement), so a retry racing the first call meets it at the key.
pub fn insert_statement(row: &request_id::Model) -> InsertStatement {
    request_id::Entity::insert(row.clone().into_active_model().reset_all()).into_query()
}

pub async fn insert<C: ConnectionTrait>(conn: &C, row: &request_id::Model) -> Result<()> {
    conn.execute(&insert_statement(row))
        .await
        .map_err(roster_db::DbError::from)?;
    Ok(())
}

/// Deletes request ids recorded before `cutoff_us`, of one workspace or of all; returns how
/// many. Idempotent, so replicas may run it at the same time.
pub async fn delete_older_than<C: ConnectionTrait>(
    conn: &C,
    workspace_id: Option<&str>,
    cutoff_us: i64,
) -> Result<u64> {
    let mut delete =
        request_id::Entity::delete_many().filter(request_id::Column::CreatedAt.lt(cutoff_us));
    if let Some(workspace_id) = workspace_id {
        delete = delete.filter(request_id::Column::WorkspaceId.eq(workspace_id));
    }
    let result = delete.exec(conn).await.map_err(roster_db::DbError::from)?;
    Ok(result.rows_affected)
}
