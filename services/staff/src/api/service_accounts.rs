//! Handlers of the service-account calls and of IssueServiceToken (public: the client
//! secret is the credential).

use roster_auth::{ALL_WORKSPACES, Principal, WorkspaceScope};
use roster_core::FieldViolation;
use roster_core::etag::{etag, parse_etag};
use roster_core::paging::{Cursor, page_size, query_fingerprint};
use roster_core::values::text;
use roster_proto::staff::v1 as pb;
use tonic::Request;
use uuid::Uuid;

use super::{Checks, StaffApi, caller, convert, workspace};
use crate::api::authz;
use crate::domain::service_account::{ClientId, ServiceAccountStatus};
use crate::domain::values;
use crate::entity::service_account;
use crate::error::{Result, StaffError, reason};
use crate::service::{NewServiceAccount, WithSecret, service_account_list};

fn account(row: service_account::Model) -> Result<pb::ServiceAccount> {
    let workspaces = service_account_list(&row, "workspaces")?;
    let permissions = service_account_list(&row, "permissions")?;
    Ok(pb::ServiceAccount {
        client_id: ClientId {
            workspace_id: row.workspace_id.clone(),
            service_account_id: row.service_account_id,
        }
        .encode(),
        service_account_id: row.service_account_id.to_string(),
        workspace_id: row.workspace_id,
        name: row.name,
        description: row.description,
        workspaces,
        permissions,
        status: if row.status == ServiceAccountStatus::Active.as_str() {
            pb::ServiceAccountStatus::Active
        } else {
            pb::ServiceAccountStatus::Revoked
        } as i32,
        created_at: Some(convert::timestamp(row.created_at)),
        updated_at: Some(convert::timestamp(row.updated_at)),
        revoked_at: row.revoked_at.map(convert::timestamp),
        etag: etag(row.version),
    })
}

fn with_secret(created: WithSecret) -> Result<pb::ServiceAccountWithSecret> {
    Ok(pb::ServiceAccountWithSecret {
        service_account: Some(account(created.account)?),
        client_secret: created.client_secret,
    })
}

/// The workspaces a new account acts in: the request's by default, `*` alone, or ids. The
/// caller must manage staff in each and hold every permission granted there; `*` needs a
/// caller that itself acts in every workspace.
fn account_workspaces(
    principal: &Principal,
    owner: &str,
    requested: &[String],
    permissions: &[String],
) -> Result<Vec<String>> {
    let mut workspaces: Vec<String> = if requested.is_empty() {
        vec![owner.to_owned()]
    } else {
        requested.to_vec()
    };
    workspaces.sort_unstable();
    workspaces.dedup();
    if workspaces.iter().any(|w| w == ALL_WORKSPACES) {
        if workspaces.len() != 1 {
            return Err(StaffError::invalid(
                "workspaces",
                "`*` (every workspace) must be the only entry",
            ));
        }
        if !matches!(principal.workspaces, WorkspaceScope::All(_)) {
            return Err(StaffError::permission_denied(
                reason::WORKSPACE_NOT_GRANTED,
                "only a platform service acting in every workspace may create an account for every workspace",
            ));
        }
    } else {
        let mut violations = Vec::new();
        for (index, workspace) in workspaces.iter().enumerate() {
            if let Err(mut violation) = values::workspace_id("workspaces", workspace) {
                violation.field = format!("workspaces[{index}]");
                violations.push(violation);
            }
        }
        if !violations.is_empty() {
            return Err(StaffError::Invalid(violations));
        }
    }
    for workspace in &workspaces {
        authz::authorize(principal, workspace, "CreateServiceAccount")?;
        authz::granter(principal, workspace)?
            .may_grant(|| "a service account's permissions".to_owned(), permissions)?;
    }
    Ok(workspaces)
}

