//! The transaction of one import batch, with set-based reads and writes on either engine.
//!
//! PostgreSQL gets one statement per kind of write (`roster_db::bulk`): new rows and audit
//! events go in with COPY, changed rows are merged with one version-checked `UPDATE … FROM
//! unnest`, all on one raw connection ([`roster_db::Db::begin_postgres`]). SQLite, which
//! runs in-process, gets multi-row INSERTs and one UPDATE per changed row through SeaORM.
//! Either way a batch costs a handful of statements, not one per row.

use std::collections::HashSet;

use roster_db::bulk::{self, Locking, PgTxn};
use roster_db::outbox::AuditEvent;
use roster_db::{Db, DbError, WriteTxn};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, Iterable, QueryFilter};

use crate::entity::{customer, end_user};
use crate::error::{DirectoryError, Result};

/// SQLite's default limit of bound parameters per statement (PostgreSQL allows 65 535).
const MAX_BIND_PARAMS: usize = 32_766;
/// Values per IN list on SQLite; two lists and the workspace id stay far below the limit.
const KEYS_PER_QUERY: usize = 10_000;

pub enum BulkTxn {
    /// PostgreSQL: set-based statements on a raw sqlx transaction, whose reads lock the
    /// rows they find or not.
    Postgres(PgTxn, Locking),
    /// SQLite: SeaORM statements in the serialised write transaction.
    Orm(WriteTxn),
}

impl BulkTxn {
    /// A batch's transaction. With [`Locking::None`] what it reads is checked at write time,
    /// by versions and unique indexes. [`Locking::ForUpdate`] is for a batch that already lost
    /// a race: under steady traffic on its users, a batch of a thousand rows would otherwise
    /// keep finding one of them changed. (SQLite's write transaction excludes every other
    /// writer anyway.)
    pub async fn begin(db: &Db, locking: Locking) -> Result<BulkTxn> {
        Ok(match db.begin_postgres().await? {
            Some(txn) => BulkTxn::Postgres(txn, locking),
            None => BulkTxn::Orm(db.begin_write().await?),
        })
    }

    /// Whether two batches' transactions can be open at once (PostgreSQL), so the next
    /// batch can be read and decided while the previous one is written. SQLite has one
    /// writer at a time.
    pub fn concurrent_writers(db: &Db) -> bool {
        db.backend() == roster_db::Backend::Postgres
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            BulkTxn::Postgres(txn, _) => txn.commit().await.map_err(DbError::from)?,
            BulkTxn::Orm(txn) => txn.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        match self {
            BulkTxn::Postgres(txn, _) => txn.rollback().await.map_err(DbError::from)?,
            BulkTxn::Orm(txn) => txn.rollback().await?,
        }
        Ok(())
    }

    /// Users of any status whose external id is one of `external_ids` or whose e-mail key
    /// is one of `email_keys`: every candidate a batch may match, and every live holder of
    /// those keys. Each user once, in no particular order.
    pub async fn users_by_keys(
        &mut self,
        workspace_id: &str,
        external_ids: &[String],
        email_keys: &[String],
    ) -> Result<Vec<end_user::Model>> {
        let mut seen = HashSet::new();
        let mut users = Vec::new();
        // One query per key column rather than `external_id … OR email_key …`: with an OR
        // PostgreSQL may walk the whole workspace through an unrelated index, while each
        // list alone is a lookup on (workspace_id, external_id) or (workspace_id, email_key).
        for (column, keys) in [
            (end_user::Column::ExternalId, external_ids),
            (end_user::Column::EmailKey, email_keys),
        ] {
            let found = self
                .select_any::<end_user::Entity>(
                    (end_user::Column::WorkspaceId, workspace_id),
                    column,
                    keys,
                    None,
                )
                .await?;
            // A user can hold an id of one list and an e-mail of another.
            users.extend(found.into_iter().filter(|user| seen.insert(user.user_id)));
        }
        Ok(users)
    }

    /// The customers among `customer_ids` that exist, deleted ones included. On PostgreSQL
    /// they are locked at least `FOR KEY SHARE` until the batch commits, as every write
    /// that puts a user into a customer locks it (`store::customers::WhileLive`), so
    /// DeleteCustomer cannot delete one between this read and the batch's commit. Key-share
    /// locks do not block the UPDATEs of other batches in flight (which rename or restore
    /// customers), so overlapping batches never wait on each other here.
    pub async fn customers_by_ids(
        &mut self,
        workspace_id: &str,
        customer_ids: &[String],
    ) -> Result<Vec<customer::Model>> {
        let locking = match self {
            BulkTxn::Postgres(_, Locking::ForUpdate) => Locking::ForUpdate,
            _ => Locking::KeyShare,
        };
        self.select_any::<customer::Entity>(
            (customer::Column::WorkspaceId, workspace_id),
            customer::Column::CustomerId,
            customer_ids,
            Some(locking),
        )
        .await
    }

    /// Rows of the workspace whose `column` is one of `values`: one statement binding an
    /// array on PostgreSQL, IN lists below SQLite's parameter limit there. `locking`
    /// overrides the transaction's own on PostgreSQL.
    async fn select_any<E: EntityTrait>(
        &mut self,
        (workspace, workspace_id): (E::Column, &str),
        column: E::Column,
        values: &[String],
        locking: Option<Locking>,
    ) -> Result<Vec<E::Model>> {
        match self {
            BulkTxn::Postgres(txn, own) => {
                let locking = locking.unwrap_or(*own);
                Ok(bulk::select_any::<E>(txn, workspace_id, column, values, locking).await?)
            }
            BulkTxn::Orm(txn) => {
                let mut found = Vec::new();
                for chunk in values.chunks(KEYS_PER_QUERY) {
                    found.extend(
                        E::find()
                            .filter(workspace.eq(workspace_id))
                            .filter(column.is_in(chunk.iter().cloned()))
                            .all(&**txn)
                            .await
                            .map_err(DbError::from)?,
                    );
                }
                Ok(found)
            }
        }
    }

