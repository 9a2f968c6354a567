//! gRPC handlers: the only place that knows protobuf. Each handler has one shape:
//! validate, authorize, call the service, convert.

pub mod authz;
pub mod convert;
mod import;
mod update_mask;

use std::future::Future;

use roster_auth::Principal;
use roster_proto::directory::v1 as pb;
use roster_proto::directory::v1::directory_service_server::DirectoryService;
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status, Streaming};

use self::authz::{
    CUSTOMERS_WRITE, END_USERS_DELETE, END_USERS_ERASE, END_USERS_EXPORT, END_USERS_MERGE,
    END_USERS_WRITE, Need, WORKSPACE_MANAGE, authorize, customer_renames,
};
use self::convert::CustomerInput;
use crate::domain::filter::{parse_customer_filter, parse_user_filter};
use crate::domain::order::{customer_order, user_order};
use crate::domain::user_fields::UserValues;
use crate::domain::values::{self, FieldViolation};
use crate::domain::{UserField, UserStatus};
use crate::error::{DirectoryError, Result};
use crate::service::{
    Actor, CustomerPatch, CustomerRenames, Directory, Lookup, NewCustomer, RequestKey, UpsertInput,
    UpsertOutcome, UpsertResult, parse_etag,
};
use roster_core::paging::page_size;
use roster_service::audit_reader::AuditReader;

#[derive(Clone)]
pub struct DirectoryApi {
    directory: Directory,
    /// Where ExportUser reads a user's audit events; `None` without an audit service.
    audit: Option<AuditReader>,
}

impl DirectoryApi {
    pub fn new(directory: Directory, audit: Option<AuditReader>) -> Self {
        Self { directory, audit }
    }
}

/// The verified caller and the audit actor built from it and the request's context.
fn caller<T>(request: &Request<T>) -> Result<(Principal, Actor)> {
    roster_auth::caller(request)
        .map_err(|status| DirectoryError::Unauthenticated(status.message().to_owned()))
}

/// Checks the workspace id and the caller's right to `need` in it.
fn workspace(principal: &Principal, workspace_id: &str, need: Need) -> Result<String> {
    let workspace_id = values::workspace_id("workspace_id", workspace_id)?;
    authorize(principal, &workspace_id, need)?;
    roster_runtime::record_workspace(&workspace_id);
    Ok(workspace_id)
}

/// The workspace, user and optional etag of a call that acts on one user, checked and
/// authorized.
fn user_target(
    principal: &Principal,
    workspace_id: &str,
    user_id: &str,
    etag: &str,
    need: Need,
) -> Result<(String, uuid::Uuid, Option<i64>)> {
    let workspace_id = workspace(principal, workspace_id, need)?;
    let user_id = values::user_id("user_id", user_id)?;
    let version = parse_etag("etag", etag)?;
    Ok((workspace_id, user_id, version))
}

/// The workspace, customer and optional etag of a call that acts on one customer, checked
/// and authorized.
fn customer_target(
    principal: &Principal,
    workspace_id: &str,
    customer_id: &str,
    etag: &str,
) -> Result<(String, String, Option<i64>)> {
    let workspace_id = workspace(principal, workspace_id, CUSTOMERS_WRITE)?;
    let customer_id = values::customer_id("customer_id", customer_id)?;
    let version = parse_etag("etag", etag)?;
    Ok((workspace_id, customer_id, version))
}

/// The request id of a create or counter change, bound to the request's content: the
/// operation and the request message without its id, hashed. prost encodes fields in
/// number order and leaves out defaults, so the same request always hashes the same, and a
/// field added later does not change the hash of requests that leave it unset.
fn request_key(
    operation: &'static str,
    request_id: &str,
    content: &impl prost::Message,
) -> Result<Option<RequestKey>> {
    if request_id.is_empty() {
        return Ok(None);
    }
    let id = values::request_id("request_id", request_id)?;
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(content.encode_to_vec());
    Ok(Some(RequestKey {
        id,
        operation,
        fingerprint: format!("{:x}", hasher.finalize()),
    }))
}

