//! VerifyLog: the tree recomputed from the rows, in leaf order, against what was stored and
//! signed.
//!
//! Each row's leaf is rebuilt from its columns and its personal values checked against their
//! commitments; the leaf's hash and every subtree hash it completes must equal the stored
//! hashes at their indexes; the rebuilt root at the latest checkpoint's size must equal the
//! checkpoint's, whose signature must verify with the log key. So a row changed by hand is
//! named by its leaf (its hash no longer matches), a deleted row by the gap it leaves, a
//! moved row by the position it now claims, and hashes rewritten to match changed rows by
//! the signed root they can no longer produce.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::domain::leaf;
use crate::domain::tree::{Frontier, as_i64, leaf_stored_index};
use crate::error::Result;
use crate::service::Audit;
use crate::service::read::CheckpointView;
use crate::store;

/// Events read per query.
const PAGE: u64 = 5000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    EventChanged,
    EventMissing,
    ValueChanged,
    TreeHashChanged,
    CheckpointMismatch,
    EventUnreadable,
}

/// The first thing that did not match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub leaf_index: u64,
    pub event_id: Option<Uuid>,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub tree_size: u64,
    pub events_checked: u64,
    pub checkpoint: Option<CheckpointView>,
    pub problem: Option<Problem>,
}

fn problem(
    kind: ProblemKind,
    leaf_index: u64,
    event_id: Option<Uuid>,
    message: impl Into<String>,
) -> Option<Problem> {
    Some(Problem {
        kind,
        leaf_index,
        event_id,
        message: message.into(),
    })
}

impl Audit {
    pub async fn verify(&self, workspace_id: &str) -> Result<Verification> {
        let conn = self.db.conn();
        let Some(head) = store::logs::get(conn, workspace_id).await? else {
            return Ok(Verification {
                tree_size: 0,
                events_checked: 0,
                checkpoint: None,
                problem: None,
            });
        };
        let size = u64::try_from(head.tree_size).unwrap_or(0);
        let checkpoint = match store::checkpoints::latest(conn, workspace_id).await? {
            Some(_) => Some(self.checkpoint(workspace_id).await?),
            None => None,
        };
        let mut verification = Verification {
            tree_size: size,
            events_checked: 0,
            checkpoint: checkpoint.clone(),
            problem: None,
        };
        let signed = match &checkpoint {
            None if size > 0 => {
                verification.problem = problem(
                    ProblemKind::CheckpointMismatch,
                    0,
                    None,
                    format!("the log holds {size} events but no signed checkpoint"),
                );
                return Ok(verification);
            }
            None => None,
            Some(view) => match self.key.open_checkpoint(workspace_id, &view.signed_note) {
                Ok(body) if body.tree_size == view.tree_size && body.root == view.root => {
                    Some(body)
                }
                Ok(_) => {
                    verification.problem = problem(
                        ProblemKind::CheckpointMismatch,
                        view.tree_size.saturating_sub(1),
                        None,
                        "the stored checkpoint's size or root differs from its signed note",
                    );
                    return Ok(verification);
                }
                Err(why) => {
                    verification.problem = problem(
                        ProblemKind::CheckpointMismatch,
                        view.tree_size.saturating_sub(1),
                        None,
                        format!("the latest checkpoint does not verify: {why}"),
                    );
                    return Ok(verification);
                }
            },
        };
        if let Some(signed) = &signed
            && signed.tree_size > size
        {
            verification.problem = problem(
                ProblemKind::EventMissing,
                size,
                None,
                format!(
                    "the log holds {size} events but signed a checkpoint of {}: events at the end were removed",
                    signed.tree_size
                ),
            );
            return Ok(verification);
        }
        let min_index = u64::try_from(head.min_index).unwrap_or(0).min(size);
        let mut frontier = self.frontier(conn, workspace_id, min_index).await?;
        let mut ahead = ReadAhead::new(conn, &self.verify_reads, workspace_id, min_index, size);
        while let Some(reading) = ahead.next_page() {
            let page = reading.await.map_err(|e| {
                crate::error::AuditError::Internal(format!("reading a page of the log: {e}"))
            })??;
            let (from, to) = (page.from, page.to);
            let (rows, stored) = (page.rows, page.stored);
            let mut expected = from;
            for row in rows {
                let at = u64::try_from(row.leaf_index).unwrap_or(u64::MAX);
                if at != expected {
                    verification.problem = problem(
                        ProblemKind::EventMissing,
                        expected,
                        None,
                        format!(
                            "no event row at leaf {expected} (the next row is leaf {at}, event {}): deleted by hand",
                            row.event_id
                        ),
                    );
                    break;
                }
                let event_id = row.event_id;
                verification.problem = check_leaf(row, &mut frontier, &stored);
                if verification.problem.is_some() {
                    break;
                }
                expected += 1;
                verification.events_checked += 1;
                if let Some(signed) = &signed
                    && signed.tree_size == expected
                    && frontier.root() != signed.root
                {
                    verification.problem = problem(
                        ProblemKind::CheckpointMismatch,
                        expected - 1,
                        Some(event_id),
                        format!(
                            "the events up to leaf {} produce another root than the signed checkpoint of size {expected}: the tree's hashes were rewritten",
                            expected - 1
                        ),
                    );
                    break;
                }
            }
            if verification.problem.is_none() && expected < to {
                verification.problem = problem(
                    ProblemKind::EventMissing,
                    expected,
                    None,
                    format!("no event row at leaf {expected}: deleted by hand"),
                );
            }
            if verification.problem.is_some() {
                break;
            }
        }
        if verification.problem.is_none() && head.root_hash.as_slice() != frontier.root().as_slice()
        {
            verification.problem = problem(
                ProblemKind::TreeHashChanged,
                size.saturating_sub(1),
                None,
                "the log head's root differs from the root of its events",
            );
        }
        Ok(verification)
    }
}

