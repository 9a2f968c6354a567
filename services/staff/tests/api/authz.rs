//! The authorization matrix: every RPC of the service against every kind of caller. Each
//! call is valid apart from authorization, so the only question is whether the caller
//! gets past `authz` (any answer but PERMISSION_DENIED / UNAUTHENTICATED).

use roster_proto::staff::v1 as pb;
use tonic::Code;

use crate::helpers::{PASSWORD, TestApp, WS, change_of};
use crate::on_both_databases;

on_both_databases!(
    every_rpc_against_every_caller,
    a_refusal_is_audited_with_who_tried_what,
    hostile_tokens_are_unauthenticated_and_harm_nothing
);

async fn hostile_tokens_are_unauthenticated_and_harm_nothing(app: TestApp) {
    let admin = app.active("root@example.com", "admin").await;
    for (attack, token) in roster_testkit::hostile_tokens(&app.tokens, WS) {
        let status = app
            .client()
            .get_agent(roster_testkit::with_bearer(
                &token,
                pb::GetAgentRequest {
                    workspace_id: WS.into(),
                    agent_id: admin.agent_id.clone(),
                },
            ))
            .await
            .expect_err(attack);
        assert_eq!(status.code(), Code::Unauthenticated, "{attack}: {status:?}");
    }
    // The service is still there for honest callers.
    app.get(&admin.agent_id).await;
}

