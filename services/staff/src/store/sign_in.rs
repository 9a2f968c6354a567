//! Sign-in rows: throttle counters, attempts, refresh tokens, and an agent's sign-in stamp.

use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait as _, OnConflict, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use crate::entity::{agent, refresh_token, sign_in_attempt, sign_in_throttle};
use crate::error::Result;

/// Counts one attempt against `key` unless `limit` attempts were already counted in the
/// window of `window_us` that is running at `now`. `Ok(None)`: counted; `Ok(Some(t))`: refused,
/// the window ends at `t`.
///
/// The check and the count are one UPDATE, so concurrent attempts queue on the row and each
/// sees the others' counts: fifty parallel attempts at a limit of five count five.
pub async fn count_attempt<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    key: &str,
    limit: i64,
    window_us: i64,
    now: i64,
) -> Result<Option<i64>> {
    let insert = Query::insert()
        .into_table(sign_in_throttle::Entity)
        .columns([
            sign_in_throttle::Column::WorkspaceId,
            sign_in_throttle::Column::ThrottleKey,
            sign_in_throttle::Column::Attempts,
            sign_in_throttle::Column::WindowStartedAt,
        ])
        .values_panic([
            Expr::val(workspace_id),
            Expr::val(key),
            Expr::val(0i64),
            Expr::val(now),
        ])
        .on_conflict(
            OnConflict::columns([
                sign_in_throttle::Column::WorkspaceId,
                sign_in_throttle::Column::ThrottleKey,
            ])
            .do_nothing()
            .to_owned(),
        )
        .to_owned();
    conn.execute(&insert).await?;

    let window_over = Expr::col(sign_in_throttle::Column::WindowStartedAt).lte(now - window_us);
    let counted = sign_in_throttle::Entity::update_many()
        .col_expr(
            sign_in_throttle::Column::Attempts,
            CaseStatement::new()
                .case(window_over.clone(), Expr::val(1i64))
                .finally(Expr::col(sign_in_throttle::Column::Attempts).add(1i64))
                .into(),
        )
        .col_expr(
            sign_in_throttle::Column::WindowStartedAt,
            CaseStatement::new()
                .case(window_over.clone(), Expr::val(now))
                .finally(Expr::col(sign_in_throttle::Column::WindowStartedAt))
                .into(),
        )
        .filter(sign_in_throttle::Column::WorkspaceId.eq(workspace_id))
        .filter(sign_in_throttle::Column::ThrottleKey.eq(key))
        .filter(
            Condition::any()
                .add(window_over)
                .add(sign_in_throttle::Column::Attempts.lt(limit)),
        )
        .exec(conn)
        .await?;
    if counted.rows_affected == 1 {
        return Ok(None);
    }
    let row = sign_in_throttle::Entity::find_by_id((workspace_id.to_owned(), key.to_owned()))
        .one(conn)
        .await?;
    Ok(Some(
        row.map_or(now, |row| row.window_started_at + window_us),
    ))
}

/// Forgets the attempts counted against `key` (a successful sign-in to the account).
pub async fn clear_attempts<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    key: &str,
) -> Result<()> {
    sign_in_throttle::Entity::delete_many()
        .filter(sign_in_throttle::Column::WorkspaceId.eq(workspace_id))
        .filter(sign_in_throttle::Column::ThrottleKey.eq(key))
        .exec(conn)
        .await?;
    Ok(())
}

