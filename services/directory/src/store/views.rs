//! Users together with their identities in one round trip: a correlated subquery folds a
//! user's identities into one text column, so GetUser and every ListUsers page cost a
//! single query instead of two.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, QueryTrait, Select,
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
            // SQLite's group_concat follows the scan order of the primary key
            // (workspace_id, source, identity_key): the same order as PostgreSQL's.
            "(SELECT group_concat(i.source || char(31) || i.identity_key, char(30)) \
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

/// Runs `select` with the identities column added.
pub async fn users_with_identities<C: ConnectionTrait>(
    conn: &C,
    select: Select<end_user::Entity>,
) -> Result<Vec<(end_user::Model, Vec<(String, String)>)>> {
    let backend = conn.get_database_backend();
    let statement = select
        .column_as(identities_column(backend), IDENTITIES)
        .build(backend);
    let rows = conn
        .query_all_raw(statement)
        .await
        .map_err(roster_db::DbError::from)?;
    rows.iter()
        .map(|row| {
            let user =
                end_user::Model::from_query_result(row, "").map_err(roster_db::DbError::from)?;
            let identities: Option<String> = row
                .try_get("", IDENTITIES)
                .map_err(roster_db::DbError::from)?;
            Ok((user, split(identities)))
        })
        .collect()
}

pub async fn user_with_identities<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    user_id: Uuid,
) -> Result<Option<(end_user::Model, Vec<(String, String)>)>> {
    let select = end_user::Entity::find()
        .filter(end_user::Column::WorkspaceId.eq(workspace_id))
        .filter(end_user::Column::UserId.eq(user_id));
    Ok(users_with_identities(conn, select)
        .await?
        .into_iter()
        .next())
}
