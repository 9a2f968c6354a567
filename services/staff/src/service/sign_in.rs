//! Signing in with a password, redeeming refresh tokens, signing out, and the record of
//! every attempt.
//!
//! A password attempt is counted against the account and the address before the password
//! is checked (in its own short transaction), so a burst of parallel guesses gets no more
//! checks than the limit. An unknown e-mail costs the same argon2 verification as a wrong
//! password and is answered with the same status and message.

use std::collections::BTreeMap;
use std::time::Duration;

use roster_auth::{PrincipalKind, WorkspaceAccess};
use roster_core::{Actor, RequestContext};
use roster_db::outbox::FieldChange;
use roster_db::{in_write_txn, outbox};
use tonic::Code;
use uuid::Uuid;

use super::access::load_effective_access;
use super::tokens::AccessToken;
use super::{AgentView, FAILURE, Staff, agent_context, change};
use crate::domain::access::EffectiveAccess;
use crate::domain::sign_in::{
    RefreshToken, SignInMethod, SignInOutcome, Throttle, account_key, address_key,
};
use crate::domain::{AgentStatus, password, secret};
use crate::entity::{agent, refresh_token, sign_in_attempt};
use crate::error::{Result, StaffError, reason};
use crate::settings::SignInSettings;
use crate::store;

/// How the staff service signs agents in.
#[derive(Clone, Debug)]
pub struct SignInPolicy {
    /// The `iss` and `aud` the verifiers expect.
    pub issuer: String,
    pub audience: String,
    /// How long a refresh token may wait to be redeemed.
    pub refresh_ttl: Duration,
    pub throttle: Throttle,
}

impl SignInPolicy {
    /// Tokens for the verifiers' `issuer` and `audience`, sign-ins as `settings` say.
    pub fn new(issuer: String, audience: String, settings: SignInSettings) -> Self {
        Self {
            issuer,
            audience,
            refresh_ttl: settings.refresh_ttl,
            throttle: settings.throttle,
        }
    }
}

impl Default for SignInPolicy {
    /// For the default verifier settings' issuer and audience.
    fn default() -> Self {
        let verifier = roster_auth::VerifierSettings::default();
        Self::new(
            verifier.issuer,
            verifier.audience,
            SignInSettings::default(),
        )
    }
}

/// What a successful sign-in or refresh hands the client.
#[derive(Clone, Debug)]
pub struct Session {
    pub agent: AgentView,
    pub access: AccessToken,
    pub refresh_token: String,
    pub refresh_expires_at: i64,
}

/// A checked Login request.
#[derive(Clone, Debug)]
pub struct PasswordSignIn {
    pub email: String,
    pub password: String,
}

/// What the record of one sign-in attempt says besides its agent and outcome.
#[derive(Clone, Copy, Debug)]
pub(super) struct Attempt<'a> {
    pub method: SignInMethod,
    /// The e-mail typed, or the one the identity provider vouched for (lower-cased);
    /// empty when no e-mail is known.
    pub email_key: &'a str,
    pub sso_connection: Option<Uuid>,
    /// The identity provider's `sub`, once a token verified.
    pub subject: Option<&'a str>,
    /// Precisely why it failed, for the audit log only (the caller is told less).
    pub detail: Option<&'a str>,
}

impl<'a> Attempt<'a> {
    fn password(email_key: &'a str) -> Self {
        Attempt {
            method: SignInMethod::Password,
            email_key,
            sso_connection: None,
            subject: None,
            detail: None,
        }
    }
}

fn wrong_credentials() -> StaffError {
    StaffError::refused(
        Code::Unauthenticated,
        reason::WRONG_CREDENTIALS,
        None,
        "the e-mail address or the password is wrong",
    )
}

fn refresh_refused(message: &str) -> StaffError {
    StaffError::refused(
        Code::Unauthenticated,
        reason::REFRESH_TOKEN_INVALID,
        None,
        message.to_owned(),
    )
}

pub(super) fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// The refused attempt's actor: nobody proven yet.
fn anonymous(context: &RequestContext) -> Actor {
    Actor {
        kind: "anonymous".to_owned(),
        id: String::new(),
        context: context.clone(),
    }
}

/// How a refresh-token redemption ended inside its transaction: refusals that must still
/// commit (a reuse revokes the family) travel as values, not errors, which would roll back.
enum Redeemed {
    Session(Box<(AgentView, EffectiveAccess, refresh_token::Model, String)>),
    Refused(StaffError),
}

