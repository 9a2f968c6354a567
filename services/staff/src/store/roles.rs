//! Custom roles, and the resolution of a role name to what it grants.

use std::collections::{BTreeSet, HashMap};

use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait as _,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::domain::values::role_name_key;
use crate::domain::{Role, RoleGrant};
use crate::entity::{agent, role};
use crate::error::{Result, StaffError};

/// A stored permission list (JSON array), or INTERNAL naming `owner` when it does not parse.
pub fn parse_permissions(json: &str, owner: impl FnOnce() -> String) -> Result<BTreeSet<String>> {
    serde_json::from_str(json).map_err(|error| {
        StaffError::Internal(format!("{}'s permissions do not parse: {error}", owner()))
    })
}

/// A permission set as stored: a sorted JSON array.
pub fn permissions_json(permissions: &BTreeSet<String>) -> Result<String> {
    serde_json::to_string(permissions).map_err(|error| StaffError::Internal(error.to_string()))
}

pub fn grant_of(row: &role::Model) -> Result<RoleGrant> {
    Ok(RoleGrant {
        role_id: row.role_id.to_string(),
        name: row.name.clone(),
        built_in: None,
        permissions: parse_permissions(&row.permissions, || format!("role '{}'", row.name))?,
    })
}

pub async fn insert<C: ConnectionTrait>(conn: &C, row: role::Model) -> Result<()> {
    role::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    role_id: Uuid,
) -> Result<Option<role::Model>> {
    Ok(role::Entity::find_by_id((workspace_id.to_owned(), role_id))
        .one(conn)
        .await?)
}

pub async fn find_by_name<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    name: &str,
) -> Result<Option<role::Model>> {
    Ok(role::Entity::find()
        .filter(role::Column::WorkspaceId.eq(workspace_id))
        .filter(role::Column::NameKey.eq(role_name_key(name)))
        .one(conn)
        .await?)
}

/// The workspace's custom roles by name.
pub async fn list<C: ConnectionTrait>(conn: &C, workspace_id: &str) -> Result<Vec<role::Model>> {
    Ok(role::Entity::find()
        .filter(role::Column::WorkspaceId.eq(workspace_id))
        .order_by_asc(role::Column::NameKey)
        .order_by_asc(role::Column::RoleId)
        .all(conn)
        .await?)
}

pub async fn count<C: ConnectionTrait>(conn: &C, workspace_id: &str) -> Result<u64> {
    Ok(role::Entity::find()
        .filter(role::Column::WorkspaceId.eq(workspace_id))
        .count(conn)
        .await?)
}

/// Writes what changed from `before` to `after` if the row still has `before.version`;
/// false when another writer changed it first.
pub async fn update<C: ConnectionTrait>(
    conn: &C,
    before: &role::Model,
    after: &role::Model,
) -> Result<bool> {
    Ok(
        roster_db::versioned::update_changed::<_, role::ActiveModel, _>(
            conn,
            before,
            after,
            Condition::all()
                .add(role::Column::WorkspaceId.eq(before.workspace_id.as_str()))
                .add(role::Column::RoleId.eq(before.role_id)),
            role::Column::Version,
            before.version,
        )
        .await?,
    )
}

pub async fn delete<C: ConnectionTrait>(conn: &C, row: &role::Model) -> Result<bool> {
    let result = role::Entity::delete_many()
        .filter(role::Column::WorkspaceId.eq(row.workspace_id.as_str()))
        .filter(role::Column::RoleId.eq(row.role_id))
        .filter(role::Column::Version.eq(row.version))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// The role named `name` (any case) in the workspace: a built-in or a custom role.
pub async fn resolve<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    name: &str,
) -> Result<Option<RoleGrant>> {
    if let Some(role) = Role::parse_any_case(name) {
        return Ok(Some(RoleGrant::built_in(role)));
    }
    find_by_name(conn, workspace_id, name)
        .await?
        .map(|row| grant_of(&row))
        .transpose()
}

/// Agents (of any status) holding each role name; roles nobody holds are absent.
pub async fn holders<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
) -> Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = agent::Entity::find()
        .select_only()
        .column(agent::Column::Role)
        .column_as(agent::Column::AgentId.count(), "n")
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .group_by(agent::Column::Role)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Agents (of any status) holding the role named `name`.
pub async fn holders_of<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    name: &str,
) -> Result<u64> {
    Ok(agent::Entity::find()
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .filter(agent::Column::Role.eq(name))
        .count(conn)
        .await?)
}

/// Ends the tokens of the role's holders (they carry its permissions): raises their token
/// generation and publishes the revocation.
pub async fn raise_holders_generation<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    name: &str,
    now: i64,
) -> Result<()> {
    let holders = agent::Entity::update_many()
        .col_expr(
            agent::Column::TokenGeneration,
            Expr::col(agent::Column::TokenGeneration).add(1),
        )
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .filter(agent::Column::Role.eq(name))
        .exec_with_returning(conn)
        .await?;
    super::revocations::publish_agents(conn, &holders, now).await
}

/// Moves the holders of role `from` to the name `to`, as a rename must: their rows
/// change, so their versions do too, and their tokens (which carry the role's name) end,
/// which is published.
pub async fn rename_holders<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    from: &str,
    to: &str,
    now: i64,
) -> Result<u64> {
    let holders = agent::Entity::update_many()
        .col_expr(agent::Column::Role, Expr::val(to))
        .col_expr(agent::Column::UpdatedAt, Expr::val(now))
        .col_expr(
            agent::Column::Version,
            Expr::col(agent::Column::Version).add(1),
        )
        .col_expr(
            agent::Column::TokenGeneration,
            Expr::col(agent::Column::TokenGeneration).add(1),
        )
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .filter(agent::Column::Role.eq(from))
        .exec_with_returning(conn)
        .await?;
    super::revocations::publish_agents(conn, &holders, now).await?;
    Ok(u64::try_from(holders.len()).unwrap_or(u64::MAX))
}
