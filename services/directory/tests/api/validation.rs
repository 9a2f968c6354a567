//! Bad input gets INVALID_ARGUMENT with field violations; unknown ids NOT_FOUND; duplicates
//! ALREADY_EXISTS; stale etags ABORTED; oversized messages RESOURCE_EXHAUSTED. A refused
//! change leaves nothing behind.

use roster_proto::directory::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_code, assert_invalid, field_violations, mask, user};
use crate::on_both_databases;

on_both_databases!(
    user_fields_are_validated_with_field_violations,
    ids_and_workspace_are_validated,
    update_masks_are_validated,
    list_parameters_and_filters_are_validated,
    unknown_ids_are_not_found,
    duplicate_keys_among_live_users_already_exist,
    stale_etags_are_aborted,
    oversized_messages_are_resource_exhausted,
);

const UNKNOWN_USER: &str = "0190f0e1-0000-7000-8000-000000000000";

async fn user_fields_are_validated_with_field_violations(app: TestApp) {
    let with = |change: fn(&mut pb::User)| {
        let mut user = user("k001", "kirk@example.com");
        change(&mut user);
        user
    };
    let cases: [(&str, pb::User); 7] = [
        (
            "user.email",
            with(|u| u.email = "kirk-at-example.com".into()),
        ),
        ("user.email", with(|u| u.email = "kirk@example".into())),
        (
            "user.avatar_url",
            with(|u| u.avatar_url = "ftp://cdn.example.com/k.png".into()),
        ),
        (
            "user.avatar_url",
            with(|u| u.avatar_url = "not a url".into()),
        ),
        ("user.name", with(|u| u.name = "K".repeat(201))),
        ("user.phone", with(|u| u.phone = "call me maybe".into())),
        (
            "user.customer_id",
            with(|u| u.customer_id = "uss 001".into()),
        ),
    ];
    for (field, bad) in cases {
        let status = assert_invalid(app.try_create_user(bad.clone()).await, field);
        let violations = field_violations(&status);
        assert!(
            violations
                .iter()
                .all(|(_, description)| !description.is_empty()),
            "{violations:?}"
        );
        // The same rules hold on the import path.
        assert_invalid(app.upsert(None, bad, "").await, field);
    }

    // Several bad fields are all reported at once.
    let mut many = user("k001", "nope");
    many.phone = "x".into();
    let status = assert_code(app.try_create_user(many).await, Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&status)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert!(
        fields.contains(&"user.email".to_owned()) && fields.contains(&"user.phone".to_owned()),
        "{fields:?}"
    );

    // A name of exactly 200 characters is fine; nothing was written by the failures.
    let mut ok = user("k001", "kirk@example.com");
    ok.name = "K".repeat(200);
    app.try_create_user(ok).await.unwrap();
    assert_eq!(app.list("").await.len(), 1);

    // Customers too.
    let bad_customer = app
        .client()
        .create_customer(app.admin(pb::CreateCustomerRequest {
            request_id: String::new(),
            workspace_id: WS.into(),
            customer: Some(pb::Customer {
                customer_id: "uss/001".into(),
                name: "USS Enterprise".into(),
                ..Default::default()
            }),
        }))
        .await;
    assert_invalid(bad_customer, "customer.customer_id");
    let bad_domain = app
        .client()
        .create_customer(app.admin(pb::CreateCustomerRequest {
            request_id: String::new(),
            workspace_id: WS.into(),
            customer: Some(pb::Customer {
                customer_id: "uss001".into(),
                name: "USS Enterprise".into(),
                domains: vec!["not a domain".into()],
                ..Default::default()
            }),
        }))
        .await;
    assert_invalid(bad_domain, "customer.domains[0]");
}

