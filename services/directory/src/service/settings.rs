use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use roster_db::outbox::{self, FieldChange};
use sea_orm::ConnectionTrait;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{Actor, Directory, RequestKey, check_etag, in_write_txn};
use crate::domain::widget_token::{
    RegisteredWidgetKey, WidgetKeyAlgorithm, WidgetTokenPolicy, WidgetVerificationKeys,
};
use crate::domain::{ChatAccess, CustomerStatus, UserStatus};
use crate::entity::workspace_settings;
use crate::error::{DirectoryError, Result, reason};
use crate::store;
use crate::widget_kek::{SealError, WidgetKeyring};

pub const DEFAULT_WIDGET_GRACE_SECONDS: i64 = 86_400;
pub const MAX_WIDGET_GRACE_SECONDS: i64 = 30 * 86_400;
pub const DEFAULT_WIDGET_TOKEN_MAX_LIFETIME_SECONDS: i64 = 86_400;
/// Bounds of `widget_token_max_lifetime_seconds`: below a minute a token would not survive
/// the clock skew we tolerate; above 30 days a leaked token is as good as a password.
pub const WIDGET_TOKEN_MAX_LIFETIME_BOUNDS: std::ops::RangeInclusive<i64> = 60..=30 * 86_400;

/// A registered widget key as stored (JSON in `widget_keys`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoredWidgetKey {
    kid: String,
    algorithm: String,
    public_key_pem: String,
}

#[derive(Clone, Debug, Default)]
pub struct SettingsPatch {
    pub chat_access: Option<ChatAccess>,
    pub require_customer: Option<bool>,
    pub widget_keys: Option<Vec<RegisteredWidgetKey>>,
    pub widget_secret_grace_seconds: Option<i64>,
    pub widget_token_max_lifetime_seconds: Option<i64>,
}

/// A workspace's settings with every stored value read and checked; what the API shows.
#[derive(Clone, Debug)]
pub struct WorkspaceSettings {
    pub workspace_id: String,
    pub chat_access: ChatAccess,
    pub require_customer: bool,
    pub widget_keys: Vec<RegisteredWidgetKey>,
    pub widget_secret_set: bool,
    /// Until when the rotated-out secret still verifies.
    pub previous_secret_expires_at: Option<i64>,
    pub widget_secret_grace_seconds: i64,
    pub widget_token_max_lifetime_seconds: i64,
    pub updated_at: i64,
    pub version: i64,
}

/// The rules hot paths check (CreateUser, UpsertUser, CheckChatAccess, guests, imports),
/// parsed once when read; `settings_cache` keeps them for a few seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    pub chat_access: ChatAccess,
    pub require_customer: bool,
}

/// Why CheckChatAccess refuses an end-user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatAccessDenial {
    UserDeactivated,
    /// Deleted, merged or erased.
    UserRetired,
    GuestNotAdmitted,
    EmailNotConfirmed,
    CustomerInactive,
}

#[derive(Clone, Debug)]
pub struct ChatAccessDecision {
    /// `None` when the end-user may chat.
    pub denial: Option<ChatAccessDenial>,
    /// Why not, in words an agent understands; empty when allowed.
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
        widget_token_max_lifetime_seconds: DEFAULT_WIDGET_TOKEN_MAX_LIFETIME_SECONDS,
        version: 0,
    }
}

/// A stored setting that no longer parses is refused, never read as a permissive default
/// (an unreadable chat access once meant ANYONE). The workspace's manager repairs it with
/// UpdateWorkspaceSettings, which replaces a value without reading it.
fn unreadable_setting(workspace_id: &str, setting: &str, detail: &str) -> DirectoryError {
    DirectoryError::unreadable_stored_value(
        workspace_id,
        &format!("the workspace's stored {setting} setting"),
        detail,
        &format!("set {setting} again with UpdateWorkspaceSettings"),
    )
}

/// A stored widget secret that does not open is INTERNAL: the server's key-encryption
/// configuration (or its data) is wrong, nothing the caller can repair. The status
/// conversion logs the detail; the caller sees none of it.
fn unopenable_secret(workspace_id: &str, error: &SealError) -> DirectoryError {
    DirectoryError::Internal(format!("workspace {workspace_id}: {error}"))
}

fn chat_access(settings: &workspace_settings::Model) -> Result<ChatAccess> {
    ChatAccess::parse(&settings.chat_access).ok_or_else(|| {
        unreadable_setting(
            &settings.workspace_id,
            "chat_access",
            &format!("'{}' is not a chat access", settings.chat_access),
        )
    })
}

