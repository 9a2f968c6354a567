//! Statuses never jump: whatever chain of deactivation, deletion, undeletion and
//! reactivation a user goes through, it comes back to the status it started from, and
//! `confirmed_at` stays the truth for chat access.

use roster_proto::directory::v1 as pb;

use crate::helpers::{TestApp, WS, mask, user};
use crate::on_both_databases;

on_both_databases!(
    deactivate_delete_undelete_reactivate_returns_each_status,
    undeleting_through_upsert_keeps_the_deactivation,
    a_deactivated_user_with_a_new_email_comes_back_unconfirmed,
);

/// Whether the user may chat under `access`.
async fn may_chat(app: &TestApp, user_id: &str, access: pb::ChatAccess) -> bool {
    app.set_chat_access(access).await;
    app.client()
        .check_chat_access(app.admin(pb::CheckChatAccessRequest {
            workspace_id: WS.into(),
            user_id: user_id.into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .allowed
}

async fn reactivate(app: &TestApp, user_id: &str) -> pb::User {
    app.client()
        .reactivate_user(app.admin(pb::ReactivateUserRequest {
            workspace_id: WS.into(),
            user_id: user_id.into(),
            etag: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
}

async fn undelete(app: &TestApp, user_id: &str) -> pb::User {
    app.client()
        .undelete_user(app.admin(pb::UndeleteUserRequest {
            workspace_id: WS.into(),
            user_id: user_id.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
}

/// Checks a step of the chain: the status the call answered and GetUser reads, that
/// `confirmed_at` never moved, and what chat access says under the strictest and the most
/// permissive rule.
async fn check_step(
    app: &TestApp,
    step: &str,
    answered: &pb::User,
    status: pb::UserStatus,
    confirmed_at: Option<&prost_types::Timestamp>,
    chat: (bool, bool),
) {
    let stored = app.get_user(&answered.user_id).await.unwrap();
    for (read, user) in [("answer", answered), ("GetUser", &stored)] {
        assert_eq!(
            pb::UserStatus::try_from(user.status),
            Ok(status),
            "{step}: status in the {read}"
        );
        assert_eq!(
            user.confirmed_at.as_ref(),
            confirmed_at,
            "{step}: confirmed_at in the {read}"
        );
    }
    let confirmed_only = may_chat(app, &answered.user_id, pb::ChatAccess::Confirmed).await;
    let anyone = may_chat(app, &answered.user_id, pb::ChatAccess::Anyone).await;
    assert_eq!(
        (confirmed_only, anyone),
        chat,
        "{step}: chat access (CONFIRMED, ANYONE)"
    );
}

async fn deactivate_delete_undelete_reactivate_returns_each_status(app: TestApp) {
    app.set_chat_access(pb::ChatAccess::Anyone).await;
    let active = app.create_user("k001", "kirk@example.com", "Kirk").await;
    let mut new = user("k002", "spock@example.com");
    new.status = pb::UserStatus::Unconfirmed as i32;
    let unconfirmed = app.try_create_user(new).await.unwrap();
    let guest = app.create_guest("Guest 1").await.unwrap();

    for (start, status, chat) in [
        (&active, pb::UserStatus::Active, (true, true)),
        (&unconfirmed, pb::UserStatus::Unconfirmed, (false, true)),
        (&guest, pb::UserStatus::Guest, (false, true)),
    ] {
        let id = start.user_id.as_str();
        let confirmed_at = start.confirmed_at.as_ref();
        assert_eq!(confirmed_at.is_some(), status == pb::UserStatus::Active);
        let off = (false, false);
        check_step(&app, "created", start, status, confirmed_at, chat).await;

        let deactivated = app.deactivate_user(id).await.unwrap();
        check_step(
            &app,
            "deactivated",
            &deactivated,
            pb::UserStatus::Deactivated,
            confirmed_at,
            off,
        )
        .await;

        let deleted = app.delete_user(id).await.unwrap();
        check_step(
            &app,
            "deleted",
            &deleted,
            pb::UserStatus::Deleted,
            confirmed_at,
            off,
        )
        .await;

        let undeleted = undelete(&app, id).await;
        check_step(
            &app,
            "undeleted",
            &undeleted,
            pb::UserStatus::Deactivated,
            confirmed_at,
            off,
        )
        .await;

        let reactivated = reactivate(&app, id).await;
        check_step(
            &app,
            "reactivated",
            &reactivated,
            status,
            confirmed_at,
            chat,
        )
        .await;

        // The shorter chains land on the same statuses.
        let deleted = app.delete_user(id).await.unwrap();
        check_step(
            &app,
            "deleted directly",
            &deleted,
            pb::UserStatus::Deleted,
            confirmed_at,
            off,
        )
        .await;
        let undeleted = undelete(&app, id).await;
        check_step(&app, "undeleted", &undeleted, status, confirmed_at, chat).await;
    }
}

async fn undeleting_through_upsert_keeps_the_deactivation(app: TestApp) {
    let mut new = user("k002", "spock@example.com");
    new.status = pb::UserStatus::Unconfirmed as i32;
    let spock = app.try_create_user(new).await.unwrap();
    app.deactivate_user(&spock.user_id).await.unwrap();
    app.delete_user(&spock.user_id).await.unwrap();

    let upserted = app
        .upsert(None, user("k002", "spock@example.com"), "")
        .await
        .unwrap();
    assert_eq!(upserted.outcome, pb::UpsertOutcome::Undeleted as i32);
    let back = upserted.user.unwrap();
    assert_eq!(back.user_id, spock.user_id);
    check_step(
        &app,
        "undeleted by upsert",
        &back,
        pb::UserStatus::Deactivated,
        None,
        (false, false),
    )
    .await;
    let reactivated = reactivate(&app, &spock.user_id).await;
    check_step(
        &app,
        "reactivated",
        &reactivated,
        pb::UserStatus::Unconfirmed,
        None,
        (false, true),
    )
    .await;
}

async fn a_deactivated_user_with_a_new_email_comes_back_unconfirmed(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    app.deactivate_user(&kirk.user_id).await.unwrap();
    let changed = app
        .client()
        .update_user(app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: kirk.user_id.clone(),
                email: "jim@example.com".into(),
                ..Default::default()
            }),
            update_mask: mask(&["email"]),
        }))
        .await
        .unwrap()
        .into_inner();
    // Nobody has confirmed the new address.
    check_step(
        &app,
        "new e-mail while deactivated",
        &changed,
        pb::UserStatus::Deactivated,
        None,
        (false, false),
    )
    .await;
    let reactivated = reactivate(&app, &kirk.user_id).await;
    check_step(
        &app,
        "reactivated",
        &reactivated,
        pb::UserStatus::Unconfirmed,
        None,
        (false, true),
    )
    .await;
}
