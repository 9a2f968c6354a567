//! The token-signing keys: published without a token, rotated only by a platform service
//! token, retired keys leaving the JWKS once their tokens expired, private keys sealed at
//! rest, and replicas on one database agreeing on the key that signs.

use std::time::Duration;

use roster_auth::{KeySet, PrincipalKind, TokenRequest, TokenVerifier, VerifierSettings};
use roster_proto::staff::v1 as pb;
use roster_staff::entity::signing_key;
use roster_testkit::TestTokens;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_refused, spawn_replica};
use crate::on_both_databases;

on_both_databases!(
    the_jwks_needs_no_token_and_verifies_what_the_keyring_signs,
    only_a_platform_service_token_rotates_and_both_keys_are_published,
    a_retired_key_leaves_the_jwks_once_its_tokens_expired,
    private_keys_are_sealed_at_rest,
    replicas_converge_on_the_key_that_signs,
    replicas_starting_together_create_one_key,
);

const ROTATE: &str = "signing_keys.rotate";

async fn jwks(app: &TestApp) -> pb::GetJwksResponse {
    app.client()
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect("GetJwks")
        .into_inner()
}

/// A token minted with `app`'s current signing key, as Login will: an admin of `WS`.
async fn staff_token(app: &TestApp) -> (String, String) {
    let signer = app.keys.current_signer().await.unwrap();
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

async fn rotate(app: &TestApp) -> pb::RotateSigningKeyResponse {
    let token = app.tokens.service("platform-ops", &[ROTATE]);
    app.client()
        .rotate_signing_key(app.with(&token, pb::RotateSigningKeyRequest {}))
        .await
        .expect("rotation by a platform service token")
        .into_inner()
}

async fn list_agents(app: &TestApp, token: &str) -> Result<(), tonic::Status> {
    app.client()
        .list_agents(app.with(
            token,
            pb::ListAgentsRequest {
                workspace_id: WS.into(),
                ..Default::default()
            },
        ))
        .await
        .map(|_| ())
}

async fn signing_key_rows(app: &TestApp) -> Vec<signing_key::Model> {
    use sea_orm::EntityTrait as _;
    let db = roster_db::Db::connect(&roster_db::DbSettings::new(&app.database_url))
        .await
        .unwrap();
    let rows = signing_key::Entity::find().all(db.conn()).await.unwrap();
    db.close().await;
    rows
}

async fn the_jwks_needs_no_token_and_verifies_what_the_keyring_signs(app: TestApp) {
    let published = jwks(&app).await;
    let keys = KeySet::from_jwks_json(&published.jwks_json).unwrap();
    assert_eq!(keys.key_ids(), [published.signing_key_id.as_str()]);
    assert_eq!(
        published.key_ids,
        std::slice::from_ref(&published.signing_key_id)
    );
    assert_eq!(
        published.refresh_interval.map(|d| d.seconds),
        Some(60),
        "a suggested refresh interval"
    );
    let jwk: serde_json::Value = serde_json::from_str(&published.jwks_json).unwrap();
    assert_eq!(jwk["keys"][0]["alg"], "EdDSA");
    assert_eq!(jwk["keys"][0]["use"], "sig");
    assert!(jwk["keys"][0].get("d").is_none(), "no private part");

    let (token, kid) = staff_token(&app).await;
    assert_eq!(kid, published.signing_key_id);
    let verifier = TokenVerifier::new(VerifierSettings::default(), keys);
    assert_eq!(
        verifier.verify(&token).unwrap().grant(WS).unwrap().role,
        "admin"
    );
    // The staff service trusts the tokens it signs, beside its configured keys.
    list_agents(&app, &token).await.unwrap();
    list_agents(&app, &app.admin_token()).await.unwrap();
}

async fn only_a_platform_service_token_rotates_and_both_keys_are_published(app: TestApp) {
    let before = jwks(&app).await.signing_key_id;
    let refused = [
        app.admin_token(),
        app.token("admin", &[ROTATE]),
        app.tokens.agent(&[WS], "agent", &[ROTATE]),
        app.tokens.at(
            PrincipalKind::Service,
            "one-workspace",
            &[WS],
            "service",
            &[ROTATE],
            roster_auth::unix_now(),
        ),
        app.tokens.service("billing", &["seats.manage"]),
        app.tokens.at(
            PrincipalKind::Service,
            "ops",
            &["*"],
            "admin",
            &[],
            roster_auth::unix_now(),
        ),
    ];
    for token in &refused {
        let result = app
            .client()
            .rotate_signing_key(app.with(token, pb::RotateSigningKeyRequest {}))
            .await;
        assert_refused(result, Code::PermissionDenied, "PERMISSION_MISSING");
    }
    let anonymous = app
        .client()
        .rotate_signing_key(pb::RotateSigningKeyRequest {})
        .await;
    assert_eq!(anonymous.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(jwks(&app).await.signing_key_id, before, "nothing rotated");
    let (old_token, _) = staff_token(&app).await;

    let rotation = rotate(&app).await;
    assert_eq!(rotation.previous_key_id, before);
    assert_ne!(rotation.signing_key_id, before);
    let published = jwks(&app).await;
    assert_eq!(published.signing_key_id, rotation.signing_key_id);
    let mut both = vec![before.clone(), rotation.signing_key_id.clone()];
    both.sort();
    assert_eq!(published.key_ids, both);
    assert_eq!(
        KeySet::from_jwks_json(&published.jwks_json)
            .unwrap()
            .key_ids(),
        both
    );

    // The new key signs at once; tokens of the old one still work.
    let (new_token, kid) = staff_token(&app).await;
    assert_eq!(kid, rotation.signing_key_id);
    list_agents(&app, &new_token).await.unwrap();
    list_agents(&app, &old_token).await.unwrap();

    let events = app.events_in("*").await;
    let rotated: Vec<_> = events
        .iter()
        .filter(|e| e.action == "signing_key.rotated")
        .collect();
    assert_eq!(rotated.len(), 1, "{events:?}");
    assert_eq!(rotated[0].actor_kind, "service");
    assert_eq!(rotated[0].actor_id, "platform-ops");
    assert_eq!(rotated[0].target_id, rotation.signing_key_id);
    let changes = rotated[0].changes.to_string();
    assert!(changes.contains(&before), "{changes}");
    assert!(changes.contains(&rotation.signing_key_id), "{changes}");
    assert!(
        events.iter().any(|e| e.action == "signing_key.created"),
        "{events:?}"
    );
}

async fn a_retired_key_leaves_the_jwks_once_its_tokens_expired(app: TestApp) {
    let rotation = rotate(&app).await;
    let unpublished_at = rotation.previous_key_unpublished_at.unwrap().seconds;
    let now = roster_auth::unix_now();
    // The access-token lifetime (15 min), the verifiers' leeway (30 s) and the replicas'
    // recheck (5 s).
    let grace = unpublished_at - now;
    assert!((15 * 60 + 34..=15 * 60 + 36).contains(&grace), "{grace}");

    app.clock.advance_secs(grace - 2);
    assert_eq!(jwks(&app).await.key_ids.len(), 2, "still published");
    assert_eq!(app.keys.purge().await.unwrap(), 0);

    app.clock.advance_secs(3);
    let published = jwks(&app).await;
    assert_eq!(
        published.key_ids,
        std::slice::from_ref(&rotation.signing_key_id)
    );
    assert_eq!(
        KeySet::from_jwks_json(&published.jwks_json)
            .unwrap()
            .key_ids(),
        [rotation.signing_key_id.as_str()]
    );
    assert_eq!(
        app.keys.purge().await.unwrap(),
        1,
        "the private key goes too"
    );
    assert_eq!(app.keys.purge().await.unwrap(), 0);
    let rows = signing_key_rows(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].kid, rotation.signing_key_id);
}

async fn private_keys_are_sealed_at_rest(app: TestApp) {
    rotate(&app).await;
    let rows = signing_key_rows(&app).await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert!(
            row.private_key_sealed.starts_with("kek1:test-kek:"),
            "{}",
            row.private_key_sealed
        );
        let text = format!("{row:?}");
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        // The PKCS#8 prefix of an Ed25519 key in base64 (`MC4CAQAwBQYDK2Vw`), which any
        // PEM or DER of the key would show.
        assert!(!text.contains("MC4CAQAwBQYDK2Vw"), "{text}");
        assert!(!text.contains("MFECAQEwBQYDK2Vw"), "{text}");
        let jwk: serde_json::Value = serde_json::from_str(&row.public_jwk).unwrap();
        assert_eq!(jwk["kid"], row.kid.as_str());
        assert!(jwk.get("d").is_none());
    }

    // A replica with another KEK refuses to start rather than sign with a key of its own.
    let stranger = roster_kek::Keyring::generate("test-kek").unwrap();
    let mut db_settings = roster_db::DbSettings::new(&app.database_url);
    db_settings.max_connections = 2;
    let db = roster_staff::prepare_database(&db_settings).await.unwrap();
    let error = roster_staff::Application::build(
        roster_runtime::ServerSettings::for_tests(),
        db,
        app.tokens.trusted_keys(),
        std::sync::Arc::new(app.clock.clone()),
        roster_staff::startup::Signing {
            kek: stranger,
            keys: Default::default(),
            sign_in: Default::default(),
        },
    )
    .await
    .err()
    .expect("a KEK that does not open the key stops the start");
    let message = format!("{error:#}");
    assert!(message.contains("ROSTER_STAFF_KEK_FILE"), "{message}");
}