async fn ids_and_workspace_are_validated(app: TestApp) {
    // Non-UUID user ids, on every kind of call that takes one.
    assert_invalid(app.get_user("not-a-uuid").await, "user_id");
    assert_invalid(app.deactivate_user("12345").await, "user_id");
    let merge = app
        .client()
        .merge_users(app.admin(pb::MergeUsersRequest {
            request_id: String::new(),
            source_etag: String::new(),
            target_etag: String::new(),
            workspace_id: WS.into(),
            source_user_id: "abc".into(),
            target_user_id: UNKNOWN_USER.into(),
        }))
        .await;
    assert_invalid(merge, "source_user_id");
    let update = app
        .client()
        .update_user(app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: "kirk".into(),
                name: "Kirk".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        }))
        .await;
    assert_invalid(update, "user.user_id");

    // Bad customer id on a lookup.
    let get_customer = app
        .client()
        .get_customer(app.admin(pb::GetCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "uss 001".into(),
        }))
        .await;
    assert_invalid(get_customer, "customer_id");

    // Bad workspace ids, with a token that grants every workspace so that only the id is
    // wrong.
    let service = app.service_token(&crate::helpers::ALL_PERMISSIONS);
    for workspace_id in ["", "de/mo", "a b", &"w".repeat(65)] {
        let result = app
            .client()
            .get_workspace_settings(app.with_token(
                &service,
                pb::GetWorkspaceSettingsRequest {
                    workspace_id: workspace_id.to_owned(),
                },
            ))
            .await;
        assert_invalid(result, "workspace_id");
    }

    // Bad e-mail on a lookup; LookupUser without a key.
    assert_invalid(
        app.lookup(pb::lookup_user_request::Key::Email("nope".into()))
            .await,
        "email",
    );
    let no_key = app
        .client()
        .lookup_user(app.admin(pb::LookupUserRequest {
            workspace_id: WS.into(),
            key: None,
        }))
        .await;
    assert_invalid(no_key, "key");

    // RecordActivity bounds.
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    assert_invalid(
        app.record_activity(&kirk.user_id, None, -1).await,
        "conversations_started",
    );
}

async fn update_masks_are_validated(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    let update = |paths: Option<prost_types::FieldMask>| {
        let mut client = app.client();
        let request = app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: kirk.user_id.clone(),
                name: "James T. Kirk".into(),
                status: pb::UserStatus::Deactivated as i32,
                ..Default::default()
            }),
            update_mask: paths,
        });
        async move { client.update_user(request).await }
    };
    // An omitted mask updates the populated fields (contract::update_masks_follow_aip_134).
    let unknown = assert_invalid(update(mask(&["name", "shoe_size"])).await, "update_mask");
    assert!(
        unknown.message().contains("shoe_size"),
        "{}",
        unknown.message()
    );
    // Output-only fields are not updatable through the mask.
    let status = assert_invalid(update(mask(&["status"])).await, "update_mask");
    assert!(
        status.message().contains("'status'"),
        "{}",
        status.message()
    );

    // Nothing changed.
    let after = app.get_user(&kirk.user_id).await.unwrap();
    assert_eq!((after.name.as_str(), &after.etag), ("Kirk", &kirk.etag));

    // Customers and settings masks as well.
    app.create_customer("uss001", "USS Enterprise").await;
    let customer = app
        .client()
        .update_customer(app.admin(pb::UpdateCustomerRequest {
            workspace_id: WS.into(),
            customer: Some(pb::Customer {
                customer_id: "uss001".into(),
                name: "X".into(),
                ..Default::default()
            }),
            update_mask: mask(&["status"]),
        }))
        .await;
    assert_invalid(customer, "update_mask");
    assert_invalid(
        app.update_settings(pb::WorkspaceSettings::default(), &["color"])
            .await,
        "update_mask",
    );
    assert_invalid(
        app.update_settings(
            pb::WorkspaceSettings {
                widget_secret_grace_seconds: -1,
                ..Default::default()
            },
            &["widget_secret_grace_seconds"],
        )
        .await,
        "settings.widget_secret_grace_seconds",
    );
}

async fn list_parameters_and_filters_are_validated(app: TestApp) {
    let list = |page_size: i32, filter: &str, order_by: &str| {
        let mut client = app.client();
        let request = app.admin(pb::ListUsersRequest {
            workspace_id: WS.into(),
            page_size,
            page_token: String::new(),
            filter: filter.into(),
            order_by: order_by.into(),
            show_deleted: false,
        });
        async move { client.list_users(request).await }
    };
    assert_invalid(list(-1, "", "").await, "page_size");
    let order = assert_invalid(list(0, "", "shoe_size").await, "order_by");
    assert!(order.message().contains("shoe_size"), "{}", order.message());
    assert_invalid(list(0, "", "email sideways").await, "order_by");

    let unterminated = assert_invalid(list(0, "kirk name:\"jean luc", "").await, "filter");
    assert!(
        unterminated.message().contains("unterminated quote")
            && unterminated.message().contains("position 11"),
        "{}",
        unterminated.message()
    );
    let unknown = assert_invalid(list(0, "kirk  foo:bar", "").await, "filter");
    assert!(
        unknown.message().contains("unknown field 'foo'")
            && unknown.message().contains("position 7"),
        "{}",
        unknown.message()
    );
    let bad_status = assert_invalid(list(0, "status:actve", "").await, "filter");
    assert!(
        bad_status.message().contains("actve"),
        "{}",
        bad_status.message()
    );
    let bad_date = assert_invalid(list(0, "created_at>=yesterday", "").await, "filter");
    assert!(
        bad_date.message().contains("position"),
        "{}",
        bad_date.message()
    );
    assert_invalid(list(0, "kirk OR spock", "").await, "filter");

    let customers = app
        .client()
        .list_customers(app.admin(pb::ListCustomersRequest {
            workspace_id: WS.into(),
            page_size: -5,
            ..Default::default()
        }))
        .await;
    assert_invalid(customers, "page_size");
    let token = app
        .client()
        .list_users(app.admin(pb::ListUsersRequest {
            workspace_id: WS.into(),
            page_token: "garbage!".into(),
            ..Default::default()
        }))
        .await;
    assert_invalid(token, "page_token");
}

