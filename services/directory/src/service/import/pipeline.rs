//! ImportUsers on PostgreSQL, several batches at a time. While up to [`WRITERS`] batches
//! are being written, each on its own transaction and task, the next one is read and
//! decided on another. Deciding is the service's CPU, writing is the database's, and a
//! commit mostly waits for the WAL to reach the disk; overlapped, the three keep both cores
//! busy instead of taking turns.
//!
//! Batches commit strictly in file order: each writer, once its rows are written, waits
//! for the batch before it to commit, and rolls back untouched if that one did not. So a
//! failure never leaves a later batch committed over an earlier one that is missing.
//!
//! A batch is decided before the batches still in flight have committed, so its view may
//! be stale. It is stale exactly where one of them writes something it read (the same user,
//! external id, e-mail or customer); then it is rolled back and, once everything in flight
//! has landed, run again on fresh reads. That keeps the file's order: a later row always
//! sees what an earlier row did. It also means batches in flight together never touch the
//! same rows or keys, so they never wait on each other's locks. Writers outside the import
//! are caught as always, by version checks and unique indexes, and make the batch retry.
//!
//! A batch that must flush halfway (a key handed from one user to another within it) is not
//! overlapped either: it waits for everything in flight and runs on its own.
//!
//! The writers belong to the call: an import that fails or whose upload breaks off waits
//! for them (so it can say what committed), and a call that is dropped aborts them.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle};

use super::batch::Keys;
use super::{
    BATCH_ROWS, Decided, ImportCounts, ImportError, ImportInterruption, ImportOptions, ImportRow,
    Next, Prepared, next_batch,
};
use crate::error::{DirectoryError, Result};
use crate::service::{Actor, Directory, is_retryable};
use crate::store::bulk::BulkTxn;
use roster_db::bulk::Locking;

/// Batches written at once. Two keep a database on two cores busy; more would only queue
/// for the same cores and hold more of the pool.
const WRITERS: usize = 2;

/// A spawned task that is aborted when its handle is dropped, so a writer never outlives
/// the call that started it.
struct Writer<T>(JoinHandle<T>);

impl<T> Drop for Writer<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for Writer<T> {
    type Output = std::result::Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// A batch being written and committed by its own task.
struct InFlight {
    task: Writer<Result<Landing>>,
    /// What its writes change, to tell whether a later batch's view is still good.
    keys: Keys,
    counts: ImportCounts,
    /// Kept to run the batch again if it did not commit.
    rows: Vec<Prepared>,
}

/// How a batch's writer ended, short of an error.
#[derive(Debug)]
enum Landing {
    Committed,
    /// The batch before it did not commit, so it rolled back without committing.
    Abandoned,
}

/// The import's state between batches.
struct Pipeline<'a> {
    directory: &'a Directory,
    actor: &'a Actor,
    workspace_id: &'a str,
    options: ImportOptions,
    /// Oldest first.
    in_flight: VecDeque<InFlight>,
    /// Fires when the newest batch in flight commits (`true`) or gives up (`false`).
    newest_committed: Option<oneshot::Receiver<bool>>,
    totals: ImportCounts,
}

impl Directory {
    pub(super) async fn import_pipelined(
        &self,
        actor: &Actor,
        workspace_id: &str,
        options: ImportOptions,
        rows: &mut mpsc::Receiver<ImportRow>,
    ) -> std::result::Result<ImportCounts, ImportError> {
        let mut pipeline = Pipeline {
            directory: self,
            actor,
            workspace_id,
            options,
            in_flight: VecDeque::with_capacity(WRITERS),
            newest_committed: None,
            totals: ImportCounts::default(),
        };
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut ended = false;
        let mut stopped = false;
        let outcome = loop {
            if stopped {
                break Ok(());
            }
            match next_batch(rows, &mut ended, &mut batch, options.customer_renames).await {
                Next::Batch => {}
                Next::Done => break Ok(()),
                Next::BrokenOff => break Err(ImportInterruption::UploadBrokenOff),
            }
            match pipeline.push(std::mem::take(&mut batch)).await {
                Ok(stop) => stopped = stop,
                Err(error) => break Err(ImportInterruption::Failed(error)),
            }
        };
        // The batches in flight come before the end or the break in the file, so they land
        // (and are run again if they must). After a failure none is run again: a batch that
        // did not commit then stays out, and every later one with it.
        let outcome = match outcome {
            Ok(()) | Err(ImportInterruption::UploadBrokenOff) => match pipeline.drain().await {
                Ok(()) => outcome,
                Err(error) => Err(ImportInterruption::Failed(error)),
            },
            failed => failed,
        };
        pipeline.join().await;
        match outcome {
            Ok(()) => Ok(pipeline.totals),
            Err(cause) => Err(ImportError {
                cause,
                committed: pipeline.totals,
            }),
        }
    }
}

