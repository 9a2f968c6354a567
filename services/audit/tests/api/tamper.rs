//! Append-only, and what VerifyLog finds when someone gets past it: the database refuses
//! changes to recorded events, and a change made anyway (triggers dropped or bypassed, as
//! the database's owner can) is named by its leaf.

use roster_proto::audit::v1 as pb;
use roster_proto::audit::v1::log_problem::Kind;

use crate::helpers::{TestApp, WS};
use crate::on_both_databases;

on_both_databases!(
    an_untouched_log_verifies,
    the_database_refuses_changes_to_what_was_recorded,
    erasing_personal_values_keeps_the_log_verified,
    a_changed_row_is_named,
    a_deleted_row_is_named,
    reordered_rows_are_named,
    a_changed_personal_value_is_named,
    a_changed_tree_hash_is_named,
    removing_the_newest_events_and_their_hashes_is_caught_by_the_signed_checkpoint,
    an_altered_checkpoint_is_caught,
    a_log_of_many_pages_is_checked_to_its_end_and_named_where_it_breaks,
);

fn problem(verification: &pb::VerifyLogResponse) -> &pb::LogProblem {
    assert!(!verification.verified, "{verification:?}");
    verification.problem.as_ref().expect("a problem is named")
}

/// Five events, the ids in leaf order.
async fn five(app: &TestApp) -> Vec<String> {
    let mut ids = app.append_each(2).await;
    let batch: Vec<_> = (0..3)
        .map(|_| crate::helpers::event("end_user.updated"))
        .collect();
    ids.extend(batch.iter().map(|e| e.event_id.clone()));
    app.append(batch).await;
    ids
}

fn at_leaf(leaf: i64) -> String {
    format!("workspace_id = '{WS}' AND leaf_index = {leaf}")
}

async fn an_untouched_log_verifies(app: TestApp) {
    let empty = app.verify().await;
    assert!(empty.verified && empty.tree_size == 0);
    five(&app).await;
    let verification = app.verify().await;
    assert!(verification.verified, "{verification:?}");
    assert_eq!(
        (verification.tree_size, verification.events_checked),
        (5, 5)
    );
    assert_eq!(verification.checkpoint.unwrap().tree_size, 5);
    assert!(verification.problem.is_none());
}

async fn the_database_refuses_changes_to_what_was_recorded(app: TestApp) {
    five(&app).await;
    for sql in [
        format!(
            "UPDATE audit_events SET action = 'end_user.nothing' WHERE {}",
            at_leaf(1)
        ),
        format!(
            "UPDATE audit_events SET leaf_index = 9 WHERE {}",
            at_leaf(1)
        ),
        format!("DELETE FROM audit_events WHERE {}", at_leaf(4)),
        "DELETE FROM audit_events".to_owned(),
        "UPDATE audit_tree_hashes SET hash = hash".to_owned(),
        "DELETE FROM audit_tree_hashes".to_owned(),
        "UPDATE audit_checkpoints SET signed_note = ''".to_owned(),
        "DELETE FROM audit_checkpoints".to_owned(),
    ] {
        assert!(app.execute_sql(&sql).await.is_err(), "{sql} was allowed");
    }
    if app.is_postgres() {
        for table in ["audit_events", "audit_tree_hashes", "audit_checkpoints"] {
            let sql = format!("TRUNCATE {table}");
            assert!(app.execute_sql(&sql).await.is_err(), "{sql} was allowed");
        }
    }
    assert!(app.verify().await.verified);
}

