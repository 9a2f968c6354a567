//! Widget tokens: the vendor's backend signs its user's identity with the workspace's
//! widget secret; the directory verifies it and imports customer and user. Secrets rotate
//! with a grace period for the previous one.

use roster_proto::directory::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_code, assert_invalid, us, widget_claims, widget_token};
use crate::on_both_databases;

on_both_databases!(
    a_signed_token_imports_customer_and_user,
    no_secret_yet_is_a_failed_precondition,
    rotation_keeps_the_old_secret_for_the_grace_period,
    bad_tokens_are_refused,
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
