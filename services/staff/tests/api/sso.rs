//! SSO: connections (test sign-in, then enable), SsoLogin's checks of the ID token and of
//! the person, provisioning (JIT, pre-provisioned, SCIM, invitations), history and audit.

use jsonwebtoken::{Algorithm, EncodingKey};
use roster_core::Clock as _;
use roster_proto::staff::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_refused, change_of, reason, violated_fields};
use crate::idp::{self, CLIENT_ID, EC_KID, ISSUER, RSA_KID};
use crate::on_both_databases;

on_both_databases!(
    a_connection_starts_disabled_and_is_enabled_only_after_a_successful_test,
    a_test_sign_in_must_be_the_admins_own_and_failures_are_recorded,
    what_was_tested_cannot_change_unnoticed,
    connection_fields_are_checked_with_field_violations,
    jit_creates_an_active_agent_with_the_default_role_while_a_seat_is_free,
    pre_provisioned_and_scim_connections_sign_in_only_existing_agents,
    the_email_must_be_verified_and_in_an_allowed_domain,
    invalid_id_tokens_are_unauthenticated_and_recorded,
    a_disabled_or_another_workspaces_connection_is_permission_denied,
    an_invitation_is_accepted_through_sso,
    identities_are_matched_by_sub_and_a_second_identity_is_refused,
    the_history_shows_sso_and_the_access_token_works,
    connection_changes_and_sign_ins_write_audit_events,
    roles_given_by_connections_follow_renames_and_are_not_deleted,
    connections_are_listed_in_pages_under_unique_names,
    google_workspace_needs_a_workspace_account,
    failed_sso_attempts_are_throttled_per_address,
);

fn jit() -> pb::SsoProvisioningMode {
    pb::SsoProvisioningMode::Jit
}

