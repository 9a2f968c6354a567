//! ImportUsers on the service side: rows arrive on a channel from the CSV parser thread and
//! are written in batches, one transaction per batch, each row behind a savepoint so a bad
//! row fails alone and leaves nothing behind.

use roster_db::outbox;
use sea_orm::TransactionTrait;
use tokio::sync::mpsc;

use super::upsert::{UpsertInput, UpsertOutcome};
use super::{Actor, Directory, MAX_ATTEMPTS, is_retryable};
use crate::domain::UserField;
use crate::domain::user_fields::UserValues;
use crate::error::{DirectoryError, Result};
use crate::import::csv_rows::ImportRecord;

/// Rows per transaction: large enough to amortise the commit, small enough that a batch
/// retry is cheap and SQLite's writer lock is released often.
const BATCH_ROWS: usize = 500;
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
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ImportOptions {
    pub dry_run: bool,
    pub stop_on_error: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub created: i64,
    pub updated: i64,
    pub undeleted: i64,
    pub unchanged: i64,
    pub failed: i64,
    pub customers_created: i64,
    pub failures: Vec<(u64, String)>,
    pub stopped: bool,
}

impl ImportCounts {
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
        self.failed += other.failed;
        for failure in other.failures {
            if self.failures.len() < MAX_LISTED_FAILURES {
                self.failures.push(failure);
            }
        }
        self.stopped |= other.stopped;
    }
}

fn row_input(record: ImportRecord) -> std::result::Result<UpsertInput, String> {
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
    })
}

/// Errors that belong to one row (its data conflicts with stored state); anything else is
/// the database's and fails the batch.
fn is_row_error(error: &DirectoryError) -> bool {
    matches!(
        error,
        DirectoryError::Invalid(_)
            | DirectoryError::AlreadyExists(_)
            | DirectoryError::FailedPrecondition(_)
            | DirectoryError::NotFound(_)
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

impl Directory {
    pub async fn import_rows(
        &self,
        actor: &Actor,
        workspace_id: &str,
        options: ImportOptions,
        rows: &mut mpsc::Receiver<ImportRow>,
    ) -> Result<ImportCounts> {
        if options.dry_run {
            return self.dry_run_rows(actor, workspace_id, options, rows).await;
        }
        let mut totals = ImportCounts::default();
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        while !totals.stopped && rows.recv_many(&mut batch, BATCH_ROWS).await > 0 {
            let counts = self
                .import_batch(actor, workspace_id, options, &batch)
                .await?;
            totals.add(counts);
            batch.clear();
        }
        Ok(totals)
    }

    /// A dry run must count what the real run would: a customer or user that row 2 creates
    /// exists for row 3 even when the rows land in different batches. So every batch of a
    /// dry run shares one transaction, rolled back at the end.
    async fn dry_run_rows(
        &self,
        actor: &Actor,
        workspace_id: &str,
        options: ImportOptions,
        rows: &mut mpsc::Receiver<ImportRow>,
    ) -> Result<ImportCounts> {
        let txn = self.db.begin_write().await?;
        let mut totals = ImportCounts::default();
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let outcome: Result<()> = async {
            while !totals.stopped && rows.recv_many(&mut batch, BATCH_ROWS).await > 0 {
                let counts = self
                    .import_batch_in(&txn, actor, workspace_id, options, &batch)
                    .await?;
                totals.add(counts);
                batch.clear();
            }
            Ok(())
        }
        .await;
        txn.rollback().await?;
        outcome.map(|()| totals)
    }

    async fn import_batch(
        &self,
        actor: &Actor,
        workspace_id: &str,
        options: ImportOptions,
        batch: &[ImportRow],
    ) -> Result<ImportCounts> {
        let mut attempt = 1;
        loop {
            let txn = self.db.begin_write().await?;
            let result = self
                .import_batch_in(&txn, actor, workspace_id, options, batch)
                .await;
            match result {
                Ok(counts) => {
                    if options.dry_run {
                        txn.rollback().await?;
                    } else {
                        txn.commit().await?;
                    }
                    return Ok(counts);
                }
                Err(error) => {
                    if let Err(rollback) = txn.rollback().await {
                        tracing::warn!(error = %rollback, "rollback failed");
                    }
                    if attempt < MAX_ATTEMPTS && is_retryable(&error, true) {
                        attempt += 1;
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    async fn import_batch_in(
        &self,
        txn: &roster_db::WriteTxn,
        actor: &Actor,
        workspace_id: &str,
        options: ImportOptions,
        batch: &[ImportRow],
    ) -> Result<ImportCounts> {
        let conn = &**txn;
        let settings = self.settings_or_default(conn, workspace_id).await?;
        let mut counts = ImportCounts::default();
        let mut events = Vec::new();
        for row in batch {
            let (line, record) = match row {
                ImportRow::Failed { line, reason } => {
                    counts.fail(*line, reason.clone());
                    if options.stop_on_error {
                        counts.stopped = true;
                        break;
                    }
                    continue;
                }
                ImportRow::Row { line, record } => (*line, (**record).clone()),
            };
            let input = match row_input(record) {
                Ok(input) => input,
                Err(reason) => {
                    counts.fail(line, reason);
                    if options.stop_on_error {
                        counts.stopped = true;
                        break;
                    }
                    continue;
                }
            };
            let savepoint = conn.begin().await.map_err(roster_db::DbError::from)?;
            let mut row_events = Vec::new();
            match self
                .upsert_in(
                    &savepoint,
                    actor,
                    workspace_id,
                    &settings,
                    &input,
                    &mut row_events,
                )
                .await
            {
                Ok((_, outcome, customer_created)) => {
                    savepoint.commit().await.map_err(roster_db::DbError::from)?;
                    events.append(&mut row_events);
                    counts.customers_created += i64::from(customer_created);
                    match outcome {
                        UpsertOutcome::Created => counts.created += 1,
                        UpsertOutcome::Updated => counts.updated += 1,
                        UpsertOutcome::Undeleted => counts.undeleted += 1,
                        UpsertOutcome::Unchanged => counts.unchanged += 1,
                    }
                }
                Err(error) if is_row_error(&error) => {
                    savepoint
                        .rollback()
                        .await
                        .map_err(roster_db::DbError::from)?;
                    counts.fail(line, describe(&error));
                    if options.stop_on_error {
                        counts.stopped = true;
                        break;
                    }
                }
                Err(error) => return Err(error),
            }
        }
        outbox::append(conn, &events).await?;
        Ok(counts)
    }
}