async fn replicas_converge_on_the_key_that_signs(app: TestApp) {
    let replica = || {
        spawn_replica(
            &app.database_url,
            app.tokens.clone(),
            app.kek.clone(),
            app.clock.clone(),
        )
    };
    let (verifying, verifying_served) = replica().await;
    let (publishing, publishing_served) = replica().await;
    let first = app.keys.current_signer().await.unwrap().kid().to_owned();
    assert_eq!(
        verifying.keys.current_signer().await.unwrap().kid(),
        first,
        "another replica loads the first one's key"
    );

    let rotation = rotate(&app).await;
    // A token of the new key is accepted by another replica soon (it looks again when a
    // token names a key it lacks), and that replica signs with the new key too.
    let (token, _) = staff_token(&app).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let accepted = list_agents(&verifying, &token).await.is_ok();
        let kid = verifying
            .keys
            .current_signer()
            .await
            .unwrap()
            .kid()
            .to_owned();
        if accepted && kid == rotation.signing_key_id {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replica still signs with {kid} (accepted: {accepted})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // GetJwks checks the database first, so a verifier fetching from any replica right
    // after a rotation learns the new key.
    let published = jwks(&publishing).await;
    assert_eq!(published.signing_key_id, rotation.signing_key_id);
    assert_eq!(published.key_ids.len(), 2);
    verifying_served.stop().await;
    publishing_served.stop().await;
}

async fn replicas_starting_together_create_one_key(app: TestApp) {
    app.execute_sql("DELETE FROM signing_keys").await;
    let start = || {
        spawn_replica(
            &app.database_url,
            TestTokens::generate().0,
            app.kek.clone(),
            app.clock.clone(),
        )
    };
    let replicas = futures_util::future::join_all((0..4).map(|_| start())).await;
    let rows = signing_key_rows(&app).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    for (replica, served) in replicas {
        assert_eq!(jwks(&replica).await.signing_key_id, rows[0].kid);
        served.stop().await;
    }
}
