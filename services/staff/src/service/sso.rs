//! Single sign-on: a workspace's OpenID Connect connections (create, change, test, enable,
//! delete) and signing in through one.
//!
//! A connection starts disabled and is enabled only after a test sign-in through it
//! succeeded, so a wrong issuer, client id or key set cannot lock a workspace out or let a
//! stranger in unnoticed; changing any of those clears the test.
//!
//! SsoLogin shares Login's machinery (`sign_in.rs`): the per-address throttle counted
//! before any check, the attempt record with its audit event, refresh tokens and access
//! tokens. What it adds runs in this order, each refusal recorded: the connection must be
//! the workspace's and enabled; the ID token must verify (`domain::sso::Connection`) and
//! its nonce must be new (recorded in its own transaction, so a replayed token loses even
//! when the sign-in later fails); the person must be admitted (verified e-mail, allowed
//! domain); then `domain::sso::decide` names the agent, in the transaction that links,
//! accepts an invitation or provisions, and signs in.

use roster_auth::oidc::IdTokenError;
use roster_core::etag::is_current;
use roster_core::{Actor, RequestContext};
use roster_db::outbox::FieldChange;
use roster_db::{in_write_txn, outbox};
use serde_json::{Value, json};
use tonic::Code;
use uuid::Uuid;

use super::invitations::not_acceptable;
use super::sign_in::{Attempt, Session, micros};
use super::{AgentView, Staff, agent_context, change, load_effective_access};
use crate::domain::access::{EffectiveAccess, Granter};
use crate::domain::invitation;
use crate::domain::sign_in::{SignInMethod, SignInOutcome, address_key};
use crate::domain::sso::{
    self, Connection, Decision, ID_TOKEN_LEEWAY_SECS, Identity, MAX_CONNECTIONS, NotAdmitted,
    Provider, ProvisioningMode, Refusal,
};
use crate::domain::{AgentStatus, InvitationState, secret};
use crate::entity::{agent, refresh_token, sso_connection, sso_identity};
use crate::error::{Result, SSO_CONNECTION_RESOURCE, StaffError, reason};
use crate::store;

/// A checked CreateSsoConnection.
#[derive(Clone, Debug)]
pub struct NewSsoConnection {
    pub display_name: String,
    pub provider: Provider,
    /// An https URL; the provider's own rule is checked by the service.
    pub issuer: String,
    pub client_id: String,
    pub allowed_email_domains: Vec<String>,
    /// Parsed once: it holds a usable key.
    pub jwks: String,
    /// A role's name, resolved against the workspace's roles.
    pub default_role: String,
    pub provisioning_mode: ProvisioningMode,
}

/// UpdateSsoConnection's fields; `None` leaves one as it is.
#[derive(Clone, Debug, Default)]
pub struct SsoConnectionPatch {
    pub display_name: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub allowed_email_domains: Option<Vec<String>>,
    pub jwks: Option<String>,
    pub default_role: Option<String>,
    pub provisioning_mode: Option<ProvisioningMode>,
    pub enabled: Option<bool>,
}

/// A checked SsoLogin or TestSsoConnection.
#[derive(Clone, Debug)]
pub struct SsoSignIn {
    pub connection_id: Uuid,
    pub id_token: String,
    pub nonce: String,
}

/// A successful test: the connection as recorded and who the provider vouched for.
#[derive(Clone, Debug)]
pub struct TestedConnection {
    pub connection: sso_connection::Model,
    pub identity: Identity,
}

/// What a test found, before it is recorded.
#[derive(Clone, Debug, Default)]
struct TestFinding {
    subject: String,
    email: String,
    /// The token's `exp` (unix seconds), once it verified.
    expires_at: Option<i64>,
    outcome: Option<std::result::Result<Identity, String>>,
}

/// How the sign-in's transaction ended: refusals that must still be recorded travel as
/// values, so the record is made (in its own transaction) of a rolled-back nothing.
enum Provisioned {
    Session(Box<(AgentView, EffectiveAccess, refresh_token::Model, String)>),
    Refused {
        error: StaffError,
        outcome: SignInOutcome,
        agent: Option<Box<agent::Model>>,
    },
}

fn name_taken(existing: &sso_connection::Model) -> StaffError {
    StaffError::refused(
        Code::AlreadyExists,
        reason::SSO_CONNECTION_ALREADY_EXISTS,
        Some((SSO_CONNECTION_RESOURCE, existing.connection_id.to_string())),
        format!(
            "the workspace already has an SSO connection named '{}' (names are compared case-insensitively)",
            existing.display_name
        ),
    )
}

fn token_refused(error: &IdTokenError) -> StaffError {
    // The precise check is for the audit log and for an administrator's test: a caller
    // holding a bad token learns only whether a fresh sign-in can help.
    let message = if error.is_expiry() {
        "the ID token has expired; sign in at the identity provider again"
    } else {
        "the ID token is not valid for this SSO connection; sign in at the identity provider again"
    };
    StaffError::refused(
        Code::Unauthenticated,
        reason::SSO_TOKEN_INVALID,
        None,
        message,
    )
}

