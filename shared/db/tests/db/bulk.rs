//! Set-based writes on PostgreSQL (`roster_db::bulk`), and the outbox's bulk append.

use roster_db::bulk::{self, CopyRows, Locking};
use roster_db::outbox;
use roster_db::testing::TestBackend;
use sea_orm::{EntityTrait, QueryOrder};

use crate::support::{event, note, on_both_backends, setup};

fn note(id: &str, body: &str, tag: Option<&str>, version: i64) -> note::Model {
    note::Model {
        workspace_id: "ws-1".to_owned(),
        id: id.to_owned(),
        body: body.to_owned(),
        tag: tag.map(str::to_owned),
        stars: None,
        version,
    }
}

/// Inserts `notes` with one COPY; returns the rows inserted.
async fn insert_notes(txn: &mut bulk::PgTxn, notes: impl IntoIterator<Item = note::Model>) -> u64 {
    let mut rows = CopyRows::new();
    for model in notes {
        rows.push_model::<note::Entity>(model).unwrap();
    }
    bulk::insert_models::<note::Entity>(txn, rows)
        .await
        .unwrap()
}

async fn begin_postgres_is_for_postgres_only(backend: &TestBackend) {
    let fx = setup(backend).await;
    let txn = fx.db.begin_postgres().await.unwrap();
    assert_eq!(txn.is_some(), matches!(backend, TestBackend::Postgres(_)));
    if let Some(txn) = txn {
        txn.rollback().await.unwrap();
    }
    fx.teardown().await;
}
on_both_backends!(begin_postgres_is_for_postgres_only);

async fn models_round_trip_with_nulls_and_awkward_text(backend: &TestBackend) {
    let fx = setup(backend).await;
    let Some(mut txn) = fx.db.begin_postgres().await.unwrap() else {
        return fx.teardown().await;
    };
    let written = vec![
        note(
            "a",
            "tab\there, newline\nthere, back\\slash, quote \" and 'x'",
            None,
            1,
        ),
        note("b", "", Some("ünïcødé ✓"), 1),
    ];
    assert_eq!(insert_notes(&mut txn, written.clone()).await, 2);

    let ids = vec!["a".to_owned(), "b".to_owned(), "missing".to_owned()];
    let mut found =
        bulk::select_any::<note::Entity>(&mut txn, "ws-1", note::Column::Id, &ids, Locking::None)
            .await
            .unwrap();
    found.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(found, written);
    let other_workspace = bulk::select_any::<note::Entity>(
        &mut txn,
        "ws-2",
        note::Column::Id,
        &ids,
        Locking::ForUpdate,
    )
    .await
    .unwrap();
    assert!(
        other_workspace.is_empty(),
        "lookups stay in their workspace"
    );
    txn.commit().await.unwrap();
    fx.teardown().await;
}
on_both_backends!(models_round_trip_with_nulls_and_awkward_text);

async fn updates_apply_only_where_the_version_still_matches(backend: &TestBackend) {
    let fx = setup(backend).await;
    let Some(mut txn) = fx.db.begin_postgres().await.unwrap() else {
        return fx.teardown().await;
    };
    insert_notes(
        &mut txn,
        [note("a", "one", None, 1), note("b", "two", None, 1)],
    )
    .await;

    let mut changed_a = note("a", "one, edited", Some("t"), 2);
    changed_a.stars = Some(5);
    // "b" was read at version 7, which it never had: someone else's write came first.
    let changed_b = note("b", "two, edited", None, 8);
    let rows =
        bulk::versioned_rows::<note::Entity>([(1, changed_a.clone()), (7, changed_b)]).unwrap();
    let updated = bulk::update_models::<note::Entity>(&mut txn, note::Column::Version, rows)
        .await
        .unwrap();
    txn.commit().await.unwrap();

    assert_eq!(updated, 1, "only the row still at its read version");
    let stored = note::Entity::find()
        .order_by_asc(note::Column::Id)
        .all(fx.db.conn())
        .await
        .unwrap();
    assert_eq!(stored, vec![changed_a, note("b", "two", None, 1)]);
    fx.teardown().await;
}
on_both_backends!(updates_apply_only_where_the_version_still_matches);

async fn bulk_append_matches_append_field_for_field(backend: &TestBackend) {
    let fx = setup(backend).await;
    let Some(mut txn) = fx.db.begin_postgres().await.unwrap() else {
        return fx.teardown().await;
    };
    let mut events = vec![event("ws-1", "u-1"), event("ws-1", "u-2")];
    events[1].trace_id = None;
    events[1].traceparent = None;
    events[1].changes[0].after = Some(serde_json::json!("tab\tand \"quotes\""));
    let rows = outbox::bulk_rows(events.clone()).unwrap();
    outbox::bulk_append(&mut txn, rows).await.unwrap();
    txn.commit().await.unwrap();

    let pending = outbox::pending(fx.db.conn(), 10).await.unwrap();
    assert_eq!(
        serde_json::to_value(&pending).unwrap(),
        serde_json::to_value(&events).unwrap()
    );
    fx.teardown().await;
}
on_both_backends!(bulk_append_matches_append_field_for_field);

