//! Optimistic concurrency for rows with a `version` column: a change is written only if
//! the row still has the version it was read at, so of two writers that read the same row
//! one wins and the other learns it lost (and retries or answers ABORTED).

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, Iterable, ModelTrait,
    QueryFilter,
};

use crate::error::Result;

/// The columns that differ between two versions of a row, as an update that writes only
/// them (so an unchanged indexed column is not re-indexed, and an audit diff and the SQL
/// agree on what changed).
pub fn changed_columns<M, A>(before: &M, after: &M) -> A
where
    M: ModelTrait,
    A: ActiveModelTrait<Entity = M::Entity>,
{
    let mut changes = A::default();
    for column in <M::Entity as EntityTrait>::Column::iter() {
        let value = after.get(column);
        if before.get(column) != value {
            changes.set(column, value);
        }
    }
    changes
}

/// Writes what changed from `before` to `after` into the row `key` selects, if that row's
/// `version` column still holds `before_version`. True when written (or when nothing
/// changed); false when another writer changed the row first.
pub async fn update_changed<M, A, C>(
    conn: &C,
    before: &M,
    after: &M,
    key: Condition,
    version: <M::Entity as EntityTrait>::Column,
    before_version: i64,
) -> Result<bool>
where
    M: ModelTrait,
    A: ActiveModelTrait<Entity = M::Entity> + Send,
    C: ConnectionTrait,
{
    let changes: A = changed_columns(before, after);
    if !changes.is_changed() {
        return Ok(true);
    }
    let result = <M::Entity as EntityTrait>::update_many()
        .set(changes)
        .filter(key)
        .filter(version.eq(before_version))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}
