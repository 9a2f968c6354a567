//! The queries, over any `ConnectionTrait` (a write transaction or the pool). Every query
//! names its workspace but the log key's, a platform row.

pub mod checkpoints;
pub mod events;
pub mod hashes;
pub mod holds;
pub mod log_key;
pub mod logs;
pub mod probe;

use sea_orm::sea_query::InsertStatement;
use sea_orm::{ConnectionTrait, DbBackend};

use crate::error::Result;

/// Runs `inserts` in the caller's transaction. On PostgreSQL they go as one statement (the
/// earlier ones as data-modifying CTEs, [`roster_db::postgres_atomic_insert`]): an append's
/// writes are made under its log's lock, and every other append to the log waits out each
/// of their round trips. On SQLite, one after the other.
///
/// One PostgreSQL statement binds at most 65,535 values; the largest append, `MAX_BATCH`
/// events with their hashes, binds far fewer (a test below keeps it so).
pub async fn insert_all<C: ConnectionTrait>(conn: &C, inserts: Vec<InsertStatement>) -> Result<()> {
    if conn.get_database_backend() == DbBackend::Postgres {
        if let Some(statement) = roster_db::postgres_atomic_insert(inserts) {
            conn.execute_raw(statement).await?;
        }
        return Ok(());
    }
    for insert in &inserts {
        conn.execute(insert).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sea_orm::Iterable as _;

    use crate::entity::{audit_checkpoint, audit_event, audit_log, audit_tree_hash};

    #[test]
    fn the_largest_append_fits_one_postgres_statement() {
        // A leaf stores its hash and, on average, one more (the subtrees it completes).
        let per_event =
            audit_event::Column::iter().count() + 2 * audit_tree_hash::Column::iter().count();
        let per_append =
            audit_checkpoint::Column::iter().count() + audit_log::Column::iter().count();
        let largest = crate::api::MAX_BATCH * per_event + per_append + 64;
        assert!(largest <= 65_535, "{largest} values in one statement");
    }
}
