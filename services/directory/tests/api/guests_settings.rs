//! Guests, their identification, and the workspace rules of who may chat and whether every
//! end-user needs a customer.

use roster_proto::directory::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_code, user};
use crate::on_both_databases;

on_both_databases!(
    guests_get_numbered_ids_and_guest_status,
    no_guests_unless_anyone_may_chat,
    check_chat_access_matrix,
    identify_guest_keeps_id_and_history,
    require_customer_is_enforced_everywhere,
    settings_round_trip_with_etag,
    unreadable_chat_access_fails_closed,
    unreadable_customer_domains_fail_closed,
);

async fn guests_get_numbered_ids_and_guest_status(app: TestApp) {
    let guest = app.create_guest("Visitor from Berlin").await.unwrap();
    assert_eq!(guest.status, pb::UserStatus::Guest as i32);
    assert_eq!(guest.name, "Visitor from Berlin");
    assert!(guest.email.is_empty());
    let digits = guest.external_id.strip_prefix("g-").expect("g- prefix");
    assert_eq!(digits.len(), 9, "{}", guest.external_id);
    assert!(
        digits.chars().all(|c| c.is_ascii_digit()),
        "{}",
        guest.external_id
    );
    let other = app.create_guest("").await.unwrap();
    assert_ne!(other.external_id, guest.external_id);
    assert_ne!(other.user_id, guest.user_id);
    assert_eq!(app.list("status:guest").await.len(), 2);
    let found = app.lookup_external_id(&guest.external_id).await.unwrap();
    assert_eq!(found.user_id, guest.user_id);
}

async fn no_guests_unless_anyone_may_chat(app: TestApp) {
    for access in [pb::ChatAccess::Identified, pb::ChatAccess::Confirmed] {
        app.set_chat_access(access).await;
        let refused = app.create_guest("Visitor").await;
        let status = assert_code(refused, Code::FailedPrecondition);
        assert!(status.message().contains("guest"), "{}", status.message());
    }
    assert!(app.list("status:guest").await.is_empty());
    app.set_chat_access(pb::ChatAccess::Anyone).await;
    app.create_guest("Visitor").await.unwrap();
}

async fn check(app: &TestApp, user_id: &str) -> pb::CheckChatAccessResponse {
    app.client()
        .check_chat_access(app.admin(pb::CheckChatAccessRequest {
            workspace_id: WS.into(),
            user_id: user_id.into(),
        }))
        .await
        .unwrap()
        .into_inner()
}

