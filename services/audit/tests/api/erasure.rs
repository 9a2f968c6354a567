//! EraseSubject: a person's values leave the log, the log still verifies, and every proof
//! made before still holds.

use roster_proto::audit::v1 as pb;
use tonic::Code;

use crate::helpers::{APPEND, TestApp, WS, assert_refused, event, violated_fields};
use crate::on_both_databases;
use crate::verifier::{leaf_hash, open_checkpoint, root_from_inclusion, verify_consistency};

on_both_databases!(
    erasing_a_person_keeps_the_log_and_its_proofs,
    erasure_is_for_producers_and_checks_its_input,
);

const ERASE: &str = "audit_log.erase";

impl TestApp {
    async fn erase(
        &self,
        subject_type: &str,
        subject_id: &str,
        erasure_id: &str,
    ) -> Result<pb::EraseSubjectResponse, tonic::Status> {
        let token = self.tokens.service("directory-relay", &[APPEND, ERASE]);
        self.client()
            .erase_subject(self.with(
                &token,
                pb::EraseSubjectRequest {
                    workspace_id: WS.into(),
                    subject_type: subject_type.into(),
                    subject_id: subject_id.into(),
                    erasure_id: erasure_id.into(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }
}

/// Kirk, end-user `user-1`: an agent changed his e-mail (leaf 0), he changed his own name
/// in the widget (leaf 1); another user's event (leaf 2) and a customer's (leaf 3).
fn kirk_and_others() -> Vec<pb::AuditEvent> {
    let by_agent = event("end_user.updated");
    let mut by_kirk = event("end_user.updated");
    by_kirk.actor = Some(pb::Actor {
        kind: pb::ActorKind::EndUser as i32,
        id: "user-1".into(),
        display_name: "James T. Kirk".into(),
    });
    by_kirk.caller_ip = "203.0.113.7".into();
    by_kirk.user_agent = "Enterprise/1701".into();
    by_kirk.changes = vec![pb::FieldChange {
        field: "name".into(),
        before_json: Some("\"Jim Kirk\"".into()),
        after_json: Some("\"James T. Kirk\"".into()),
        ..Default::default()
    }];
    let spock = vec![pb::FieldChange {
        field: "email".into(),
        before_json: Some("\"spock@example.com\"".into()),
        after_json: Some("\"s@example.com\"".into()),
        ..Default::default()
    }];
    let mut other_user = event("end_user.updated");
    other_user.target = Some(pb::Target {
        r#type: "end_user".into(),
        id: "user-2".into(),
    });
    other_user.changes = spock.clone();
    let mut customer = event("customer.renamed");
    customer.target = Some(pb::Target {
        r#type: "customer".into(),
        id: "user-1".into(),
    });
    customer.changes = spock;
    vec![by_agent, by_kirk, other_user, customer]
}

async fn erasing_a_person_keeps_the_log_and_its_proofs(app: TestApp) {
    let events = kirk_and_others();
    let ids: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    app.append(events).await;
    let key = app.log_key(WS).await;
    let before = open_checkpoint(&key.verifier_key, &app.checkpoint().await.signed_note).unwrap();
    let proof_before = app
        .client()
        .get_inclusion_proof(app.admin(pb::GetInclusionProofRequest {
            workspace_id: WS.into(),
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafIndex(1)),
            tree_size: 0,
        }))
        .await
        .unwrap()
        .into_inner();

    let erasure_id = uuid::Uuid::now_v7().to_string();
    let erased = app.erase("end_user", "user-1", &erasure_id).await.unwrap();
    assert_eq!((erased.events_redacted, erased.values_erased), (2, 7));
    let recorded = erased.erasure_event.unwrap();
    assert_eq!((recorded.leaf_index, recorded.already_recorded), (4, false));
    assert_eq!(recorded.event_id, erasure_id);

    // About him: the changed values are gone; the agent's own values stay.
    let about = app.get(&ids[0]).await.unwrap();
    assert_eq!(about.changes[0].before_json, None);
    assert!(about.changes[0].before_redacted && about.changes[0].after_redacted);
    assert_eq!(about.actor.as_ref().unwrap().display_name, "Nyota Uhura");
    assert_eq!(about.caller_ip, "192.0.2.10");
    // By him: his name, address and device, and what he changed about himself.
    let by = app.get(&ids[1]).await.unwrap();
    assert_eq!(by.actor.as_ref().unwrap().display_name, "");
    assert_eq!(
        by.actor.as_ref().unwrap().id,
        "user-1",
        "ids stay: the trail still reads"
    );
    assert_eq!(
        by.redacted_fields,
        ["actor.display_name", "caller_ip", "user_agent"]
    );
    assert!(by.changes[0].before_redacted && by.changes[0].after_redacted);
    // Others untouched, a customer with the same id included.
    for other in [&ids[2], &ids[3]] {
        let untouched = app.get(other).await.unwrap();
        assert!(untouched.redacted_fields.is_empty());
        assert!(untouched.changes[0].before_json.is_some());
    }
    // Nothing of him is readable anywhere in the log, the erasure's own event included.
    let everything = format!("{:?}", app.list(pb::ListEventsRequest::default()).await);
    for trace in ["Kirk", "kirk@example.com", "203.0.113.7", "Enterprise/1701"] {
        assert!(!everything.contains(trace), "{trace} is still in the log");
    }
    let record = app.get(&erasure_id).await.unwrap();
    assert_eq!(record.action, "subject.erased");
    assert_eq!(record.target.unwrap().id, "user-1");
    assert_eq!(record.actor.unwrap().id, "directory-relay");

    // The leaves did not change: the old proof leads to the old signed root, and the new
    // checkpoint extends the old one.
    let leaf_then = leaf_hash(&proof_before.leaf_data);
    assert_eq!(
        root_from_inclusion(1, 4, leaf_then, &proof_before.hashes),
        Some(before.root)
    );
    let proof_now = app
        .client()
        .get_inclusion_proof(app.admin(pb::GetInclusionProofRequest {
            workspace_id: WS.into(),
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafIndex(1)),
            tree_size: 4,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(proof_now.leaf_data, proof_before.leaf_data);
    let after = open_checkpoint(&key.verifier_key, &app.checkpoint().await.signed_note).unwrap();
    let consistency = app
        .client()
        .get_consistency_proof(app.admin(pb::GetConsistencyProofRequest {
            workspace_id: WS.into(),
            old_size: 4,
            new_size: 5,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(verify_consistency(
        4,
        5,
        before.root,
        after.root,
        &consistency.hashes
    ));
    let verification = app.verify().await;
    assert!(verification.verified, "{verification:?}");

    // The relay delivering the request again changes nothing.
    let again = app.erase("end_user", "user-1", &erasure_id).await.unwrap();
    assert_eq!((again.events_redacted, again.values_erased), (0, 0));
    let again = again.erasure_event.unwrap();
    assert_eq!((again.leaf_index, again.already_recorded), (4, true));
    assert_eq!(app.checkpoint().await.tree_size, 5);
    // The same id for another subject is another erasure under a reused id.
    assert_refused(
        app.erase("end_user", "user-2", &erasure_id).await,
        Code::AlreadyExists,
        "EVENT_ID_REUSED",
    );
}

async fn erasure_is_for_producers_and_checks_its_input(app: TestApp) {
    app.append(kirk_and_others()).await;
    let status = assert_refused(
        app.erase("customer", "", "nope").await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(
        violated_fields(&status),
        ["subject_type", "subject_id", "erasure_id"]
    );
    let request = || pb::EraseSubjectRequest {
        workspace_id: WS.into(),
        subject_type: "end_user".into(),
        subject_id: "user-1".into(),
        erasure_id: uuid::Uuid::now_v7().to_string(),
    };
    // An admin agent erases people through the directory, not here.
    let admin = app.tokens.agent(&[WS], "admin", &[ERASE]);
    assert_refused(
        app.client()
            .erase_subject(app.with(&admin, request()))
            .await,
        Code::PermissionDenied,
        "NOT_A_SERVICE",
    );
    // Appending does not allow erasing.
    let relay = app.producer_token();
    assert_refused(
        app.client()
            .erase_subject(app.with(&relay, request()))
            .await,
        Code::PermissionDenied,
        "PERMISSION_MISSING",
    );
    assert_eq!(
        app.checkpoint().await.tree_size,
        4,
        "nothing refused was recorded"
    );
    assert!(app.get(&kirk_and_others()[0].event_id).await.is_err());
}