/// The sanctioned change (erasure, a later part of the service): values and salts go, the
/// commitments stay in the leaves, and every proof still holds.
async fn erasing_personal_values_keeps_the_log_verified(app: TestApp) {
    let ids = five(&app).await;
    let before = app.checkpoint().await;
    app.execute_sql(&format!(
        "UPDATE audit_events SET personal_values = NULL WHERE {}",
        at_leaf(2)
    ))
    .await
    .expect("personal values are the one column that may change");
    let verification = app.verify().await;
    assert!(verification.verified, "{verification:?}");
    assert_eq!(app.checkpoint().await, before);
    let erased = app.get(&ids[2]).await.unwrap();
    assert_eq!(erased.actor.unwrap().display_name, "");
    assert_eq!(
        (erased.caller_ip.as_str(), erased.user_agent.as_str()),
        ("", "")
    );
    assert_eq!(
        erased.redacted_fields,
        ["actor.display_name", "caller_ip", "user_agent"]
    );
    assert!(erased.changes[0].before_redacted && erased.changes[0].after_redacted);
    assert_eq!(erased.changes[0].before_json, None);
    assert_eq!(
        erased.action, "end_user.updated",
        "what happened stays readable"
    );
    assert_eq!(erased.changes[0].field, "email");
}

async fn a_changed_row_is_named(app: TestApp) {
    let ids = five(&app).await;
    app.tamper(&format!(
        "UPDATE audit_events SET action = 'end_user.nothing_happened' WHERE {}",
        at_leaf(3)
    ))
    .await;
    let verification = app.verify().await;
    let problem = problem(&verification);
    assert_eq!(problem.kind(), Kind::EventChanged);
    assert_eq!(
        (problem.leaf_index, problem.event_id.as_str()),
        (3, ids[3].as_str())
    );
    assert!(problem.message.contains(&ids[3]), "{}", problem.message);
    assert_eq!(
        verification.events_checked, 3,
        "the leaves before it verified"
    );
}

async fn a_deleted_row_is_named(app: TestApp) {
    five(&app).await;
    // The newest row: nothing after it leaves a gap, the log's size still counts it.
    app.tamper(&format!("DELETE FROM audit_events WHERE {}", at_leaf(4)))
        .await;
    let newest = problem(&app.verify().await).clone();
    assert_eq!((newest.kind(), newest.leaf_index), (Kind::EventMissing, 4));
    // One in the middle: named first.
    app.tamper(&format!("DELETE FROM audit_events WHERE {}", at_leaf(1)))
        .await;
    let problem = problem(&app.verify().await).clone();
    assert_eq!(
        (problem.kind(), problem.leaf_index),
        (Kind::EventMissing, 1)
    );
    assert!(problem.message.contains("leaf 1"), "{}", problem.message);
}

async fn reordered_rows_are_named(app: TestApp) {
    let ids = five(&app).await;
    app.tamper(&format!(
        "UPDATE audit_events SET leaf_index = -1 WHERE {a};
         UPDATE audit_events SET leaf_index = 1 WHERE {b};
         UPDATE audit_events SET leaf_index = 3 WHERE {c};",
        a = at_leaf(1),
        b = at_leaf(3),
        c = at_leaf(-1),
    ))
    .await;
    let problem = problem(&app.verify().await).clone();
    assert_eq!(problem.kind(), Kind::EventChanged);
    // Leaf 1 now holds the row of the event recorded at leaf 3.
    assert_eq!(
        (problem.leaf_index, problem.event_id.as_str()),
        (1, ids[3].as_str())
    );
}

async fn a_changed_personal_value_is_named(app: TestApp) {
    let ids = five(&app).await;
    let row = app.get(&ids[4]).await.unwrap();
    assert_eq!(row.caller_ip, "192.0.2.10");
    // Redaction's column may change, but not into something the leaf did not commit to.
    app.execute_sql(&format!(
        "UPDATE audit_events SET personal_values = REPLACE(personal_values, '192.0.2.10', '198.51.100.66') WHERE {}",
        at_leaf(4)
    ))
    .await
    .unwrap();
    let problem = problem(&app.verify().await).clone();
    assert_eq!(problem.kind(), Kind::ValueChanged);
    assert_eq!(
        (problem.leaf_index, problem.event_id.as_str()),
        (4, ids[4].as_str())
    );
    assert!(problem.message.contains("caller_ip"), "{}", problem.message);
}

