//! Service accounts and the client-credentials exchange.

use roster_auth::{PrincipalKind, WorkspaceScope};
use roster_proto::staff::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_refused, violated_fields};
use crate::on_both_databases;

on_both_databases!(
    client_credentials_buy_a_token_for_the_accounts_workspaces,
    wrong_or_unknown_credentials_are_refused_alike,
    nobody_creates_an_account_holding_more_than_they_do,
    only_a_platform_service_creates_an_account_for_every_workspace,
    a_rotated_secret_and_a_revoked_account_stop_working,
    names_are_unique_and_input_is_checked,
);

async fn client_credentials_buy_a_token_for_the_accounts_workspaces(app: TestApp) {
    let (account, secret) = app
        .service_account(&["end_users.write", "customers.write"])
        .await;
    assert_eq!(account.workspaces, vec![WS]);
    assert!(account.client_id.starts_with("sa1."));
    assert_eq!(secret.len(), 43);

    let issued = app.issue(&account.client_id, &secret).await.unwrap();

    assert_eq!(issued.token_type, "Bearer");
    let principal = app.tokens.verifier().verify(&issued.access_token).unwrap();
    assert_eq!(principal.kind, PrincipalKind::Service);
    assert_eq!(principal.subject, account.service_account_id);
    let grant = principal.grant(WS).unwrap();
    assert_eq!(grant.role, "service");
    assert_eq!(
        grant.permissions.iter().collect::<Vec<_>>(),
        ["customers.write", "end_users.write"]
    );
    assert!(principal.grant("other").is_none());
    let created = app
        .events()
        .await
        .into_iter()
        .find(|e| e.action == "service_account.created")
        .unwrap();
    assert!(
        created.changes.to_string().contains("end_users.write"),
        "{}",
        created.changes
    );
}

async fn wrong_or_unknown_credentials_are_refused_alike(app: TestApp) {
    let (account, secret) = app.service_account(&[]).await;
    let (other, _) = app.service_account(&[]).await;
    let unknown_id = account.client_id.replace(
        &account.service_account_id.replace('-', "")[..8],
        "00000000",
    );

    for (client_id, client_secret) in [
        (account.client_id.as_str(), "x".repeat(43)),
        (other.client_id.as_str(), secret.clone()),
        (unknown_id.as_str(), secret.clone()),
        ("garbage", secret.clone()),
    ] {
        let status = assert_refused(
            app.issue(client_id, &client_secret).await,
            Code::Unauthenticated,
            "CLIENT_CREDENTIALS_INVALID",
        );
        assert_eq!(
            status.message(),
            "the client id or the client secret is wrong"
        );
    }
    let refusals = app
        .actions()
        .await
        .into_iter()
        .filter(|a| a == "service_account.token_refused")
        .count();
    assert_eq!(
        refusals, 3,
        "refusals naming this workspace's accounts are audited"
    );
}

async fn nobody_creates_an_account_holding_more_than_they_do(app: TestApp) {
    let manager = app.token("agent", &["staff.manage"]);
    let create = |token: String, workspaces: Vec<String>, permissions: Vec<String>| {
        let app = app.clone();
        async move {
            app.client()
                .create_service_account(app.with(
                    &token,
                    pb::CreateServiceAccountRequest {
                        workspace_id: WS.into(),
                        name: format!("sa-{}", uuid::Uuid::now_v7()),
                        workspaces,
                        permissions,
                        ..Default::default()
                    },
                ))
                .await
        }
    };
    // The manager holds end_users.write through the agent role, not seats.manage.
    create(manager.clone(), vec![], vec!["end_users.write".into()])
        .await
        .unwrap();
    assert_refused(
        create(manager.clone(), vec![], vec!["seats.manage".into()]).await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    // Another workspace needs staff.manage there too.
    assert_refused(
        create(manager, vec![WS.into(), "other".into()], vec![]).await,
        Code::PermissionDenied,
        "WORKSPACE_NOT_GRANTED",
    );
    let both = app.tokens.agent(&[WS, "other"], "admin", &[]);
    let created = create(both, vec!["other".into(), WS.into()], vec![])
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        created.service_account.unwrap().workspaces,
        vec![WS.to_owned(), "other".to_owned()]
    );
}

