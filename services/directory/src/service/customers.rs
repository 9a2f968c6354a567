use roster_db::{DbError, outbox};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::LockType;

use super::{Actor, Directory, RequestKey, check_etag, in_write_txn};
use crate::domain::CustomerStatus;
use crate::domain::changes::customer_changes;
use crate::domain::filter::CustomerFilter;
use crate::domain::order::CustomerOrder;
use crate::entity::customer;
use crate::error::{CUSTOMER_RESOURCE, DirectoryError, Result, reason};
use crate::store;
use roster_core::paging::{Cursor, query_fingerprint};

#[derive(Clone, Debug)]
pub struct NewCustomer {
    pub customer_id: String,
    pub name: String,
    pub domains: Vec<String>,
    pub notes: String,
}

#[derive(Clone, Debug, Default)]
pub struct CustomerPatch {
    pub name: Option<String>,
    pub domains: Option<Vec<String>>,
    pub notes: Option<String>,
}

fn domains_json(domains: &[String]) -> String {
    serde_json::to_string(domains).unwrap_or_else(|_| "[]".to_owned())
}

/// The customer an import row or upsert names when it does not exist yet: named after the
/// row's customer name, or its id when the row has none.
pub(super) fn imported_customer(
    workspace_id: &str,
    customer_id: &str,
    name: Option<&str>,
    now: i64,
) -> customer::Model {
    customer::Model {
        workspace_id: workspace_id.to_owned(),
        customer_id: customer_id.to_owned(),
        name: name.unwrap_or(customer_id).to_owned(),
        status: CustomerStatus::Active.as_str().to_owned(),
        domains: "[]".to_owned(),
        notes: String::new(),
        created_at: now,
        updated_at: now,
        version: 1,
        deleted_at: None,
    }
}

/// What an import path may do to the name of a customer that exists: the vendor's system
/// is the source of truth for names, but changing a customer is `customers.write`'s to
/// grant, and import callers hold only `end_users.write`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CustomerRenames {
    /// Apply a new name (the caller holds `customers.write`).
    Apply,
    /// Refuse the whole call with PERMISSION_DENIED (UpsertUser without the permission).
    #[default]
    Refuse,
    /// Keep the stored name and report it (ImportUsers and widget tokens without it).
    Skip,
}

/// What an import path does to the customer it names, decided against the stored row.
#[derive(Clone, Debug)]
pub(super) enum CustomerChange {
    Create(customer::Model),
    Update {
        before: customer::Model,
        after: customer::Model,
    },
    Keep,
}

/// How an import path left the customer it names, for its response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CustomerEffect {
    pub created: bool,
    pub undeleted: bool,
    pub rename_skipped: bool,
}

/// The one rule for a customer named by UpsertUser, a CSV row or a widget token: created
/// when missing, restored when deleted (as re-importing a deleted user restores it), and
/// renamed when the name differs, as far as `renames` allows.
pub(super) fn customer_change(
    existing: Option<&customer::Model>,
    workspace_id: &str,
    customer_id: &str,
    name: Option<&str>,
    renames: CustomerRenames,
    now: i64,
) -> Result<(CustomerChange, CustomerEffect)> {
    let Some(existing) = existing else {
        let created = imported_customer(workspace_id, customer_id, name, now);
        let effect = CustomerEffect {
            created: true,
            ..CustomerEffect::default()
        };
        return Ok((CustomerChange::Create(created), effect));
    };
    let mut effect = CustomerEffect {
        undeleted: existing.deleted_at.is_some(),
        ..CustomerEffect::default()
    };
    let mut after = existing.clone();
    after.deleted_at = None;
    if let Some(name) = name.filter(|name| *name != existing.name) {
        match renames {
            CustomerRenames::Apply => after.name = name.to_owned(),
            CustomerRenames::Skip => effect.rename_skipped = true,
            CustomerRenames::Refuse => {
                return Err(DirectoryError::permission_denied(
                    reason::PERMISSION_MISSING,
                    format!(
                        "customer '{customer_id}' is named '{}'; renaming it to '{name}' needs the 'customers.write' permission (send its current name, or none, to leave it)",
                        existing.name
                    ),
                ));
            }
        }
    }
    if after == *existing {
        return Ok((CustomerChange::Keep, effect));
    }
    after.version += 1;
    after.updated_at = now;
    let before = existing.clone();
    Ok((CustomerChange::Update { before, after }, effect))
}

/// The audit action of an import path's change to an existing customer.
pub(super) fn customer_update_action(before: &customer::Model) -> &'static str {
    if before.deleted_at.is_some() {
        "customer.undeleted"
    } else {
        "customer.updated"
    }
}

/// Why a user cannot join `customer_id`: it is missing or deleted.
pub(super) fn customer_unusable(
    customer_id: &str,
    found: Option<&customer::Model>,
) -> DirectoryError {
    match found {
        Some(customer) if customer.deleted_at.is_some() => DirectoryError::failed_precondition(
            reason::CUSTOMER_DELETED,
            format!(
                "customer '{customer_id}' is deleted; restore it with UndeleteCustomer before adding users to it"
            ),
        ),
        _ => DirectoryError::failed_precondition(
            reason::CUSTOMER_NOT_FOUND,
            format!("customer '{customer_id}' does not exist in this workspace; create it first"),
        ),
    }
}