impl Staff {
    pub async fn sign_in_with_password(
        &self,
        context: &RequestContext,
        workspace_id: &str,
        input: PasswordSignIn,
    ) -> Result<Session> {
        let policy = &self.sign_in;
        let email_key = crate::domain::values::email_key(&input.email);
        let address = context.peer_ip.clone().unwrap_or_default();
        let window_us = micros(policy.throttle.window);
        let throttled_until = in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            let counted = [
                (account_key(&email_key), policy.throttle.per_account),
                (address_key(&address), policy.throttle.per_address),
            ];
            for (key, limit) in counted {
                if let Some(until) =
                    store::sign_in::count_attempt(conn, workspace_id, &key, limit, window_us, now)
                        .await?
                {
                    return Ok(Some(until));
                }
            }
            Ok(None)
        })?;

        let found = store::agents::find_by_email(self.db.conn(), workspace_id, &email_key).await?;
        if let Some(until) = throttled_until {
            self.record_failure(
                context,
                workspace_id,
                found.as_ref(),
                &Attempt::password(&email_key),
                SignInOutcome::Throttled,
            )
            .await?;
            return Err(self.throttled(until));
        }

        let stored = match &found {
            Some(agent) => {
                store::agents::password_hash(self.db.conn(), workspace_id, agent.agent_id).await?
            }
            None => None,
        };
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| password::decoy_hash().to_owned());
        let password = input.password;
        let matches = tokio::task::spawn_blocking(move || password::verify(&password, &stored))
            .await
            .map_err(|error| StaffError::Internal(format!("password check task: {error}")))?;
        let agent = match found {
            Some(agent) if known && matches => agent,
            found => {
                self.record_failure(
                    context,
                    workspace_id,
                    found.as_ref(),
                    &Attempt::password(&email_key),
                    SignInOutcome::WrongCredentials,
                )
                .await?;
                return Err(wrong_credentials());
            }
        };
        if agent.status != AgentStatus::Active.as_str() {
            self.record_failure(
                context,
                workspace_id,
                Some(&agent),
                &Attempt::password(&email_key),
                SignInOutcome::NotActive,
            )
            .await?;
            return Err(StaffError::refused(
                Code::PermissionDenied,
                reason::AGENT_NOT_ACTIVE,
                None,
                format!(
                    "this agent is {} and cannot sign in; ask an administrator",
                    agent.status.to_lowercase()
                ),
            ));
        }

        let (view, access, refresh_row, secret) =
            in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
                let conn = &*txn;
                let now = self.now_us();
                // Re-read in the transaction: a deactivation may have committed meanwhile.
                let current = store::agents::require(conn, workspace_id, agent.agent_id).await?;
                if current.status != AgentStatus::Active.as_str() {
                    return Err(StaffError::refused(
                        Code::PermissionDenied,
                        reason::AGENT_NOT_ACTIVE,
                        None,
                        "this agent was deactivated; ask an administrator",
                    ));
                }
                store::sign_in::clear_attempts(conn, workspace_id, &account_key(&email_key))
                    .await?;
                store::sign_in::refund_attempt(conn, workspace_id, &address_key(&address)).await?;
                store::sign_in::stamp_sign_in(conn, workspace_id, current.agent_id, now).await?;
                let (row, secret) = self.new_refresh_token(&current, Uuid::now_v7(), now);
                store::sign_in::insert_refresh_token(conn, row.clone()).await?;
                self.record_attempt(
                    conn,
                    context,
                    workspace_id,
                    Some(&current),
                    &Attempt::password(&email_key),
                    SignInOutcome::Succeeded,
                    now,
                )
                .await?;
                let access = load_effective_access(conn, &current).await?;
                let mut signed_in = current.clone();
                signed_in.last_sign_in_at = now;
                signed_in.sign_in_count += 1;
                Ok((self.view(conn, signed_in).await?, access, row, secret))
            })?;
        self.session(view, access, &refresh_row, &secret).await
    }

    /// RESOURCE_EXHAUSTED for an attempt refused unchecked until `until`, saying when to
    /// retry.
    pub(super) fn throttled(&self, until: i64) -> StaffError {
        let wait =
            Duration::from_micros(u64::try_from(until.saturating_sub(self.now_us())).unwrap_or(0))
                .max(Duration::from_secs(1));
        StaffError::Refused(Box::new(roster_service::Refusal {
            retry_after: Some(wait),
            ..roster_service::Refusal::new(
                Code::ResourceExhausted,
                reason::SIGN_IN_THROTTLED,
                format!(
                    "too many sign-in attempts for this account or from this address; try again in {} s",
                    wait.as_secs()
                ),
            )
        }))
    }

    /// Exchanges a refresh token for a new access token and a new refresh token. The old
    /// one is spent: presenting it again revokes every token of its sign-in, since only a
    /// copy (a thief, or the owner after a thief) can present a spent token.
    pub async fn refresh(&self, context: &RequestContext, token: &str) -> Result<Session> {
        let presented = RefreshToken::parse(token)
            .ok_or_else(|| refresh_refused("the refresh token is not one this service issued"))?;
        let workspace_id = presented.workspace_id.as_str();
        let redeemed = in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            let Some(row) =
                store::sign_in::lock_refresh_token(conn, workspace_id, presented.token_id).await?
            else {
                return Ok(Redeemed::Refused(refresh_refused(
                    "the refresh token is not one this service issued",
                )));
            };
            if !secret::matches(&presented.secret, &row.secret_hash) {
                return Ok(Redeemed::Refused(refresh_refused(
                    "the refresh token is not one this service issued",
                )));
            }
            if row.revoked_at.is_some() {
                return Ok(Redeemed::Refused(refresh_refused(
                    "the refresh token was revoked; sign in again",
                )));
            }
            let agent = store::agents::require(conn, workspace_id, row.agent_id).await?;
            if row.rotated_at.is_some() {
                store::sign_in::revoke_family(conn, workspace_id, row.family_id, now).await?;
                let mut changes = agent_context(&agent);
                changes.push(change(
                    "family_id",
                    None,
                    Some(row.family_id.to_string().into()),
                ));
                let mut event = self.event(
                    &anonymous(context),
                    workspace_id,
                    "agent.refresh_token_reused",
                    ("agent", agent.agent_id.to_string()),
                    changes,
                );
                event.outcome = FAILURE.to_owned();
                outbox::append(conn, &[event]).await?;
                return Ok(Redeemed::Refused(refresh_refused(
                    "the refresh token was already used; every token of this sign-in is revoked, sign in again",
                )));
            }
            if row.expires_at <= now {
                return Ok(Redeemed::Refused(refresh_refused(
                    "the refresh token expired; sign in again",
                )));
            }
            if agent.status != AgentStatus::Active.as_str() {
                store::sign_in::revoke_family(conn, workspace_id, row.family_id, now).await?;
                return Ok(Redeemed::Refused(refresh_refused(
                    "the agent is no longer active; sign in again",
                )));
            }
            store::sign_in::mark_rotated(conn, workspace_id, row.token_id, now).await?;
            let (next, secret) = self.new_refresh_token(&agent, row.family_id, now);
            store::sign_in::insert_refresh_token(conn, next.clone()).await?;
            let access = load_effective_access(conn, &agent).await?;
            let view = self.view(conn, agent).await?;
            Ok(Redeemed::Session(Box::new((view, access, next, secret))))
        })?;
        match redeemed {
            Redeemed::Session(session) => {
                let (view, access, row, secret) = *session;
                self.session(view, access, &row, &secret).await
            }
            Redeemed::Refused(error) => Err(error),
        }
    }

    /// Revokes the refresh token's whole sign-in. Signing out twice is fine; a token this
    /// service never issued is refused.
    pub async fn sign_out(&self, context: &RequestContext, token: &str) -> Result<()> {
        let presented = RefreshToken::parse(token)
            .ok_or_else(|| refresh_refused("the refresh token is not one this service issued"))?;
        let workspace_id = presented.workspace_id.as_str();
        in_write_txn!(self.db, StaffError, retry_unique = false, |txn| {
            let conn = &*txn;
            let now = self.now_us();
            let row = store::sign_in::lock_refresh_token(conn, workspace_id, presented.token_id)
                .await?
                .filter(|row| secret::matches(&presented.secret, &row.secret_hash))
                .ok_or_else(|| {
                    refresh_refused("the refresh token is not one this service issued")
                })?;
            let revoked =
                store::sign_in::revoke_family(conn, workspace_id, row.family_id, now).await?;
            if revoked > 0 {
                let agent = store::agents::require(conn, workspace_id, row.agent_id).await?;
                let actor = Actor {
                    kind: PrincipalKind::Agent.as_str().to_owned(),
                    id: agent.agent_id.to_string(),
                    context: context.clone(),
                };
                let event = self.event(
                    &actor,
                    workspace_id,
                    "agent.logged_out",
                    ("agent", agent.agent_id.to_string()),
                    agent_context(&agent),
                );
                outbox::append(conn, &[event]).await?;
            }
            Ok(())
        })
    }

    /// The agent's sign-in attempts, newest first.
    pub async fn sign_in_history(
        &self,
        workspace_id: &str,
        agent_id: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<sign_in_attempt::Model>> {
        store::agents::require(self.db.conn(), workspace_id, agent_id).await?;
        store::sign_in::attempts_of(self.db.conn(), workspace_id, agent_id, after, limit).await
    }

    pub(super) fn new_refresh_token(
        &self,
        agent: &agent::Model,
        family_id: Uuid,
        now: i64,
    ) -> (refresh_token::Model, String) {
        let token = RefreshToken {
            workspace_id: agent.workspace_id.clone(),
            token_id: Uuid::now_v7(),
            secret: secret::new(&mut rand::rng()),
        };
        let row = refresh_token::Model {
            workspace_id: agent.workspace_id.clone(),
            token_id: token.token_id,
            family_id,
            agent_id: agent.agent_id,
            secret_hash: secret::hash(&token.secret),
            created_at: now,
            expires_at: now.saturating_add(micros(self.sign_in.refresh_ttl)),
            rotated_at: None,
            revoked_at: None,
        };
        (row, token.encode())
    }

    /// The access token for the agent as it is now (`held`: its effective access, read in
    /// the transaction that checked it), with the refresh token just stored.
    pub(super) async fn session(
        &self,
        view: AgentView,
        held: EffectiveAccess,
        refresh: &refresh_token::Model,
        refresh_token: &str,
    ) -> Result<Session> {
        let agent = &view.agent;
        let access = self
            .tokens
            .mint(
                agent.agent_id.to_string(),
                PrincipalKind::Agent,
                BTreeMap::from([(
                    agent.workspace_id.clone(),
                    WorkspaceAccess {
                        role: held.role,
                        permissions: held.permissions.into_iter().collect(),
                    },
                )]),
                agent.token_generation,
                self.now_us(),
            )
            .await?;
        Ok(Session {
            access,
            refresh_token: refresh_token.to_owned(),
            refresh_expires_at: refresh.expires_at,
            agent: view,
        })
    }

    /// Records a failed attempt with its audit event, in a transaction of its own: the
    /// refusal must not undo the record of it.
    pub(super) async fn record_failure(
        &self,
        context: &RequestContext,
        workspace_id: &str,
        agent: Option<&agent::Model>,
        attempt: &Attempt<'_>,
        outcome: SignInOutcome,
    ) -> Result<()> {
        in_write_txn!(self.db, StaffError, retry_unique = true, |txn| {
            let now = self.now_us();
            self.record_attempt(&*txn, context, workspace_id, agent, attempt, outcome, now)
                .await
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record_attempt<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        context: &RequestContext,
        workspace_id: &str,
        agent: Option<&agent::Model>,
        attempt: &Attempt<'_>,
        outcome: SignInOutcome,
        now: i64,
    ) -> Result<()> {
        let email_key = attempt.email_key;
        let attempt_row = sign_in_attempt::Model {
            workspace_id: workspace_id.to_owned(),
            attempt_id: Uuid::now_v7(),
            agent_id: agent.map(|agent| agent.agent_id),
            email: email_key.to_owned(),
            method: attempt.method.as_str().to_owned(),
            outcome: outcome.as_str().to_owned(),
            ip: context.peer_ip.clone().unwrap_or_default(),
            user_agent: context.user_agent.clone().unwrap_or_default(),
            at: now,
            sso_connection_id: attempt.sso_connection,
        };
        store::sign_in::record_attempt(conn, attempt_row.clone()).await?;
        let (actor, action) = match (outcome, agent) {
            (SignInOutcome::Succeeded, Some(agent)) => (
                Actor {
                    kind: PrincipalKind::Agent.as_str().to_owned(),
                    id: agent.agent_id.to_string(),
                    context: context.clone(),
                },
                "agent.logged_in",
            ),
            _ => (anonymous(context), "agent.login_failed"),
        };
        let mut changes: Vec<FieldChange> = agent.map(agent_context).unwrap_or_default();
        changes.push(change("email", None, Some(email_key.into())));
        changes.push(change(
            "method",
            None,
            Some(attempt_row.method.clone().into()),
        ));
        changes.push(change(
            "outcome",
            None,
            Some(attempt_row.outcome.clone().into()),
        ));
        if let Some(connection) = attempt.sso_connection {
            changes.push(change(
                "sso_connection_id",
                None,
                Some(connection.to_string().into()),
            ));
        }
        if let Some(subject) = attempt.subject {
            changes.push(change("sso_subject", None, Some(subject.into())));
        }
        if let Some(detail) = attempt.detail {
            changes.push(change("failure", None, Some(detail.into())));
        }
        let target = (
            "agent",
            agent
                .map(|agent| agent.agent_id.to_string())
                .unwrap_or_default(),
        );
        let mut event = self.event(&actor, workspace_id, action, target, changes);
        if action == "agent.login_failed" {
            // So the audit log's outcome filter finds failed sign-ins.
            event.outcome = FAILURE.to_owned();
        }
        outbox::append(conn, &[event]).await?;
        Ok(())
    }
}
