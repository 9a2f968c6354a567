//! The shared retry policy: a write that lost a race runs again from the start, its failed
//! attempts leave nothing behind, and only what a retry can fix is retried.

use std::sync::atomic::{AtomicU32, Ordering};

use roster_db::retry::MAX_ATTEMPTS;
use roster_db::testing::TestBackend;
use roster_db::{DbError, in_write_txn};

use crate::support::{count, exec, on_both_backends, parent, setup};

async fn a_conflicting_transaction_runs_again_and_only_its_last_attempt_commits(
    backend: &TestBackend,
) {
    let fx = setup(backend).await;
    let attempts = AtomicU32::new(0);
    let outcome: Result<u32, DbError> =
        in_write_txn!(fx.db, DbError, retry_unique = false, |txn| {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            exec(
                &*txn,
                &format!("INSERT INTO parents VALUES ('ws-1', 'p{attempt}', 'name-{attempt}')"),
            )
            .await?;
            if attempt < 3 {
                // As a serialization failure or deadlock would end the attempt.
                return Err(DbError::Conflict);
            }
            Ok(attempt)
        });
    assert_eq!(outcome.ok(), Some(3));
    assert_eq!(count(fx.db.conn(), "SELECT count(*) FROM parents").await, 1);
    assert_eq!(
        count(fx.db.conn(), "SELECT count(*) FROM parents WHERE id = 'p3'").await,
        1
    );
    fx.teardown().await;
}

async fn conflicts_are_retried_a_bounded_number_of_times(backend: &TestBackend) {
    let fx = setup(backend).await;
    let attempts = AtomicU32::new(0);
    let outcome: Result<(), DbError> = in_write_txn!(fx.db, DbError, retry_unique = true, |txn| {
        attempts.fetch_add(1, Ordering::SeqCst);
        exec(&*txn, "INSERT INTO parents VALUES ('ws-1', 'p', 'n')").await?;
        Err(DbError::Conflict)
    });
    assert!(matches!(outcome, Err(DbError::Conflict)));
    assert_eq!(attempts.load(Ordering::SeqCst), MAX_ATTEMPTS);
    assert_eq!(count(fx.db.conn(), "SELECT count(*) FROM parents").await, 0);
    fx.teardown().await;
}

async fn unique_violations_are_retried_only_when_asked(backend: &TestBackend) {
    let fx = setup(backend).await;
    exec(
        fx.db.conn(),
        "INSERT INTO parents VALUES ('ws-1', 'taken', 'n')",
    )
    .await
    .unwrap();
    for (retry_unique, expected_attempts) in [(false, 1), (true, MAX_ATTEMPTS)] {
        let attempts = AtomicU32::new(0);
        let outcome: Result<(), DbError> =
            in_write_txn!(fx.db, DbError, retry_unique = retry_unique, |txn| {
                attempts.fetch_add(1, Ordering::SeqCst);
                exec(&*txn, "INSERT INTO parents VALUES ('ws-1', 'taken', 'n')").await?;
                Ok(())
            });
        assert!(
            matches!(outcome, Err(DbError::UniqueViolation { .. })),
            "{outcome:?}"
        );
        assert_eq!(attempts.load(Ordering::SeqCst), expected_attempts);
    }
    fx.teardown().await;
}

async fn atomic_inserts_are_rebuilt_for_each_attempt(backend: &TestBackend) {
    let fx = setup(backend).await;
    exec(
        fx.db.conn(),
        "INSERT INTO parents VALUES ('ws-1', 'p1', 'n1')",
    )
    .await
    .unwrap();
    // The first attempt collides on the primary key; the retry builds a fresh id, as a
    // create retried after losing a race to a concurrent one would.
    let mut next_id = 0;
    let outcome = roster_db::retry::insert_atomically(&fx.db, true, || {
        next_id += 1;
        let id = format!("p{next_id}");
        Ok::<_, DbError>((id.clone(), vec![parent(&id, &format!("n{next_id}"))]))
    })
    .await;
    assert_eq!(outcome.ok(), Some(("p2".to_owned(), 1)));
    assert_eq!(count(fx.db.conn(), "SELECT count(*) FROM parents").await, 2);
    fx.teardown().await;
}

on_both_backends!(a_conflicting_transaction_runs_again_and_only_its_last_attempt_commits);
on_both_backends!(conflicts_are_retried_a_bounded_number_of_times);
on_both_backends!(unique_violations_are_retried_only_when_asked);
on_both_backends!(atomic_inserts_are_rebuilt_for_each_attempt);