pub(super) async fn create(
    api: &StaffApi,
    request: Request<pb::CreateServiceAccountRequest>,
) -> Result<pb::ServiceAccountWithSecret> {
    let (principal, actor) = caller(&request)?;
    let pb::CreateServiceAccountRequest {
        workspace_id,
        name,
        description,
        workspaces,
        permissions,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "CreateServiceAccount")?;
    let mut checks = Checks::default();
    let name = checks.take(values::name("name", &name));
    if name.is_empty() {
        checks.0.push(FieldViolation::new("name", "is required"));
    }
    let description = checks.take(text("description", &description, 2000, true));
    let permissions = checks.take_all(values::permissions("permissions", &permissions));
    checks.done()?;
    let workspaces = account_workspaces(&principal, &workspace_id, &workspaces, &permissions)?;
    with_secret(
        api.staff
            .create_service_account(
                &actor,
                &workspace_id,
                NewServiceAccount {
                    name,
                    description,
                    workspaces,
                    permissions,
                },
            )
            .await?,
    )
}

pub(super) async fn list(
    api: &StaffApi,
    request: Request<pb::ListServiceAccountsRequest>,
) -> Result<pb::ListServiceAccountsResponse> {
    let (principal, _) = caller(&request)?;
    let pb::ListServiceAccountsRequest {
        workspace_id,
        page_size: size,
        page_token,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "ListServiceAccounts")?;
    let limit = page_size(size)?;
    let fingerprint = query_fingerprint(&["service_accounts"]);
    let after = Cursor::decode(&page_token, &fingerprint)?
        .and_then(|cursor| cursor.id)
        .map(|id| {
            Uuid::try_parse(&id)
                .map_err(|_| StaffError::invalid("page_token", "is not a page token of this list"))
        })
        .transpose()?;
    let mut rows = api
        .staff
        .list_service_accounts(&workspace_id, after, limit + 1)
        .await?;
    let keep = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_page_token = if rows.len() > keep {
        rows.truncate(keep);
        rows.last()
            .map(|row| {
                Cursor {
                    text: None,
                    number: None,
                    id: Some(row.service_account_id.to_string()),
                    query: fingerprint.clone(),
                }
                .encode()
            })
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(pb::ListServiceAccountsResponse {
        service_accounts: rows.into_iter().map(account).collect::<Result<_>>()?,
        next_page_token,
    })
}

pub(super) async fn rotate_secret(
    api: &StaffApi,
    request: Request<pb::RotateServiceAccountSecretRequest>,
) -> Result<pb::ServiceAccountWithSecret> {
    let (principal, actor) = caller(&request)?;
    let pb::RotateServiceAccountSecretRequest {
        workspace_id,
        service_account_id,
        etag,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "RotateServiceAccountSecret")?;
    let mut checks = Checks::default();
    let id = checks.take(values::id("service_account_id", &service_account_id));
    let version = checks.take(parse_etag("etag", &etag));
    checks.done()?;
    with_secret(
        api.staff
            .rotate_service_account_secret(&actor, &workspace_id, id, version)
            .await?,
    )
}

pub(super) async fn revoke(
    api: &StaffApi,
    request: Request<pb::RevokeServiceAccountRequest>,
) -> Result<pb::ServiceAccount> {
    let (principal, actor) = caller(&request)?;
    let pb::RevokeServiceAccountRequest {
        workspace_id,
        service_account_id,
        etag,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "RevokeServiceAccount")?;
    let mut checks = Checks::default();
    let id = checks.take(values::id("service_account_id", &service_account_id));
    let version = checks.take(parse_etag("etag", &etag));
    checks.done()?;
    account(
        api.staff
            .revoke_service_account(&actor, &workspace_id, id, version)
            .await?,
    )
}

pub(super) async fn issue_token(
    api: &StaffApi,
    request: Request<pb::IssueServiceTokenRequest>,
) -> Result<pb::IssueServiceTokenResponse> {
    let context = super::sign_in::context_of(&request);
    let pb::IssueServiceTokenRequest {
        client_id,
        client_secret,
    } = request.into_inner();
    let mut checks = Checks::default();
    for (field, value) in [("client_id", &client_id), ("client_secret", &client_secret)] {
        if value.is_empty() {
            checks.0.push(FieldViolation::new(field, "is required"));
        } else if value.len() > 256 {
            checks.0.push(FieldViolation::new(field, "is too long"));
        }
    }
    checks.done()?;
    let token = api
        .staff
        .issue_service_token(&context, &client_id, &client_secret)
        .await?;
    Ok(pb::IssueServiceTokenResponse {
        access_token: token.token,
        token_type: "Bearer".to_owned(),
        access_token_expires_at: Some(convert::timestamp(token.expires_at)),
    })
}
