//! Handlers of the permission catalogue and of roles.

use std::collections::BTreeSet;

use roster_core::etag::parse_etag;
use roster_core::update_mask::fields_to_update;
use roster_proto::staff::v1 as pb;
use tonic::Request;

use super::{Checks, authz, caller, convert, workspace};
use crate::domain::values::{self, MAX_DESCRIPTION_CHARS};
use crate::error::{Result, StaffError};
use crate::service::{NewRole, RolePatch, Staff};

pub(super) async fn list_permissions(
    request: Request<pb::ListPermissionsRequest>,
) -> Result<pb::ListPermissionsResponse> {
    let (principal, _) = caller(&request)?;
    let pb::ListPermissionsRequest { workspace_id } = request.into_inner();
    workspace(&principal, &workspace_id, "ListPermissions")?;
    Ok(convert::permission_catalogue())
}

pub(super) async fn create_role(
    staff: &Staff,
    request: Request<pb::CreateRoleRequest>,
) -> Result<pb::Role> {
    let (principal, actor) = caller(&request)?;
    let pb::CreateRoleRequest { workspace_id, role } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "CreateRole")?;
    let role = role.ok_or_else(|| StaffError::invalid("role", "is required"))?;
    let mut checks = Checks::default();
    let name = checks.take(values::role_name("role.name", &role.name));
    let description = checks.take(values::text(
        "role.description",
        &role.description,
        MAX_DESCRIPTION_CHARS,
        true,
    ));
    let permissions = checks.take_all(values::permissions("role.permissions", &role.permissions));
    checks.done()?;
    let granter = authz::granter(&principal, &workspace_id)?;
    let created = staff
        .create_role(
            &actor,
            &workspace_id,
            &granter,
            NewRole {
                name,
                description,
                permissions: permissions.into_iter().collect(),
            },
        )
        .await?;
    Ok(convert::role(created))
}

pub(super) async fn get_role(
    staff: &Staff,
    request: Request<pb::GetRoleRequest>,
) -> Result<pb::Role> {
    let (principal, _) = caller(&request)?;
    let pb::GetRoleRequest {
        workspace_id,
        role_id,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "GetRole")?;
    let role_id = values::role_id("role_id", &role_id)?;
    Ok(convert::role(staff.get_role(&workspace_id, role_id).await?))
}

pub(super) async fn update_role(
    staff: &Staff,
    request: Request<pb::UpdateRoleRequest>,
) -> Result<pb::Role> {
    let (principal, actor) = caller(&request)?;
    let pb::UpdateRoleRequest {
        workspace_id,
        role,
        update_mask,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "UpdateRole")?;
    let role = role.ok_or_else(|| StaffError::invalid("role", "is required"))?;
    let mut checks = Checks::default();
    let role_id = checks.take(values::role_id("role.role_id", &role.role_id).map(Some));
    let version = checks.take(parse_etag("role.etag", &role.etag));
    let paths = update_mask.map(|mask| mask.paths).unwrap_or_default();
    let fields = checks.take_all(fields_to_update(
        paths,
        "role",
        &["name", "description", "permissions"],
        |field| match field {
            "name" => !role.name.is_empty(),
            "description" => !role.description.is_empty(),
            "permissions" => !role.permissions.is_empty(),
            _ => false,
        },
    ));
    let mut patch = RolePatch::default();
    for field in &fields {
        match field.as_str() {
            "name" => patch.name = Some(checks.take(values::role_name("role.name", &role.name))),
            "description" => {
                patch.description = Some(checks.take(values::text(
                    "role.description",
                    &role.description,
                    MAX_DESCRIPTION_CHARS,
                    true,
                )))
            }
            _ => {
                patch.permissions = Some(
                    checks
                        .take_all(values::permissions("role.permissions", &role.permissions))
                        .into_iter()
                        .collect::<BTreeSet<_>>(),
                )
            }
        }
    }
    checks.done()?;
    let role_id = role_id.ok_or_else(|| StaffError::invalid("role.role_id", "is required"))?;
    let granter = authz::granter(&principal, &workspace_id)?;
    let updated = staff
        .update_role(&actor, &workspace_id, &granter, role_id, version, patch)
        .await?;
    Ok(convert::role(updated))
}

pub(super) async fn delete_role(
    staff: &Staff,
    request: Request<pb::DeleteRoleRequest>,
) -> Result<()> {
    let (principal, actor) = caller(&request)?;
    let pb::DeleteRoleRequest {
        workspace_id,
        role_id,
        etag,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "DeleteRole")?;
    let mut checks = Checks::default();
    let role_id = checks.take(values::role_id("role_id", &role_id).map(Some));
    let version = checks.take(parse_etag("etag", &etag));
    checks.done()?;
    let role_id = role_id.ok_or_else(|| StaffError::invalid("role_id", "is required"))?;
    staff
        .delete_role(&actor, &workspace_id, role_id, version)
        .await
}

pub(super) async fn list_roles(
    staff: &Staff,
    request: Request<pb::ListRolesRequest>,
) -> Result<pb::ListRolesResponse> {
    let (principal, _) = caller(&request)?;
    let pb::ListRolesRequest { workspace_id } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "ListRoles")?;
    let roles = staff.list_roles(&workspace_id).await?;
    Ok(pb::ListRolesResponse {
        roles: roles.into_iter().map(convert::role).collect(),
    })
}
