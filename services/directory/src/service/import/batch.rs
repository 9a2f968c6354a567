//! One batch of import rows, decided in memory and written set-based.
//!
//! `Batch::load` reads, in a few queries, every user a row of the batch may match or clash
//! with and every customer the rows or those users name. Each row is then decided against
//! that view by the upsert rules (`upsert::decision`, which single upserts use too), and its
//! effects go into the view at once, so a later row sees an earlier one exactly as it would
//! see it in the database. A row that fails does so before anything of it is recorded, so no
//! savepoints are needed. The changes are written by `flush` through the batch's
//! [`BulkTxn`]: set-based statements on PostgreSQL, multi-row ones on SQLite; every update is
//! version-checked, so a concurrent writer makes the batch retry instead of being overwritten.
//!
//! Write order: a flush writes each touched user once, from its stored state to its current
//! one, in any order. That is safe unless a key (external id or e-mail) was given up by one
//! live user and taken by another since the last flush: then the taker's statement could run
//! while the old holder still has the key and hit a unique index. `needs_flush` spots exactly
//! that, and the caller flushes before recording the row, which restores row order there.

use std::collections::{HashMap, HashSet};

use roster_db::outbox::AuditEvent;
use uuid::Uuid;

use super::super::customers::{CustomerChange, CustomerEffect};
use super::super::upsert::decision::{self, Decision, Key, Known, Stored, live_keys};
use super::super::upsert::{UpsertInput, UpsertOutcome};
use super::super::{Actor, Directory};
use crate::domain::UserField;
use crate::domain::values::email_key;
use crate::entity::{customer, end_user};
use crate::error::{DirectoryError, Result};
use crate::store::bulk::{BulkTxn, Changes};

/// Writes not yet sent, keyed by id: the stored state at the last flush (`None`: not in
/// the database yet), in the order the rows first touched them.
struct Pending<K, M> {
    order: Vec<(K, Option<M>)>,
    touched: HashSet<K>,
}

impl<K: Clone + Eq + std::hash::Hash, M> Pending<K, M> {
    fn new() -> Self {
        Self {
            order: Vec::new(),
            touched: HashSet::new(),
        }
    }

    /// Notes that `key` changes; only its first change since the last flush says what the
    /// database holds.
    fn touch(&mut self, key: &K, stored: impl FnOnce() -> Option<M>) {
        if self.touched.insert(key.clone()) {
            self.order.push((key.clone(), stored()));
        }
    }

    fn take(&mut self) -> Vec<(K, Option<M>)> {
        self.touched.clear();
        std::mem::take(&mut self.order)
    }
}

pub(super) struct Batch<'a> {
    directory: &'a Directory,
    actor: &'a Actor,
    workspace_id: &'a str,
    require_customer: bool,
    /// Every user the batch knows, as the rows so far left it.
    users: HashMap<Uuid, end_user::Model>,
    /// Users that held a key at some point; a lookup checks the current value, so entries
    /// go stale harmlessly when a row changes a key.
    by_external_id: HashMap<String, Vec<Uuid>>,
    by_email_key: HashMap<String, Vec<Uuid>>,
    /// The customers the rows name that exist (in the database or created by a row).
    customers: HashMap<String, customer::Model>,
    user_writes: Pending<Uuid, end_user::Model>,
    customer_writes: Pending<String, customer::Model>,
    /// Keys live users gave up since the last flush.
    released: HashSet<Key>,
    events: Vec<AuditEvent>,
    /// Everything the view was read for: another batch writing none of it cannot have
    /// changed what this one decides.
    reads: Keys,
}

/// Users and customers a batch read or wrote, by every key they are found by.
#[derive(Debug, Default)]
pub(super) struct Keys {
    user_ids: HashSet<Uuid>,
    external_ids: HashSet<String>,
    email_keys: HashSet<String>,
    customer_ids: HashSet<String>,
}

impl Keys {
    fn add_user(&mut self, user: &end_user::Model) {
        self.user_ids.insert(user.user_id);
        if !user.external_id.is_empty() {
            self.external_ids.insert(user.external_id.clone());
        }
        if !user.email_key.is_empty() {
            self.email_keys.insert(user.email_key.clone());
        }
    }

    pub(super) fn overlaps(&self, other: &Keys) -> bool {
        fn any<T: Eq + std::hash::Hash>(a: &HashSet<T>, b: &HashSet<T>) -> bool {
            let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
            small.iter().any(|item| large.contains(item))
        }
        any(&self.user_ids, &other.user_ids)
            || any(&self.external_ids, &other.external_ids)
            || any(&self.email_keys, &other.email_keys)
            || any(&self.customer_ids, &other.customer_ids)
    }
}