impl Pipeline<'_> {
    /// Decides a batch and sets it writing, or runs it on its own where it cannot overlap.
    /// Returns whether the import stops after it.
    async fn push(&mut self, rows: Vec<Prepared>) -> Result<bool> {
        let planned = self.plan(&rows).await;
        let planned = match planned {
            Ok(planned) => planned,
            Err(error) if is_retryable(&error, true) => None,
            Err(error) => return Err(error),
        };
        // Everything now in flight was in flight while the batch read its view.
        let (txn, decided) = match planned {
            Some((txn, decided))
                if self
                    .in_flight
                    .iter()
                    .all(|flight| !flight.keys.overlaps(&decided.reads)) =>
            {
                (txn, decided)
            }
            stale => {
                return self
                    .run_after_the_rest(stale.map(|(txn, _)| txn), &rows)
                    .await;
            }
        };
        while self.in_flight.len() >= WRITERS {
            if !self.land_oldest().await? {
                // Something before this batch did not commit and was run again, so its
                // view may miss what that run wrote.
                return self.run_after_the_rest(Some(txn), &rows).await;
            }
        }
        let stopped = decided.counts.stopped;
        self.start(txn, decided, rows);
        Ok(stopped)
    }

    /// Drops a stale plan, lands everything in flight, then runs the batch on its own on
    /// fresh reads. Returns whether the import stops after it.
    async fn run_after_the_rest(
        &mut self,
        stale: Option<BulkTxn>,
        rows: &[Prepared],
    ) -> Result<bool> {
        if let Some(txn) = stale
            && let Err(error) = txn.rollback().await
        {
            tracing::warn!(%error, "rollback of a stale import batch failed");
        }
        self.drain().await?;
        let counts = self.run_alone(rows, Locking::None).await?;
        let stopped = counts.stopped;
        self.totals.add(counts);
        Ok(stopped)
    }

    /// Reads and decides a batch on a transaction of its own, without writing: `None` if it
    /// needs to flush halfway and so must run on its own.
    async fn plan(&self, rows: &[Prepared]) -> Result<Option<(BulkTxn, Decided)>> {
        let scope = self
            .directory
            .scope(self.actor, self.workspace_id, self.options)
            .await?;
        let mut txn = BulkTxn::begin(&self.directory.db, Locking::None).await?;
        let decided = self
            .directory
            .decide_batch(&mut txn, scope, rows, false)
            .await;
        match decided {
            Ok(Some(decided)) => Ok(Some((txn, decided))),
            other => {
                if let Err(error) = txn.rollback().await {
                    tracing::warn!(%error, "rollback of an import batch failed");
                }
                other.map(|_| None)
            }
        }
    }

    /// Runs a batch on its own transaction, after everything before it committed. A batch
    /// that lost a race reads with locks, so it cannot lose it again.
    async fn run_alone(&self, rows: &[Prepared], locking: Locking) -> Result<ImportCounts> {
        self.directory
            .import_batch(self.actor, self.workspace_id, self.options, rows, locking)
            .await
    }

    /// Sets a decided batch writing on its own task, committing after the batch before it.
    fn start(&mut self, mut txn: BulkTxn, decided: Decided, rows: Vec<Prepared>) {
        let Decided {
            writes,
            reads: _,
            changes: keys,
            counts,
        } = decided;
        let after = self.newest_committed.take();
        let (committed, newest_committed) = oneshot::channel();
        let task = Writer(tokio::spawn(async move {
            let written = txn.write(writes).await;
            // A dropped sender means the batch before ended without saying: not committed.
            let go_ahead = match after {
                Some(previous) => previous.await.unwrap_or(false),
                None => true,
            };
            let landing = match written {
                Ok(()) if go_ahead => txn.commit().await.map(|()| Landing::Committed),
                written => {
                    if let Err(error) = txn.rollback().await {
                        tracing::warn!(%error, "rollback of an import batch failed");
                    }
                    written.map(|()| Landing::Abandoned)
                }
            };
            // The next batch may be gone already, after a failure of its own.
            let _ = committed.send(matches!(landing, Ok(Landing::Committed)));
            landing
        }));
        self.newest_committed = Some(newest_committed);
        self.in_flight.push_back(InFlight {
            task,
            keys,
            counts,
            rows,
        });
    }

    /// Waits for the oldest batch in flight and counts it. Returns whether it committed as
    /// written; if it did not, every later batch in flight gives up too, since each commits
    /// only after the one before it, and all of them are run again on their own, in order.
    async fn land_oldest(&mut self) -> Result<bool> {
        let Some(flight) = self.in_flight.pop_front() else {
            return Ok(true);
        };
        let (counts, committed) = self.settle(flight).await?;
        self.totals.add(counts);
        if !committed {
            for flight in std::mem::take(&mut self.in_flight) {
                let (counts, _) = self.settle(flight).await?;
                self.totals.add(counts);
            }
        }
        if self.in_flight.is_empty() {
            // The batch the next one would wait for has landed.
            self.newest_committed = None;
        }
        Ok(committed)
    }

    /// Waits for a batch's writer. A batch that did not commit is run again on its own, on
    /// fresh reads, and with locks if it lost a race. Returns its counts and whether it
    /// committed as written.
    async fn settle(&self, flight: InFlight) -> Result<(ImportCounts, bool)> {
        let landing = flight
            .task
            .await
            .map_err(|error| DirectoryError::Internal(format!("import batch writer: {error}")))?;
        match landing {
            Ok(Landing::Committed) => Ok((flight.counts, true)),
            Ok(Landing::Abandoned) => {
                Ok((self.run_alone(&flight.rows, Locking::None).await?, false))
            }
            Err(error) if is_retryable(&error, true) => Ok((
                self.run_alone(&flight.rows, Locking::ForUpdate).await?,
                false,
            )),
            Err(error) => Err(error),
        }
    }

    /// Waits for every writer in flight and counts the batches that committed, running
    /// none again.
    async fn join(&mut self) {
        for flight in std::mem::take(&mut self.in_flight) {
            if let Ok(Ok(Landing::Committed)) = flight.task.await {
                self.totals.add(flight.counts);
            }
        }
        self.newest_committed = None;
    }

    /// Lands everything in flight, oldest first.
    async fn drain(&mut self) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.land_oldest().await?;
        }
        Ok(())
    }
}
