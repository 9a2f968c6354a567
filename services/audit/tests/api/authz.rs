//! The authorization matrix: every RPC of the service against every kind of caller. Each
//! call is valid apart from authorization, so the only question is whether the caller gets
//! past `authz` (any answer but PERMISSION_DENIED / UNAUTHENTICATED).

use roster_auth::{PrincipalKind, WorkspaceAccess};
use roster_proto::audit::v1 as pb;
use tonic::Code;

use crate::helpers::{APPEND, TestApp, WS, assert_refused, event, event_in};
use crate::on_both_databases;

on_both_databases!(
    every_rpc_against_every_caller,
    nobody_appends_for_a_workspace_their_token_lacks,
    hostile_tokens_are_unauthenticated_and_harm_nothing,
);

const READS: &[&str] = &[
    "ListEvents",
    "GetEvent",
    "WatchEvents",
    "GetCheckpoint",
    "GetInclusionProof",
    "GetConsistencyProof",
    "VerifyLog",
    "GetRetention",
];
const MANAGE: &[&str] = &["SetRetention", "PlaceLegalHold", "ReleaseLegalHold"];
const PUBLIC: &[&str] = &["GetLogKey"];

struct Caller {
    name: &'static str,
    token: Option<String>,
    may: fn(&str) -> bool,
}

