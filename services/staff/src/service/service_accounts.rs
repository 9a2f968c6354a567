//! Service accounts for internal callers, and the client-credentials exchange that turns
//! one into an access token.
//!
//! The client secret is 256 random bits stored as SHA-256 (see `domain::secret`), so
//! issuing a token costs a primary-key read, a digest and a signature: no slow hash, which
//! would buy nothing against a secret nobody can guess.

use std::collections::BTreeMap;

use roster_auth::{ALL_WORKSPACES, PrincipalKind, WorkspaceAccess};
use roster_core::etag::is_current;
use roster_core::{Actor, RequestContext};
use roster_db::{in_write_txn, outbox};
use serde_json::json;
use tonic::Code;
use uuid::Uuid;

use super::tokens::AccessToken;
use super::{Staff, change};
use crate::domain::secret;
use crate::domain::service_account::{ClientId, SERVICE_ROLE, ServiceAccountStatus};
use crate::entity::service_account;
use crate::error::{Result, StaffError, reason};
use crate::store;

pub const SERVICE_ACCOUNT_RESOURCE: &str = "roster.staff.v1.ServiceAccount";

/// A checked CreateServiceAccount.
#[derive(Clone, Debug)]
pub struct NewServiceAccount {
    pub name: String,
    pub description: String,
    /// Sorted ids, or `["*"]`.
    pub workspaces: Vec<String>,
    /// Sorted catalogue names.
    pub permissions: Vec<String>,
}

/// An account with the secret just made for it (shown once).
#[derive(Clone, Debug)]
pub struct WithSecret {
    pub account: service_account::Model,
    pub client_secret: String,
}

fn not_found(id: Uuid) -> StaffError {
    StaffError::refused(
        Code::NotFound,
        reason::SERVICE_ACCOUNT_NOT_FOUND,
        Some((SERVICE_ACCOUNT_RESOURCE, id.to_string())),
        format!("service account {id} not found in this workspace"),
    )
}

fn bad_credentials() -> StaffError {
    StaffError::refused(
        Code::Unauthenticated,
        reason::CLIENT_CREDENTIALS_INVALID,
        None,
        "the client id or the client secret is wrong",
    )
}

/// The JSON list columns of an account.
pub fn listed(account: &service_account::Model, column: &str) -> Result<Vec<String>> {
    let text = match column {
        "workspaces" => &account.workspaces,
        _ => &account.permissions,
    };
    serde_json::from_str(text).map_err(|error| {
        StaffError::Internal(format!(
            "service account {}'s {column} do not parse: {error}",
            account.service_account_id
        ))
    })
}

fn account_context(account: &service_account::Model) -> Vec<roster_db::outbox::FieldChange> {
    vec![change(
        "service_account.name",
        Some(account.name.clone().into()),
        Some(account.name.clone().into()),
    )]
}

