//! Handlers of the SSO connection calls, TestSsoConnection, and SsoLogin (public: the
//! identity provider's ID token is the credential).

use roster_core::FieldViolation;
use roster_core::etag::{etag, parse_etag};
use roster_core::paging::{Cursor, page_size, query_fingerprint};
use roster_core::update_mask::fields_to_update;
use roster_proto::staff::v1 as pb;
use tonic::Request;
use uuid::Uuid;

use super::sign_in::{context_of, login_response};
use super::{Checks, authz, caller, convert, workspace};
use crate::domain::sso::{self, Provider, ProvisioningMode};
use crate::domain::values;
use crate::entity::sso_connection;
use crate::error::{Result, StaffError};
use crate::service::{NewSsoConnection, SsoConnectionPatch, SsoSignIn, Staff};

fn provider_of(value: &str) -> pb::SsoProvider {
    match Provider::parse(value) {
        Some(Provider::GoogleWorkspace) => pb::SsoProvider::GoogleWorkspace,
        Some(Provider::MicrosoftEntraId) => pb::SsoProvider::MicrosoftEntraId,
        Some(Provider::Okta) => pb::SsoProvider::Okta,
        Some(Provider::GenericOidc) => pb::SsoProvider::GenericOidc,
        None => pb::SsoProvider::Unspecified,
    }
}

fn mode_of(value: &str) -> pb::SsoProvisioningMode {
    match ProvisioningMode::parse(value) {
        Some(ProvisioningMode::Jit) => pb::SsoProvisioningMode::Jit,
        Some(ProvisioningMode::PreProvisioned) => pb::SsoProvisioningMode::PreProvisioned,
        Some(ProvisioningMode::Scim) => pb::SsoProvisioningMode::Scim,
        None => pb::SsoProvisioningMode::Unspecified,
    }
}

fn provider_field(field: &str, value: i32) -> std::result::Result<Provider, FieldViolation> {
    match pb::SsoProvider::try_from(value) {
        Ok(pb::SsoProvider::GoogleWorkspace) => Ok(Provider::GoogleWorkspace),
        Ok(pb::SsoProvider::MicrosoftEntraId) => Ok(Provider::MicrosoftEntraId),
        Ok(pb::SsoProvider::Okta) => Ok(Provider::Okta),
        Ok(pb::SsoProvider::GenericOidc) => Ok(Provider::GenericOidc),
        Ok(pb::SsoProvider::Unspecified) | Err(_) => Err(FieldViolation::new(
            field,
            "is required: GOOGLE_WORKSPACE, MICROSOFT_ENTRA_ID, OKTA or GENERIC_OIDC",
        )),
    }
}

/// A provisioning mode; unspecified is `default` (JIT at creation, refused in an update
/// that names it).
fn mode_field(
    field: &str,
    value: i32,
    default: Option<ProvisioningMode>,
) -> std::result::Result<ProvisioningMode, FieldViolation> {
    match pb::SsoProvisioningMode::try_from(value) {
        Ok(pb::SsoProvisioningMode::Jit) => Ok(ProvisioningMode::Jit),
        Ok(pb::SsoProvisioningMode::PreProvisioned) => Ok(ProvisioningMode::PreProvisioned),
        Ok(pb::SsoProvisioningMode::Scim) => Ok(ProvisioningMode::Scim),
        Ok(pb::SsoProvisioningMode::Unspecified) if default.is_some() => {
            default.ok_or_else(|| FieldViolation::new(field, "is required"))
        }
        Ok(pb::SsoProvisioningMode::Unspecified) | Err(_) => Err(FieldViolation::new(
            field,
            "must be JIT, PRE_PROVISIONED or SCIM",
        )),
    }
}

