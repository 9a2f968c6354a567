use sea_orm::sea_query::{Expr, ExprTrait, Func, InsertStatement, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};

use super::search::like_pattern;
use crate::domain::filter::CustomerFilter;
use crate::entity::customer;
use crate::error::Result;

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    customer_id: &str,
) -> Result<Option<customer::Model>> {
    Ok(
        customer::Entity::find_by_id((workspace_id.to_owned(), customer_id.to_owned()))
            .one(conn)
            .await
            .map_err(roster_db::DbError::from)?,
    )
}

/// The INSERT of a new customer, for [`roster_db::Db::insert_atomically`].
pub fn insert_statement(customer: &customer::Model) -> InsertStatement {
    customer::Entity::insert(customer.clone().into_active_model().reset_all()).into_query()
}

pub async fn insert<C: ConnectionTrait>(conn: &C, customer: &customer::Model) -> Result<()> {
    conn.execute(&insert_statement(customer))
        .await
        .map_err(roster_db::DbError::from)?;
    Ok(())
}

/// Writes changed columns if the row still has `before.version`; false when it changed.
pub async fn update<C: ConnectionTrait>(
    conn: &C,
    before: &customer::Model,
    after: &customer::Model,
) -> Result<bool> {
    let changes: customer::ActiveModel = super::changed_columns(before, after);
    if !changes.is_changed() {
        return Ok(true);
    }
    let result = customer::Entity::update_many()
        .set(changes)
        .filter(customer::Column::WorkspaceId.eq(before.workspace_id.as_str()))
        .filter(customer::Column::CustomerId.eq(before.customer_id.as_str()))
        .filter(customer::Column::Version.eq(before.version))
        .exec(conn)
        .await
        .map_err(roster_db::DbError::from)?;
    Ok(result.rows_affected == 1)
}

pub async fn delete<C: ConnectionTrait>(conn: &C, customer: &customer::Model) -> Result<bool> {
    let result = customer::Entity::delete_many()
        .filter(customer::Column::WorkspaceId.eq(customer.workspace_id.as_str()))
        .filter(customer::Column::CustomerId.eq(customer.customer_id.as_str()))
        .filter(customer::Column::Version.eq(customer.version))
        .exec(conn)
        .await
        .map_err(roster_db::DbError::from)?;
    Ok(result.rows_affected == 1)
}

/// Customers ordered by id, after `after_id`. Customer lists are small next to user lists,
/// so partial matches here scan the workspace's customers.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    filter: &CustomerFilter,
    after_id: Option<&str>,
    limit: u64,
) -> Result<Vec<customer::Model>> {
    let mut query = customer::Entity::find().filter(customer::Column::WorkspaceId.eq(workspace_id));
    for word in &filter.text {
        let pattern = like_pattern(word);
        query = query.filter(
            Condition::any()
                .add(
                    Expr::expr(Func::lower(Expr::col(customer::Column::CustomerId)))
                        .like(LikeExpr::new(pattern.clone()).escape('\\')),
                )
                .add(
                    Expr::expr(Func::lower(Expr::col(customer::Column::Name)))
                        .like(LikeExpr::new(pattern).escape('\\')),
                ),
        );
    }
    if let Some(status) = &filter.status {
        query = query.filter(customer::Column::Status.eq(status.as_str()));
    }
    if let Some(after_id) = after_id {
        query = query.filter(customer::Column::CustomerId.gt(after_id));
    }
    Ok(query
        .order_by_asc(customer::Column::CustomerId)
        .limit(limit)
        .all(conn)
        .await
        .map_err(roster_db::DbError::from)?)
}
