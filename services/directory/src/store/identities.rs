use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

use crate::domain::IdentitySource;
use crate::entity::end_user_identity;
use crate::error::Result;

pub async fn owner<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    source: IdentitySource,
    key: &str,
) -> Result<Option<Uuid>> {
    let row = end_user_identity::Entity::find_by_id((
        workspace_id.to_owned(),
        source.as_str().to_owned(),
        key.to_owned(),
    ))
    .one(conn)
    .await
    .map_err(roster_db::DbError::from)?;
    Ok(row.map(|row| row.user_id))
}

pub async fn of_users<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    user_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<end_user_identity::Model>>> {
    let mut by_user: HashMap<Uuid, Vec<end_user_identity::Model>> = HashMap::new();
    if user_ids.is_empty() {
        return Ok(by_user);
    }
    let rows = end_user_identity::Entity::find()
        .filter(end_user_identity::Column::WorkspaceId.eq(workspace_id))
        .filter(end_user_identity::Column::UserId.is_in(user_ids.iter().copied()))
        // The order every read answers in (store::views folds identities the same way).
        .order_by_asc(end_user_identity::Column::Source)
        .order_by_asc(end_user_identity::Column::IdentityKey)
        .all(conn)
        .await
        .map_err(roster_db::DbError::from)?;
    for row in rows {
        by_user.entry(row.user_id).or_default().push(row);
    }
    Ok(by_user)
}

pub async fn attach<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    source: IdentitySource,
    key: &str,
    user_id: Uuid,
    now_us: i64,
) -> Result<()> {
    let row = end_user_identity::Model {
        workspace_id: workspace_id.to_owned(),
        source: source.as_str().to_owned(),
        identity_key: key.to_owned(),
        user_id,
        created_at: now_us,
    };
    end_user_identity::Entity::insert(row.into_active_model().reset_all())
        .exec_without_returning(conn)
        .await
        .map_err(roster_db::DbError::from)?;
    Ok(())
}

pub async fn move_all<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    from: Uuid,
    to: Uuid,
) -> Result<u64> {
    let result = end_user_identity::Entity::update_many()
        .col_expr(end_user_identity::Column::UserId, Expr::value(to))
        .filter(end_user_identity::Column::WorkspaceId.eq(workspace_id))
        .filter(end_user_identity::Column::UserId.eq(from))
        .exec(conn)
        .await
        .map_err(roster_db::DbError::from)?;
    Ok(result.rows_affected)
}

pub async fn delete_all<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    user_id: Uuid,
) -> Result<u64> {
    let result = end_user_identity::Entity::delete_many()
        .filter(end_user_identity::Column::WorkspaceId.eq(workspace_id))
        .filter(end_user_identity::Column::UserId.eq(user_id))
        .exec(conn)
        .await
        .map_err(roster_db::DbError::from)?;
    Ok(result.rows_affected)
}
