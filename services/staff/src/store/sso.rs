//! SSO connections, the identities linked through them, and the nonces already used.

use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait as _,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::entity::{sso_connection, sso_identity, sso_nonce};
use crate::error::Result;

pub async fn insert<C: ConnectionTrait>(conn: &C, row: sso_connection::Model) -> Result<()> {
    sso_connection::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn find<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    connection_id: Uuid,
) -> Result<Option<sso_connection::Model>> {
    Ok(
        sso_connection::Entity::find_by_id((workspace_id.to_owned(), connection_id))
            .one(conn)
            .await?,
    )
}

/// The connection, locked until the transaction ends, so a test's record and an update
/// of what was tested take turns.
pub async fn lock<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    connection_id: Uuid,
) -> Result<Option<sso_connection::Model>> {
    Ok(
        sso_connection::Entity::find_by_id((workspace_id.to_owned(), connection_id))
            .lock_exclusive()
            .one(conn)
            .await?,
    )
}

pub async fn find_by_name<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    display_name_key: &str,
) -> Result<Option<sso_connection::Model>> {
    Ok(sso_connection::Entity::find()
        .filter(sso_connection::Column::WorkspaceId.eq(workspace_id))
        .filter(sso_connection::Column::DisplayNameKey.eq(display_name_key))
        .one(conn)
        .await?)
}

pub async fn count<C: ConnectionTrait>(conn: &C, workspace_id: &str) -> Result<u64> {
    Ok(sso_connection::Entity::find()
        .filter(sso_connection::Column::WorkspaceId.eq(workspace_id))
        .count(conn)
        .await?)
}

/// Up to `limit` connections, oldest first (ids are UUIDv7), after `after`.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<sso_connection::Model>> {
    let mut query =
        sso_connection::Entity::find().filter(sso_connection::Column::WorkspaceId.eq(workspace_id));
    if let Some(after) = after {
        query = query.filter(sso_connection::Column::ConnectionId.gt(after));
    }
    Ok(query
        .order_by_asc(sso_connection::Column::ConnectionId)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Writes what changed from `before` to `after` if the row still has `before.version`;
/// false when another writer changed it first.
pub async fn update<C: ConnectionTrait>(
    conn: &C,
    before: &sso_connection::Model,
    after: &sso_connection::Model,
) -> Result<bool> {
    Ok(
        roster_db::versioned::update_changed::<_, sso_connection::ActiveModel, _>(
            conn,
            before,
            after,
            Condition::all()
                .add(sso_connection::Column::WorkspaceId.eq(before.workspace_id.as_str()))
                .add(sso_connection::Column::ConnectionId.eq(before.connection_id)),
            sso_connection::Column::Version,
            before.version,
        )
        .await?,
    )
}

/// Deletes the connection at `row.version` with its links and nonces; false when another
/// writer changed it first.
pub async fn delete<C: ConnectionTrait>(conn: &C, row: &sso_connection::Model) -> Result<bool> {
    let deleted = sso_connection::Entity::delete_many()
        .filter(sso_connection::Column::WorkspaceId.eq(row.workspace_id.as_str()))
        .filter(sso_connection::Column::ConnectionId.eq(row.connection_id))
        .filter(sso_connection::Column::Version.eq(row.version))
        .exec(conn)
        .await?;
    if deleted.rows_affected != 1 {
        return Ok(false);
    }
    sso_identity::Entity::delete_many()
        .filter(sso_identity::Column::WorkspaceId.eq(row.workspace_id.as_str()))
        .filter(sso_identity::Column::ConnectionId.eq(row.connection_id))
        .exec(conn)
        .await?;
    sso_nonce::Entity::delete_many()
        .filter(sso_nonce::Column::WorkspaceId.eq(row.workspace_id.as_str()))
        .filter(sso_nonce::Column::ConnectionId.eq(row.connection_id))
        .exec(conn)
        .await?;
    Ok(true)
}

/// The display names of the connections whose default role is `role`.
pub async fn giving_role<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    role: &str,
) -> Result<Vec<String>> {
    Ok(sso_connection::Entity::find()
        .select_only()
        .column(sso_connection::Column::DisplayName)
        .filter(sso_connection::Column::WorkspaceId.eq(workspace_id))
        .filter(sso_connection::Column::DefaultRole.eq(role))
        .order_by_asc(sso_connection::Column::DisplayNameKey)
        .into_tuple()
        .all(conn)
        .await?)
}

