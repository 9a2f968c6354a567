//! AppendEvents: a batch recorded in one transaction, each workspace's events at the end of
//! its tree, a signed checkpoint of every tree that grew.

use std::collections::{BTreeMap, HashMap};

use rand::RngCore as _;
use sea_orm::ActiveValue::Set;
use tonic::Code;
use uuid::Uuid;

use crate::domain::event::{NewEvent, Recorded};
use crate::domain::leaf;
use crate::domain::tree::{Frontier, Hash, leaf_stored_index};
use crate::entity::audit_checkpoint;
use crate::error::{AuditError, EVENT_RESOURCE, Result, reason};
use crate::service::Audit;
use crate::store;

/// An append to one log: what became of each event, and the log's frontier after it.
struct Grown {
    answers: Vec<Appended>,
    frontier: Frontier,
}

/// Where an event of a batch stands before its log is locked.
#[derive(Clone, Copy)]
enum Slot {
    /// Recorded before, at this leaf.
    Recorded(i64),
    /// Repeats the new event at this position of the batch's new events.
    Repeated(usize),
    /// The new event at this position.
    New(usize),
}

/// What became of one event of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub event_id: Uuid,
    pub workspace_id: String,
    pub leaf_index: i64,
    /// Recorded before (a resend); nothing was added for it.
    pub already_recorded: bool,
}