/// The keys a batch's changes touch, before and after.
pub(super) fn changed_keys(changes: &Changes) -> Keys {
    let mut keys = Keys::default();
    for customer in &changes.new_customers {
        keys.customer_ids.insert(customer.customer_id.clone());
    }
    for (_, customer) in &changes.changed_customers {
        keys.customer_ids.insert(customer.customer_id.clone());
    }
    for user in &changes.new_users {
        keys.add_user(user);
    }
    for (stored, current) in &changes.changed_users {
        keys.add_user(stored);
        keys.add_user(current);
    }
    keys
}

impl<'a> Batch<'a> {
    /// Reads what the rows may touch: the users holding a row's external id or e-mail, and
    /// the customers the rows or those users name. Beyond those users, a second read fetches the live holders of those users' other keys: a row that
    /// gives only an e-mail keeps its match's external id, which another live user may hold
    /// (an undeleted user whose id was reused, say).
    pub(super) async fn load(
        txn: &mut BulkTxn,
        directory: &'a Directory,
        actor: &'a Actor,
        workspace_id: &'a str,
        require_customer: bool,
        inputs: impl Iterator<Item = &UpsertInput>,
    ) -> Result<Batch<'a>> {
        let mut external_ids = HashSet::new();
        let mut email_keys = HashSet::new();
        let mut customer_ids = HashSet::new();
        for input in inputs {
            if let Some(id) = input.values.get(UserField::ExternalId) {
                external_ids.insert(id.to_owned());
            }
            if let Some(email) = input.values.get(UserField::Email) {
                email_keys.insert(email_key(email));
            }
            if let Some(id) = input.values.get(UserField::CustomerId) {
                customer_ids.insert(id.to_owned());
            }
        }
        let mut batch = Batch {
            directory,
            actor,
            workspace_id,
            require_customer,
            users: HashMap::new(),
            by_external_id: HashMap::new(),
            by_email_key: HashMap::new(),
            customers: HashMap::new(),
            user_writes: Pending::new(),
            customer_writes: Pending::new(),
            released: HashSet::new(),
            events: Vec::new(),
            reads: Keys::default(),
        };
        let ids: Vec<String> = external_ids.iter().cloned().collect();
        let emails: Vec<String> = email_keys.iter().cloned().collect();
        let found = txn.users_by_keys(workspace_id, &ids, &emails).await?;
        let mut more_ids = Vec::new();
        let mut more_emails = Vec::new();
        for user in &found {
            // A row that names no customer may still bring its match back into the
            // customer it had, which must then be restored.
            if !user.customer_id.is_empty() {
                customer_ids.insert(user.customer_id.clone());
            }
            if !user.external_id.is_empty() && external_ids.insert(user.external_id.clone()) {
                more_ids.push(user.external_id.clone());
            }
            if !user.email_key.is_empty() && email_keys.insert(user.email_key.clone()) {
                more_emails.push(user.email_key.clone());
            }
        }
        for user in found {
            batch.know(user);
        }
        if !more_ids.is_empty() || !more_emails.is_empty() {
            let found = txn
                .users_by_keys(workspace_id, &more_ids, &more_emails)
                .await?;
            for user in found {
                if !batch.users.contains_key(&user.user_id) {
                    batch.know(user);
                }
            }
        }
        let customer_ids: Vec<String> = customer_ids.into_iter().collect();
        for customer in txn.customers_by_ids(workspace_id, &customer_ids).await? {
            batch
                .customers
                .insert(customer.customer_id.clone(), customer);
        }
        batch.reads = Keys {
            user_ids: batch.users.keys().copied().collect(),
            external_ids,
            email_keys,
            customer_ids: customer_ids.into_iter().collect(),
        };
        Ok(batch)
    }

    /// Puts a user into the view and indexes its current keys.
    fn know(&mut self, user: end_user::Model) {
        let id = user.user_id;
        for (index, key) in [
            (&mut self.by_external_id, &user.external_id),
            (&mut self.by_email_key, &user.email_key),
        ] {
            if key.is_empty() {
                continue;
            }
            let holders = index.entry(key.clone()).or_default();
            if !holders.contains(&id) {
                holders.push(id);
            }
        }
        self.users.insert(id, user);
    }

    /// Decides one row by the upsert rules against the view. An error belongs to the row
    /// (ALREADY_EXISTS, FAILED_PRECONDITION) and leaves the view as it was.
    pub(super) fn decide(&self, input: &UpsertInput, now: i64) -> Result<Decision> {
        let stored = Stored {
            workspace_id: self.workspace_id,
            require_customer: self.require_customer,
            by_identity: None,
            known: self,
        };
        decision::decide(input, stored, Uuid::now_v7(), now)
    }

    /// Whether the row takes a key that another live user gave up since the last flush, so
    /// the writes so far must reach the database first (see the module comment).
    pub(super) fn needs_flush(&self, decision: &Decision) -> bool {
        if decision.outcome == UpsertOutcome::Unchanged || self.released.is_empty() {
            return false;
        }
        let held = decision.before.as_ref().map(live_keys).unwrap_or_default();
        live_keys(&decision.after)
            .iter()
            .any(|key| !held.contains(key) && self.released.contains(key))
    }

    /// Records a decided row in the view, its writes and its audit events; returns its
    /// outcome and what it did to its customer.
    pub(super) fn record(&mut self, decision: Decision) -> (UpsertOutcome, CustomerEffect) {
        self.directory
            .decision_events(self.actor, self.workspace_id, &decision, &mut self.events);
        let Decision {
            before,
            after,
            outcome,
            customer,
            customer_effect,
        } = decision;
        match customer {
            CustomerChange::Keep => {}
            CustomerChange::Create(created) => {
                self.customer_writes.touch(&created.customer_id, || None);
                self.customers.insert(created.customer_id.clone(), created);
            }
            CustomerChange::Update { before, after } => {
                self.customer_writes
                    .touch(&after.customer_id, || Some(before));
                self.customers.insert(after.customer_id.clone(), after);
            }
        }
        if outcome == UpsertOutcome::Unchanged {
            return (outcome, customer_effect);
        }
        if let Some(before) = &before {
            let kept = live_keys(&after);
            self.released.extend(
                live_keys(before)
                    .into_iter()
                    .filter(|key| !kept.contains(key)),
            );
        }
        self.user_writes.touch(&after.user_id, || before);
        self.know(after);
        (outcome, customer_effect)
    }

    /// Writes what the rows recorded since the last flush.
    pub(super) async fn flush(&mut self, txn: &mut BulkTxn) -> Result<()> {
        let changes = self.take_changes(false)?;
        self.released.clear();
        let encoded = txn.encode(changes)?;
        txn.write(encoded).await
    }

    /// Everything not yet written, audit events included, and what the view was read for.
    pub(super) fn into_changes(mut self) -> Result<(Changes, Keys)> {
        let mut changes = self.take_changes(true)?;
        changes.events = std::mem::take(&mut self.events);
        Ok((changes, self.reads))
    }

    /// The writes recorded since the last flush; `last` hands the view's rows over instead of
    /// copying them, since nothing will read the view again.
    fn take_changes(&mut self, last: bool) -> Result<Changes> {
        let (new_customers, changed_customers) = split_writes(
            self.customer_writes.take(),
            &mut self.customers,
            last,
            "customer",
        )?;
        let (new_users, changed_users) =
            split_writes(self.user_writes.take(), &mut self.users, last, "user")?;
        Ok(Changes {
            new_customers,
            changed_customers,
            new_users,
            changed_users,
            events: Vec::new(),
        })
    }
}