    /// Encodes a batch's changes for this engine. On PostgreSQL that renders new rows as
    /// COPY data and changed ones as column arrays, which is most of the service's share of
    /// the work, so a caller can do it before the write it has to wait for.
    pub fn encode(&self, changes: Changes) -> Result<Encoded> {
        Ok(match self {
            BulkTxn::Orm(_) => Encoded::Orm(changes),
            BulkTxn::Postgres(..) => {
                let Changes {
                    new_customers,
                    changed_customers,
                    new_users,
                    changed_users,
                    events,
                } = changes;
                let mut customers = bulk::CopyRows::new();
                for customer in new_customers {
                    customers.push_model::<customer::Entity>(customer)?;
                }
                let mut users = bulk::CopyRows::new();
                for user in new_users {
                    users.push_model::<end_user::Entity>(user)?;
                }
                Encoded::Postgres {
                    changed_customers: bulk::versioned_rows::<customer::Entity>(
                        changed_customers
                            .into_iter()
                            .map(|(stored, current)| (stored.version, current)),
                    )?,
                    new_customers: customers,
                    changed_users: bulk::versioned_rows::<end_user::Entity>(
                        changed_users
                            .into_iter()
                            .map(|(stored, current)| (stored.version, current)),
                    )?,
                    new_users: users,
                    events: roster_db::outbox::bulk_rows(events)?,
                }
            }
        })
    }

    /// Writes encoded changes: changed rows before new ones, so a key a changed row gave up
    /// is free by the time a new row takes it, then the audit events. Every update checks
    /// the version the row was read at; if any row moved on meanwhile this fails with
    /// [`DbError::Conflict`], so the batch is run again from fresh reads.
    pub async fn write(&mut self, encoded: Encoded) -> Result<()> {
        match (self, encoded) {
            (
                BulkTxn::Postgres(txn, _),
                Encoded::Postgres {
                    changed_customers,
                    new_customers,
                    changed_users,
                    new_users,
                    events,
                },
            ) => {
                let expected = changed_customers.rows();
                let column = customer::Column::Version;
                all_updated(
                    bulk::update_models::<customer::Entity>(txn, column, changed_customers).await?,
                    expected,
                )?;
                bulk::insert_models::<customer::Entity>(txn, new_customers).await?;
                let expected = changed_users.rows();
                let column = end_user::Column::Version;
                all_updated(
                    bulk::update_models::<end_user::Entity>(txn, column, changed_users).await?,
                    expected,
                )?;
                bulk::insert_models::<end_user::Entity>(txn, new_users).await?;
                if events.rows() > 0 {
                    roster_db::outbox::bulk_append(txn, events).await?;
                }
            }
            (BulkTxn::Orm(txn), Encoded::Orm(changes)) => {
                let Changes {
                    new_customers,
                    changed_customers,
                    new_users,
                    changed_users,
                    events,
                } = changes;
                for (stored, current) in &changed_customers {
                    if !super::customers::update(&**txn, stored, current).await? {
                        return Err(DbError::Conflict.into());
                    }
                }
                insert_many::<customer::Entity>(txn, new_customers).await?;
                for (stored, current) in &changed_users {
                    if !super::users::update(&**txn, stored, current).await? {
                        return Err(DbError::Conflict.into());
                    }
                }
                insert_many::<end_user::Entity>(txn, new_users).await?;
                roster_db::outbox::append(&**txn, &events).await?;
            }
            _ => {
                return Err(DirectoryError::Internal(
                    "changes encoded for another database engine".to_owned(),
                ));
            }
        }
        Ok(())
    }
}

/// What one batch changes, as models: the input of [`BulkTxn::encode`].
#[derive(Debug, Default)]
pub struct Changes {
    pub new_customers: Vec<customer::Model>,
    /// `(as read, as it is to be written)`.
    pub changed_customers: Vec<(customer::Model, customer::Model)>,
    pub new_users: Vec<end_user::Model>,
    pub changed_users: Vec<(end_user::Model, end_user::Model)>,
    pub events: Vec<AuditEvent>,
}

/// [`Changes`] ready for [`BulkTxn::write`] on the engine that encoded them.
pub enum Encoded {
    Postgres {
        changed_customers: bulk::Columns,
        new_customers: bulk::CopyRows,
        changed_users: bulk::Columns,
        new_users: bulk::CopyRows,
        events: bulk::CopyRows,
    },
    Orm(Changes),
}

/// Multi-row INSERTs through SeaORM, chunked below SQLite's parameter limit.
async fn insert_many<E>(txn: &WriteTxn, models: Vec<E::Model>) -> Result<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let per_statement = (MAX_BIND_PARAMS / E::Column::iter().count()).max(1);
    let mut models = models.into_iter().peekable();
    while models.peek().is_some() {
        let chunk: Vec<E::ActiveModel> = models
            .by_ref()
            .take(per_statement)
            .map(|model| model.into_active_model().reset_all())
            .collect();
        E::insert_many(chunk)
            .exec_without_returning(&**txn)
            .await
            .map_err(DbError::from)?;
    }
    Ok(())
}

/// A set-based update touched fewer rows than it was given: another writer changed one of
/// them since the batch read it.
fn all_updated(updated: u64, given: usize) -> Result<()> {
    if updated == given as u64 {
        Ok(())
    } else {
        Err(DbError::Conflict.into())
    }
}