fn widget_keys(settings: &workspace_settings::Model) -> Result<Vec<RegisteredWidgetKey>> {
    let unreadable =
        |detail: &str| unreadable_setting(&settings.workspace_id, "widget_keys", detail);
    let stored: Vec<StoredWidgetKey> = serde_json::from_str(&settings.widget_keys)
        .map_err(|error| unreadable(&error.to_string()))?;
    stored
        .into_iter()
        .map(|key| {
            let algorithm = WidgetKeyAlgorithm::parse(&key.algorithm).ok_or_else(|| {
                unreadable(&format!(
                    "key '{}' has algorithm '{}'",
                    key.kid, key.algorithm
                ))
            })?;
            Ok(RegisteredWidgetKey {
                kid: key.kid,
                algorithm,
                public_key_pem: key.public_key_pem,
            })
        })
        .collect()
}

fn stored_widget_keys(keys: &[RegisteredWidgetKey]) -> Vec<StoredWidgetKey> {
    keys.iter()
        .map(|key| StoredWidgetKey {
            kid: key.kid.clone(),
            algorithm: key.algorithm.as_str().to_owned(),
            public_key_pem: key.public_key_pem.clone(),
        })
        .collect()
}

/// The rules of `settings`, or the error that says which one is unreadable.
pub(super) fn rules(settings: &workspace_settings::Model) -> Result<Rules> {
    Ok(Rules {
        chat_access: chat_access(settings)?,
        require_customer: settings.require_customer,
    })
}

/// Whether a change was a retry of a request already applied, which changed nothing again.
type Replayed = bool;

fn checked(settings: &workspace_settings::Model) -> Result<WorkspaceSettings> {
    Ok(WorkspaceSettings {
        workspace_id: settings.workspace_id.clone(),
        chat_access: chat_access(settings)?,
        require_customer: settings.require_customer,
        widget_keys: widget_keys(settings)?,
        widget_secret_set: settings.widget_secret.is_some(),
        previous_secret_expires_at: settings.previous_secret_expires_at,
        widget_secret_grace_seconds: settings.widget_secret_grace_seconds,
        widget_token_max_lifetime_seconds: settings.widget_token_max_lifetime_seconds,
        updated_at: settings.updated_at,
        version: settings.version,
    })
}

