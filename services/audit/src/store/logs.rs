//! Log heads: a workspace's tree size and root, and the lock that makes its appends take
//! turns.

use sea_orm::sea_query::{Expr, InsertStatement, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::domain::tree::{EMPTY_ROOT, Hash};
use crate::entity::audit_log;
use crate::error::{AuditError, Result};

/// The workspace's head, created empty when missing, locked `FOR UPDATE` until the
/// transaction ends: two appends to one log take turns, so leaf indexes follow each other
/// without gaps and each append extends the tree the other committed. On SQLite the lock
/// clause is not rendered: writers already take turns (`Db::begin_write`).
pub async fn lock<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    now: i64,
) -> Result<audit_log::Model> {
    let insert = Query::insert()
        .into_table(audit_log::Entity)
        .columns([
            audit_log::Column::WorkspaceId,
            audit_log::Column::TreeSize,
            audit_log::Column::RootHash,
            audit_log::Column::MinIndex,
            audit_log::Column::UpdatedAt,
        ])
        .values_panic([
            Expr::val(workspace_id),
            Expr::val(0i64),
            Expr::val(EMPTY_ROOT.to_vec()),
            Expr::val(0i64),
            Expr::val(now),
        ])
        .on_conflict(
            OnConflict::column(audit_log::Column::WorkspaceId)
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    conn.execute(&insert).await?;
    audit_log::Entity::find_by_id(workspace_id.to_owned())
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| {
            AuditError::Internal(format!(
                "log head of {workspace_id} missing right after its insert"
            ))
        })
}

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
) -> Result<Option<audit_log::Model>> {
    Ok(audit_log::Entity::find_by_id(workspace_id.to_owned())
        .one(conn)
        .await?)
}

/// The statement that moves a locked head to its grown tree (for [`super::insert_all`]):
/// an upsert of a row that exists, so it can join the append's inserts.
pub fn advance_statement(
    workspace_id: &str,
    tree_size: u64,
    root: &Hash,
    now: i64,
) -> InsertStatement {
    Query::insert()
        .into_table(audit_log::Entity)
        .columns([
            audit_log::Column::WorkspaceId,
            audit_log::Column::TreeSize,
            audit_log::Column::RootHash,
            audit_log::Column::MinIndex,
            audit_log::Column::UpdatedAt,
        ])
        .values_panic([
            Expr::val(workspace_id),
            Expr::val(i64::try_from(tree_size).unwrap_or(i64::MAX)),
            Expr::val(root.to_vec()),
            Expr::val(0i64),
            Expr::val(now),
        ])
        .on_conflict(
            OnConflict::column(audit_log::Column::WorkspaceId)
                .update_columns([
                    audit_log::Column::TreeSize,
                    audit_log::Column::RootHash,
                    audit_log::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .to_owned()
}

pub async fn set_retention<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    retention_us: Option<i64>,
    now: i64,
) -> Result<()> {
    audit_log::Entity::update_many()
        .col_expr(audit_log::Column::RetentionUs, Expr::val(retention_us))
        .col_expr(audit_log::Column::UpdatedAt, Expr::val(now))
        .filter(audit_log::Column::WorkspaceId.eq(workspace_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Raises the first leaf kept: the rows below it may then be deleted (the append-only
/// trigger lets exactly those go).
pub async fn raise_min_index<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    min_index: i64,
) -> Result<()> {
    audit_log::Entity::update_many()
        .col_expr(audit_log::Column::MinIndex, Expr::val(min_index))
        .filter(audit_log::Column::WorkspaceId.eq(workspace_id))
        .filter(audit_log::Column::MinIndex.lt(min_index))
        .exec(conn)
        .await?;
    Ok(())
}

/// The workspaces whose logs have a retention period: what the periodic prune visits
/// (a query across workspaces, like the other services' purges).
pub async fn with_retention<C: ConnectionTrait>(conn: &C) -> Result<Vec<String>> {
    Ok(audit_log::Entity::find()
        .select_only()
        .column(audit_log::Column::WorkspaceId)
        .filter(audit_log::Column::RetentionUs.is_not_null())
        .into_tuple::<String>()
        .all(conn)
        .await?)
}