fn ensure_live(customer: &customer::Model) -> Result<()> {
    if customer.deleted_at.is_some() {
        return Err(DirectoryError::failed_precondition(
            reason::CUSTOMER_DELETED,
            format!(
                "customer '{}' is deleted; restore it with UndeleteCustomer first",
                customer.customer_id
            ),
        ));
    }
    Ok(())
}

impl Directory {
    pub async fn create_customer(
        &self,
        actor: &Actor,
        workspace_id: &str,
        new: NewCustomer,
        request: Option<RequestKey>,
    ) -> Result<customer::Model> {
        let conn = self.db.conn();
        if let Some(customer_id) = self.replayed(conn, workspace_id, request.as_ref()).await? {
            return self.get_customer(workspace_id, &customer_id).await;
        }
        let now = self.now_us();
        let created = customer::Model {
            workspace_id: workspace_id.to_owned(),
            customer_id: new.customer_id.clone(),
            name: new.name.clone(),
            status: CustomerStatus::Active.as_str().to_owned(),
            domains: domains_json(&new.domains),
            notes: new.notes.clone(),
            created_at: now,
            updated_at: now,
            version: 1,
            deleted_at: None,
        };
        // The primary key decides whether the customer exists; no read first.
        let written = self
            .insert_atomically(false, || {
                let event = self.event(
                    actor,
                    workspace_id,
                    "customer.created",
                    ("customer", created.customer_id.clone()),
                    customer_changes(None, Some(&created)),
                );
                let mut inserts = vec![store::customers::insert_statement(&created)];
                if let Some(key) = &request {
                    inserts.push(self.request_statement(
                        workspace_id,
                        key,
                        created.customer_id.clone(),
                    ));
                }
                inserts.push(outbox::insert_statement(&[event])?);
                Ok(((), inserts))
            })
            .await;
        match written {
            Ok(()) => Ok(created),
            Err(DirectoryError::Database(DbError::UniqueViolation { .. })) => {
                // A retry that raced its first call lost at the request id's key.
                if let Some(customer_id) =
                    self.replayed(conn, workspace_id, request.as_ref()).await?
                {
                    return self.get_customer(workspace_id, &customer_id).await;
                }
                Err(self.customer_exists(workspace_id, &new.customer_id).await)
            }
            Err(other) => Err(other),
        }
    }

    /// ALREADY_EXISTS for a create that met an existing customer; a deleted one is named as
    /// such, since the caller's way out is UndeleteCustomer rather than another id.
    async fn customer_exists(&self, workspace_id: &str, customer_id: &str) -> DirectoryError {
        let deleted = matches!(
            store::customers::get(self.db.conn(), workspace_id, customer_id).await,
            Ok(Some(customer)) if customer.deleted_at.is_some()
        );
        let message = if deleted {
            format!(
                "customer '{customer_id}' exists but is deleted; restore it with UndeleteCustomer"
            )
        } else {
            format!("customer '{customer_id}' already exists in this workspace")
        };
        DirectoryError::already_exists(
            reason::CUSTOMER_ALREADY_EXISTS,
            (CUSTOMER_RESOURCE, customer_id.to_owned()),
            message,
        )
    }

