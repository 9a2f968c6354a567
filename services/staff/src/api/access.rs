//! Handlers of an agent's effective access: GetEffectivePermissions and ExplainAccess.

use roster_core::FieldViolation;
use roster_proto::staff::v1 as pb;
use tonic::Request;

use super::{Checks, caller, convert, workspace};
use crate::domain::values;
use crate::error::{Result, StaffError};
use crate::service::Staff;

pub(super) async fn get_effective_permissions(
    staff: &Staff,
    request: Request<pb::GetEffectivePermissionsRequest>,
) -> Result<pb::EffectivePermissions> {
    let (principal, _) = caller(&request)?;
    let pb::GetEffectivePermissionsRequest {
        workspace_id,
        agent_id,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "GetEffectivePermissions")?;
    let agent_id = values::id("agent_id", &agent_id)?;
    let (agent, access) = staff.agent_access(&workspace_id, agent_id).await?;
    let permissions = access
        .sources
        .iter()
        .map(|(name, sources)| pb::EffectivePermission {
            name: name.clone(),
            service: convert::service_of(name),
            sources: sources.iter().map(convert::access_source).collect(),
        })
        .collect();
    Ok(pb::EffectivePermissions {
        agent_id: agent.agent_id.to_string(),
        role: access.role,
        agent_status: convert::status(&agent.status) as i32,
        permissions,
    })
}

pub(super) async fn explain_access(
    staff: &Staff,
    request: Request<pb::ExplainAccessRequest>,
) -> Result<pb::AccessExplanation> {
    let (principal, _) = caller(&request)?;
    let pb::ExplainAccessRequest {
        workspace_id,
        agent_id,
        permission,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "ExplainAccess")?;
    let mut checks = Checks::default();
    let agent_id = checks.take(values::id("agent_id", &agent_id).map(Some));
    let permission = match roster_auth::catalogues::find(permission.trim()) {
        Some(known) => known.name,
        None => {
            checks.0.push(FieldViolation::new(
                "permission",
                format!(
                    "'{permission}' is not a permission of any Roster service (ListPermissions)"
                ),
            ));
            ""
        }
    };
    checks.done()?;
    let agent_id = agent_id.ok_or_else(|| StaffError::invalid("agent_id", "is required"))?;
    let (agent, access) = staff.agent_access(&workspace_id, agent_id).await?;
    let sources = access.sources_of(permission);
    Ok(pb::AccessExplanation {
        agent_id: agent.agent_id.to_string(),
        permission: permission.to_owned(),
        granted: !sources.is_empty(),
        sources: sources.iter().map(convert::access_source).collect(),
        role: access.role.clone(),
        agent_status: convert::status(&agent.status) as i32,
    })
}
