//! AppendEvents: order, idempotency by event id, refusals that write nothing, and
//! workspaces kept apart.

use roster_proto::audit::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::{
    TestApp, WS, assert_refused, event, event_in, spawn_replica, violated_fields,
};
use crate::on_both_databases;

on_both_databases!(
    events_take_the_next_leaves_and_resends_take_none,
    an_event_id_with_other_content_refuses_the_whole_batch,
    one_event_twice_in_a_batch_is_one_leaf,
    invalid_events_are_named_and_nothing_is_written,
    workspaces_never_mix,
    what_was_recorded_reads_back,
    concurrent_appends_number_leaves_without_gaps,
    one_batch_sent_by_many_at_once_is_recorded_once,
    appends_alternating_between_replicas_grow_one_tree,
    an_anonymous_caller_has_no_id_and_others_must,
);

async fn events_take_the_next_leaves_and_resends_take_none(app: TestApp) {
    let batch = vec![
        event("end_user.created"),
        event("end_user.updated"),
        event("end_user.deactivated"),
    ];
    let first = app.append(batch.clone()).await;
    let leaves: Vec<i64> = first.iter().map(|e| e.leaf_index).collect();
    assert_eq!(leaves, [0, 1, 2]);
    assert!(
        first
            .iter()
            .all(|e| !e.already_recorded && e.workspace_id == WS)
    );
    let checkpoint = app.checkpoint().await;
    assert_eq!(checkpoint.tree_size, 3);

    // The relay did not hear the answer and sends the batch again.
    let again = app.append(batch.clone()).await;
    assert_eq!(
        again.iter().map(|e| e.leaf_index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(again.iter().all(|e| e.already_recorded));
    assert_eq!(
        app.checkpoint().await,
        checkpoint,
        "a resend signs nothing new"
    );

    // A resend mixed with a new event: only the new one grows the log.
    let next = app
        .append(vec![batch[1].clone(), event("end_user.deleted")])
        .await;
    assert_eq!((next[0].leaf_index, next[0].already_recorded), (1, true));
    assert_eq!((next[1].leaf_index, next[1].already_recorded), (3, false));
    assert_eq!(app.checkpoint().await.tree_size, 4);
}

async fn an_event_id_with_other_content_refuses_the_whole_batch(app: TestApp) {
    let original = event("end_user.updated");
    app.append(vec![original.clone()]).await;
    let fresh = event("end_user.created");
    let mut reused = original.clone();
    reused.action = "end_user.deleted".into();
    let status = assert_refused(
        app.try_append(vec![fresh.clone(), reused]).await,
        Code::AlreadyExists,
        "EVENT_ID_REUSED",
    );
    assert!(status.message().contains("action"), "{status:?}");
    let resource = status.get_error_details().resource_info().cloned().unwrap();
    assert_eq!(resource.resource_name, original.event_id);
    assert_eq!(
        app.checkpoint().await.tree_size,
        1,
        "nothing of the batch was written"
    );
    assert_refused(
        app.get(&fresh.event_id).await,
        Code::NotFound,
        "EVENT_NOT_FOUND",
    );

    // A personal value differing is other content too.
    let mut other_ip = original.clone();
    other_ip.caller_ip = "198.51.100.1".into();
    let status = assert_refused(
        app.try_append(vec![other_ip]).await,
        Code::AlreadyExists,
        "EVENT_ID_REUSED",
    );
    assert!(status.message().contains("caller_ip"), "{status:?}");
    // The same value spelt another way is the same content.
    let mut same = original.clone();
    same.changes[0].before_json = Some(" \"kirk@example.com\" ".into());
    assert!(app.append(vec![same]).await[0].already_recorded);
    // So is a resend whose personal values the producer redacted since the first delivery
    // (erased before it was acknowledged): nothing is added, nothing changes.
    let mut redacted = original.clone();
    redacted.caller_ip = String::new();
    redacted.user_agent = String::new();
    for change in &mut redacted.changes {
        change.before_json = None;
        change.after_json = None;
    }
    assert!(app.append(vec![redacted]).await[0].already_recorded);
    let kept = app.get(&original.event_id).await.unwrap();
    assert_eq!(kept.caller_ip, original.caller_ip);
    assert_eq!(app.checkpoint().await.tree_size, 1);
}

async fn one_event_twice_in_a_batch_is_one_leaf(app: TestApp) {
    let twice = event("end_user.updated");
    let answers = app
        .append(vec![
            twice.clone(),
            event("end_user.created"),
            twice.clone(),
        ])
        .await;
    assert_eq!(
        answers
            .iter()
            .map(|a| (a.leaf_index, a.already_recorded))
            .collect::<Vec<_>>(),
        [(0, false), (1, false), (0, true)]
    );
    let fresh = event("end_user.created");
    assert_refused(
        app.try_append(vec![fresh.clone(), fresh.clone(), {
            let mut other = fresh.clone();
            other.request_id = "req-2".into();
            other
        }])
        .await,
        Code::AlreadyExists,
        "EVENT_ID_REUSED",
    );
    assert_eq!(app.checkpoint().await.tree_size, 2);
}

async fn invalid_events_are_named_and_nothing_is_written(app: TestApp) {
    let good = event("end_user.created");
    let mut bad = event("end_user.updated");
    bad.event_id = "not-a-uuid".into();
    bad.occurred_at = None;
    bad.actor = Some(pb::Actor {
        kind: pb::ActorKind::Unspecified as i32,
        id: String::new(),
        display_name: "x".repeat(300),
    });
    bad.action = "Updated".into();
    bad.target = Some(pb::Target {
        r#type: "End User".into(),
        id: "u".into(),
    });
    bad.changes = vec![pb::FieldChange {
        field: String::new(),
        before_json: Some("{not json".into()),
        ..Default::default()
    }];
    bad.outcome = pb::Outcome::Unspecified as i32;
    bad.caller_ip = "somewhere".into();
    bad.user_agent = "bad\u{7}agent".into();
    bad.source_service = String::new();
    bad.schema_version = 0;
    let status = assert_refused(
        app.try_append(vec![good.clone(), bad]).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "events[1].action",
            "events[1].actor.display_name",
            "events[1].actor.id",
            "events[1].actor.kind",
            "events[1].caller_ip",
            "events[1].changes[0].before_json",
            "events[1].changes[0].field",
            "events[1].event_id",
            "events[1].occurred_at",
            "events[1].outcome",
            "events[1].schema_version",
            "events[1].source_service",
            "events[1].target.type",
            "events[1].user_agent",
        ]
    );
    assert_refused(
        app.get(&good.event_id).await,
        Code::NotFound,
        "EVENT_NOT_FOUND",
    );

    let empty = assert_refused(
        app.try_append(vec![]).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&empty), ["events"]);
    let too_many = (0..1001).map(|_| event("end_user.created")).collect();
    assert_refused(
        app.try_append(too_many).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(app.checkpoint().await.tree_size, 0);
}

async fn workspaces_never_mix(app: TestApp) {
    let ours = event_in(WS, "end_user.created");
    let theirs = event_in("globex", "end_user.created");
    let answers = app
        .append(vec![
            ours.clone(),
            theirs.clone(),
            event_in("globex", "end_user.updated"),
        ])
        .await;
    assert_eq!(
        answers
            .iter()
            .map(|a| (a.workspace_id.as_str(), a.leaf_index))
            .collect::<Vec<_>>(),
        [(WS, 0), ("globex", 0), ("globex", 1)]
    );
    let listed = app.list(pb::ListEventsRequest::default()).await;
    assert_eq!(listed.events.len(), 1);
    assert_eq!(listed.events[0].event_id, ours.event_id);
    assert_refused(
        app.get(&theirs.event_id).await,
        Code::NotFound,
        "EVENT_NOT_FOUND",
    );
    let (acme, globex) = (app.checkpoint().await, app.checkpoint_in("globex").await);
    assert_eq!((acme.tree_size, globex.tree_size), (1, 2));
    assert_eq!(globex.origin, "roster.test/audit/globex");
    assert_ne!(acme.root_hash, globex.root_hash);
    // An admin of one workspace reads nothing of another.
    assert_refused(
        app.client()
            .list_events(app.admin(pb::ListEventsRequest {
                workspace_id: "globex".into(),
                ..Default::default()
            }))
            .await,
        Code::PermissionDenied,
        "WORKSPACE_NOT_GRANTED",
    );
    // The same event id may exist in two workspaces: ids are scoped to their log.
    let mut twin = theirs.clone();
    twin.workspace_id = WS.into();
    assert_eq!(app.append(vec![twin]).await[0].leaf_index, 1);
}

async fn what_was_recorded_reads_back(app: TestApp) {
    let mut sent = event("end_user.updated");
    sent.changes.push(pb::FieldChange {
        field: "profile".into(),
        before_json: None,
        after_json: Some("{ \"title\": \"Captain\", \"age\": 34 }".into()),
        ..Default::default()
    });
    sent.caller_ip = "2001:DB8::0:1".into();
    app.append(vec![sent.clone()]).await;
    let read = app.get(&sent.event_id).await.unwrap();
    assert_eq!(read.workspace_id, WS);
    assert_eq!(read.occurred_at, sent.occurred_at, "microseconds kept");
    assert!(read.recorded_at.is_some());
    assert_eq!(read.actor, sent.actor);
    assert_eq!(read.target, sent.target);
    assert_eq!(read.action, "end_user.updated");
    assert_eq!(
        read.changes[0].before_json.as_deref(),
        Some("\"kirk@example.com\"")
    );
    assert_eq!(read.changes[1].before_json, None);
    assert_eq!(
        read.changes[1].after_json.as_deref(),
        Some(r#"{"age":34,"title":"Captain"}"#)
    );
    assert!(!read.changes[1].before_redacted, "absent is not erased");
    assert_eq!(read.caller_ip, "2001:db8::1");
    assert_eq!(read.user_agent, "grpcurl/1.8.6");
    assert_eq!(read.trace_id, sent.trace_id);
    assert_eq!(read.source_service, "directory");
    assert_eq!(read.schema_version, 1);
    assert_eq!(read.leaf_index, 0);
    assert!(read.redacted_fields.is_empty());
    assert_refused(
        app.client()
            .get_event(app.admin(pb::GetEventRequest {
                workspace_id: WS.into(),
                event_id: "nope".into(),
            }))
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
}

/// The resend check runs before the log's lock; a copy of the batch that commits in
/// between makes the others' inserts collide, and they run again to find it recorded.
async fn one_batch_sent_by_many_at_once_is_recorded_once(app: TestApp) {
    let batch: Vec<pb::AuditEvent> = (0..20)
        .map(|at| event(&format!("end_user.updated_{at}")))
        .collect();
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let (app, batch) = (app.clone(), batch.clone());
            tokio::spawn(async move { app.append(batch).await })
        })
        .collect();
    let mut answers = Vec::new();
    for sender in senders {
        answers.push(sender.await.unwrap());
    }
    let leaves: Vec<i64> = answers[0].iter().map(|a| a.leaf_index).collect();
    let mut sorted = leaves.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..20).collect::<Vec<i64>>());
    for answer in &answers {
        assert_eq!(
            answer.iter().map(|a| a.leaf_index).collect::<Vec<_>>(),
            leaves
        );
    }
    let first_records = answers
        .iter()
        .flatten()
        .filter(|answer| !answer.already_recorded)
        .count();
    assert_eq!(first_records, 20, "each event recorded by one call");
    assert_eq!(app.checkpoint().await.tree_size, 20);
    let verification = app.verify().await;
    assert!(verification.verified, "{verification:?}");
}

