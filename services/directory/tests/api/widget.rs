//! Widget tokens: the vendor's backend signs its user's identity with the workspace's
//! widget secret; the directory verifies it and imports customer and user. Secrets rotate
//! with a grace period for the previous one.

use roster_proto::directory::v1 as pb;
use serde_json::json;
use tonic::Code;

use roster_directory::widget_kek::WidgetKeyring;

use crate::helpers::{
    TestApp, WS, assert_code, assert_invalid, spawn, us, widget_claims, widget_token,
};
use crate::on_both_databases;

on_both_databases!(
    a_signed_token_imports_customer_and_user,
    no_secret_yet_is_a_failed_precondition,
    rotation_keeps_the_old_secret_for_the_grace_period,
    bad_tokens_are_refused,
    tokens_must_expire_within_the_workspace_maximum,
    widget_secrets_are_sealed_at_rest,
    plaintext_secrets_are_sealed_when_the_service_starts,
    unreadable_widget_keys_fail_closed,
);

async fn a_signed_token_imports_customer_and_user(app: TestApp) {
    let rotated = app.rotate_widget_secret().await;
    assert!(rotated.secret.len() >= 32, "{}", rotated.secret);
    assert!(
        rotated.previous_secret_expires_at.is_none(),
        "first rotation"
    );
    let settings = app
        .client()
        .get_workspace_settings(app.admin(pb::GetWorkspaceSettingsRequest {
            workspace_id: WS.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(settings.widget_secret_set);

    let mut claims = widget_claims("vendor-kirk", "captain.kirk@example.com", "uss001");
    claims["userName"] = json!("Captain Kirk");
    claims["userAvatarUrl"] = json!("https://cdn.example.com/kirk.png");
    claims["customerName"] = json!("USS Enterprise");
    let token = widget_token(&rotated.secret, &claims);
    let imported = app.import_widget_token(&token).await.unwrap();
    assert_eq!(imported.outcome, pb::UpsertOutcome::Created as i32);
    assert!(imported.customer_created);
    let kirk = imported.user.unwrap();
    assert_eq!(kirk.external_id, "vendor-kirk");
    assert_eq!(kirk.email, "captain.kirk@example.com");
    assert_eq!(kirk.name, "Captain Kirk");
    assert_eq!(kirk.avatar_url, "https://cdn.example.com/kirk.png");
    assert_eq!(kirk.customer_id, "uss001");
    assert_eq!(
        kirk.identities,
        vec![pb::Identity {
            source: pb::IdentitySource::Widget as i32,
            key: "vendor-kirk".into(),
        }]
    );
    let customer = app
        .client()
        .get_customer(app.admin(pb::GetCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "uss001".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(customer.name, "USS Enterprise");
    let found = app
        .lookup(pb::lookup_user_request::Key::Identity(pb::Identity {
            source: pb::IdentitySource::Widget as i32,
            key: "vendor-kirk".into(),
        }))
        .await
        .unwrap();
    assert_eq!(found.user_id, kirk.user_id);

    // The same token again changes nothing; a changed name updates the same user.
    let again = app.import_widget_token(&token).await.unwrap();
    assert_eq!(again.outcome, pb::UpsertOutcome::Unchanged as i32);
    assert!(!again.customer_created);
    claims["userName"] = json!("James T. Kirk");
    let renamed = app
        .import_widget_token(&widget_token(&rotated.secret, &claims))
        .await
        .unwrap();
    assert_eq!(renamed.outcome, pb::UpsertOutcome::Updated as i32);
    assert_eq!(renamed.user.unwrap().user_id, kirk.user_id);
    // Numeric user ids, as some vendors send them, work too.
    let mut numeric = widget_claims("x", "spock@example.com", "uss001");
    numeric["userId"] = json!(42);
    let spock = app
        .import_widget_token(&widget_token(&rotated.secret, &numeric))
        .await
        .unwrap();
    assert_eq!(spock.user.unwrap().external_id, "42");
}

async fn no_secret_yet_is_a_failed_precondition(app: TestApp) {
    let token = widget_token(
        "some-guess",
        &widget_claims("vendor-kirk", "kirk@example.com", "uss001"),
    );
    let status = assert_code(
        app.import_widget_token(&token).await,
        Code::FailedPrecondition,
    );
    assert!(status.message().contains("secret"), "{}", status.message());
    assert!(app.list("").await.is_empty());
}

async fn rotation_keeps_the_old_secret_for_the_grace_period(app: TestApp) {
    let grace = 600;
    app.update_settings(
        pb::WorkspaceSettings {
            widget_secret_grace_seconds: grace,
            ..Default::default()
        },
        &["widget_secret_grace_seconds"],
    )
    .await
    .unwrap();
    let first = app.rotate_widget_secret().await.secret;
    let second = app.rotate_widget_secret().await;
    assert_ne!(second.secret, first);
    let until = us(second.previous_secret_expires_at.as_ref());
    let now = roster_auth::unix_now() * 1_000_000;
    assert!(
        (until - now - grace * 1_000_000).abs() < 60_000_000,
        "previous secret valid until {until}, now {now}"
    );

    let token = |secret: &str, n: u32| {
        widget_token(
            secret,
            &widget_claims(&format!("u{n}"), &format!("u{n}@example.com"), "uss001"),
        )
    };
    app.import_widget_token(&token(&first, 1)).await.unwrap();
    app.import_widget_token(&token(&second.secret, 2))
        .await
        .unwrap();

    app.clock.advance_secs(grace + 1);
    let status = assert_code(
        app.import_widget_token(&token(&first, 3)).await,
        Code::Unauthenticated,
    );
    assert!(
        status.message().contains("signature"),
        "{}",
        status.message()
    );
    app.import_widget_token(&token(&second.secret, 4))
        .await
        .unwrap();
    assert_code(app.lookup_external_id("u3").await, Code::NotFound);
    assert_eq!(app.list("").await.len(), 3);

    // A third rotation retires the first secret for good, even within a grace period.
    let third = app.rotate_widget_secret().await.secret;
    assert_code(
        app.import_widget_token(&token(&first, 5)).await,
        Code::Unauthenticated,
    );
    app.import_widget_token(&token(&second.secret, 6))
        .await
        .unwrap();
    app.import_widget_token(&token(&third, 7)).await.unwrap();
}

async fn bad_tokens_are_refused(app: TestApp) {
    let secret = app.rotate_widget_secret().await.secret;
    let claims = widget_claims("vendor-kirk", "kirk@example.com", "uss001");

    let wrong_secret = widget_token("not-the-workspace-secret", &claims);
    assert_code(
        app.import_widget_token(&wrong_secret).await,
        Code::Unauthenticated,
    );

    let mut no_email = claims.clone();
    no_email.as_object_mut().unwrap().remove("userEmail");
    let status = assert_invalid(
        app.import_widget_token(&widget_token(&secret, &no_email))
            .await,
        "token",
    );
    assert!(
        status.message().contains("userEmail"),
        "{}",
        status.message()
    );

    let mut bad_email = claims.clone();
    bad_email["userEmail"] = json!("kirk-at-example");
    assert_code(
        app.import_widget_token(&widget_token(&secret, &bad_email))
            .await,
        Code::InvalidArgument,
    );

    let mut expired = claims.clone();
    expired["exp"] = json!(roster_auth::unix_now() - 3600);
    assert_code(
        app.import_widget_token(&widget_token(&secret, &expired))
            .await,
        Code::Unauthenticated,
    );

    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    assert_code(app.import_widget_token(&hs512).await, Code::Unauthenticated);

    assert_invalid(app.import_widget_token("not.a.jwt").await, "token");
    assert_invalid(app.import_widget_token("").await, "token");
    assert!(app.list("").await.is_empty(), "nothing imported");
}

async fn tokens_must_expire_within_the_workspace_maximum(app: TestApp) {
    let secret = app.rotate_widget_secret().await.secret;
    let now = roster_auth::unix_now();
    let claims = widget_claims("vendor-kirk", "kirk@example.com", "uss001");

    let mut eternal = claims.clone();
    eternal.as_object_mut().unwrap().remove("exp");
    let status = assert_invalid(
        app.import_widget_token(&widget_token(&secret, &eternal))
            .await,
        "token",
    );
    assert!(
        status.message().contains("exp is missing") && status.message().contains("86400"),
        "{}",
        status.message()
    );

    let mut two_days = claims.clone();
    two_days["iat"] = json!(now);
    two_days["exp"] = json!(now + 2 * 86_400);
    let status = assert_invalid(
        app.import_widget_token(&widget_token(&secret, &two_days))
            .await,
        "token",
    );
    assert!(
        status.message().contains("exp") && status.message().contains("at most 86400 seconds"),
        "{}",
        status.message()
    );
    // Without iat the lifetime counts from now.
    let mut no_iat = two_days.clone();
    no_iat.as_object_mut().unwrap().remove("iat");
    assert_invalid(
        app.import_widget_token(&widget_token(&secret, &no_iat))
            .await,
        "token",
    );
    assert!(app.list("").await.is_empty(), "nothing imported");

    // The workspace may allow longer-lived tokens, within bounds.
    let settings = app
        .update_settings(
            pb::WorkspaceSettings {
                widget_token_max_lifetime_seconds: 3 * 86_400,
                ..Default::default()
            },
            &["widget_token_max_lifetime_seconds"],
        )
        .await
        .unwrap();
    assert_eq!(settings.widget_token_max_lifetime_seconds, 3 * 86_400);
    app.import_widget_token(&widget_token(&secret, &two_days))
        .await
        .unwrap();
    for out_of_bounds in [59, 30 * 86_400 + 1] {
        assert_invalid(
            app.update_settings(
                pb::WorkspaceSettings {
                    widget_token_max_lifetime_seconds: out_of_bounds,
                    ..Default::default()
                },
                &["widget_token_max_lifetime_seconds"],
            )
            .await,
            "settings.widget_token_max_lifetime_seconds",
        );
    }
    // Clearing the field (0, as AIP-134's `*` sends it) puts the default back.
    let cleared = app
        .update_settings(
            pb::WorkspaceSettings::default(),
            &["widget_token_max_lifetime_seconds"],
        )
        .await
        .unwrap();
    assert_eq!(cleared.widget_token_max_lifetime_seconds, 86_400);
}

async fn widget_secrets_are_sealed_at_rest(app: TestApp) {
    let first = app.rotate_widget_secret().await.secret;
    let second = app.rotate_widget_secret().await.secret;
    let row = app.settings_row_text().await;
    for secret in [&first, &second] {
        let random_part = secret.trim_start_matches("wsec_");
        assert!(!row.contains(random_part), "secret stored readably: {row}");
    }
    assert!(row.contains("kek1:test-kek:"), "{row}");

    let token = |secret: &str, n: u32| {
        widget_token(
            secret,
            &widget_claims(&format!("u{n}"), &format!("u{n}@example.com"), "uss001"),
        )
    };
    app.import_widget_token(&token(&first, 1)).await.unwrap();
    app.import_widget_token(&token(&second, 2)).await.unwrap();

    // A replica with a rotated keyring (new primary, old key kept) still opens the secrets
    // and seals new ones with the new key.
    let old = app.widget_kek.clone();
    let new = WidgetKeyring::generate("kek-2").unwrap();
    let rotated_keyring = keyring_of(&[&new, &old]);
    let (replica, served) = spawn(&app.database_url, app.backend_name, rotated_keyring).await;
    replica
        .import_widget_token(&token(&second, 3))
        .await
        .unwrap();
    let third = replica.rotate_widget_secret().await.secret;
    assert!(replica.settings_row_text().await.contains("kek1:kek-2:"));
    replica
        .import_widget_token(&token(&third, 4))
        .await
        .unwrap();
    served.stop().await;

    // A replica with a different key-encryption key fails closed: no token verifies, and
    // the caller learns nothing about keys.
    let stranger = WidgetKeyring::generate("test-kek").unwrap();
    let (replica, served) = spawn(&app.database_url, app.backend_name, stranger).await;
    for secret in [&second, &third] {
        let status = assert_code(
            replica.import_widget_token(&token(secret, 5)).await,
            Code::Internal,
        );
        assert!(!status.message().contains("kek"), "{}", status.message());
    }
    // Settings that need no secret still read.
    assert!(
        replica
            .client()
            .get_workspace_settings(replica.admin(pb::GetWorkspaceSettingsRequest {
                workspace_id: WS.into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .widget_secret_set
    );
    served.stop().await;
    assert_code(app.lookup_external_id("u5").await, Code::NotFound);
}

/// A keyring holding the keys of `keyrings`, the first one's key sealing.
fn keyring_of(keyrings: &[&WidgetKeyring]) -> WidgetKeyring {
    let text: String = keyrings
        .iter()
        .map(|keyring| keyring.export_for_tests())
        .collect();
    WidgetKeyring::parse(&text).unwrap()
}

async fn plaintext_secrets_are_sealed_when_the_service_starts(app: TestApp) {
    // A secret written by a release before sealing existed.
    app.rotate_widget_secret().await;
    app.execute_sql(&format!(
        "UPDATE workspace_settings SET widget_secret = 'wsec_legacy-plaintext-secret' WHERE workspace_id = '{WS}'"
    ))
    .await;
    let (restarted, served) =
        spawn(&app.database_url, app.backend_name, app.widget_kek.clone()).await;
    let row = restarted.settings_row_text().await;
    assert!(!row.contains("legacy-plaintext-secret"), "{row}");
    let token = widget_token(
        "wsec_legacy-plaintext-secret",
        &widget_claims("vendor-kirk", "kirk@example.com", "uss001"),
    );
    restarted.import_widget_token(&token).await.unwrap();
    served.stop().await;
}

async fn unreadable_widget_keys_fail_closed(app: TestApp) {
    let secret = app.rotate_widget_secret().await.secret;
    let claims = widget_claims("vendor-kirk", "kirk@example.com", "uss001");
    for corrupt in [
        "'not json'",
        r#"'[{"kid": "k1", "algorithm": "HS512", "public_key_pem": "x"}]'"#,
    ] {
        app.execute_sql(&format!(
            "UPDATE workspace_settings SET widget_keys = {corrupt} WHERE workspace_id = '{WS}'"
        ))
        .await;
        let status = assert_code(
            app.import_widget_token(&widget_token(&secret, &claims))
                .await,
            Code::FailedPrecondition,
        );
        assert!(
            status.message().contains("widget_keys"),
            "{}",
            status.message()
        );
        assert_code(
            app.client()
                .get_workspace_settings(app.admin(pb::GetWorkspaceSettingsRequest {
                    workspace_id: WS.into(),
                }))
                .await,
            Code::FailedPrecondition,
        );
    }
    assert!(app.list("").await.is_empty(), "nothing imported");
    // Setting the keys again repairs it.
    app.update_settings(pb::WorkspaceSettings::default(), &["widget_keys"])
        .await
        .unwrap();
    app.import_widget_token(&widget_token(&secret, &claims))
        .await
        .unwrap();
}
