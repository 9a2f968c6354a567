//! Set-based reads and writes for bulk imports: one query fetches every user a batch of
//! rows may touch, one multi-row INSERT writes many users or customers. Lists are chunked so
//! no statement binds more parameters than the smaller engine allows.

use std::collections::HashSet;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Iterable,
    QueryFilter,
};

use crate::entity::{customer, end_user};
use crate::error::Result;

/// SQLite's default limit of bound parameters per statement (PostgreSQL allows 65 535).
const MAX_BIND_PARAMS: usize = 32_766;
/// Values per IN list; two lists and the workspace id stay far below the limit.
const KEYS_PER_QUERY: usize = 10_000;

/// Users of any status whose external id is one of `external_ids` or whose e-mail key is
/// one of `email_keys`: every candidate a batch may match, and every live holder of those
/// keys. Each user once, in no particular order.
pub async fn users_by_keys<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    external_ids: &[String],
    email_keys: &[String],
) -> Result<Vec<end_user::Model>> {
    let mut seen = HashSet::new();
    let mut users = Vec::new();
    // One query per key column rather than `external_id IN … OR email_key IN …`: with an OR
    // PostgreSQL may walk the whole workspace through an unrelated index, while each IN list
    // alone is an index lookup on (workspace_id, external_id) or (workspace_id, email_key).
    let lookups = external_ids
        .chunks(KEYS_PER_QUERY)
        .map(|chunk| (end_user::Column::ExternalId, chunk))
        .chain(
            email_keys
                .chunks(KEYS_PER_QUERY)
                .map(|chunk| (end_user::Column::EmailKey, chunk)),
        );
    for (column, chunk) in lookups {
        let found = end_user::Entity::find()
            .filter(end_user::Column::WorkspaceId.eq(workspace_id))
            .filter(column.is_in(chunk.iter().cloned()))
            .all(conn)
            .await
            .map_err(roster_db::DbError::from)?;
        // A user can hold an id of one list and an e-mail of another.
        users.extend(found.into_iter().filter(|user| seen.insert(user.user_id)));
    }
    Ok(users)
}

/// The customers among `customer_ids` that exist.
pub async fn customers_by_ids<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    customer_ids: &[String],
) -> Result<Vec<customer::Model>> {
    let mut customers = Vec::new();
    for chunk in customer_ids.chunks(KEYS_PER_QUERY) {
        customers.extend(
            customer::Entity::find()
                .filter(customer::Column::WorkspaceId.eq(workspace_id))
                .filter(customer::Column::CustomerId.is_in(chunk.iter().cloned()))
                .all(conn)
                .await
                .map_err(roster_db::DbError::from)?,
        );
    }
    Ok(customers)
}

/// Inserts new users with multi-row INSERTs.
pub async fn insert_users<C: ConnectionTrait>(conn: &C, users: &[end_user::Model]) -> Result<()> {
    let per_statement = MAX_BIND_PARAMS / end_user::Column::iter().count();
    for chunk in users.chunks(per_statement.max(1)) {
        end_user::Entity::insert_many(
            chunk
                .iter()
                .map(|user| user.clone().into_active_model().reset_all()),
        )
        .exec_without_returning(conn)
        .await
        .map_err(roster_db::DbError::from)?;
    }
    Ok(())
}

/// Inserts new customers with multi-row INSERTs.
pub async fn insert_customers<C: ConnectionTrait>(
    conn: &C,
    customers: &[customer::Model],
) -> Result<()> {
    let per_statement = MAX_BIND_PARAMS / customer::Column::iter().count();
    for chunk in customers.chunks(per_statement.max(1)) {
        customer::Entity::insert_many(
            chunk
                .iter()
                .map(|customer| customer.clone().into_active_model().reset_all()),
        )
        .exec_without_returning(conn)
        .await
        .map_err(roster_db::DbError::from)?;
    }
    Ok(())
}

/// Makes PostgreSQL plan the batch's lookups for their actual values, for the rest of the
/// transaction. Bulk lookups bind 1000-value IN lists; a generic plan cached while the table
/// was small becomes a scan comparing every row with every value as the table grows (it
/// took an import of a million rows from thousands to hundreds of rows a second), while a
/// custom plan stays an index lookup. No-op on SQLite.
pub async fn plan_for_actual_values<C: ConnectionTrait>(conn: &C) -> Result<()> {
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        conn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
            .await
            .map_err(roster_db::DbError::from)?;
    }
    Ok(())
}