async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    event_id: &str,
) -> Result<(), tonic::Status> {
    use roster_testkit::with_optional_bearer as req;
    let mut client = app.client();
    let ws = || WS.to_owned();
    match method {
        "AppendEvents" => client
            .append_events(req(
                token,
                pb::AppendEventsRequest {
                    events: vec![event("end_user.created")],
                },
            ))
            .await
            .map(|_| ()),
        "ListEvents" => client
            .list_events(req(
                token,
                pb::ListEventsRequest {
                    workspace_id: ws(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        "GetEvent" => client
            .get_event(req(
                token,
                pb::GetEventRequest {
                    workspace_id: ws(),
                    event_id: event_id.into(),
                },
            ))
            .await
            .map(|_| ()),
        "WatchEvents" => client
            .watch_events(req(
                token,
                pb::WatchEventsRequest {
                    workspace_id: ws(),
                    from_leaf_index: Some(0),
                },
            ))
            .await
            .map(|_| ()),
        "GetCheckpoint" => client
            .get_checkpoint(req(token, pb::GetCheckpointRequest { workspace_id: ws() }))
            .await
            .map(|_| ()),
        "GetInclusionProof" => client
            .get_inclusion_proof(req(
                token,
                pb::GetInclusionProofRequest {
                    workspace_id: ws(),
                    leaf: Some(pb::get_inclusion_proof_request::Leaf::EventId(
                        event_id.into(),
                    )),
                    tree_size: 0,
                },
            ))
            .await
            .map(|_| ()),
        "GetConsistencyProof" => client
            .get_consistency_proof(req(
                token,
                pb::GetConsistencyProofRequest {
                    workspace_id: ws(),
                    old_size: 1,
                    new_size: 0,
                },
            ))
            .await
            .map(|_| ()),
        "VerifyLog" => client
            .verify_log(req(token, pb::VerifyLogRequest { workspace_id: ws() }))
            .await
            .map(|_| ()),
        "EraseSubject" => client
            .erase_subject(req(
                token,
                pb::EraseSubjectRequest {
                    workspace_id: ws(),
                    subject_type: "end_user".into(),
                    subject_id: "user-1".into(),
                    erasure_id: uuid::Uuid::now_v7().to_string(),
                },
            ))
            .await
            .map(|_| ()),
        "GetRetention" => client
            .get_retention(req(token, pb::GetRetentionRequest { workspace_id: ws() }))
            .await
            .map(|_| ()),
        "SetRetention" => client
            .set_retention(req(
                token,
                pb::SetRetentionRequest {
                    workspace_id: ws(),
                    retention: None,
                },
            ))
            .await
            .map(|_| ()),
        "PlaceLegalHold" => client
            .place_legal_hold(req(
                token,
                pb::PlaceLegalHoldRequest {
                    workspace_id: ws(),
                    subject_id: String::new(),
                    reason: "case 1".into(),
                },
            ))
            .await
            .map(|_| ()),
        "ReleaseLegalHold" => client
            .release_legal_hold(req(
                token,
                pb::ReleaseLegalHoldRequest {
                    workspace_id: ws(),
                    hold_id: uuid::Uuid::now_v7().to_string(),
                },
            ))
            .await
            .map(|_| ()),
        "GetLogKey" => client
            .get_log_key(req(token, pb::GetLogKeyRequest { workspace_id: ws() }))
            .await
            .map(|_| ()),
        other => panic!("no call for {other}"),
    }
}

async fn every_rpc_against_every_caller(app: TestApp) {
    let recorded = event("end_user.created");
    app.append(vec![recorded.clone()]).await;
    let methods: Vec<&str> = roster_audit::api::authz::NEEDS
        .iter()
        .map(|(name, _)| *name)
        .chain(PUBLIC.iter().copied())
        .collect();
    assert_eq!(
        methods.len(),
        14,
        "every RPC of the service is in the matrix"
    );
    assert_eq!(roster_audit::api::authz::PUBLIC_METHODS.len(), PUBLIC.len());
    let readable = |m: &str| READS.contains(&m) || PUBLIC.contains(&m);
    let administers = |m: &str| READS.contains(&m) || MANAGE.contains(&m) || PUBLIC.contains(&m);
    let tokens = &app.tokens;
    let callers = [
        Caller {
            name: "admin agent",
            token: Some(tokens.agent(&[WS], "admin", &[APPEND, "audit_log.erase"])),
            may: administers,
        },
        Caller {
            name: "agent with audit_log.manage (a records manager)",
            token: Some(tokens.agent(&[WS], "agent", &["audit_log.manage"])),
            may: |m| MANAGE.contains(&m) || PUBLIC.contains(&m),
        },
        Caller {
            name: "viewer with audit_log.view (an auditor)",
            token: Some(tokens.agent(&[WS], "viewer", &["audit_log.view"])),
            may: readable,
        },
        Caller {
            name: "agent with every other permission",
            token: Some(tokens.agent(
                &[WS],
                "agent",
                &["end_users.write", "staff.manage", "data.export"],
            )),
            may: |m| PUBLIC.contains(&m),
        },
        Caller {
            name: "relay: service for every workspace with audit_log.append",
            token: Some(tokens.service("directory-relay", &[APPEND])),
            may: |m| m == "AppendEvents" || PUBLIC.contains(&m),
        },
        Caller {
            name: "directory relay, which also erases",
            token: Some(tokens.service("directory-relay", &[APPEND, "audit_log.erase"])),
            may: |m| m == "AppendEvents" || m == "EraseSubject" || PUBLIC.contains(&m),
        },
        Caller {
            // An admin can create such a service account; its tenant must not write the log.
            name: "a workspace's own service account naming append",
            token: Some(tokens.at(
                PrincipalKind::Service,
                "importer",
                &[WS],
                "service",
                &[APPEND],
                roster_auth::unix_now(),
            )),
            may: |m| PUBLIC.contains(&m),
        },
        Caller {
            name: "export service with audit_log.view",
            token: Some(tokens.service("exporter", &["audit_log.view"])),
            may: readable,
        },
        Caller {
            name: "admin service without audit_log.append",
            token: Some(tokens.at(
                PrincipalKind::Service,
                "ops",
                &["*"],
                "admin",
                &[],
                roster_auth::unix_now(),
            )),
            may: administers,
        },
        Caller {
            name: "producer of another workspace",
            token: Some(tokens.at(
                PrincipalKind::Service,
                "importer",
                &["other"],
                "service",
                &[APPEND],
                roster_auth::unix_now(),
            )),
            may: |m| PUBLIC.contains(&m),
        },
        Caller {
            name: "admin of another workspace",
            token: Some(tokens.agent(&["other"], "admin", &[])),
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
    for caller in &callers {
        for method in &methods {
            let result = call(&app, caller.token.as_deref(), method, &recorded.event_id).await;
            let denied = matches!(&result, Err(status) if matches!(status.code(), Code::PermissionDenied | Code::Unauthenticated));
            assert_eq!(
                !denied,
                (caller.may)(method),
                "{} calling {method}: {result:?}",
                caller.name
            );
        }
    }
}

async fn nobody_appends_for_a_workspace_their_token_lacks(app: TestApp) {
    // Producers are the platform's relays, with tokens for every workspace: a token for
    // some workspaces, even naming the permission, writes none of them.
    let token = app.tokens.at(
        PrincipalKind::Service,
        "importer",
        &[WS],
        "service",
        &[APPEND],
        roster_auth::unix_now(),
    );
    let ours = event("end_user.created");
    let theirs = event_in("globex", "end_user.created");
    assert_refused(
        app.client()
            .append_events(app.with(
                &token,
                pb::AppendEventsRequest {
                    events: vec![ours.clone(), theirs],
                },
            ))
            .await,
        Code::PermissionDenied,
        "NOT_A_SERVICE",
    );
    assert_eq!(
        app.checkpoint().await.tree_size,
        0,
        "nothing of the batch was written"
    );
    // An agent, even an admin naming the permission, never appends.
    let agent = app
        .tokens
        .agent_with("agent-1", &[(WS, WorkspaceAccess::new("admin", &[APPEND]))]);
    assert_refused(
        app.client()
            .append_events(app.with(&agent, pb::AppendEventsRequest { events: vec![ours] }))
            .await,
        Code::PermissionDenied,
        "NOT_A_SERVICE",
    );
    // Nor a service whose token lacks the permission.
    let reader = app.tokens.service("exporter", &["audit_log.view"]);
    assert_refused(
        app.client()
            .append_events(app.with(
                &reader,
                pb::AppendEventsRequest {
                    events: vec![event("end_user.created")],
                },
            ))
            .await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
}

async fn hostile_tokens_are_unauthenticated_and_harm_nothing(app: TestApp) {
    app.append(vec![event("end_user.created")]).await;
    for (attack, token) in roster_testkit::hostile_tokens(&app.tokens, WS) {
        let status = app
            .client()
            .verify_log(roster_testkit::with_bearer(
                &token,
                pb::VerifyLogRequest {
                    workspace_id: WS.into(),
                },
            ))
            .await
            .expect_err(attack);
        assert_eq!(status.code(), Code::Unauthenticated, "{attack}: {status:?}");
    }
    assert!(app.verify().await.verified);
}
