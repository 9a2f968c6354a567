//! The one import path: every source (UpsertUser, CSV rows, widget tokens, Slack and Teams
//! bridges) is decided by the same rules, [`decision::decide`]. `upsert_in` reads what
//! they look at for one row and writes what they decided; ImportUsers does the same for a
//! batch of rows at once (`import/batch.rs`).

pub(super) mod decision;

use roster_db::outbox;
use sea_orm::{ConnectionTrait, sea_query::LockType};
use uuid::Uuid;

use self::decision::{Decision, Key, Known, Stored};
use super::customers::{CustomerChange, CustomerEffect, CustomerRenames, customer_update_action};
use super::settings::Rules;
use super::users::UserView;
use super::{Actor, Directory, in_write_txn};
use crate::domain::changes::{customer_changes, user_changes};
use crate::domain::user_fields::UserValues;
use crate::domain::values::email_key;
use crate::domain::widget_token::{WidgetTokenError, verify_widget_token};
use crate::domain::{IdentitySource, UserField, UserStatus};
use crate::entity::{customer, end_user};
use crate::error::{DirectoryError, Result, reason};
use crate::store;

#[derive(Clone, Debug, Default)]
pub struct UpsertInput {
    pub identity: Option<(IdentitySource, String)>,
    pub values: UserValues,
    pub customer_name: Option<String>,
    /// Whether `customer_name` may rename an existing customer.
    pub customer_renames: CustomerRenames,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsertOutcome {
    Created,
    Updated,
    Undeleted,
    Unchanged,
}

#[derive(Clone, Debug)]
pub struct UpsertResult {
    pub user: UserView,
    pub outcome: UpsertOutcome,
    pub customer: CustomerEffect,
}

/// A merged user's identities moved to its target; follow the chain (bounded, in case of
/// a cycle that should never exist).
async fn resolve_merged<C: ConnectionTrait>(
    conn: &C,
    mut user: end_user::Model,
) -> Result<end_user::Model> {
    for _ in 0..8 {
        match user.merged_into {
            Some(target) if user.status == UserStatus::Merged.as_str() => {
                user = store::users::require(conn, &user.workspace_id, target).await?;
            }
            _ => break,
        }
    }
    Ok(user)
}

/// An import row or upsert without a customer in a workspace that requires one.
pub(super) fn customer_required() -> DirectoryError {
    DirectoryError::failed_precondition(
        reason::CUSTOMER_REQUIRED,
        "this workspace requires every end-user to belong to a customer; give a customer_id",
    )
}

/// The stored state one upsert is decided against, read in its transaction: every user
/// holding a key the decision looks at, and the customer the user ends up in.
#[derive(Default)]
struct Fetched {
    users: Vec<end_user::Model>,
    customer: Option<customer::Model>,
}

impl Fetched {
    fn add(&mut self, users: Vec<end_user::Model>) {
        for user in users {
            if !self.users.iter().any(|known| known.user_id == user.user_id) {
                self.users.push(user);
            }
        }
    }
}

impl Known for Fetched {
    fn holders<'s>(&'s self, key: &Key) -> impl Iterator<Item = &'s end_user::Model> {
        let key = key.clone();
        self.users.iter().filter(move |user| key.held_by(user))
    }

    fn customer(&self, customer_id: &str) -> Option<&customer::Model> {
        self.customer
            .as_ref()
            .filter(|customer| customer.customer_id == customer_id)
    }
}

/// Users of any status holding `key`.
async fn holders_of<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    key: &Key,
) -> Result<Vec<end_user::Model>> {
    let (column, value) = match key {
        Key::ExternalId(id) => (end_user::Column::ExternalId, id),
        Key::Email(email_key) => (end_user::Column::EmailKey, email_key),
    };
    store::users::holding(conn, workspace_id, column, value).await
}

