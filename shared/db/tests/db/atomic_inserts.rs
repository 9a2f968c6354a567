use roster_db::outbox;
use roster_db::testing::TestBackend;
use roster_db::{DbError, Result};
use sea_orm::sea_query::InsertStatement;

use crate::support::{count, event, on_both_backends, parent, setup};

fn event_insert(target: &str) -> InsertStatement {
    outbox::insert_statement(&[event("ws-1", target)]).unwrap()
}

fn unique_violation(result: Result<u64>) -> String {
    match result {
        Err(DbError::UniqueViolation { constraint }) => constraint,
        other => panic!("expected a unique violation, got {other:?}"),
    }
}

async fn inserts_commit_together(backend: &TestBackend) {
    let fx = setup(backend).await;

    fx.db
        .insert_atomically(vec![parent("p1", "one"), event_insert("p1")])
        .await
        .unwrap();

    assert_eq!(count(fx.db.conn(), "SELECT count(*) FROM parents").await, 1);
    let pending = outbox::pending(fx.db.conn(), 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].target_id, "p1");
    fx.teardown().await;
}
on_both_backends!(inserts_commit_together);

async fn a_violation_in_any_insert_writes_none_of_them(backend: &TestBackend) {
    let fx = setup(backend).await;
    fx.db
        .insert_atomically(vec![parent("p1", "one")])
        .await
        .unwrap();

    // The duplicate comes last, after a new parent and an event that would have succeeded.
    let last = fx
        .db
        .insert_atomically(vec![
            parent("p2", "two"),
            event_insert("p2"),
            parent("p3", "one"),
        ])
        .await;
    // ... and first, before them.
    let first = fx
        .db
        .insert_atomically(vec![
            parent("p1", "uno"),
            parent("p4", "four"),
            event_insert("p4"),
        ])
        .await;

    assert!(unique_violation(last).contains("name"));
    // The primary key's name differs by engine (SQLite names its columns instead).
    unique_violation(first);
    assert_eq!(count(fx.db.conn(), "SELECT count(*) FROM parents").await, 1);
    assert!(outbox::pending(fx.db.conn(), 10).await.unwrap().is_empty());
    fx.teardown().await;
}
on_both_backends!(a_violation_in_any_insert_writes_none_of_them);

async fn nothing_to_insert_is_no_write(backend: &TestBackend) {
    let fx = setup(backend).await;

    fx.db.insert_atomically(Vec::new()).await.unwrap();

    assert_eq!(count(fx.db.conn(), "SELECT count(*) FROM parents").await, 0);
    fx.teardown().await;
}
on_both_backends!(nothing_to_insert_is_no_write);
