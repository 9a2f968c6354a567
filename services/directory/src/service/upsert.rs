//! The one import path: every source (UpsertUser, CSV rows, widget tokens, Slack and Teams
//! bridges) matches and writes end-users through `upsert_in`.

use roster_db::outbox;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use super::customers::{CustomerEffect, CustomerRenames};
use super::settings::Rules;
use super::users::{UserView, blank_user, undelete};
use super::{Actor, Directory, in_write_txn};
use crate::domain::changes::user_changes;
use crate::domain::user_fields::UserValues;
use crate::domain::widget_token::{WidgetTokenError, verify_widget_token};
use crate::domain::{IdentitySource, UserField, UserStatus};
use crate::entity::end_user;
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

impl Directory {
    /// Finds the user an import means: by identity, else external id, else e-mail.
    async fn match_user<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        input: &UpsertInput,
    ) -> Result<Option<end_user::Model>> {
        if let Some((source, key)) = &input.identity
            && let Some(owner) = store::identities::owner(conn, workspace_id, *source, key).await?
            && let Some(user) = store::users::get(conn, workspace_id, owner).await?
        {
            let user = resolve_merged(conn, user).await?;
            if user.status != UserStatus::Erased.as_str() {
                return Ok(Some(user));
            }
        }
        if let Some(external_id) = input.values.get(UserField::ExternalId)
            && let Some(user) =
                store::users::find_by_external_id(conn, workspace_id, external_id).await?
        {
            return Ok(Some(user));
        }
        if let Some(email) = input.values.get(UserField::Email)
            && let Some(user) = store::users::find_by_email(conn, workspace_id, email).await?
        {
            return Ok(Some(user));
        }
        Ok(None)
    }

    /// Upserts inside the caller's transaction and collects the audit events.
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
        let matched = self.match_user(conn, workspace_id, input).await?;
        let (before, mut after) = match matched {
            Some(user) => (Some(user.clone()), user),
            None => (
                None,
                blank_user(workspace_id, Uuid::now_v7(), UserStatus::Active, now),
            ),
        };
        input.values.apply(&mut after);
        let outcome = match &before {
            None => {
                after.confirmed_at = Some(now);
                UpsertOutcome::Created
            }
            Some(_) if after.status == UserStatus::Deleted.as_str() => {
                undelete(&mut after);
                UpsertOutcome::Undeleted
            }
            Some(before) if *before != after => UpsertOutcome::Updated,
            Some(_) => UpsertOutcome::Unchanged,
        };
        let customer_changed = before
            .as_ref()
            .is_none_or(|b| b.customer_id != after.customer_id);
        // A user that joins a customer, or comes back to one, needs it live; one that stays
        // in its customer keeps it live by being counted by DeleteCustomer.
        let customer = if after.customer_id.is_empty() {
            if settings.require_customer && after.status != UserStatus::Guest.as_str() {
                return Err(customer_required());
            }
            CustomerEffect::default()
        } else if customer_changed
            || input.customer_name.is_some()
            || outcome == UpsertOutcome::Undeleted
        {
            self.ensure_customer(
                conn,
                actor,
                workspace_id,
                &after.customer_id,
                input.customer_name.as_deref(),
                input.customer_renames,
                events,
            )
            .await?
        } else {
            CustomerEffect::default()
        };
        match &before {
            None => {
                // Matching found nobody holding these keys. A holder now committed in the
                // meantime (READ COMMITTED gives each statement a fresh snapshot): another
                // upsert of the same person won, and running again matches its user.
                store::users::ensure_unique_keys(conn, &after)
                    .await
                    .map_err(|error| {
                        if error.code() == tonic::Code::AlreadyExists {
                            DirectoryError::Database(roster_db::DbError::Conflict)
                        } else {
                            error
                        }
                    })?;
                store::users::insert(conn, &after).await?;
                events.push(self.event(
                    actor,
                    workspace_id,
                    "end_user.created",
                    ("end_user", after.user_id.to_string()),
                    user_changes(None, &after),
                ));
            }
            Some(before) if outcome != UpsertOutcome::Unchanged => {
                after.version += 1;
                after.updated_at = now;
                store::users::ensure_unique_keys(conn, &after).await?;
                if !store::users::update(conn, before, &after).await? {
                    return Err(DirectoryError::Database(roster_db::DbError::Conflict));
                }
                let action = if outcome == UpsertOutcome::Undeleted {
                    "end_user.undeleted"
                } else {
                    "end_user.updated"
                };
                events.push(self.event(
                    actor,
                    workspace_id,
                    action,
                    ("end_user", after.user_id.to_string()),
                    user_changes(Some(before), &after),
                ));
            }
            Some(_) => {}
        }
        if let Some((source, key)) = &input.identity
            && store::identities::owner(conn, workspace_id, *source, key)
                .await?
                .is_none()
        {
            store::identities::attach(conn, workspace_id, *source, key, after.user_id, now).await?;
        }
        Ok((after, outcome, customer))
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
