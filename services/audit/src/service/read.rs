//! Reading a log: events, checkpoints, proofs. Reads need no transaction: a head is
//! committed with every hash and event below it, and those never change, so whatever tree
//! size a read starts from is complete.

use std::collections::BTreeSet;

use roster_core::FieldViolation;
use uuid::Uuid;

use crate::domain::event::Recorded;
use crate::domain::tree::{self, EMPTY_ROOT, Hash, as_i64};
use crate::error::{AuditError, Result};
use crate::service::Audit;
use crate::store;
use crate::store::events::Filter;

/// A signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointView {
    pub workspace_id: String,
    pub origin: String,
    pub tree_size: u64,
    pub root: Hash,
    pub signed_note: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consistency {
    pub old_size: u64,
    pub new_size: u64,
    pub path: Vec<Hash>,
    pub old_root: Hash,
    pub new_root: Hash,
}

/// The key that signs a workspace's checkpoints, as a verifier pins it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogKeyView {
    pub name: String,
    pub verifier_key: String,
    pub public_key: [u8; 32],
    pub key_id: u32,
}

pub(super) fn size_of(head: Option<&crate::entity::audit_log::Model>) -> Result<u64> {
    head.map_or(Ok(0), |head| {
        u64::try_from(head.tree_size).map_err(|_| {
            AuditError::Internal(format!("log {} has a negative size", head.workspace_id))
        })
    })
}

impl Audit {
    pub async fn list(
        &self,
        workspace_id: &str,
        filter: &Filter,
        before_leaf: Option<i64>,
        limit: u64,
    ) -> Result<Vec<Recorded>> {
        store::events::list(self.db.conn(), workspace_id, filter, before_leaf, limit).await
    }

    /// How many events the workspace's log holds.
    pub async fn tree_size(&self, workspace_id: &str) -> Result<u64> {
        let head = store::logs::get(self.db.conn(), workspace_id).await?;
        size_of(head.as_ref())
    }

    /// The events of leaves `[from, to)`, all of them, in leaf order (below the log's size,
    /// every leaf has its row; a missing one was deleted by hand and is an error here).
    pub async fn leaves(&self, workspace_id: &str, from: u64, to: u64) -> Result<Vec<Recorded>> {
        let rows =
            store::events::leaf_range(self.db.conn(), workspace_id, as_i64(from), as_i64(to))
                .await?;
        let events = rows
            .into_iter()
            .map(store::events::read)
            .collect::<Result<Vec<_>>>()?;
        if let Some(gap) = (from..to)
            .zip(events.iter().map(|e| e.leaf_index))
            .find(|(expected, found)| as_i64(*expected) != *found)
            .map(|(expected, _)| expected)
            .or_else(|| (events.len() as u64 != to - from).then_some(from + events.len() as u64))
        {
            // Retention may have pruned it since the caller learnt of it.
            let head = store::logs::get(self.db.conn(), workspace_id).await?;
            let min_index = head.map_or(0, |head| u64::try_from(head.min_index).unwrap_or(0));
            if gap < min_index {
                return Err(AuditError::events_pruned(min_index));
            }
            return Err(AuditError::Internal(format!(
                "log {workspace_id} has no event row at leaf {gap}; VerifyLog names what happened"
            )));
        }
        Ok(events)
    }

    pub async fn get(&self, workspace_id: &str, event_id: Uuid) -> Result<Recorded> {
        store::events::by_id(self.db.conn(), workspace_id, event_id)
            .await?
            .ok_or_else(|| AuditError::event_not_found(event_id))
    }

    /// The latest signed checkpoint; before the first event, a freshly signed one of the
    /// empty tree (signing is deterministic, so every replica answers the same note).
    pub async fn checkpoint(&self, workspace_id: &str) -> Result<CheckpointView> {
        match store::checkpoints::latest(self.db.conn(), workspace_id).await? {
            Some(row) => Ok(CheckpointView {
                workspace_id: row.workspace_id,
                origin: self.key.origin(workspace_id),
                tree_size: u64::try_from(row.tree_size).unwrap_or(0),
                root: Hash::try_from(row.root_hash.as_slice()).map_err(|_| {
                    AuditError::Internal(format!(
                        "checkpoint of {workspace_id} has a malformed root"
                    ))
                })?,
                signed_note: row.signed_note,
            }),
            None => Ok(CheckpointView {
                workspace_id: workspace_id.to_owned(),
                origin: self.key.origin(workspace_id),
                tree_size: 0,
                root: EMPTY_ROOT,
                signed_note: self.key.sign_checkpoint(workspace_id, 0, &EMPTY_ROOT),
            }),
        }
    }

    pub fn log_key(&self, workspace_id: &str) -> LogKeyView {
        let name = self.key.origin(workspace_id);
        LogKeyView {
            verifier_key: self.key.verifier_key(workspace_id),
            public_key: self.key.public_key(),
            key_id: self.key.key_id(&name),
            name,
        }
    }

    /// The tree size a proof is asked of: `asked`, or the current size; never beyond it.
    async fn proof_size(&self, workspace_id: &str, asked: Option<u64>) -> Result<u64> {
        let head = store::logs::get(self.db.conn(), workspace_id).await?;
        let size = size_of(head.as_ref())?;
        match asked {
            None => Ok(size),
            Some(asked) if asked > size => Err(AuditError::tree_size_ahead(asked, size)),
            Some(asked) => Ok(asked),
        }
    }

    pub async fn consistency(
        &self,
        workspace_id: &str,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<Consistency> {
        let asked = new_size;
        let new_size = self.proof_size(workspace_id, asked).await?;
        if old_size > new_size {
            return Err(match asked {
                None => AuditError::tree_size_ahead(old_size, new_size),
                Some(_) => {
                    FieldViolation::new("old_size", format!("must be at most new_size, {new_size}"))
                        .into()
                }
            });
        }
        let missing = |what: String| AuditError::Internal(format!("log {workspace_id}: {what}"));
        let indexes: BTreeSet<u64> = tree::consistency_indexes(old_size, new_size)
            .map_err(missing)?
            .into_iter()
            .chain(tree::root_indexes(old_size))
            .chain(tree::root_indexes(new_size))
            .collect();
        let indexes: Vec<u64> = indexes.into_iter().collect();
        let stored = self
            .upper_hashes
            .read(self.db.conn(), workspace_id, &indexes)
            .await?;
        Ok(Consistency {
            old_size,
            new_size,
            path: tree::consistency_proof(old_size, new_size, &stored).map_err(missing)?,
            old_root: tree::root(old_size, &stored).map_err(missing)?,
            new_root: tree::root(new_size, &stored).map_err(missing)?,
        })
    }
}