async fn a_rolled_back_bulk_write_leaves_nothing(backend: &TestBackend) {
    let fx = setup(backend).await;
    let Some(mut txn) = fx.db.begin_postgres().await.unwrap() else {
        return fx.teardown().await;
    };
    insert_notes(&mut txn, [note("a", "one", None, 1)]).await;
    let events = outbox::bulk_rows(vec![event("ws-1", "u-1")]).unwrap();
    outbox::bulk_append(&mut txn, events).await.unwrap();
    drop(txn);

    assert!(
        note::Entity::find()
            .all(fx.db.conn())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(outbox::pending(fx.db.conn(), 10).await.unwrap().is_empty());
    fx.teardown().await;
}
on_both_backends!(a_rolled_back_bulk_write_leaves_nothing);

/// During a large import the table's statistics lag far behind its size; the lookups must
/// probe the index anyway rather than scan the table once per batch.
async fn lookups_use_the_index_without_statistics(backend: &TestBackend) {
    let fx = setup(backend).await;
    let Some(mut txn) = fx.db.begin_postgres().await.unwrap() else {
        return fx.teardown().await;
    };
    insert_notes(
        &mut txn,
        (0..20_000).map(|i| note(&format!("n{i}"), "body", None, 1)),
    )
    .await;
    txn.commit().await.unwrap();

    let values: Vec<String> = (0..1000).map(|i| format!("n{}", i * 7)).collect();
    let sql = format!(
        "EXPLAIN {}",
        bulk::select_any_statement::<note::Entity>(note::Column::Id, Locking::None)
    );
    let pool = fx.db.conn().get_postgres_connection_pool();
    let plan: Vec<String> = sea_orm::sqlx::query_scalar(sea_orm::sqlx::AssertSqlSafe(sql))
        .bind("ws-1")
        .bind(&values)
        .fetch_all(pool)
        .await
        .unwrap();
    let plan = plan.join("\n");
    // Each value is an index condition; a plan that probes only by workspace and filters the
    // values afterwards reads the whole workspace, index or not.
    assert!(!plan.contains("Seq Scan on notes"), "{plan}");
    assert!(
        plan.lines()
            .any(|line| line.contains("Index Cond") && line.contains("k.value")),
        "{plan}"
    );
    fx.teardown().await;
}
on_both_backends!(lookups_use_the_index_without_statistics);

/// A locking read keeps other writers off the rows it found until its transaction ends, and
/// leaves the rows it did not find alone.
async fn locking_reads_hold_the_rows_they_found(backend: &TestBackend) {
    let fx = setup(backend).await;
    let Some(mut txn) = fx.db.begin_postgres().await.unwrap() else {
        return fx.teardown().await;
    };
    insert_notes(
        &mut txn,
        [note("a", "one", None, 1), note("b", "two", None, 1)],
    )
    .await;
    txn.commit().await.unwrap();

    let mut locker = fx.db.begin_postgres().await.unwrap().unwrap();
    let ids = vec!["a".to_owned(), "missing".to_owned()];
    let found = bulk::select_any::<note::Entity>(
        &mut locker,
        "ws-1",
        note::Column::Id,
        &ids,
        Locking::ForUpdate,
    )
    .await
    .unwrap();
    assert_eq!(found.len(), 1);

    let pool = fx.db.conn().get_postgres_connection_pool();
    let try_update = |id: &'static str| async move {
        let mut other = pool.begin().await.unwrap();
        sea_orm::sqlx::query("SET LOCAL lock_timeout = '200ms'")
            .execute(&mut *other)
            .await
            .unwrap();
        let updated = sea_orm::sqlx::query("UPDATE notes SET body = 'other' WHERE id = $1")
            .bind(id)
            .execute(&mut *other)
            .await;
        other.rollback().await.ok();
        updated
    };
    let blocked = try_update("a").await.expect_err("the locked row is held");
    assert_eq!(
        blocked
            .as_database_error()
            .and_then(|e| e.code())
            .as_deref(),
        Some("55P03"),
        "{blocked}"
    );
    try_update("b").await.expect("an unlocked row is free");
    locker.rollback().await.unwrap();
    try_update("a")
        .await
        .expect("the lock ends with its transaction");
    fx.teardown().await;
}
on_both_backends!(locking_reads_hold_the_rows_they_found);
