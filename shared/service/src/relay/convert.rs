//! Outbox rows as the audit service's messages: an event to append, or (for the one
//! action that asks for it) a subject to erase.

use prost_types::Timestamp;
use roster_db::outbox::{AuditEvent, ERASURE_REQUESTED};
use roster_proto::audit::v1 as pb;

/// The version of the producers' event schema, the same for every row today: bump it when
/// what a field means changes, so readers of old events know.
pub const SCHEMA_VERSION: u32 = 1;

/// What one outbox row becomes on the wire.
#[derive(Clone, Debug, PartialEq)]
pub enum Outgoing {
    Append(Box<pb::AuditEvent>),
    /// The row's own id is the erasure's id, so a redelivery erases nothing twice.
    Erase(pb::EraseSubjectRequest),
}

/// The message for `event`, recorded by `source_service` (`directory`, `staff`).
pub fn outgoing(event: &AuditEvent, source_service: &str) -> Outgoing {
    if event.action == ERASURE_REQUESTED {
        return Outgoing::Erase(pb::EraseSubjectRequest {
            workspace_id: event.workspace_id.clone(),
            subject_type: event.target_type.clone(),
            subject_id: event.target_id.clone(),
            erasure_id: event.event_id.to_string(),
        });
    }
    Outgoing::Append(Box::new(audit_event(event, source_service)))
}

/// `event` as AppendEvents takes it. Nothing is dropped or guessed: a value the audit
/// service cannot take (an actor kind or outcome it does not know) goes as UNSPECIFIED,
/// so the refusal names the field and the row becomes a dead letter an operator can see.
pub fn audit_event(event: &AuditEvent, source_service: &str) -> pb::AuditEvent {
    let AuditEvent {
        event_id,
        workspace_id,
        occurred_at_us,
        actor_kind: kind,
        actor_id,
        action,
        target_type,
        target_id,
        changes,
        request_id,
        trace_id,
        // How the relay continues the writer's trace, not part of the record.
        traceparent: _,
        peer_ip,
        user_agent,
        outcome: event_outcome,
    } = event;
    pb::AuditEvent {
        event_id: event_id.to_string(),
        workspace_id: workspace_id.clone(),
        occurred_at: Some(timestamp(*occurred_at_us)),
        recorded_at: None,
        actor: Some(pb::Actor {
            kind: actor_kind(kind) as i32,
            id: actor_id.clone(),
            // The outbox keeps ids only; a name would be one more copy of personal data.
            display_name: String::new(),
        }),
        action: action.clone(),
        target: Some(pb::Target {
            r#type: target_type.clone(),
            id: target_id.clone(),
        }),
        changes: changes
            .iter()
            .map(|change| pb::FieldChange {
                field: change.field.clone(),
                // JSON text, not google.protobuf.Value: numbers keep every digit.
                before_json: change.before.as_ref().map(ToString::to_string),
                after_json: change.after.as_ref().map(ToString::to_string),
                before_redacted: false,
                after_redacted: false,
            })
            .collect(),
        outcome: outcome(event_outcome) as i32,
        request_id: request_id.clone(),
        trace_id: trace_id.clone().unwrap_or_default(),
        caller_ip: peer_ip.clone().unwrap_or_default(),
        user_agent: user_agent.clone().unwrap_or_default(),
        source_service: source_service.to_owned(),
        schema_version: SCHEMA_VERSION,
        leaf_index: 0,
        redacted_fields: Vec::new(),
    }
}

/// The producers' actor kinds (`roster_core::Actor::kind`) in the audit service's terms:
/// a widget acts for the end-user whose token it carries.
pub fn actor_kind(kind: &str) -> pb::ActorKind {
    match kind {
        "agent" => pb::ActorKind::Agent,
        "widget" | "end_user" => pb::ActorKind::EndUser,
        "service" => pb::ActorKind::Service,
        "system" => pb::ActorKind::System,
        "anonymous" => pb::ActorKind::Anonymous,
        _ => pb::ActorKind::Unspecified,
    }
}

pub fn outcome(outcome: &str) -> pb::Outcome {
    match outcome {
        "success" => pb::Outcome::Success,
        "failure" => pb::Outcome::Failure,
        "denied" => pb::Outcome::Denied,
        _ => pb::Outcome::Unspecified,
    }
}

