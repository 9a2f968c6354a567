//! The tree's stored hashes (`domain::tree`): appended in index order, read by index for
//! proofs and roots, and by range for verification.

use sea_orm::sea_query::InsertStatement;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QueryTrait, Statement,
};

use crate::domain::tree::{Hash, StoredHashes, as_i64};
use crate::entity::audit_tree_hash;
use crate::error::{AuditError, Result};
use crate::store::probe::{self, Keys};

/// Rows per INSERT (3 bound values each).
const ROWS_PER_INSERT: usize = 5000;

/// The INSERTs that store `hashes` at consecutive indexes from `first_index` (for
/// [`super::insert_all`]).
pub fn insert_statements(
    workspace_id: &str,
    first_index: u64,
    hashes: &[Hash],
) -> Vec<InsertStatement> {
    let rows: Vec<_> = (first_index..)
        .zip(hashes)
        .map(|(index, hash)| audit_tree_hash::ActiveModel {
            workspace_id: Set(workspace_id.to_owned()),
            stored_index: Set(as_i64(index)),
            hash: Set(hash.to_vec()),
        })
        .collect();
    rows.chunks(ROWS_PER_INSERT)
        .map(|chunk| audit_tree_hash::Entity::insert_many(chunk.to_vec()).into_query())
        .collect()
}

fn hash_of(row: &audit_tree_hash::Model) -> Result<Hash> {
    Hash::try_from(row.hash.as_slice()).map_err(|_| {
        AuditError::Internal(format!(
            "stored hash {}/{} is not 32 bytes",
            row.workspace_id, row.stored_index
        ))
    })
}

/// The hashes at `indexes` (those that exist), each read through the primary key
/// ([`probe`]).
pub async fn read<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    indexes: &[u64],
) -> Result<StoredHashes> {
    let keys = Keys::BigInts(indexes.iter().map(|index| as_i64(*index)).collect());
    let mut stored = StoredHashes::default();
    for row in
        probe::find::<audit_tree_hash::Entity, _>(conn, "stored_index", workspace_id, keys).await?
    {
        let hash = hash_of(&row)?;
        stored
            .0
            .insert(u64::try_from(row.stored_index).unwrap_or(u64::MAX), hash);
    }
    Ok(stored)
}

/// [`read`]'s statement for one chunk of indexes (public for the test that keeps its plan
/// on the primary key).
pub fn read_statement(backend: DbBackend, workspace_id: &str, indexes: &[u64]) -> Statement {
    let keys = Keys::BigInts(indexes.iter().map(|index| as_i64(*index)).collect());
    probe::statement(
        backend,
        "audit_tree_hashes",
        "stored_index",
        workspace_id,
        keys,
    )
}

/// The hashes at indexes `[from, to)`, in index order, as (index, bytes): verification
/// reports a malformed one rather than fail on it.
pub async fn range<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, Vec<u8>)>> {
    Ok(audit_tree_hash::Entity::find()
        .filter(audit_tree_hash::Column::WorkspaceId.eq(workspace_id))
        .filter(audit_tree_hash::Column::StoredIndex.gte(as_i64(from)))
        .filter(audit_tree_hash::Column::StoredIndex.lt(as_i64(to)))
        .order_by_asc(audit_tree_hash::Column::StoredIndex)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| {
            (
                u64::try_from(row.stored_index).unwrap_or(u64::MAX),
                row.hash,
            )
        })
        .collect())
}