async fn a_refusal_is_audited_with_who_tried_what(app: TestApp) {
    let me = app.active("me@example.com", "agent").await.agent_id;
    let token = app.token_as(&me, &[WS], "agent", &[]);
    let mut expected = app.actions().await;
    expected.push("access.denied".to_owned());
    let status = app
        .client()
        .invite_agent(app.with(
            &token,
            pb::InviteAgentRequest {
                workspace_id: WS.into(),
                email: "friend@example.com".into(),
                role: "admin".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let event = app.last_event("access.denied").await;
    assert_eq!(
        (
            event.actor_kind.as_str(),
            event.actor_id.as_str(),
            event.target_type.as_str(),
            event.target_id.as_str(),
            event.outcome.as_str(),
        ),
        (
            "agent",
            me.as_str(),
            "rpc",
            "roster.staff.v1.StaffService/InviteAgent",
            "denied"
        )
    );
    assert_eq!(change_of(&event, "reason").1, "PERMISSION_MISSING");
    assert_eq!(change_of(&event, "message").1, status.message());
    // The refused call itself wrote nothing but the record of its refusal.
    assert_eq!(app.actions().await, expected);
}

/// Who calls, and which RPCs they may call.
struct Caller {
    name: &'static str,
    token: Option<String>,
    may: fn(&str) -> bool,
}

const READS: &[&str] = &[
    "GetAgent",
    "ListAgents",
    "ListTeams",
    "GetWorkspaceUsage",
    "ListPermissions",
    "GetRole",
    "ListRoles",
    "GetTeam",
    "ListTeamMembers",
    "GetEffectivePermissions",
    "ExplainAccess",
    "GetSsoConnection",
    "ListSsoConnections",
];
const STAFF_WRITES: &[&str] = &[
    "InviteAgent",
    "ResendInvitation",
    "RevokeInvitation",
    "ListInvitations",
    "UpdateAgent",
    "DeactivateAgent",
    "ReactivateAgent",
    "EraseAgent",
    "BulkInviteAgents",
    "BulkUpdateAgents",
    "BulkDeactivateAgents",
    "CreateTeam",
    "ListLoginHistory",
    "CreateServiceAccount",
    "ListServiceAccounts",
    "RotateServiceAccountSecret",
    "RevokeServiceAccount",
    "UpdateTeam",
    "DeleteTeam",
    "AddTeamMembers",
    "RemoveTeamMembers",
];
/// Callable without a token (`authz::PUBLIC_METHODS`): the credentials travel in the
/// request, or the method serves verifiers.
const PUBLIC: &[&str] = &[
    "AcceptInvitation",
    "Login",
    "SsoLogin",
    "RefreshToken",
    "Logout",
    "IssueServiceToken",
    "WatchRevocations",
    "GetJwks",
];
const ROLE_WRITES: &[&str] = &["CreateRole", "UpdateRole", "DeleteRole"];
const SSO_WRITES: &[&str] = &[
    "CreateSsoConnection",
    "UpdateSsoConnection",
    "DeleteSsoConnection",
    "TestSsoConnection",
];

/// What the calls act on besides the target agent.
struct Fixtures {
    agent_id: String,
    role_id: String,
    team_id: String,
    /// An enabled SSO connection (JIT, default role viewer).
    connection_id: String,
}

async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    fixtures: &Fixtures,
) -> Result<(), tonic::Status> {
    use roster_testkit::with_optional_bearer as req;
    let mut client = app.client();
    let ws = || WS.to_owned();
    let id = || fixtures.agent_id.clone();
    let role_id = || fixtures.role_id.clone();
    let team_id = || fixtures.team_id.clone();
    let connection_id = || fixtures.connection_id.clone();
    let nowhere = || uuid::Uuid::now_v7().to_string();

    match method {
        "InviteAgent" => client
            .invite_agent(req(
                token,
                pb::InviteAgentRequest {
                    workspace_id: ws(),
                    email: "m@example.com".into(),
                    role: "viewer".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "ResendInvitation" => client
            .resend_invitation(req(
                token,
                pb::ResendInvitationRequest {
                    workspace_id: ws(),
                    agent_id: id(),
                },
            ))
            .await
            .map(|_| ()),
        "RevokeInvitation" => client
            .revoke_invitation(req(
                token,
                pb::RevokeInvitationRequest {
                    workspace_id: ws(),
                    agent_id: id(),
                },
            ))
            .await
            .map(|_| ()),
        "ListInvitations" => client
            .list_invitations(req(
                token,
                pb::ListInvitationsRequest {
                    workspace_id: ws(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "AcceptInvitation" => client
            .accept_invitation(req(
                token,
                pb::AcceptInvitationRequest {
                    workspace_id: ws(),
                    secret: "wrong".into(),
                    password: "long enough!".into(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "GetAgent" => client
            .get_agent(req(
                token,
                pb::GetAgentRequest {
                    workspace_id: ws(),
                    agent_id: id(),
                },
            ))
            .await
            .map(|_| ()),
        "ListAgents" => client
            .list_agents(req(
                token,
                pb::ListAgentsRequest {
                    workspace_id: ws(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "UpdateAgent" => client
            .update_agent(req(
                token,
                pb::UpdateAgentRequest {
                    workspace_id: ws(),
                    agent: Some(pb::Agent {
                        agent_id: id(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["team_ids".into()],
                    }),
                },
            ))
            .await
            .map(|_| ()),
        "UpdateMyProfile" => client
            .update_my_profile(req(
                token,
                pb::UpdateMyProfileRequest {
                    workspace_id: ws(),
                    profile: Some(pb::Profile {
                        signature: "s".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "DeactivateAgent" => client
            .deactivate_agent(req(
                token,
                pb::DeactivateAgentRequest {
                    workspace_id: ws(),
                    agent_id: id(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "ReactivateAgent" => client
            .reactivate_agent(req(
                token,
                pb::ReactivateAgentRequest {
                    workspace_id: ws(),
                    agent_id: id(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "EraseAgent" => client
            .erase_agent(req(
                token,
                pb::EraseAgentRequest {
                    workspace_id: ws(),
                    agent_id: id(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "BulkInviteAgents" => {
            let messages = vec![
                pb::BulkInviteAgentsRequest {
                    part: Some(pb::bulk_invite_agents_request::Part::Header(
                        pb::BulkInviteAgentsHeader {
                            workspace_id: ws(),
                            ..Default::default()
                        },
                    )),
                },
                pb::BulkInviteAgentsRequest {
                    part: Some(pb::bulk_invite_agents_request::Part::Chunk(
                        b"email,role\nbulk@example.com,viewer\n".to_vec(),
                    )),
                },
            ];
            client
                .bulk_invite_agents(req(token, tokio_stream::iter(messages)))
                .await
                .map(|_| ())
        }
        // Dry runs: whether the caller gets past authorization is the question, and the
        // target stays as it is for the other calls.
        "BulkUpdateAgents" => client
            .bulk_update_agents(req(
                token,
                pb::BulkUpdateAgentsRequest {
                    workspace_id: ws(),
                    agent_ids: vec![id()],
                    action: Some(pb::bulk_update_agents_request::Action::AddToTeam(team_id())),
                    dry_run: true,
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "BulkDeactivateAgents" => client
            .bulk_deactivate_agents(req(
                token,
                pb::BulkDeactivateAgentsRequest {
                    workspace_id: ws(),
                    agent_ids: vec![id()],
                    dry_run: true,
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "CreateTeam" => client
            .create_team(req(
                token,
                pb::CreateTeamRequest {
                    workspace_id: ws(),
                    team: Some(pb::Team {
                        name: format!("t-{}", uuid::Uuid::now_v7()),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .map(|_| ()),
        "ListTeams" => client
            .list_teams(req(
                token,
                pb::ListTeamsRequest {
                    workspace_id: ws(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "SetSeatLimit" => client
            .set_seat_limit(req(
                token,
                pb::SetSeatLimitRequest {
                    workspace_id: ws(),
                    seat_limit: 0,
                },
            ))
            .await
            .map(|_| ()),
        "Login" => app.login("me@example.com", PASSWORD).await.map(|_| ()),
        "RefreshToken" => {
            let session = app.login("me@example.com", PASSWORD).await?;
            app.refresh(&session.refresh_token).await.map(|_| ())
        }
        "Logout" => {
            let session = app.login("me@example.com", PASSWORD).await?;
            client
                .logout(req(
                    token,
                    pb::LogoutRequest {
                        refresh_token: session.refresh_token,
                    },
                ))
                .await
                .map(|_| ())
        }
        "ListLoginHistory" => client
            .list_login_history(req(
                token,
                pb::ListLoginHistoryRequest {
                    workspace_id: ws(),
                    agent_id: id(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "CreateServiceAccount" => client
            .create_service_account(req(
                token,
                pb::CreateServiceAccountRequest {
                    workspace_id: ws(),
                    name: format!("sa-{}", uuid::Uuid::now_v7()),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "ListServiceAccounts" => client
            .list_service_accounts(req(
                token,
                pb::ListServiceAccountsRequest {
                    workspace_id: ws(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "RotateServiceAccountSecret" => client
            .rotate_service_account_secret(req(
                token,
                pb::RotateServiceAccountSecretRequest {
                    workspace_id: ws(),
                    service_account_id: app.service_account(&[]).await.0.service_account_id,
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "RevokeServiceAccount" => client
            .revoke_service_account(req(
                token,
                pb::RevokeServiceAccountRequest {
                    workspace_id: ws(),
                    service_account_id: app.service_account(&[]).await.0.service_account_id,
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "IssueServiceToken" => {
            let (account, secret) = app.service_account(&[]).await;
            client
                .issue_service_token(req(
                    token,
                    pb::IssueServiceTokenRequest {
                        client_id: account.client_id,
                        client_secret: secret,
                    },
                ))
                .await
                .map(|_| ())
        }
        "GetWorkspaceUsage" => client
            .get_workspace_usage(req(
                token,
                pb::GetWorkspaceUsageRequest { workspace_id: ws() },
            ))
            .await
            .map(|_| ()),
        "WatchRevocations" => {
            let mut stream = client
                .watch_revocations(req(token, pb::WatchRevocationsRequest {}))
                .await?
                .into_inner();
            stream.message().await.map(|_| ())
        }
        "GetJwks" => client
            .get_jwks(req(token, pb::GetJwksRequest {}))
            .await
            .map(|_| ()),
        "RotateSigningKey" => client
            .rotate_signing_key(req(token, pb::RotateSigningKeyRequest {}))
            .await
            .map(|_| ()),
        "ListPermissions" => client
            .list_permissions(req(
                token,
                pb::ListPermissionsRequest { workspace_id: ws() },
            ))
            .await
            .map(|_| ()),
        "CreateRole" => client
            .create_role(req(
                token,
                pb::CreateRoleRequest {
                    workspace_id: ws(),
                    role: Some(pb::Role {
                        name: format!("r {}", uuid::Uuid::now_v7()),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .map(|_| ()),
        "GetRole" => client
            .get_role(req(
                token,
                pb::GetRoleRequest {
                    workspace_id: ws(),
                    role_id: role_id(),
                },
            ))
            .await
            .map(|_| ()),
        "UpdateRole" => client
            .update_role(req(
                token,
                pb::UpdateRoleRequest {
                    workspace_id: ws(),
                    role: Some(pb::Role {
                        role_id: role_id(),
                        description: nowhere(),
                        ..Default::default()
                    }),
                    update_mask: None,
                },
            ))
            .await
            .map(|_| ()),
        "DeleteRole" => client
            .delete_role(req(
                token,
                pb::DeleteRoleRequest {
                    workspace_id: ws(),
                    role_id: nowhere(),
                    etag: String::new(),
                },
            ))
            .await
            .map(|_| ()),
        "ListRoles" => client
            .list_roles(req(token, pb::ListRolesRequest { workspace_id: ws() }))
            .await
            .map(|_| ()),
        "GetTeam" => client
            .get_team(req(
                token,
                pb::GetTeamRequest {
                    workspace_id: ws(),
                    team_id: team_id(),
                },
            ))
            .await
            .map(|_| ()),
        "UpdateTeam" => client
            .update_team(req(
                token,
                pb::UpdateTeamRequest {
                    workspace_id: ws(),
                    team: Some(pb::Team {
                        team_id: team_id(),
                        description: nowhere(),
                        ..Default::default()
                    }),
                    update_mask: None,
                },
            ))
            .await
            .map(|_| ()),
        "DeleteTeam" => client
            .delete_team(req(
                token,
                pb::DeleteTeamRequest {
                    workspace_id: ws(),
                    team_id: nowhere(),
                    etag: String::new(),
                },
            ))
            .await
            .map(|_| ()),
        "AddTeamMembers" => client
            .add_team_members(req(
                token,
                pb::AddTeamMembersRequest {
                    workspace_id: ws(),
                    team_id: team_id(),
                    agent_ids: vec![id()],
                },
            ))
            .await
            .map(|_| ()),
        "RemoveTeamMembers" => client
            .remove_team_members(req(
                token,
                pb::RemoveTeamMembersRequest {
                    workspace_id: ws(),
                    team_id: team_id(),
                    agent_ids: vec![id()],
                },
            ))
            .await
            .map(|_| ()),
        "ListTeamMembers" => client
            .list_team_members(req(
                token,
                pb::ListTeamMembersRequest {
                    workspace_id: ws(),
                    team_id: team_id(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "GetEffectivePermissions" => client
            .get_effective_permissions(req(
                token,
                pb::GetEffectivePermissionsRequest {
                    workspace_id: ws(),
                    agent_id: id(),
                },
            ))
            .await
            .map(|_| ()),
        "ExplainAccess" => client
            .explain_access(req(
                token,
                pb::ExplainAccessRequest {
                    workspace_id: ws(),
                    agent_id: id(),
                    permission: "tickets.work".into(),
                },
            ))
            .await
            .map(|_| ()),
        "CreateSsoConnection" => client
            .create_sso_connection(req(
                token,
                pb::CreateSsoConnectionRequest {
                    workspace_id: ws(),
                    connection: Some(crate::idp::connection(
                        &nowhere(),
                        pb::SsoProvisioningMode::Jit,
                    )),
                },
            ))
            .await
            .map(|_| ()),
        "GetSsoConnection" => client
            .get_sso_connection(req(
                token,
                pb::GetSsoConnectionRequest {
                    workspace_id: ws(),
                    connection_id: connection_id(),
                },
            ))
            .await
            .map(|_| ()),
        "ListSsoConnections" => client
            .list_sso_connections(req(
                token,
                pb::ListSsoConnectionsRequest {
                    workspace_id: ws(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "UpdateSsoConnection" => client
            .update_sso_connection(req(
                token,
                pb::UpdateSsoConnectionRequest {
                    workspace_id: ws(),
                    connection: Some(pb::SsoConnection {
                        connection_id: connection_id(),
                        display_name: nowhere(),
                        ..Default::default()
                    }),
                    update_mask: None,
                },
            ))
            .await
            .map(|_| ()),
        "DeleteSsoConnection" => client
            .delete_sso_connection(req(
                token,
                pb::DeleteSsoConnectionRequest {
                    workspace_id: ws(),
                    connection_id: nowhere(),
                    etag: String::new(),
                },
            ))
            .await
            .map(|_| ()),
        // A token that fails the test: FAILED_PRECONDITION, past authorization.
        "TestSsoConnection" => client
            .test_sso_connection(req(
                token,
                pb::TestSsoConnectionRequest {
                    workspace_id: ws(),
                    connection_id: connection_id(),
                    id_token: "not.a.token".into(),
                    nonce: crate::idp::nonce(),
                },
            ))
            .await
            .map(|_| ()),
        "SsoLogin" => {
            let (id_token, nonce) = crate::idp::token(app, "me@example.com");
            client
                .sso_login(req(
                    token,
                    pb::SsoLoginRequest {
                        workspace_id: ws(),
                        connection_id: connection_id(),
                        id_token,
                        nonce,
                    },
                ))
                .await
                .map(|_| ())
        }
        other => panic!("no call for {other}"),
    }
}

async fn every_rpc_against_every_caller(app: TestApp) {
    // A second admin keeps the target's deactivation from being the last admin's.
    let root = app.active("root@example.com", "admin").await.agent_id;
    let target = app.active("target@example.com", "agent").await.agent_id;
    let me = app.active("me@example.com", "agent").await.agent_id;
    let role_id = app
        .client()
        .create_role(app.admin(pb::CreateRoleRequest {
            workspace_id: WS.into(),
            role: Some(pb::Role {
                name: "Team Lead".into(),
                permissions: vec!["tickets.work".into()],
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .role_id;
    let team_id = app
        .client()
        .create_team(app.admin(pb::CreateTeamRequest {
            workspace_id: WS.into(),
            team: Some(pb::Team {
                name: "Tier 1".into(),
                ..Default::default()
            }),
        }))
        .await
        .unwrap()
        .into_inner()
        .team_id;
    let connection_id = app
        .enabled_connection("Matrix", pb::SsoProvisioningMode::Jit)
        .await
        .connection_id;
    let fixtures = Fixtures {
        agent_id: target,
        role_id,
        team_id,
        connection_id,
    };

    let methods: Vec<&str> = roster_staff::api::authz::NEEDS
        .iter()
        .map(|(name, _)| *name)
        .chain(PUBLIC.iter().copied())
        .collect();
    assert_eq!(
        methods.len(),
        52,
        "every RPC of the service is in the matrix"
    );
    assert_eq!(roster_staff::api::authz::PUBLIC_METHODS.len(), PUBLIC.len());

    let callers = [
        Caller {
            name: "admin (own token)",
            token: Some(app.token_as(&root, &[WS], "admin", &["signing_keys.rotate"])),
            may: |m| m != "RotateSigningKey",
        },
        Caller {
            name: "agent (own token)",
            token: Some(app.token_as(&me, &[WS], "agent", &[])),
            may: |m| READS.contains(&m) || m == "UpdateMyProfile" || PUBLIC.contains(&m),
        },
        Caller {
            name: "agent + staff.manage",
            token: Some(app.token("agent", &["staff.manage"])),
            may: |m| READS.contains(&m) || STAFF_WRITES.contains(&m) || PUBLIC.contains(&m),
        },
        Caller {
            name: "agent + roles.manage",
            token: Some(app.token("agent", &["roles.manage"])),
            may: |m| READS.contains(&m) || ROLE_WRITES.contains(&m) || PUBLIC.contains(&m),
        },
        Caller {
            name: "agent + sso.manage",
            token: Some(app.token("agent", &["sso.manage"])),
            may: |m| READS.contains(&m) || SSO_WRITES.contains(&m) || PUBLIC.contains(&m),
        },
        Caller {
            name: "custom role + staff.manage",
            token: Some(app.token("Team Lead", &["staff.manage", "tickets.work"])),
            may: |m| READS.contains(&m) || STAFF_WRITES.contains(&m) || PUBLIC.contains(&m),
        },
        Caller {
            name: "viewer + staff.manage",
            token: Some(app.token(
                "viewer",
                &["staff.manage", "seats.manage", "roles.manage", "sso.manage"],
            )),
            may: |m| READS.contains(&m) || PUBLIC.contains(&m),
        },
        Caller {
            name: "billing service",
            token: Some(app.tokens.service("billing", &["seats.manage"])),
            may: |m| READS.contains(&m) || m == "SetSeatLimit" || PUBLIC.contains(&m),
        },
        Caller {
            name: "key rotation service",
            token: Some(app.tokens.service("platform-ops", &["signing_keys.rotate"])),
            may: |m| READS.contains(&m) || m == "RotateSigningKey" || PUBLIC.contains(&m),
        },
        Caller {
            name: "admin service for every workspace",
            token: Some(app.tokens.at(
                roster_auth::PrincipalKind::Service,
                "ops",
                &["*"],
                "admin",
                &[],
                roster_auth::unix_now(),
            )),
            may: |m| m != "RotateSigningKey" && m != "UpdateMyProfile",
        },
        Caller {
            name: "admin of another workspace",
            token: Some(app.tokens.agent(&["other"], "admin", &[])),
            may: |m| PUBLIC.contains(&m),
        },
        Caller {
            name: "no token",
            token: None,
            may: |m| PUBLIC.contains(&m),
        },
        Caller {
            name: "garbage token",
            token: Some("garbage".into()),
            may: |m| PUBLIC.contains(&m),
        },
    ];
    // Each PERMISSION_DENIED answer leaves an `access.denied` event naming the RPC.
    let mut refused: Vec<String> = Vec::new();
    for caller in &callers {
        for method in &methods {
            let result = call(&app, caller.token.as_deref(), method, &fixtures).await;
            if matches!(&result, Err(status) if status.code() == Code::PermissionDenied) {
                refused.push(format!("roster.staff.v1.StaffService/{method}"));
            }
            let denied = matches!(&result, Err(status) if matches!(status.code(), Code::PermissionDenied | Code::Unauthenticated));
            assert_eq!(
                !denied,
                (caller.may)(method),
                "{} calling {method}: {result:?}",
                caller.name
            );
        }
    }
    let mut audited: Vec<String> = [app.events().await, app.events_in("*").await]
        .into_iter()
        .flatten()
        .filter(|event| event.action == "access.denied")
        .inspect(|event| assert_eq!(event.outcome, "denied"))
        .map(|event| event.target_id)
        .collect();
    refused.sort();
    audited.sort();
    assert_eq!(audited, refused, "every refusal is audited, once");
}
