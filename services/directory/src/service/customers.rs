use roster_db::{DbError, outbox};

use super::{Actor, Directory, RequestKey, check_etag, in_write_txn};
use crate::domain::CustomerStatus;
use crate::domain::changes::customer_changes;
use crate::domain::filter::CustomerFilter;
use crate::domain::paging::{Cursor, query_fingerprint};
use crate::entity::customer;
use crate::error::{CUSTOMER_RESOURCE, DirectoryError, Result, reason};
use crate::store;

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
    }
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
                Err(DirectoryError::already_exists(
                    reason::CUSTOMER_ALREADY_EXISTS,
                    (CUSTOMER_RESOURCE, new.customer_id.clone()),
                    format!(
                        "customer '{}' already exists in this workspace",
                        new.customer_id
                    ),
                ))
            }
            Err(other) => Err(other),
        }
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

    pub async fn list_customers(
        &self,
        workspace_id: &str,
        filter_text: &str,
        filter: &CustomerFilter,
        page_size: u64,
        page_token: &str,
    ) -> Result<(Vec<customer::Model>, String)> {
        let fingerprint = query_fingerprint(&["customers", filter_text]);
        let cursor = Cursor::decode(page_token, &fingerprint)?;
        let after = cursor.as_ref().and_then(|cursor| cursor.text.as_deref());
        let mut customers =
            store::customers::list(self.db.conn(), workspace_id, filter, after, page_size + 1)
                .await?;
        let next = if customers.len() as u64 > page_size {
            customers.truncate(page_size as usize);
            customers
                .last()
                .map(|last| {
                    Cursor {
                        text: Some(last.customer_id.clone()),
                        number: None,
                        id: None,
                        query: fingerprint,
                    }
                    .encode()
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((customers, next))
    }

    async fn change_customer(
        &self,
        actor: &Actor,
        workspace_id: &str,
        customer_id: &str,
        expected_version: Option<i64>,
        action: &str,
        change: impl Fn(&mut customer::Model),
    ) -> Result<customer::Model> {
        in_write_txn!(self, retry_unique = false, |txn| {
            let conn = &*txn;
            let before = store::customers::get(conn, workspace_id, customer_id)
                .await?
                .ok_or_else(|| DirectoryError::customer_not_found(customer_id))?;
            check_etag(expected_version, before.version)?;
            let mut after = before.clone();
            change(&mut after);
            if after == before {
                return Ok(before);
            }
            after.version += 1;
            after.updated_at = self.now_us();
            if !store::customers::update(conn, &before, &after).await? {
                return Err(DirectoryError::Database(roster_db::DbError::Conflict));
            }
            let event = self.event(
                actor,
                workspace_id,
                action,
                ("customer", customer_id.to_owned()),
                customer_changes(Some(&before), Some(&after)),
            );
            outbox::append(conn, &[event]).await?;
            Ok(after)
        })
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
            |customer| {
                if let Some(name) = &patch.name {
                    customer.name = name.clone();
                }
                if let Some(domains) = &patch.domains {
                    customer.domains = domains_json(domains);
                }
                if let Some(notes) = &patch.notes {
                    customer.notes = notes.clone();
                }
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
            |customer| {
                customer.status = status.as_str().to_owned();
            },
        )
        .await
    }

    pub async fn delete_customer(
        &self,
        actor: &Actor,
        workspace_id: &str,
        customer_id: &str,
        expected_version: Option<i64>,
    ) -> Result<()> {
        in_write_txn!(self, retry_unique = false, |txn| {
            let conn = &*txn;
            let existing = store::customers::get(conn, workspace_id, customer_id)
                .await?
                .ok_or_else(|| DirectoryError::customer_not_found(customer_id))?;
            check_etag(expected_version, existing.version)?;
            let members =
                store::users::count_live_in_customer(conn, workspace_id, customer_id).await?;
            if members > 0 {
                return Err(DirectoryError::FailedPrecondition(format!(
                    "customer '{customer_id}' still has {members} end-user(s) that are not deleted; delete or move them first"
                )));
            }
            if !store::customers::delete(conn, &existing).await? {
                return Err(DirectoryError::Database(roster_db::DbError::Conflict));
            }
            let event = self.event(
                actor,
                workspace_id,
                "customer.deleted",
                ("customer", customer_id.to_owned()),
                customer_changes(Some(&existing), None),
            );
            outbox::append(conn, &[event]).await?;
            Ok(())
        })
    }

    /// The customer an import row or upsert names: created when missing, renamed when the
    /// import carries a different name (the vendor's system is the source of truth).
    pub(super) async fn ensure_customer<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        actor: &Actor,
        workspace_id: &str,
        customer_id: &str,
        name: Option<&str>,
        events: &mut Vec<outbox::AuditEvent>,
    ) -> Result<(customer::Model, bool)> {
        let now = self.now_us();
        match store::customers::get(conn, workspace_id, customer_id).await? {
            None => {
                let created = imported_customer(workspace_id, customer_id, name, now);
                store::customers::insert(conn, &created).await?;
                events.push(self.event(
                    actor,
                    workspace_id,
                    "customer.created",
                    ("customer", customer_id.to_owned()),
                    customer_changes(None, Some(&created)),
                ));
                Ok((created, true))
            }
            Some(existing) => match name {
                Some(name) if name != existing.name => {
                    let mut renamed = existing.clone();
                    renamed.name = name.to_owned();
                    renamed.version += 1;
                    renamed.updated_at = now;
                    if !store::customers::update(conn, &existing, &renamed).await? {
                        return Err(DirectoryError::Database(roster_db::DbError::Conflict));
                    }
                    events.push(self.event(
                        actor,
                        workspace_id,
                        "customer.updated",
                        ("customer", customer_id.to_owned()),
                        customer_changes(Some(&existing), Some(&renamed)),
                    ));
                    Ok((renamed, false))
                }
                _ => Ok((existing, false)),
            },
        }
    }
}
