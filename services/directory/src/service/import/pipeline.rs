//! ImportUsers on PostgreSQL, two batches at a time: while one batch is written and
//! committed by its own task, the next is read and decided on its own transaction. Deciding
//! is the service's CPU and writing is the database's, so on two cores they overlap instead
//! of taking turns.
//!
//! The next batch read the database before the previous one committed, so its view may be
//! stale. It is stale exactly where the previous batch wrote something it read (the same
//! user, external id, e-mail or customer); then it is rolled back and run again on fresh
//! reads, after the previous batch committed. That keeps the file's order: a later row
//! always sees what an earlier row did. Writers outside the import are caught as always, by
//! version checks and unique indexes, and make the batch retry.
//!
//! A batch that must flush halfway (a key handed from one user to another within it) is not
//! overlapped: it waits for the previous batch and runs on its own, so no two transactions of
//! the import ever wait on each other's locks.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::batch::Keys;
use super::{
    BATCH_ROWS, Decided, ImportCounts, ImportOptions, ImportRow, Prepared, next_batch, prepare,
};
use crate::error::{DirectoryError, Result};
use crate::service::{Actor, Directory, is_retryable};
use crate::store::bulk::BulkTxn;

/// A batch being written and committed by its own task.
struct InFlight {
    task: JoinHandle<Result<()>>,
    /// What its writes change, to tell whether the next batch's view is still good.
    keys: Keys,
    counts: ImportCounts,
    /// Kept to run the batch again if its commit lost a race.
    rows: Vec<Prepared>,
}

/// How the batch before the one being decided ended.
enum Previous {
    /// Nothing was in flight, or it committed without touching the given keys.
    Committed(Option<Keys>),
    /// It had to be run again, so what it wrote is not known: the next batch starts over.
    Rerun,
}

impl Directory {
    pub(super) async fn import_pipelined(
        &self,
        actor: &Actor,
        workspace_id: &str,
        options: ImportOptions,
        rows: &mut mpsc::Receiver<ImportRow>,
    ) -> Result<ImportCounts> {
        let mut totals = ImportCounts::default();
        let mut in_flight: Option<InFlight> = None;
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut stopped = false;
        while !stopped && next_batch(rows, &mut batch).await {
            let prepared: Vec<Prepared> = batch.drain(..).map(prepare).collect();
            let planned = self
                .plan_batch(actor, workspace_id, options, &prepared)
                .await;
            let previous = match in_flight.take() {
                Some(flight) => {
                    self.land(flight, actor, workspace_id, options, &mut totals)
                        .await?
                }
                None => Previous::Committed(None),
            };
            let planned = match planned {
                Ok(planned) => planned,
                Err(error) if is_retryable(&error, true) => None,
                Err(error) => return Err(error),
            };
            match (planned, previous) {
                (Some((txn, decided)), Previous::Committed(written))
                    if written
                        .as_ref()
                        .is_none_or(|keys| !keys.overlaps(&decided.reads)) =>
                {
                    stopped = decided.counts.stopped;
                    in_flight = Some(start(txn, decided, prepared));
                }
                (planned, _) => {
                    if let Some((txn, _)) = planned
                        && let Err(error) = txn.rollback().await
                    {
                        tracing::warn!(%error, "rollback of a stale import batch failed");
                    }
                    let counts = self
                        .import_batch(actor, workspace_id, options, &prepared)
                        .await?;
                    stopped = counts.stopped;
                    totals.add(counts);
                }
            }
        }
        if let Some(flight) = in_flight {
            self.land(flight, actor, workspace_id, options, &mut totals)
                .await?;
        }
        Ok(totals)
    }

    /// Reads and decides a batch on a transaction of its own, without writing: `None` if it
    /// needs to flush halfway and so must run on its own.
    async fn plan_batch(
        &self,
        actor: &Actor,
        workspace_id: &str,
        options: ImportOptions,
        rows: &[Prepared],
    ) -> Result<Option<(BulkTxn, Decided)>> {
        let scope = self.scope(actor, workspace_id, options).await?;
        let mut txn = BulkTxn::begin(&self.db).await?;
        let decided = self.decide_batch(&mut txn, scope, rows, false).await;
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

    /// Waits for a batch in flight; if its commit lost a race, runs it again on its own.
    async fn land(
        &self,
        flight: InFlight,
        actor: &Actor,
        workspace_id: &str,
        options: ImportOptions,
        totals: &mut ImportCounts,
    ) -> Result<Previous> {
        let InFlight {
            task,
            keys,
            counts,
            rows,
        } = flight;
        let outcome = task
            .await
            .map_err(|error| DirectoryError::Internal(format!("import batch writer: {error}")))?;
        match outcome {
            Ok(()) => {
                totals.add(counts);
                Ok(Previous::Committed(Some(keys)))
            }
            Err(error) if is_retryable(&error, true) => {
                let counts = self
                    .import_batch(actor, workspace_id, options, &rows)
                    .await?;
                totals.add(counts);
                Ok(Previous::Rerun)
            }
            Err(error) => Err(error),
        }
    }
}

/// Writes and commits a decided batch on its own task.
fn start(mut txn: BulkTxn, decided: Decided, rows: Vec<Prepared>) -> InFlight {
    let Decided {
        writes,
        reads: _,
        changes: keys,
        counts,
    } = decided;
    let task = tokio::spawn(async move {
        match txn.write(writes).await {
            Ok(()) => txn.commit().await,
            Err(error) => {
                if let Err(rollback) = txn.rollback().await {
                    tracing::warn!(error = %rollback, "rollback of an import batch failed");
                }
                Err(error)
            }
        }
    });
    InFlight {
        task,
        keys,
        counts,
        rows,
    }
}