pub(super) fn connection(row: sso_connection::Model) -> pb::SsoConnection {
    let allowed_email_domains = sso::stored_domains(&row);
    let key_ids = roster_auth::oidc::IdpKeys::from_jwks_json(&row.jwks)
        .map(|keys| keys.key_ids())
        .unwrap_or_default();
    let last_test = row.last_test_at.map(|tested_at| pb::SsoConnectionTest {
        tested_at: Some(convert::timestamp(tested_at)),
        succeeded: row.last_test_succeeded == Some(true),
        failure: row.last_test_failure.clone(),
        tested_by_kind: row.last_test_by_kind.clone(),
        tested_by_id: row.last_test_by_id.clone(),
        subject: row.last_test_subject.clone(),
        email: row.last_test_email.clone(),
    });
    pb::SsoConnection {
        connection_id: row.connection_id.to_string(),
        provider: provider_of(&row.provider) as i32,
        provisioning_mode: mode_of(&row.provisioning_mode) as i32,
        workspace_id: row.workspace_id,
        display_name: row.display_name,
        issuer: row.issuer,
        client_id: row.client_id,
        allowed_email_domains,
        jwks: row.jwks,
        key_ids,
        default_role: row.default_role,
        enabled: row.enabled,
        last_test,
        created_at: Some(convert::timestamp(row.created_at)),
        updated_at: Some(convert::timestamp(row.updated_at)),
        etag: etag(row.version),
    }
}

pub(super) async fn create(
    staff: &Staff,
    request: Request<pb::CreateSsoConnectionRequest>,
) -> Result<pb::SsoConnection> {
    let (principal, actor) = caller(&request)?;
    let pb::CreateSsoConnectionRequest {
        workspace_id,
        connection: message,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "CreateSsoConnection")?;
    let message = message.ok_or_else(|| StaffError::invalid("connection", "is required"))?;
    let pb::SsoConnection {
        connection_id: _,
        workspace_id: _,
        display_name,
        provider,
        issuer,
        client_id,
        allowed_email_domains,
        jwks,
        key_ids: _,
        default_role,
        provisioning_mode,
        enabled,
        last_test: _,
        created_at: _,
        updated_at: _,
        etag: _,
    } = message;
    let mut checks = Checks::default();
    let display_name = checks.take(sso::display_name("connection.display_name", &display_name));
    let provider = provider_field("connection.provider", provider);
    let issuer = checks.take(sso::issuer(
        "connection.issuer",
        &issuer,
        *provider.as_ref().unwrap_or(&Provider::GenericOidc),
    ));
    let provider = checks
        .take(provider.map(Some))
        .unwrap_or(Provider::GenericOidc);
    let client_id = checks.take(sso::client_id("connection.client_id", &client_id));
    let allowed_email_domains = checks.take_all(sso::allowed_domains(
        "connection.allowed_email_domains",
        &allowed_email_domains,
    ));
    let jwks = checks
        .take(sso::jwks("connection.jwks", &jwks).map(|(json, _)| Some(json)))
        .unwrap_or_default();
    let default_role = checks.take(values::role("connection.default_role", &default_role, true));
    let provisioning_mode = checks
        .take(
            mode_field(
                "connection.provisioning_mode",
                provisioning_mode,
                Some(ProvisioningMode::Jit),
            )
            .map(Some),
        )
        .unwrap_or(ProvisioningMode::Jit);
    if enabled {
        checks.0.push(FieldViolation::new(
            "connection.enabled",
            "a connection starts disabled: test sign-in (TestSsoConnection), then enable it (UpdateSsoConnection)",
        ));
    }
    checks.done()?;
    let granter = authz::granter(&principal, &workspace_id)?;
    let created = staff
        .create_sso_connection(
            &actor,
            &workspace_id,
            &granter,
            NewSsoConnection {
                display_name,
                provider,
                issuer,
                client_id,
                allowed_email_domains,
                jwks,
                default_role,
                provisioning_mode,
            },
        )
        .await?;
    Ok(connection(created))
}

pub(super) async fn get(
    staff: &Staff,
    request: Request<pb::GetSsoConnectionRequest>,
) -> Result<pb::SsoConnection> {
    let (principal, _) = caller(&request)?;
    let pb::GetSsoConnectionRequest {
        workspace_id,
        connection_id,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "GetSsoConnection")?;
    let connection_id = values::id("connection_id", &connection_id)?;
    Ok(connection(
        staff
            .get_sso_connection(&workspace_id, connection_id)
            .await?,
    ))
}

