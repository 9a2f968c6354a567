//! The contract's cross-cutting promises: machine-readable error details on every refusal,
//! request ids bound to the request's content, and etags on every state change of a user.

use std::future::Future;
use std::pin::Pin;

use roster_proto::directory::v1 as pb;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;
use uuid::Uuid;

use crate::helpers::{TestApp, WS, assert_code, assert_invalid, mask, user};
use crate::on_both_databases;

on_both_databases!(
    refusals_carry_reason_resource_and_retry_details,
    unauthenticated_calls_carry_the_auth_reason,
    oversize_messages_carry_the_runtime_reason,
    creates_with_a_request_id_replay_and_refuse_other_content,
    record_activity_counts_once_per_request_id,
    merge_users_replays_its_request_id,
    rotate_widget_secret_replays_while_the_secret_is_current,
    concurrent_retries_of_one_activity_count_once,
    request_ids_are_forgotten_after_the_window,
    stale_etags_abort_every_user_state_change,
    update_masks_follow_aip_134,
);

const USER: &str = "roster.directory.v1.User";
const CUSTOMER: &str = "roster.directory.v1.Customer";

type Call<'a> = Pin<Box<dyn Future<Output = Result<(), Status>> + Send + 'a>>;

fn call<'a, T: Send + 'a>(
    future: impl Future<Output = Result<tonic::Response<T>, Status>> + Send + 'a,
) -> Call<'a> {
    Box::pin(async move { future.await.map(|_| ()) })
}

/// What a client decodes from a refusal: code, ErrorInfo (domain, reason), ResourceInfo
/// (type, name) and whether a RetryInfo came along.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    code: Code,
    domain: String,
    reason: String,
    resource: Option<(String, String)>,
    retry: bool,
}

fn refusal(status: &Status) -> Refusal {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo on {status:?}"));
    Refusal {
        code: status.code(),
        domain: info.domain,
        reason: info.reason,
        resource: status
            .get_details_resource_info()
            .map(|resource| (resource.resource_type, resource.resource_name)),
        retry: status.get_details_retry_info().is_some(),
    }
}

fn expected(code: Code, reason: &str, resource: Option<(&str, &str)>) -> Refusal {
    Refusal {
        code,
        domain: "directory.roster".into(),
        reason: reason.into(),
        resource: resource.map(|(kind, name)| (kind.to_owned(), name.to_owned())),
        retry: matches!(
            code,
            Code::Aborted | Code::Unavailable | Code::ResourceExhausted
        ),
    }
}