    pub async fn get_customer(
        &self,
        workspace_id: &str,
        customer_id: &str,
    ) -> Result<customer::Model> {
        store::customers::get(self.db.conn(), workspace_id, customer_id)
            .await?
            .ok_or_else(|| DirectoryError::customer_not_found(customer_id))
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn list_customers(
        &self,
        workspace_id: &str,
        filter_text: &str,
        filter: &CustomerFilter,
        order: CustomerOrder,
        show_deleted: bool,
        page_size: u64,
        page_token: &str,
    ) -> Result<(Vec<customer::Model>, String)> {
        // The order in its canonical form: `name`, `NAME asc` and `name asc` page alike.
        let order_text = format!("{:?} {}", order.key, order.descending);
        let show = if show_deleted { "all" } else { "live" };
        let fingerprint = query_fingerprint(&["customers", filter_text, &order_text, show]);
        let cursor = Cursor::decode(page_token, &fingerprint)?;
        let mut customers = store::customers::list(
            self.db.conn(),
            workspace_id,
            filter,
            order,
            show_deleted,
            cursor.as_ref(),
            page_size + 1,
        )
        .await?;
        let next = if customers.len() as u64 > page_size {
            customers.truncate(page_size as usize);
            customers
                .last()
                .map(|last| store::customers::cursor_after(last, order, fingerprint).encode())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((customers, next))
    }

    /// Reads a customer, applies `change` (which may refuse), and writes it with its audit
    /// event, all in one transaction.
    async fn change_customer(
        &self,
        actor: &Actor,
        workspace_id: &str,
        customer_id: &str,
        expected_version: Option<i64>,
        action: &str,
        change: impl Fn(&mut customer::Model, i64) -> Result<()>,
    ) -> Result<customer::Model> {
        in_write_txn!(self, retry_unique = false, |txn| {
            let conn = &*txn;
            let before = store::customers::get(conn, workspace_id, customer_id)
                .await?
                .ok_or_else(|| DirectoryError::customer_not_found(customer_id))?;
            check_etag(expected_version, before.version)?;
            let mut after = before.clone();
            change(&mut after, self.now_us())?;
            self.write_customer_change(conn, actor, action, before, after)
                .await
        })
    }

    /// Writes `after` over `before` (version-checked) with its audit event; nothing when
    /// they are equal.
    async fn write_customer_change<C: ConnectionTrait>(
        &self,
        conn: &C,
        actor: &Actor,
        action: &str,
        before: customer::Model,
        mut after: customer::Model,
    ) -> Result<customer::Model> {
        if after == before {
            return Ok(before);
        }
        after.version += 1;
        after.updated_at = self.now_us();
        if !store::customers::update(conn, &before, &after).await? {
            return Err(DirectoryError::Database(DbError::Conflict));
        }
        let event = self.event(
            actor,
            &before.workspace_id,
            action,
            ("customer", before.customer_id.clone()),
            customer_changes(Some(&before), Some(&after)),
        );
        outbox::append(conn, &[event]).await?;
        Ok(after)
    }

    pub async fn update_customer(
        &self,
        actor: &Actor,
        workspace_id: &str,
        customer_id: &str,
        expected_version: Option<i64>,
        patch: CustomerPatch,
    ) -> Result<customer::Model> {
        self.change_customer(
            actor,
            workspace_id,
            customer_id,
            expected_version,
            "customer.updated",
            |customer, _| {
                ensure_live(customer)?;
                if let Some(name) = &patch.name {
                    customer.name = name.clone();
                }
                if let Some(domains) = &patch.domains {
                    customer.domains = domains_json(domains);
                }
                if let Some(notes) = &patch.notes {
                    customer.notes = notes.clone();
                }
                Ok(())
            },
        )
        .await
    }

    pub async fn set_customer_status(
        &self,
        actor: &Actor,
        workspace_id: &str,
        customer_id: &str,
        expected_version: Option<i64>,
        status: CustomerStatus,
    ) -> Result<customer::Model> {
        self.change_customer(
            actor,
            workspace_id,
            customer_id,
            expected_version,
            "customer.status_changed",
            |customer, _| {
                ensure_live(customer)?;
                customer.status = status.as_str().to_owned();
                Ok(())
            },
        )
        .await
    }

    /// Soft-deletes a customer that has no live users. The row is locked `FOR UPDATE`
    /// before the users are counted, so a create or move of a user into it (which holds a
    /// key-share lock on the live row while it writes) either committed before the count and
    /// is counted, or waits and then finds the customer deleted (`store::customers::WhileLive`).
    pub async fn delete_customer(
        &self,
        actor: &Actor,
        workspace_id: &str,
        customer_id: &str,
        expected_version: Option<i64>,
    ) -> Result<customer::Model> {
        in_write_txn!(self, retry_unique = false, |txn| {
            let conn = &*txn;
            let before =
                store::customers::get_locked(conn, workspace_id, customer_id, LockType::Update)
                    .await?
                    .ok_or_else(|| DirectoryError::customer_not_found(customer_id))?;
            check_etag(expected_version, before.version)?;
            if before.deleted_at.is_some() {
                return Ok(before);
            }
            let members =
                store::users::count_live_in_customer(conn, workspace_id, customer_id).await?;
            if members > 0 {
                return Err(DirectoryError::failed_precondition(
                    reason::CUSTOMER_HAS_USERS,
                    format!(
                        "customer '{customer_id}' still has {members} end-user(s) that are not deleted; delete or move them first"
                    ),
                ));
            }
            let mut after = before.clone();
            after.deleted_at = Some(self.now_us());
            self.write_customer_change(conn, actor, "customer.deleted", before, after)
                .await
        })
    }

    pub async fn undelete_customer(
        &self,
        actor: &Actor,
        workspace_id: &str,
        customer_id: &str,
        expected_version: Option<i64>,
    ) -> Result<customer::Model> {
        self.change_customer(
            actor,
            workspace_id,
            customer_id,
            expected_version,
            "customer.undeleted",
            |customer, _| {
                if customer.deleted_at.take().is_none() {
                    return Err(DirectoryError::failed_precondition(
                        reason::CUSTOMER_STATUS,
                        format!("customer '{customer_id}' is not deleted"),
                    ));
                }
                Ok(())
            },
        )
        .await
    }

    /// The live customer a user is about to join, locked `FOR KEY SHARE` until the
    /// caller's transaction ends (see `delete_customer`); FAILED_PRECONDITION when it is
    /// missing or deleted.
    pub(super) async fn lock_live_customer<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        customer_id: &str,
    ) -> Result<customer::Model> {
        match store::customers::get_locked(conn, workspace_id, customer_id, LockType::KeyShare)
            .await?
        {
            Some(customer) if customer.deleted_at.is_none() => Ok(customer),
            found => Err(customer_unusable(customer_id, found.as_ref())),
        }
    }
}
