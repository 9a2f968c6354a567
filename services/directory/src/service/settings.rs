use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use roster_db::outbox::{self, FieldChange};
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{Actor, Directory, RequestKey, check_etag, in_write_txn};
use crate::domain::widget_token::{
    RegisteredWidgetKey, WidgetKeyAlgorithm, WidgetVerificationKeys,
};
use crate::domain::{ChatAccess, CustomerStatus, UserStatus};
use crate::entity::workspace_settings;
use crate::error::{DirectoryError, Result, reason};
use crate::store;

pub const DEFAULT_WIDGET_GRACE_SECONDS: i64 = 86_400;
pub const MAX_WIDGET_GRACE_SECONDS: i64 = 30 * 86_400;

/// A registered widget key as stored (JSON in `widget_keys`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWidgetKey {
    pub kid: String,
    pub algorithm: String,
    pub public_key_pem: String,
}

#[derive(Clone, Debug, Default)]
pub struct SettingsPatch {
    pub chat_access: Option<ChatAccess>,
    pub require_customer: Option<bool>,
    pub widget_keys: Option<Vec<StoredWidgetKey>>,
    pub widget_secret_grace_seconds: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct ChatAccessDecision {
    pub allowed: bool,
    pub reason: String,
    pub chat_access: ChatAccess,
}

pub fn default_settings(workspace_id: &str) -> workspace_settings::Model {
    workspace_settings::Model {
        workspace_id: workspace_id.to_owned(),
        chat_access: ChatAccess::Anyone.as_str().to_owned(),
        require_customer: false,
        widget_secret: None,
        previous_widget_secret: None,
        previous_secret_expires_at: None,
        widget_secret_grace_seconds: DEFAULT_WIDGET_GRACE_SECONDS,
        widget_keys: "[]".to_owned(),
        updated_at: 0,
        version: 0,
    }
}

pub fn widget_keys(settings: &workspace_settings::Model) -> Vec<StoredWidgetKey> {
    serde_json::from_str(&settings.widget_keys).unwrap_or_default()
}

impl Directory {
    /// Stored settings, or the defaults (version 0) for a workspace that never set any.
    pub(super) async fn settings_or_default<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
    ) -> Result<workspace_settings::Model> {
        Ok(store::settings::get(conn, workspace_id)
            .await?
            .unwrap_or_else(|| default_settings(workspace_id)))
    }

