//! Retention and legal holds: pruned events go, their hashes stay, and every later proof
//! still verifies; holds stop pruning until lifted; every change is in the log itself.

use roster_proto::audit::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_refused, event, violated_fields};
use crate::on_both_databases;
use crate::verifier::{leaf_hash, open_checkpoint, root_from_inclusion, verify_consistency};

on_both_databases!(
    pruning_keeps_every_later_proof_and_is_recorded,
    legal_holds_stop_pruning_until_lifted,
    retention_changes_are_checked_and_authorized,
);

const DAY: i64 = 86_400;

fn days(count: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: count * DAY,
        nanos: 0,
    })
}

impl TestApp {
    async fn set_retention(
        &self,
        retention: Option<prost_types::Duration>,
    ) -> Result<pb::Retention, tonic::Status> {
        self.client()
            .set_retention(self.admin(pb::SetRetentionRequest {
                workspace_id: WS.into(),
                retention,
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn hold(&self, subject_id: &str) -> pb::LegalHold {
        self.client()
            .place_legal_hold(self.admin(pb::PlaceLegalHoldRequest {
                workspace_id: WS.into(),
                subject_id: subject_id.into(),
                reason: "case 2026-17".into(),
            }))
            .await
            .unwrap()
            .into_inner()
    }

    async fn release(&self, hold_id: &str) -> Result<pb::Retention, tonic::Status> {
        self.client()
            .release_legal_hold(self.admin(pb::ReleaseLegalHoldRequest {
                workspace_id: WS.into(),
                hold_id: hold_id.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn actions(&self) -> Vec<(i64, String)> {
        self.list(pb::ListEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .events
        .into_iter()
        .rev()
        .map(|e| (e.leaf_index, e.action))
        .collect()
    }
}

fn about(subject: &str) -> pb::AuditEvent {
    let mut event = event("end_user.updated");
    event.target = Some(pb::Target {
        r#type: "end_user".into(),
        id: subject.into(),
    });
    event
}

async fn pruning_keeps_every_later_proof_and_is_recorded(app: TestApp) {
    let key = app.log_key(WS).await;
    let old_ids = app.append_each(4).await;
    let early = open_checkpoint(&key.verifier_key, &app.checkpoint().await.signed_note).unwrap();
    app.clock.advance_secs(40 * DAY);
    let recent = app.append_each(2).await;

    let retention = app.set_retention(days(30)).await.unwrap();
    assert_eq!(retention.retention, days(30));
    assert_eq!((retention.min_leaf_index, retention.tree_size), (4, 8));
    assert_eq!(
        app.actions().await,
        [
            (4, "end_user.updated_0".to_owned()),
            (5, "end_user.updated_1".to_owned()),
            (6, "audit_log.retention_set".to_owned()),
            (7, "audit_log.pruned".to_owned()),
        ]
    );
    let set = app
        .list(pb::ListEventsRequest {
            action_prefix: "audit_log.retention_set".into(),
            ..Default::default()
        })
        .await
        .events
        .remove(0);
    assert_eq!(set.actor.unwrap().id, "agent-admin");
    assert_eq!(set.source_service, "audit");
    assert_eq!(set.changes[0].before_json.as_deref(), Some("null"));
    assert_eq!(set.changes[0].after_json.as_deref(), Some("2592000"));
    assert_refused(
        app.get(&old_ids[0]).await,
        Code::NotFound,
        "EVENT_NOT_FOUND",
    );

    // The tree kept its hashes: a later event's proof and the consistency with a checkpoint
    // of nothing but pruned events still verify.
    let now = open_checkpoint(&key.verifier_key, &app.checkpoint().await.signed_note).unwrap();
    assert_eq!(now.tree_size, 8);
    let proof = app
        .client()
        .get_inclusion_proof(app.admin(pb::GetInclusionProofRequest {
            workspace_id: WS.into(),
            leaf: Some(pb::get_inclusion_proof_request::Leaf::EventId(
                recent[1].clone(),
            )),
            tree_size: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        root_from_inclusion(5, 8, leaf_hash(&proof.leaf_data), &proof.hashes),
        Some(now.root)
    );
    let consistency = app
        .client()
        .get_consistency_proof(app.admin(pb::GetConsistencyProofRequest {
            workspace_id: WS.into(),
            old_size: 4,
            new_size: 8,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(verify_consistency(
        4,
        8,
        early.root,
        now.root,
        &consistency.hashes
    ));
    let verification = app.verify().await;
    assert!(verification.verified, "{verification:?}");
    assert_eq!(verification.events_checked, 4);

    // A stream cannot start among pruned events; from the first kept one it can.
    let pruned_cursor = app
        .client()
        .watch_events(app.admin(pb::WatchEventsRequest {
            workspace_id: WS.into(),
            from_leaf_index: Some(0),
        }))
        .await;
    assert_refused(pruned_cursor, Code::FailedPrecondition, "EVENTS_PRUNED");

    // Time passes: the next prune (here, setting the period again) takes what aged.
    app.clock.advance_secs(31 * DAY);
    let again = app.set_retention(days(30)).await.unwrap();
    assert_eq!(
        again.min_leaf_index, 8,
        "everything before this change aged out"
    );
    assert!(app.verify().await.verified);
    // 0 keeps everything from now on; nothing comes back.
    let forever = app.set_retention(None).await.unwrap();
    assert_eq!((forever.retention, forever.min_leaf_index), (None, 8));
}

async fn legal_holds_stop_pruning_until_lifted(app: TestApp) {
    // Leaves 0 to 2, old; leaf 1 is about the subject a court is interested in.
    app.append(vec![about("user-9")]).await;
    app.append(vec![about("user-2")]).await;
    app.append(vec![about("user-9")]).await;
    app.clock.advance_secs(40 * DAY);
    app.append(vec![about("user-9")]).await;

    let whole = app.hold("").await;
    assert_eq!(
        (whole.subject_id.as_str(), whole.placed_by.as_str()),
        ("", "agent-admin")
    );
    let held = app.set_retention(days(30)).await.unwrap();
    assert_eq!(
        held.min_leaf_index, 0,
        "a hold on the whole log stops pruning"
    );
    let subject = app.hold("user-2").await;
    assert_eq!(
        app.set_retention(days(30)).await.unwrap().legal_holds.len(),
        2
    );

    let released = app.release(&whole.hold_id).await.unwrap();
    assert_eq!(
        released.min_leaf_index, 1,
        "pruning stops at the held subject's first event"
    );
    assert_eq!(released.legal_holds.len(), 1);
    let released = app.release(&subject.hold_id).await.unwrap();
    assert_eq!(
        released.min_leaf_index, 3,
        "then runs up to the events within the period"
    );
    assert!(released.legal_holds.is_empty());
    assert_refused(
        app.release(&subject.hold_id).await,
        Code::NotFound,
        "LEGAL_HOLD_NOT_FOUND",
    );

    let actions: Vec<String> = app.actions().await.into_iter().map(|(_, a)| a).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.as_str() == "audit_log.legal_hold_placed")
            .count(),
        2
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.as_str() == "audit_log.legal_hold_released")
            .count(),
        2
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.as_str() == "audit_log.pruned")
            .count(),
        2
    );
    let verification = app.verify().await;
    assert!(verification.verified, "{verification:?}");
    let read = app
        .client()
        .get_retention(app.admin(pb::GetRetentionRequest {
            workspace_id: WS.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, released);
}

async fn retention_changes_are_checked_and_authorized(app: TestApp) {
    for bad in [
        prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        },
        prost_types::Duration {
            seconds: -DAY,
            nanos: 0,
        },
        prost_types::Duration {
            seconds: DAY,
            nanos: 5,
        },
    ] {
        let status = assert_refused(
            app.set_retention(Some(bad)).await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
        );
        assert_eq!(violated_fields(&status), ["retention"]);
    }
    let status = assert_refused(
        app.client()
            .place_legal_hold(app.admin(pb::PlaceLegalHoldRequest {
                workspace_id: WS.into(),
                subject_id: "user\u{0}2".into(),
                reason: String::new(),
            }))
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["subject_id", "reason"]);
    assert_refused(
        app.release("nope").await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    // An auditor reads the log but does not decide what it forgets.
    let auditor = app.tokens.agent(&[WS], "viewer", &["audit_log.view"]);
    assert_refused(
        app.client()
            .set_retention(app.with(
                &auditor,
                pb::SetRetentionRequest {
                    workspace_id: WS.into(),
                    retention: days(30),
                },
            ))
            .await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    assert_eq!(
        app.checkpoint().await.tree_size,
        0,
        "nothing refused was recorded"
    );
}
