use prost_types::FieldMask;
use roster_proto::staff::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_refused, violated_fields};
use crate::on_both_databases;

on_both_databases!(
    role_changes_name_the_agent_and_the_permissions_before_and_after,
    the_last_admin_cannot_be_demoted_or_deactivated,
    nobody_changes_their_own_role_or_grants_what_they_lack,
    agents_change_only_their_own_profile,
    lists_filter_order_and_page,
    two_workspaces_never_mix,
    bad_input_names_every_field,
);

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

async fn team(app: &TestApp, name: &str) -> pb::Team {
    app.client()
        .create_team(app.admin(pb::CreateTeamRequest {
            workspace_id: WS.into(),
            team: Some(pb::Team {
                name: name.into(),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
}

async fn update(
    app: &TestApp,
    token: &str,
    agent: pb::Agent,
    paths: &[&str],
) -> Result<pb::Agent, tonic::Status> {
    app.client()
        .update_agent(app.with(
            token,
            pb::UpdateAgentRequest {
                workspace_id: WS.into(),
                agent: Some(agent),
                update_mask: mask(paths),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn role_changes_name_the_agent_and_the_permissions_before_and_after(app: TestApp) {
    let tier1 = team(&app, "Support Tier 1").await;
    let spock = app.active("spock@example.com", "agent").await;
    let mut change = spock.clone();
    change.role = "admin".into();
    change.team_ids = vec![tier1.team_id.clone()];
    let updated = update(&app, &app.admin_token(), change, &["role", "team_ids"])
        .await
        .unwrap();
    assert_eq!(updated.role, "admin");
    assert_eq!(updated.team_ids, std::slice::from_ref(&tier1.team_id));
    assert_ne!(updated.etag, spock.etag);

    // A stale etag is ABORTED.
    let mut stale = spock.clone();
    stale.role = "viewer".into();
    assert_refused(
        update(&app, &app.admin_token(), stale, &["role"]).await,
        Code::Aborted,
        "ETAG_MISMATCH",
    );

    let events = app.events().await;
    let role_changed = events
        .iter()
        .find(|e| e.action == "agent.role_changed")
        .unwrap();
    let changes: Vec<serde_json::Value> =
        serde_json::from_value(role_changed.changes.clone()).unwrap();
    let field = |name: &str| {
        changes
            .iter()
            .find(|c| c["field"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(field("agent.email")["after"], "spock@example.com");
    assert_eq!(field("role")["before"], "agent");
    assert_eq!(field("role")["after"], "admin");
    assert_eq!(
        field("permissions")["before"],
        serde_json::json!(["end_users.write", "macros.use", "tickets.work"])
    );
    assert!(
        field("permissions")["after"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "staff.manage")
    );
    let teams_changed = events
        .iter()
        .find(|e| e.action == "agent.teams_changed")
        .unwrap();
    assert!(teams_changed.changes.to_string().contains("Support Tier 1"));
}

async fn the_last_admin_cannot_be_demoted_or_deactivated(app: TestApp) {
    let kirk = app.active("kirk@example.com", "admin").await;
    let mut demote = kirk.clone();
    demote.role = "agent".into();
    assert_refused(
        update(&app, &app.admin_token(), demote.clone(), &["role"]).await,
        Code::FailedPrecondition,
        "LAST_ADMIN",
    );
    assert_refused(
        app.client()
            .deactivate_agent(app.admin(pb::DeactivateAgentRequest {
                workspace_id: WS.into(),
                agent_id: kirk.agent_id.clone(),
                ..Default::default()
            }))
            .await,
        Code::FailedPrecondition,
        "LAST_ADMIN",
    );
    // With a second active admin, the first may go.
    app.active("spock@example.com", "admin").await;
    let demoted = update(&app, &app.admin_token(), demote, &["role"])
        .await
        .unwrap();
    assert_eq!(demoted.role, "agent");
}

async fn nobody_changes_their_own_role_or_grants_what_they_lack(app: TestApp) {
    app.active("root@example.com", "admin").await;
    let kirk = app.active("kirk@example.com", "admin").await;
    let kirk_token = app.token_as(&kirk.agent_id, &[WS], "admin", &[]);
    let mut own = kirk.clone();
    own.role = "agent".into();
    assert_refused(
        update(&app, &kirk_token, own, &["role"]).await,
        Code::PermissionDenied,
        "OWN_ROLE",
    );

    let manager = app.token("agent", &["staff.manage"]);
    let spock = app.active("spock@example.com", "viewer").await;
    let mut promote = spock.clone();
    promote.role = "admin".into();
    assert_refused(
        update(&app, &manager, promote, &["role"]).await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    let mut grant = spock.clone();
    grant.extra_permissions = vec!["seats.manage".into()];
    assert_refused(
        update(&app, &manager, grant, &["extra_permissions"]).await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    assert_refused(
        app_invite_as(&app, &manager, "admin").await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    // What the manager holds, it may grant.
    let mut fine = spock.clone();
    fine.role = "agent".into();
    fine.extra_permissions = vec!["staff.manage".into()];
    let updated = update(&app, &manager, fine, &["role", "extra_permissions"])
        .await
        .unwrap();
    assert_eq!(updated.extra_permissions, ["staff.manage"]);
    assert!(
        app.actions()
            .await
            .contains(&"agent.permissions_changed".to_owned())
    );
}

async fn app_invite_as(
    app: &TestApp,
    token: &str,
    role: &str,
) -> Result<pb::InviteAgentResponse, tonic::Status> {
    app.client()
        .invite_agent(app.with(
            token,
            pb::InviteAgentRequest {
                workspace_id: WS.into(),
                email: "new@example.com".into(),
                role: role.into(),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn agents_change_only_their_own_profile(app: TestApp) {
    let uhura = app.active("uhura@example.com", "agent").await;
    let token = app.token_as(&uhura.agent_id, &[WS], "agent", &[]);
    let updated = app
        .client()
        .update_my_profile(app.with(
            &token,
            pb::UpdateMyProfileRequest {
                workspace_id: WS.into(),
                profile: Some(pb::Profile {
                    name: "Nyota Uhura".into(),
                    signature: "Hailing frequencies open".into(),
                    theme: pb::Theme::Dark as i32,
                    language: "sw".into(),
                    notification_preferences: Some(pb::NotificationPreferences {
                        email_on_mention: true,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: None,
                etag: uhura.etag.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "Nyota Uhura");
    assert_eq!(updated.theme, pb::Theme::Dark as i32);
    assert_eq!(updated.language, "sw");
    assert!(updated.notification_preferences.unwrap().email_on_mention);
    assert_eq!(updated.role, "agent", "the profile holds no admin fields");

    // A token whose subject is no agent here, or a service's, changes nobody.
    let stranger = app.token_as(&uuid::Uuid::now_v7().to_string(), &[WS], "admin", &[]);
    let service = app.tokens.service("billing", &[]);
    for token in [stranger, service, app.admin_token()] {
        assert_refused(
            app.client()
                .update_my_profile(app.with(
                    &token,
                    pb::UpdateMyProfileRequest {
                        workspace_id: WS.into(),
                        profile: Some(pb::Profile {
                            name: "X".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ))
                .await,
            Code::PermissionDenied,
            "NOT_AN_AGENT",
        );
    }
    let status = app
        .client()
        .update_my_profile(app.with(
            &token,
            pb::UpdateMyProfileRequest {
                workspace_id: WS.into(),
                profile: Some(pb::Profile {
                    language: "english please".into(),
                    avatar_url: "ftp://x".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["profile.avatar_url", "profile.language"]
    );
}

async fn lists_filter_order_and_page(app: TestApp) {
    let vip = team(&app, "VIP Support").await;
    app.active("kirk@example.com", "admin").await;
    let spock = app.active("spock@example.com", "agent").await;
    app.invite("sulu@example.com", "viewer").await;
    let mut in_team = spock.clone();
    in_team.team_ids = vec![vip.team_id.clone()];
    update(&app, &app.admin_token(), in_team, &["team_ids"])
        .await
        .unwrap();

    let list = |filter: &str, order_by: &str, page_size: i32, page_token: String| {
        let (app, filter, order_by) = (app.clone(), filter.to_owned(), order_by.to_owned());
        async move {
            app.client()
                .list_agents(app.with(
                    &app.token("viewer", &[]),
                    pb::ListAgentsRequest {
                        workspace_id: WS.into(),
                        page_size,
                        page_token,
                        filter,
                        order_by,
                    },
                ))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let emails = |response: &pb::ListAgentsResponse| {
        response
            .agents
            .iter()
            .map(|a| a.email.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        emails(&list("", "", 0, String::new()).await.unwrap()),
        ["kirk@example.com", "spock@example.com", "sulu@example.com"]
    );
    assert_eq!(
        emails(
            &list("status:active", "email desc", 0, String::new())
                .await
                .unwrap()
        ),
        ["spock@example.com", "kirk@example.com"]
    );
    assert_eq!(
        emails(&list("SPO", "", 0, String::new()).await.unwrap()),
        ["spock@example.com"]
    );
    assert_eq!(
        emails(&list("role:viewer", "", 0, String::new()).await.unwrap()),
        ["sulu@example.com"]
    );
    assert_eq!(
        emails(
            &list(&format!("team:{}", vip.team_id), "", 0, String::new())
                .await
                .unwrap()
        ),
        ["spock@example.com"]
    );
    // Nobody has signed in yet: all are "before" any date, none "after".
    assert_eq!(
        list("last_sign_in_at<2026-01-01", "", 0, String::new())
            .await
            .unwrap()
            .agents
            .len(),
        3
    );
    assert!(
        list("last_sign_in_at>=2026-01-01", "", 0, String::new())
            .await
            .unwrap()
            .agents
            .is_empty()
    );
    // A wildcard is a character, not a pattern.
    assert!(
        list("%", "", 0, String::new())
            .await
            .unwrap()
            .agents
            .is_empty()
    );

    let first = list("", "name", 2, String::new()).await.unwrap();
    assert_eq!(first.agents.len(), 2);
    let second = list("", "name", 2, first.next_page_token.clone())
        .await
        .unwrap();
    assert_eq!(second.agents.len(), 1);
    assert!(second.next_page_token.is_empty());
    let status = list("status:active", "name", 2, first.next_page_token)
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
    let status = list("colour:red", "height", -1, String::new())
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["page_size", "filter", "order_by"]
    );
}

async fn two_workspaces_never_mix(app: TestApp) {
    let here = app.active("kirk@example.com", "admin").await;
    let there = app
        .invite_in("other", "kirk@example.com", "agent")
        .await
        .unwrap()
        .agent
        .unwrap();
    assert_ne!(
        here.agent_id, there.agent_id,
        "the same e-mail is another agent elsewhere"
    );
    let status = app
        .client()
        .get_agent(app.admin(pb::GetAgentRequest {
            workspace_id: WS.into(),
            agent_id: there.agent_id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let other_admin = app.tokens.agent(&["other"], "admin", &[]);
    assert_refused(
        app.client()
            .get_agent(app.with(
                &other_admin,
                pb::GetAgentRequest {
                    workspace_id: WS.into(),
                    agent_id: here.agent_id.clone(),
                },
            ))
            .await,
        Code::PermissionDenied,
        "WORKSPACE_NOT_GRANTED",
    );
    let usage = app.usage().await;
    assert_eq!(usage.seats_used, 1);
    let listed = app
        .client()
        .list_agents(app.admin(pb::ListAgentsRequest {
            workspace_id: WS.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.agents.len(), 1);
}

async fn bad_input_names_every_field(app: TestApp) {
    let status = app
        .client()
        .invite_agent(app.admin(pb::InviteAgentRequest {
            workspace_id: WS.into(),
            email: "not-an-email".into(),
            name: "x".repeat(201),
            role: "owner".into(),
            team_ids: vec!["nope".into()],
            request_id: "not-a-uuid".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        ["email", "name", "team_ids[0]", "request_id"]
    );
    // Roles may be custom, so an unknown one is found against the workspace's roles.
    let status = app
        .client()
        .invite_agent(app.admin(pb::InviteAgentRequest {
            workspace_id: WS.into(),
            email: "a@example.com".into(),
            role: "owner".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["role"]);
    let status = app
        .client()
        .invite_agent(app.admin(pb::InviteAgentRequest {
            workspace_id: "bad/ws".into(),
            email: "a@example.com".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["workspace_id"]);
    let missing_team = uuid::Uuid::now_v7().to_string();
    let status = app
        .client()
        .invite_agent(app.admin(pb::InviteAgentRequest {
            workspace_id: WS.into(),
            email: "a@example.com".into(),
            team_ids: vec![missing_team],
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), crate::helpers::reason(&status).as_str()),
        (Code::NotFound, "TEAM_NOT_FOUND")
    );
    let kirk = app.active("kirk@example.com", "admin").await;
    let mut bad = kirk.clone();
    bad.status = pb::AgentStatus::Invited as i32;
    bad.extra_permissions = vec!["tickets.fly".into()];
    let status = update(
        &app,
        &app.admin_token(),
        bad,
        &["status", "extra_permissions", "email"],
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["update_mask"]);
    let mut bad = kirk;
    bad.status = pb::AgentStatus::Invited as i32;
    bad.extra_permissions = vec!["tickets.fly".into()];
    let status = update(
        &app,
        &app.admin_token(),
        bad,
        &["status", "extra_permissions"],
    )
    .await
    .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["agent.status", "agent.extra_permissions[0]"]
    );
    let status = app
        .client()
        .get_agent(app.admin(pb::GetAgentRequest {
            workspace_id: WS.into(),
            agent_id: uuid::Uuid::now_v7().to_string(),
        }))
        .await
        .unwrap_err();
    assert_eq!(crate::helpers::reason(&status), "AGENT_NOT_FOUND");
    let status = app
        .client()
        .create_team(app.admin(pb::CreateTeamRequest {
            workspace_id: WS.into(),
            team: Some(pb::Team::default()),
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["team.name"]);
    team(&app, "Billing").await;
    let status = app
        .client()
        .create_team(app.admin(pb::CreateTeamRequest {
            workspace_id: WS.into(),
            team: Some(pb::Team {
                name: "billing".into(),
                ..Default::default()
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), crate::helpers::reason(&status).as_str()),
        (Code::AlreadyExists, "TEAM_ALREADY_EXISTS")
    );
}
