//! Effective access: the catalogue, what an agent holds and why.

use prost_types::FieldMask;
use roster_proto::staff::v1 as pb;
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, WS, assert_refused, change_of, violated_fields};
use crate::on_both_databases;

on_both_databases!(
    the_catalogue_is_published_by_service_with_descriptions,
    explain_access_names_the_role_each_team_and_the_extra_grant,
    admins_hold_everything_and_viewers_nothing,
    tokens_carry_effective_access_and_end_when_a_role_or_team_changes,
);

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

async fn explain(
    app: &TestApp,
    agent_id: &str,
    permission: &str,
) -> Result<pb::AccessExplanation, tonic::Status> {
    app.client()
        .explain_access(app.admin(pb::ExplainAccessRequest {
            workspace_id: WS.into(),
            agent_id: agent_id.into(),
            permission: permission.into(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn effective(app: &TestApp, agent_id: &str) -> pb::EffectivePermissions {
    app.client()
        .get_effective_permissions(app.admin(pb::GetEffectivePermissionsRequest {
            workspace_id: WS.into(),
            agent_id: agent_id.into(),
        }))
        .await
        .unwrap()
        .into_inner()
}

/// (kind, name) of each source.
fn sources(sources: &[pb::AccessSource]) -> Vec<(pb::AccessSourceKind, String)> {
    sources.iter().map(|s| (s.kind(), s.name.clone())).collect()
}

async fn the_catalogue_is_published_by_service_with_descriptions(app: TestApp) {
    // Any role of the workspace may read it.
    let viewer = app.token("viewer", &[]);
    let catalogue = app
        .client()
        .list_permissions(app.with(
            &viewer,
            pb::ListPermissionsRequest {
                workspace_id: WS.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let services: Vec<_> = catalogue
        .services
        .iter()
        .map(|s| s.service.as_str())
        .collect();
    assert_eq!(services, ["directory", "staff", "audit", "helpdesk"]);
    let find = |name: &str| {
        catalogue
            .services
            .iter()
            .flat_map(|s| s.permissions.iter().map(move |p| (s.service.as_str(), p)))
            .find(|(_, p)| p.name == name)
            .unwrap_or_else(|| panic!("{name} is published"))
    };
    // The product's list, each described.
    for name in [
        "tickets.view_all",
        "tickets.delete",
        "data.export",
        "macros.manage",
        "analytics.view",
        "end_users.write",
        "end_users.delete",
        "end_users.erase",
        "staff.manage",
        "roles.manage",
        "billing.manage",
        "integrations.manage",
    ] {
        assert!(!find(name).1.description.is_empty(), "{name}");
    }
    assert_eq!(find("tickets.view_all").0, "helpdesk");
    assert_eq!(find("end_users.erase").0, "directory");
    assert_eq!(find("tickets.work").1.built_in_roles, ["admin", "agent"]);
    assert_eq!(find("billing.manage").1.built_in_roles, ["admin"]);
    assert_refused(
        app.client()
            .list_permissions(app.with(
                &viewer,
                pb::ListPermissionsRequest {
                    workspace_id: "other".into(),
                },
            ))
            .await,
        Code::PermissionDenied,
        "WORKSPACE_NOT_GRANTED",
    );
}

async fn explain_access_names_the_role_each_team_and_the_extra_grant(app: TestApp) {
    let lead = app
        .create_role("Team Lead", &["tickets.work", "macros.manage"])
        .await;
    let billing = app
        .create_team("Billing", &["billing.manage", "macros.manage"])
        .await;
    let vip = app.create_team("VIP", &["tickets.view_all"]).await;
    let worf = app.active("worf@example.com", "Team Lead").await;
    app.client()
        .update_agent(app.admin(pb::UpdateAgentRequest {
            workspace_id: WS.into(),
            agent: Some(pb::Agent {
                agent_id: worf.agent_id.clone(),
                team_ids: vec![vip.team_id.clone(), billing.team_id.clone()],
                extra_permissions: vec!["macros.manage".into(), "data.export".into()],
                ..Default::default()
            }),
            update_mask: mask(&["team_ids", "extra_permissions"]),
        }))
        .await
        .unwrap();
    let teams_changed = app.last_event("agent.teams_changed").await;
    assert_eq!(
        change_of(&teams_changed, "permissions").1,
        serde_json::json!([
            "billing.manage",
            "data.export",
            "macros.manage",
            "tickets.view_all",
            "tickets.work"
        ])
    );

    let why = explain(&app, &worf.agent_id, "macros.manage")
        .await
        .unwrap();
    assert!(why.granted);
    assert_eq!(why.role, "Team Lead");
    assert_eq!(why.agent_status(), pb::AgentStatus::Active);
    assert_eq!(
        sources(&why.sources),
        [
            (pb::AccessSourceKind::Role, "Team Lead".to_owned()),
            (pb::AccessSourceKind::Team, "Billing".to_owned()),
            (pb::AccessSourceKind::Extra, String::new()),
        ]
    );
    assert_eq!(why.sources[0].id, lead.role_id);
    assert_eq!(why.sources[1].id, billing.team_id);
    let not = explain(&app, &worf.agent_id, "tickets.delete")
        .await
        .unwrap();
    assert!(!not.granted && not.sources.is_empty());
    assert_eq!(not.permission, "tickets.delete");

    let all = effective(&app, &worf.agent_id).await;
    assert_eq!(all.role, "Team Lead");
    let names: Vec<_> = all.permissions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "billing.manage",
            "data.export",
            "macros.manage",
            "tickets.view_all",
            "tickets.work"
        ]
    );
    let view_all = &all.permissions[3];
    assert_eq!(view_all.service, "helpdesk");
    assert_eq!(
        sources(&view_all.sources),
        [(pb::AccessSourceKind::Team, "VIP".to_owned())]
    );

    // Leaving a team takes its reasons away; what else grants a permission stays.
    app.client()
        .remove_team_members(app.admin(pb::RemoveTeamMembersRequest {
            workspace_id: WS.into(),
            team_id: billing.team_id.clone(),
            agent_ids: vec![worf.agent_id.clone()],
        }))
        .await
        .unwrap();
    assert!(
        !explain(&app, &worf.agent_id, "billing.manage")
            .await
            .unwrap()
            .granted
    );
    assert_eq!(
        sources(
            &explain(&app, &worf.agent_id, "macros.manage")
                .await
                .unwrap()
                .sources
        ),
        [
            (pb::AccessSourceKind::Role, "Team Lead".to_owned()),
            (pb::AccessSourceKind::Extra, String::new()),
        ]
    );
    // From the agent's side too.
    app.client()
        .update_agent(app.admin(pb::UpdateAgentRequest {
            workspace_id: WS.into(),
            agent: Some(pb::Agent {
                agent_id: worf.agent_id.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["team_ids"]),
        }))
        .await
        .unwrap();
    assert!(
        !explain(&app, &worf.agent_id, "tickets.view_all")
            .await
            .unwrap()
            .granted
    );

    // Bad input.
    let status = explain(&app, "nope", "tickets.fly").await.unwrap_err();
    assert_eq!(violated_fields(&status), ["agent_id", "permission"]);
    assert_refused(
        explain(&app, &uuid::Uuid::now_v7().to_string(), "tickets.work").await,
        Code::NotFound,
        "AGENT_NOT_FOUND",
    );
}

async fn admins_hold_everything_and_viewers_nothing(app: TestApp) {
    let kirk = app.active("kirk@example.com", "admin").await;
    let data = app.active("data@example.com", "viewer").await;
    let catalogue_size: usize = app
        .client()
        .list_permissions(app.admin(pb::ListPermissionsRequest {
            workspace_id: WS.into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .services
        .iter()
        .map(|s| s.permissions.len())
        .sum();
    let admin = effective(&app, &kirk.agent_id).await;
    assert_eq!(admin.permissions.len(), catalogue_size);
    assert!(
        admin
            .permissions
            .iter()
            .all(|p| { sources(&p.sources) == [(pb::AccessSourceKind::Role, "admin".to_owned())] })
    );
    let viewer = effective(&app, &data.agent_id).await;
    assert!(viewer.permissions.is_empty());
    assert_eq!(viewer.role, "viewer");
    // Any role of the workspace may ask, about anyone.
    let own = app.token_as(&data.agent_id, &[WS], "viewer", &[]);
    let why = app
        .client()
        .explain_access(app.with(
            &own,
            pb::ExplainAccessRequest {
                workspace_id: WS.into(),
                agent_id: kirk.agent_id.clone(),
                permission: "seats.manage".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(why.granted);
}

async fn tokens_carry_effective_access_and_end_when_a_role_or_team_changes(app: TestApp) {
    let lead = app.create_role("Team Lead", &["tickets.work"]).await;
    let vip = app.create_team("VIP", &["tickets.view_all"]).await;
    let worf = app.active("worf@example.com", "Team Lead").await;
    app.client()
        .update_agent(app.admin(pb::UpdateAgentRequest {
            workspace_id: WS.into(),
            agent: Some(pb::Agent {
                agent_id: worf.agent_id.clone(),
                extra_permissions: vec!["data.export".into()],
                ..Default::default()
            }),
            update_mask: mask(&["extra_permissions"]),
        }))
        .await
        .unwrap();
    app.client()
        .add_team_members(app.admin(pb::AddTeamMembersRequest {
            workspace_id: WS.into(),
            team_id: vip.team_id.clone(),
            agent_ids: vec![worf.agent_id.clone()],
        }))
        .await
        .unwrap();
    // What a fresh sign-in's token holds: (role, permissions, generation).
    let signed_in = || async {
        let session = app.login("worf@example.com", PASSWORD).await.unwrap();
        let principal = app.verify(&session.access_token);
        let grant = principal.grant(WS).unwrap().clone();
        let mut permissions: Vec<String> = grant.permissions.into_iter().collect();
        permissions.sort();
        (grant.role, permissions, principal.generation)
    };
    let (role, permissions, first) = signed_in().await;
    assert_eq!(role, "Team Lead");
    assert_eq!(
        permissions,
        ["data.export", "tickets.view_all", "tickets.work"]
    );

    let mut widen = lead.clone();
    widen.permissions = vec!["tickets.work".into(), "macros.manage".into()];
    app.client()
        .update_role(app.admin(pb::UpdateRoleRequest {
            workspace_id: WS.into(),
            role: Some(widen),
            update_mask: mask(&["permissions"]),
        }))
        .await
        .unwrap();
    let (_, permissions, second) = signed_in().await;
    assert!(
        second > first,
        "the role's change ends tokens issued before it"
    );
    assert!(permissions.contains(&"macros.manage".to_owned()));

    let mut narrow = vip.clone();
    narrow.permissions = vec![];
    app.client()
        .update_team(app.admin(pb::UpdateTeamRequest {
            workspace_id: WS.into(),
            team: Some(narrow),
            update_mask: mask(&["permissions"]),
        }))
        .await
        .unwrap();
    let (_, permissions, third) = signed_in().await;
    assert!(
        third > second,
        "the team's change ends tokens issued before it"
    );
    assert!(!permissions.contains(&"tickets.view_all".to_owned()));

    app.client()
        .remove_team_members(app.admin(pb::RemoveTeamMembersRequest {
            workspace_id: WS.into(),
            team_id: vip.team_id.clone(),
            agent_ids: vec![worf.agent_id.clone()],
        }))
        .await
        .unwrap();
    let (_, _, fourth) = signed_in().await;
    assert!(
        fourth > third,
        "leaving a team ends tokens issued before it"
    );
}
