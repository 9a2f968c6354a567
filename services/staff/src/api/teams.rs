//! Handlers of teams beyond CreateTeam and ListTeams: reading, changing and deleting one,
//! and its members.

use std::collections::BTreeSet;

use roster_core::FieldViolation;
use roster_core::etag::parse_etag;
use roster_core::paging::{Cursor, Order, page_size, query_fingerprint};
use roster_core::update_mask::fields_to_update;
use roster_proto::staff::v1 as pb;
use tonic::Request;

use super::{Checks, authz, caller, convert, workspace};
use crate::domain::filter::{AGENT_ORDER_KEYS, AGENT_ORDER_NAMES};
use crate::domain::values::{self, MAX_DESCRIPTION_CHARS};
use crate::error::{Result, StaffError};
use crate::service::{MembersChanged, Staff, TeamPatch};

pub(super) async fn get_team(
    staff: &Staff,
    request: Request<pb::GetTeamRequest>,
) -> Result<pb::Team> {
    let (principal, _) = caller(&request)?;
    let pb::GetTeamRequest {
        workspace_id,
        team_id,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "GetTeam")?;
    let team_id = values::id("team_id", &team_id)?;
    convert::team(staff.get_team(&workspace_id, team_id).await?)
}

pub(super) async fn update_team(
    staff: &Staff,
    request: Request<pb::UpdateTeamRequest>,
) -> Result<pb::Team> {
    let (principal, actor) = caller(&request)?;
    let pb::UpdateTeamRequest {
        workspace_id,
        team,
        update_mask,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "UpdateTeam")?;
    let team = team.ok_or_else(|| StaffError::invalid("team", "is required"))?;
    let mut checks = Checks::default();
    let team_id = checks.take(values::id("team.team_id", &team.team_id).map(Some));
    let version = checks.take(parse_etag("team.etag", &team.etag));
    let paths = update_mask.map(|mask| mask.paths).unwrap_or_default();
    let fields = checks.take_all(fields_to_update(
        paths,
        "team",
        &["name", "description", "permissions"],
        |field| match field {
            "name" => !team.name.is_empty(),
            "description" => !team.description.is_empty(),
            "permissions" => !team.permissions.is_empty(),
            _ => false,
        },
    ));
    let mut patch = TeamPatch::default();
    for field in &fields {
        match field.as_str() {
            "name" => {
                let name = checks.take(values::name("team.name", &team.name));
                if name.is_empty() {
                    checks
                        .0
                        .push(FieldViolation::new("team.name", "is required"));
                }
                patch.name = Some(name);
            }
            "description" => {
                patch.description = Some(checks.take(values::text(
                    "team.description",
                    &team.description,
                    MAX_DESCRIPTION_CHARS,
                    true,
                )))
            }
            _ => {
                patch.permissions = Some(
                    checks
                        .take_all(values::permissions("team.permissions", &team.permissions))
                        .into_iter()
                        .collect::<BTreeSet<_>>(),
                )
            }
        }
    }
    checks.done()?;
    let team_id = team_id.ok_or_else(|| StaffError::invalid("team.team_id", "is required"))?;
    let granter = authz::granter(&principal, &workspace_id)?;
    convert::team(
        staff
            .update_team(&actor, &workspace_id, &granter, team_id, version, patch)
            .await?,
    )
}

pub(super) async fn delete_team(
    staff: &Staff,
    request: Request<pb::DeleteTeamRequest>,
) -> Result<()> {
    let (principal, actor) = caller(&request)?;
    let pb::DeleteTeamRequest {
        workspace_id,
        team_id,
        etag,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "DeleteTeam")?;
    let mut checks = Checks::default();
    let team_id = checks.take(values::id("team_id", &team_id).map(Some));
    let version = checks.take(parse_etag("etag", &etag));
    checks.done()?;
    let team_id = team_id.ok_or_else(|| StaffError::invalid("team_id", "is required"))?;
    staff
        .delete_team(&actor, &workspace_id, team_id, version)
        .await
}

fn members_changed(changed: MembersChanged) -> Result<pb::TeamMembersChanged> {
    Ok(pb::TeamMembersChanged {
        team: Some(convert::team(changed.team)?),
        changed_agent_ids: changed.changed.iter().map(ToString::to_string).collect(),
    })
}

pub(super) async fn add_team_members(
    staff: &Staff,
    request: Request<pb::AddTeamMembersRequest>,
) -> Result<pb::TeamMembersChanged> {
    let (principal, actor) = caller(&request)?;
    let pb::AddTeamMembersRequest {
        workspace_id,
        team_id,
        agent_ids,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "AddTeamMembers")?;
    let mut checks = Checks::default();
    let team_id = checks.take(values::id("team_id", &team_id).map(Some));
    let agent_ids = checks.take_all(values::agent_ids("agent_ids", &agent_ids));
    checks.done()?;
    let team_id = team_id.ok_or_else(|| StaffError::invalid("team_id", "is required"))?;
    let granter = authz::granter(&principal, &workspace_id)?;
    members_changed(
        staff
            .add_team_members(&actor, &workspace_id, &granter, team_id, &agent_ids)
            .await?,
    )
}

pub(super) async fn remove_team_members(
    staff: &Staff,
    request: Request<pb::RemoveTeamMembersRequest>,
) -> Result<pb::TeamMembersChanged> {
    let (principal, actor) = caller(&request)?;
    let pb::RemoveTeamMembersRequest {
        workspace_id,
        team_id,
        agent_ids,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "RemoveTeamMembers")?;
    let mut checks = Checks::default();
    let team_id = checks.take(values::id("team_id", &team_id).map(Some));
    let agent_ids = checks.take_all(values::agent_ids("agent_ids", &agent_ids));
    checks.done()?;
    let team_id = team_id.ok_or_else(|| StaffError::invalid("team_id", "is required"))?;
    members_changed(
        staff
            .remove_team_members(&actor, &workspace_id, team_id, &agent_ids)
            .await?,
    )
}

pub(super) async fn list_team_members(
    staff: &Staff,
    request: Request<pb::ListTeamMembersRequest>,
) -> Result<pb::ListTeamMembersResponse> {
    let (principal, _) = caller(&request)?;
    let pb::ListTeamMembersRequest {
        workspace_id,
        team_id,
        page_size: size,
        page_token,
        order_by,
    } = request.into_inner();
    let workspace_id = workspace(&principal, &workspace_id, "ListTeamMembers")?;
    let mut checks = Checks::default();
    let team_id = checks.take(values::id("team_id", &team_id).map(Some));
    let limit = checks.take(page_size(size));
    let order = checks.take(Order::parse(&order_by, AGENT_ORDER_KEYS, AGENT_ORDER_NAMES));
    checks.done()?;
    let team_id = team_id.ok_or_else(|| StaffError::invalid("team_id", "is required"))?;
    let fingerprint =
        query_fingerprint(&["team members", &team_id.to_string(), &format!("{order:?}")]);
    let after = Cursor::decode(&page_token, &fingerprint)?;
    let mut rows = staff
        .list_team_members(&workspace_id, team_id, order, after.as_ref(), limit + 1)
        .await?;
    let keep = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if rows.len() > keep {
        rows.truncate(keep);
        rows.last()
            .map(|view| {
                crate::store::agents::cursor_of(&view.agent, order.key, fingerprint.clone())
                    .encode()
            })
            .unwrap_or_default()
    } else {
        String::new()
    };
    Ok(pb::ListTeamMembersResponse {
        agents: rows
            .into_iter()
            .map(convert::agent)
            .collect::<Result<Vec<_>>>()?,
        next_page_token: next,
    })
}