/// A replica extends its log from the right edge it kept after its last append, unless
/// another replica appended since: then it reads the edge back.
async fn appends_alternating_between_replicas_grow_one_tree(app: TestApp) {
    let (replica, served) =
        spawn_replica(&app.database_url, app.tokens.clone(), app.kek.clone()).await;
    let mut size = 0;
    for round in 0..6usize {
        let (writer, other) = if round % 2 == 0 {
            (&app, &replica)
        } else {
            (&replica, &app)
        };
        for batch in [round + 1, 3] {
            let events = (0..batch).map(|_| event("end_user.updated")).collect();
            let answers = writer.append(events).await;
            let leaves: Vec<i64> = answers.iter().map(|a| a.leaf_index).collect();
            assert_eq!(leaves, (size..size + batch as i64).collect::<Vec<_>>());
            size += batch as i64;
        }
        assert_eq!(other.checkpoint().await, writer.checkpoint().await);
    }
    assert_eq!(app.checkpoint().await.tree_size, size);
    let verification = replica.verify().await;
    assert!(verification.verified, "{verification:?}");
    served.stop().await;
}

async fn concurrent_appends_number_leaves_without_gaps(app: TestApp) {
    // Eight producers at once, each batch also touching a second workspace (locked in name
    // order, so crossing batches cannot deadlock), each also resending its previous batch.
    let producers = (0..8).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            let mut leaves = Vec::new();
            let mut previous: Vec<pb::AuditEvent> = Vec::new();
            for _ in 0..5 {
                let batch = vec![
                    event_in("globex", "end_user.updated"),
                    event("end_user.updated"),
                    event("end_user.created"),
                ];
                let mut sent = batch.clone();
                sent.extend(previous);
                let answers = app.append(sent).await;
                leaves.extend(
                    answers
                        .iter()
                        .filter(|a| a.workspace_id == WS && !a.already_recorded)
                        .map(|a| a.leaf_index),
                );
                previous = batch;
            }
            leaves
        })
    });
    let mut leaves = Vec::new();
    for producer in producers {
        leaves.extend(producer.await.unwrap());
    }
    leaves.sort_unstable();
    assert_eq!(leaves, (0..80).collect::<Vec<i64>>());
    assert_eq!(app.checkpoint().await.tree_size, 80);
    assert_eq!(app.checkpoint_in("globex").await.tree_size, 40);
    let verification = app.verify().await;
    assert!(verification.verified, "{verification:?}");
}