fn replayed() -> StaffError {
    StaffError::refused(
        Code::Unauthenticated,
        reason::SSO_TOKEN_INVALID,
        None,
        "this ID token was already used (each signs in once); sign in at the identity provider again",
    )
}

const REPLAYED: &str = "the ID token's nonce was used before: each ID token is accepted once";

fn not_admitted(why: &NotAdmitted) -> StaffError {
    let reason = match why {
        NotAdmitted::NoEmail | NotAdmitted::EmailNotVerified(_) => reason::SSO_EMAIL_NOT_VERIFIED,
        NotAdmitted::DomainNotAllowed(_) | NotAdmitted::NotWorkspaceAccount(_) => {
            reason::SSO_DOMAIN_NOT_ALLOWED
        }
    };
    StaffError::permission_denied(reason, why.message())
}

fn not_active(agent: &agent::Model) -> StaffError {
    StaffError::refused(
        Code::PermissionDenied,
        reason::AGENT_NOT_ACTIVE,
        None,
        format!(
            "this agent is {} and cannot sign in; ask an administrator",
            agent.status.to_lowercase()
        ),
    )
}

fn unusable(why: &str) -> StaffError {
    StaffError::failed_precondition(
        reason::SSO_CONNECTION_INVALID,
        format!("the SSO connection cannot be used: {why}"),
    )
}

fn key_ids(jwks: &str) -> Vec<String> {
    roster_auth::oidc::IdpKeys::from_jwks_json(jwks)
        .map(|keys| keys.key_ids())
        .unwrap_or_default()
}

/// Forgets a connection's test: what was tested changed.
fn clear_test(row: &mut sso_connection::Model) {
    row.last_test_at = None;
    row.last_test_succeeded = None;
    row.last_test_failure = String::new();
    row.last_test_by_kind = String::new();
    row.last_test_by_id = String::new();
    row.last_test_subject = String::new();
    row.last_test_email = String::new();
}

/// The audited form of each configurable field (the JWKS by its key ids: the document is
/// public keys, and its ids are what a reader compares).
fn audited(row: &sso_connection::Model) -> Vec<(&'static str, Value)> {
    vec![
        ("display_name", row.display_name.clone().into()),
        ("provider", row.provider.clone().into()),
        ("issuer", row.issuer.clone().into()),
        ("client_id", row.client_id.clone().into()),
        ("allowed_email_domains", json!(sso::stored_domains(row))),
        ("key_ids", json!(key_ids(&row.jwks))),
        ("default_role", row.default_role.clone().into()),
        ("provisioning_mode", row.provisioning_mode.clone().into()),
        ("enabled", row.enabled.into()),
    ]
}

/// The fields that differ between `before` (none: created) and `after`.
fn connection_changes(
    before: Option<&sso_connection::Model>,
    after: &sso_connection::Model,
) -> Vec<FieldChange> {
    let old = before.map(audited);
    let mut changes = vec![change(
        "sso_connection.display_name",
        Some(
            before
                .map_or(&after.display_name, |b| &b.display_name)
                .clone()
                .into(),
        ),
        Some(after.display_name.clone().into()),
    )];
    for (index, (field, value)) in audited(after).into_iter().enumerate() {
        let previous = old.as_ref().and_then(|old| old.get(index)).map(|(_, v)| v);
        if previous != Some(&value) {
            changes.push(change(field, previous.cloned(), Some(value)));
        }
    }
    changes
}

