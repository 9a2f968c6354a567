use sea_orm::sea_query::{
    Expr, ExprTrait, Func, InsertStatement, LikeExpr, LockType, Query, SelectStatement,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, Condition, ConnectionTrait, EntityName,
    EntityTrait, IntoActiveModel, Iterable, Order, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};

use super::search::like_pattern;
use crate::domain::filter::CustomerFilter;
use crate::domain::order::{CustomerOrder, CustomerSortKey};
use crate::entity::customer;
use crate::error::{DirectoryError, Result};
use roster_core::paging::Cursor;

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

/// The customer, deleted or not, locked until the caller's transaction ends: `KeyShare` by
/// writes that depend on it staying live (a user joining it), `Update` by DeleteCustomer,
/// so the two wait for each other on PostgreSQL. SQLite, whose writers take turns, needs
/// no lock and gets none.
pub async fn get_locked<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    customer_id: &str,
    lock: LockType,
) -> Result<Option<customer::Model>> {
    Ok(
        customer::Entity::find_by_id((workspace_id.to_owned(), customer_id.to_owned()))
            .lock(lock)
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
    Ok(
        roster_db::versioned::update_changed::<_, customer::ActiveModel, _>(
            conn,
            before,
            after,
            Condition::all()
                .add(customer::Column::WorkspaceId.eq(before.workspace_id.as_str()))
                .add(customer::Column::CustomerId.eq(before.customer_id.as_str())),
            customer::Column::Version,
            before.version,
        )
        .await?,
    )
}

/// The inserts of a create that must only happen while a customer is live (a user joining
/// it): each becomes `INSERT … SELECT <values> WHERE EXISTS (<the live customer> FOR KEY
/// SHARE)`, so a create that finds the customer deleted or missing writes nothing and
/// reports 0 rows, and one that finds it live holds the lock until its statement commits.
/// DeleteCustomer locks the row `FOR UPDATE` before it counts the customer's users, so it
/// either waits for the create and counts its user, or the create waits for it and then
/// finds the customer deleted. The lock is the weakest that conflicts with `FOR UPDATE`:
/// renames and status changes of the customer (plain UPDATEs) do not wait for creates.
/// Without a customer the inserts are plain.
pub struct WhileLive {
    guard: Option<SelectStatement>,
}

impl WhileLive {
    /// Inserts that depend on `customer_id` being live; none when it is empty.
    pub fn customer(workspace_id: &str, customer_id: &str) -> WhileLive {
        let guard = (!customer_id.is_empty()).then(|| {
            Query::select()
                .expr(Expr::val(1))
                .from(customer::Entity)
                .and_where(customer::Column::WorkspaceId.eq(workspace_id))
                .and_where(customer::Column::CustomerId.eq(customer_id))
                .and_where(customer::Column::DeletedAt.is_null())
                .lock(LockType::KeyShare)
                .to_owned()
        });
        WhileLive { guard }
    }

    /// Whether the inserts are conditional, so that 0 rows written means the customer was
    /// not live.
    pub fn is_guarded(&self) -> bool {
        self.guard.is_some()
    }

    /// The INSERT of `row`'s set columns, guarded when there is a customer.
    pub fn insert<A>(&self, row: A) -> Result<InsertStatement>
    where
        A: ActiveModelTrait,
    {
        let Some(guard) = &self.guard else {
            return Ok(<A::Entity as EntityTrait>::insert(row).into_query());
        };
        let mut columns = Vec::new();
        let mut values = Vec::new();
        for column in <A::Entity as EntityTrait>::Column::iter() {
            if let ActiveValue::Set(value) | ActiveValue::Unchanged(value) = row.get(column) {
                columns.push(column);
                values.push(Expr::val(value));
            }
        }
        let select = Query::select()
            .exprs(values)
            .and_where(Expr::exists(guard.clone()))
            .to_owned();
        let mut insert = Query::insert();
        insert
            .into_table(<A::Entity as Default>::default().table_ref())
            .columns(columns)
            .select_from(select)
            .map_err(|error| {
                DirectoryError::Internal(format!("building a guarded insert: {error}"))
            })?;
        Ok(insert)
    }
}

/// One page of customers in `order`, after `cursor`. Customer lists are small next to user
/// lists, so partial matches here scan the workspace's customers.
#[allow(clippy::too_many_arguments)]
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    filter: &CustomerFilter,
    order: CustomerOrder,
    show_deleted: bool,
    cursor: Option<&Cursor>,
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
    if !show_deleted {
        query = query.filter(customer::Column::DeletedAt.is_null());
    }
    let direction = if order.descending {
        Order::Desc
    } else {
        Order::Asc
    };
    let id = customer::Column::CustomerId;
    let sorted_by = sort_column(order.key);
    if let Some(cursor) = cursor {
        query = query.filter(after_cursor(order, cursor)?);
    }
    if let Some(column) = sorted_by {
        query = query.order_by(column, direction.clone());
    }
    Ok(query
        .order_by(id, direction)
        .limit(limit)
        .all(conn)
        .await
        .map_err(roster_db::DbError::from)?)
}

/// The column a key sorts by before the tie-breaker `customer_id`; none when the key is
/// the id itself.
fn sort_column(key: CustomerSortKey) -> Option<customer::Column> {
    match key {
        CustomerSortKey::CustomerId => None,
        CustomerSortKey::Name => Some(customer::Column::Name),
        CustomerSortKey::CreatedAt => Some(customer::Column::CreatedAt),
        CustomerSortKey::UpdatedAt => Some(customer::Column::UpdatedAt),
    }
}

/// Rows strictly after the cursor in `order`: `(key, customer_id) > (value, id)` spelled
/// out, which both engines serve from the `(workspace_id, key, customer_id)` index.
fn after_cursor(order: CustomerOrder, cursor: &Cursor) -> Result<Condition> {
    let beyond = |column: customer::Column, value: sea_orm::Value| {
        if order.descending {
            Expr::col(column).lt(value)
        } else {
            Expr::col(column).gt(value)
        }
    };
    let id = cursor.id.clone().ok_or_else(bad_cursor)?;
    let id_beyond = beyond(customer::Column::CustomerId, id.clone().into());
    let Some(column) = sort_column(order.key) else {
        return Ok(Condition::all().add(id_beyond));
    };
    let value: sea_orm::Value = match order.key {
        CustomerSortKey::Name => cursor.text.clone().ok_or_else(bad_cursor)?.into(),
        _ => cursor.number.ok_or_else(bad_cursor)?.into(),
    };
    Ok(Condition::any().add(beyond(column, value.clone())).add(
        Condition::all()
            .add(Expr::col(column).eq(value))
            .add(id_beyond),
    ))
}

/// A token that passed the fingerprint check but lacks what its order needs was not made
/// by this list.
fn bad_cursor() -> DirectoryError {
    DirectoryError::invalid(
        "page_token",
        "is not a token this list returned; start again without it",
    )
}

/// The cursor after `last` in `order`.
pub fn cursor_after(last: &customer::Model, order: CustomerOrder, query: String) -> Cursor {
    let (text, number) = match order.key {
        CustomerSortKey::CustomerId => (None, None),
        CustomerSortKey::Name => (Some(last.name.clone()), None),
        CustomerSortKey::CreatedAt => (None, Some(last.created_at)),
        CustomerSortKey::UpdatedAt => (None, Some(last.updated_at)),
    };
    Cursor {
        text,
        number,
        id: Some(last.customer_id.clone()),
        query,
    }
}
