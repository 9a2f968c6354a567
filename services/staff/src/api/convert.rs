//! Rows to protobuf messages.

use std::collections::BTreeSet;

use prost_types::Timestamp;
use roster_core::etag::etag;
use roster_proto::staff::v1 as pb;

use crate::domain::access::Source;
use crate::domain::values::NotificationPreferences;
use crate::domain::{AgentStatus, Role};
use crate::entity::invitation;
use crate::error::{Result, StaffError};
use crate::service::{AgentView, RoleView, TeamView, Usage, agents_extra_permissions};

pub fn timestamp(us: i64) -> Timestamp {
    Timestamp {
        seconds: us.div_euclid(1_000_000),
        // Below 1e9 by construction.
        nanos: i32::try_from(us.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
}

pub fn status(value: &str) -> pb::AgentStatus {
    match AgentStatus::parse(value) {
        Some(AgentStatus::Invited) => pb::AgentStatus::Invited,
        Some(AgentStatus::Active) => pb::AgentStatus::Active,
        Some(AgentStatus::Deactivated) => pb::AgentStatus::Deactivated,
        Some(AgentStatus::Erased) => pb::AgentStatus::Erased,
        None => pb::AgentStatus::Unspecified,
    }
}

pub fn theme(value: &str) -> pb::Theme {
    match value {
        "light" => pb::Theme::Light,
        "dark" => pb::Theme::Dark,
        _ => pb::Theme::Unspecified,
    }
}

pub fn preferences(value: NotificationPreferences) -> pb::NotificationPreferences {
    let NotificationPreferences {
        email_on_assignment,
        email_on_mention,
        email_on_new_team_ticket,
        desktop,
    } = value;
    pb::NotificationPreferences {
        email_on_assignment,
        email_on_mention,
        email_on_new_team_ticket,
        desktop,
    }
}

pub fn agent(view: AgentView) -> Result<pb::Agent> {
    let extra_permissions = agents_extra_permissions(&view.agent)?;
    let AgentView { agent, team_ids } = view;
    let prefs: NotificationPreferences = serde_json::from_str(&agent.notification_preferences)
        .map_err(|error| {
            StaffError::Internal(format!(
                "agent {}'s notification preferences do not parse: {error}",
                agent.agent_id
            ))
        })?;
    Ok(pb::Agent {
        agent_id: agent.agent_id.to_string(),
        workspace_id: agent.workspace_id,
        email: agent.email,
        name: agent.name,
        avatar_url: agent.avatar_url,
        role: agent.role,
        team_ids: team_ids.iter().map(ToString::to_string).collect(),
        extra_permissions,
        status: status(&agent.status) as i32,
        notification_preferences: Some(preferences(prefs)),
        signature: agent.signature,
        theme: theme(&agent.theme) as i32,
        language: agent.language,
        created_at: Some(timestamp(agent.created_at)),
        updated_at: Some(timestamp(agent.updated_at)),
        activated_at: agent.activated_at.map(timestamp),
        deactivated_at: agent.deactivated_at.map(timestamp),
        deactivation_reason: agent.deactivation_reason,
        last_sign_in_at: (agent.last_sign_in_at != 0).then(|| timestamp(agent.last_sign_in_at)),
        etag: etag(agent.version),
        sign_in_count: agent.sign_in_count,
    })
}

pub fn invitation(
    row: invitation::Model,
    agent: &crate::entity::agent::Model,
    now: i64,
) -> pb::Invitation {
    let state = if now >= row.expires_at {
        pb::InvitationState::Expired
    } else {
        pb::InvitationState::Pending
    };
    pb::Invitation {
        invitation_id: row.invitation_id.to_string(),
        agent_id: row.agent_id.to_string(),
        email: agent.email.clone(),
        name: agent.name.clone(),
        role: agent.role.clone(),
        state: state as i32,
        created_at: Some(timestamp(row.created_at)),
        expires_at: Some(timestamp(row.expires_at)),
        invited_by_kind: row.invited_by_kind,
        invited_by_id: row.invited_by_id,
    }
}

pub fn team(view: TeamView) -> Result<pb::Team> {
    let TeamView { row, member_count } = view;
    let permissions = crate::store::teams::grant_of(&row)?.permissions;
    Ok(pb::Team {
        team_id: row.team_id.to_string(),
        name: row.name,
        description: row.description,
        created_at: Some(timestamp(row.created_at)),
        etag: etag(row.version),
        permissions: permissions.into_iter().collect(),
        updated_at: Some(timestamp(row.updated_at)),
        member_count: i32::try_from(member_count).unwrap_or(i32::MAX),
    })
}

pub fn role(view: RoleView) -> pb::Role {
    let RoleView {
        grant,
        description,
        holders,
        row,
    } = view;
    pb::Role {
        role_id: grant.role_id,
        name: grant.name,
        description,
        permissions: grant.permissions.into_iter().collect(),
        built_in: grant.built_in.is_some(),
        agent_count: i32::try_from(holders).unwrap_or(i32::MAX),
        created_at: row.as_ref().map(|row| timestamp(row.created_at)),
        updated_at: row.as_ref().map(|row| timestamp(row.updated_at)),
        etag: row.map(|row| etag(row.version)).unwrap_or_default(),
    }
}

/// Every service's catalogue, with the built-in roles that hold each permission.
pub fn permission_catalogue() -> pb::ListPermissionsResponse {
    let held_by: Vec<(Role, BTreeSet<String>)> = Role::ALL
        .into_iter()
        .map(|role| (role, role.permissions()))
        .collect();
    pb::ListPermissionsResponse {
        services: roster_auth::catalogues::ALL
            .iter()
            .map(|catalogue| pb::PermissionGroup {
                service: catalogue.service.to_owned(),
                permissions: catalogue
                    .permissions
                    .iter()
                    .map(|permission| pb::Permission {
                        name: permission.name.to_owned(),
                        description: permission.description.to_owned(),
                        built_in_roles: held_by
                            .iter()
                            .filter(|(_, held)| held.contains(permission.name))
                            .map(|(role, _)| role.as_str().to_owned())
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The service whose catalogue names `permission`; empty for a name no catalogue has (a
/// stored grant the catalogues have since dropped).
pub fn service_of(permission: &str) -> String {
    roster_auth::catalogues::ALL
        .iter()
        .find(|catalogue| catalogue.get(permission).is_some())
        .map(|catalogue| catalogue.service.to_owned())
        .unwrap_or_default()
}

pub fn access_source(source: &Source) -> pb::AccessSource {
    let (kind, id, name) = match source {
        Source::Role { role_id, name } => {
            (pb::AccessSourceKind::Role, role_id.clone(), name.clone())
        }
        Source::Team { team_id, name } => (
            pb::AccessSourceKind::Team,
            team_id.to_string(),
            name.clone(),
        ),
        Source::Extra => (pb::AccessSourceKind::Extra, String::new(), String::new()),
    };
    pb::AccessSource {
        kind: kind as i32,
        id,
        name,
    }
}

pub fn usage(workspace_id: String, usage: Usage) -> pb::WorkspaceUsage {
    let clamp = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    pb::WorkspaceUsage {
        workspace_id,
        seat_limit: clamp(usage.seat_limit),
        seats_used: clamp(usage.counts.seats_used()),
        active_agents: clamp(usage.counts.active),
        invited_agents: clamp(usage.counts.invited),
        deactivated_agents: clamp(usage.counts.deactivated),
    }
}

pub fn jwks(jwks: crate::service::keys::Jwks) -> pb::GetJwksResponse {
    let crate::service::keys::Jwks {
        json,
        key_ids,
        signing_kid,
    } = jwks;
    pb::GetJwksResponse {
        jwks_json: json,
        key_ids,
        signing_key_id: signing_kid,
        refresh_interval: prost_types::Duration::try_from(
            crate::service::keys::JWKS_REFRESH_INTERVAL,
        )
        .ok(),
    }
}

pub fn rotation(rotation: crate::service::keys::Rotation) -> pb::RotateSigningKeyResponse {
    let crate::service::keys::Rotation {
        previous_kid,
        previous_unpublish_at,
        signing_kid,
    } = rotation;
    pb::RotateSigningKeyResponse {
        signing_key_id: signing_kid,
        previous_key_id: previous_kid.unwrap_or_default(),
        previous_key_unpublished_at: previous_unpublish_at.map(timestamp),
    }
}