/// Pages read at once ahead of the one being checked, each on a connection of its own. A
/// read waits on PostgreSQL fetching pages of the table more than on a CPU (VerifyLog of
/// a 10,000,000-event log left 40% of this machine idle with one read ahead), so several
/// overlap.
const READ_AHEAD: usize = 3;

/// Page reads in flight at once on a replica, whatever the number of VerifyLog calls: each
/// holds a pooled connection, and verifications must leave the pool to the other calls.
/// Concurrent calls share them in turn.
pub(super) const READS_IN_FLIGHT: usize = READ_AHEAD + 1;

/// The reads of the pages after the one being checked, in leaf order. Dropping it stops
/// those still running.
struct ReadAhead {
    conn: DatabaseConnection,
    reads: Arc<Semaphore>,
    workspace_id: String,
    next_from: u64,
    size: u64,
    reading: VecDeque<JoinHandle<Result<Page>>>,
}

impl ReadAhead {
    fn new(
        conn: &DatabaseConnection,
        reads: &Arc<Semaphore>,
        workspace_id: &str,
        from: u64,
        size: u64,
    ) -> Self {
        let mut ahead = ReadAhead {
            conn: conn.clone(),
            reads: Arc::clone(reads),
            workspace_id: workspace_id.to_owned(),
            next_from: from,
            size,
            reading: VecDeque::with_capacity(READ_AHEAD + 1),
        };
        ahead.fill();
        ahead
    }

    fn fill(&mut self) {
        while self.reading.len() < READ_AHEAD && self.next_from < self.size {
            self.reading.push_back(read_page(
                &self.conn,
                &self.reads,
                &self.workspace_id,
                self.next_from,
                self.size,
            ));
            self.next_from = (self.next_from + PAGE).min(self.size);
        }
    }

    /// The read of the next page, after starting another in its place.
    fn next_page(&mut self) -> Option<JoinHandle<Result<Page>>> {
        let next = self.reading.pop_front();
        self.fill();
        next
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        for reading in &self.reading {
            reading.abort();
        }
    }
}

/// One page of the log as stored: the event rows of leaves `[from, to)` and the hashes
/// those leaves store.
struct Page {
    from: u64,
    to: u64,
    rows: Vec<crate::entity::audit_event::Model>,
    stored: HashMap<u64, Vec<u8>>,
}

/// Starts reading the page from leaf `from` (at most [`PAGE`] leaves, none at or beyond
/// `size`) on a task of its own.
fn read_page(
    conn: &DatabaseConnection,
    reads: &Arc<Semaphore>,
    workspace_id: &str,
    from: u64,
    size: u64,
) -> JoinHandle<Result<Page>> {
    let (conn, reads, workspace_id) = (conn.clone(), Arc::clone(reads), workspace_id.to_owned());
    tokio::spawn(async move {
        let _turn = reads.acquire_owned().await.map_err(|_| {
            crate::error::AuditError::Internal("the verification reads were closed".into())
        })?;
        let to = (from + PAGE).min(size);
        let rows =
            store::events::leaf_range(&conn, &workspace_id, as_i64(from), as_i64(to)).await?;
        let stored = store::hashes::range(
            &conn,
            &workspace_id,
            leaf_stored_index(from),
            leaf_stored_index(to),
        )
        .await?
        .into_iter()
        .collect();
        Ok(Page {
            from,
            to,
            rows,
            stored,
        })
    })
}

/// Rebuilds one row's leaf, appends it to `frontier` and compares what it produces with
/// the stored hashes.
fn check_leaf(
    row: crate::entity::audit_event::Model,
    frontier: &mut Frontier,
    stored: &HashMap<u64, Vec<u8>>,
) -> Option<Problem> {
    let leaf_index = frontier.size();
    let event_id = row.event_id;
    let event = match store::events::from_row(row) {
        Ok(event) => event,
        Err(why) => {
            return problem(
                ProblemKind::EventUnreadable,
                leaf_index,
                Some(event_id),
                format!("event {event_id} at leaf {leaf_index} cannot be read: {why}"),
            );
        }
    };
    if let Err(why) = leaf::check_values(&event) {
        return problem(
            ProblemKind::ValueChanged,
            leaf_index,
            Some(event_id),
            format!("event {event_id} at leaf {leaf_index}: {why}"),
        );
    }
    let first = leaf_stored_index(leaf_index);
    for (offset, hash) in (0u64..).zip(frontier.push(leaf::leaf_hash(&event))) {
        let index = first + offset;
        let matches = stored
            .get(&index)
            .is_some_and(|kept| kept.as_slice() == hash.as_slice());
        if matches {
            continue;
        }
        return if offset == 0 {
            problem(
                ProblemKind::EventChanged,
                leaf_index,
                Some(event_id),
                format!(
                    "event {event_id} at leaf {leaf_index} does not hash to the leaf the tree recorded: its row was changed by hand, or moved from another position"
                ),
            )
        } else {
            problem(
                ProblemKind::TreeHashChanged,
                leaf_index,
                Some(event_id),
                format!(
                    "the tree's stored hash {index}, completed by leaf {leaf_index}, is missing or differs from the one the events produce"
                ),
            )
        };
    }
    None
}