impl Staff {
    pub async fn create_service_account(
        &self,
        actor: &Actor,
        workspace_id: &str,
        input: NewServiceAccount,
    ) -> Result<WithSecret> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            let client_secret = secret::new(&mut rand::rng());
            let account = service_account::Model {
                workspace_id: workspace_id.to_owned(),
                service_account_id: Uuid::now_v7(),
                name: input.name.clone(),
                name_key: input.name.to_lowercase(),
                description: input.description.clone(),
                workspaces: json!(input.workspaces).to_string(),
                permissions: json!(input.permissions).to_string(),
                secret_hash: secret::hash(&client_secret),
                status: ServiceAccountStatus::Active.as_str().to_owned(),
                created_by_kind: actor.kind.clone(),
                created_by_id: actor.id.clone(),
                created_at: now,
                updated_at: now,
                revoked_at: None,
                token_generation: 0,
                version: 1,
            };
            match store::service_accounts::insert(conn, account.clone()).await {
                Err(StaffError::Database(roster_db::DbError::UniqueViolation { .. })) => {
                    return Err(StaffError::refused(
                        Code::AlreadyExists,
                        reason::SERVICE_ACCOUNT_ALREADY_EXISTS,
                        None,
                        format!(
                            "a service account named '{}' already exists in this workspace",
                            input.name
                        ),
                    ));
                }
                other => other?,
            }
            let event = self.event(
                actor,
                workspace_id,
                "service_account.created",
                ("service_account", account.service_account_id.to_string()),
                vec![
                    change("name", None, Some(account.name.clone().into())),
                    change("workspaces", None, Some(json!(input.workspaces))),
                    change("permissions", None, Some(json!(input.permissions))),
                ],
            );
            outbox::append(conn, &[event]).await?;
            Ok(WithSecret {
                account,
                client_secret,
            })
        })
    }

    pub async fn list_service_accounts(
        &self,
        workspace_id: &str,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<service_account::Model>> {
        store::service_accounts::list(self.db.conn(), workspace_id, after, limit).await
    }

    /// A new secret (the old one stops working) and the end of every token issued before.
    pub async fn rotate_service_account_secret(
        &self,
        actor: &Actor,
        workspace_id: &str,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<WithSecret> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let before = self
                .changeable_account(conn, workspace_id, id, expected_version)
                .await?;
            let client_secret = secret::new(&mut rand::rng());
            let mut after = before.clone();
            after.secret_hash = secret::hash(&client_secret);
            after.token_generation += 1;
            self.save_account(
                conn,
                actor,
                &before,
                &after,
                "service_account.secret_rotated",
            )
            .await?;
            Ok(WithSecret {
                account: after,
                client_secret,
            })
        })
    }

    /// Revokes the account: no more tokens, and the ones it holds stop working.
    pub async fn revoke_service_account(
        &self,
        actor: &Actor,
        workspace_id: &str,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<service_account::Model> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let before = self
                .changeable_account(conn, workspace_id, id, expected_version)
                .await?;
            let mut after = before.clone();
            after.status = ServiceAccountStatus::Revoked.as_str().to_owned();
            after.revoked_at = Some(self.now_us());
            after.token_generation += 1;
            self.save_account(conn, actor, &before, &after, "service_account.revoked")
                .await?;
            Ok(after)
        })
    }

    /// Client credentials → an access token for the account's workspaces and permissions.
    /// Refusals are audited; successes are not, since a busy service asks every few
    /// minutes and each answer is already bounded by the account's own audit trail.
    pub async fn issue_service_token(
        &self,
        context: &RequestContext,
        client_id: &str,
        client_secret: &str,
    ) -> Result<AccessToken> {
        let id = ClientId::parse(client_id).ok_or_else(bad_credentials)?;
        let found =
            store::service_accounts::find(self.db.conn(), &id.workspace_id, id.service_account_id)
                .await?;
        let account = match found {
            Some(account) if secret::matches(client_secret, &account.secret_hash) => account,
            found => {
                self.audit_refused_issue(context, &id, found.as_ref(), "wrong_credentials")
                    .await?;
                return Err(bad_credentials());
            }
        };
        if account.status != ServiceAccountStatus::Active.as_str() {
            self.audit_refused_issue(context, &id, Some(&account), "revoked")
                .await?;
            return Err(StaffError::refused(
                Code::PermissionDenied,
                reason::SERVICE_ACCOUNT_REVOKED,
                None,
                "this service account was revoked",
            ));
        }
        let permissions = listed(&account, "permissions")?;
        let workspaces: BTreeMap<String, WorkspaceAccess> = listed(&account, "workspaces")?
            .into_iter()
            .map(|workspace| {
                (
                    workspace,
                    WorkspaceAccess {
                        role: SERVICE_ROLE.to_owned(),
                        permissions: permissions.clone(),
                    },
                )
            })
            .collect();
        debug_assert!(
            !workspaces.contains_key(ALL_WORKSPACES) || workspaces.len() == 1,
            "`*` is stored alone"
        );
        self.tokens
            .mint(
                account.service_account_id.to_string(),
                PrincipalKind::Service,
                workspaces,
                account.token_generation,
                self.now_us(),
            )
            .await
    }

    async fn changeable_account<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<service_account::Model> {
        let account = store::service_accounts::find(conn, workspace_id, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if !is_current(expected_version, account.version) {
            return Err(StaffError::refused(
                Code::Aborted,
                reason::ETAG_MISMATCH,
                None,
                "the service account changed since it was read (etag mismatch); read it again and retry",
            ));
        }
        if account.status != ServiceAccountStatus::Active.as_str() {
            return Err(StaffError::failed_precondition(
                reason::SERVICE_ACCOUNT_REVOKED,
                format!("service account {id} is revoked"),
            ));
        }
        Ok(account)
    }

    async fn save_account<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        actor: &Actor,
        before: &service_account::Model,
        after: &service_account::Model,
        action: &str,
    ) -> Result<()> {
        let mut after = after.clone();
        after.updated_at = self.now_us();
        after.version += 1;
        if !store::service_accounts::update(conn, before, &after).await? {
            return Err(StaffError::Database(roster_db::DbError::Conflict));
        }
        if after.token_generation != before.token_generation {
            store::revocations::publish(
                conn,
                &before.workspace_id,
                before.service_account_id.to_string(),
                after.token_generation,
                after.updated_at,
            )
            .await?;
        }
        let mut changes = account_context(before);
        changes.push(change(
            "status",
            Some(before.status.clone().into()),
            Some(after.status.clone().into()),
        ));
        let event = self.event(
            actor,
            &before.workspace_id,
            action,
            ("service_account", before.service_account_id.to_string()),
            changes,
        );
        outbox::append(conn, &[event]).await?;
        Ok(())
    }

    async fn audit_refused_issue(
        &self,
        context: &RequestContext,
        id: &ClientId,
        account: Option<&service_account::Model>,
        outcome: &str,
    ) -> Result<()> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let actor = Actor {
                kind: "anonymous".to_owned(),
                id: String::new(),
                context: context.clone(),
            };
            let mut changes = account.map(account_context).unwrap_or_default();
            changes.push(change("outcome", None, Some(outcome.into())));
            let mut event = self.event(
                &actor,
                &id.workspace_id,
                "service_account.token_refused",
                ("service_account", id.service_account_id.to_string()),
                changes,
            );
            event.outcome = super::FAILURE.to_owned();
            outbox::append(&*txn, &[event]).await?;
            Ok(())
        })
    }
}
