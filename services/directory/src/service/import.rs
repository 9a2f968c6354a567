//! ImportUsers on the service side: rows arrive on a channel from the CSV parser thread and
//! are written in batches, one transaction per batch. A batch is decided in memory against
//! the users and customers it may touch, read up front in a few queries (`batch.rs`), and
//! written set-based (`store::bulk`: one statement per kind of write on PostgreSQL), so a
//! row costs no round trip of its own; a bad row fails alone before anything of it is written.
//!
//! Batches commit in file order, so what an import committed is always the file's first
//! rows, and an import that ends early says how many ([`ImportError::committed`]). Nothing
//! writes once the call is gone: a dropped call drops its transactions and aborts its writer
//! tasks, and an upload that breaks off (the client cancels, the stream fails) writes no
//! batch after the break.

mod batch;
mod pipeline;

use tokio::sync::mpsc;

use self::batch::{Batch, Keys, changed_keys};
use super::customers::CustomerRenames;
use super::upsert::{UpsertInput, UpsertOutcome};
use super::{Actor, Directory, MAX_ATTEMPTS, is_retryable};
use crate::domain::UserField;
use crate::domain::user_fields::UserValues;
use crate::error::{DirectoryError, Result};
use crate::import::csv_rows::ImportRecord;
use crate::store::bulk::{BulkTxn, Encoded};
use roster_db::bulk::Locking;

/// Rows per transaction: large enough to amortise the round trips and the commit, small
/// enough that memory stays flat, a batch retry is cheap and SQLite's writer lock is
/// released often.
const BATCH_ROWS: usize = 1000;
/// Failures listed in the response; the count covers all of them.
pub const MAX_LISTED_FAILURES: usize = 1000;

#[derive(Clone, Debug)]
pub enum ImportRow {
    Row {
        line: u64,
        record: Box<ImportRecord>,
    },
    Failed {
        line: u64,
        reason: String,
    },
    /// The file ended here. Rows that stop coming without it (the channel closed) mean the
    /// upload broke off, and the batch under way is not written.
    EndOfFile,
}

/// How an import ended short of the end of its file.
#[derive(Debug)]
pub enum ImportInterruption {
    /// The rows stopped before the end of the file: the upload failed or was cancelled.
    UploadBrokenOff,
    /// Reading or writing a batch failed.
    Failed(DirectoryError),
}

/// An import that ended early, with what it committed before: the counts of the batches
/// that landed, which hold the file's first rows.
#[derive(Debug)]
pub struct ImportError {
    pub cause: ImportInterruption,
    pub committed: ImportCounts,
}

