//! An end-user's life: deactivation, soft delete and undelete, updates with masks and
//! etags, e-mail confirmation, activity, idempotent creation.

use roster_proto::directory::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_code, mask, ts, us, user};
use crate::on_both_databases;

on_both_databases!(
    deactivate_and_reactivate_restore_the_status,
    deleted_users_are_hidden_unless_asked_for,
    undelete_restores_the_previous_status,
    update_user_changes_only_masked_fields,
    a_new_email_of_an_active_user_is_unconfirmed,
    confirm_user_email_activates,
    record_activity_counts_and_never_moves_back,
    create_user_with_request_id_is_idempotent,
);

async fn deactivate_and_reactivate_restore_the_status(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    let mut unconfirmed = user("k002", "spock@example.com");
    unconfirmed.status = pb::UserStatus::Unconfirmed as i32;
    let spock = app.try_create_user(unconfirmed).await.unwrap();

    for (original, status) in [
        (&kirk, pb::UserStatus::Active),
        (&spock, pb::UserStatus::Unconfirmed),
    ] {
        let off = app.deactivate_user(&original.user_id).await.unwrap();
        assert_eq!(off.status, pb::UserStatus::Deactivated as i32);
        assert_ne!(off.etag, original.etag);
        assert_eq!(
            app.get_user(&original.user_id).await.unwrap().status,
            pb::UserStatus::Deactivated as i32
        );
        // Deactivating twice is a no-op, not an error.
        let again = app.deactivate_user(&original.user_id).await.unwrap();
        assert_eq!(again.etag, off.etag);

        let on = app
            .client()
            .reactivate_user(app.admin(pb::ReactivateUserRequest {
                workspace_id: WS.into(),
                user_id: original.user_id.clone(),
                etag: off.etag.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(on.status, status as i32);
        assert_eq!(
            app.get_user(&original.user_id).await.unwrap().status,
            status as i32
        );
    }
    // A deactivated user still lists (it is not deleted), with its status.
    app.deactivate_user(&kirk.user_id).await.unwrap();
    let listed = app.list("status:deactivated").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].user_id, kirk.user_id);
}

async fn deleted_users_are_hidden_unless_asked_for(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    let spock = app.create_user("k002", "spock@example.com", "Spock").await;
    let deleted = app.delete_user(&kirk.user_id).await.unwrap();
    assert_eq!(deleted.status, pb::UserStatus::Deleted as i32);
    assert!(deleted.deleted_at.is_some());

    let ids = |users: Vec<pb::User>| users.into_iter().map(|u| u.user_id).collect::<Vec<_>>();
    assert_eq!(ids(app.list("").await), vec![spock.user_id.clone()]);
    assert!(app.list("kirk").await.is_empty());
    let (all, _) = app.list_page("", "", 100, "", true).await;
    assert_eq!(all.len(), 2);
    assert_eq!(
        ids(app.list("status:deleted").await),
        vec![kirk.user_id.clone()]
    );
    assert_eq!(
        ids(app.list("kirk status:deleted").await),
        vec![kirk.user_id.clone()]
    );
    // GetUser still returns it.
    let fetched = app.get_user(&kirk.user_id).await.unwrap();
    assert_eq!(fetched.status, pb::UserStatus::Deleted as i32);
    assert_eq!(fetched.email, "kirk@example.com");
    // Deleting again is harmless.
    app.delete_user(&kirk.user_id).await.unwrap();
}

async fn undelete_restores_the_previous_status(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    app.deactivate_user(&kirk.user_id).await.unwrap();
    app.delete_user(&kirk.user_id).await.unwrap();
    let undeleted = app
        .client()
        .undelete_user(app.admin(pb::UndeleteUserRequest {
            etag: String::new(),
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(undeleted.status, pb::UserStatus::Deactivated as i32);
    assert!(undeleted.deleted_at.is_none());
    assert_eq!(app.list("kirk").await.len(), 1);

    // Undeleting a user that is not deleted is a precondition failure.
    let again = app
        .client()
        .undelete_user(app.admin(pb::UndeleteUserRequest {
            etag: String::new(),
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
        }))
        .await;
    assert_code(again, Code::FailedPrecondition);
}

async fn update_user_changes_only_masked_fields(app: TestApp) {
    app.create_customer("uss001", "USS Enterprise").await;
    let mut new = user("k001", "kirk@example.com");
    new.name = "Kirk".into();
    new.city = "Riverside".into();
    let kirk = app.try_create_user(new).await.unwrap();

    let updated = app
        .client()
        .update_user(app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: kirk.user_id.clone(),
                etag: kirk.etag.clone(),
                name: "James T. Kirk".into(),
                phone: "+1 (555) 010-0199".into(),
                customer_id: "uss001".into(),
                avatar_url: "https://cdn.example.com/kirk.png".into(),
                // Not in the mask: ignored.
                title: "Captain".into(),
                // Empty and in the mask: cleared.
                city: String::new(),
                ..Default::default()
            }),
            update_mask: mask(&["name", "user.phone", "customer_id", "avatar_url", "city"]),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "James T. Kirk");
    assert_eq!(updated.phone, "+1 (555) 010-0199");
    assert_eq!(updated.customer_id, "uss001");
    assert_eq!(updated.avatar_url, "https://cdn.example.com/kirk.png");
    assert_eq!(updated.title, "");
    assert_eq!(updated.city, "");
    assert_eq!(updated.email, "kirk@example.com");
    assert_eq!(updated.status, pb::UserStatus::Active as i32);
    assert_ne!(updated.etag, kirk.etag);
    let fetched = app.get_user(&kirk.user_id).await.unwrap();
    assert_eq!(fetched, updated);
    // The new values are searchable.
    assert_eq!(app.list("customer:uss001").await.len(), 1);
    assert_eq!(app.list("name:\"james t\"").await.len(), 1);

    // A customer that does not exist is refused.
    let missing = app
        .client()
        .update_user(app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: kirk.user_id.clone(),
                customer_id: "nobody".into(),
                ..Default::default()
            }),
            update_mask: mask(&["customer_id"]),
        }))
        .await;
    assert_code(missing, Code::FailedPrecondition);
}

