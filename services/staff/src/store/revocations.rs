//! The revocation feed.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};

use crate::entity::{agent, token_revocation};
use crate::error::Result;

/// Publishes that `subject`'s tokens below `min_generation` are revoked, in the caller's
/// transaction: the change that ends the tokens and the news of it commit together.
pub async fn publish<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    subject: String,
    min_generation: i64,
    now: i64,
) -> Result<()> {
    token_revocation::Entity::insert(
        token_revocation::Model {
            workspace_id: workspace_id.to_owned(),
            subject,
            min_generation,
            revoked_at: now,
        }
        .into_active_model(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Publishes the new generations of agents whose tokens a bulk change just ended (`agents`
/// as the change's UPDATE returned them).
pub async fn publish_agents<C: ConnectionTrait>(
    conn: &C,
    agents: &[agent::Model],
    now: i64,
) -> Result<()> {
    if agents.is_empty() {
        return Ok(());
    }
    token_revocation::Entity::insert_many(agents.iter().map(|agent| {
        token_revocation::Model {
            workspace_id: agent.workspace_id.clone(),
            subject: agent.agent_id.to_string(),
            min_generation: agent.token_generation,
            revoked_at: now,
        }
        .into_active_model()
    }))
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Revocations published at or after `from` (unix microseconds), oldest first.
pub async fn since<C: ConnectionTrait>(
    conn: &C,
    from: i64,
) -> Result<Vec<token_revocation::Model>> {
    Ok(token_revocation::Entity::find()
        .filter(token_revocation::Column::RevokedAt.gte(from))
        .order_by_asc(token_revocation::Column::RevokedAt)
        .all(conn)
        .await?)
}

/// Deletes revocations published before `before`; answers how many.
pub async fn purge<C: ConnectionTrait>(conn: &C, before: i64) -> Result<u64> {
    Ok(token_revocation::Entity::delete_many()
        .filter(token_revocation::Column::RevokedAt.lt(before))
        .exec(conn)
        .await?
        .rows_affected)
}