/// The view, for the upsert rules: a lookup checks a user's current key, so index entries
/// that went stale when a row changed a key are skipped.
impl Known for Batch<'_> {
    fn holders<'s>(&'s self, key: &Key) -> impl Iterator<Item = &'s end_user::Model> {
        let (index, value, is_email) = match key {
            Key::ExternalId(value) => (&self.by_external_id, value, false),
            Key::Email(value) => (&self.by_email_key, value, true),
        };
        let ids = index.get(value).map(Vec::as_slice).unwrap_or_default();
        let value = value.clone();
        ids.iter()
            .filter_map(|id| self.users.get(id))
            .filter(move |user| {
                let current = if is_email {
                    &user.email_key
                } else {
                    &user.external_id
                };
                *current == value
            })
    }

    fn customer(&self, customer_id: &str) -> Option<&customer::Model> {
        self.customers.get(customer_id)
    }
}

/// Pending writes as rows to insert and `(stored, current)` pairs to update.
#[allow(clippy::type_complexity)]
fn split_writes<K, M>(
    pending: Vec<(K, Option<M>)>,
    current: &mut HashMap<K, M>,
    take: bool,
    what: &str,
) -> Result<(Vec<M>, Vec<(M, M)>)>
where
    K: Eq + std::hash::Hash + std::fmt::Display,
    M: Clone,
{
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    for (key, stored) in pending {
        let now = if take {
            current.remove(&key)
        } else {
            current.get(&key).cloned()
        }
        .ok_or_else(|| DirectoryError::Internal(format!("import lost {what} '{key}'")))?;
        match stored {
            None => inserts.push(now),
            Some(stored) => updates.push((stored, now)),
        }
    }
    Ok((inserts, updates))
}