pub(super) async fn list(
    staff: &Staff,
    request: Request<pb::ListSsoConnectionsRequest>,
) -> Result<pb::ListSsoConnectionsResponse> {
    let (principal, _) = caller(&request)?;
    let pb::ListSsoConnectionsRequest {
        workspace_id,
        page_size: size,
        page_token,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "ListSsoConnections")?;
    let limit = page_size(size)?;
    let fingerprint = query_fingerprint(&["sso_connections"]);
    let after = Cursor::decode(&page_token, &fingerprint)?
        .and_then(|cursor| cursor.id)
        .map(|id| {
            Uuid::try_parse(&id)
                .map_err(|_| StaffError::invalid("page_token", "is not a page token of this list"))
        })
        .transpose()?;
    let mut rows = staff
        .list_sso_connections(&workspace_id, after, limit + 1)
        .await?;
    let keep = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_page_token = if rows.len() > keep {
        rows.truncate(keep);
        rows.last()
            .map(|row| {
                Cursor {
                    text: None,
                    number: None,
                    id: Some(row.connection_id.to_string()),
                    query: fingerprint.clone(),
                }
                .encode()
            })
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(pb::ListSsoConnectionsResponse {
        connections: rows.into_iter().map(connection).collect(),
        next_page_token,
    })
}

pub(super) async fn update(
    staff: &Staff,
    request: Request<pb::UpdateSsoConnectionRequest>,
) -> Result<pb::SsoConnection> {
    let (principal, actor) = caller(&request)?;
    let pb::UpdateSsoConnectionRequest {
        workspace_id,
        connection: message,
        update_mask,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "UpdateSsoConnection")?;
    let message = message.ok_or_else(|| StaffError::invalid("connection", "is required"))?;
    let mut checks = Checks::default();
    let connection_id =
        checks.take(values::id("connection.connection_id", &message.connection_id).map(Some));
    let version = checks.take(parse_etag("connection.etag", &message.etag));
    let paths = update_mask.map(|mask| mask.paths).unwrap_or_default();
    let fields = checks.take_all(fields_to_update(
        paths,
        "connection",
        &[
            "display_name",
            "issuer",
            "client_id",
            "allowed_email_domains",
            "jwks",
            "default_role",
            "provisioning_mode",
            "enabled",
        ],
        |field| match field {
            "display_name" => !message.display_name.is_empty(),
            "issuer" => !message.issuer.is_empty(),
            "client_id" => !message.client_id.is_empty(),
            "allowed_email_domains" => !message.allowed_email_domains.is_empty(),
            "jwks" => !message.jwks.is_empty(),
            "default_role" => !message.default_role.is_empty(),
            "provisioning_mode" => message.provisioning_mode != 0,
            "enabled" => message.enabled,
            _ => false,
        },
    ));
    let mut patch = SsoConnectionPatch::default();
    for field in &fields {
        match field.as_str() {
            "display_name" => {
                patch.display_name = Some(checks.take(sso::display_name(
                    "connection.display_name",
                    &message.display_name,
                )))
            }
            // The provider's own rule is the service's to check: it knows the provider.
            "issuer" => {
                patch.issuer = Some(checks.take(sso::issuer(
                    "connection.issuer",
                    &message.issuer,
                    Provider::GenericOidc,
                )))
            }
            "client_id" => {
                patch.client_id =
                    Some(checks.take(sso::client_id("connection.client_id", &message.client_id)))
            }
            "allowed_email_domains" => {
                patch.allowed_email_domains = Some(checks.take_all(sso::allowed_domains(
                    "connection.allowed_email_domains",
                    &message.allowed_email_domains,
                )))
            }
            "jwks" => {
                patch.jwks = checks
                    .take(sso::jwks("connection.jwks", &message.jwks).map(|(json, _)| Some(json)))
            }
            "default_role" => {
                patch.default_role = Some(checks.take(values::role(
                    "connection.default_role",
                    &message.default_role,
                    false,
                )))
            }
            "provisioning_mode" => {
                patch.provisioning_mode = checks.take(
                    mode_field(
                        "connection.provisioning_mode",
                        message.provisioning_mode,
                        None,
                    )
                    .map(Some),
                )
            }
            _ => patch.enabled = Some(message.enabled),
        }
    }
    checks.done()?;
    let connection_id = connection_id
        .ok_or_else(|| StaffError::invalid("connection.connection_id", "is required"))?;
    let granter = authz::granter(&principal, &workspace_id)?;
    let updated = staff
        .update_sso_connection(
            &actor,
            &workspace_id,
            &granter,
            connection_id,
            version,
            patch,
        )
        .await?;
    Ok(connection(updated))
}

pub(super) async fn delete(
    staff: &Staff,
    request: Request<pb::DeleteSsoConnectionRequest>,
) -> Result<()> {
    let (principal, actor) = caller(&request)?;
    let pb::DeleteSsoConnectionRequest {
        workspace_id,
        connection_id,
        etag,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "DeleteSsoConnection")?;
    let mut checks = Checks::default();
    let connection_id = checks.take(values::id("connection_id", &connection_id).map(Some));
    let version = checks.take(parse_etag("etag", &etag));
    checks.done()?;
    let connection_id =
        connection_id.ok_or_else(|| StaffError::invalid("connection_id", "is required"))?;
    staff
        .delete_sso_connection(&actor, &workspace_id, connection_id, version)
        .await
}

/// The connection, ID token and nonce of a sign-in, each checked.
fn sign_in_fields(
    connection_id: &str,
    id_token: &str,
    nonce: &str,
) -> std::result::Result<SsoSignIn, Vec<FieldViolation>> {
    let mut checks = Checks::default();
    let connection_id = checks.take(values::id("connection_id", connection_id).map(Some));
    let id_token = checks.take(sso::id_token("id_token", id_token));
    let nonce = checks.take(sso::nonce("nonce", nonce));
    match (checks.0.is_empty(), connection_id) {
        (true, Some(connection_id)) => Ok(SsoSignIn {
            connection_id,
            id_token,
            nonce,
        }),
        _ => Err(checks.0),
    }
}

pub(super) async fn test(
    staff: &Staff,
    request: Request<pb::TestSsoConnectionRequest>,
) -> Result<pb::TestSsoConnectionResponse> {
    let (principal, actor) = caller(&request)?;
    let pb::TestSsoConnectionRequest {
        workspace_id,
        connection_id,
        id_token,
        nonce,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "TestSsoConnection")?;
    let input = sign_in_fields(&connection_id, &id_token, &nonce)?;
    let tested = staff
        .test_sso_connection(
            &actor,
            &workspace_id,
            authz::caller_agent(&principal),
            input,
        )
        .await?;
    Ok(pb::TestSsoConnectionResponse {
        subject: tested.identity.subject,
        email: tested.identity.email,
        name: tested.identity.name,
        connection: Some(connection(tested.connection)),
    })
}

pub(super) async fn sso_login(
    staff: &Staff,
    request: Request<pb::SsoLoginRequest>,
) -> Result<pb::LoginResponse> {
    // Public: no principal; the ID token is the credential.
    let context = context_of(&request);
    let pb::SsoLoginRequest {
        workspace_id,
        connection_id,
        id_token,
        nonce,
    } = request.into_inner();
    let mut checks = Checks::default();
    let workspace_id = checks.take(values::workspace_id("workspace_id", &workspace_id));
    let input = checks.take_all(sign_in_fields(&connection_id, &id_token, &nonce).map(Some));
    checks.done()?;
    let input = input.ok_or_else(|| StaffError::invalid("connection_id", "is required"))?;
    login_response(
        staff
            .sign_in_with_sso(&context, &workspace_id, input)
            .await?,
    )
}
