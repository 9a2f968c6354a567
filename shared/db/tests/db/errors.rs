use roster_db::outbox;
use roster_db::testing::TestBackend;
use roster_db::{Backend, DbError};
use sea_orm::{IsolationLevel, TransactionTrait};

use crate::support::{event, exec, on_both_backends, postgres, postgres_missing, setup};

async fn duplicate_event_is_a_unique_violation_naming_the_key(backend: &TestBackend) {
    let fx = setup(backend).await;
    let ev = event("ws-1", "u-1");
    outbox::append(fx.db.conn(), std::slice::from_ref(&ev))
        .await
        .unwrap();

    let err = outbox::append(fx.db.conn(), &[ev]).await.unwrap_err();

    let DbError::UniqueViolation { constraint } = &err else {
        panic!("expected UniqueViolation, got {err:?}");
    };
    match fx.db.backend() {
        Backend::Postgres => assert_eq!(constraint, "outbox_events_pkey"),
        Backend::Sqlite => assert_eq!(
            constraint,
            "outbox_events.workspace_id, outbox_events.event_id"
        ),
    }
    assert!(!err.is_retryable());
    fx.teardown().await;
}
on_both_backends!(duplicate_event_is_a_unique_violation_naming_the_key);

async fn secondary_unique_constraint_is_identifiable(backend: &TestBackend) {
    let fx = setup(backend).await;
    exec(
        fx.db.conn(),
        "INSERT INTO parents VALUES ('ws-1', 'p-1', 'Acme')",
    )
    .await
    .unwrap();

    let err = exec(
        fx.db.conn(),
        "INSERT INTO parents VALUES ('ws-1', 'p-2', 'Acme')",
    )
    .await
    .unwrap_err();

    // PostgreSQL names the constraint, SQLite lists its columns; both mention "name".
    match &err {
        DbError::UniqueViolation { constraint } => assert!(
            constraint.contains("name"),
            "constraint {constraint:?} should identify the name column"
        ),
        other => panic!("expected UniqueViolation, got {other:?}"),
    }
    fx.teardown().await;
}
on_both_backends!(secondary_unique_constraint_is_identifiable);

async fn missing_parent_is_a_foreign_key_violation(backend: &TestBackend) {
    let fx = setup(backend).await;

    let err = exec(
        fx.db.conn(),
        "INSERT INTO children VALUES ('ws-1', 'c-1', 'nope')",
    )
    .await
    .unwrap_err();

    assert!(
        matches!(err, DbError::ForeignKeyViolation),
        "expected ForeignKeyViolation, got {err:?}"
    );
    fx.teardown().await;
}
on_both_backends!(missing_parent_is_a_foreign_key_violation);

#[tokio::test]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn postgres_serialization_failure_is_a_retryable_conflict() {
    let Some(backend) = postgres() else {
        postgres_missing()
    };
    let fx = setup(&backend).await;
    exec(
        fx.db.conn(),
        "INSERT INTO parents VALUES ('ws-1', 'p-1', 'Acme')",
    )
    .await
    .unwrap();
    let loser = fx
        .db
        .conn()
        .begin_with_config(Some(IsolationLevel::RepeatableRead), None)
        .await
        .unwrap();
    exec(&loser, "SELECT name FROM parents WHERE id = 'p-1'")
        .await
        .unwrap();

    exec(
        fx.db.conn(),
        "UPDATE parents SET name = 'Acme Inc' WHERE id = 'p-1'",
    )
    .await
    .unwrap();
    let err = exec(
        &loser,
        "UPDATE parents SET name = 'Acme Ltd' WHERE id = 'p-1'",
    )
    .await
    .unwrap_err();

    assert!(
        matches!(err, DbError::Conflict),
        "expected Conflict, got {err:?}"
    );
    assert!(err.is_retryable());
    loser.rollback().await.unwrap();
    fx.teardown().await;
}
