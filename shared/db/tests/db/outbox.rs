use roster_db::outbox::{self, AuditEvent, entity};
use roster_db::testing::TestBackend;
use sea_orm::{EntityTrait, QueryOrder};

use crate::support::{event, on_both_backends, setup};

fn as_json(events: &[AuditEvent]) -> serde_json::Value {
    serde_json::to_value(events).unwrap()
}

async fn migrate_creates_an_empty_outbox(backend: &TestBackend) {
    let fx = setup(backend).await;

    let pending = outbox::pending(fx.db.conn(), 10).await.unwrap();
    // A second run finds nothing to do and must not fail.
    fx.db
        .migrate::<crate::support::TestMigrator>()
        .await
        .unwrap();

    assert!(pending.is_empty());
    fx.teardown().await;
}
on_both_backends!(migrate_creates_an_empty_outbox);

async fn committed_append_is_visible_with_every_field(backend: &TestBackend) {
    let fx = setup(backend).await;
    let events = vec![event("ws-1", "u-1"), event("ws-1", "u-2")];

    let txn = fx.db.begin_write().await.unwrap();
    outbox::append(&*txn, &events).await.unwrap();
    txn.commit().await.unwrap();

    let pending = outbox::pending(fx.db.conn(), 10).await.unwrap();
    assert_eq!(as_json(&pending), as_json(&events));
    fx.teardown().await;
}
on_both_backends!(committed_append_is_visible_with_every_field);

async fn rolled_back_or_dropped_append_is_not_visible(backend: &TestBackend) {
    let fx = setup(backend).await;

    let txn = fx.db.begin_write().await.unwrap();
    outbox::append(&*txn, &[event("ws-1", "u-1")])
        .await
        .unwrap();
    txn.rollback().await.unwrap();

    let txn = fx.db.begin_write().await.unwrap();
    outbox::append(&*txn, &[event("ws-1", "u-2")])
        .await
        .unwrap();
    drop(txn);

    // The next writer must not be blocked by the dropped transaction either.
    let txn = fx.db.begin_write().await.unwrap();
    let seen_inside = outbox::pending(&*txn, 10).await.unwrap();
    txn.commit().await.unwrap();
    let seen_after = outbox::pending(fx.db.conn(), 10).await.unwrap();

    assert!(seen_inside.is_empty());
    assert!(seen_after.is_empty());
    fx.teardown().await;
}
on_both_backends!(rolled_back_or_dropped_append_is_not_visible);

async fn pending_is_oldest_first_per_workspace_and_limited(backend: &TestBackend) {
    let fx = setup(backend).await;
    let first = vec![event("ws-a", "1"), event("ws-b", "2")];
    let second = vec![event("ws-a", "3"), event("ws-b", "4"), event("ws-a", "5")];

    for batch in [&first, &second] {
        let txn = fx.db.begin_write().await.unwrap();
        outbox::append(&*txn, batch).await.unwrap();
        txn.commit().await.unwrap();
    }

    let all = outbox::pending(fx.db.conn(), 100).await.unwrap();
    let two = outbox::pending(fx.db.conn(), 2).await.unwrap();
    let ws_a = outbox::pending_for_workspace(fx.db.conn(), "ws-a", 100)
        .await
        .unwrap();
    let targets = |evs: &[AuditEvent]| evs.iter().map(|e| e.target_id.clone()).collect::<Vec<_>>();

    assert_eq!(targets(&all), ["1", "2", "3", "4", "5"]);
    assert_eq!(targets(&two), ["1", "2"]);
    assert_eq!(targets(&ws_a), ["1", "3", "5"]);
    fx.teardown().await;
}
on_both_backends!(pending_is_oldest_first_per_workspace_and_limited);

async fn large_batch_spans_several_inserts_and_seq_increases(backend: &TestBackend) {
    let fx = setup(backend).await;
    let events: Vec<AuditEvent> = (0..1_234)
        .map(|i| event("ws-1", &format!("u-{i}")))
        .collect();

    let txn = fx.db.begin_write().await.unwrap();
    outbox::append(&*txn, &events).await.unwrap();
    outbox::append(&*txn, &[]).await.unwrap();
    txn.commit().await.unwrap();

    let pending = outbox::pending(fx.db.conn(), 5_000).await.unwrap();
    let rows = entity::Entity::find()
        .order_by_asc(entity::Column::Seq)
        .all(fx.db.conn())
        .await
        .unwrap();
    assert_eq!(as_json(&pending), as_json(&events));
    assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(
        rows.iter()
            .all(|r| r.attempts == 0 && r.delivered_at.is_none())
    );
    fx.teardown().await;
}
on_both_backends!(large_batch_spans_several_inserts_and_seq_increases);

async fn redact_pending_drops_personal_values_of_pending_rows_about_the_targets(
    backend: &TestBackend,
) {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, QueryFilter};
    let fx = setup(backend).await;
    let events = vec![
        event("ws-a", "subject"),
        event("ws-a", "delivered"),
        event("ws-a", "bystander"),
        event("ws-b", "subject"),
    ];
    let txn = fx.db.begin_write().await.unwrap();
    outbox::append(&*txn, &events).await.unwrap();
    txn.commit().await.unwrap();
    entity::Entity::update_many()
        .col_expr(entity::Column::DeliveredAt, Expr::value(Some(1_i64)))
        .filter(entity::Column::EventId.eq(events[1].event_id))
        .exec(fx.db.conn())
        .await
        .unwrap();

    let txn = fx.db.begin_write().await.unwrap();
    let targets = ["subject".to_owned(), "delivered".to_owned()];
    let redacted = outbox::redact_pending(&*txn, "ws-a", "end_user", &targets, |field| {
        field != "status"
    })
    .await
    .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(redacted, 1);

    let rows = entity::Entity::find()
        .order_by_asc(entity::Column::Seq)
        .all(fx.db.conn())
        .await
        .unwrap();
    let stored: Vec<AuditEvent> = outbox::pending(fx.db.conn(), 10).await.unwrap();
    let subject = &stored[0];
    assert_eq!(
        (subject.workspace_id.as_str(), subject.target_id.as_str()),
        ("ws-a", "subject")
    );
    assert_eq!(
        subject.changes[0], events[0].changes[0],
        "status is not personal"
    );
    assert_eq!(subject.changes[1].field, "notes");
    assert_eq!(
        (&subject.changes[1].before, &subject.changes[1].after),
        (&None, &None)
    );
    assert_eq!((&subject.peer_ip, &subject.user_agent), (&None, &None));
    // The delivered row, other targets and other workspaces keep everything.
    assert_eq!(rows[1].peer_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(
        as_json(&stored[1..]),
        as_json(&[events[2].clone(), events[3].clone()])
    );
    fx.teardown().await;
}
on_both_backends!(redact_pending_drops_personal_values_of_pending_rows_about_the_targets);