async fn only_a_platform_service_creates_an_account_for_every_workspace(app: TestApp) {
    let request = || pb::CreateServiceAccountRequest {
        workspace_id: WS.into(),
        name: format!("sa-{}", uuid::Uuid::now_v7()),
        workspaces: vec!["*".into()],
        permissions: vec!["end_users.write".into()],
        ..Default::default()
    };
    assert_refused(
        app.client()
            .create_service_account(app.admin(request()))
            .await,
        Code::PermissionDenied,
        "WORKSPACE_NOT_GRANTED",
    );
    let platform = app
        .tokens
        .service("provisioner", &["staff.manage", "end_users.write"]);
    let created = app
        .client()
        .create_service_account(app.with(&platform, request()))
        .await
        .unwrap()
        .into_inner();
    let account = created.service_account.unwrap();
    let token = app
        .issue(&account.client_id, &created.client_secret)
        .await
        .unwrap();
    let principal = app.tokens.verifier().verify(&token.access_token).unwrap();
    assert!(matches!(principal.workspaces, WorkspaceScope::All(_)));
    assert!(principal.grant("any-workspace").is_some());

    let mixed = pb::CreateServiceAccountRequest {
        workspaces: vec!["*".into(), WS.into()],
        ..request()
    };
    let status = app
        .client()
        .create_service_account(app.with(&platform, mixed))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), vec!["workspaces"]);
}

async fn a_rotated_secret_and_a_revoked_account_stop_working(app: TestApp) {
    let (account, old_secret) = app.service_account(&[]).await;
    let before = app.issue(&account.client_id, &old_secret).await.unwrap();
    let before = app.tokens.verifier().verify(&before.access_token).unwrap();

    let rotated = app
        .client()
        .rotate_service_account_secret(app.admin(pb::RotateServiceAccountSecretRequest {
            workspace_id: WS.into(),
            service_account_id: account.service_account_id.clone(),
            etag: account.etag.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_refused(
        app.issue(&account.client_id, &old_secret).await,
        Code::Unauthenticated,
        "CLIENT_CREDENTIALS_INVALID",
    );
    let after = app
        .issue(&account.client_id, &rotated.client_secret)
        .await
        .unwrap();
    let after = app.tokens.verifier().verify(&after.access_token).unwrap();
    assert!(
        after.generation > before.generation,
        "older tokens are revocable"
    );

    // The etag read before the rotation is stale now.
    assert_refused(
        app.client()
            .revoke_service_account(app.admin(pb::RevokeServiceAccountRequest {
                workspace_id: WS.into(),
                service_account_id: account.service_account_id.clone(),
                etag: account.etag.clone(),
            }))
            .await,
        Code::Aborted,
        "ETAG_MISMATCH",
    );
    let revoked = app
        .client()
        .revoke_service_account(app.admin(pb::RevokeServiceAccountRequest {
            workspace_id: WS.into(),
            service_account_id: account.service_account_id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.status, pb::ServiceAccountStatus::Revoked as i32);
    assert!(revoked.revoked_at.is_some());
    assert_refused(
        app.issue(&account.client_id, &rotated.client_secret).await,
        Code::PermissionDenied,
        "SERVICE_ACCOUNT_REVOKED",
    );
    let listed = app
        .client()
        .list_service_accounts(app.admin(pb::ListServiceAccountsRequest {
            workspace_id: WS.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.service_accounts.len(), 1);
    assert_eq!(
        listed.service_accounts[0].status,
        pb::ServiceAccountStatus::Revoked as i32
    );
}

async fn names_are_unique_and_input_is_checked(app: TestApp) {
    let request = |name: &str, permissions: Vec<String>| pb::CreateServiceAccountRequest {
        workspace_id: WS.into(),
        name: name.into(),
        permissions,
        ..Default::default()
    };
    app.client()
        .create_service_account(app.admin(request("Ticketing", vec![])))
        .await
        .unwrap();
    assert_refused(
        app.client()
            .create_service_account(app.admin(request("ticketing", vec![])))
            .await,
        Code::AlreadyExists,
        "SERVICE_ACCOUNT_ALREADY_EXISTS",
    );
    let status = app
        .client()
        .create_service_account(app.admin(request("", vec!["tickets.fly".into()])))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), vec!["name", "permissions[0]"]);
    let status = app.issue("", "").await.unwrap_err();
    assert_eq!(violated_fields(&status), vec!["client_id", "client_secret"]);
}