impl ImportError {
    fn failed(error: DirectoryError, committed: ImportCounts) -> Self {
        ImportError {
            cause: ImportInterruption::Failed(error),
            committed,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ImportOptions {
    pub dry_run: bool,
    pub stop_on_error: bool,
    /// Whether rows may rename existing customers ([`CustomerRenames::Apply`]) or leave
    /// their names and count them ([`CustomerRenames::Skip`]).
    pub customer_renames: CustomerRenames,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub created: i64,
    pub updated: i64,
    pub undeleted: i64,
    pub unchanged: i64,
    pub failed: i64,
    pub customers_created: i64,
    pub customers_undeleted: i64,
    pub customer_renames_skipped: i64,
    pub failures: Vec<(u64, String)>,
    pub stopped: bool,
}

impl ImportCounts {
    /// Rows of the file these counts cover: imported, unchanged or failed. Batches commit in
    /// file order, so a committed import covers the file's first this-many rows.
    pub fn rows(&self) -> i64 {
        self.created + self.updated + self.undeleted + self.unchanged + self.failed
    }

    fn fail(&mut self, line: u64, reason: String) {
        self.failed += 1;
        if self.failures.len() < MAX_LISTED_FAILURES {
            self.failures.push((line, reason));
        }
    }

    fn add(&mut self, other: ImportCounts) {
        self.created += other.created;
        self.updated += other.updated;
        self.undeleted += other.undeleted;
        self.unchanged += other.unchanged;
        self.customers_created += other.customers_created;
        self.customers_undeleted += other.customers_undeleted;
        self.customer_renames_skipped += other.customer_renames_skipped;
        self.failed += other.failed;
        for failure in other.failures {
            if self.failures.len() < MAX_LISTED_FAILURES {
                self.failures.push(failure);
            }
        }
        self.stopped |= other.stopped;
    }
}

fn row_input(
    record: ImportRecord,
    customer_renames: CustomerRenames,
) -> std::result::Result<UpsertInput, String> {
    let ImportRecord {
        external_id,
        email,
        name,
        avatar_url,
        customer_id,
        customer_name,
        title,
        first_name,
        last_name,
        phone,
        mobile,
        fax,
        street,
        zip,
        city,
        country,
        notes,
    } = record;
    if external_id.is_none() && email.is_none() {
        return Err("the row has neither a user id nor an e-mail".to_owned());
    }
    let given = [
        (UserField::ExternalId, external_id),
        (UserField::Email, email),
        (UserField::Name, name),
        (UserField::AvatarUrl, avatar_url),
        (UserField::CustomerId, customer_id),
        (UserField::Title, title),
        (UserField::FirstName, first_name),
        (UserField::LastName, last_name),
        (UserField::Phone, phone),
        (UserField::Mobile, mobile),
        (UserField::Fax, fax),
        (UserField::Street, street),
        (UserField::Zip, zip),
        (UserField::City, city),
        (UserField::Country, country),
        (UserField::Notes, notes),
    ];
    let values = UserValues::check(
        "",
        given
            .into_iter()
            .filter_map(|(field, value)| value.map(|v| (field, v))),
        false,
    )
    .map_err(|violations| {
        violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if customer_name.is_some() && values.get(UserField::CustomerId).is_none() {
        return Err("customer_name is set but customer_id is empty".to_owned());
    }
    Ok(UpsertInput {
        identity: None,
        values,
        customer_name,
        customer_renames,
    })
}

/// What every row of a batch is decided with.
#[derive(Clone, Copy)]
struct Scope<'a> {
    actor: &'a Actor,
    workspace_id: &'a str,
    require_customer: bool,
    options: ImportOptions,
}

/// A batch decided but not yet written.
struct Decided {
    writes: Encoded,
    /// What the view was read for, and what the writes change.
    reads: Keys,
    changes: Keys,
    counts: ImportCounts,
}

/// A row checked on its own, once per batch however often the batch is retried.
enum Prepared {
    Row { line: u64, input: UpsertInput },
    Failed { line: u64, reason: String },
}

/// Errors that belong to one row (its data conflicts with stored state); anything else is
/// the database's and fails the batch.
fn is_row_error(error: &DirectoryError) -> bool {
    matches!(
        error.code(),
        tonic::Code::InvalidArgument
            | tonic::Code::AlreadyExists
            | tonic::Code::FailedPrecondition
            | tonic::Code::NotFound
    )
}

fn describe(error: &DirectoryError) -> String {
    match error {
        DirectoryError::Invalid(violations) => violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// What [`next_batch`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// A full batch, or the last one of the file.
    Batch,
    /// The file is through.
    Done,
    /// The rows stopped before the end of the file; the batch gathered so far is dropped.
    BrokenOff,
}

/// Waits for a full batch (or the end of the file): taking whatever the parser has ready
/// would make batches of a few rows whenever the writer is faster than the parser, and a
/// batch costs the same few round trips whatever its size.
async fn next_batch(
    rows: &mut mpsc::Receiver<ImportRow>,
    ended: &mut bool,
    batch: &mut Vec<Prepared>,
    customer_renames: CustomerRenames,
) -> Next {
    let mut received = Vec::with_capacity(BATCH_ROWS);
    while !*ended && batch.len() < BATCH_ROWS {
        if rows
            .recv_many(&mut received, BATCH_ROWS - batch.len())
            .await
            == 0
        {
            batch.clear();
            return Next::BrokenOff;
        }
        for row in received.drain(..) {
            // Checked once per batch, however often the batch is run.
            batch.push(match row {
                ImportRow::Row { line, record } => match row_input(*record, customer_renames) {
                    Ok(input) => Prepared::Row { line, input },
                    Err(reason) => Prepared::Failed { line, reason },
                },
                ImportRow::Failed { line, reason } => Prepared::Failed { line, reason },
                ImportRow::EndOfFile => {
                    *ended = true;
                    continue;
                }
            });
        }
    }
    if batch.is_empty() {
        Next::Done
    } else {
        Next::Batch
    }
}

impl Directory {
    /// Imports the rows in batches until the end of the file. An import that ends early
    /// reports what it committed: every batch before the failure, in file order.
    pub async fn import_rows(
        &self,
        actor: &Actor,
        workspace_id: &str,
        options: ImportOptions,
        rows: &mut mpsc::Receiver<ImportRow>,
    ) -> std::result::Result<ImportCounts, ImportError> {
        if options.dry_run {
            return self.dry_run_rows(actor, workspace_id, options, rows).await;
        }
        if BulkTxn::concurrent_writers(&self.db) {
            return self
                .import_pipelined(actor, workspace_id, options, rows)
                .await;
        }
        let mut totals = ImportCounts::default();
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut ended = false;
        while !totals.stopped {
            match next_batch(rows, &mut ended, &mut batch, options.customer_renames).await {
                Next::Batch => {}
                Next::Done => break,
                Next::BrokenOff => {
                    return Err(ImportError {
                        cause: ImportInterruption::UploadBrokenOff,
                        committed: totals,
                    });
                }
            }
            match self
                .import_batch(actor, workspace_id, options, &batch, Locking::None)
                .await
            {
                Ok(counts) => totals.add(counts),
                Err(error) => return Err(ImportError::failed(error, totals)),
            }
            batch.clear();
        }
        Ok(totals)
    }

    /// A dry run must count what the real run would: a customer or user that row 2 creates
    /// exists for row 3 even when the rows land in different batches. So every batch of a
    /// dry run shares one transaction, rolled back at the end; it commits nothing.
    async fn dry_run_rows(
        &self,
        actor: &Actor,
        workspace_id: &str,
        options: ImportOptions,
        rows: &mut mpsc::Receiver<ImportRow>,
    ) -> std::result::Result<ImportCounts, ImportError> {
        let nothing = |cause| ImportError {
            cause,
            committed: ImportCounts::default(),
        };
        let failed = |error| nothing(ImportInterruption::Failed(error));
        let scope = self
            .scope(actor, workspace_id, options)
            .await
            .map_err(failed)?;
        let mut txn = BulkTxn::begin(&self.db, Locking::None)
            .await
            .map_err(failed)?;
        let mut totals = ImportCounts::default();
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut ended = false;
        let outcome: std::result::Result<(), ImportInterruption> = async {
            while !totals.stopped {
                match next_batch(rows, &mut ended, &mut batch, options.customer_renames).await {
                    Next::Batch => {}
                    Next::Done => break,
                    Next::BrokenOff => return Err(ImportInterruption::UploadBrokenOff),
                }
                let counts = self
                    .import_batch_in(&mut txn, scope, &batch)
                    .await
                    .map_err(ImportInterruption::Failed)?;
                totals.add(counts);
                batch.clear();
            }
            Ok(())
        }
        .await;
        txn.rollback().await.map_err(failed)?;
        outcome.map(|()| totals).map_err(nothing)
    }

    /// What a batch is decided with. The workspace's rule is read before the batch's
    /// transaction begins (from the short-lived rules cache): an import applies the rule as
    /// it stood when each batch started.
    async fn scope<'a>(
        &self,
        actor: &'a Actor,
        workspace_id: &'a str,
        options: ImportOptions,
    ) -> Result<Scope<'a>> {
        let require_customer = self
            .current_rules(self.db.conn(), workspace_id)
            .await?
            .require_customer;
        Ok(Scope {
            actor,
            workspace_id,
            require_customer,
            options,
        })
    }

    async fn import_batch(
        &self,
        actor: &Actor,
        workspace_id: &str,
        options: ImportOptions,
        batch: &[Prepared],
        mut locking: Locking,
    ) -> Result<ImportCounts> {
        // On retry everything is read again, since a conflict means the view was stale, and
        // locked, so the same race is not lost again.
        let mut attempt = 1;
        loop {
            let scope = self.scope(actor, workspace_id, options).await?;
            let mut txn = BulkTxn::begin(&self.db, locking).await?;
            let result = self.import_batch_in(&mut txn, scope, batch).await;
            match result {
                Ok(counts) => {
                    txn.commit().await?;
                    return Ok(counts);
                }
                Err(error) => {
                    if let Err(rollback) = txn.rollback().await {
                        tracing::warn!(error = %rollback, "rollback failed");
                    }
                    if attempt < MAX_ATTEMPTS && is_retryable(&error, true) {
                        attempt += 1;
                        locking = Locking::ForUpdate;
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    async fn import_batch_in(
        &self,
        txn: &mut BulkTxn,
        scope: Scope<'_>,
        rows: &[Prepared],
    ) -> Result<ImportCounts> {
        let decided = self
            .decide_batch(txn, scope, rows, true)
            .await?
            .ok_or_else(|| {
                DirectoryError::Internal("a batch allowed to flush asked to be re-run".to_owned())
            })?;
        txn.write(decided.writes).await?;
        Ok(decided.counts)
    }

    /// Decides every row of a batch against the view read in `txn`. A row that takes a key
    /// another row gave up needs the writes so far in the database first; when `may_flush`
    /// is false the batch then stops and returns `None`, to be run again with it allowed.
    async fn decide_batch(
        &self,
        txn: &mut BulkTxn,
        scope: Scope<'_>,
        rows: &[Prepared],
        may_flush: bool,
    ) -> Result<Option<Decided>> {
        let Scope {
            actor,
            workspace_id,
            require_customer,
            options,
        } = scope;
        let inputs = rows.iter().filter_map(|row| match row {
            Prepared::Row { input, .. } => Some(input),
            Prepared::Failed { .. } => None,
        });
        let mut batch =
            Batch::load(txn, self, actor, workspace_id, require_customer, inputs).await?;
        let mut counts = ImportCounts::default();
        for row in rows {
            let failure = match row {
                Prepared::Failed { line, reason } => (*line, reason.clone()),
                Prepared::Row { line, input } => match batch.decide(input, self.now_us()) {
                    Ok(decision) => {
                        if batch.needs_flush(&decision) {
                            if !may_flush {
                                return Ok(None);
                            }
                            batch.flush(txn).await?;
                        }
                        let (outcome, customer) = batch.record(decision);
                        counts.customers_created += i64::from(customer.created);
                        counts.customers_undeleted += i64::from(customer.undeleted);
                        counts.customer_renames_skipped += i64::from(customer.rename_skipped);
                        match outcome {
                            UpsertOutcome::Created => counts.created += 1,
                            UpsertOutcome::Updated => counts.updated += 1,
                            UpsertOutcome::Undeleted => counts.undeleted += 1,
                            UpsertOutcome::Unchanged => counts.unchanged += 1,
                        }
                        continue;
                    }
                    Err(error) if is_row_error(&error) => (*line, describe(&error)),
                    Err(error) => return Err(error),
                },
            };
            counts.fail(failure.0, failure.1);
            if options.stop_on_error {
                counts.stopped = true;
                break;
            }
        }
        let (changes, reads) = batch.into_changes()?;
        let changed = changed_keys(&changes);
        Ok(Some(Decided {
            writes: txn.encode(changes)?,
            reads,
            changes: changed,
            counts,
        }))
    }
}