async fn check_chat_access_matrix(app: TestApp) {
    let guest = app.create_guest("Visitor").await.unwrap();
    let mut new = user("k002", "spock@example.com");
    new.status = pb::UserStatus::Unconfirmed as i32;
    let unconfirmed = app.try_create_user(new).await.unwrap();
    let active = app.create_user("k001", "kirk@example.com", "Kirk").await;
    let deactivated = app.create_user("k003", "khan@example.com", "Khan").await;
    app.deactivate_user(&deactivated.user_id).await.unwrap();

    use pb::ChatAccess::{Anyone, Confirmed, Identified};
    use pb::ChatAccessDenialReason as Why;
    // (user, why not under ANYONE, IDENTIFIED, CONFIRMED; UNSPECIFIED = allowed)
    let table = [
        (
            "guest",
            &guest,
            [
                Why::Unspecified,
                Why::GuestNotAdmitted,
                Why::GuestNotAdmitted,
            ],
        ),
        (
            "unconfirmed",
            &unconfirmed,
            [Why::Unspecified, Why::Unspecified, Why::EmailNotConfirmed],
        ),
        ("active", &active, [Why::Unspecified; 3]),
        ("deactivated", &deactivated, [Why::UserDeactivated; 3]),
    ];
    let mut mismatches = Vec::new();
    for (column, access) in [Anyone, Identified, Confirmed].into_iter().enumerate() {
        app.set_chat_access(access).await;
        for (label, user, why) in &table {
            let answer = check(&app, &user.user_id).await;
            assert_eq!(answer.chat_access, access as i32);
            if answer.denial_reason != why[column] as i32
                || answer.allowed != (why[column] == Why::Unspecified)
            {
                mismatches.push(format!("{label} under {access:?}: {answer:?}"));
            }
            if answer.allowed {
                assert!(answer.reason.is_empty(), "{answer:?}");
            } else {
                assert!(!answer.reason.is_empty(), "{answer:?}");
            }
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");

    // A user of an inactive customer may not chat, whatever the rule.
    app.set_chat_access(Anyone).await;
    app.create_customer("uss001", "USS Enterprise").await;
    let crew = app
        .try_create_user(pb::User {
            customer_id: "uss001".into(),
            ..user("k010", "sulu@example.com")
        })
        .await
        .unwrap();
    assert!(check(&app, &crew.user_id).await.allowed);
    for status in [
        pb::CustomerStatus::Inactive,
        pb::CustomerStatus::InactiveTemporarily,
    ] {
        app.client()
            .set_customer_status(app.admin(pb::SetCustomerStatusRequest {
                workspace_id: WS.into(),
                customer_id: "uss001".into(),
                status: status as i32,
                etag: String::new(),
            }))
            .await
            .unwrap();
        let answer = check(&app, &crew.user_id).await;
        assert!(!answer.allowed, "{status:?}: {answer:?}");
        assert!(answer.reason.contains("uss001"), "{answer:?}");
        assert_eq!(answer.denial_reason, Why::CustomerInactive as i32);
    }
    // Deleted users are denied too.
    app.delete_user(&active.user_id).await.unwrap();
    let answer = check(&app, &active.user_id).await;
    assert!(!answer.allowed);
    assert_eq!(answer.denial_reason, Why::UserRetired as i32);
}

async fn identify_guest_keeps_id_and_history(app: TestApp) {
    let guest = app.create_guest("Visitor").await.unwrap();
    app.record_activity(&guest.user_id, None, 2).await.unwrap();

    let identify = |email_verified: bool, user_id: &str, external_id: &str, email: &str| {
        let mut client = app.client();
        let request = app.admin(pb::IdentifyGuestRequest {
            etag: String::new(),
            workspace_id: WS.into(),
            user_id: user_id.into(),
            external_id: external_id.into(),
            email: email.into(),
            name: "Kirk".into(),
            email_verified,
        });
        async move {
            client
                .identify_guest(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let known = identify(false, &guest.user_id, "k001", "kirk@example.com")
        .await
        .unwrap();
    assert_eq!(known.user_id, guest.user_id);
    assert_eq!(known.status, pb::UserStatus::Unconfirmed as i32);
    assert_eq!(known.conversation_count, 2);
    assert_eq!(known.external_id, "k001");
    assert_eq!(known.email, "kirk@example.com");
    assert_eq!(known.created_at, guest.created_at);
    assert_eq!(app.get_user(&guest.user_id).await.unwrap(), known);
    assert_eq!(
        app.lookup_external_id("k001").await.unwrap().user_id,
        guest.user_id
    );
    assert_code(
        app.lookup_external_id(&guest.external_id).await,
        Code::NotFound,
    );
    // Only guests can be identified.
    assert_code(
        identify(true, &guest.user_id, "k001", "kirk@example.com").await,
        Code::FailedPrecondition,
    );

    // With a verified e-mail the guest becomes ACTIVE; with only an e-mail the guest id goes.
    let other = app.create_guest("Visitor 2").await.unwrap();
    let verified = identify(true, &other.user_id, "", "spock@example.com")
        .await
        .unwrap();
    assert_eq!(verified.status, pb::UserStatus::Active as i32);
    assert!(verified.confirmed_at.is_some());
    assert!(verified.external_id.is_empty(), "{}", verified.external_id);

    // Someone else's e-mail is refused and the guest stays a guest.
    let third = app.create_guest("Visitor 3").await.unwrap();
    assert_code(
        identify(true, &third.user_id, "k003", "KIRK@example.com").await,
        Code::AlreadyExists,
    );
    assert_eq!(
        app.get_user(&third.user_id).await.unwrap().status,
        pb::UserStatus::Guest as i32
    );
}

async fn require_customer_is_enforced_everywhere(app: TestApp) {
    let settings = app
        .update_settings(
            pb::WorkspaceSettings {
                require_customer: true,
                ..Default::default()
            },
            &["require_customer"],
        )
        .await
        .unwrap();
    assert!(settings.require_customer);
    app.create_customer("uss001", "USS Enterprise").await;

    let refused = app.try_create_user(user("k001", "kirk@example.com")).await;
    let status = assert_code(refused, Code::FailedPrecondition);
    assert!(
        status.message().contains("customer"),
        "{}",
        status.message()
    );
    let with_customer = app
        .try_create_user(pb::User {
            customer_id: "uss001".into(),
            ..user("k001", "kirk@example.com")
        })
        .await
        .unwrap();
    assert_eq!(with_customer.customer_id, "uss001");
    assert_code(
        app.upsert(None, user("k002", "spock@example.com"), "")
            .await,
        Code::FailedPrecondition,
    );
    // Taking the customer away is refused too.
    let cleared = app
        .client()
        .update_user(app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: with_customer.user_id.clone(),
                ..Default::default()
            }),
            update_mask: crate::helpers::mask(&["customer_id"]),
        }))
        .await;
    assert_code(cleared, Code::FailedPrecondition);

    // In a CSV the row without a customer fails alone.
    let csv = b"customer_name,customer_id,user_name,user_email,user_id\n\
USS Enterprise,uss001,Spock,spock@example.com,k002\n\
,,Loner,loner@example.com,x001\n\
Planet Express,px002,Fry,fry@example.com,f001\n";
    let result = app.import_csv(csv, 1024, false, false).await.unwrap();
    assert_eq!((result.created, result.failed), (2, 1), "{result:?}");
    assert_eq!(result.failures.len(), 1);
    assert_eq!(result.failures[0].row, 3);
    assert!(result.failures[0].reason.contains("customer"), "{result:?}");
    assert_code(app.lookup_external_id("x001").await, Code::NotFound);
    assert_eq!(
        app.lookup_external_id("f001").await.unwrap().customer_id,
        "px002"
    );
}

async fn settings_round_trip_with_etag(app: TestApp) {
    let defaults = app
        .client()
        .get_workspace_settings(app.admin(pb::GetWorkspaceSettingsRequest {
            workspace_id: WS.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(defaults.workspace_id, WS);
    assert_eq!(defaults.chat_access, pb::ChatAccess::Anyone as i32);
    assert!(!defaults.require_customer);
    assert!(!defaults.widget_secret_set);
    assert_eq!(defaults.widget_secret_grace_seconds, 86_400);
    assert_eq!(defaults.widget_token_max_lifetime_seconds, 86_400);

    let updated = app
        .update_settings(
            pb::WorkspaceSettings {
                chat_access: pb::ChatAccess::Confirmed as i32,
                require_customer: true,
                etag: defaults.etag.clone(),
                ..Default::default()
            },
            &["chat_access"],
        )
        .await
        .unwrap();
    assert_eq!(updated.chat_access, pb::ChatAccess::Confirmed as i32);
    assert!(!updated.require_customer, "not in the mask");
    assert_ne!(updated.etag, defaults.etag);
    let stale = app
        .update_settings(
            pb::WorkspaceSettings {
                require_customer: true,
                etag: defaults.etag.clone(),
                ..Default::default()
            },
            &["require_customer"],
        )
        .await;
    assert_code(stale, Code::Aborted);
    let fetched = app
        .client()
        .get_workspace_settings(app.admin(pb::GetWorkspaceSettingsRequest {
            workspace_id: WS.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, updated);
}

fn get_settings(
    app: &TestApp,
) -> impl std::future::Future<Output = Result<pb::WorkspaceSettings, tonic::Status>> + '_ {
    let mut client = app.client();
    async move {
        client
            .get_workspace_settings(app.admin(pb::GetWorkspaceSettingsRequest {
                workspace_id: WS.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }
}

async fn unreadable_chat_access_fails_closed(app: TestApp) {
    let guest = app.create_guest("Visitor").await.unwrap();
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    // The update drops this process's cached rules, so the next read sees the row.
    app.set_chat_access(pb::ChatAccess::Confirmed).await;
    app.execute_sql(&format!(
        "UPDATE workspace_settings SET chat_access = 'everyone' WHERE workspace_id = '{WS}'"
    ))
    .await;

    for user_id in [&guest.user_id, &kirk.user_id] {
        let status = assert_code(
            app.client()
                .check_chat_access(app.admin(pb::CheckChatAccessRequest {
                    workspace_id: WS.into(),
                    user_id: user_id.clone(),
                }))
                .await,
            Code::FailedPrecondition,
        );
        assert!(
            status.message().contains("chat_access"),
            "{}",
            status.message()
        );
    }
    let status = assert_code(app.create_guest("Visitor").await, Code::FailedPrecondition);
    assert!(
        status.message().contains("chat_access"),
        "{}",
        status.message()
    );
    assert_code(get_settings(&app).await, Code::FailedPrecondition);
    // Changing another setting leaves the unreadable one in place, so it fails unwritten.
    assert_code(
        app.update_settings(
            pb::WorkspaceSettings {
                require_customer: true,
                ..Default::default()
            },
            &["require_customer"],
        )
        .await,
        Code::FailedPrecondition,
    );

    // Setting it again repairs it.
    app.set_chat_access(pb::ChatAccess::Identified).await;
    let settings = get_settings(&app).await.unwrap();
    assert_eq!(settings.chat_access, pb::ChatAccess::Identified as i32);
    assert!(
        !settings.require_customer,
        "the failed update wrote nothing"
    );
    assert!(check(&app, &kirk.user_id).await.allowed);
    assert!(!check(&app, &guest.user_id).await.allowed);
}

async fn unreadable_customer_domains_fail_closed(app: TestApp) {
    app.create_customer("uss001", "USS Enterprise").await;
    app.execute_sql(&format!(
        "UPDATE customers SET domains = 'enterprise.example' WHERE workspace_id = '{WS}' AND customer_id = 'uss001'"
    ))
    .await;
    let got = app
        .client()
        .get_customer(app.admin(pb::GetCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "uss001".into(),
        }))
        .await;
    let status = assert_code(got, Code::FailedPrecondition);
    assert!(status.message().contains("domains"), "{}", status.message());
    assert_code(
        app.client()
            .list_customers(app.admin(pb::ListCustomersRequest {
                workspace_id: WS.into(),
                ..Default::default()
            }))
            .await,
        Code::FailedPrecondition,
    );
}
