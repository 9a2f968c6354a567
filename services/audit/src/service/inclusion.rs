//! Inclusion proofs, proven in rounds per workspace (`coalesce`): the proofs asked of a
//! log while a round runs are all proven by the next, with three statements (their
//! events, the head, every hash their paths and roots need) whatever their number.
//! A proof costs its own round trips only when it is the only one asked.

use std::collections::{BTreeSet, HashMap};

use roster_core::FieldViolation;
use uuid::Uuid;

use crate::domain::event::Recorded;
use crate::domain::tree::{self, Hash, StoredHashes, as_i64, leaf_stored_index};
use crate::error::{AuditError, Result};
use crate::service::Audit;
use crate::service::read::size_of;
use crate::store;

/// How a proof names its leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafRef {
    Event(Uuid),
    Index(u64),
}

/// One proof asked: of which leaf, in the tree of which size (the current one if none).
#[derive(Clone, Copy, Debug)]
pub struct InclusionAsk {
    leaf: LeafRef,
    tree_size: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    pub event_id: Uuid,
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_data: Vec<u8>,
    pub leaf_hash: Hash,
    pub path: Vec<Hash>,
    pub root: Hash,
}

/// A proof's leaf found and its tree size settled, before the hashes are read.
#[derive(Clone, Copy)]
struct Planned<'a> {
    event: &'a Recorded,
    leaf_index: u64,
    tree_size: u64,
}

impl Audit {
    /// The proof that `leaf` is in `workspace_id`'s tree of `tree_size` leaves (the current
    /// tree if `None`).
    pub async fn inclusion(
        &self,
        workspace_id: &str,
        leaf: LeafRef,
        tree_size: Option<u64>,
    ) -> Result<Inclusion> {
        let audit = self.clone();
        let workspace = workspace_id.to_owned();
        let round = move |asks: Vec<InclusionAsk>| {
            let audit = audit.clone();
            let workspace = workspace.clone();
            async move { audit.prove_round(&workspace, &asks).await }
        };
        self.inclusions
            .call(workspace_id, InclusionAsk { leaf, tree_size }, round)
            .await
            .unwrap_or_else(|| {
                Err(AuditError::Internal(format!(
                    "the round proving inclusions in {workspace_id} ended without an answer"
                )))
            })
    }

    /// One answer per ask: its proof or its refusal. A failed read fails every ask.
    async fn prove_round(
        &self,
        workspace_id: &str,
        asks: &[InclusionAsk],
    ) -> Vec<Result<Inclusion>> {
        match self.prove_all(workspace_id, asks).await {
            Ok(answers) => answers,
            Err(error) => asks.iter().map(|_| Err(error.clone())).collect(),
        }
    }

    async fn prove_all(
        &self,
        workspace_id: &str,
        asks: &[InclusionAsk],
    ) -> Result<Vec<Result<Inclusion>>> {
        let conn = self.db.conn();
        // Events before the head: a head read after an event was seen holds that event.
        let ids: BTreeSet<Uuid> = asks
            .iter()
            .filter_map(|ask| match ask.leaf {
                LeafRef::Event(id) => Some(id),
                LeafRef::Index(_) => None,
            })
            .collect();
        let ids: Vec<Uuid> = ids.into_iter().collect();
        let by_id: HashMap<Uuid, Recorded> = store::events::by_ids(conn, workspace_id, &ids)
            .await?
            .into_iter()
            .map(|event| (event.event_id, event))
            .collect();
        let mut by_index: HashMap<u64, Recorded> = HashMap::new();
        for ask in asks {
            if let LeafRef::Index(index) = ask.leaf
                && !by_index.contains_key(&index)
                && let Some(event) =
                    store::events::at_leaf(conn, workspace_id, as_i64(index)).await?
            {
                by_index.insert(index, event);
            }
        }
        let head = store::logs::get(conn, workspace_id).await?;
        let current = size_of(head.as_ref())?;

        let planned: Vec<Result<Planned>> = asks
            .iter()
            .map(|ask| plan(ask, &by_id, &by_index, current))
            .collect();
        let mut indexes = BTreeSet::new();
        for planned in planned.iter().flatten() {
            indexes.extend(stored_indexes(planned).map_err(AuditError::Internal)?);
        }
        let indexes: Vec<u64> = indexes.into_iter().collect();
        let stored = self.upper_hashes.read(conn, workspace_id, &indexes).await?;
        Ok(planned
            .into_iter()
            .map(|planned| planned.and_then(|planned| prove(workspace_id, &planned, &stored)))
            .collect())
    }
}

/// Finds an ask's leaf and settles its tree size, or refuses it.
fn plan<'a>(
    ask: &InclusionAsk,
    by_id: &'a HashMap<Uuid, Recorded>,
    by_index: &'a HashMap<u64, Recorded>,
    current: u64,
) -> Result<Planned<'a>> {
    let event = match ask.leaf {
        LeafRef::Event(event_id) => by_id
            .get(&event_id)
            .ok_or_else(|| AuditError::event_not_found(event_id))?,
        LeafRef::Index(index) => by_index
            .get(&index)
            .ok_or_else(|| AuditError::event_not_found(format!("at leaf {index}")))?,
    };
    let leaf_index = u64::try_from(event.leaf_index)
        .map_err(|_| AuditError::Internal("negative leaf index".into()))?;
    let tree_size = match ask.tree_size {
        None => current,
        Some(asked) if asked > current => return Err(AuditError::tree_size_ahead(asked, current)),
        Some(asked) => asked,
    };
    if leaf_index >= tree_size {
        return Err(FieldViolation::new(
            "tree_size",
            format!("the event is leaf {leaf_index}; a tree of {tree_size} does not hold it"),
        )
        .into());
    }
    Ok(Planned {
        event,
        leaf_index,
        tree_size,
    })
}

/// The stored hashes a proof reads: its path, its root's subtrees and its leaf's own.
fn stored_indexes(planned: &Planned) -> std::result::Result<Vec<u64>, String> {
    let mut indexes = tree::inclusion_indexes(planned.tree_size, planned.leaf_index)?;
    indexes.extend(tree::root_indexes(planned.tree_size));
    indexes.push(leaf_stored_index(planned.leaf_index));
    Ok(indexes)
}

fn prove(workspace_id: &str, planned: &Planned, stored: &StoredHashes) -> Result<Inclusion> {
    let missing = |what: String| AuditError::Internal(format!("log {workspace_id}: {what}"));
    let Planned {
        event,
        leaf_index,
        tree_size,
    } = *planned;
    Ok(Inclusion {
        event_id: event.event_id,
        leaf_index,
        tree_size,
        leaf_data: crate::domain::leaf::leaf_data(event),
        leaf_hash: *stored
            .0
            .get(&leaf_stored_index(leaf_index))
            .ok_or_else(|| missing(format!("no stored hash of leaf {leaf_index}")))?,
        path: tree::inclusion_proof(tree_size, leaf_index, stored).map_err(missing)?,
        root: tree::root(tree_size, stored).map_err(missing)?,
    })
}