async fn respond<T>(
    work: impl Future<Output = Result<T>>,
) -> std::result::Result<Response<T>, Status> {
    work.await.map(Response::new).map_err(Status::from)
}

fn upsert_response(result: UpsertResult) -> pb::UpsertUserResponse {
    let outcome = match result.outcome {
        UpsertOutcome::Created => pb::UpsertOutcome::Created,
        UpsertOutcome::Updated => pb::UpsertOutcome::Updated,
        UpsertOutcome::Undeleted => pb::UpsertOutcome::Undeleted,
        UpsertOutcome::Unchanged => pb::UpsertOutcome::Unchanged,
    };
    pb::UpsertUserResponse {
        user: Some(convert::user(result.user)),
        outcome: outcome as i32,
        customer_created: result.customer.created,
        customer_undeleted: result.customer.undeleted,
        customer_rename_skipped: result.customer.rename_skipped,
    }
}

/// Checked, lower-cased, de-duplicated customer domains.
fn customer_domains(domains: &[String]) -> std::result::Result<Vec<String>, Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let mut checked = Vec::new();
    for (index, domain) in domains.iter().enumerate() {
        match values::customer_domain(&format!("customer.domains[{index}]"), domain) {
            Ok(domain) if !checked.contains(&domain) => checked.push(domain),
            Ok(_) => {}
            Err(violation) => violations.push(violation),
        }
    }
    if domains.len() > 100 {
        violations.push(FieldViolation::new(
            "customer.domains",
            "at most 100 domains",
        ));
    }
    if violations.is_empty() {
        Ok(checked)
    } else {
        Err(violations)
    }
}

fn customer_fields(
    name: &str,
    domains: &[String],
    notes: &str,
) -> std::result::Result<(String, Vec<String>, String), Vec<FieldViolation>> {
    let mut violations = Vec::new();
    let name = values::required_text("customer.name", name, values::MAX_NAME_CHARS)
        .map_err(|v| violations.push(v))
        .unwrap_or_default();
    let domains = customer_domains(domains)
        .map_err(|mut v| violations.append(&mut v))
        .unwrap_or_default();
    let notes = values::text("customer.notes", notes, values::MAX_NOTES_CHARS, true)
        .map_err(|v| violations.push(v))
        .unwrap_or_default();
    if violations.is_empty() {
        Ok((name, domains, notes))
    } else {
        Err(violations)
    }
}

fn require<T>(field: &str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| DirectoryError::invalid(field, "is required"))
}