/// Gives back one attempt counted against `key` (a success from the address).
pub async fn refund_attempt<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    key: &str,
) -> Result<()> {
    sign_in_throttle::Entity::update_many()
        .col_expr(
            sign_in_throttle::Column::Attempts,
            Expr::col(sign_in_throttle::Column::Attempts).sub(1i64),
        )
        .filter(sign_in_throttle::Column::WorkspaceId.eq(workspace_id))
        .filter(sign_in_throttle::Column::ThrottleKey.eq(key))
        .filter(sign_in_throttle::Column::Attempts.gt(0i64))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn record_attempt<C: ConnectionTrait>(
    conn: &C,
    row: sign_in_attempt::Model,
) -> Result<()> {
    sign_in_attempt::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The agent's attempts, newest first, after the attempt `after` of a previous page.
pub async fn attempts_of<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<sign_in_attempt::Model>> {
    let mut query = sign_in_attempt::Entity::find()
        .filter(sign_in_attempt::Column::WorkspaceId.eq(workspace_id))
        .filter(sign_in_attempt::Column::AgentId.eq(agent_id));
    if let Some(after) = after {
        query = query.filter(sign_in_attempt::Column::AttemptId.lt(after));
    }
    Ok(query
        .order_by_desc(sign_in_attempt::Column::AttemptId)
        .limit(limit)
        .all(conn)
        .await?)
}

/// Stamps a successful sign-in on the agent, leaving its version (the etag of what admins
/// edit) alone: signing in must not make an admin's pending edit stale.
pub async fn stamp_sign_in<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
    now: i64,
) -> Result<()> {
    agent::Entity::update_many()
        .col_expr(agent::Column::LastSignInAt, Expr::val(now))
        .col_expr(
            agent::Column::SignInCount,
            Expr::col(agent::Column::SignInCount).add(1i64),
        )
        .filter(agent::Column::WorkspaceId.eq(workspace_id))
        .filter(agent::Column::AgentId.eq(agent_id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn insert_refresh_token<C: ConnectionTrait>(
    conn: &C,
    row: refresh_token::Model,
) -> Result<()> {
    refresh_token::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The refresh token, locked until the transaction ends so two redemptions of one token
/// take turns (the second sees the first's rotation and counts as reuse).
pub async fn lock_refresh_token<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    token_id: Uuid,
) -> Result<Option<refresh_token::Model>> {
    Ok(
        refresh_token::Entity::find_by_id((workspace_id.to_owned(), token_id))
            .lock_exclusive()
            .one(conn)
            .await?,
    )
}

pub async fn mark_rotated<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    token_id: Uuid,
    now: i64,
) -> Result<()> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::val(now))
        .filter(refresh_token::Column::WorkspaceId.eq(workspace_id))
        .filter(refresh_token::Column::TokenId.eq(token_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Revokes every live token of the family; answers how many.
pub async fn revoke_family<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    family_id: Uuid,
    now: i64,
) -> Result<u64> {
    Ok(refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::val(now))
        .filter(refresh_token::Column::WorkspaceId.eq(workspace_id))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected)
}

/// Revokes every live refresh token the agent holds; answers how many.
pub async fn revoke_agent_tokens<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
    now: i64,
) -> Result<u64> {
    Ok(refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::val(now))
        .filter(refresh_token::Column::WorkspaceId.eq(workspace_id))
        .filter(refresh_token::Column::AgentId.eq(agent_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected)
}

/// Deletes every refresh token the agent ever held (erasure: revoked ones too).
pub async fn delete_agent_tokens<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
) -> Result<u64> {
    Ok(refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::WorkspaceId.eq(workspace_id))
        .filter(refresh_token::Column::AgentId.eq(agent_id))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Blanks the e-mail, address and user agent of the agent's sign-in attempts, and of the
/// attempts at their address that matched no agent (erasure). The attempts themselves
/// stay: when and how often someone tried is the workspace's security record.
pub async fn scrub_attempts<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    agent_id: Uuid,
    email_key: &str,
) -> Result<u64> {
    Ok(sign_in_attempt::Entity::update_many()
        .col_expr(sign_in_attempt::Column::Email, Expr::val(""))
        .col_expr(sign_in_attempt::Column::Ip, Expr::val(""))
        .col_expr(sign_in_attempt::Column::UserAgent, Expr::val(""))
        .filter(sign_in_attempt::Column::WorkspaceId.eq(workspace_id))
        .filter(
            sea_orm::Condition::any()
                .add(sign_in_attempt::Column::AgentId.eq(agent_id))
                .add(sign_in_attempt::Column::Email.eq(email_key)),
        )
        .exec(conn)
        .await?
        .rows_affected)
}