fn timestamp(us: i64) -> Timestamp {
    Timestamp {
        seconds: us.div_euclid(1_000_000),
        // Below 1e9 by construction.
        nanos: i32::try_from(us.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use roster_db::outbox::FieldChange;
    use serde_json::json;

    use super::*;

    fn row() -> AuditEvent {
        AuditEvent {
            event_id: uuid::Uuid::now_v7(),
            workspace_id: "acme".into(),
            occurred_at_us: 1_780_000_000_123_456,
            actor_kind: "agent".into(),
            actor_id: "agent-1".into(),
            action: "end_user.updated".into(),
            target_type: "end_user".into(),
            target_id: "user-1".into(),
            changes: vec![
                FieldChange {
                    field: "email".into(),
                    before: Some(json!("kirk@example.com")),
                    after: Some(json!("jtk@example.com")),
                },
                FieldChange {
                    field: "profile".into(),
                    before: None,
                    after: Some(json!({"seq": 9_007_199_254_740_993_i64})),
                },
                FieldChange {
                    field: "phone".into(),
                    before: Some(json!("555")),
                    after: None,
                },
            ],
            request_id: "req-1".into(),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            traceparent: None,
            peer_ip: Some("192.0.2.10".into()),
            user_agent: None,
            outcome: "success".into(),
        }
    }

    #[test]
    fn every_field_is_carried() {
        let event = row();
        let Outgoing::Append(sent) = outgoing(&event, "directory") else {
            panic!("an ordinary event is appended");
        };
        assert_eq!(sent.event_id, event.event_id.to_string());
        assert_eq!(sent.workspace_id, "acme");
        assert_eq!(
            sent.occurred_at,
            Some(Timestamp {
                seconds: 1_780_000_000,
                nanos: 123_456_000
            })
        );
        assert_eq!(
            sent.actor,
            Some(pb::Actor {
                kind: pb::ActorKind::Agent as i32,
                id: "agent-1".into(),
                display_name: String::new(),
            })
        );
        assert_eq!(sent.action, "end_user.updated");
        assert_eq!(
            sent.target,
            Some(pb::Target {
                r#type: "end_user".into(),
                id: "user-1".into()
            })
        );
        let changes: Vec<_> = sent
            .changes
            .iter()
            .map(|c| {
                (
                    c.field.as_str(),
                    c.before_json.as_deref(),
                    c.after_json.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            changes,
            [
                (
                    "email",
                    Some("\"kirk@example.com\""),
                    Some("\"jtk@example.com\"")
                ),
                ("profile", None, Some(r#"{"seq":9007199254740993}"#)),
                ("phone", Some("\"555\""), None),
            ]
        );
        assert_eq!(sent.outcome, pb::Outcome::Success as i32);
        assert_eq!(sent.request_id, "req-1");
        assert_eq!(sent.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(sent.caller_ip, "192.0.2.10");
        assert_eq!(sent.user_agent, "", "absent is empty");
        assert_eq!(sent.source_service, "directory");
        assert_eq!(sent.schema_version, 1);
    }

    #[test]
    fn times_before_the_epoch_keep_positive_nanos() {
        let mut event = row();
        event.occurred_at_us = -1;
        let sent = audit_event(&event, "staff");
        assert_eq!(
            sent.occurred_at,
            Some(Timestamp {
                seconds: -1,
                nanos: 999_999_000
            })
        );
    }

    #[test]
    fn actor_kinds_and_outcomes_map_onto_the_audit_enums() {
        for (kind, expected) in [
            ("agent", pb::ActorKind::Agent),
            ("widget", pb::ActorKind::EndUser),
            ("end_user", pb::ActorKind::EndUser),
            ("service", pb::ActorKind::Service),
            ("system", pb::ActorKind::System),
            ("anonymous", pb::ActorKind::Anonymous),
            ("robot", pb::ActorKind::Unspecified),
        ] {
            assert_eq!(actor_kind(kind), expected, "{kind}");
        }
        for (value, expected) in [
            ("success", pb::Outcome::Success),
            ("failure", pb::Outcome::Failure),
            ("denied", pb::Outcome::Denied),
            ("maybe", pb::Outcome::Unspecified),
        ] {
            assert_eq!(outcome(value), expected, "{value}");
        }
    }

    #[test]
    fn an_erasure_request_becomes_erase_subject_keyed_by_the_row() {
        let mut event = row();
        event.action = ERASURE_REQUESTED.into();
        event.changes.clear();
        assert_eq!(
            outgoing(&event, "directory"),
            Outgoing::Erase(pb::EraseSubjectRequest {
                workspace_id: "acme".into(),
                subject_type: "end_user".into(),
                subject_id: "user-1".into(),
                erasure_id: event.event_id.to_string(),
            })
        );
    }
}