#[tonic::async_trait]
impl DirectoryService for DirectoryApi {
    #[tracing::instrument(skip_all, fields(workspace_id))]
    async fn create_customer(
        &self,
        request: Request<pb::CreateCustomerRequest>,
    ) -> std::result::Result<Response<pb::Customer>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let mut message = request.into_inner();
            let request_id = std::mem::take(&mut message.request_id);
            let request_key = request_key("CreateCustomer", &request_id, &message)?;
            let pb::CreateCustomerRequest {
                workspace_id,
                customer,
                request_id: _,
            } = message;
            let workspace_id = workspace(&principal, &workspace_id, CUSTOMERS_WRITE)?;
            // An etag on a create has nothing to match; it is ignored like other output fields.
            let CustomerInput {
                customer_id,
                name,
                domains,
                notes,
                expected_version: _,
            } = CustomerInput::try_from(require("customer", customer)?)?;
            let (name, domains, notes) = customer_fields(&name, &domains, &notes)?;
            let created = self
                .directory
                .create_customer(
                    &actor,
                    &workspace_id,
                    NewCustomer {
                        customer_id,
                        name,
                        domains,
                        notes,
                    },
                    request_key,
                )
                .await?;
            convert::customer(created)
        })
        .await
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> std::result::Result<Response<pb::Customer>, Status> {
        respond(async {
            let (principal, _) = caller(&request)?;
            let pb::GetCustomerRequest {
                workspace_id,
                customer_id,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, Need::Read)?;
            let customer_id = values::customer_id("customer_id", &customer_id)?;
            convert::customer(
                self.directory
                    .get_customer(&workspace_id, &customer_id)
                    .await?,
            )
        })
        .await
    }

    async fn list_customers(
        &self,
        request: Request<pb::ListCustomersRequest>,
    ) -> std::result::Result<Response<pb::ListCustomersResponse>, Status> {
        respond(async {
            let (principal, _) = caller(&request)?;
            let pb::ListCustomersRequest {
                workspace_id,
                page_size: size,
                page_token,
                filter,
                order_by,
                show_deleted,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, Need::Read)?;
            let size = page_size(size)?;
            let order = customer_order(&order_by)?;
            let parsed = parse_customer_filter(&filter)
                .map_err(|e| DirectoryError::invalid("filter", e.to_string()))?;
            let (customers, next_page_token) = self
                .directory
                .list_customers(
                    &workspace_id,
                    &filter,
                    &parsed,
                    order,
                    show_deleted,
                    size,
                    &page_token,
                )
                .await?;
            Ok(pb::ListCustomersResponse {
                customers: customers
                    .into_iter()
                    .map(convert::customer)
                    .collect::<Result<_>>()?,
                next_page_token,
            })
        })
        .await
    }

    async fn update_customer(
        &self,
        request: Request<pb::UpdateCustomerRequest>,
    ) -> std::result::Result<Response<pb::Customer>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::UpdateCustomerRequest { workspace_id, customer, update_mask } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, CUSTOMERS_WRITE)?;
            let customer = CustomerInput::try_from(require("customer", customer)?)?;
            let customer_id = customer.customer_id.clone();
            let paths = update_mask::fields_to_update(update_mask, "customer", &["name", "domains", "notes"], |field| match field {
                "name" => !customer.name.is_empty(),
                "domains" => !customer.domains.is_empty(),
                _ => !customer.notes.is_empty(),
            })?;
            let mut patch = CustomerPatch::default();
            let mut violations = Vec::new();
            for path in &paths {
                match path.strip_prefix("customer.").unwrap_or(path) {
                    "name" => match values::required_text("customer.name", &customer.name, values::MAX_NAME_CHARS) {
                        Ok(name) => patch.name = Some(name),
                        Err(v) => violations.push(v),
                    },
                    "domains" => match customer_domains(&customer.domains) {
                        Ok(domains) => patch.domains = Some(domains),
                        Err(mut v) => violations.append(&mut v),
                    },
                    "notes" => match values::text("customer.notes", &customer.notes, values::MAX_NOTES_CHARS, true) {
                        Ok(notes) => patch.notes = Some(notes),
                        Err(v) => violations.push(v),
                    },
                    other => violations.push(FieldViolation::new(
                        "update_mask",
                        format!("'{other}' cannot be updated; updatable fields: name, domains, notes (status has SetCustomerStatus)"),
                    )),
                }
            }
            if !violations.is_empty() {
                return Err(DirectoryError::Invalid(violations));
            }
            convert::customer(self.directory.update_customer(&actor, &workspace_id, &customer_id, customer.expected_version, patch).await?)
        })
        .await
    }

    async fn set_customer_status(
        &self,
        request: Request<pb::SetCustomerStatusRequest>,
    ) -> std::result::Result<Response<pb::Customer>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::SetCustomerStatusRequest {
                workspace_id,
                customer_id,
                status,
                etag,
            } = request.into_inner();
            let (workspace_id, customer_id, version) =
                customer_target(&principal, &workspace_id, &customer_id, &etag)?;
            let status = convert::customer_status("status", status)?;
            convert::customer(
                self.directory
                    .set_customer_status(&actor, &workspace_id, &customer_id, version, status)
                    .await?,
            )
        })
        .await
    }

    async fn delete_customer(
        &self,
        request: Request<pb::DeleteCustomerRequest>,
    ) -> std::result::Result<Response<pb::Customer>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::DeleteCustomerRequest {
                workspace_id,
                customer_id,
                etag,
            } = request.into_inner();
            let (workspace_id, customer_id, version) =
                customer_target(&principal, &workspace_id, &customer_id, &etag)?;
            convert::customer(
                self.directory
                    .delete_customer(&actor, &workspace_id, &customer_id, version)
                    .await?,
            )
        })
        .await
    }

    async fn undelete_customer(
        &self,
        request: Request<pb::UndeleteCustomerRequest>,
    ) -> std::result::Result<Response<pb::Customer>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::UndeleteCustomerRequest {
                workspace_id,
                customer_id,
                etag,
            } = request.into_inner();
            let (workspace_id, customer_id, version) =
                customer_target(&principal, &workspace_id, &customer_id, &etag)?;
            convert::customer(
                self.directory
                    .undelete_customer(&actor, &workspace_id, &customer_id, version)
                    .await?,
            )
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(workspace_id, user_id))]
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let mut message = request.into_inner();
            let request_id = std::mem::take(&mut message.request_id);
            let request_key = request_key("CreateUser", &request_id, &message)?;
            let pb::CreateUserRequest {
                workspace_id,
                user,
                request_id: _,
            } = message;
            let workspace_id = workspace(&principal, &workspace_id, END_USERS_WRITE)?;
            let user = require("user", user)?;
            let status = match pb::UserStatus::try_from(user.status) {
                Ok(pb::UserStatus::Unspecified | pb::UserStatus::Active) => UserStatus::Active,
                Ok(pb::UserStatus::Unconfirmed) => UserStatus::Unconfirmed,
                _ => {
                    return Err(DirectoryError::invalid(
                        "user.status",
                        "may only be ACTIVE or UNCONFIRMED on create",
                    ));
                }
            };
            let values = UserValues::check("user.", convert::user_values(user), false)?;
            if values.get(UserField::ExternalId).is_none() && values.get(UserField::Email).is_none()
            {
                return Err(DirectoryError::Invalid(vec![
                    FieldViolation::new("user.external_id", "external_id or email is required"),
                    FieldViolation::new("user.email", "external_id or email is required"),
                ]));
            }
            let created = self
                .directory
                .create_user(&actor, &workspace_id, values, status, request_key)
                .await?;
            tracing::Span::current()
                .record("user_id", tracing::field::display(created.user.user_id));
            Ok(convert::user(created))
        })
        .await
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, _) = caller(&request)?;
            let pb::GetUserRequest {
                workspace_id,
                user_id,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, Need::Read)?;
            let user_id = values::user_id("user_id", &user_id)?;
            Ok(convert::user(
                self.directory.get_user(&workspace_id, user_id).await?,
            ))
        })
        .await
    }

    async fn lookup_user(
        &self,
        request: Request<pb::LookupUserRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, _) = caller(&request)?;
            let pb::LookupUserRequest { workspace_id, key } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, Need::Read)?;
            let lookup = match key {
                None => {
                    return Err(DirectoryError::invalid(
                        "key",
                        "set one of external_id, email or identity",
                    ));
                }
                Some(pb::lookup_user_request::Key::ExternalId(id)) => {
                    Lookup::ExternalId(values::external_id("external_id", &id)?)
                }
                Some(pb::lookup_user_request::Key::Email(email)) => {
                    Lookup::Email(values::email("email", &email)?)
                }
                Some(pb::lookup_user_request::Key::Identity(pb::Identity { source, key })) => {
                    let source = convert::identity_source("identity.source", source)?;
                    let mut key = values::identity_key("identity.key", &key)?;
                    if source == crate::domain::IdentitySource::Email {
                        key = key.to_lowercase();
                    }
                    Lookup::Identity(source, key)
                }
            };
            Ok(convert::user(
                self.directory.lookup_user(&workspace_id, &lookup).await?,
            ))
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(workspace_id))]
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> std::result::Result<Response<pb::ListUsersResponse>, Status> {
        respond(async {
            let (principal, _) = caller(&request)?;
            let pb::ListUsersRequest {
                workspace_id,
                page_size: size,
                page_token,
                filter,
                order_by,
                show_deleted,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, Need::Read)?;
            let size = page_size(size)?;
            let order = user_order(&order_by)?;
            let parsed = parse_user_filter(&filter)
                .map_err(|e| DirectoryError::invalid("filter", e.to_string()))?;
            let (users, next_page_token) = self
                .directory
                .list_users(
                    &workspace_id,
                    &filter,
                    &parsed,
                    &order_by,
                    order,
                    show_deleted,
                    size,
                    &page_token,
                )
                .await?;
            Ok(pb::ListUsersResponse {
                users: users.into_iter().map(convert::user).collect(),
                next_page_token,
            })
        })
        .await
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::UpdateUserRequest {
                workspace_id,
                user,
                update_mask,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, END_USERS_WRITE)?;
            let user = require("user", user)?;
            let user_id = values::user_id("user.user_id", &user.user_id)?;
            let version = parse_etag("user.etag", &user.etag)?;
            let values = convert::masked_user_values(user, update_mask)?;
            Ok(convert::user(
                self.directory
                    .update_user(&actor, &workspace_id, user_id, version, values)
                    .await?,
            ))
        })
        .await
    }

    async fn deactivate_user(
        &self,
        request: Request<pb::DeactivateUserRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::DeactivateUserRequest {
                workspace_id,
                user_id,
                etag,
            } = request.into_inner();
            let (workspace_id, user_id, version) =
                user_target(&principal, &workspace_id, &user_id, &etag, END_USERS_WRITE)?;
            Ok(convert::user(
                self.directory
                    .deactivate_user(&actor, &workspace_id, user_id, version)
                    .await?,
            ))
        })
        .await
    }

    async fn reactivate_user(
        &self,
        request: Request<pb::ReactivateUserRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::ReactivateUserRequest {
                workspace_id,
                user_id,
                etag,
            } = request.into_inner();
            let (workspace_id, user_id, version) =
                user_target(&principal, &workspace_id, &user_id, &etag, END_USERS_WRITE)?;
            Ok(convert::user(
                self.directory
                    .reactivate_user(&actor, &workspace_id, user_id, version)
                    .await?,
            ))
        })
        .await
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::DeleteUserRequest {
                workspace_id,
                user_id,
                etag,
            } = request.into_inner();
            let (workspace_id, user_id, version) =
                user_target(&principal, &workspace_id, &user_id, &etag, END_USERS_DELETE)?;
            Ok(convert::user(
                self.directory
                    .delete_user(&actor, &workspace_id, user_id, version)
                    .await?,
            ))
        })
        .await
    }

    async fn undelete_user(
        &self,
        request: Request<pb::UndeleteUserRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::UndeleteUserRequest {
                workspace_id,
                user_id,
                etag,
            } = request.into_inner();
            let (workspace_id, user_id, version) =
                user_target(&principal, &workspace_id, &user_id, &etag, END_USERS_DELETE)?;
            Ok(convert::user(
                self.directory
                    .undelete_user(&actor, &workspace_id, user_id, version)
                    .await?,
            ))
        })
        .await
    }

    async fn merge_users(
        &self,
        request: Request<pb::MergeUsersRequest>,
    ) -> std::result::Result<Response<pb::MergeUsersResponse>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let mut message = request.into_inner();
            let request_id = std::mem::take(&mut message.request_id);
            let request_key = request_key("MergeUsers", &request_id, &message)?;
            let pb::MergeUsersRequest {
                workspace_id,
                source_user_id,
                target_user_id,
                request_id: _,
                source_etag,
                target_etag,
            } = message;
            let workspace_id = workspace(&principal, &workspace_id, END_USERS_MERGE)?;
            let source = values::user_id("source_user_id", &source_user_id)?;
            let target = values::user_id("target_user_id", &target_user_id)?;
            let source_version = parse_etag("source_etag", &source_etag)?;
            let target_version = parse_etag("target_etag", &target_etag)?;
            let (target, source) = self
                .directory
                .merge_users(
                    &actor,
                    &workspace_id,
                    (source, source_version),
                    (target, target_version),
                    request_key,
                )
                .await?;
            Ok(pb::MergeUsersResponse {
                target: Some(convert::user(target)),
                source: Some(convert::user(source)),
            })
        })
        .await
    }

    async fn erase_user(
        &self,
        request: Request<pb::EraseUserRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::EraseUserRequest {
                workspace_id,
                user_id,
                etag,
            } = request.into_inner();
            let (workspace_id, user_id, version) =
                user_target(&principal, &workspace_id, &user_id, &etag, END_USERS_ERASE)?;
            Ok(convert::user(
                self.directory
                    .erase_user(&actor, &workspace_id, user_id, version)
                    .await?,
            ))
        })
        .await
    }

    async fn export_user(
        &self,
        request: Request<pb::ExportUserRequest>,
    ) -> std::result::Result<Response<pb::ExportUserResponse>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::ExportUserRequest {
                workspace_id,
                user_id,
            } = request.into_inner();
            let (workspace_id, user_id, _) =
                user_target(&principal, &workspace_id, &user_id, "", END_USERS_EXPORT)?;
            let export = self
                .directory
                .export_user(&actor, &workspace_id, user_id, self.audit.as_ref())
                .await?;
            let export = convert::user_export(export)?;
            let json = roster_proto::json::to_json(&export, "roster.directory.v1.UserExport")
                .map_err(|error| {
                    DirectoryError::Internal(format!("ExportUser as JSON: {error}"))
                })?;
            Ok(pb::ExportUserResponse {
                export: Some(export),
                json,
            })
        })
        .await
    }

    async fn create_guest_user(
        &self,
        request: Request<pb::CreateGuestUserRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let mut message = request.into_inner();
            let request_id = std::mem::take(&mut message.request_id);
            let request_key = request_key("CreateGuestUser", &request_id, &message)?;
            let pb::CreateGuestUserRequest {
                workspace_id,
                name,
                request_id: _,
            } = message;
            let workspace_id = workspace(&principal, &workspace_id, END_USERS_WRITE)?;
            let name = values::text("name", &name, values::MAX_NAME_CHARS, false)?;
            Ok(convert::user(
                self.directory
                    .create_guest(&actor, &workspace_id, name, request_key)
                    .await?,
            ))
        })
        .await
    }

    async fn identify_guest(
        &self,
        request: Request<pb::IdentifyGuestRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::IdentifyGuestRequest {
                workspace_id,
                user_id,
                external_id,
                email,
                name,
                email_verified,
                etag,
            } = request.into_inner();
            let (workspace_id, user_id, version) =
                user_target(&principal, &workspace_id, &user_id, &etag, END_USERS_WRITE)?;
            let values = UserValues::check(
                "",
                [
                    (UserField::ExternalId, external_id),
                    (UserField::Email, email),
                    (UserField::Name, name),
                ],
                false,
            )?;
            if values.get(UserField::ExternalId).is_none() && values.get(UserField::Email).is_none()
            {
                return Err(DirectoryError::invalid(
                    "external_id",
                    "external_id or email is required to identify a guest",
                ));
            }
            Ok(convert::user(
                self.directory
                    .identify_guest(
                        &actor,
                        &workspace_id,
                        user_id,
                        version,
                        values,
                        email_verified,
                    )
                    .await?,
            ))
        })
        .await
    }

    async fn confirm_user_email(
        &self,
        request: Request<pb::ConfirmUserEmailRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::ConfirmUserEmailRequest {
                workspace_id,
                user_id,
                etag,
            } = request.into_inner();
            let (workspace_id, user_id, version) =
                user_target(&principal, &workspace_id, &user_id, &etag, END_USERS_WRITE)?;
            Ok(convert::user(
                self.directory
                    .confirm_user_email(&actor, &workspace_id, user_id, version)
                    .await?,
            ))
        })
        .await
    }

    async fn record_activity(
        &self,
        request: Request<pb::RecordActivityRequest>,
    ) -> std::result::Result<Response<pb::User>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let mut message = request.into_inner();
            let request_id = std::mem::take(&mut message.request_id);
            let request_key = request_key("RecordActivity", &request_id, &message)?;
            let pb::RecordActivityRequest {
                workspace_id,
                user_id,
                occurred_at,
                conversations_started,
                request_id: _,
                etag,
            } = message;
            let (workspace_id, user_id, version) =
                user_target(&principal, &workspace_id, &user_id, &etag, END_USERS_WRITE)?;
            let occurred_at = occurred_at
                .map(|ts| convert::timestamp_us("occurred_at", &ts))
                .transpose()?;
            if !(0..=1000).contains(&conversations_started) {
                return Err(DirectoryError::invalid(
                    "conversations_started",
                    "must be between 0 and 1000",
                ));
            }
            let view = self
                .directory
                .record_activity(
                    &actor,
                    &workspace_id,
                    user_id,
                    version,
                    occurred_at,
                    i64::from(conversations_started),
                    request_key,
                )
                .await?;
            Ok(convert::user(view))
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(workspace_id))]
    async fn upsert_user(
        &self,
        request: Request<pb::UpsertUserRequest>,
    ) -> std::result::Result<Response<pb::UpsertUserResponse>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::UpsertUserRequest {
                workspace_id,
                identity,
                user,
                customer_name,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, END_USERS_WRITE)?;
            let user = require("user", user)?;
            let values = UserValues::check("user.", convert::user_values(user), false)?;
            let identity = match identity {
                None => None,
                Some(pb::Identity { source, key }) => {
                    let source = convert::identity_source("identity.source", source)?;
                    let key = values::identity_key("identity.key", &key)?;
                    let key = if source == crate::domain::IdentitySource::Email {
                        key.to_lowercase()
                    } else {
                        key
                    };
                    Some((source, key))
                }
            };
            if identity.is_none()
                && values.get(UserField::ExternalId).is_none()
                && values.get(UserField::Email).is_none()
            {
                return Err(DirectoryError::invalid(
                    "user",
                    "identity, user.external_id or user.email is required to match a user",
                ));
            }
            let customer_name = values::text(
                "customer_name",
                &customer_name,
                values::MAX_NAME_CHARS,
                false,
            )?;
            let customer_name = if customer_name.is_empty() {
                None
            } else {
                Some(customer_name)
            };
            if customer_name.is_some() && values.get(UserField::CustomerId).is_none() {
                return Err(DirectoryError::invalid(
                    "customer_name",
                    "needs user.customer_id",
                ));
            }
            let result = self
                .directory
                .upsert_user(
                    &actor,
                    &workspace_id,
                    UpsertInput {
                        identity,
                        values,
                        customer_name,
                        customer_renames: customer_renames(
                            &principal,
                            &workspace_id,
                            CustomerRenames::Refuse,
                        ),
                    },
                )
                .await?;
            Ok(upsert_response(result))
        })
        .await
    }

    async fn import_users(
        &self,
        request: Request<Streaming<pb::ImportUsersRequest>>,
    ) -> std::result::Result<Response<pb::ImportUsersResponse>, Status> {
        import::import_users(&self.directory, request).await
    }

    async fn import_user_from_widget_token(
        &self,
        request: Request<pb::ImportUserFromWidgetTokenRequest>,
    ) -> std::result::Result<Response<pb::UpsertUserResponse>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::ImportUserFromWidgetTokenRequest {
                workspace_id,
                token,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, END_USERS_WRITE)?;
            if token.is_empty() {
                return Err(DirectoryError::invalid("token", "is required"));
            }
            // The widget gateway's token writes users, not customers, and a user must not
            // be kept out of the chat because the vendor renamed its organization: the
            // stored name stays unless the caller may rename customers.
            let renames = customer_renames(&principal, &workspace_id, CustomerRenames::Skip);
            Ok(upsert_response(
                self.directory
                    .import_widget_token(&actor, &workspace_id, &token, renames)
                    .await?,
            ))
        })
        .await
    }

    async fn rotate_widget_secret(
        &self,
        request: Request<pb::RotateWidgetSecretRequest>,
    ) -> std::result::Result<Response<pb::RotateWidgetSecretResponse>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let mut message = request.into_inner();
            let request_id = std::mem::take(&mut message.request_id);
            let request_key = request_key("RotateWidgetSecret", &request_id, &message)?;
            let pb::RotateWidgetSecretRequest {
                workspace_id,
                request_id: _,
            } = message;
            let workspace_id = workspace(&principal, &workspace_id, WORKSPACE_MANAGE)?;
            let (secret, previous_until) = self
                .directory
                .rotate_widget_secret(&actor, &workspace_id, request_key)
                .await?;
            Ok(pb::RotateWidgetSecretResponse {
                secret,
                previous_secret_expires_at: convert::optional_timestamp(previous_until),
            })
        })
        .await
    }

    async fn get_workspace_settings(
        &self,
        request: Request<pb::GetWorkspaceSettingsRequest>,
    ) -> std::result::Result<Response<pb::WorkspaceSettings>, Status> {
        respond(async {
            let (principal, _) = caller(&request)?;
            let pb::GetWorkspaceSettingsRequest { workspace_id } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, Need::Read)?;
            Ok(convert::settings(
                self.directory.get_settings(&workspace_id).await?,
            ))
        })
        .await
    }

    async fn update_workspace_settings(
        &self,
        request: Request<pb::UpdateWorkspaceSettingsRequest>,
    ) -> std::result::Result<Response<pb::WorkspaceSettings>, Status> {
        respond(async {
            let (principal, actor) = caller(&request)?;
            let pb::UpdateWorkspaceSettingsRequest {
                settings,
                update_mask,
                workspace_id,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, WORKSPACE_MANAGE)?;
            let settings = require("settings", settings)?;
            let paths = update_mask::fields_to_update(
                update_mask,
                "settings",
                &[
                    "chat_access",
                    "require_customer",
                    "widget_keys",
                    "widget_secret_grace_seconds",
                    "widget_token_max_lifetime_seconds",
                ],
                |field| match field {
                    "chat_access" => settings.chat_access != 0,
                    "require_customer" => settings.require_customer,
                    "widget_keys" => !settings.widget_keys.is_empty(),
                    "widget_secret_grace_seconds" => settings.widget_secret_grace_seconds != 0,
                    _ => settings.widget_token_max_lifetime_seconds != 0,
                },
            )?;
            let convert::SettingsUpdate {
                patch,
                expected_version: version,
            } = convert::SettingsUpdate::try_from((settings, paths.as_slice()))?;
            Ok(convert::settings(
                self.directory
                    .update_settings(&actor, &workspace_id, version, patch)
                    .await?,
            ))
        })
        .await
    }

    async fn check_chat_access(
        &self,
        request: Request<pb::CheckChatAccessRequest>,
    ) -> std::result::Result<Response<pb::CheckChatAccessResponse>, Status> {
        respond(async {
            let (principal, _) = caller(&request)?;
            let pb::CheckChatAccessRequest {
                workspace_id,
                user_id,
            } = request.into_inner();
            let workspace_id = workspace(&principal, &workspace_id, Need::Read)?;
            let user_id = values::user_id("user_id", &user_id)?;
            let decision = self
                .directory
                .check_chat_access(&workspace_id, user_id)
                .await?;
            Ok(pb::CheckChatAccessResponse {
                allowed: decision.denial.is_none(),
                reason: decision.reason,
                chat_access: convert::chat_access_to_pb(decision.chat_access) as i32,
                denial_reason: convert::chat_access_denial_to_pb(decision.denial) as i32,
            })
        })
        .await
    }
}