impl Audit {
    /// Records `events` (already checked), all or none. Workspaces are locked in name
    /// order, so two batches naming the same workspaces cannot deadlock.
    pub async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>> {
        let mut by_workspace: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (at, event) in events.iter().enumerate() {
            by_workspace
                .entry(event.workspace_id.clone())
                .or_default()
                .push(at);
        }
        let events = &events;
        let by_workspace = &by_workspace;
        // A unique violation is an append of the same new event id that committed between
        // this one's resend check and its lock: run again, the check finds it.
        let (appended, frontiers) =
            roster_db::in_write_txn!(self.db, AuditError, retry_unique = true, |txn| {
                let now = self.clock.now_us();
                let mut answers: Vec<Option<Appended>> = vec![None; events.len()];
                let mut frontiers = Vec::with_capacity(by_workspace.len());
                for (workspace_id, positions) in by_workspace {
                    let batch: Vec<&NewEvent> = positions.iter().map(|at| &events[*at]).collect();
                    let grown = self.grow_log(&*txn, workspace_id, &batch, now).await?;
                    for (at, answer) in positions.iter().zip(grown.answers) {
                        answers[*at] = Some(answer);
                    }
                    frontiers.push((workspace_id.clone(), grown.frontier));
                }
                let answers = answers
                    .into_iter()
                    .map(|answer| {
                        answer.ok_or_else(|| {
                            AuditError::Internal("an event of the batch went unanswered".into())
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok((answers, frontiers))
            })?;
        self.frontiers.keep(frontiers);
        self.notify_appended();
        Ok(appended)
    }

    /// Wakes this replica's event streams after a commit that grew a log.
    pub(crate) fn notify_appended(&self) {
        self.appended
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Appends `batch` to `workspace_id`'s log in the caller's transaction, the log's head
    /// locked first (again, if the caller did: a row lock is held once).
    pub(crate) async fn append_to_log<C: sea_orm::ConnectionTrait>(
        &self,
        txn: &C,
        workspace_id: &str,
        batch: &[&NewEvent],
        now: i64,
    ) -> Result<Vec<Appended>> {
        Ok(self.grow_log(txn, workspace_id, batch, now).await?.answers)
    }

    /// [`Self::append_to_log`], answering the log's new frontier too (to keep once the
    /// transaction commits). Every other append to the log waits while this one holds the
    /// head's lock, so what can be done before taking it is: the resend check (an event
    /// recorded stays recorded) and, from this replica's last append, the frontier.
    async fn grow_log<C: sea_orm::ConnectionTrait>(
        &self,
        txn: &C,
        workspace_id: &str,
        batch: &[&NewEvent],
        now: i64,
    ) -> Result<Grown> {
        let ids: Vec<Uuid> = batch.iter().map(|event| event.event_id).collect();
        let known: HashMap<Uuid, Recorded> = store::events::by_ids(txn, workspace_id, &ids)
            .await?
            .into_iter()
            .map(|recorded| (recorded.event_id, recorded))
            .collect();
        // Everything but the leaf indexes is settled before the lock: a leaf's bytes do not
        // hold its index.
        let mut slots = Vec::with_capacity(batch.len());
        let mut new: Vec<Recorded> = Vec::new();
        let mut leaf_hashes: Vec<Hash> = Vec::new();
        let mut rows = Vec::new();
        let mut first_new: HashMap<Uuid, usize> = HashMap::new();
        for event in batch {
            let earlier = match (known.get(&event.event_id), first_new.get(&event.event_id)) {
                (Some(recorded), _) => Some((recorded, Slot::Recorded(recorded.leaf_index))),
                (None, Some(&at)) => Some((&new[at], Slot::Repeated(at))),
                (None, None) => None,
            };
            if let Some((recorded, slot)) = earlier {
                if let Some(field) = event.differs_from(recorded) {
                    return Err(AuditError::refused(
                        Code::AlreadyExists,
                        reason::EVENT_ID_REUSED,
                        Some((EVENT_RESOURCE, event.event_id.to_string())),
                        format!(
                            "event {} is already recorded in workspace '{workspace_id}' with another {field}; an event id names one event",
                            event.event_id
                        ),
                    ));
                }
                slots.push(slot);
                continue;
            }
            let recorded = (*event).clone().record(0, now, random_salt);
            leaf_hashes.push(leaf::leaf_hash(&recorded));
            rows.push(store::events::to_row(&recorded)?);
            first_new.insert(event.event_id, new.len());
            slots.push(Slot::New(new.len()));
            new.push(recorded);
        }

        let head = store::logs::lock(txn, workspace_id, now).await?;
        let size = u64::try_from(head.tree_size)
            .map_err(|_| AuditError::Internal(format!("log {workspace_id} has a negative size")))?;
        let first_leaf = i64::try_from(size)
            .map_err(|_| AuditError::Internal(format!("log {workspace_id} overflows")))?;
        let mut frontier = match self.frontiers.of_size(workspace_id, size) {
            Some(kept) => kept,
            None => self.frontier(txn, workspace_id, size).await?,
        };
        let mut hashes: Vec<Hash> = Vec::with_capacity(2 * new.len());
        for ((leaf_index, leaf_hash), (recorded, row)) in (first_leaf..)
            .zip(leaf_hashes)
            .zip(new.iter_mut().zip(rows.iter_mut()))
        {
            recorded.leaf_index = leaf_index;
            row.leaf_index = Set(leaf_index);
            hashes.extend(frontier.push(leaf_hash));
        }
        let answers = batch
            .iter()
            .zip(slots)
            .map(|(event, slot)| {
                let (leaf_index, already_recorded) = match slot {
                    Slot::Recorded(leaf_index) => (leaf_index, true),
                    Slot::Repeated(at) => (new[at].leaf_index, true),
                    Slot::New(at) => (new[at].leaf_index, false),
                };
                Appended {
                    event_id: event.event_id,
                    workspace_id: workspace_id.to_owned(),
                    leaf_index,
                    already_recorded,
                }
            })
            .collect();
        if new.is_empty() {
            return Ok(Grown { answers, frontier });
        }
        let root = frontier.root();
        let tree_size = frontier.size();
        let mut writes = store::events::insert_statements(rows);
        writes.extend(store::hashes::insert_statements(
            workspace_id,
            leaf_stored_index(size),
            &hashes,
        ));
        writes.push(store::checkpoints::insert_statement(
            audit_checkpoint::Model {
                workspace_id: workspace_id.to_owned(),
                tree_size: i64::try_from(tree_size).unwrap_or(i64::MAX),
                root_hash: root.to_vec(),
                signed_note: self.key.sign_checkpoint(workspace_id, tree_size, &root),
                created_at: now,
            },
        ));
        writes.push(store::logs::advance_statement(
            workspace_id,
            tree_size,
            &root,
            now,
        ));
        store::insert_all(txn, writes).await?;
        Ok(Grown { answers, frontier })
    }

    /// The right edge of `workspace_id`'s tree of `size` leaves, read from its hashes.
    pub(crate) async fn frontier<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        size: u64,
    ) -> Result<Frontier> {
        let indexes = Frontier::indexes(size);
        let stored = store::hashes::read(conn, workspace_id, &indexes).await?;
        let hashes = indexes
            .iter()
            .map(|index| {
                stored.0.get(index).copied().ok_or_else(|| {
                    AuditError::Internal(format!(
                        "log {workspace_id} lacks its stored hash {index}"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Frontier::from_hashes(size, &hashes).map_err(AuditError::Internal)
    }
}

/// 32 fresh random bytes: the salt of one personal value's commitment.
fn random_salt() -> [u8; 32] {
    let mut salt = [0u8; 32];
    rand::rng().fill_bytes(&mut salt);
    salt
}
