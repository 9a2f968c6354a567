//! Tokens the staff service signs are accepted by the directory, which fetches the staff
//! service's keys, and a rotated-in key works there within seconds, without a restart.

use std::time::Duration;

use roster_auth::{PrincipalKind, TokenRequest, VerifierSettings};
use roster_proto::directory::v1 as directory;
use roster_proto::staff::v1 as staff;
use tonic::Code;

use crate::helpers::Suite;
use crate::on_both_databases;

on_both_databases!(the_directory_follows_the_staff_services_keys);

const WS: &str = "acme";

/// An admin token for `WS` from the staff service's current signing key, and its `kid`.
async fn staff_token(suite: &Suite) -> (String, String) {
    let signer = suite.keys.current_signer().await.unwrap();
    let defaults = VerifierSettings::default();
    let token = signer
        .mint_for(
            &TokenRequest {
                subject: uuid::Uuid::now_v7().to_string(),
                kind: PrincipalKind::Agent,
                workspaces: [(
                    WS.to_owned(),
                    roster_auth::WorkspaceAccess::new("admin", &[]),
                )]
                .into(),
                generation: 0,
                ttl: Duration::from_secs(600),
                issuer: defaults.issuer,
                audience: defaults.audience,
            },
            roster_auth::unix_now(),
        )
        .unwrap();
    (token, signer.kid().to_owned())
}

async fn list_users(suite: &Suite, token: &str) -> Result<(), tonic::Status> {
    suite
        .directory
        .clone()
        .list_users(roster_testkit::with_bearer(
            token,
            directory::ListUsersRequest {
                workspace_id: WS.into(),
                ..Default::default()
            },
        ))
        .await
        .map(|_| ())
}

async fn the_directory_follows_the_staff_services_keys(suite: Suite) {
    let (before, old_kid) = staff_token(&suite).await;
    list_users(&suite, &before).await.unwrap();
    // The directory trusts the staff service's keys only, not what the staff service is
    // configured to trust besides.
    let foreign = suite.tokens.agent(&[WS], "admin", &[]);
    assert_eq!(
        list_users(&suite, &foreign).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let rotation = suite
        .staff
        .clone()
        .rotate_signing_key(roster_testkit::with_bearer(
            &suite
                .tokens
                .service("platform-ops", &["signing_keys.rotate"]),
            staff::RotateSigningKeyRequest {},
        ))
        .await
        .unwrap()
        .into_inner();
    let (after, new_kid) = staff_token(&suite).await;
    assert_eq!(new_kid, rotation.signing_key_id);
    assert_ne!(new_kid, old_kid);

    // The first call may arrive before the directory fetched the new key; it asks for the
    // keys again at once, so a call shortly after passes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match list_users(&suite, &after).await {
            Ok(()) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the rotated-in key is still unknown to the directory: {status:?}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The retired key is still published, so its tokens still verify.
    list_users(&suite, &before).await.unwrap();
}
