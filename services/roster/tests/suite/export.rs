//! ExportUser: a data subject's access request answered from the directory and the audit
//! service together, recorded itself, never silently short of the audit trail, and after
//! erasure holding nothing of the person.

use roster_proto::audit::v1 as audit;
use roster_proto::directory::v1 as directory;
use roster_testkit::with_bearer;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{Suite, WS};
use crate::relay::{admin, assert_log_verifies, listed, until_drained, until_listed};

crate::on_both_databases!(
    an_export_holds_the_profile_customer_merged_users_and_every_audit_event_once,
    an_export_after_erasure_holds_nothing_of_the_person_and_the_log_still_verifies,
    an_export_is_refused_while_the_audit_service_is_down_and_nothing_is_recorded,
);

async fn create_user(suite: &Suite, token: &str, user: directory::User) -> directory::User {
    suite
        .directory
        .clone()
        .create_user(with_bearer(
            token,
            directory::CreateUserRequest {
                workspace_id: WS.into(),
                user: Some(user),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn try_export(
    suite: &Suite,
    token: &str,
    user_id: &str,
) -> Result<directory::ExportUserResponse, tonic::Status> {
    suite
        .directory
        .clone()
        .export_user(with_bearer(
            token,
            directory::ExportUserRequest {
                workspace_id: WS.into(),
                user_id: user_id.into(),
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn export(suite: &Suite, token: &str, user_id: &str) -> directory::ExportUserResponse {
    try_export(suite, token, user_id).await.unwrap()
}

fn actions_about(events: &[audit::AuditEvent], user_id: &str) -> Vec<String> {
    events
        .iter()
        .filter(|event| event.target.as_ref().is_some_and(|t| t.id == user_id))
        .map(|event| event.action.clone())
        .collect()
}

pub(crate) async fn an_export_holds_the_profile_customer_merged_users_and_every_audit_event_once(
    suite: Suite,
) {
    let token = admin(&suite).await;
    let mut client = suite.directory.clone();
    client
        .create_customer(with_bearer(
            &token,
            directory::CreateCustomerRequest {
                workspace_id: WS.into(),
                customer: Some(directory::Customer {
                    customer_id: "acme".into(),
                    name: "Acme Corporation".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let person = create_user(
        &suite,
        &token,
        directory::User {
            email: "nyota@example.com".into(),
            name: "Nyota Uhura".into(),
            customer_id: "acme".into(),
            phone: "+1 555 0100".into(),
            ..Default::default()
        },
    )
    .await;
    let duplicate = create_user(
        &suite,
        &token,
        directory::User {
            email: "uhura@old.example.com".into(),
            name: "N. Uhura".into(),
            ..Default::default()
        },
    )
    .await;
    client
        .merge_users(with_bearer(
            &token,
            directory::MergeUsersRequest {
                workspace_id: WS.into(),
                source_user_id: duplicate.user_id.clone(),
                target_user_id: person.user_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    until_drained(&suite).await;
    // Exported straight after a change: its event is either delivered or still in the
    // outbox, and the export must hold it once either way.
    client
        .deactivate_user(with_bearer(
            &token,
            directory::DeactivateUserRequest {
                workspace_id: WS.into(),
                user_id: person.user_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();

    let answer = export(&suite, &token, &person.user_id).await;
    let exported = answer.export.unwrap();
    let user = exported.user.unwrap();
    assert_eq!(user.email, "nyota@example.com");
    assert_eq!(user.phone, "+1 555 0100");
    assert_eq!(user.status, directory::UserStatus::Deactivated as i32);
    assert_eq!(exported.customer.unwrap().name, "Acme Corporation");
    let merged: Vec<&str> = exported
        .merged_users
        .iter()
        .map(|u| u.user_id.as_str())
        .collect();
    assert_eq!(merged, [duplicate.user_id.as_str()]);
    assert_eq!(
        exported.merged_users[0].status,
        directory::UserStatus::Merged as i32
    );

    let events = &exported.audit_events;
    let ids: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "an event exported twice");
    let about_person = actions_about(events, &person.user_id);
    for action in [
        "end_user.created",
        "end_user.merge_received",
        "end_user.deactivated",
    ] {
        assert_eq!(
            about_person.iter().filter(|a| *a == action).count(),
            1,
            "{action} in {about_person:?}"
        );
    }
    let about_duplicate = actions_about(events, &duplicate.user_id);
    assert_eq!(
        about_duplicate,
        ["end_user.created", "end_user.merged"],
        "the merged user's history"
    );
    // Recorded events come in log order, each with its leaf.
    let recorded: Vec<i64> = events
        .iter()
        .filter(|e| e.recorded_at.is_some())
        .map(|e| e.leaf_index)
        .collect();
    assert!(recorded.windows(2).all(|w| w[0] < w[1]), "{recorded:?}");
    assert!(recorded.len() >= 4, "{recorded:?}");

    // The JSON document is the same export, in the proto3 JSON mapping.
    let json: serde_json::Value = serde_json::from_str(&answer.json).unwrap();
    assert_eq!(json["user"]["email"], "nyota@example.com");
    assert_eq!(json["user"]["status"], "USER_STATUS_DEACTIVATED");
    assert_eq!(json["customer"]["name"], "Acme Corporation");
    assert_eq!(
        json["auditEvents"].as_array().map(Vec::len),
        Some(events.len())
    );
    assert_eq!(json["exportEventId"], exported.export_event_id.as_str());

    // The export is recorded: who exported whom, and nothing of what.
    let recorded_export = until_listed(
        &suite,
        audit::ListEventsRequest {
            action_prefix: "end_user.exported".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(recorded_export.len(), 1);
    assert_eq!(recorded_export[0].event_id, exported.export_event_id);
    assert_eq!(
        recorded_export[0].target.as_ref().unwrap().id,
        person.user_id
    );
    assert!(recorded_export[0].changes.is_empty());
}

async fn an_export_after_erasure_holds_nothing_of_the_person_and_the_log_still_verifies(
    suite: Suite,
) {
    let token = admin(&suite).await;
    let person = create_user(
        &suite,
        &token,
        directory::User {
            email: "kirk@example.com".into(),
            name: "James Tiberius Kirk".into(),
            ..Default::default()
        },
    )
    .await;
    let before = export(&suite, &token, &person.user_id).await;
    assert!(before.json.contains("kirk@example.com"));

    suite
        .directory
        .clone()
        .erase_user(with_bearer(
            &token,
            directory::EraseUserRequest {
                workspace_id: WS.into(),
                user_id: person.user_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    until_listed(
        &suite,
        audit::ListEventsRequest {
            action_prefix: "subject.erased".into(),
            ..Default::default()
        },
    )
    .await;

    let after = export(&suite, &token, &person.user_id).await;
    for personal in ["kirk@example.com", "Tiberius"] {
        assert!(
            !after.json.contains(personal),
            "'{personal}' is still in the export: {}",
            after.json
        );
    }
    let exported = after.export.unwrap();
    assert_eq!(
        exported.user.unwrap().status,
        directory::UserStatus::Erased as i32
    );
    let actions = actions_about(&exported.audit_events, &person.user_id);
    assert!(
        actions.iter().any(|a| a == "end_user.erased"),
        "{actions:?}"
    );

    until_drained(&suite).await;
    assert_log_verifies(&suite).await;
}

async fn an_export_is_refused_while_the_audit_service_is_down_and_nothing_is_recorded(
    suite: Suite,
) {
    let token = admin(&suite).await;
    let person = create_user(
        &suite,
        &token,
        directory::User {
            email: "spock@example.com".into(),
            ..Default::default()
        },
    )
    .await;
    until_drained(&suite).await;
    suite.stop_audit().await;
    let answer = try_export(&suite, &token, &person.user_id).await;
    let status =
        roster_testkit::status::assert_refused(answer, Code::Unavailable, "AUDIT_UNAVAILABLE");
    assert!(status.get_error_details().retry_info().is_some());
    suite.start_audit().await;
    until_drained(&suite).await;
    let exports = listed(
        &suite,
        audit::ListEventsRequest {
            action_prefix: "end_user.exported".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(
        exports.is_empty(),
        "a refused export was recorded: {exports:?}"
    );

    // An unknown user is NOT_FOUND before the audit service is asked.
    let answer = try_export(&suite, &token, &uuid::Uuid::now_v7().to_string()).await;
    roster_testkit::status::assert_refused(answer, Code::NotFound, "END_USER_NOT_FOUND");
}