/// Follows a role's rename in the connections that give it; their versions change, as
/// their content did.
pub async fn rename_default_role<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    from: &str,
    to: &str,
    now: i64,
) -> Result<()> {
    sso_connection::Entity::update_many()
        .col_expr(sso_connection::Column::DefaultRole, Expr::val(to))
        .col_expr(sso_connection::Column::UpdatedAt, Expr::val(now))
        .col_expr(
            sso_connection::Column::Version,
            Expr::col(sso_connection::Column::Version).add(1),
        )
        .filter(sso_connection::Column::WorkspaceId.eq(workspace_id))
        .filter(sso_connection::Column::DefaultRole.eq(from))
        .exec(conn)
        .await?;
    Ok(())
}

/// The identity `subject` of the connection, if linked.
pub async fn identity<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    connection_id: Uuid,
    subject: &str,
) -> Result<Option<sso_identity::Model>> {
    Ok(sso_identity::Entity::find_by_id((
        workspace_id.to_owned(),
        connection_id,
        subject.to_owned(),
    ))
    .one(conn)
    .await?)
}

/// The identity of the connection linked to `agent_id`, if any.
pub async fn identity_of_agent<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    connection_id: Uuid,
    agent_id: Uuid,
) -> Result<Option<sso_identity::Model>> {
    Ok(sso_identity::Entity::find()
        .filter(sso_identity::Column::WorkspaceId.eq(workspace_id))
        .filter(sso_identity::Column::ConnectionId.eq(connection_id))
        .filter(sso_identity::Column::AgentId.eq(agent_id))
        .one(conn)
        .await?)
}

pub async fn link<C: ConnectionTrait>(conn: &C, row: sso_identity::Model) -> Result<()> {
    sso_identity::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Stamps a sign-in on a link, with the e-mail the provider says now.
pub async fn touch_identity<C: ConnectionTrait>(
    conn: &C,
    row: &sso_identity::Model,
    email: &str,
    now: i64,
) -> Result<()> {
    sso_identity::Entity::update_many()
        .col_expr(sso_identity::Column::LastSignInAt, Expr::val(now))
        .col_expr(sso_identity::Column::Email, Expr::val(email))
        .filter(sso_identity::Column::WorkspaceId.eq(row.workspace_id.as_str()))
        .filter(sso_identity::Column::ConnectionId.eq(row.connection_id))
        .filter(sso_identity::Column::Subject.eq(row.subject.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Removes every link of the agent (deactivation); answers how many.
pub async fn unlink_agent<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
) -> Result<u64> {
    Ok(sso_identity::Entity::delete_many()
        .filter(sso_identity::Column::WorkspaceId.eq(workspace_id))
        .filter(sso_identity::Column::AgentId.eq(agent_id))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Records a nonce as used until `expires_at`, first forgetting the workspace's expired
/// ones (an idempotent delete any replica may run). False when it was used before: one
/// insert, so two replicas racing with one token cannot both win.
pub async fn use_nonce<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    connection_id: Uuid,
    nonce_hash: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool> {
    sso_nonce::Entity::delete_many()
        .filter(sso_nonce::Column::WorkspaceId.eq(workspace_id))
        .filter(sso_nonce::Column::ExpiresAt.lt(now))
        .exec(conn)
        .await?;
    let insert = Query::insert()
        .into_table(sso_nonce::Entity)
        .columns([
            sso_nonce::Column::WorkspaceId,
            sso_nonce::Column::ConnectionId,
            sso_nonce::Column::NonceHash,
            sso_nonce::Column::ExpiresAt,
        ])
        .values_panic([
            Expr::val(workspace_id),
            Expr::val(connection_id),
            Expr::val(nonce_hash),
            Expr::val(expires_at),
        ])
        .on_conflict(
            OnConflict::columns([
                sso_nonce::Column::WorkspaceId,
                sso_nonce::Column::ConnectionId,
                sso_nonce::Column::NonceHash,
            ])
            .do_nothing()
            .to_owned(),
        )
        .to_owned();
    Ok(conn.execute(&insert).await?.rows_affected() == 1)
}
