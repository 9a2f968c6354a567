//! Retrying writes that lost a race: one policy for every service.
//!
//! A write transaction that hit a serialization failure or deadlock ([`DbError::Conflict`])
//! is run again from the start, on fresh reads; so is a create that collided on a unique
//! index with a concurrent create of the same new thing, when the caller says the retry
//! will see the other row and decide differently (`retry_unique`). After [`MAX_ATTEMPTS`]
//! the error goes to the caller, who answers a conflict as ABORTED.
//!
//! [`in_write_txn!`](crate::in_write_txn) runs a transaction body under this policy;
//! [`insert_atomically`] does the same for creates written in one statement.

use sea_orm::sea_query::InsertStatement;

use crate::{Db, DbError, WriteTxn};

/// Attempts of one write before its conflict reaches the caller. Lost races are rare and
/// a retry usually wins; five bounds the latency a pathological hot row can add.
pub const MAX_ATTEMPTS: u32 = 5;

/// A service's error type, as far as retrying cares: whether it is a database error, and
/// which. `From<DbError>` lets the write's own `?` on database calls produce it.
pub trait RetryableError: From<DbError> {
    fn as_db_error(&self) -> Option<&DbError>;
}

/// Whether an attempt that failed with `error` should run again.
pub fn is_retryable<E: RetryableError>(error: &E, retry_unique: bool) -> bool {
    match error.as_db_error() {
        Some(DbError::Conflict) => true,
        Some(DbError::UniqueViolation { .. }) => retry_unique,
        _ => false,
    }
}

/// Runs a write transaction's body on [`Db::begin_write`]: commits on success, rolls back
/// on error, and runs the body again while the error is retryable under the module's
/// policy. The body is an expression using the transaction `$txn` whose `?` converts into
/// `$error`. A macro rather than a closure-taking function because the body borrows the
/// transaction across awaits.
///
/// ```ignore
/// let user = roster_db::in_write_txn!(db, DirectoryError, retry_unique = false, |txn| {
///     let user = store::users::lock(&*txn, id).await?;
///     store::users::update(&*txn, &user).await?;
///     Ok(user)
/// })?;
/// ```
#[macro_export]
macro_rules! in_write_txn {
    ($db:expr, $error:ty, retry_unique = $retry_unique:expr, |$txn:ident| $body:expr) => {{
        let mut attempt = 1u32;
        loop {
            let $txn = match $db.begin_write().await {
                Ok(txn) => txn,
                Err(error) => break Err(<$error>::from(error)),
            };
            let outcome: ::std::result::Result<_, $error> = async { $body }.await;
            match outcome {
                Ok(value) => match $txn.commit().await {
                    Ok(()) => break Ok(value),
                    Err(error) => {
                        let error = <$error>::from(error);
                        if attempt < $crate::retry::MAX_ATTEMPTS
                            && $crate::retry::is_retryable(&error, $retry_unique)
                        {
                            attempt += 1;
                            continue;
                        }
                        break Err(error);
                    }
                },
                Err(error) => {
                    $crate::retry::roll_back($txn).await;
                    if attempt < $crate::retry::MAX_ATTEMPTS
                        && $crate::retry::is_retryable(&error, $retry_unique)
                    {
                        attempt += 1;
                        continue;
                    }
                    break Err(error);
                }
            }
        }
    }};
}

/// The writes of a create, which reads nothing it writes, through
/// [`Db::insert_atomically`] (one round trip on PostgreSQL), retried under the module's
/// policy. `attempt` builds the new rows with their audit events and is called again, for
/// fresh ids and random values, on every retry. Returns its value and the rows the last
/// insert wrote (none when its `INSERT … SELECT` found nothing to depend on).
pub async fn insert_atomically<T, E: RetryableError>(
    db: &Db,
    retry_unique: bool,
    mut attempt: impl FnMut() -> Result<(T, Vec<InsertStatement>), E>,
) -> Result<(T, u64), E> {
    let mut attempts = 1u32;
    loop {
        let (created, inserts) = attempt()?;
        match db.insert_atomically(inserts).await {
            Ok(written) => return Ok((created, written)),
            Err(error) => {
                let error = E::from(error);
                if attempts < MAX_ATTEMPTS && is_retryable(&error, retry_unique) {
                    attempts += 1;
                    continue;
                }
                return Err(error);
            }
        }
    }
}

/// Rolls back a failed attempt. Its own failure is only logged: the attempt's error is what
/// the caller needs, and a connection that failed to roll back is discarded by the pool.
#[doc(hidden)]
pub async fn roll_back(txn: WriteTxn) {
    if let Err(error) = txn.rollback().await {
        tracing::warn!(%error, "rollback failed");
    }
}

impl RetryableError for DbError {
    fn as_db_error(&self) -> Option<&DbError> {
        Some(self)
    }
}
