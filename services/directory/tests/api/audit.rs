//! Every change writes one outbox event in the same transaction: who, what, on which
//! target, which fields before/after, and the request's context. Refused changes write none.

use roster_proto::directory::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_code, mask, user};
use crate::on_both_databases;

on_both_databases!(
    changes_write_events_with_actor_target_and_fields,
    events_carry_request_id_and_user_agent,
    refused_changes_write_no_event,
);

fn change<'a>(event: &'a roster_db::AuditEvent, field: &str) -> &'a roster_db::outbox::FieldChange {
    event
        .changes
        .iter()
        .find(|change| change.field == field)
        .unwrap_or_else(|| panic!("no change of {field} in {event:?}"))
}

async fn changes_write_events_with_actor_target_and_fields(app: TestApp) {
    let customer = app.create_customer("uss001", "USS Enterprise").await;
    let kirk = app
        .try_create_user(pb::User {
            name: "Kirk".into(),
            customer_id: "uss001".into(),
            ..user("k001", "kirk@example.com")
        })
        .await
        .unwrap();
    app.client()
        .update_user(app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: kirk.user_id.clone(),
                name: "James T. Kirk".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        }))
        .await
        .unwrap();
    app.deactivate_user(&kirk.user_id).await.unwrap();
    app.delete_user(&kirk.user_id).await.unwrap();

    let events = app.pending_events().await;
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "customer.created",
            "end_user.created",
            "end_user.updated",
            "end_user.deactivated",
            "end_user.deleted",
        ]
    );
    for event in &events {
        assert_eq!(event.workspace_id, WS);
        assert_eq!(event.actor_kind, "agent");
        assert_eq!(event.actor_id, "agent-admin", "the token's sub");
        assert_eq!(event.outcome, "success");
        assert!(!event.request_id.is_empty());
        // (No trace id without a caller's traceparent or an OTLP exporter: see
        // events_carry_request_id_and_user_agent for the propagated one.)
        assert!(
            event.trace_id.as_deref().is_none_or(|t| t.len() == 32),
            "{event:?}"
        );
        assert_eq!(event.peer_ip.as_deref(), Some("127.0.0.1"));
    }
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");

    let created_customer = &events[0];
    assert_eq!(
        (
            created_customer.target_type.as_str(),
            created_customer.target_id.as_str()
        ),
        ("customer", customer.customer_id.as_str())
    );
    assert_eq!(
        change(created_customer, "name").after,
        Some(json!("USS Enterprise"))
    );

    let created = &events[1];
    assert_eq!(
        (created.target_type.as_str(), created.target_id.as_str()),
        ("end_user", kirk.user_id.as_str())
    );
    assert_eq!(change(created, "email").before, None);
    assert_eq!(
        change(created, "email").after,
        Some(json!("kirk@example.com"))
    );
    assert_eq!(change(created, "customer_id").after, Some(json!("uss001")));

    let updated = &events[2];
    assert_eq!(change(updated, "name").before, Some(json!("Kirk")));
    assert_eq!(change(updated, "name").after, Some(json!("James T. Kirk")));
    assert!(
        updated.changes.iter().all(|c| c.field == "name"),
        "only changed fields: {:?}",
        updated.changes
    );

    let deactivated = &events[3];
    assert_eq!(change(deactivated, "status").before, Some(json!("active")));
    assert_eq!(
        change(deactivated, "status").after,
        Some(json!("deactivated"))
    );

    let deleted = &events[4];
    assert_eq!(change(deleted, "status").before, Some(json!("deactivated")));
    assert_eq!(change(deleted, "status").after, Some(json!("deleted")));
    assert!(change(deleted, "deleted_at").after.is_some());

    // Settings and widget secrets are audited too, without the secret.
    app.set_chat_access(pb::ChatAccess::Confirmed).await;
    let secret = app.rotate_widget_secret().await.secret;
    let events = app.pending_events().await;
    let settings = events
        .iter()
        .find(|e| e.action == "workspace_settings.updated")
        .expect("settings event");
    assert_eq!(
        change(settings, "chat_access").after,
        Some(json!("confirmed"))
    );
    let rotated = events.last().unwrap();
    assert!(rotated.action.contains("widget_secret"), "{rotated:?}");
    let text = serde_json::to_string(&rotated.changes).unwrap();
    assert!(
        !text.contains(&secret),
        "the secret leaked into the audit trail"
    );
}

async fn events_carry_request_id_and_user_agent(app: TestApp) {
    let request_id = "req-7f3a9c0e-kirk";
    let created = app
        .client()
        .create_user(app.admin_with_request_id(
            request_id,
            pb::CreateUserRequest {
                workspace_id: WS.into(),
                user: Some(user("k001", "kirk@example.com")),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap();
    // The id is echoed to the caller too.
    assert_eq!(
        created
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(request_id)
    );
    let kirk = created.into_inner();
    let events = app.events_for(&kirk.user_id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].request_id, request_id);
    let agent = events[0].user_agent.as_deref().unwrap_or_default();
    assert!(agent.contains("tonic"), "user agent: {agent:?}");

    // A traceparent from the caller is recorded as the trace id.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = app.admin(pb::DeactivateUserRequest {
        workspace_id: WS.into(),
        user_id: kirk.user_id.clone(),
        etag: String::new(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    app.client().deactivate_user(request).await.unwrap();
    let events = app.events_for(&kirk.user_id).await;
    assert_eq!(events[1].trace_id.as_deref(), Some(trace_id));
}

async fn refused_changes_write_no_event(app: TestApp) {
    let kirk = app.create_user("k001", "kirk@example.com", "Kirk").await;
    let before = app.pending_events().await;
    assert_eq!(before.len(), 1);

    assert_code(
        app.try_create_user(user("k001", "other@example.com")).await,
        Code::AlreadyExists,
    );
    assert_code(
        app.try_create_user(user("k002", "bad-email")).await,
        Code::InvalidArgument,
    );
    let stale = app
        .client()
        .deactivate_user(app.admin(pb::DeactivateUserRequest {
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
            etag: "99".into(),
        }))
        .await;
    assert_code(stale, Code::Aborted);
    let viewer = app.token(&[WS], "viewer", &[]);
    let denied = app
        .client()
        .delete_user(app.with_token(
            &viewer,
            pb::DeleteUserRequest {
                workspace_id: WS.into(),
                user_id: kirk.user_id.clone(),
                etag: String::new(),
            },
        ))
        .await;
    assert_code(denied, Code::PermissionDenied);
    // A CSV row that fails leaves no event; the good row writes its own.
    let result = app
        .import_csv(
            b"email,external_id\nnot-an-email,k009\nspock@example.com,k002\n",
            64,
            false,
            false,
        )
        .await
        .unwrap();
    assert_eq!((result.created, result.failed), (1, 1), "{result:?}");
    // No-op changes write nothing either.
    app.client()
        .reactivate_user(app.admin(pb::ReactivateUserRequest {
            workspace_id: WS.into(),
            user_id: kirk.user_id.clone(),
            etag: String::new(),
        }))
        .await
        .unwrap();

    let after = app.pending_events().await;
    let new: Vec<&str> = after[before.len()..]
        .iter()
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        new,
        ["end_user.created"],
        "only the imported row wrote an event"
    );
    assert_eq!(app.get_user(&kirk.user_id).await.unwrap().etag, kirk.etag);
}