async fn a_changed_tree_hash_is_named(app: TestApp) {
    five(&app).await;
    // Stored index 2 is the subtree over leaves 0 and 1, completed by leaf 1.
    app.tamper(&format!(
        "UPDATE audit_tree_hashes SET hash = (SELECT hash FROM audit_tree_hashes WHERE workspace_id = '{WS}' AND stored_index = 0) WHERE workspace_id = '{WS}' AND stored_index = 2"
    ))
    .await;
    let problem = problem(&app.verify().await).clone();
    assert_eq!(problem.kind(), Kind::TreeHashChanged);
    assert_eq!(problem.leaf_index, 1);
}

async fn removing_the_newest_events_and_their_hashes_is_caught_by_the_signed_checkpoint(
    app: TestApp,
) {
    five(&app).await;
    // Leaves 3 and 4 and every hash they stored gone, the head wound back: the rows and
    // hashes left agree with each other; only the signed checkpoint remembers.
    app.tamper(&format!(
        "DELETE FROM audit_events WHERE workspace_id = '{WS}' AND leaf_index >= 3;
         DELETE FROM audit_tree_hashes WHERE workspace_id = '{WS}' AND stored_index >= 4;
         UPDATE audit_logs SET tree_size = 3 WHERE workspace_id = '{WS}';"
    ))
    .await;
    let verification = app.verify().await;
    let problem = problem(&verification);
    assert_eq!(problem.kind(), Kind::EventMissing);
    assert_eq!(problem.leaf_index, 3);
    assert!(
        problem.message.contains("signed a checkpoint of 5"),
        "{}",
        problem.message
    );
}

async fn an_altered_checkpoint_is_caught(app: TestApp) {
    five(&app).await;
    app.tamper(&format!(
        "UPDATE audit_checkpoints SET signed_note = REPLACE(signed_note, '{WS}\n5\n', '{WS}\n6\n') WHERE workspace_id = '{WS}' AND tree_size = 5"
    ))
    .await;
    let problem = problem(&app.verify().await).clone();
    assert_eq!(problem.kind(), Kind::CheckpointMismatch);
}

/// VerifyLog reads a long log in pages of 5,000 leaves, several at once: every leaf is
/// checked once and in order, also by calls running together, and a problem in a later
/// page, or at a page's first leaf, is still named by its own leaf.
async fn a_log_of_many_pages_is_checked_to_its_end_and_named_where_it_breaks(app: TestApp) {
    const EVENTS: i64 = 21_000;
    for _ in 0..EVENTS / 1000 {
        let batch: Vec<_> = (0..1000)
            .map(|_| crate::helpers::event("end_user.updated"))
            .collect();
        app.append(batch).await;
    }
    // Three at once share the replica's page reads (four in flight), each to its end.
    let (first, second, third) = tokio::join!(app.verify(), app.verify(), app.verify());
    for whole in [first, second, third] {
        assert!(whole.verified, "{:?}", whole.problem);
        assert_eq!((whole.tree_size, whole.events_checked), (EVENTS, EVENTS));
    }

    app.tamper(&format!(
        "UPDATE audit_events SET action = 'end_user.deleted' WHERE {}",
        at_leaf(20_500)
    ))
    .await;
    let changed = problem(&app.verify().await).clone();
    assert_eq!(
        (changed.kind(), changed.leaf_index),
        (Kind::EventChanged, 20_500)
    );

    app.tamper(&format!(
        "DELETE FROM audit_events WHERE {}",
        at_leaf(15_000)
    ))
    .await;
    let missing = app.verify().await;
    let gap = problem(&missing).clone();
    assert_eq!((gap.kind(), gap.leaf_index), (Kind::EventMissing, 15_000));
    assert_eq!(missing.events_checked, 15_000, "every leaf before the gap");
}
