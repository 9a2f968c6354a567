//! Users together with their identities in one round trip: a correlated subquery folds a
//! user's identities into one text column, so GetUser and every ListUsers page cost a
//! single query instead of two.

use std::sync::OnceLock;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, QueryTrait, Select, Statement, Value,
};
use uuid::Uuid;

use crate::entity::end_user;
use crate::error::Result;

const IDENTITIES: &str = "identities";
/// Separators that validated identity keys cannot contain (control characters).
const FIELD: char = '\u{1f}';
const RECORD: char = '\u{1e}';

fn identities_column(backend: DbBackend) -> Expr {
    let aggregate = match backend {
        DbBackend::Postgres => {
            "(SELECT string_agg(i.source || chr(31) || i.identity_key, chr(30) ORDER BY i.source, i.identity_key) \
             FROM end_user_identities i \
             WHERE i.workspace_id = \"end_users\".\"workspace_id\" AND i.user_id = \"end_users\".\"user_id\")"
        }
        _ => {
            // Ordered explicitly: without ORDER BY, group_concat follows whichever index the
            // planner scans (by user, that is insertion order). The bundled SQLite (3.51)
            // has ORDER BY inside aggregates, which 3.44 introduced.
            "(SELECT group_concat(i.source || char(31) || i.identity_key, char(30) ORDER BY i.source, i.identity_key) \
             FROM end_user_identities i \
             WHERE i.workspace_id = \"end_users\".\"workspace_id\" AND i.user_id = \"end_users\".\"user_id\")"
        }
    };
    Expr::cust(aggregate)
}

fn split(aggregated: Option<String>) -> Vec<(String, String)> {
    aggregated
        .unwrap_or_default()
        .split(RECORD)
        .filter_map(|pair| pair.split_once(FIELD))
        .map(|(source, key)| (source.to_owned(), key.to_owned()))
        .collect()
}

/// `select` with the identities column added, as a statement for `backend`.
fn with_identities(select: Select<end_user::Entity>, backend: DbBackend) -> Statement {
    select
        .column_as(identities_column(backend), IDENTITIES)
        .build(backend)
}

/// Runs `select` with the identities column added.
pub async fn users_with_identities<C: ConnectionTrait>(
    conn: &C,
    select: Select<end_user::Entity>,
) -> Result<Vec<(end_user::Model, Vec<(String, String)>)>> {
    let statement = with_identities(select, conn.get_database_backend());
    query_with_identities(conn, statement).await
}

async fn query_with_identities<C: ConnectionTrait>(
    conn: &C,
    statement: Statement,
) -> Result<Vec<(end_user::Model, Vec<(String, String)>)>> {
    let rows = conn
        .query_all_raw(statement)
        .await
        .map_err(roster_db::DbError::from)?;
    let positional = rows.first().is_some_and(columns_in_entity_order);
    rows.iter()
        .enumerate()
        .map(|(at, row)| {
            let (user, identities) = match row.try_as_pg_row() {
                // Every row of a result has the first row's column types, so checking them
                // once is checking them for all.
                Some(pg) if positional => {
                    user_at_positions(pg, at == 0).map_err(roster_db::DbError::from)?
                }
                _ => (
                    end_user::Model::from_query_result(row, "")
                        .map_err(roster_db::DbError::from)?,
                    row.try_get("", IDENTITIES)
                        .map_err(roster_db::DbError::from)?,
                ),
            };
            Ok((user, split(identities)))
        })
        .collect()
}

/// Whether a PostgreSQL result has every `end_users` column in the entity's order, as a
/// SeaORM select of the entity lists them, then the identities column, so rows can be read
/// by position.
fn columns_in_entity_order(row: &sea_orm::QueryResult) -> bool {
    use sea_orm::sqlx::{Column as _, Row as _};
    use sea_orm::{IdenStatic as _, Iterable as _};
    let Some(pg) = row.try_as_pg_row() else {
        return false;
    };
    let names = pg.columns().iter().map(|column| column.name());
    let expected = end_user::Column::iter()
        .map(|column| column.as_str())
        .chain([IDENTITIES]);
    names.eq(expected)
}