async fn an_anonymous_caller_has_no_id_and_others_must(app: TestApp) {
    // A failed sign-in: nobody proven, only where the attempt came from.
    let mut failed = event("agent.login_failed");
    failed.actor = Some(pb::Actor {
        kind: pb::ActorKind::Anonymous as i32,
        ..Default::default()
    });
    app.append(vec![failed.clone()]).await;
    let read = app.get(&failed.event_id).await.unwrap();
    assert_eq!(read.actor, failed.actor);
    assert_eq!(read.caller_ip, "192.0.2.10");

    let mut nameless = event("end_user.updated");
    nameless.actor = Some(pb::Actor {
        kind: pb::ActorKind::Agent as i32,
        ..Default::default()
    });
    let refused = app.try_append(vec![nameless]).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&refused), ["events[0].actor.id"]);
}

roster_testkit::on_postgres_only!(crate::helpers::run => lookups_by_many_keys_probe_their_index);
roster_testkit::on_postgres_only!(crate::helpers::run => statements_are_planned_with_their_values);

/// A generic plan of the resend check, made while the events table was empty, scanned
/// the workspace's rows for each id and was kept as the log grew (30 s a batch at 70,000
/// events on a server whose autovacuum had not analyzed it). The audit service's
/// connections plan every statement with its values instead.
async fn statements_are_planned_with_their_values(app: TestApp) {
    use sea_orm::{ConnectionTrait as _, DbBackend, Statement};

    let db = roster_audit::prepare_database(&roster_db::DbSettings::new(&app.database_url))
        .await
        .unwrap();
    let mode = db
        .conn()
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SHOW plan_cache_mode",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<String>(0)
        .unwrap();
    db.close().await;
    assert_eq!(mode, "force_custom_plan");
}