impl Staff {
    pub async fn create_sso_connection(
        &self,
        actor: &Actor,
        workspace_id: &str,
        granter: &Granter,
        input: NewSsoConnection,
    ) -> Result<sso_connection::Model> {
        let issuer = sso::issuer("connection.issuer", &input.issuer, input.provider)?;
        // Two creates racing on one name meet at the unique index; the retry reports it.
        in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            // Under the workspace's lock, as every change giving a role: the role cannot be
            // deleted meanwhile.
            store::workspaces::lock(conn, workspace_id, now).await?;
            let name_key = sso::display_name_key(&input.display_name);
            if let Some(existing) = store::sso::find_by_name(conn, workspace_id, &name_key).await? {
                return Err(name_taken(&existing));
            }
            if store::sso::count(conn, workspace_id).await? >= MAX_CONNECTIONS {
                return Err(StaffError::failed_precondition(
                    reason::SSO_CONNECTION_LIMIT_REACHED,
                    format!(
                        "the workspace has {MAX_CONNECTIONS} SSO connections, the most it may have; delete one first"
                    ),
                ));
            }
            let role = self
                .resolve_role(
                    conn,
                    workspace_id,
                    "connection.default_role",
                    &input.default_role,
                )
                .await?;
            granter.may_grant_role(&role)?;
            let row = sso_connection::Model {
                workspace_id: workspace_id.to_owned(),
                connection_id: Uuid::now_v7(),
                display_name: input.display_name.clone(),
                display_name_key: name_key,
                provider: input.provider.as_str().to_owned(),
                issuer: issuer.clone(),
                client_id: input.client_id.clone(),
                allowed_email_domains: sso::domains_json(&input.allowed_email_domains),
                jwks: input.jwks.clone(),
                default_role: role.name.clone(),
                provisioning_mode: input.provisioning_mode.as_str().to_owned(),
                enabled: false,
                last_test_at: None,
                last_test_succeeded: None,
                last_test_failure: String::new(),
                last_test_by_kind: String::new(),
                last_test_by_id: String::new(),
                last_test_subject: String::new(),
                last_test_email: String::new(),
                created_at: now,
                updated_at: now,
                version: 1,
            };
            store::sso::insert(conn, row.clone()).await?;
            let event = self.event(
                actor,
                workspace_id,
                "sso_connection.created",
                ("sso_connection", row.connection_id.to_string()),
                connection_changes(None, &row),
            );
            outbox::append(conn, &[event]).await?;
            Ok(row)
        })
    }

    pub async fn get_sso_connection(
        &self,
        workspace_id: &str,
        connection_id: Uuid,
    ) -> Result<sso_connection::Model> {
        store::sso::find(self.db.conn(), workspace_id, connection_id)
            .await?
            .ok_or_else(|| StaffError::sso_connection_not_found(connection_id))
    }

    pub async fn list_sso_connections(
        &self,
        workspace_id: &str,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<sso_connection::Model>> {
        store::sso::list(self.db.conn(), workspace_id, after, limit).await
    }

    /// Changes a connection. Enabling needs a successful test of what is being enabled;
    /// an enabled connection is re-pointed (issuer, client id) only while being disabled.
    pub async fn update_sso_connection(
        &self,
        actor: &Actor,
        workspace_id: &str,
        granter: &Granter,
        connection_id: Uuid,
        expected_version: Option<i64>,
        patch: SsoConnectionPatch,
    ) -> Result<sso_connection::Model> {
        in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            store::workspaces::lock(conn, workspace_id, now).await?;
            let before = store::sso::find(conn, workspace_id, connection_id)
                .await?
                .ok_or_else(|| StaffError::sso_connection_not_found(connection_id))?;
            if !is_current(expected_version, before.version) {
                return Err(StaffError::stale("SSO connection"));
            }
            let provider = Provider::parse(&before.provider).ok_or_else(|| {
                StaffError::Internal(format!(
                    "SSO connection {connection_id} has the unknown provider '{}'",
                    before.provider
                ))
            })?;
            let mut after = before.clone();
            if let Some(name) = &patch.display_name {
                after.display_name = name.clone();
                after.display_name_key = sso::display_name_key(name);
            }
            if let Some(issuer) = &patch.issuer {
                after.issuer = sso::issuer("connection.issuer", issuer, provider)?;
            }
            if let Some(client_id) = &patch.client_id {
                after.client_id = client_id.clone();
            }
            if let Some(domains) = &patch.allowed_email_domains {
                after.allowed_email_domains = sso::domains_json(domains);
            }
            if let Some(jwks) = &patch.jwks {
                after.jwks = jwks.clone();
            }
            if let Some(mode) = patch.provisioning_mode {
                after.provisioning_mode = mode.as_str().to_owned();
            }
            if let Some(role) = &patch.default_role {
                let grant = self
                    .resolve_role(conn, workspace_id, "connection.default_role", role)
                    .await?;
                if grant.name != before.default_role {
                    granter.may_grant_role(&grant)?;
                }
                after.default_role = grant.name;
            }
            if let Some(enabled) = patch.enabled {
                after.enabled = enabled;
            }
            let repointed = after.issuer != before.issuer || after.client_id != before.client_id;
            if repointed || after.jwks != before.jwks {
                clear_test(&mut after);
            }
            if after.enabled && before.enabled && repointed {
                return Err(StaffError::failed_precondition(
                    reason::SSO_TEST_REQUIRED,
                    "an enabled connection's issuer or client id changes only while it is disabled (set enabled to false in the same call), then it must pass TestSsoConnection again before it is enabled",
                ));
            }
            if after.enabled && !before.enabled && after.last_test_succeeded != Some(true) {
                return Err(StaffError::failed_precondition(
                    reason::SSO_TEST_REQUIRED,
                    "test sign-in, then enable: sign in through this connection yourself and pass the ID token to TestSsoConnection; once that succeeds (and issuer, client id and JWKS are unchanged since) the connection can be enabled",
                ));
            }
            if after == before {
                return Ok(before);
            }
            if after.display_name_key != before.display_name_key
                && let Some(existing) =
                    store::sso::find_by_name(conn, workspace_id, &after.display_name_key).await?
            {
                return Err(name_taken(&existing));
            }
            after.updated_at = now;
            after.version += 1;
            if !store::sso::update(conn, &before, &after).await? {
                return Err(StaffError::Database(roster_db::DbError::Conflict));
            }
            let action = match (before.enabled, after.enabled) {
                (false, true) => "sso_connection.enabled",
                (true, false) => "sso_connection.disabled",
                _ => "sso_connection.updated",
            };
            let mut changes = connection_changes(Some(&before), &after);
            if before.last_test_at.is_some() && after.last_test_at.is_none() {
                changes.push(change("last_test", Some("recorded".into()), None));
            }
            let event = self.event(
                actor,
                workspace_id,
                action,
                ("sso_connection", connection_id.to_string()),
                changes,
            );
            outbox::append(conn, &[event]).await?;
            Ok(after)
        })
    }

    /// Deletes a disabled connection with its links.
    pub async fn delete_sso_connection(
        &self,
        actor: &Actor,
        workspace_id: &str,
        connection_id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<()> {
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let before = store::sso::find(conn, workspace_id, connection_id)
                .await?
                .ok_or_else(|| StaffError::sso_connection_not_found(connection_id))?;
            if !is_current(expected_version, before.version) {
                return Err(StaffError::stale("SSO connection"));
            }
            if before.enabled {
                return Err(StaffError::failed_precondition(
                    reason::SSO_CONNECTION_ENABLED,
                    format!(
                        "the SSO connection '{}' is enabled; disable it (UpdateSsoConnection with enabled false) before deleting it",
                        before.display_name
                    ),
                ));
            }
            if !store::sso::delete(conn, &before).await? {
                return Err(StaffError::Database(roster_db::DbError::Conflict));
            }
            let changes = audited(&before)
                .into_iter()
                .map(|(field, value)| change(field, Some(value), None))
                .collect();
            let event = self.event(
                actor,
                workspace_id,
                "sso_connection.deleted",
                ("sso_connection", connection_id.to_string()),
                changes,
            );
            outbox::append(conn, &[event]).await?;
            Ok(())
        })
    }

    /// The test sign-in: verifies `input` as SsoLogin would, without signing anyone in,
    /// and records the outcome on the connection. `caller_agent`, for an agent's token,
    /// must be whom the token is for.
    pub async fn test_sso_connection(
        &self,
        actor: &Actor,
        workspace_id: &str,
        caller_agent: Option<Uuid>,
        input: SsoSignIn,
    ) -> Result<TestedConnection> {
        let connection_id = input.connection_id;
        let tested = self.get_sso_connection(workspace_id, connection_id).await?;
        let finding = self
            .check_test(workspace_id, &tested, caller_agent, &input)
            .await?;
        let nonce_hash = secret::hash(&input.nonce);
        let (recorded, outcome) =
            in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
                let conn = &*txn;
                let now = self.now_us();
                let before = store::sso::lock(conn, workspace_id, connection_id)
                    .await?
                    .ok_or_else(|| StaffError::sso_connection_not_found(connection_id))?;
                let same = (
                    &before.provider,
                    &before.issuer,
                    &before.client_id,
                    &before.jwks,
                ) == (
                    &tested.provider,
                    &tested.issuer,
                    &tested.client_id,
                    &tested.jwks,
                ) && before.allowed_email_domains == tested.allowed_email_domains;
                if !same {
                    return Err(StaffError::refused(
                        Code::Aborted,
                        reason::CONCURRENT_CHANGE,
                        None,
                        "the SSO connection changed while it was being tested; test it again",
                    ));
                }
                let mut outcome = finding
                    .outcome
                    .clone()
                    .unwrap_or_else(|| Err("the ID token was not checked".to_owned()));
                if let (Ok(_), Some(expires_at)) = (&outcome, finding.expires_at) {
                    let keep_until = expires_at
                        .saturating_add(ID_TOKEN_LEEWAY_SECS)
                        .saturating_mul(1_000_000);
                    if !store::sso::use_nonce(
                        conn,
                        workspace_id,
                        connection_id,
                        &nonce_hash,
                        keep_until,
                        now,
                    )
                    .await?
                    {
                        outcome = Err(REPLAYED.to_owned());
                    }
                }
                let mut after = before.clone();
                after.last_test_at = Some(now);
                after.last_test_succeeded = Some(outcome.is_ok());
                after.last_test_failure = outcome.as_ref().err().cloned().unwrap_or_default();
                after.last_test_by_kind = actor.kind.clone();
                after.last_test_by_id = actor.id.clone();
                after.last_test_subject = finding.subject.clone();
                after.last_test_email = finding.email.clone();
                after.updated_at = now;
                after.version += 1;
                if !store::sso::update(conn, &before, &after).await? {
                    return Err(StaffError::Database(roster_db::DbError::Conflict));
                }
                let mut changes = vec![
                    change(
                        "sso_connection.display_name",
                        Some(after.display_name.clone().into()),
                        Some(after.display_name.clone().into()),
                    ),
                    change("succeeded", None, Some(outcome.is_ok().into())),
                    change("sso_subject", None, Some(finding.subject.clone().into())),
                    change("email", None, Some(finding.email.clone().into())),
                ];
                if let Err(failure) = &outcome {
                    changes.push(change("failure", None, Some(failure.clone().into())));
                }
                let event = self.event(
                    actor,
                    workspace_id,
                    "sso_connection.tested",
                    ("sso_connection", connection_id.to_string()),
                    changes,
                );
                outbox::append(conn, &[event]).await?;
                Ok((after, outcome))
            })?;
        match outcome {
            Ok(identity) => Ok(TestedConnection {
                connection: recorded,
                identity,
            }),
            Err(failure) => Err(StaffError::failed_precondition(
                reason::SSO_TEST_FAILED,
                format!("the test sign-in failed: {failure}"),
            )),
        }
    }

    /// Every check of a test sign-in, reading only; `outcome` says how it went.
    async fn check_test(
        &self,
        workspace_id: &str,
        row: &sso_connection::Model,
        caller_agent: Option<Uuid>,
        input: &SsoSignIn,
    ) -> Result<TestFinding> {
        let mut finding = TestFinding::default();
        let connection = match Connection::from_row(row) {
            Ok(connection) => connection,
            Err(why) => {
                finding.outcome = Some(Err(format!("the connection cannot be used: {why}")));
                return Ok(finding);
            }
        };
        let token = match connection.verify(&input.id_token, &input.nonce, self.clock.now_secs()) {
            Ok(token) => token,
            Err(error) => {
                finding.outcome = Some(Err(error.to_string()));
                return Ok(finding);
            }
        };
        finding.subject = token.subject.clone();
        finding.email = token.email.clone().unwrap_or_default();
        finding.expires_at = Some(token.expires_at);
        let identity = match connection.admit(&token) {
            Ok(identity) => identity,
            Err(why) => {
                finding.outcome = Some(Err(why.message()));
                return Ok(finding);
            }
        };
        if let Some(agent_id) = caller_agent {
            let own = store::agents::find(self.db.conn(), workspace_id, agent_id).await?;
            let matches = own
                .as_ref()
                .is_some_and(|agent| agent.email_key == identity.email_key);
            if !matches {
                finding.outcome = Some(Err(format!(
                    "the provider vouched for {}, not for you{}: test with your own account, so that you know you can sign in through the connection before everyone must",
                    identity.email,
                    own.map(|agent| format!(" ({})", agent.email))
                        .unwrap_or_default()
                )));
                return Ok(finding);
            }
        }
        finding.outcome = Some(Ok(identity));
        Ok(finding)
    }

    /// SsoLogin: signs in (linking, accepting an invitation or provisioning the agent as
    /// `domain::sso::decide` says) and issues tokens as Login does.
    pub async fn sign_in_with_sso(
        &self,
        context: &RequestContext,
        workspace_id: &str,
        input: SsoSignIn,
    ) -> Result<Session> {
        let connection_id = input.connection_id;
        let attempt = |email_key: &'static str| Attempt {
            method: SignInMethod::Sso,
            email_key,
            sso_connection: Some(connection_id),
            subject: None,
            detail: None,
        };
        let policy = &self.sign_in;
        let address = context.peer_ip.clone().unwrap_or_default();
        let window_us = micros(policy.throttle.window);
        // Counted before anything is checked, as Login's are; a success gives it back.
        let throttled_until = in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            store::sign_in::count_attempt(
                &*txn,
                workspace_id,
                &address_key(&address),
                policy.throttle.per_address,
                window_us,
                self.now_us(),
            )
            .await
        })?;
        if let Some(until) = throttled_until {
            self.record_failure(
                context,
                workspace_id,
                None,
                &attempt(""),
                SignInOutcome::Throttled,
            )
            .await?;
            return Err(self.throttled(until));
        }

        let row = store::sso::find(self.db.conn(), workspace_id, connection_id).await?;
        let refusal = match &row {
            None => Some(StaffError::permission_denied(
                reason::SSO_CONNECTION_UNKNOWN,
                format!("this workspace has no SSO connection {connection_id}"),
            )),
            Some(row) if !row.enabled => Some(StaffError::permission_denied(
                reason::SSO_CONNECTION_DISABLED,
                format!(
                    "the SSO connection '{}' is not enabled; ask an administrator",
                    row.display_name
                ),
            )),
            Some(_) => None,
        };
        let row = match (row, refusal) {
            (Some(row), None) => row,
            (_, refusal) => {
                self.record_failure(
                    context,
                    workspace_id,
                    None,
                    &attempt(""),
                    SignInOutcome::SsoConnectionUnavailable,
                )
                .await?;
                return Err(refusal.unwrap_or_else(|| unusable("it disappeared")));
            }
        };
        let connection = match Connection::from_row(&row) {
            Ok(connection) => connection,
            Err(why) => {
                tracing::error!(%connection_id, workspace_id, %why, "stored SSO connection does not parse");
                self.record_failure(
                    context,
                    workspace_id,
                    None,
                    &Attempt {
                        detail: Some(&why),
                        ..attempt("")
                    },
                    SignInOutcome::SsoConnectionUnavailable,
                )
                .await?;
                return Err(unusable(&why));
            }
        };

        let token = match connection.verify(&input.id_token, &input.nonce, self.clock.now_secs()) {
            Ok(token) => token,
            Err(error) => {
                let detail = error.to_string();
                self.record_failure(
                    context,
                    workspace_id,
                    None,
                    &Attempt {
                        detail: Some(&detail),
                        ..attempt("")
                    },
                    SignInOutcome::SsoTokenInvalid,
                )
                .await?;
                return Err(token_refused(&error));
            }
        };
        let claimed_key = token
            .email
            .as_deref()
            .map(crate::domain::values::email_key)
            .unwrap_or_default();
        let claimed = Attempt {
            email_key: &claimed_key,
            subject: Some(&token.subject),
            ..attempt("")
        };
        let nonce_hash = secret::hash(&input.nonce);
        let keep_until = token
            .expires_at
            .saturating_add(ID_TOKEN_LEEWAY_SECS)
            .saturating_mul(1_000_000);
        let fresh = in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            store::sso::use_nonce(
                &*txn,
                workspace_id,
                connection_id,
                &nonce_hash,
                keep_until,
                self.now_us(),
            )
            .await
        })?;
        if !fresh {
            self.record_failure(
                context,
                workspace_id,
                None,
                &Attempt {
                    detail: Some(REPLAYED),
                    ..claimed
                },
                SignInOutcome::SsoTokenInvalid,
            )
            .await?;
            return Err(replayed());
        }
        let identity = match connection.admit(&token) {
            Ok(identity) => identity,
            Err(why) => {
                let detail = why.message();
                self.record_failure(
                    context,
                    workspace_id,
                    None,
                    &Attempt {
                        detail: Some(&detail),
                        ..claimed
                    },
                    SignInOutcome::SsoIdentityRefused,
                )
                .await?;
                return Err(not_admitted(&why));
            }
        };

        let signed_in = Attempt {
            email_key: &identity.email_key,
            subject: Some(&identity.subject),
            ..attempt("")
        };
        let provisioned = in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            // Read again in the transaction: a disable or a change committed since the
            // checks above wins over this sign-in.
            let current = match store::sso::find(conn, workspace_id, connection_id).await? {
                Some(current) if current.enabled => current,
                _ => {
                    return Ok(Provisioned::Refused {
                        error: StaffError::permission_denied(
                            reason::SSO_CONNECTION_DISABLED,
                            "the SSO connection was disabled; ask an administrator",
                        ),
                        outcome: SignInOutcome::SsoConnectionUnavailable,
                        agent: None,
                    });
                }
            };
            let verified_against = (
                &row.provider,
                &row.issuer,
                &row.client_id,
                &row.jwks,
                &row.allowed_email_domains,
            );
            if verified_against
                != (
                    &current.provider,
                    &current.issuer,
                    &current.client_id,
                    &current.jwks,
                    &current.allowed_email_domains,
                )
            {
                return Err(StaffError::refused(
                    Code::Aborted,
                    reason::CONCURRENT_CHANGE,
                    None,
                    "the SSO connection changed during the sign-in; sign in again",
                ));
            }
            let mode = ProvisioningMode::parse(&current.provisioning_mode)
                .ok_or_else(|| unusable("its provisioning mode is unknown"))?;
            let link =
                store::sso::identity(conn, workspace_id, connection_id, &identity.subject).await?;
            let linked = match &link {
                Some(link) => {
                    Some(store::agents::require(conn, workspace_id, link.agent_id).await?)
                }
                None => None,
            };
            let by_email = match &linked {
                Some(_) => None,
                None => match store::agents::find_by_email(conn, workspace_id, &identity.email_key)
                    .await?
                {
                    Some(agent) => {
                        let elsewhere = store::sso::identity_of_agent(
                            conn,
                            workspace_id,
                            connection_id,
                            agent.agent_id,
                        )
                        .await?
                        .is_some();
                        Some((agent, elsewhere))
                    }
                    None => None,
                },
            };
            let decision = sso::decide(
                mode,
                linked.as_ref(),
                by_email
                    .as_ref()
                    .map(|(agent, elsewhere)| (agent, *elsewhere)),
            );
            let found = linked.or(by_email.map(|(agent, _)| agent));
            let agent = match (decision, found) {
                (Decision::SignIn(_) | Decision::Link(_), Some(agent)) => agent,
                (Decision::AcceptInvitation(_), Some(invitee)) => {
                    match self
                        .accept_invitation_through_sso(conn, context, &invitee, connection_id, now)
                        .await?
                    {
                        Ok(agent) => agent,
                        Err(error) => {
                            return Ok(Provisioned::Refused {
                                error,
                                outcome: SignInOutcome::NotActive,
                                agent: Some(Box::new(invitee)),
                            });
                        }
                    }
                }
                (Decision::Create, None) => {
                    match self
                        .provision_agent(conn, context, &current, &identity, now)
                        .await?
                    {
                        Ok(agent) => agent,
                        Err(error) => {
                            return Ok(Provisioned::Refused {
                                error,
                                outcome: SignInOutcome::SsoNotProvisioned,
                                agent: None,
                            });
                        }
                    }
                }
                (Decision::Refuse(Refusal::NotActive(_)), Some(agent)) => {
                    return Ok(Provisioned::Refused {
                        error: not_active(&agent),
                        outcome: SignInOutcome::NotActive,
                        agent: Some(Box::new(agent)),
                    });
                }
                (Decision::Refuse(Refusal::IdentityConflict(_)), Some(agent)) => {
                    return Ok(Provisioned::Refused {
                        error: StaffError::permission_denied(
                            reason::SSO_IDENTITY_CONFLICT,
                            format!(
                                "the agent {} signs in through this connection as another person of the identity provider; ask an administrator",
                                agent.email
                            ),
                        ),
                        outcome: SignInOutcome::SsoIdentityRefused,
                        agent: Some(Box::new(agent)),
                    });
                }
                (Decision::Refuse(Refusal::NotProvisioned), None) => {
                    return Ok(Provisioned::Refused {
                        error: StaffError::permission_denied(
                            reason::SSO_NOT_PROVISIONED,
                            format!(
                                "{} is not an agent of this workspace, and this connection does not create agents; ask an administrator to invite you",
                                identity.email
                            ),
                        ),
                        outcome: SignInOutcome::SsoNotProvisioned,
                        agent: None,
                    });
                }
                (decision, found) => {
                    return Err(StaffError::Internal(format!(
                        "SSO decision {decision:?} does not fit the agent found ({:?})",
                        found.map(|agent| agent.agent_id)
                    )));
                }
            };
            if agent.status != AgentStatus::Active.as_str() {
                return Ok(Provisioned::Refused {
                    error: not_active(&agent),
                    outcome: SignInOutcome::NotActive,
                    agent: Some(Box::new(agent)),
                });
            }
            match &link {
                Some(link) => {
                    store::sso::touch_identity(conn, link, &identity.email, now).await?;
                }
                None => {
                    store::sso::link(
                        conn,
                        sso_identity::Model {
                            workspace_id: workspace_id.to_owned(),
                            connection_id,
                            subject: identity.subject.clone(),
                            agent_id: agent.agent_id,
                            email: identity.email.clone(),
                            linked_at: now,
                            last_sign_in_at: now,
                        },
                    )
                    .await?;
                    let mut changes = agent_context(&agent);
                    changes.push(change(
                        "sso_connection_id",
                        None,
                        Some(connection_id.to_string().into()),
                    ));
                    changes.push(change(
                        "sso_subject",
                        None,
                        Some(identity.subject.clone().into()),
                    ));
                    let event = self.event(
                        &self.agent_actor(&agent, context),
                        workspace_id,
                        "agent.sso_linked",
                        ("agent", agent.agent_id.to_string()),
                        changes,
                    );
                    outbox::append(conn, &[event]).await?;
                }
            }
            store::sign_in::refund_attempt(conn, workspace_id, &address_key(&address)).await?;
            store::sign_in::stamp_sign_in(conn, workspace_id, agent.agent_id, now).await?;
            let (refresh_row, refresh_secret) = self.new_refresh_token(&agent, Uuid::now_v7(), now);
            store::sign_in::insert_refresh_token(conn, refresh_row.clone()).await?;
            self.record_attempt(
                conn,
                context,
                workspace_id,
                Some(&agent),
                &signed_in,
                SignInOutcome::Succeeded,
                now,
            )
            .await?;
            let access = load_effective_access(conn, &agent).await?;
            let mut stamped = agent;
            stamped.last_sign_in_at = now;
            stamped.sign_in_count += 1;
            let view = self.view(conn, stamped).await?;
            Ok(Provisioned::Session(Box::new((
                view,
                access,
                refresh_row,
                refresh_secret,
            ))))
        })?;
        match provisioned {
            Provisioned::Session(session) => {
                let (view, access, row, secret) = *session;
                self.session(view, access, &row, &secret).await
            }
            Provisioned::Refused {
                error,
                outcome,
                agent,
            } => {
                self.record_failure(context, workspace_id, agent.as_deref(), &signed_in, outcome)
                    .await?;
                Err(error)
            }
        }
    }

    /// The agent as the actor of what its own sign-in does.
    fn agent_actor(&self, agent: &agent::Model, context: &RequestContext) -> Actor {
        Actor {
            kind: roster_auth::PrincipalKind::Agent.as_str().to_owned(),
            id: agent.agent_id.to_string(),
            context: context.clone(),
        }
    }

    /// Accepts the INVITED `invitee`'s pending invitation through a sign-in: ACTIVE, the
    /// invitation accepted, no password set. `Ok(Err)`: refused, nothing written.
    async fn accept_invitation_through_sso<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        context: &RequestContext,
        invitee: &agent::Model,
        connection_id: Uuid,
        now: i64,
    ) -> Result<std::result::Result<agent::Model, StaffError>> {
        let workspace_id = invitee.workspace_id.as_str();
        let Some(found) =
            store::invitations::pending_of(conn, workspace_id, invitee.agent_id).await?
        else {
            return Ok(Err(not_active(invitee)));
        };
        let state = InvitationState::parse(&found.state).ok_or_else(|| {
            StaffError::Internal(format!(
                "invitation {} has the unknown state '{}'",
                found.invitation_id, found.state
            ))
        })?;
        if let Err(why) = invitation::acceptable(state, found.expires_at, now) {
            return Ok(Err(not_acceptable(why)));
        }
        let mut after = invitee.clone();
        after.status = AgentStatus::Active.as_str().to_owned();
        after.activated_at = Some(invitee.activated_at.unwrap_or(now));
        after.updated_at = now;
        after.version += 1;
        if !store::agents::update(conn, invitee, &after).await? {
            return Err(StaffError::Database(roster_db::DbError::Conflict));
        }
        store::invitations::end_pending(
            conn,
            workspace_id,
            invitee.agent_id,
            InvitationState::Accepted,
            now,
        )
        .await?;
        let mut changes = agent_context(invitee);
        changes.push(change(
            "status",
            Some(invitee.status.clone().into()),
            Some(after.status.clone().into()),
        ));
        changes.push(change(
            "invitation_id",
            Some(found.invitation_id.to_string().into()),
            None,
        ));
        changes.push(change("method", None, Some("sso".into())));
        changes.push(change(
            "sso_connection_id",
            None,
            Some(connection_id.to_string().into()),
        ));
        let event = self.event(
            &self.agent_actor(invitee, context),
            workspace_id,
            "agent.invitation_accepted",
            ("agent", invitee.agent_id.to_string()),
            changes,
        );
        outbox::append(conn, &[event]).await?;
        Ok(Ok(after))
    }

    /// Just-in-time provisioning: an ACTIVE agent with the connection's default role, if
    /// a seat is free (decided under the workspace's lock, as invitations are).
    /// `Ok(Err)`: refused, nothing written.
    async fn provision_agent<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        context: &RequestContext,
        connection: &sso_connection::Model,
        identity: &Identity,
        now: i64,
    ) -> Result<std::result::Result<agent::Model, StaffError>> {
        let workspace_id = connection.workspace_id.as_str();
        let workspace = store::workspaces::lock(conn, workspace_id, now).await?;
        match self.require_free_seat(conn, &workspace).await {
            Ok(()) => {}
            Err(StaffError::Refused(refusal)) if refusal.reason == reason::SEAT_LIMIT_REACHED => {
                // Not the counts the administrators' message gives: this caller is not one.
                return Ok(Err(StaffError::failed_precondition(
                    reason::SEAT_LIMIT_REACHED,
                    "every seat of this workspace is taken, so no agent can be created for you; ask an administrator",
                )));
            }
            Err(error) => return Err(error),
        }
        let Some(role) =
            store::roles::resolve(conn, workspace_id, &connection.default_role).await?
        else {
            return Ok(Err(StaffError::failed_precondition(
                reason::ROLE_UNKNOWN,
                format!(
                    "the SSO connection gives the role '{}', which no longer exists; ask an administrator",
                    connection.default_role
                ),
            )));
        };
        let agent = agent::Model {
            workspace_id: workspace_id.to_owned(),
            agent_id: Uuid::now_v7(),
            email: identity.email.clone(),
            email_key: identity.email_key.clone(),
            name: identity.name.clone(),
            name_key: identity.name.to_lowercase(),
            avatar_url: String::new(),
            role: role.name.clone(),
            extra_permissions: "[]".to_owned(),
            status: AgentStatus::Active.as_str().to_owned(),
            notification_preferences: "{}".to_owned(),
            signature: String::new(),
            theme: String::new(),
            language: String::new(),
            created_at: now,
            updated_at: now,
            activated_at: Some(now),
            deactivated_at: None,
            deactivation_reason: String::new(),
            last_sign_in_at: 0,
            version: 1,
            sign_in_count: 0,
            token_generation: 0,
        };
        store::agents::insert(conn, agent.clone()).await?;
        let event = self.event(
            &self.agent_actor(&agent, context),
            workspace_id,
            "agent.provisioned",
            ("agent", agent.agent_id.to_string()),
            vec![
                change("email", None, Some(agent.email.clone().into())),
                change("name", None, Some(agent.name.clone().into())),
                change("role", None, Some(agent.role.clone().into())),
                change("status", None, Some(agent.status.clone().into())),
                change(
                    "sso_connection_id",
                    None,
                    Some(connection.connection_id.to_string().into()),
                ),
                change(
                    "sso_connection.display_name",
                    None,
                    Some(connection.display_name.clone().into()),
                ),
            ],
        );
        outbox::append(conn, &[event]).await?;
        Ok(Ok(agent))
    }
}
