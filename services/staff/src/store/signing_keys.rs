//! Token-signing keys: a platform table (no workspace), a handful of rows read whole.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entity::signing_key;
use crate::error::Result;

pub async fn insert<C: ConnectionTrait>(conn: &C, row: signing_key::Model) -> Result<()> {
    signing_key::Entity::insert(row.into_active_model())
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// The `kid` that signs: the newest key not retired (the unique index allows one; should
/// two ever exist, the newest wins everywhere alike). One indexed row, so replicas can ask
/// often whether a rotation happened elsewhere.
pub async fn signing_kid<C: ConnectionTrait>(conn: &C) -> Result<Option<String>> {
    Ok(signing_key::Entity::find()
        .select_only()
        .column(signing_key::Column::Kid)
        .filter(signing_key::Column::RetiredAt.is_null())
        .order_by_desc(signing_key::Column::CreatedAt)
        .order_by_desc(signing_key::Column::Kid)
        .limit(1)
        .into_tuple::<String>()
        .one(conn)
        .await?)
}

/// Keys still published at `now`: the signing key and retired keys before their
/// `unpublish_at`, oldest first.
pub async fn published<C: ConnectionTrait>(conn: &C, now: i64) -> Result<Vec<signing_key::Model>> {
    Ok(signing_key::Entity::find()
        .filter(
            Condition::any()
                .add(signing_key::Column::UnpublishAt.is_null())
                .add(signing_key::Column::UnpublishAt.gt(now)),
        )
        .order_by_asc(signing_key::Column::CreatedAt)
        .order_by_asc(signing_key::Column::Kid)
        .all(conn)
        .await?)
}

/// Retires every key that signs (one, normally), published until `unpublish_at`; answers
/// the retired rows. On PostgreSQL the rows stay locked until the transaction ends, so a
/// concurrent rotation waits, finds nothing left to retire, and collides on the index
/// when it inserts its key.
pub async fn retire_signing<C: ConnectionTrait>(
    conn: &C,
    retired_at: i64,
    unpublish_at: i64,
) -> Result<Vec<signing_key::Model>> {
    Ok(signing_key::Entity::update_many()
        .col_expr(signing_key::Column::RetiredAt, Expr::value(retired_at))
        .col_expr(signing_key::Column::UnpublishAt, Expr::value(unpublish_at))
        .filter(signing_key::Column::RetiredAt.is_null())
        .exec_with_returning(conn)
        .await?)
}

/// Deletes keys unpublished by `now`, private halves with them. Idempotent, so replicas
/// run it without coordination.
pub async fn purge_unpublished<C: ConnectionTrait>(conn: &C, now: i64) -> Result<u64> {
    Ok(signing_key::Entity::delete_many()
        .filter(signing_key::Column::UnpublishAt.lte(now))
        .exec(conn)
        .await?
        .rows_affected)
}