async fn refusals_carry_reason_resource_and_retry_details(app: TestApp) {
    let kirk = app.create_user("kirk", "kirk@example.com", "Kirk").await;
    app.create_customer("uss", "USS Enterprise").await;
    let gone = app.create_user("gone", "gone@example.com", "Gone").await;
    app.delete_user(&gone.user_id).await.unwrap();
    let missing = Uuid::now_v7().to_string();
    let other_workspace = app.token(&["elsewhere"], "admin", &[]);
    let viewer = app.token(&[WS], "viewer", &[]);
    let mut client = app.client();
    let mut c2 = app.client();
    let mut c3 = app.client();
    let mut c4 = app.client();
    let mut c5 = app.client();
    let mut c6 = app.client();
    let mut c7 = app.client();
    let mut c8 = app.client();
    let mut c9 = app.client();
    let mut c10 = app.client();

    let table: Vec<(&str, Call<'_>, Refusal)> = vec![
        (
            "GetUser of an unknown id",
            call(client.get_user(app.admin(pb::GetUserRequest {
                workspace_id: WS.into(),
                user_id: missing.clone(),
            }))),
            expected(Code::NotFound, "END_USER_NOT_FOUND", Some((USER, &missing))),
        ),
        (
            "GetCustomer of an unknown id",
            call(c2.get_customer(app.admin(pb::GetCustomerRequest {
                workspace_id: WS.into(),
                customer_id: "nope".into(),
            }))),
            expected(
                Code::NotFound,
                "CUSTOMER_NOT_FOUND",
                Some((CUSTOMER, "nope")),
            ),
        ),
        (
            "CreateUser with a taken e-mail",
            call(c3.create_user(app.admin(pb::CreateUserRequest {
                workspace_id: WS.into(),
                user: Some(user("kirk-2", "KIRK@example.com")),
                request_id: String::new(),
            }))),
            expected(
                Code::AlreadyExists,
                "EMAIL_TAKEN",
                Some((USER, &kirk.user_id)),
            ),
        ),
        (
            "CreateUser with a taken external id",
            call(c4.create_user(app.admin(pb::CreateUserRequest {
                workspace_id: WS.into(),
                user: Some(user("kirk", "")),
                request_id: String::new(),
            }))),
            expected(
                Code::AlreadyExists,
                "EXTERNAL_ID_TAKEN",
                Some((USER, &kirk.user_id)),
            ),
        ),
        (
            "CreateCustomer with a taken customer id",
            call(c5.create_customer(app.admin(pb::CreateCustomerRequest {
                workspace_id: WS.into(),
                customer: Some(pb::Customer {
                    customer_id: "uss".into(),
                    name: "Again".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            }))),
            expected(
                Code::AlreadyExists,
                "CUSTOMER_ALREADY_EXISTS",
                Some((CUSTOMER, "uss")),
            ),
        ),
        (
            "DeactivateUser with a stale etag",
            call(c6.deactivate_user(app.admin(pb::DeactivateUserRequest {
                workspace_id: WS.into(),
                user_id: kirk.user_id.clone(),
                etag: "99".into(),
            }))),
            expected(Code::Aborted, "ETAG_MISMATCH", None),
        ),
        (
            "GetUser with a malformed id",
            call(c7.get_user(app.admin(pb::GetUserRequest {
                workspace_id: WS.into(),
                user_id: "not-a-uuid".into(),
            }))),
            expected(Code::InvalidArgument, "INVALID_ARGUMENT", None),
        ),
        (
            "a token for another workspace",
            call(c8.get_user(app.with_token(
                &other_workspace,
                pb::GetUserRequest {
                    workspace_id: WS.into(),
                    user_id: kirk.user_id.clone(),
                },
            ))),
            expected(Code::PermissionDenied, "WORKSPACE_NOT_GRANTED", None),
        ),
        (
            "a viewer writing",
            call(c9.deactivate_user(app.with_token(
                &viewer,
                pb::DeactivateUserRequest {
                    workspace_id: WS.into(),
                    user_id: kirk.user_id.clone(),
                    etag: String::new(),
                },
            ))),
            expected(Code::PermissionDenied, "PERMISSION_MISSING", None),
        ),
        (
            "RecordActivity on a deleted user",
            call(c10.record_activity(app.admin(pb::RecordActivityRequest {
                workspace_id: WS.into(),
                user_id: gone.user_id.clone(),
                conversations_started: 1,
                ..Default::default()
            }))),
            expected(Code::FailedPrecondition, "END_USER_STATUS", None),
        ),
    ];
    for (what, call, want) in table {
        let status = call.await.expect_err(what);
        assert_eq!(refusal(&status), want, "{what}: {status:?}");
    }

    app.set_chat_access(pb::ChatAccess::Identified).await;
    let status = app.create_guest("Visitor").await.unwrap_err();
    assert_eq!(
        refusal(&status),
        expected(Code::FailedPrecondition, "GUESTS_NOT_ADMITTED", None)
    );
}

async fn unauthenticated_calls_carry_the_auth_reason(app: TestApp) {
    let get = |token: Option<String>| {
        let mut client = app.client();
        let message = pb::GetUserRequest {
            workspace_id: WS.into(),
            user_id: Uuid::now_v7().to_string(),
        };
        let request = match token {
            Some(token) => app.with_token(&token, message),
            None => tonic::Request::new(message),
        };
        async move { client.get_user(request).await }
    };
    for (token, reason) in [
        (None, "TOKEN_MISSING"),
        (Some(app.expired_token()), "TOKEN_EXPIRED"),
        (Some("not.a.jwt".to_owned()), "TOKEN_INVALID"),
    ] {
        let status = get(token).await.unwrap_err();
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(
            (info.domain.as_str(), info.reason.as_str()),
            ("auth.roster", reason)
        );
    }
}

async fn oversize_messages_carry_the_runtime_reason(app: TestApp) {
    let mut huge = user("huge", "huge@example.com");
    huge.notes = "x".repeat(2 * 1024 * 1024);
    let status = assert_code(app.try_create_user(huge).await, Code::ResourceExhausted);
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(
        (info.domain.as_str(), info.reason.as_str()),
        ("runtime.roster", "MESSAGE_TOO_LARGE")
    );
    // Resending the same message cannot succeed, so no RetryInfo invites it.
    assert!(status.get_details_retry_info().is_none());
}

#[track_caller]
fn assert_reused<T: std::fmt::Debug>(result: Result<T, Status>) {
    let status = assert_code(result, Code::FailedPrecondition);
    assert_eq!(
        refusal(&status),
        expected(Code::FailedPrecondition, "REQUEST_ID_REUSED", None)
    );
    assert!(
        status.message().contains("request_id was already used"),
        "{status:?}"
    );
}

async fn creates_with_a_request_id_replay_and_refuse_other_content(app: TestApp) {
    let id = Uuid::new_v4().to_string();
    let first = app
        .create_user_once(user("spock", "spock@example.com"), &id)
        .await
        .unwrap();
    let again = app
        .create_user_once(user("spock", "spock@example.com"), &id)
        .await
        .unwrap();
    assert_eq!(again.user_id, first.user_id);
    assert_reused(
        app.create_user_once(user("mccoy", "mccoy@example.com"), &id)
            .await,
    );

    let guest = |request_id: &str, name: &str| {
        let mut client = app.client();
        let request = app.admin(pb::CreateGuestUserRequest {
            workspace_id: WS.into(),
            name: name.into(),
            request_id: request_id.into(),
        });
        async move {
            client
                .create_guest_user(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let guest_id = Uuid::new_v4().to_string();
    let first_guest = guest(&guest_id, "Visitor").await.unwrap();
    assert_eq!(
        guest(&guest_id, "Visitor").await.unwrap().user_id,
        first_guest.user_id
    );
    assert_reused(guest(&guest_id, "Someone else").await);
    // An id is bound to its call too, not only to its values.
    assert_reused(guest(&id, "Visitor").await);
    let guests = app.list("status:guest").await;
    assert_eq!(guests.len(), 1, "a replayed create must not create again");

    let customer = |request_id: &str, name: &str| {
        let mut client = app.client();
        let request = app.admin(pb::CreateCustomerRequest {
            workspace_id: WS.into(),
            customer: Some(pb::Customer {
                customer_id: "uss".into(),
                name: name.into(),
                ..Default::default()
            }),
            request_id: request_id.into(),
        });
        async move {
            client
                .create_customer(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let customer_id = Uuid::new_v4().to_string();
    let created = customer(&customer_id, "USS Enterprise").await.unwrap();
    let replayed = customer(&customer_id, "USS Enterprise").await.unwrap();
    assert_eq!(replayed.created_at, created.created_at);
    assert_reused(customer(&customer_id, "USS Defiant").await);
    assert_eq!(app.count_events("customer.created").await, 1);
}

fn activity(
    app: &TestApp,
    user_id: &str,
    conversations: i32,
    request_id: &str,
) -> impl Future<Output = Result<pb::User, Status>> + Send + 'static {
    let mut client = app.client();
    let request = app.admin(pb::RecordActivityRequest {
        workspace_id: WS.into(),
        user_id: user_id.into(),
        conversations_started: conversations,
        request_id: request_id.into(),
        ..Default::default()
    });
    async move {
        client
            .record_activity(request)
            .await
            .map(|r| r.into_inner())
    }
}

async fn record_activity_counts_once_per_request_id(app: TestApp) {
    let kirk = app.create_user("kirk", "kirk@example.com", "Kirk").await;
    let id = Uuid::new_v4().to_string();
    let first = activity(&app, &kirk.user_id, 2, &id).await.unwrap();
    assert_eq!(first.conversation_count, 2);
    let retry = activity(&app, &kirk.user_id, 2, &id).await.unwrap();
    assert_eq!(retry.conversation_count, 2, "a retry must not count again");
    assert_reused(activity(&app, &kirk.user_id, 3, &id).await);
    let next = activity(&app, &kirk.user_id, 3, &Uuid::new_v4().to_string())
        .await
        .unwrap();
    assert_eq!(next.conversation_count, 5);
    assert_eq!(app.count_events("end_user.activity_recorded").await, 2);
}

async fn concurrent_retries_of_one_activity_count_once(app: TestApp) {
    let kirk = app.create_user("kirk", "kirk@example.com", "Kirk").await;
    let id = Uuid::new_v4().to_string();
    let tasks: Vec<_> = (0..10)
        .map(|_| tokio::spawn(activity(&app, &kirk.user_id, 1, &id)))
        .collect();
    for task in tasks {
        task.await
            .unwrap()
            .expect("every retry gets the first call's result");
    }
    let after = app.get_user(&kirk.user_id).await.unwrap();
    assert_eq!(after.conversation_count, 1);
}

async fn merge_users_replays_its_request_id(app: TestApp) {
    let source = app.create_user("dup", "dup@example.com", "Dup").await;
    let target = app.create_user("kirk", "kirk@example.com", "Kirk").await;
    let merge = |request_id: &str, target_id: &str| {
        let mut client = app.client();
        let request = app.admin(pb::MergeUsersRequest {
            workspace_id: WS.into(),
            source_user_id: source.user_id.clone(),
            target_user_id: target_id.into(),
            request_id: request_id.into(),
            ..Default::default()
        });
        async move { client.merge_users(request).await.map(|r| r.into_inner()) }
    };
    let id = Uuid::new_v4().to_string();
    let first = merge(&id, &target.user_id).await.unwrap();
    let retry = merge(&id, &target.user_id).await.unwrap();
    assert_eq!(retry, first, "a retried merge answers what the merge did");
    let other = app.create_user("other", "other@example.com", "Other").await;
    assert_reused(merge(&id, &other.user_id).await);
    // Without a request id a second merge is a new request, refused by the source's status.
    assert_code(merge("", &target.user_id).await, Code::FailedPrecondition);
}

async fn request_ids_are_forgotten_after_the_window(app: TestApp) {
    let id = Uuid::new_v4().to_string();
    app.create_user_once(user("spock", "spock@example.com"), &id)
        .await
        .unwrap();
    app.clock.advance_secs(24 * 60 * 60 - 60);
    assert_reused(
        app.create_user_once(user("mccoy", "mccoy@example.com"), &id)
            .await,
    );
    app.clock.advance_secs(2 * 60);
    let mccoy = app
        .create_user_once(user("mccoy", "mccoy@example.com"), &id)
        .await
        .expect("an id older than the window is a new request");
    assert_eq!(mccoy.external_id, "mccoy");
}

#[track_caller]
fn assert_stale<T: std::fmt::Debug>(what: &str, result: Result<T, Status>) {
    let status = result.expect_err(what);
    assert_eq!(
        refusal(&status),
        expected(Code::Aborted, "ETAG_MISMATCH", None),
        "{what}: {status:?}"
    );
}

async fn stale_etags_abort_every_user_state_change(app: TestApp) {
    let mut client = app.client();
    let stale = "1".to_owned();

    let unconfirmed = app
        .try_create_user(pb::User {
            status: pb::UserStatus::Unconfirmed as i32,
            ..user("un", "un@example.com")
        })
        .await
        .unwrap();
    app.record_activity(&unconfirmed.user_id, None, 1)
        .await
        .unwrap();
    let current = app.get_user(&unconfirmed.user_id).await.unwrap().etag;
    assert_stale(
        "ConfirmUserEmail",
        client
            .confirm_user_email(app.admin(pb::ConfirmUserEmailRequest {
                workspace_id: WS.into(),
                user_id: unconfirmed.user_id.clone(),
                etag: stale.clone(),
            }))
            .await,
    );
    assert_stale(
        "RecordActivity",
        client
            .record_activity(app.admin(pb::RecordActivityRequest {
                workspace_id: WS.into(),
                user_id: unconfirmed.user_id.clone(),
                etag: stale.clone(),
                ..Default::default()
            }))
            .await,
    );
    client
        .confirm_user_email(app.admin(pb::ConfirmUserEmailRequest {
            workspace_id: WS.into(),
            user_id: unconfirmed.user_id.clone(),
            etag: current,
        }))
        .await
        .expect("the current etag passes");

    let guest = app.create_guest("Visitor").await.unwrap();
    app.record_activity(&guest.user_id, None, 1).await.unwrap();
    let identify = |etag: &str| pb::IdentifyGuestRequest {
        workspace_id: WS.into(),
        user_id: guest.user_id.clone(),
        email: "visitor@example.com".into(),
        etag: etag.into(),
        ..Default::default()
    };
    assert_stale(
        "IdentifyGuest",
        client.identify_guest(app.admin(identify(&stale))).await,
    );
    let current = app.get_user(&guest.user_id).await.unwrap().etag;
    client
        .identify_guest(app.admin(identify(&current)))
        .await
        .expect("the current etag passes");

    let deleted = app.create_user("del", "del@example.com", "Del").await;
    let deleted = app.delete_user(&deleted.user_id).await.unwrap();
    assert_stale(
        "UndeleteUser",
        client
            .undelete_user(app.admin(pb::UndeleteUserRequest {
                workspace_id: WS.into(),
                user_id: deleted.user_id.clone(),
                etag: stale.clone(),
            }))
            .await,
    );
    client
        .undelete_user(app.admin(pb::UndeleteUserRequest {
            workspace_id: WS.into(),
            user_id: deleted.user_id.clone(),
            etag: deleted.etag.clone(),
        }))
        .await
        .expect("the current etag passes");

    let source = app.create_user("src", "src@example.com", "Src").await;
    let target = app.create_user("tgt", "tgt@example.com", "Tgt").await;
    app.record_activity(&source.user_id, None, 1).await.unwrap();
    app.record_activity(&target.user_id, None, 1).await.unwrap();
    let merge = |source_etag: &str, target_etag: &str| pb::MergeUsersRequest {
        workspace_id: WS.into(),
        source_user_id: source.user_id.clone(),
        target_user_id: target.user_id.clone(),
        source_etag: source_etag.into(),
        target_etag: target_etag.into(),
        ..Default::default()
    };
    let source_etag = app.get_user(&source.user_id).await.unwrap().etag;
    let target_etag = app.get_user(&target.user_id).await.unwrap().etag;
    assert_stale(
        "MergeUsers (source)",
        client
            .merge_users(app.admin(merge(&stale, &target_etag)))
            .await,
    );
    assert_stale(
        "MergeUsers (target)",
        client
            .merge_users(app.admin(merge(&source_etag, &stale)))
            .await,
    );
    let merged = client
        .merge_users(app.admin(merge(&source_etag, &target_etag)))
        .await
        .expect("current etags pass")
        .into_inner();

    let target = merged.target.unwrap();
    assert_stale(
        "EraseUser",
        client
            .erase_user(app.admin(pb::EraseUserRequest {
                workspace_id: WS.into(),
                user_id: target.user_id.clone(),
                etag: stale.clone(),
            }))
            .await,
    );
    client
        .erase_user(app.admin(pb::EraseUserRequest {
            workspace_id: WS.into(),
            user_id: target.user_id.clone(),
            etag: target.etag.clone(),
        }))
        .await
        .expect("the current etag passes");
}

async fn rotate_widget_secret_replays_while_the_secret_is_current(app: TestApp) {
    let rotate = |request_id: &str| {
        let mut client = app.client();
        let request = app.admin(pb::RotateWidgetSecretRequest {
            workspace_id: WS.into(),
            request_id: request_id.into(),
        });
        async move {
            client
                .rotate_widget_secret(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let id = Uuid::new_v4().to_string();
    let first = rotate(&id).await.unwrap();
    let retry = rotate(&id).await.unwrap();
    assert_eq!(
        retry.secret, first.secret,
        "a retry gets the secret its first call issued"
    );
    assert_eq!(app.count_events("workspace.widget_secret_rotated").await, 1);
    rotate("").await.unwrap();
    let status = rotate(&id).await.unwrap_err();
    assert_eq!(
        refusal(&status),
        expected(Code::FailedPrecondition, "WIDGET_SECRET_SUPERSEDED", None)
    );
    assert!(status.message().contains("rotated out"), "{status:?}");
}

async fn update_masks_follow_aip_134(app: TestApp) {
    let kirk = app.create_user("kirk", "kirk@example.com", "Kirk").await;
    let update_user = |user: pb::User, update_mask: Option<prost_types::FieldMask>| {
        let mut client = app.client();
        let request = app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(user),
            update_mask,
        });
        async move { client.update_user(request).await.map(|r| r.into_inner()) }
    };
    // No mask: every populated field changes, the rest stay (output-only ones are ignored).
    let updated = update_user(
        pb::User {
            user_id: kirk.user_id.clone(),
            name: "James T. Kirk".into(),
            phone: "+1 555 0100".into(),
            etag: kirk.etag.clone(),
            status: pb::UserStatus::Deactivated as i32,
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            updated.name.as_str(),
            updated.phone.as_str(),
            updated.email.as_str()
        ),
        ("James T. Kirk", "+1 555 0100", "kirk@example.com")
    );
    assert_eq!(updated.status, pb::UserStatus::Active as i32);
    // `*`: every updatable field takes the message's value, empty ones are cleared.
    let replaced = update_user(
        pb::User {
            user_id: kirk.user_id.clone(),
            external_id: "kirk".into(),
            name: "Jim".into(),
            ..Default::default()
        },
        mask(&["*"]),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            replaced.name.as_str(),
            replaced.phone.as_str(),
            replaced.email.as_str()
        ),
        ("Jim", "", "")
    );
    for paths in [&["shoe_size"][..], &["etag"], &["user_id"], &["*", "name"]] {
        assert_invalid(
            update_user(
                pb::User {
                    user_id: kirk.user_id.clone(),
                    ..Default::default()
                },
                mask(paths),
            )
            .await,
            "update_mask",
        );
    }

    app.create_customer("uss", "USS Enterprise").await;
    let update_customer = |customer: pb::Customer, update_mask: Option<prost_types::FieldMask>| {
        let mut client = app.client();
        let request = app.admin(pb::UpdateCustomerRequest {
            workspace_id: WS.into(),
            customer: Some(pb::Customer {
                customer_id: "uss".into(),
                ..customer
            }),
            update_mask,
        });
        async move {
            client
                .update_customer(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let noted = update_customer(
        pb::Customer {
            notes: "Flagship".into(),
            domains: vec!["enterprise.example".into()],
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            noted.name.as_str(),
            noted.notes.as_str(),
            noted.domains.len()
        ),
        ("USS Enterprise", "Flagship", 1)
    );
    let replaced = update_customer(
        pb::Customer {
            name: "NCC-1701".into(),
            ..Default::default()
        },
        mask(&["*"]),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            replaced.name.as_str(),
            replaced.notes.as_str(),
            replaced.domains.len()
        ),
        ("NCC-1701", "", 0)
    );
    assert_invalid(
        update_customer(pb::Customer::default(), mask(&["etag"])).await,
        "update_mask",
    );

    app.set_chat_access(pb::ChatAccess::Identified).await;
    let settings = app
        .update_settings(
            pb::WorkspaceSettings {
                require_customer: true,
                ..Default::default()
            },
            &[],
        )
        .await
        .unwrap();
    assert!(settings.require_customer);
    assert_eq!(settings.chat_access, pb::ChatAccess::Identified as i32);
    let replaced = app
        .update_settings(
            pb::WorkspaceSettings {
                widget_secret_grace_seconds: 60,
                ..Default::default()
            },
            &["*"],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            replaced.chat_access,
            replaced.require_customer,
            replaced.widget_secret_grace_seconds,
            replaced.widget_token_max_lifetime_seconds
        ),
        (pb::ChatAccess::Anyone as i32, false, 60, 86_400)
    );
    assert_invalid(
        app.update_settings(pb::WorkspaceSettings::default(), &["widget_secret_set"])
            .await,
        "update_mask",
    );
}