/// The resend check runs under the log's lock on every append, and a round of proofs reads
/// hundreds of hashes, so both must cost the same in a log of any size. Before PostgreSQL
/// has analyzed a young log it planned `IN (…)` and a plain join as a scan of the
/// workspace's rows; this keeps the store's statements on their indexes in exactly that
/// state.
async fn lookups_by_many_keys_probe_their_index(app: TestApp) {
    use roster_audit::store::{events, hashes};
    use sea_orm::DbBackend;

    let mut ids = Vec::new();
    for _ in 0..10 {
        let batch: Vec<pb::AuditEvent> = (0..1000)
            .map(|at| event(&format!("end_user.updated_{at}")))
            .collect();
        ids.extend(
            batch
                .iter()
                .map(|e| uuid::Uuid::parse_str(&e.event_id).unwrap()),
        );
        app.append(batch).await;
    }
    let wanted: Vec<uuid::Uuid> = ids.iter().step_by(100).copied().collect();
    let plan = plan_of(
        &app,
        events::by_ids_statement(DbBackend::Postgres, WS, &wanted),
    )
    .await;
    assert_probes(
        &plan,
        "audit_events_event_id",
        "event_id",
        "the resend check",
    );
    let indexes: Vec<u64> = (0..20_000).step_by(50).collect();
    let plan = plan_of(
        &app,
        hashes::read_statement(DbBackend::Postgres, WS, &indexes),
    )
    .await;
    assert_probes(
        &plan,
        "audit_tree_hashes_pkey",
        "stored_index",
        "reading hashes",
    );
}

/// Fails unless `plan` probes `index` once per key of the array, scanning nothing.
fn assert_probes(plan: &str, index: &str, key_column: &str, what: &str) {
    assert!(
        plan.contains(&format!("Index Scan using {index}"))
            && plan.contains(&format!("{key_column} = wanted.key")),
        "{what} no longer probes {index}:\n{plan}"
    );
    assert!(
        !plan.contains("Hash Join") && !plan.contains("Bitmap"),
        "{what} scans the workspace's rows:\n{plan}"
    );
}

/// PostgreSQL's plan for `statement` in the app's database, as EXPLAIN prints it.
async fn plan_of(app: &TestApp, statement: sea_orm::Statement) -> String {
    use sea_orm::ConnectionTrait as _;

    let explain = sea_orm::Statement {
        sql: format!("EXPLAIN {}", statement.sql),
        ..statement
    };
    let db = roster_db::Db::connect(&roster_db::DbSettings::new(&app.database_url))
        .await
        .unwrap();
    let plan: Vec<String> = db
        .conn()
        .query_all_raw(explain)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect();
    db.close().await;
    plan.join("\n")
}