impl Directory {
    /// Stored settings, or the defaults (version 0) for a workspace that never set any.
    async fn settings_or_default<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
    ) -> Result<workspace_settings::Model> {
        Ok(store::settings::get(conn, workspace_id)
            .await?
            .unwrap_or_else(|| default_settings(workspace_id)))
    }

    /// Rules for checks on hot paths; see `settings_cache` for how fresh they are.
    pub(super) async fn current_rules<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
    ) -> Result<Rules> {
        if let Some(rules) = self.settings_cache.get(workspace_id) {
            return Ok(rules);
        }
        let rules = rules(&self.settings_or_default(conn, workspace_id).await?)?;
        self.settings_cache.put(workspace_id, rules);
        Ok(rules)
    }

    pub async fn get_settings(&self, workspace_id: &str) -> Result<WorkspaceSettings> {
        checked(
            &self
                .settings_or_default(self.db.conn(), workspace_id)
                .await?,
        )
    }

    /// Applies `change` to the stored settings. The result must read back whole before it
    /// commits, so an update that leaves another unreadable setting in place fails without
    /// writing (name every unreadable setting in one update to repair them).
    async fn change_settings(
        &self,
        actor: &Actor,
        workspace_id: &str,
        expected_version: Option<i64>,
        action: &str,
        request: Option<(&RequestKey, String)>,
        change: impl Fn(&mut workspace_settings::Model, i64) -> Result<Vec<FieldChange>>,
    ) -> Result<(WorkspaceSettings, Replayed)> {
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
                return Ok((checked(&before)?, true));
            }
            check_etag(expected_version, before.version)?;
            let now = self.now_us();
            let mut after = before.clone();
            let changes = change(&mut after, now)?;
            if changes.is_empty() {
                return Ok((checked(&after)?, false));
            }
            after.version += 1;
            after.updated_at = now;
            let readable = checked(&after)?;
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
            Ok((readable, false))
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
    ) -> Result<WorkspaceSettings> {
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
                    let stored =
                        serde_json::to_string(&stored_widget_keys(keys)).map_err(|error| {
                            DirectoryError::Internal(format!("encoding widget keys: {error}"))
                        })?;
                    if settings.widget_keys != stored {
                        // The old value may be the unreadable one this update repairs.
                        let kids_before =
                            serde_json::from_str::<Vec<StoredWidgetKey>>(&settings.widget_keys)
                                .map_or_else(
                                    |_| json!("unreadable"),
                                    |before| {
                                        json!(
                                            before
                                                .iter()
                                                .map(|k| k.kid.clone())
                                                .collect::<Vec<_>>()
                                        )
                                    },
                                );
                        changes.push(FieldChange {
                            field: "widget_keys".into(),
                            before: Some(kids_before),
                            after: Some(json!(
                                keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>()
                            )),
                        });
                        settings.widget_keys = stored;
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
                if let Some(lifetime) = patch.widget_token_max_lifetime_seconds
                    && settings.widget_token_max_lifetime_seconds != lifetime
                {
                    changes.push(FieldChange {
                        field: "widget_token_max_lifetime_seconds".into(),
                        before: Some(json!(settings.widget_token_max_lifetime_seconds)),
                        after: Some(json!(lifetime)),
                    });
                    settings.widget_token_max_lifetime_seconds = lifetime;
                }
                Ok(changes)
            },
        )
        .await
        .map(|(settings, _)| settings)
    }

    /// Returns the new secret once, with when the previous one stops verifying. The secret
    /// never appears in the audit event, and is stored sealed with the key-encryption key.
    /// A retried request (same request id) gets the secret its first call issued while that
    /// is still the current one; the request record keeps only its digest.
    pub async fn rotate_widget_secret(
        &self,
        actor: &Actor,
        workspace_id: &str,
        request: Option<RequestKey>,
    ) -> Result<(String, Option<i64>)> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!("wsec_{}", URL_SAFE_NO_PAD.encode(bytes));
        bytes.fill(0);
        let sealed = self
            .widget_kek
            .seal(workspace_id, &secret)
            .map_err(|error| unopenable_secret(workspace_id, &error))?;
        let recorded = request.as_ref().map(|key| (key, secret_digest(&secret)));
        let (settings, replayed) = self.change_settings(actor, workspace_id, None, "workspace.widget_secret_rotated", recorded, |settings, now| {
            let grace_until = now + settings.widget_secret_grace_seconds * 1_000_000;
            settings.previous_widget_secret = settings.widget_secret.take();
            settings.previous_secret_expires_at = settings.previous_widget_secret.as_ref().map(|_| grace_until);
            settings.widget_secret = Some(sealed.clone());
            Ok(vec![FieldChange {
                field: "widget_secret".into(),
                before: None,
                after: Some(json!({ "rotated": true, "previous_valid_until_us": settings.previous_secret_expires_at })),
            }])
        })
        .await?;
        if !replayed {
            return Ok((secret, settings.previous_secret_expires_at));
        }
        // A retry: the first call recorded its secret's digest, and the secret it issued is
        // only given out again while it is still the current one.
        let conn = self.db.conn();
        let stored = self.settings_or_default(conn, workspace_id).await?;
        let current = stored
            .widget_secret
            .as_deref()
            .map(|sealed| self.widget_kek.open(workspace_id, sealed))
            .transpose()
            .map_err(|error| unopenable_secret(workspace_id, &error))?;
        let first = match &request {
            Some(key) => store::request_ids::find(conn, workspace_id, &key.id).await?,
            None => None,
        };
        match (current, first) {
            (Some(current), Some(first))
                if first.result == secret_digest(current.expose_secret()) =>
            {
                Ok((
                    current.expose_secret().to_owned(),
                    settings.previous_secret_expires_at,
                ))
            }
            _ => Err(DirectoryError::failed_precondition(
                reason::WIDGET_SECRET_SUPERSEDED,
                "the secret this request issued has been rotated out since; rotate with a new request_id",
            )),
        }
    }

    /// What verifies widget tokens now: the current secret, the previous one while its grace
    /// period lasts, the registered public keys, and the workspace's lifetime cap. Read
    /// fresh, never from the cache: a rotated secret must verify everywhere at once.
    pub(super) async fn widget_token_policy(
        &self,
        workspace_id: &str,
    ) -> Result<WidgetTokenPolicy> {
        let settings = self
            .settings_or_default(self.db.conn(), workspace_id)
            .await?;
        let open = |stored: &str| {
            self.widget_kek
                .open(workspace_id, stored)
                .map(|secret| secret.expose_secret().as_bytes().to_vec())
                .map_err(|error| unopenable_secret(workspace_id, &error))
        };
        let now = self.now_us();
        let mut secrets = Vec::new();
        if let Some(secret) = &settings.widget_secret {
            secrets.push(open(secret)?);
        }
        if let (Some(previous), Some(until)) = (
            &settings.previous_widget_secret,
            settings.previous_secret_expires_at,
        ) && now < until
        {
            secrets.push(open(previous)?);
        }
        Ok(WidgetTokenPolicy {
            keys: WidgetVerificationKeys {
                secrets,
                public_keys: widget_keys(&settings)?,
            },
            max_lifetime_seconds: settings.widget_token_max_lifetime_seconds,
        })
    }

    /// Seals widget secrets stored in plaintext by releases before encryption. Migrations
    /// have no key-encryption key, so this runs when the service starts; each row is
    /// rewritten only if unchanged since read, so replicas starting together do not clash.
    ///
    /// # Errors
    ///
    /// The database fails, or a secret cannot be sealed.
    pub async fn seal_plaintext_widget_secrets(&self) -> Result<usize> {
        let mut sealed = 0;
        for before in store::settings::with_plaintext_secrets(self.db.conn()).await? {
            let seal = |value: &Option<String>| -> Result<Option<String>> {
                value
                    .as_deref()
                    .map(|secret| {
                        if WidgetKeyring::is_plaintext(secret) {
                            self.widget_kek
                                .seal(&before.workspace_id, secret)
                                .map_err(|error| unopenable_secret(&before.workspace_id, &error))
                        } else {
                            Ok(secret.to_owned())
                        }
                    })
                    .transpose()
            };
            let mut after = before.clone();
            after.widget_secret = seal(&before.widget_secret)?;
            after.previous_widget_secret = seal(&before.previous_widget_secret)?;
            after.version += 1;
            if store::settings::save(self.db.conn(), Some(&before), &after).await? {
                sealed += 1;
            }
        }
        if sealed > 0 {
            tracing::info!(
                workspaces = sealed,
                "sealed widget secrets stored in plaintext"
            );
        }
        Ok(sealed)
    }

    pub async fn check_chat_access(
        &self,
        workspace_id: &str,
        user_id: Uuid,
    ) -> Result<ChatAccessDecision> {
        let conn = self.db.conn();
        let access = self.current_rules(conn, workspace_id).await?.chat_access;
        let user = store::users::require(conn, workspace_id, user_id).await?;
        // An unknown status is refused like a deactivated user: fail closed.
        let status = UserStatus::parse(&user.status).unwrap_or(UserStatus::Deactivated);
        let denied = |denial: ChatAccessDenial, reason: String| ChatAccessDecision {
            denial: Some(denial),
            reason,
            chat_access: access,
        };
        let denial = match (status, access) {
            (UserStatus::Deactivated, _) => Some((
                ChatAccessDenial::UserDeactivated,
                "the end-user is deactivated".to_owned(),
            )),
            (UserStatus::Deleted | UserStatus::Merged | UserStatus::Erased, _) => Some((
                ChatAccessDenial::UserRetired,
                format!("the end-user is {status}"),
            )),
            (UserStatus::Guest, ChatAccess::Identified | ChatAccess::Confirmed) => Some((
                ChatAccessDenial::GuestNotAdmitted,
                "this workspace admits identified users only; the guest must log in".to_owned(),
            )),
            (UserStatus::Unconfirmed, ChatAccess::Confirmed) => Some((
                ChatAccessDenial::EmailNotConfirmed,
                "this workspace admits users with a confirmed e-mail only".to_owned(),
            )),
            _ => None,
        };
        if let Some((denial, reason)) = denial {
            return Ok(denied(denial, reason));
        }
        if !user.customer_id.is_empty()
            && let Some(customer) =
                store::customers::get(conn, workspace_id, &user.customer_id).await?
            && CustomerStatus::parse(&customer.status) != Some(CustomerStatus::Active)
        {
            return Ok(denied(
                ChatAccessDenial::CustomerInactive,
                format!(
                    "the end-user's customer '{}' is {}",
                    customer.customer_id, customer.status
                ),
            ));
        }
        Ok(ChatAccessDecision {
            denial: None,
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
