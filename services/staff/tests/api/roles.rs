//! Custom roles: their lifecycle, names, permissions, holders and the grant rules.

use prost_types::FieldMask;
use roster_proto::staff::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_refused, change_of, violated_fields};
use crate::on_both_databases;

on_both_databases!(
    custom_roles_are_created_read_changed_and_deleted_with_etags,
    names_are_unique_case_insensitively_and_permissions_come_from_the_catalogue,
    a_held_role_cannot_be_deleted_and_its_changes_reach_its_holders,
    granting_a_custom_role_needs_holding_its_permissions,
    roles_and_teams_of_two_workspaces_never_mix,
    a_role_is_never_deleted_from_under_an_agent_given_it,
);

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

async fn update_role(
    app: &TestApp,
    token: &str,
    role: pb::Role,
    paths: &[&str],
) -> Result<pb::Role, tonic::Status> {
    app.client()
        .update_role(app.with(
            token,
            pb::UpdateRoleRequest {
                workspace_id: WS.into(),
                role: Some(role),
                update_mask: mask(paths),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn delete_role(app: &TestApp, role_id: &str, etag: &str) -> Result<(), tonic::Status> {
    app.client()
        .delete_role(app.admin(pb::DeleteRoleRequest {
            workspace_id: WS.into(),
            role_id: role_id.into(),
            etag: etag.into(),
        }))
        .await
        .map(|_| ())
}

async fn get_role(app: &TestApp, role_id: &str) -> Result<pb::Role, tonic::Status> {
    app.client()
        .get_role(app.admin(pb::GetRoleRequest {
            workspace_id: WS.into(),
            role_id: role_id.into(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn list_roles(app: &TestApp) -> Vec<pb::Role> {
    app.client()
        .list_roles(app.admin(pb::ListRolesRequest {
            workspace_id: WS.into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .roles
}

async fn set_role(
    app: &TestApp,
    token: &str,
    agent: &pb::Agent,
    role: &str,
) -> Result<pb::Agent, tonic::Status> {
    app.client()
        .update_agent(app.with(
            token,
            pb::UpdateAgentRequest {
                workspace_id: WS.into(),
                agent: Some(pb::Agent {
                    agent_id: agent.agent_id.clone(),
                    role: role.into(),
                    ..Default::default()
                }),
                update_mask: mask(&["role"]),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn custom_roles_are_created_read_changed_and_deleted_with_etags(app: TestApp) {
    let lead = app
        .create_role(
            "Team Lead",
            &["tickets.work", "macros.manage", "tickets.work"],
        )
        .await;
    assert!(!lead.built_in);
    assert_eq!(lead.name, "Team Lead");
    assert_eq!(lead.permissions, ["macros.manage", "tickets.work"]);
    assert_eq!(lead.agent_count, 0);
    assert!(uuid::Uuid::parse_str(&lead.role_id).is_ok());
    assert_eq!(get_role(&app, &lead.role_id).await.unwrap(), lead);

    let roles = list_roles(&app).await;
    let names: Vec<_> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["admin", "agent", "viewer", "Team Lead"]);
    let agent = &roles[1];
    assert!(agent.built_in && agent.etag.is_empty() && agent.role_id == "agent");
    assert_eq!(
        agent.permissions,
        ["end_users.write", "macros.use", "tickets.work"]
    );
    assert!(roles[0].permissions.contains(&"billing.manage".to_owned()));
    assert!(roles[2].permissions.is_empty());
    assert_eq!(get_role(&app, "viewer").await.unwrap(), roles[2]);

    // Changes need the current etag when one is sent.
    let mut stale = lead.clone();
    stale.description = "first".into();
    let changed = update_role(&app, &app.admin_token(), stale.clone(), &["description"])
        .await
        .unwrap();
    assert_eq!(changed.description, "first");
    assert_ne!(changed.etag, lead.etag);
    stale.description = "second".into();
    assert_refused(
        update_role(&app, &app.admin_token(), stale, &["description"]).await,
        Code::Aborted,
        "ETAG_MISMATCH",
    );
    let mut rename = changed.clone();
    rename.name = "Shift Lead".into();
    rename.permissions = vec!["tickets.view_all".into()];
    let renamed = update_role(&app, &app.admin_token(), rename, &["name", "permissions"])
        .await
        .unwrap();
    assert_eq!(renamed.name, "Shift Lead");
    assert_eq!(renamed.permissions, ["tickets.view_all"]);
    assert_eq!(renamed.description, "first");

    // Built-in roles are not the workspace's to change.
    let mut admin = roles[0].clone();
    admin.permissions = vec![];
    assert_refused(
        update_role(&app, &app.admin_token(), admin, &["permissions"]).await,
        Code::FailedPrecondition,
        "ROLE_BUILT_IN",
    );
    assert_refused(
        delete_role(&app, "agent", "").await,
        Code::FailedPrecondition,
        "ROLE_BUILT_IN",
    );

    assert_refused(
        delete_role(&app, &renamed.role_id, &changed.etag).await,
        Code::Aborted,
        "ETAG_MISMATCH",
    );
    delete_role(&app, &renamed.role_id, &renamed.etag)
        .await
        .unwrap();
    assert_refused(
        get_role(&app, &renamed.role_id).await,
        Code::NotFound,
        "ROLE_NOT_FOUND",
    );
    assert_eq!(list_roles(&app).await.len(), 3);

    let created = app.last_event("role.created").await;
    assert_eq!(created.target_id, lead.role_id);
    assert_eq!(change_of(&created, "name").1, "Team Lead");
    assert_eq!(
        change_of(&created, "permissions").1,
        json!(["macros.manage", "tickets.work"])
    );
    let deleted = app.last_event("role.deleted").await;
    assert_eq!(change_of(&deleted, "name").0, "Shift Lead");
    assert_eq!(
        change_of(&deleted, "permissions").0,
        json!(["tickets.view_all"])
    );
}

async fn names_are_unique_case_insensitively_and_permissions_come_from_the_catalogue(app: TestApp) {
    let lead = app.create_role("Team Lead", &[]).await;
    let create = |name: &str, permissions: &[&str]| {
        let request = app.admin(pb::CreateRoleRequest {
            workspace_id: WS.into(),
            role: Some(pb::Role {
                name: name.into(),
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                ..Default::default()
            }),
        });
        let mut client = app.client();
        async move { client.create_role(request).await }
    };
    let status = assert_refused(
        create("  team LEAD ", &[]).await,
        Code::AlreadyExists,
        "ROLE_ALREADY_EXISTS",
    );
    assert!(status.message().contains("'Team Lead'"), "{status:?}");
    for reserved in ["Admin", "viewer"] {
        let status = create(reserved, &[]).await.unwrap_err();
        assert_eq!(violated_fields(&status), ["role.name"], "{reserved}");
    }
    let status = create("", &["tickets.work", "tickets.fly", "Staff.Manage"])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["role.name", "role.permissions[1]", "role.permissions[2]"]
    );

    // A rename may not take another role's name; a change of case is fine.
    let other = app.create_role("Billing Admin", &["billing.manage"]).await;
    let mut clash = other.clone();
    clash.name = "TEAM lead".into();
    assert_refused(
        update_role(&app, &app.admin_token(), clash, &["name"]).await,
        Code::AlreadyExists,
        "ROLE_ALREADY_EXISTS",
    );
    let mut recase = lead.clone();
    recase.name = "TEAM LEAD".into();
    assert_eq!(
        update_role(&app, &app.admin_token(), recase, &["name"])
            .await
            .unwrap()
            .name,
        "TEAM LEAD"
    );
    let mut unknown = other.clone();
    unknown.permissions = vec!["billing.steal".into()];
    let status = update_role(&app, &app.admin_token(), unknown, &["permissions"])
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["role.permissions[0]"]);
    for bad in ["", "owner", "not-a-uuid"] {
        let status = get_role(&app, bad).await.unwrap_err();
        assert_eq!(violated_fields(&status), ["role_id"], "{bad}");
    }
    assert_refused(
        get_role(&app, &uuid::Uuid::now_v7().to_string()).await,
        Code::NotFound,
        "ROLE_NOT_FOUND",
    );
}

async fn a_held_role_cannot_be_deleted_and_its_changes_reach_its_holders(app: TestApp) {
    let lead = app.create_role("Team Lead", &["tickets.work"]).await;
    // Any case names the role; agents carry its name as created.
    let invited = app.invite("uhura@example.com", "team lead").await;
    assert_eq!(invited.agent.as_ref().unwrap().role, "Team Lead");
    let sulu = app.active("sulu@example.com", "agent").await;
    let sulu = set_role(&app, &app.admin_token(), &sulu, "Team Lead")
        .await
        .unwrap();
    assert_eq!(sulu.role, "Team Lead");
    let role_changed = app.last_event("agent.role_changed").await;
    assert_eq!(change_of(&role_changed, "role").1, "Team Lead");
    assert_eq!(
        change_of(&role_changed, "permissions").1,
        json!(["tickets.work"])
    );

    let lead = get_role(&app, &lead.role_id).await.unwrap();
    assert_eq!(lead.agent_count, 2);
    let status = assert_refused(
        delete_role(&app, &lead.role_id, "").await,
        Code::FailedPrecondition,
        "ROLE_IN_USE",
    );
    assert!(status.message().contains("2 agents"), "{status:?}");

    // A change of the role is a change of what its holders hold.
    let mut widen = lead.clone();
    widen.name = "Shift Lead".into();
    widen.permissions = vec!["tickets.work".into(), "tickets.view_all".into()];
    update_role(&app, &app.admin_token(), widen, &["name", "permissions"])
        .await
        .unwrap();
    let explained = app
        .client()
        .explain_access(app.admin(pb::ExplainAccessRequest {
            workspace_id: WS.into(),
            agent_id: sulu.agent_id.clone(),
            permission: "tickets.view_all".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(explained.granted);
    assert_eq!(explained.role, "Shift Lead");
    assert_eq!(explained.sources[0].name, "Shift Lead");
    assert_eq!(explained.sources[0].id, lead.role_id);
    let renamed = app.get(&sulu.agent_id).await;
    assert_eq!(renamed.role, "Shift Lead");
    assert_ne!(renamed.etag, sulu.etag, "a rename changes its holders");
    let holders = app
        .client()
        .list_agents(app.admin(pb::ListAgentsRequest {
            workspace_id: WS.into(),
            filter: r#"role:"shift LEAD""#.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert_eq!(holders.len(), 2);
    let status = app
        .client()
        .list_agents(app.admin(pb::ListAgentsRequest {
            workspace_id: WS.into(),
            filter: "role:\"Team Lead\"".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["filter"]);

    let updated = app.last_event("role.updated").await;
    assert_eq!(updated.target_id, lead.role_id);
    assert_eq!(
        change_of(&updated, "role.name"),
        (json!("Team Lead"), json!("Shift Lead"))
    );
    assert_eq!(
        change_of(&updated, "permissions"),
        (
            json!(["tickets.work"]),
            json!(["tickets.view_all", "tickets.work"])
        )
    );
    assert_eq!(change_of(&updated, "holders").1, 2);

    // Once nobody holds it, it goes.
    set_role(&app, &app.admin_token(), &renamed, "viewer")
        .await
        .unwrap();
    let uhura = invited.agent.unwrap();
    set_role(
        &app,
        &app.admin_token(),
        &app.get(&uhura.agent_id).await,
        "agent",
    )
    .await
    .unwrap();
    delete_role(&app, &lead.role_id, "").await.unwrap();
}

async fn granting_a_custom_role_needs_holding_its_permissions(app: TestApp) {
    app.create_role("Billing Admin", &["billing.manage", "tickets.work"])
        .await;
    let lead = app.create_role("Team Lead", &["tickets.work"]).await;
    let spock = app.active("spock@example.com", "viewer").await;
    let manager = app.token("agent", &["staff.manage", "roles.manage"]);

    // What the manager lacks, it can neither hand out nor put in a role.
    let status = assert_refused(
        set_role(&app, &manager, &spock, "Billing Admin").await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    assert!(status.message().contains("billing.manage"), "{status:?}");
    assert_refused(
        app.client()
            .invite_agent(app.with(
                &manager,
                pb::InviteAgentRequest {
                    workspace_id: WS.into(),
                    email: "new@example.com".into(),
                    role: "billing admin".into(),
                    ..Default::default()
                },
            ))
            .await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    assert_refused(
        app.client()
            .create_role(app.with(
                &manager,
                pb::CreateRoleRequest {
                    workspace_id: WS.into(),
                    role: Some(pb::Role {
                        name: "Money".into(),
                        permissions: vec!["billing.manage".into()],
                        ..Default::default()
                    }),
                },
            ))
            .await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    let mut widen = lead.clone();
    widen.permissions = vec!["tickets.work".into(), "tickets.delete".into()];
    assert_refused(
        update_role(&app, &manager, widen, &["permissions"]).await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );

    // What it holds, it may: the agent role holds tickets.work.
    let spock = set_role(&app, &manager, &spock, "Team Lead").await.unwrap();
    assert_eq!(spock.role, "Team Lead");
    let mut describe = lead.clone();
    describe.description = "leads a shift".into();
    update_role(&app, &manager, describe, &["description"])
        .await
        .unwrap();
    // A token of a custom role grants what it lists.
    let billing_lead = app.token(
        "Team Lead",
        &["staff.manage", "billing.manage", "tickets.work"],
    );
    assert_eq!(
        set_role(&app, &billing_lead, &spock, "Billing Admin")
            .await
            .unwrap()
            .role,
        "Billing Admin"
    );
    // Nobody changes their own role, custom or not.
    let own = app.token_as(
        &spock.agent_id,
        &[WS],
        "Billing Admin",
        &["staff.manage", "billing.manage", "tickets.work"],
    );
    assert_refused(
        set_role(&app, &own, &app.get(&spock.agent_id).await, "Team Lead").await,
        Code::PermissionDenied,
        "OWN_ROLE",
    );
    // A role-less name is refused as such.
    let status = set_role(&app, &app.admin_token(), &spock, "Captain")
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["agent.role"]);
}

async fn roles_and_teams_of_two_workspaces_never_mix(app: TestApp) {
    let lead = app.create_role("Team Lead", &["tickets.work"]).await;
    let team = app.create_team("Tier 1", &["tickets.view_all"]).await;
    let kirk = app.active("kirk@example.com", "Team Lead").await;
    let other = app.tokens.agent(&["other"], "admin", &[]);
    let mut client = app.client();

    let roles = client
        .list_roles(app.with(
            &other,
            pb::ListRolesRequest {
                workspace_id: "other".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .roles;
    assert_eq!(roles.len(), 3, "only the built-in roles");
    assert_refused(
        client
            .get_role(app.with(
                &other,
                pb::GetRoleRequest {
                    workspace_id: "other".into(),
                    role_id: lead.role_id.clone(),
                },
            ))
            .await,
        Code::NotFound,
        "ROLE_NOT_FOUND",
    );
    let status = app
        .invite_in("other", "kirk@example.com", "Team Lead")
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["role"]);
    assert_refused(
        client
            .get_team(app.with(
                &other,
                pb::GetTeamRequest {
                    workspace_id: "other".into(),
                    team_id: team.team_id.clone(),
                },
            ))
            .await,
        Code::NotFound,
        "TEAM_NOT_FOUND",
    );
    assert_refused(
        client
            .add_team_members(app.with(
                &other,
                pb::AddTeamMembersRequest {
                    workspace_id: "other".into(),
                    team_id: team.team_id.clone(),
                    agent_ids: vec![kirk.agent_id.clone()],
                },
            ))
            .await,
        Code::NotFound,
        "TEAM_NOT_FOUND",
    );
    assert_refused(
        client
            .explain_access(app.with(
                &other,
                pb::ExplainAccessRequest {
                    workspace_id: "other".into(),
                    agent_id: kirk.agent_id.clone(),
                    permission: "tickets.work".into(),
                },
            ))
            .await,
        Code::NotFound,
        "AGENT_NOT_FOUND",
    );
    // A token for the other workspace reaches nothing here.
    assert_refused(
        client
            .get_role(app.with(
                &other,
                pb::GetRoleRequest {
                    workspace_id: WS.into(),
                    role_id: lead.role_id.clone(),
                },
            ))
            .await,
        Code::PermissionDenied,
        "WORKSPACE_NOT_GRANTED",
    );
}

async fn a_role_is_never_deleted_from_under_an_agent_given_it(app: TestApp) {
    let chekov = app.active("chekov@example.com", "agent").await;
    for round in 0..4 {
        let role = app.create_role(&format!("Navigator {round}"), &[]).await;
        let admin = app.admin_token();
        let (deleted, given) = tokio::join!(
            delete_role(&app, &role.role_id, ""),
            set_role(&app, &admin, &chekov, &role.name),
        );
        // Whichever came first wins; the other sees what it left.
        match (&deleted, &given) {
            (Ok(()), Err(status)) => assert_eq!(violated_fields(status), ["agent.role"]),
            (Err(status), Ok(agent)) => {
                assert_eq!(crate::helpers::reason(status), "ROLE_IN_USE");
                assert_eq!(agent.role, role.name);
                assert_eq!(get_role(&app, &role.role_id).await.unwrap().agent_count, 1);
            }
            other => panic!("round {round}: {other:?}"),
        }
        set_role(&app, &admin, &chekov, "agent").await.unwrap();
    }
}