    /// Settings for rule checks on hot paths; see `settings_cache` for how fresh they are.
    pub(super) async fn current_rules<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
    ) -> Result<workspace_settings::Model> {
        if let Some(settings) = self.settings_cache.get(workspace_id) {
            return Ok(settings);
        }
        let settings = self.settings_or_default(conn, workspace_id).await?;
        self.settings_cache.put(&settings);
        Ok(settings)
    }

    pub async fn get_settings(&self, workspace_id: &str) -> Result<workspace_settings::Model> {
        self.settings_or_default(self.db.conn(), workspace_id).await
    }

    async fn change_settings(
        &self,
        actor: &Actor,
        workspace_id: &str,
        expected_version: Option<i64>,
        action: &str,
        request: Option<(&RequestKey, String)>,
        change: impl Fn(&mut workspace_settings::Model, i64) -> Vec<FieldChange>,
    ) -> Result<workspace_settings::Model> {
        let changed = in_write_txn!(self, retry_unique = request.is_some(), |txn| {
            let conn = &*txn;
            let stored = store::settings::get(conn, workspace_id).await?;
            let before = stored
                .clone()
                .unwrap_or_else(|| default_settings(workspace_id));
            // A retried request changes nothing again; the caller tells its result apart.
            if self
                .replayed(conn, workspace_id, request.as_ref().map(|(key, _)| *key))
                .await?
                .is_some()
            {
                return Ok(before);
            }
            check_etag(expected_version, before.version)?;
            let now = self.now_us();
            let mut after = before.clone();
            let changes = change(&mut after, now);
            if changes.is_empty() {
                return Ok(before);
            }
            after.version += 1;
            after.updated_at = now;
            if !store::settings::save(conn, stored.as_ref(), &after).await? {
                return Err(DirectoryError::Database(roster_db::DbError::Conflict));
            }
            let event = self.event(
                actor,
                workspace_id,
                action,
                ("workspace_settings", workspace_id.to_owned()),
                changes,
            );
            outbox::append(conn, &[event]).await?;
            if let Some((key, result)) = &request {
                self.record_request(conn, workspace_id, Some(key), result.clone())
                    .await?;
            }
            Ok(after)
        });
        self.settings_cache.forget(workspace_id);
        changed
    }

    pub async fn update_settings(
        &self,
        actor: &Actor,
        workspace_id: &str,
        expected_version: Option<i64>,
        patch: SettingsPatch,
    ) -> Result<workspace_settings::Model> {
        self.change_settings(
            actor,
            workspace_id,
            expected_version,
            "workspace_settings.updated",
            None,
            |settings, _| {
                let mut changes = Vec::new();
                if let Some(access) = patch.chat_access
                    && settings.chat_access != access.as_str()
                {
                    changes.push(FieldChange {
                        field: "chat_access".into(),
                        before: Some(json!(settings.chat_access)),
                        after: Some(json!(access.as_str())),
                    });
                    settings.chat_access = access.as_str().to_owned();
                }
                if let Some(require) = patch.require_customer
                    && settings.require_customer != require
                {
                    changes.push(FieldChange {
                        field: "require_customer".into(),
                        before: Some(json!(settings.require_customer)),
                        after: Some(json!(require)),
                    });
                    settings.require_customer = require;
                }
                if let Some(keys) = &patch.widget_keys {
                    let before = widget_keys(settings);
                    if &before != keys {
                        let kids = |keys: &[StoredWidgetKey]| {
                            json!(keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>())
                        };
                        changes.push(FieldChange {
                            field: "widget_keys".into(),
                            before: Some(kids(&before)),
                            after: Some(kids(keys)),
                        });
                        settings.widget_keys =
                            serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
                    }
                }
                if let Some(grace) = patch.widget_secret_grace_seconds
                    && settings.widget_secret_grace_seconds != grace
                {
                    changes.push(FieldChange {
                        field: "widget_secret_grace_seconds".into(),
                        before: Some(json!(settings.widget_secret_grace_seconds)),
                        after: Some(json!(grace)),
                    });
                    settings.widget_secret_grace_seconds = grace;
                }
                changes
            },
        )
        .await
    }

    /// Returns the new secret once, with when the previous one stops verifying. The secret
    /// never appears in the audit event.
    /// Issues a new secret. A retried request (same request id) gets the secret its first
    /// call issued while that is still the current one; the record keeps only its digest.
    pub async fn rotate_widget_secret(
        &self,
        actor: &Actor,
        workspace_id: &str,
        request: Option<RequestKey>,
    ) -> Result<(String, Option<i64>)> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!("wsec_{}", URL_SAFE_NO_PAD.encode(bytes));
        let recorded = request.as_ref().map(|key| (key, secret_digest(&secret)));
        let settings = self
            .change_settings(actor, workspace_id, None, "workspace.widget_secret_rotated", recorded, |settings, now| {
                let grace_until = now + settings.widget_secret_grace_seconds * 1_000_000;
                settings.previous_widget_secret = settings.widget_secret.take();
                settings.previous_secret_expires_at = settings.previous_widget_secret.as_ref().map(|_| grace_until);
                settings.widget_secret = Some(secret.clone());
                vec![FieldChange {
                    field: "widget_secret".into(),
                    before: None,
                    after: Some(json!({ "rotated": true, "previous_valid_until_us": settings.previous_secret_expires_at })),
                }]
            })
            .await?;
        let current = settings.widget_secret.clone().unwrap_or_default();
        if current == secret {
            return Ok((secret, settings.previous_secret_expires_at));
        }
        // A retry: the first call recorded its secret's digest.
        let first = match &request {
            Some(key) => store::request_ids::find(self.db.conn(), workspace_id, &key.id).await?,
            None => None,
        };
        match first {
            Some(first) if first.result == secret_digest(&current) => {
                Ok((current, settings.previous_secret_expires_at))
            }
            _ => Err(DirectoryError::failed_precondition(
                reason::WIDGET_SECRET_SUPERSEDED,
                "the secret this request issued has been rotated out since; rotate with a new request_id",
            )),
        }
    }

    /// Keys that verify widget tokens now: the current secret, the previous one while its
    /// grace period lasts, and the registered public keys.
    pub(super) fn widget_verification_keys(
        &self,
        settings: &workspace_settings::Model,
    ) -> WidgetVerificationKeys {
        let now = self.now_us();
        let mut secrets = Vec::new();
        if let Some(secret) = &settings.widget_secret {
            secrets.push(secret.as_bytes().to_vec());
        }
        if let (Some(previous), Some(until)) = (
            &settings.previous_widget_secret,
            settings.previous_secret_expires_at,
        ) && now < until
        {
            secrets.push(previous.as_bytes().to_vec());
        }
        let public_keys = widget_keys(settings)
            .into_iter()
            .filter_map(|key| {
                let algorithm = match key.algorithm.as_str() {
                    "RS256" => WidgetKeyAlgorithm::Rs256,
                    "ES256" => WidgetKeyAlgorithm::Es256,
                    _ => return None,
                };
                Some(RegisteredWidgetKey {
                    kid: key.kid,
                    algorithm,
                    public_key_pem: key.public_key_pem,
                })
            })
            .collect();
        WidgetVerificationKeys {
            secrets,
            public_keys,
        }
    }

    pub async fn check_chat_access(
        &self,
        workspace_id: &str,
        user_id: Uuid,
    ) -> Result<ChatAccessDecision> {
        let conn = self.db.conn();
        let settings = self.current_rules(conn, workspace_id).await?;
        let access = ChatAccess::parse(&settings.chat_access).unwrap_or(ChatAccess::Anyone);
        let user = store::users::require(conn, workspace_id, user_id).await?;
        let status = UserStatus::parse(&user.status).unwrap_or(UserStatus::Deactivated);
        let denied = |reason: String| ChatAccessDecision {
            allowed: false,
            reason,
            chat_access: access,
        };
        let reason = match (status, access) {
            (UserStatus::Deactivated, _) => Some("the end-user is deactivated".to_owned()),
            (UserStatus::Deleted | UserStatus::Merged | UserStatus::Erased, _) => {
                Some(format!("the end-user is {status}"))
            }
            (UserStatus::Guest, ChatAccess::Identified | ChatAccess::Confirmed) => Some(
                "this workspace admits identified users only; the guest must log in".to_owned(),
            ),
            (UserStatus::Unconfirmed, ChatAccess::Confirmed) => {
                Some("this workspace admits users with a confirmed e-mail only".to_owned())
            }
            _ => None,
        };
        if let Some(reason) = reason {
            return Ok(denied(reason));
        }
        if !user.customer_id.is_empty()
            && let Some(customer) =
                store::customers::get(conn, workspace_id, &user.customer_id).await?
            && CustomerStatus::parse(&customer.status) != Some(CustomerStatus::Active)
        {
            return Ok(denied(format!(
                "the end-user's customer '{}' is {}",
                customer.customer_id, customer.status
            )));
        }
        Ok(ChatAccessDecision {
            allowed: true,
            reason: String::new(),
            chat_access: access,
        })
    }
}

/// What a request id records of the secret it issued: enough to recognise it, useless for
/// signing.
fn secret_digest(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}