impl Directory {
    /// The user the upsert's identity names, merges followed, unless erased; and whether
    /// anyone holds the identity already.
    async fn identity_match<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        input: &UpsertInput,
    ) -> Result<(Option<end_user::Model>, bool)> {
        let Some((source, key)) = &input.identity else {
            return Ok((None, false));
        };
        let Some(owner) = store::identities::owner(conn, workspace_id, *source, key).await? else {
            return Ok((None, false));
        };
        let Some(user) = store::users::get(conn, workspace_id, owner).await? else {
            return Ok((None, true));
        };
        let user = resolve_merged(conn, user).await?;
        Ok((
            (user.status != UserStatus::Erased.as_str()).then_some(user),
            true,
        ))
    }

    /// Upserts inside the caller's transaction and collects the audit events: reads what
    /// [`decision::decide`] looks at, then writes what it decided.
    pub(super) async fn upsert_in<C: ConnectionTrait>(
        &self,
        conn: &C,
        actor: &Actor,
        workspace_id: &str,
        settings: &Rules,
        input: &UpsertInput,
        events: &mut Vec<outbox::AuditEvent>,
    ) -> Result<(end_user::Model, UpsertOutcome, CustomerEffect)> {
        let now = self.now_us();
        let (by_identity, identity_held) = self.identity_match(conn, workspace_id, input).await?;
        let mut fetched = Fetched::default();
        let own_keys = [
            input
                .values
                .get(UserField::ExternalId)
                .map(|id| Key::ExternalId(id.to_owned())),
            input
                .values
                .get(UserField::Email)
                .map(|email| Key::Email(email_key(email))),
        ];
        for key in own_keys.iter().flatten() {
            fetched.add(holders_of(conn, workspace_id, key).await?);
        }
        let matched = decision::matched(input, by_identity.as_ref(), &fetched).cloned();
        let (keys, customer_id) = decision::lookups(input, matched.as_ref());
        for key in keys
            .iter()
            .filter(|key| !own_keys.contains(&Some((*key).clone())))
        {
            fetched.add(holders_of(conn, workspace_id, key).await?);
        }
        // Locked so DeleteCustomer cannot slip between this read and the user's write.
        if let Some(customer_id) = customer_id {
            fetched.customer =
                store::customers::get_locked(conn, workspace_id, &customer_id, LockType::KeyShare)
                    .await?;
        }
        let stored = Stored {
            workspace_id,
            require_customer: settings.require_customer,
            by_identity: by_identity.as_ref(),
            known: &fetched,
        };
        let decided = decision::decide(input, stored, Uuid::now_v7(), now)?;
        self.decision_events(actor, workspace_id, &decided, events);
        let Decision {
            before,
            after,
            outcome,
            customer,
            customer_effect,
        } = decided;
        match customer {
            CustomerChange::Keep => {}
            CustomerChange::Create(created) => store::customers::insert(conn, &created).await?,
            CustomerChange::Update { before, after } => {
                if !store::customers::update(conn, &before, &after).await? {
                    return Err(DirectoryError::Database(roster_db::DbError::Conflict));
                }
            }
        }
        // A holder of the user's keys committed since they were read (READ COMMITTED gives
        // each statement a fresh snapshot) hits a unique index: `upsert_user` runs again and
        // then sees it.
        match &before {
            None => store::users::insert(conn, &after).await?,
            Some(before) if outcome != UpsertOutcome::Unchanged => {
                if !store::users::update(conn, before, &after).await? {
                    return Err(DirectoryError::Database(roster_db::DbError::Conflict));
                }
            }
            Some(_) => {}
        }
        if let Some((source, key)) = &input.identity
            && !identity_held
        {
            store::identities::attach(conn, workspace_id, *source, key, after.user_id, now).await?;
        }
        Ok((after, outcome, customer_effect))
    }

    /// The audit events of a decided upsert, customer first, as both the single upsert and
    /// an import batch record them.
    pub(super) fn decision_events(
        &self,
        actor: &Actor,
        workspace_id: &str,
        decision: &Decision,
        events: &mut Vec<outbox::AuditEvent>,
    ) {
        match &decision.customer {
            CustomerChange::Keep => {}
            CustomerChange::Create(created) => events.push(self.event(
                actor,
                workspace_id,
                "customer.created",
                ("customer", created.customer_id.clone()),
                customer_changes(None, Some(created)),
            )),
            CustomerChange::Update { before, after } => events.push(self.event(
                actor,
                workspace_id,
                customer_update_action(before),
                ("customer", after.customer_id.clone()),
                customer_changes(Some(before), Some(after)),
            )),
        }
        let action = match decision.outcome {
            UpsertOutcome::Unchanged => return,
            UpsertOutcome::Created => "end_user.created",
            UpsertOutcome::Updated => "end_user.updated",
            UpsertOutcome::Undeleted => "end_user.undeleted",
        };
        events.push(self.event(
            actor,
            workspace_id,
            action,
            ("end_user", decision.after.user_id.to_string()),
            user_changes(decision.before.as_ref(), &decision.after),
        ));
    }

    pub async fn upsert_user(
        &self,
        actor: &Actor,
        workspace_id: &str,
        input: UpsertInput,
    ) -> Result<UpsertResult> {
        // Concurrent upserts of one new person race to insert; the losers hit a unique index,
        // roll back and retry, and then find the winner's row.
        in_write_txn!(self, retry_unique = true, |txn| {
            let conn = &*txn;
            let settings = self.current_rules(conn, workspace_id).await?;
            let mut events = Vec::new();
            let (user, outcome, customer) = self
                .upsert_in(conn, actor, workspace_id, &settings, &input, &mut events)
                .await?;
            outbox::append(conn, &events).await?;
            let user = self.view(conn, user).await?;
            Ok(UpsertResult {
                user,
                outcome,
                customer,
            })
        })
    }

    /// Verifies a vendor-signed widget token and upserts its customer and user. The token's
    /// customer name renames an existing customer only as far as `customer_renames` allows.
    pub async fn import_widget_token(
        &self,
        actor: &Actor,
        workspace_id: &str,
        token: &str,
        customer_renames: CustomerRenames,
    ) -> Result<UpsertResult> {
        let policy = self.widget_token_policy(workspace_id).await?;
        let identity = verify_widget_token(
            token,
            &policy.keys,
            policy.max_lifetime_seconds,
            self.clock.now_secs(),
        )
        .map_err(|error| match error {
            WidgetTokenError::Malformed | WidgetTokenError::BadClaim { .. } => {
                DirectoryError::invalid("token", error.to_string())
            }
            WidgetTokenError::NoKeys => DirectoryError::FailedPrecondition(error.to_string()),
            other => DirectoryError::Unauthenticated(other.to_string()),
        })?;
        let given = [
            (UserField::ExternalId, identity.user_id.clone()),
            (UserField::Email, identity.user_email.clone()),
            (
                UserField::Name,
                identity.user_name.clone().unwrap_or_default(),
            ),
            (
                UserField::AvatarUrl,
                identity.user_avatar_url.clone().unwrap_or_default(),
            ),
            (UserField::CustomerId, identity.customer_id.clone()),
        ];
        let values = UserValues::check("token.", given, false)?;
        let input = UpsertInput {
            identity: Some((IdentitySource::Widget, identity.user_id)),
            values,
            customer_name: Some(identity.customer_name),
            customer_renames,
        };
        self.upsert_user(actor, workspace_id, input).await
    }
}
