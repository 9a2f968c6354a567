//! AppendEvents: a batch recorded in one transaction, each workspace's events at the end of
//! its tree, a signed checkpoint of every tree that grew.

use std::collections::{BTreeMap, HashMap};

use rand::RngCore as _;
use tonic::Code;
use uuid::Uuid;

use crate::domain::event::{NewEvent, Recorded};
use crate::domain::leaf;
use crate::domain::tree::{Frontier, Hash, leaf_stored_index};
use crate::entity::audit_checkpoint;
use crate::error::{AuditError, EVENT_RESOURCE, Result, reason};
use crate::service::Audit;
use crate::store;

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
        let appended =
            roster_db::in_write_txn!(self.db, AuditError, retry_unique = false, |txn| {
                let now = self.clock.now_us();
                let mut answers: Vec<Option<Appended>> = vec![None; events.len()];
                for (workspace_id, positions) in by_workspace {
                    let batch: Vec<&NewEvent> = positions.iter().map(|at| &events[*at]).collect();
                    let appended = self.append_to_log(&*txn, workspace_id, &batch, now).await?;
                    for (at, answer) in positions.iter().zip(appended) {
                        answers[*at] = Some(answer);
                    }
                }
                answers
                    .into_iter()
                    .map(|answer| {
                        answer.ok_or_else(|| {
                            AuditError::Internal("an event of the batch went unanswered".into())
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })?;
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
        let head = store::logs::lock(txn, workspace_id, now).await?;
        let ids: Vec<Uuid> = batch.iter().map(|event| event.event_id).collect();
        let known: HashMap<Uuid, Recorded> = store::events::by_ids(txn, workspace_id, &ids)
            .await?
            .into_iter()
            .map(|recorded| (recorded.event_id, recorded))
            .collect();
        let size = u64::try_from(head.tree_size)
            .map_err(|_| AuditError::Internal(format!("log {workspace_id} has a negative size")))?;
        let mut frontier = self.frontier(txn, workspace_id, size).await?;
        let mut new: Vec<Recorded> = Vec::new();
        let mut hashes: Vec<Hash> = Vec::new();
        let mut answers = Vec::with_capacity(batch.len());
        for event in batch {
            let earlier = known.get(&event.event_id).or_else(|| {
                new.iter()
                    .find(|recorded| recorded.event_id == event.event_id)
            });
            if let Some(recorded) = earlier {
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
                answers.push(Appended {
                    event_id: event.event_id,
                    workspace_id: workspace_id.to_owned(),
                    leaf_index: recorded.leaf_index,
                    already_recorded: true,
                });
                continue;
            }
            let leaf_index = i64::try_from(frontier.size())
                .map_err(|_| AuditError::Internal("leaf index overflow".into()))?;
            let recorded = (*event).clone().record(leaf_index, now, random_salt);
            hashes.extend(frontier.push(leaf::leaf_hash(&recorded)));
            answers.push(Appended {
                event_id: event.event_id,
                workspace_id: workspace_id.to_owned(),
                leaf_index,
                already_recorded: false,
            });
            new.push(recorded);
        }
        if new.is_empty() {
            return Ok(answers);
        }
        store::events::insert(txn, &new).await?;
        store::hashes::insert(txn, workspace_id, leaf_stored_index(size), &hashes).await?;
        let root = frontier.root();
        let tree_size = frontier.size();
        store::checkpoints::insert(
            txn,
            audit_checkpoint::Model {
                workspace_id: workspace_id.to_owned(),
                tree_size: i64::try_from(tree_size).unwrap_or(i64::MAX),
                root_hash: root.to_vec(),
                signed_note: self.key.sign_checkpoint(workspace_id, tree_size, &root),
                created_at: now,
            },
        )
        .await?;
        store::logs::advance(txn, workspace_id, tree_size, &root, now).await?;
        Ok(answers)
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