async fn unknown_ids_are_not_found(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    assert_code(app.get_user(UNKNOWN_USER).await, Code::NotFound);
    assert_code(app.deactivate_user(UNKNOWN_USER).await, Code::NotFound);
    assert_code(app.delete_user(UNKNOWN_USER).await, Code::NotFound);
    assert_code(
        app.record_activity(UNKNOWN_USER, None, 1).await,
        Code::NotFound,
    );
    assert_code(app.lookup_external_id("nobody").await, Code::NotFound);
    assert_code(
        app.lookup(pb::lookup_user_request::Key::Email(
            "nobody@example.com".into(),
        ))
        .await,
        Code::NotFound,
    );
    let update = app
        .client()
        .update_user(app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: UNKNOWN_USER.into(),
                name: "Ghost".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        }))
        .await;
    assert_code(update, Code::NotFound);
    let merge = app
        .client()
        .merge_users(app.admin(pb::MergeUsersRequest {
            request_id: String::new(),
            source_etag: String::new(),
            target_etag: String::new(),
            workspace_id: WS.into(),
            source_user_id: kirk.user_id.clone(),
            target_user_id: UNKNOWN_USER.into(),
        }))
        .await;
    assert_code(merge, Code::NotFound);
    let access = app
        .client()
        .check_chat_access(app.admin(pb::CheckChatAccessRequest {
            workspace_id: WS.into(),
            user_id: UNKNOWN_USER.into(),
        }))
        .await;
    assert_code(access, Code::NotFound);
    let customer = app
        .client()
        .get_customer(app.admin(pb::GetCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "nobody".into(),
        }))
        .await;
    assert_code(customer, Code::NotFound);
    let customer = app
        .client()
        .update_customer(app.admin(pb::UpdateCustomerRequest {
            workspace_id: WS.into(),
            customer: Some(pb::Customer {
                customer_id: "nobody".into(),
                name: "X".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        }))
        .await;
    assert_code(customer, Code::NotFound);
    // A user of another workspace is not found here.
    let other = app.token(&["other"], "admin", &[]);
    let elsewhere = app
        .client()
        .get_user(app.with_token(
            &other,
            pb::GetUserRequest {
                workspace_id: "other".into(),
                user_id: kirk.user_id,
            },
        ))
        .await;
    assert_code(elsewhere, Code::NotFound);
}

async fn duplicate_keys_among_live_users_already_exist(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    let events_before = app.pending_events().await.len();

    let same_external = app.try_create_user(user("k001", "other@example.com")).await;
    let status = assert_code(same_external, Code::AlreadyExists);
    assert!(status.message().contains("k001"), "{}", status.message());
    let same_email = app.try_create_user(user("k002", "KIRK@example.COM")).await;
    assert_code(same_email, Code::AlreadyExists);

    // Taking another user's e-mail or external id by update is refused too.
    let spock = app.create_user("k002", "spock@example.com", "Spock").await;
    let events_before_update = app.pending_events().await.len();
    for (path, value) in [("email", "Kirk@Example.com"), ("external_id", "k001")] {
        let mut message = pb::User {
            user_id: spock.user_id.clone(),
            ..Default::default()
        };
        match path {
            "email" => message.email = value.into(),
            _ => message.external_id = value.into(),
        }
        let taken = app
            .client()
            .update_user(app.admin(pb::UpdateUserRequest {
                workspace_id: WS.into(),
                user: Some(message),
                update_mask: mask(&[path]),
            }))
            .await;
        assert_code(taken, Code::AlreadyExists);
    }
    assert_eq!(app.get_user(&spock.user_id).await.unwrap().etag, spock.etag);
    assert_eq!(app.pending_events().await.len(), events_before_update);
    assert_eq!(events_before + 1, events_before_update);

    // Once the holder is deleted, both values are free again.
    app.delete_user(&kirk.user_id).await.unwrap();
    let new_kirk = app
        .try_create_user(user("k001", "kirk@example.com"))
        .await
        .unwrap();
    assert_ne!(new_kirk.user_id, kirk.user_id);
    let found = app.lookup_external_id("k001").await.unwrap();
    assert_eq!(found.user_id, new_kirk.user_id);
    // ... and the deleted one cannot be undeleted while its values are taken.
    let undelete = app
        .client()
        .undelete_user(app.admin(pb::UndeleteUserRequest {
            etag: String::new(),
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
        }))
        .await;
    assert_code(undelete, Code::AlreadyExists);
    assert_eq!(
        app.get_user(&kirk.user_id).await.unwrap().status,
        pb::UserStatus::Deleted as i32
    );

    // Customers: a duplicate customer id.
    app.create_customer("uss001", "USS Enterprise").await;
    let duplicate = app
        .client()
        .create_customer(app.admin(pb::CreateCustomerRequest {
            request_id: String::new(),
            workspace_id: WS.into(),
            customer: Some(pb::Customer {
                customer_id: "uss001".into(),
                name: "Again".into(),
                ..Default::default()
            }),
        }))
        .await;
    assert_code(duplicate, Code::AlreadyExists);
}

async fn stale_etags_are_aborted(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    let renamed = app
        .client()
        .update_user(app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: kirk.user_id.clone(),
                name: "James T. Kirk".into(),
                etag: kirk.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(renamed.etag, kirk.etag);
    let stale = kirk.etag.clone();

    let update = app
        .client()
        .update_user(app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: kirk.user_id.clone(),
                name: "Jim".into(),
                etag: stale.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        }))
        .await;
    let status = assert_code(update, Code::Aborted);
    assert!(status.message().contains("etag"), "{}", status.message());
    let deactivate = app
        .client()
        .deactivate_user(app.admin(pb::DeactivateUserRequest {
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
            etag: stale.clone(),
        }))
        .await;
    assert_code(deactivate, Code::Aborted);
    let delete = app
        .client()
        .delete_user(app.admin(pb::DeleteUserRequest {
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
            etag: stale.clone(),
        }))
        .await;
    assert_code(delete, Code::Aborted);
    let after = app.get_user(&kirk.user_id).await.unwrap();
    assert_eq!(
        (after.name.as_str(), after.status, &after.etag),
        (
            "James T. Kirk",
            pb::UserStatus::Active as i32,
            &renamed.etag
        )
    );
    // The current etag works.
    app.client()
        .deactivate_user(app.admin(pb::DeactivateUserRequest {
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
            etag: renamed.etag.clone(),
        }))
        .await
        .unwrap();

    // A malformed etag is a bad argument, not a mismatch.
    let garbage = app
        .client()
        .delete_user(app.admin(pb::DeleteUserRequest {
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
            etag: "yesterday".into(),
        }))
        .await;
    assert_invalid(garbage, "etag");

    let customer = app.create_customer("uss001", "USS Enterprise").await;
    let update_customer = |name: &str, etag: &str| {
        let mut client = app.client();
        let request = app.admin(pb::UpdateCustomerRequest {
            workspace_id: WS.into(),
            customer: Some(pb::Customer {
                customer_id: "uss001".into(),
                name: name.into(),
                etag: etag.into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        });
        async move { client.update_customer(request).await }
    };
    update_customer("NCC-1701", &customer.etag).await.unwrap();
    assert_code(
        update_customer("NCC-1701-A", &customer.etag).await,
        Code::Aborted,
    );
    let stored = app
        .client()
        .get_customer(app.admin(pb::GetCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "uss001".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.name, "NCC-1701");
}

async fn oversized_messages_are_resource_exhausted(app: TestApp) {
    // The test server accepts messages up to 1 MiB.
    let huge = pb::Customer {
        customer_id: "uss001".into(),
        name: "USS Enterprise".into(),
        notes: "n".repeat(2 * 1024 * 1024),
        ..Default::default()
    };
    let result = app
        .client()
        .create_customer(app.admin(pb::CreateCustomerRequest {
            request_id: String::new(),
            workspace_id: WS.into(),
            customer: Some(huge),
        }))
        .await;
    assert_code(result, Code::ResourceExhausted);
    // Nothing was created, and the connection still serves.
    let gone = app
        .client()
        .get_customer(app.admin(pb::GetCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "uss001".into(),
        }))
        .await;
    assert_code(gone, Code::NotFound);

    // Notes within the message limit but over the field limit are a field violation.
    let long_notes = pb::Customer {
        customer_id: "uss001".into(),
        name: "USS Enterprise".into(),
        notes: "n".repeat(4001),
        ..Default::default()
    };
    let result = app
        .client()
        .create_customer(app.admin(pb::CreateCustomerRequest {
            request_id: String::new(),
            workspace_id: WS.into(),
            customer: Some(long_notes),
        }))
        .await;
    assert_invalid(result, "customer.notes");
}
