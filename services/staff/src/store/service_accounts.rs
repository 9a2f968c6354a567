//! Service accounts.

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entity::service_account;
use crate::error::Result;

pub async fn insert<C: ConnectionTrait>(conn: &C, row: service_account::Model) -> Result<()> {
    service_account::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    service_account_id: Uuid,
) -> Result<Option<service_account::Model>> {
    Ok(
        service_account::Entity::find_by_id((workspace_id.to_owned(), service_account_id))
            .one(conn)
            .await?,
    )
}

/// Up to `limit` accounts of the workspace by id (creation order), after `after`.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<service_account::Model>> {
    let mut query = service_account::Entity::find()
        .filter(service_account::Column::WorkspaceId.eq(workspace_id));
    if let Some(after) = after {
        query = query.filter(service_account::Column::ServiceAccountId.gt(after));
    }
    Ok(query
        .order_by_asc(service_account::Column::ServiceAccountId)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Writes what changed from `before` to `after` if the row still has `before.version`;
/// false when another writer changed it first.
pub async fn update<C: ConnectionTrait>(
    conn: &C,
    before: &service_account::Model,
    after: &service_account::Model,
) -> Result<bool> {
    Ok(
        roster_db::versioned::update_changed::<_, service_account::ActiveModel, _>(
            conn,
            before,
            after,
            Condition::all()
                .add(service_account::Column::WorkspaceId.eq(before.workspace_id.as_str()))
                .add(service_account::Column::ServiceAccountId.eq(before.service_account_id)),
            service_account::Column::Version,
            before.version,
        )
        .await?,
    )
}