/// An `end_users` row and its identities column read by position. SeaORM reads every
/// column by name, a hash lookup and, for each NULL, a formatted error; on a page of 30
/// users that was most of the service's CPU per ListUsers call. Only for results
/// [`columns_in_entity_order`] accepts.
///
/// With `check_types` false the column types are taken as checked already (on an earlier
/// row of the same result): sqlx's per-value check clones and compares type descriptors,
/// some 30% of the instructions of reading a row (callgrind). A value that still did not
/// fit would fail to decode, as with the check, only with a vaguer message.
fn user_at_positions(
    row: &sea_orm::sqlx::postgres::PgRow,
    check_types: bool,
) -> std::result::Result<(end_user::Model, Option<String>), sea_orm::sqlx::Error> {
    use sea_orm::sqlx::Row as _;
    let mut position = 0;
    let mut next = || {
        position += 1;
        position - 1
    };
    macro_rules! next_value {
        () => {{
            let at = next();
            if check_types {
                row.try_get(at)?
            } else {
                row.try_get_unchecked(at)?
            }
        }};
    }
    // Fields in the entity's column order; a struct literal evaluates them in source order.
    let user = end_user::Model {
        workspace_id: next_value!(),
        user_id: next_value!(),
        external_id: next_value!(),
        email: next_value!(),
        email_key: next_value!(),
        name: next_value!(),
        avatar_url: next_value!(),
        customer_id: next_value!(),
        status: next_value!(),
        restore_status: next_value!(),
        title: next_value!(),
        first_name: next_value!(),
        last_name: next_value!(),
        phone: next_value!(),
        mobile: next_value!(),
        fax: next_value!(),
        street: next_value!(),
        zip: next_value!(),
        city: next_value!(),
        country: next_value!(),
        notes: next_value!(),
        search_text: next_value!(),
        created_at: next_value!(),
        updated_at: next_value!(),
        confirmed_at: next_value!(),
        last_activity_at: next_value!(),
        deleted_at: next_value!(),
        deactivated_at: next_value!(),
        conversation_count: next_value!(),
        merged_into: next_value!(),
        version: next_value!(),
    };
    Ok((user, next_value!()))
}

fn by_id(workspace_id: &str, user_id: Uuid) -> Select<end_user::Entity> {
    end_user::Entity::find()
        .filter(end_user::Column::WorkspaceId.eq(workspace_id))
        .filter(end_user::Column::UserId.eq(user_id))
}

/// The one-user statement. Its SQL depends only on the backend (the ids are bound), so it
/// is built once: building it through SeaORM on every GetUser took about 8% of the
/// service's CPU per call.
fn by_id_statement(backend: DbBackend, workspace_id: &str, user_id: Uuid) -> Statement {
    static POSTGRES: OnceLock<String> = OnceLock::new();
    static SQLITE: OnceLock<String> = OnceLock::new();
    let cached = match backend {
        DbBackend::Postgres => &POSTGRES,
        _ => &SQLITE,
    };
    let sql = cached.get_or_init(|| with_identities(by_id("", Uuid::nil()), backend).sql);
    // In the order the filters bind them.
    let values: [Value; 2] = [workspace_id.into(), user_id.into()];
    Statement::from_sql_and_values(backend, sql.as_str(), values)
}

pub async fn user_with_identities<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    user_id: Uuid,
) -> Result<Option<(end_user::Model, Vec<(String, String)>)>> {
    let statement = by_id_statement(conn.get_database_backend(), workspace_id, user_id);
    Ok(query_with_identities(conn, statement)
        .await?
        .into_iter()
        .next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_one_user_statement_is_the_one_seaorm_builds() {
        let user_id = Uuid::now_v7();
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let built = with_identities(by_id("ws-1", user_id), backend);
            let cached = by_id_statement(backend, "ws-1", user_id);
            assert_eq!(cached.sql, built.sql, "{backend:?}");
            assert_eq!(cached.values, built.values, "{backend:?}");
        }
    }
}