async fn a_connection_starts_disabled_and_is_enabled_only_after_a_successful_test(app: TestApp) {
    let created = app.create_connection(idp::connection("Okta", jit())).await;
    assert!(!created.enabled);
    assert!(created.last_test.is_none());
    assert_eq!(created.key_ids, [EC_KID, RSA_KID]);
    assert_eq!(created.default_role, "viewer");
    assert_eq!(created.provisioning_mode, jit() as i32);

    // Enabling before the test step is refused, naming it.
    let status = assert_refused(
        app.set_enabled(&created.connection_id, true).await,
        Code::FailedPrecondition,
        "SSO_TEST_REQUIRED",
    );
    assert!(status.message().contains("TestSsoConnection"), "{status:?}");
    // A disabled connection signs nobody in.
    assert_refused(
        app.sso_login_as(&created.connection_id, "kirk@example.com")
            .await,
        Code::PermissionDenied,
        "SSO_CONNECTION_DISABLED",
    );
    // Created enabled is not a thing.
    let status = app
        .create_connection_in(
            WS,
            pb::SsoConnection {
                enabled: true,
                ..idp::connection("Eager", jit())
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["connection.enabled"]);

    // Test sign-in, then enable.
    let (id_token, nonce) = idp::token(&app, "Admin@Example.com");
    let tested = app
        .test_connection_as(
            &app.admin_token(),
            &created.connection_id,
            &id_token,
            &nonce,
        )
        .await
        .unwrap();
    assert_eq!(tested.email, "Admin@Example.com");
    assert_eq!(tested.subject, idp::subject_of("admin@example.com"));
    let connection = tested.connection.unwrap();
    let last_test = connection.last_test.clone().unwrap();
    assert!(last_test.succeeded, "{last_test:?}");
    assert_eq!(last_test.failure, "");
    assert!(!connection.enabled, "a test does not enable");
    assert_ne!(connection.etag, created.etag);
    let enabled = app.set_enabled(&created.connection_id, true).await.unwrap();
    assert!(enabled.enabled);
    let session = app
        .sso_login_as(&created.connection_id, "kirk@example.com")
        .await
        .unwrap();
    assert_eq!(session.agent.unwrap().email, "kirk@example.com");
}

async fn a_test_sign_in_must_be_the_admins_own_and_failures_are_recorded(app: TestApp) {
    let root = app.active("root@example.com", "admin").await;
    let own_token = app.token_as(&root.agent_id, &[WS], "admin", &[]);
    let created = app.create_connection(idp::connection("Okta", jit())).await;

    // Someone else's sign-in proves nothing about the admin's own.
    let (id_token, nonce) = idp::token(&app, "someone@example.com");
    let status = assert_refused(
        app.test_connection_as(&own_token, &created.connection_id, &id_token, &nonce)
            .await,
        Code::FailedPrecondition,
        "SSO_TEST_FAILED",
    );
    assert!(
        status.message().contains("someone@example.com"),
        "{status:?}"
    );
    let recorded = app.get_connection(&created.connection_id).await;
    let last_test = recorded.last_test.unwrap();
    assert!(!last_test.succeeded);
    assert_eq!(last_test.email, "someone@example.com");
    assert_eq!(last_test.tested_by_kind, "agent");
    assert_eq!(last_test.tested_by_id, root.agent_id);
    assert_refused(
        app.set_enabled(&created.connection_id, true).await,
        Code::FailedPrecondition,
        "SSO_TEST_REQUIRED",
    );

    // A misconfigured client id: the administrator is told precisely.
    let nonce = idp::nonce();
    let mut claims = idp::claims(&app, "root@example.com", &nonce);
    claims["aud"] = "another-app".into();
    let status = assert_refused(
        app.test_connection_as(
            &own_token,
            &created.connection_id,
            &idp::sign(&claims),
            &nonce,
        )
        .await,
        Code::FailedPrecondition,
        "SSO_TEST_FAILED",
    );
    assert!(status.message().contains(CLIENT_ID), "{status:?}");
    let failure = app
        .get_connection(&created.connection_id)
        .await
        .last_test
        .unwrap()
        .failure;
    assert!(failure.contains("audience"), "{failure}");

    // The admin's own sign-in succeeds and the connection can be enabled.
    let (id_token, nonce) = idp::token(&app, "ROOT@example.com");
    app.test_connection_as(&own_token, &created.connection_id, &id_token, &nonce)
        .await
        .unwrap();
    // The same ID token is not accepted twice, not even by a test.
    let status = assert_refused(
        app.test_connection_as(&own_token, &created.connection_id, &id_token, &nonce)
            .await,
        Code::FailedPrecondition,
        "SSO_TEST_FAILED",
    );
    assert!(status.message().contains("once"), "{status:?}");
    // That last test failed, so enabling waits for a good one.
    assert_refused(
        app.set_enabled(&created.connection_id, true).await,
        Code::FailedPrecondition,
        "SSO_TEST_REQUIRED",
    );
    let (id_token, nonce) = idp::token(&app, "root@example.com");
    app.test_connection_as(&own_token, &created.connection_id, &id_token, &nonce)
        .await
        .unwrap();
    assert!(
        app.set_enabled(&created.connection_id, true)
            .await
            .unwrap()
            .enabled
    );
    // A test needs sso.manage.
    let (id_token, nonce) = idp::token(&app, "root@example.com");
    assert_refused(
        app.test_connection_as(
            &app.token("agent", &["staff.manage"]),
            &created.connection_id,
            &id_token,
            &nonce,
        )
        .await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
}

async fn what_was_tested_cannot_change_unnoticed(app: TestApp) {
    let enabled = app.enabled_connection("Okta", jit()).await;
    let update = |connection: pb::SsoConnection, paths: &[&str]| {
        let app = app.clone();
        let paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
        async move {
            app.client()
                .update_sso_connection(app.admin(pb::UpdateSsoConnectionRequest {
                    workspace_id: WS.into(),
                    connection: Some(connection),
                    update_mask: Some(prost_types::FieldMask { paths }),
                }))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    // The provider rotated its keys: an enabled connection keeps working, but its test
    // is gone, so disabling and re-enabling needs a new one.
    let rotated = json!({"keys": [serde_json::from_str::<serde_json::Value>(&idp::jwks()).unwrap()["keys"][0]]}).to_string();
    let after = update(
        pb::SsoConnection {
            connection_id: enabled.connection_id.clone(),
            jwks: rotated,
            ..Default::default()
        },
        &["jwks"],
    )
    .await
    .unwrap();
    assert!(after.enabled);
    assert!(after.last_test.is_none());
    assert_eq!(after.key_ids, [RSA_KID]);
    assert!(
        app.sso_login_as(&enabled.connection_id, "kirk@example.com")
            .await
            .is_ok()
    );
    // Another issuer while enabled: only while disabling in the same call.
    let status = assert_refused(
        update(
            pb::SsoConnection {
                connection_id: enabled.connection_id.clone(),
                issuer: "https://other-idp.example.com".into(),
                ..Default::default()
            },
            &["issuer"],
        )
        .await,
        Code::FailedPrecondition,
        "SSO_TEST_REQUIRED",
    );
    assert!(status.message().contains("disabled"), "{status:?}");
    let disabled = update(
        pb::SsoConnection {
            connection_id: enabled.connection_id.clone(),
            issuer: "https://other-idp.example.com".into(),
            enabled: false,
            etag: after.etag.clone(),
            ..Default::default()
        },
        &["issuer", "enabled"],
    )
    .await
    .unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.issuer, "https://other-idp.example.com");
    assert_refused(
        app.set_enabled(&enabled.connection_id, true).await,
        Code::FailedPrecondition,
        "SSO_TEST_REQUIRED",
    );
    // A stale etag is ABORTED.
    assert_refused(
        update(
            pb::SsoConnection {
                connection_id: enabled.connection_id.clone(),
                display_name: "Renamed".into(),
                etag: after.etag,
                ..Default::default()
            },
            &[],
        )
        .await,
        Code::Aborted,
        "ETAG_MISMATCH",
    );
    // The old provider's tokens no longer verify, so its test fails.
    let (id_token, nonce) = idp::token(&app, "admin@example.com");
    let status = assert_refused(
        app.test_connection_as(
            &app.admin_token(),
            &enabled.connection_id,
            &id_token,
            &nonce,
        )
        .await,
        Code::FailedPrecondition,
        "SSO_TEST_FAILED",
    );
    assert!(status.message().contains("issuer"), "{status:?}");
}

async fn connection_fields_are_checked_with_field_violations(app: TestApp) {
    let create = |connection: pb::SsoConnection| {
        let app = app.clone();
        async move { app.create_connection_in(WS, connection).await.unwrap_err() }
    };
    let base = || idp::connection("Okta", jit());
    let cases: Vec<(&str, pb::SsoConnection)> = vec![
        ("connection.jwks", pb::SsoConnection { jwks: "{}".into(), ..base() }),
        ("connection.jwks", pb::SsoConnection { jwks: "not json".into(), ..base() }),
        (
            "connection.jwks",
            pb::SsoConnection {
                jwks: json!({"keys": [{"kty": "RSA", "use": "enc", "kid": "e", "n": "AQAB", "e": "AQAB"}]}).to_string(),
                ..base()
            },
        ),
        (
            "connection.jwks",
            pb::SsoConnection {
                jwks: json!({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}).to_string(),
                ..base()
            },
        ),
        ("connection.issuer", pb::SsoConnection { issuer: "http://idp.example.com".into(), ..base() }),
        ("connection.issuer", pb::SsoConnection { issuer: String::new(), ..base() }),
        (
            "connection.issuer",
            pb::SsoConnection {
                provider: pb::SsoProvider::GoogleWorkspace as i32,
                issuer: "https://google.evil.example.com".into(),
                ..base()
            },
        ),
        (
            "connection.issuer",
            pb::SsoConnection {
                provider: pb::SsoProvider::MicrosoftEntraId as i32,
                issuer: "https://login.microsoftonline.com/common/v2.0".into(),
                ..base()
            },
        ),
        ("connection.provider", pb::SsoConnection { provider: 0, ..base() }),
        ("connection.client_id", pb::SsoConnection { client_id: "a b".into(), ..base() }),
        ("connection.display_name", pb::SsoConnection { display_name: " ".into(), ..base() }),
        (
            "connection.allowed_email_domains[1]",
            pb::SsoConnection {
                allowed_email_domains: vec!["example.com".into(), "not a domain".into()],
                ..base()
            },
        ),
        ("connection.provisioning_mode", pb::SsoConnection { provisioning_mode: 9, ..base() }),
    ];
    for (field, connection) in cases {
        let status = create(connection).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(violated_fields(&status), [field], "{status:?}");
    }
    let status = create(pb::SsoConnection {
        default_role: "No Such Role".into(),
        ..base()
    })
    .await;
    assert_eq!(violated_fields(&status), ["connection.default_role"]);
    // Nothing was created.
    let listed = app
        .client()
        .list_sso_connections(app.admin(pb::ListSsoConnectionsRequest {
            workspace_id: WS.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.connections.is_empty());
    // Updates check the JWKS too.
    let created = app.create_connection(base()).await;
    let status = app
        .client()
        .update_sso_connection(app.admin(pb::UpdateSsoConnectionRequest {
            workspace_id: WS.into(),
            connection: Some(pb::SsoConnection {
                connection_id: created.connection_id,
                jwks: json!({"keys": []}).to_string(),
                ..Default::default()
            }),
            update_mask: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["connection.jwks"]);
}

async fn jit_creates_an_active_agent_with_the_default_role_while_a_seat_is_free(app: TestApp) {
    let root = app.active("root@example.com", "admin").await;
    let connection = app.enabled_connection("Okta", jit()).await.connection_id;
    app.set_seats(2).await;

    let session = app
        .sso_login_as(&connection, "Uhura@Example.com")
        .await
        .unwrap();
    let agent = session.agent.unwrap();
    assert_eq!(agent.status, pb::AgentStatus::Active as i32);
    assert_eq!(agent.role, "viewer");
    assert_eq!(agent.email, "Uhura@Example.com");
    assert_eq!(agent.name, "Uhura (IdP)");
    assert_eq!(agent.sign_in_count, 1);
    assert!(agent.last_sign_in_at.is_some());
    assert!(agent.activated_at.is_some());
    assert_eq!(app.usage().await.seats_used, 2);
    let provisioned = app.last_event("agent.provisioned").await;
    assert_eq!(provisioned.target_id, agent.agent_id);
    assert_eq!(change_of(&provisioned, "role").1, "viewer");

    // No seat left: nobody new gets in, and nothing is created.
    assert_refused(
        app.sso_login_as(&connection, "chekov@example.com").await,
        Code::FailedPrecondition,
        "SEAT_LIMIT_REACHED",
    );
    assert_eq!(app.usage().await.seats_used, 2);

    // The same person again is the same agent, matched by `sub` even with a new e-mail.
    let nonce = idp::nonce();
    let mut claims = idp::claims(&app, "uhura@example.com", &nonce);
    claims["email"] = "nyota.uhura@example.com".into();
    let again = app
        .sso_login(&connection, &idp::sign(&claims), &nonce)
        .await
        .unwrap()
        .agent
        .unwrap();
    assert_eq!(again.agent_id, agent.agent_id);
    assert_eq!(again.sign_in_count, 2);
    // A seat more lets the next one in.
    app.set_seats(3).await;
    assert!(
        app.sso_login_as(&connection, "chekov@example.com")
            .await
            .is_ok()
    );
    assert_eq!(app.usage().await.active_agents, 3);
    assert_eq!(app.get(&root.agent_id).await.sign_in_count, 0);
}

async fn pre_provisioned_and_scim_connections_sign_in_only_existing_agents(app: TestApp) {
    let sulu = app.active("sulu@example.com", "agent").await;
    for (name, mode) in [
        ("Pre", pb::SsoProvisioningMode::PreProvisioned),
        ("Scim", pb::SsoProvisioningMode::Scim),
    ] {
        let connection = app.enabled_connection(name, mode).await.connection_id;
        let status = assert_refused(
            app.sso_login_as(&connection, "stranger@example.com").await,
            Code::PermissionDenied,
            "SSO_NOT_PROVISIONED",
        );
        assert!(status.message().contains("invite"), "{status:?}");
        let session = app
            .sso_login_as(&connection, "sulu@example.com")
            .await
            .unwrap();
        let agent = session.agent.unwrap();
        assert_eq!(agent.agent_id, sulu.agent_id);
        assert_eq!(agent.role, "agent", "an existing agent keeps its role");
    }
    assert_eq!(app.usage().await.active_agents, 1);
}

async fn the_email_must_be_verified_and_in_an_allowed_domain(app: TestApp) {
    let created = app
        .create_connection(pb::SsoConnection {
            allowed_email_domains: vec!["Example.com".into()],
            ..idp::connection("Okta", jit())
        })
        .await;
    assert_eq!(created.allowed_email_domains, ["example.com"]);
    let (id_token, nonce) = idp::token(&app, "admin@example.com");
    app.test_connection_as(
        &app.admin_token(),
        &created.connection_id,
        &id_token,
        &nonce,
    )
    .await
    .unwrap();
    let connection = app
        .set_enabled(&created.connection_id, true)
        .await
        .unwrap()
        .connection_id;
    let existing = app.active("scotty@example.com", "agent").await;

    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let nonce = idp::nonce();
        let mut claims = idp::claims(&app, "scotty@example.com", &nonce);
        edit(&mut claims);
        (idp::sign(&claims), nonce)
    };
    for (case, (id_token, nonce), expected) in [
        (
            "email_verified false",
            with(&|c| c["email_verified"] = false.into()),
            "SSO_EMAIL_NOT_VERIFIED",
        ),
        (
            "no email_verified",
            with(&|c| drop(c.as_object_mut().unwrap().remove("email_verified"))),
            "SSO_EMAIL_NOT_VERIFIED",
        ),
        (
            "no email",
            with(&|c| drop(c.as_object_mut().unwrap().remove("email"))),
            "SSO_EMAIL_NOT_VERIFIED",
        ),
        (
            "another domain",
            with(&|c| {
                c["email"] = "scotty@evil.example.org".into();
                c["sub"] = "sub-evil".into();
            }),
            "SSO_DOMAIN_NOT_ALLOWED",
        ),
    ] {
        let status = app
            .sso_login(&connection, &id_token, &nonce)
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::PermissionDenied, "{case}: {status:?}");
        assert_eq!(reason(&status), expected, "{case}");
    }
    // None of it linked or created anything: the agent signs in when verified.
    assert_eq!(app.usage().await.active_agents, 1);
    assert_eq!(app.get(&existing.agent_id).await.sign_in_count, 0);
    assert!(
        app.sso_login_as(&connection, "scotty@example.com")
            .await
            .is_ok()
    );
}

async fn invalid_id_tokens_are_unauthenticated_and_recorded(app: TestApp) {
    let connection = app.enabled_connection("Okta", jit()).await.connection_id;
    let now = app.clock.now_secs();
    let email = "mallory@example.com";
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let nonce = idp::nonce();
        let mut claims = idp::claims(&app, email, &nonce);
        edit(&mut claims);
        (claims, nonce)
    };
    let signed = |edit: &dyn Fn(&mut serde_json::Value)| {
        let (claims, nonce) = with(edit);
        (idp::sign(&claims), nonce)
    };
    let b64 = |value: &serde_json::Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    let (valid_claims, valid_nonce) = with(&|_| {});
    let cases: Vec<(&str, (String, String))> = vec![
        (
            "wrong issuer",
            signed(&|c| c["iss"] = "https://evil.example.com".into()),
        ),
        (
            "wrong audience",
            signed(&|c| c["aud"] = "another-app".into()),
        ),
        (
            "expired",
            signed(&|c| {
                c["iat"] = (now - 7200).into();
                c["exp"] = (now - 3600).into();
            }),
        ),
        (
            "issued in the future",
            signed(&|c| c["iat"] = (now + 3600).into()),
        ),
        (
            "no sub",
            signed(&|c| drop(c.as_object_mut().unwrap().remove("sub"))),
        ),
        ("wrong nonce", {
            let (token, _) = signed(&|_| {});
            (token, idp::nonce())
        }),
        ("no nonce in the token", {
            let (token, _) = signed(&|c| drop(c.as_object_mut().unwrap().remove("nonce")));
            (token, idp::nonce())
        }),
        ("unknown kid", {
            let (claims, nonce) = with(&|_| {});
            (
                idp::sign_with(&idp::rsa_key(), Algorithm::RS256, "rotated-away", &claims),
                nonce,
            )
        }),
        ("signed by another key", {
            let (claims, nonce) = with(&|_| {});
            (
                idp::sign_with(&idp::other_rsa_key(), Algorithm::RS256, RSA_KID, &claims),
                nonce,
            )
        }),
        ("alg none", {
            let (claims, nonce) = with(&|_| {});
            (
                format!(
                    "{}.{}.",
                    b64(&json!({"alg": "none", "typ": "JWT", "kid": RSA_KID})),
                    b64(&claims)
                ),
                nonce,
            )
        }),
        ("HS256 keyed with the public key", {
            let (claims, nonce) = with(&|_| {});
            (
                idp::sign_with(
                    &EncodingKey::from_secret(idp::rsa_modulus().as_bytes()),
                    Algorithm::HS256,
                    RSA_KID,
                    &claims,
                ),
                nonce,
            )
        }),
        ("ES256 header on the RSA key", {
            let (claims, nonce) = with(&|_| {});
            (
                idp::sign_with(&idp::ec_key(), Algorithm::ES256, RSA_KID, &claims),
                nonce,
            )
        }),
        ("not a JWT", ("garbage".to_owned(), idp::nonce())),
    ];
    for (case, (id_token, nonce)) in cases {
        let status = app
            .sso_login(&connection, &id_token, &nonce)
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert_eq!(reason(&status), "SSO_TOKEN_INVALID", "{case}");
    }
    assert_eq!(app.usage().await.active_agents, 0, "nobody was created");
    // Each failure is recorded with the check that failed, for the audit log only.
    let failures: Vec<String> = app
        .events()
        .await
        .into_iter()
        .filter(|event| event.action == "agent.login_failed")
        .map(|event| change_of(&event, "failure").1.as_str().unwrap().to_owned())
        .collect();
    assert!(
        failures.iter().any(|f| f.contains("issuer")),
        "{failures:?}"
    );
    assert!(
        failures.iter().any(|f| f.contains("rotated-away")),
        "{failures:?}"
    );
    assert!(
        failures.iter().any(|f| f.contains("`none`")),
        "{failures:?}"
    );

    // An ES256 token from the provider's EC key is fine; replaying it is not.
    let es256 = idp::sign_with(&idp::ec_key(), Algorithm::ES256, EC_KID, &valid_claims);
    assert!(
        app.sso_login(&connection, &es256, &valid_nonce)
            .await
            .is_ok()
    );
    let status = assert_refused(
        app.sso_login(&connection, &es256, &valid_nonce).await,
        Code::Unauthenticated,
        "SSO_TOKEN_INVALID",
    );
    assert!(status.message().contains("already used"), "{status:?}");
    // An expired token's caller is told to sign in again, nothing more.
    let (id_token, nonce) = signed(&|c| c["exp"] = (now - 600).into());
    let status = app
        .sso_login(&connection, &id_token, &nonce)
        .await
        .unwrap_err();
    assert!(status.message().contains("expired"), "{status:?}");
    // A missing nonce is the caller's mistake, not the token's.
    let (id_token, _) = signed(&|_| {});
    let status = app.sso_login(&connection, &id_token, "").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["nonce"]);
}

async fn a_disabled_or_another_workspaces_connection_is_permission_denied(app: TestApp) {
    let other = app
        .create_connection_in("other", idp::connection("Theirs", jit()))
        .await
        .unwrap();
    let (id_token, nonce) = idp::token(&app, "kirk@example.com");
    assert_refused(
        app.sso_login(&other.connection_id, &id_token, &nonce).await,
        Code::PermissionDenied,
        "SSO_CONNECTION_UNKNOWN",
    );
    // Nor can this workspace's admin read or change it.
    assert_refused(
        app.client()
            .get_sso_connection(app.admin(pb::GetSsoConnectionRequest {
                workspace_id: WS.into(),
                connection_id: other.connection_id.clone(),
            }))
            .await,
        Code::NotFound,
        "SSO_CONNECTION_NOT_FOUND",
    );
    let ours = app.enabled_connection("Ours", jit()).await;
    // Our connection in the other workspace's name is unknown there too.
    let (id_token, nonce) = idp::token(&app, "kirk@example.com");
    assert_refused(
        app.sso_login_in("other", &ours.connection_id, &id_token, &nonce)
            .await,
        Code::PermissionDenied,
        "SSO_CONNECTION_UNKNOWN",
    );
    assert!(
        app.sso_login_as(&ours.connection_id, "kirk@example.com")
            .await
            .is_ok()
    );
    app.set_enabled(&ours.connection_id, false).await.unwrap();
    assert_refused(
        app.sso_login_as(&ours.connection_id, "kirk@example.com")
            .await,
        Code::PermissionDenied,
        "SSO_CONNECTION_DISABLED",
    );
}

async fn an_invitation_is_accepted_through_sso(app: TestApp) {
    let connection = app
        .enabled_connection("Okta", pb::SsoProvisioningMode::PreProvisioned)
        .await
        .connection_id;
    let invited = app.invite("spock@example.com", "agent").await;
    let session = app
        .sso_login_as(&connection, "spock@example.com")
        .await
        .unwrap();
    let agent = session.agent.unwrap();
    assert_eq!(agent.agent_id, invited.agent.unwrap().agent_id);
    assert_eq!(agent.status, pb::AgentStatus::Active as i32);
    assert!(agent.activated_at.is_some());
    assert_eq!(agent.sign_in_count, 1);
    let accepted = app.last_event("agent.invitation_accepted").await;
    assert_eq!(change_of(&accepted, "method").1, "sso");
    assert_eq!(accepted.actor_id, agent.agent_id);
    // The e-mailed secret is spent.
    assert_refused(
        app.accept(&invited.secret).await,
        Code::FailedPrecondition,
        "INVITATION_USED",
    );
    // An SSO-only agent has no password to sign in with.
    assert_refused(
        app.login("spock@example.com", crate::helpers::PASSWORD)
            .await,
        Code::Unauthenticated,
        "WRONG_CREDENTIALS",
    );

    // An expired invitation is not accepted: ask for a new one.
    app.invite("mccoy@example.com", "agent").await;
    app.clock.advance_secs(8 * 24 * 3600);
    assert_refused(
        app.sso_login_as(&connection, "mccoy@example.com").await,
        Code::FailedPrecondition,
        "INVITATION_EXPIRED",
    );
    let history = app
        .client()
        .list_agents(app.admin(pb::ListAgentsRequest {
            workspace_id: WS.into(),
            filter: "mccoy".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .agents;
    assert_eq!(history[0].status, pb::AgentStatus::Invited as i32);
    let attempts = app.history(&history[0].agent_id, 10).await;
    assert_eq!(attempts[0].outcome, pb::LoginOutcome::NotActive as i32);
    assert_eq!(attempts[0].method, "sso");
}

async fn identities_are_matched_by_sub_and_a_second_identity_is_refused(app: TestApp) {
    let connection = app.enabled_connection("Okta", jit()).await.connection_id;
    let first = app
        .sso_login_as(&connection, "data@example.com")
        .await
        .unwrap()
        .agent
        .unwrap();
    // The provider gave the address to another person (another `sub`).
    let nonce = idp::nonce();
    let mut claims = idp::claims(&app, "data@example.com", &nonce);
    claims["sub"] = "sub-lore".into();
    let status = assert_refused(
        app.sso_login(&connection, &idp::sign(&claims), &nonce)
            .await,
        Code::PermissionDenied,
        "SSO_IDENTITY_CONFLICT",
    );
    assert!(status.message().contains("administrator"), "{status:?}");
    let attempts = app.history(&first.agent_id, 10).await;
    assert_eq!(
        attempts[0].outcome,
        pb::LoginOutcome::SsoIdentityRefused as i32
    );

    // Deactivated, the agent cannot sign in, and loses its links...
    app.client()
        .deactivate_agent(app.admin(pb::DeactivateAgentRequest {
            workspace_id: WS.into(),
            agent_id: first.agent_id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(
        change_of(
            &app.last_event("agent.deactivated").await,
            "sso_links_removed"
        )
        .1,
        1
    );
    assert_refused(
        app.sso_login_as(&connection, "data@example.com").await,
        Code::PermissionDenied,
        "AGENT_NOT_ACTIVE",
    );
    // ...so once reactivated, the person the administrator means links anew.
    app.client()
        .reactivate_agent(app.admin(pb::ReactivateAgentRequest {
            workspace_id: WS.into(),
            agent_id: first.agent_id.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();
    let nonce = idp::nonce();
    let mut claims = idp::claims(&app, "data@example.com", &nonce);
    claims["sub"] = "sub-lore".into();
    let relinked = app
        .sso_login(&connection, &idp::sign(&claims), &nonce)
        .await
        .unwrap()
        .agent
        .unwrap();
    assert_eq!(relinked.agent_id, first.agent_id);
    let linked = app.last_event("agent.sso_linked").await;
    assert_eq!(change_of(&linked, "sso_subject").1, "sub-lore");
}

async fn the_history_shows_sso_and_the_access_token_works(app: TestApp) {
    let connection = app.enabled_connection("Okta", jit()).await.connection_id;
    let session = app
        .sso_login_as(&connection, "worf@example.com")
        .await
        .unwrap();
    assert_eq!(session.token_type, "Bearer");
    let agent = session.agent.clone().unwrap();
    // The access token is the agent's, usable at once.
    let principal = app.verify(&session.access_token);
    assert_eq!(principal.subject, agent.agent_id);
    let own = app
        .client()
        .get_agent(app.with(
            &session.access_token,
            pb::GetAgentRequest {
                workspace_id: WS.into(),
                agent_id: agent.agent_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.email, "worf@example.com");
    let history = app
        .client()
        .list_login_history(app.with(
            &session.access_token,
            pb::ListLoginHistoryRequest {
                workspace_id: WS.into(),
                agent_id: agent.agent_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .attempts;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].method, "sso");
    assert_eq!(history[0].outcome, pb::LoginOutcome::Succeeded as i32);
    assert_eq!(history[0].sso_connection_id, connection);
    assert!(!history[0].ip.is_empty());
    // The refresh token works as Login's does.
    let refreshed = app.refresh(&session.refresh_token).await.unwrap();
    assert_eq!(refreshed.agent.unwrap().agent_id, agent.agent_id);
    // A password sign-in's record says so, beside the SSO one.
    app.login("worf@example.com", "not the password")
        .await
        .unwrap_err();
    let methods: Vec<String> = app
        .history(&agent.agent_id, 10)
        .await
        .into_iter()
        .map(|attempt| attempt.method)
        .collect();
    assert_eq!(methods, ["password", "sso"]);
}

async fn connection_changes_and_sign_ins_write_audit_events(app: TestApp) {
    let enabled = app.enabled_connection("Okta", jit()).await;
    let id = enabled.connection_id.clone();
    app.sso_login_as(&id, "riker@example.com").await.unwrap();
    let (id_token, _) = idp::token(&app, "riker@example.com");
    app.sso_login(&id, &id_token, &idp::nonce())
        .await
        .unwrap_err();
    // An enabled connection is not deleted: disabling is its own step.
    assert_refused(
        app.client()
            .delete_sso_connection(app.admin(pb::DeleteSsoConnectionRequest {
                workspace_id: WS.into(),
                connection_id: id.clone(),
                etag: String::new(),
            }))
            .await,
        Code::FailedPrecondition,
        "SSO_CONNECTION_ENABLED",
    );
    let disabled = app.set_enabled(&id, false).await.unwrap();
    assert_refused(
        app.client()
            .delete_sso_connection(app.admin(pb::DeleteSsoConnectionRequest {
                workspace_id: WS.into(),
                connection_id: id.clone(),
                etag: enabled.etag.clone(),
            }))
            .await,
        Code::Aborted,
        "ETAG_MISMATCH",
    );
    app.client()
        .delete_sso_connection(app.admin(pb::DeleteSsoConnectionRequest {
            workspace_id: WS.into(),
            connection_id: id.clone(),
            etag: disabled.etag,
        }))
        .await
        .unwrap();
    assert_refused(
        app.client()
            .get_sso_connection(app.admin(pb::GetSsoConnectionRequest {
                workspace_id: WS.into(),
                connection_id: id.clone(),
            }))
            .await,
        Code::NotFound,
        "SSO_CONNECTION_NOT_FOUND",
    );

    let events = app.events().await;
    let about_connection: Vec<&str> = events
        .iter()
        .filter(|event| event.target_id == id)
        .map(|event| event.action.as_str())
        .collect();
    assert_eq!(
        about_connection,
        [
            "sso_connection.created",
            "sso_connection.tested",
            "sso_connection.enabled",
            "sso_connection.disabled",
            "sso_connection.deleted",
        ]
    );
    let created = app.last_event("sso_connection.created").await;
    assert_eq!(change_of(&created, "issuer").1, ISSUER);
    assert_eq!(change_of(&created, "key_ids").1, json!([EC_KID, RSA_KID]));
    assert_eq!(change_of(&created, "enabled").1, false);
    let enabled_event = app.last_event("sso_connection.enabled").await;
    assert_eq!(
        change_of(&enabled_event, "enabled"),
        (json!(false), json!(true))
    );
    let tested = app.last_event("sso_connection.tested").await;
    assert_eq!(change_of(&tested, "succeeded").1, true);

    let logged_in = app.last_event("agent.logged_in").await;
    assert_eq!(change_of(&logged_in, "method").1, "sso");
    assert_eq!(change_of(&logged_in, "sso_connection_id").1, id);
    assert_eq!(
        change_of(&logged_in, "sso_subject").1,
        idp::subject_of("riker@example.com")
    );
    let failed = app.last_event("agent.login_failed").await;
    assert_eq!(change_of(&failed, "method").1, "sso");
    assert_eq!(change_of(&failed, "outcome").1, "sso_token_invalid");
    assert_eq!(failed.actor_kind, "anonymous");
    let provisioned = app.last_event("agent.provisioned").await;
    assert_eq!(provisioned.actor_kind, "agent");
}

async fn roles_given_by_connections_follow_renames_and_are_not_deleted(app: TestApp) {
    let lead = app.create_role("Team Lead", &["tickets.work"]).await;
    let created = app
        .create_connection(pb::SsoConnection {
            default_role: "team lead".into(),
            ..idp::connection("Okta", jit())
        })
        .await;
    assert_eq!(created.default_role, "Team Lead");
    app.client()
        .update_role(app.admin(pb::UpdateRoleRequest {
            workspace_id: WS.into(),
            role: Some(pb::Role {
                role_id: lead.role_id.clone(),
                name: "Shift Lead".into(),
                ..Default::default()
            }),
            update_mask: None,
        }))
        .await
        .unwrap();
    let renamed = app.get_connection(&created.connection_id).await;
    assert_eq!(renamed.default_role, "Shift Lead");
    assert_ne!(renamed.etag, created.etag);
    let status = assert_refused(
        app.client()
            .delete_role(app.admin(pb::DeleteRoleRequest {
                workspace_id: WS.into(),
                role_id: lead.role_id.clone(),
                etag: String::new(),
            }))
            .await,
        Code::FailedPrecondition,
        "ROLE_IN_USE",
    );
    assert!(status.message().contains("Okta"), "{status:?}");

    // Nobody configures a connection that gives what they lack.
    let manager = app.token("agent", &["sso.manage"]);
    assert_refused(
        app.client()
            .create_sso_connection(app.with(
                &manager,
                pb::CreateSsoConnectionRequest {
                    workspace_id: WS.into(),
                    connection: Some(pb::SsoConnection {
                        default_role: "admin".into(),
                        ..idp::connection("Escalate", jit())
                    }),
                },
            ))
            .await,
        Code::PermissionDenied,
        "GRANT_NOT_HELD",
    );
    assert!(
        app.client()
            .create_sso_connection(app.with(
                &manager,
                pb::CreateSsoConnectionRequest {
                    workspace_id: WS.into(),
                    connection: Some(idp::connection("Viewers", jit())),
                },
            ))
            .await
            .is_ok()
    );
    // sso.manage is the admin role's alone by default.
    let catalogue = app
        .client()
        .list_permissions(app.admin(pb::ListPermissionsRequest {
            workspace_id: WS.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let sso_manage = catalogue
        .services
        .iter()
        .flat_map(|group| group.permissions.iter())
        .find(|permission| permission.name == "sso.manage")
        .unwrap();
    assert_eq!(sso_manage.built_in_roles, ["admin"]);
}

async fn connections_are_listed_in_pages_under_unique_names(app: TestApp) {
    let mut ids = Vec::new();
    for name in ["Okta", "Entra", "Google"] {
        ids.push(
            app.create_connection(idp::connection(name, jit()))
                .await
                .connection_id,
        );
    }
    assert_refused(
        app.create_connection_in(WS, idp::connection("OKTA", jit()))
            .await,
        Code::AlreadyExists,
        "SSO_CONNECTION_ALREADY_EXISTS",
    );
    let page = |token: String| {
        let app = app.clone();
        async move {
            app.client()
                .list_sso_connections(app.with(
                    &app.token("viewer", &[]),
                    pb::ListSsoConnectionsRequest {
                        workspace_id: WS.into(),
                        page_size: 2,
                        page_token: token,
                    },
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let first = page(String::new()).await;
    assert_eq!(first.connections.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = page(first.next_page_token).await;
    assert!(second.next_page_token.is_empty());
    let listed: Vec<String> = first
        .connections
        .into_iter()
        .chain(second.connections)
        .map(|connection| connection.connection_id)
        .collect();
    assert_eq!(listed, ids, "oldest first");
}

async fn google_workspace_needs_a_workspace_account(app: TestApp) {
    let created = app
        .create_connection(pb::SsoConnection {
            provider: pb::SsoProvider::GoogleWorkspace as i32,
            issuer: "https://accounts.google.com".into(),
            allowed_email_domains: vec!["example.com".into()],
            ..idp::connection("Google", jit())
        })
        .await;
    let google = |email: &str, hd: Option<&str>| {
        let nonce = idp::nonce();
        let mut claims = idp::claims(&app, email, &nonce);
        // Google's tokens may name its issuer without the scheme.
        claims["iss"] = "accounts.google.com".into();
        if let Some(hd) = hd {
            claims["hd"] = hd.into();
        }
        (idp::sign(&claims), nonce)
    };
    let (id_token, nonce) = google("admin@example.com", Some("example.com"));
    app.test_connection_as(
        &app.admin_token(),
        &created.connection_id,
        &id_token,
        &nonce,
    )
    .await
    .unwrap();
    let connection = app
        .set_enabled(&created.connection_id, true)
        .await
        .unwrap()
        .connection_id;
    // A consumer Google account using a company address is not the company's.
    let (id_token, nonce) = google("gmail.user@example.com", None);
    assert_refused(
        app.sso_login(&connection, &id_token, &nonce).await,
        Code::PermissionDenied,
        "SSO_DOMAIN_NOT_ALLOWED",
    );
    let (id_token, nonce) = google("troi@example.com", Some("example.com"));
    assert!(app.sso_login(&connection, &id_token, &nonce).await.is_ok());
}

async fn failed_sso_attempts_are_throttled_per_address(app: TestApp) {
    let connection = app.enabled_connection("Okta", jit()).await.connection_id;
    // A success gives its attempt back: it never counts towards the limit.
    app.sso_login_as(&connection, "kirk@example.com")
        .await
        .unwrap();
    let attempts = (0..50).map(|_| {
        let app = app.clone();
        let connection = connection.clone();
        async move {
            app.sso_login(&connection, "not.a.token", &idp::nonce())
                .await
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(s) if reason(s) == "SSO_TOKEN_INVALID")),
        "fifty failures from one address are each checked"
    );
    // Past the address's limit even a valid token waits for the window to end...
    let status = assert_refused(
        app.sso_login_as(&connection, "kirk@example.com").await,
        Code::ResourceExhausted,
        "SIGN_IN_THROTTLED",
    );
    assert!(
        tonic_types::StatusExt::get_error_details(&status)
            .retry_info()
            .is_some()
    );
    // ...and works once it has.
    app.clock.advance_secs(15 * 60 + 1);
    let agent = app
        .sso_login_as(&connection, "kirk@example.com")
        .await
        .unwrap()
        .agent
        .unwrap();
    let outcomes: Vec<i32> = app
        .history(&agent.agent_id, 10)
        .await
        .into_iter()
        .map(|attempt| attempt.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            pb::LoginOutcome::Succeeded as i32,
            pb::LoginOutcome::Succeeded as i32
        ],
        "the throttled attempt named no agent yet: its token was not read"
    );
}
