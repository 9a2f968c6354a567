//! Handlers of Login, RefreshToken, Logout (public: the credentials travel in the request)
//! and ListLoginHistory.

use roster_core::RequestContext;
use roster_core::paging::{Cursor, page_size, query_fingerprint};
use roster_proto::staff::v1 as pb;
use tonic::Request;
use uuid::Uuid;

use super::{Checks, StaffApi, caller, convert};
use crate::api::authz;
use crate::domain::sign_in::SignInOutcome;
use crate::domain::{password, values};
use crate::error::{Result, StaffError};
use crate::service::{PasswordSignIn, Session};

/// The runtime's context of a request that carries no token.
pub(super) fn context_of<T>(request: &Request<T>) -> RequestContext {
    request
        .extensions()
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_default()
}

/// A refresh token is ours only if it is short; anything longer is refused before a lookup.
fn refresh_token_field(token: &str) -> Result<&str> {
    if token.is_empty() {
        return Err(StaffError::invalid("refresh_token", "is required"));
    }
    if token.len() > 512 {
        return Err(StaffError::invalid(
            "refresh_token",
            "is not a refresh token",
        ));
    }
    Ok(token)
}

pub(super) fn login_response(session: Session) -> Result<pb::LoginResponse> {
    Ok(pb::LoginResponse {
        access_token: session.access.token,
        token_type: "Bearer".to_owned(),
        access_token_expires_at: Some(convert::timestamp(session.access.expires_at)),
        refresh_token: session.refresh_token,
        refresh_token_expires_at: Some(convert::timestamp(session.refresh_expires_at)),
        agent: Some(convert::agent(session.agent)?),
    })
}

pub(super) async fn login(
    api: &StaffApi,
    request: Request<pb::LoginRequest>,
) -> Result<pb::LoginResponse> {
    let context = context_of(&request);
    let pb::LoginRequest {
        workspace_id,
        email,
        password: secret,
    } = request.into_inner();
    let mut checks = Checks::default();
    let workspace_id = checks.take(values::workspace_id("workspace_id", &workspace_id));
    let email = checks.take(values::email("email", &email));
    // Only the bounds: a password set under an older policy must still sign in, and
    // the bound keeps one request's argon2 work fixed.
    if secret.is_empty() {
        checks
            .0
            .push(roster_core::FieldViolation::new("password", "is required"));
    } else if secret.chars().count() > password::MAX_CHARS {
        checks.0.push(roster_core::FieldViolation::new(
            "password",
            format!("is longer than {} characters", password::MAX_CHARS),
        ));
    }
    checks.done()?;
    let session = api
        .staff
        .sign_in_with_password(
            &context,
            &workspace_id,
            PasswordSignIn {
                email,
                password: secret,
            },
        )
        .await?;
    login_response(session)
}

pub(super) async fn refresh_token(
    api: &StaffApi,
    request: Request<pb::RefreshTokenRequest>,
) -> Result<pb::LoginResponse> {
    let context = context_of(&request);
    let pb::RefreshTokenRequest { refresh_token } = request.into_inner();
    let token = refresh_token_field(&refresh_token)?;
    login_response(api.staff.refresh(&context, token).await?)
}

pub(super) async fn logout(
    api: &StaffApi,
    request: Request<pb::LogoutRequest>,
) -> Result<pb::LogoutResponse> {
    let context = context_of(&request);
    let pb::LogoutRequest { refresh_token } = request.into_inner();
    let token = refresh_token_field(&refresh_token)?;
    api.staff.sign_out(&context, token).await?;
    Ok(pb::LogoutResponse {})
}

pub(super) async fn list_login_history(
    api: &StaffApi,
    request: Request<pb::ListLoginHistoryRequest>,
) -> Result<pb::ListLoginHistoryResponse> {
    let (principal, _) = caller(&request)?;
    let pb::ListLoginHistoryRequest {
        workspace_id,
        agent_id,
        page_size: size,
        page_token,
    } = request.into_inner();
    let workspace_id = values::workspace_id("workspace_id", &workspace_id)?;
    let agent_id = values::id("agent_id", &agent_id)?;
    authz::authorize_about(
        &principal,
        &workspace_id,
        "ListLoginHistory",
        Some(agent_id),
    )?;
    let limit = page_size(size)?;
    let fingerprint = query_fingerprint(&["login_history", &agent_id.to_string()]);
    let after = Cursor::decode(&page_token, &fingerprint)?
        .and_then(|cursor| cursor.id)
        .map(|id| {
            Uuid::try_parse(&id)
                .map_err(|_| StaffError::invalid("page_token", "is not a page token of this list"))
        })
        .transpose()?;
    let mut rows = api
        .staff
        .sign_in_history(&workspace_id, agent_id, after, limit + 1)
        .await?;
    let keep = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_page_token = if rows.len() > keep {
        rows.truncate(keep);
        rows.last()
            .map(|row| {
                Cursor {
                    text: None,
                    number: None,
                    id: Some(row.attempt_id.to_string()),
                    query: fingerprint.clone(),
                }
                .encode()
            })
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(pb::ListLoginHistoryResponse {
        attempts: rows
            .into_iter()
            .map(|row| pb::LoginAttempt {
                attempt_id: row.attempt_id.to_string(),
                attempted_at: Some(convert::timestamp(row.at)),
                method: row.method,
                outcome: match SignInOutcome::parse(&row.outcome) {
                    Some(SignInOutcome::Succeeded) => pb::LoginOutcome::Succeeded,
                    Some(SignInOutcome::WrongCredentials) => pb::LoginOutcome::WrongCredentials,
                    Some(SignInOutcome::Throttled) => pb::LoginOutcome::Throttled,
                    Some(SignInOutcome::NotActive) => pb::LoginOutcome::NotActive,
                    Some(SignInOutcome::SsoTokenInvalid) => pb::LoginOutcome::SsoTokenInvalid,
                    Some(SignInOutcome::SsoIdentityRefused) => pb::LoginOutcome::SsoIdentityRefused,
                    Some(SignInOutcome::SsoNotProvisioned) => pb::LoginOutcome::SsoNotProvisioned,
                    Some(SignInOutcome::SsoConnectionUnavailable) => {
                        pb::LoginOutcome::SsoConnectionUnavailable
                    }
                    None => pb::LoginOutcome::Unspecified,
                } as i32,
                ip: row.ip,
                user_agent: row.user_agent,
                sso_connection_id: row
                    .sso_connection_id
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
            })
            .collect(),
        next_page_token,
    })
}
