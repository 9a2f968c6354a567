//! The checkpoint-signing key's one row.

use sea_orm::{ConnectionTrait, EntityTrait, IntoActiveModel};

use crate::entity::audit_log_key;
use crate::error::Result;

pub async fn get<C: ConnectionTrait>(conn: &C) -> Result<Option<audit_log_key::Model>> {
    Ok(audit_log_key::Entity::find_by_id(1).one(conn).await?)
}

/// Inserts the key; a replica that lost the race to create it gets a unique violation.
pub async fn insert<C: ConnectionTrait>(conn: &C, row: audit_log_key::Model) -> Result<()> {
    audit_log_key::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