async fn a_new_email_of_an_active_user_is_unconfirmed(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    assert_eq!(kirk.status, pb::UserStatus::Active as i32);
    assert!(kirk.confirmed_at.is_some());

    let change_email = |email: &str| {
        let mut client = app.client();
        let request = app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: kirk.user_id.clone(),
                email: email.into(),
                ..Default::default()
            }),
            update_mask: mask(&["email"]),
        });
        async move {
            client
                .update_user(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    // Only the case changes: the same address, still confirmed.
    let same = change_email("Kirk@Example.com").await.unwrap();
    assert_eq!(same.status, pb::UserStatus::Active as i32);
    assert!(same.confirmed_at.is_some());

    let moved = change_email("jim@example.com").await.unwrap();
    assert_eq!(moved.status, pb::UserStatus::Unconfirmed as i32);
    assert!(moved.confirmed_at.is_none());
    let found = app
        .lookup(pb::lookup_user_request::Key::Email(
            "JIM@example.com".into(),
        ))
        .await
        .unwrap();
    assert_eq!(found.user_id, kirk.user_id);
    assert_code(
        app.lookup(pb::lookup_user_request::Key::Email(
            "kirk@example.com".into(),
        ))
        .await,
        Code::NotFound,
    );
}

async fn confirm_user_email_activates(app: TestApp) {
    let mut new = user("k001", "kirk@example.com");
    new.status = pb::UserStatus::Unconfirmed as i32;
    let kirk = app.try_create_user(new).await.unwrap();
    assert_eq!(kirk.status, pb::UserStatus::Unconfirmed as i32);
    assert!(kirk.confirmed_at.is_none());

    app.clock.advance_secs(60);
    let confirmed = app
        .client()
        .confirm_user_email(app.admin(pb::ConfirmUserEmailRequest {
            etag: String::new(),
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(confirmed.status, pb::UserStatus::Active as i32);
    let confirmed_at = us(confirmed.confirmed_at.as_ref());
    assert!(confirmed_at >= us(kirk.created_at.as_ref()) + 60_000_000);
    assert_eq!(app.get_user(&kirk.user_id).await.unwrap(), confirmed);

    // A deactivated user cannot confirm.
    app.deactivate_user(&kirk.user_id).await.unwrap();
    let refused = app
        .client()
        .confirm_user_email(app.admin(pb::ConfirmUserEmailRequest {
            etag: String::new(),
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
        }))
        .await;
    assert_code(refused, Code::FailedPrecondition);
}

async fn record_activity_counts_and_never_moves_back(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    assert!(kirk.last_activity_at.is_none());
    assert_eq!(kirk.conversation_count, 0);

    let created = us(kirk.created_at.as_ref());
    let later = created + 3_600_000_000;
    let after = app
        .record_activity(&kirk.user_id, Some(ts(later)), 2)
        .await
        .unwrap();
    assert_eq!(us(after.last_activity_at.as_ref()), later);
    assert_eq!(after.conversation_count, 2);

    // Older activity counts its conversations but leaves last_activity_at alone.
    let older = app
        .record_activity(&kirk.user_id, Some(ts(created)), 1)
        .await
        .unwrap();
    assert_eq!(us(older.last_activity_at.as_ref()), later);
    assert_eq!(older.conversation_count, 3);

    // Without a time, now counts (the service's clock).
    app.clock.advance_secs(7200);
    let now = app.record_activity(&kirk.user_id, None, 0).await.unwrap();
    assert!(us(now.last_activity_at.as_ref()) > later);
    assert_eq!(now.conversation_count, 3);
    let fetched = app.get_user(&kirk.user_id).await.unwrap();
    assert_eq!(fetched.last_activity_at, now.last_activity_at);
    assert_eq!(fetched.conversation_count, 3);

    // Retired users record nothing.
    app.delete_user(&kirk.user_id).await.unwrap();
    assert_code(
        app.record_activity(&kirk.user_id, None, 1).await,
        Code::FailedPrecondition,
    );
}

async fn create_user_with_request_id_is_idempotent(app: TestApp) {
    let request_id = uuid::Uuid::new_v4().to_string();
    let create = |external_id: &str| {
        app.create_user_once(
            user(external_id, &format!("{external_id}@example.com")),
            &request_id,
        )
    };
    let first = create("k001").await.unwrap();
    let retry = create("k001").await.unwrap();
    assert_eq!(retry.user_id, first.user_id);
    assert_eq!(app.list("").await.len(), 1);
    let created_events = app.count_events("end_user.created").await;
    assert_eq!(created_events, 1);

    // Without a request id the retry is a duplicate.
    let duplicate = app.try_create_user(user("k001", "k001@example.com")).await;
    assert_code(duplicate, Code::AlreadyExists);

    // A request id must be a UUID.
    let bad = app
        .client()
        .create_user(app.admin(pb::CreateUserRequest {
            workspace_id: WS.into(),
            user: Some(user("k009", "k009@example.com")),
            request_id: "retry-1".into(),
        }))
        .await;
    crate::helpers::assert_invalid(bad, "request_id");
}
