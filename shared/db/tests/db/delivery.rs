use std::collections::BTreeSet;
use std::time::Duration;

use roster_db::delivery::{self, Backlog, Claimed, DeliveryPolicy};
use roster_db::outbox::{self, AuditEvent};
use roster_db::testing::TestBackend;

use crate::support::{Fixture, event, on_both_backends, postgres, postgres_missing, setup};

const LEASE: Duration = Duration::from_secs(30);
const SECOND: i64 = 1_000_000;

fn policy() -> DeliveryPolicy {
    DeliveryPolicy {
        lease: LEASE,
        max_attempts: 3,
        first_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(8),
    }
}

async fn append(fx: &Fixture, events: &[AuditEvent]) {
    let txn = fx.db.begin_write().await.unwrap();
    outbox::append(&*txn, events).await.unwrap();
    txn.commit().await.unwrap();
}

async fn claim(fx: &Fixture, limit: u64, now: i64) -> Vec<Claimed> {
    let txn = fx.db.begin_write().await.unwrap();
    let claimed = delivery::claim(&*txn, limit, now, LEASE).await.unwrap();
    txn.commit().await.unwrap();
    claimed
}

fn targets(claimed: &[Claimed]) -> Vec<String> {
    claimed.iter().map(|c| c.event.target_id.clone()).collect()
}

async fn a_claim_holds_rows_for_its_lease_and_expired_leases_are_claimed_again(
    backend: &TestBackend,
) {
    let fx = setup(backend).await;
    append(
        &fx,
        &[event("ws-a", "1"), event("ws-b", "2"), event("ws-a", "3")],
    )
    .await;
    let now = 1_000 * SECOND;

    let first = claim(&fx, 2, now).await;
    assert_eq!(targets(&first), ["1", "2"], "oldest first, up to the limit");
    assert!(first.iter().all(|c| c.attempts == 1));
    // Another relay during the lease gets only what the first did not take.
    assert_eq!(targets(&claim(&fx, 10, now + SECOND).await), ["3"]);
    assert!(claim(&fx, 10, now + 2 * SECOND).await.is_empty());
    // The first relay died: once its lease is over, its rows are due again.
    let lease_end = now + 30 * SECOND;
    let again = claim(&fx, 10, lease_end).await;
    assert_eq!(targets(&again), ["1", "2"]);
    assert!(again.iter().all(|c| c.attempts == 2));
    fx.teardown().await;
}
on_both_backends!(a_claim_holds_rows_for_its_lease_and_expired_leases_are_claimed_again);

async fn delivered_rows_leave_the_queue_and_are_purged_after_their_time(backend: &TestBackend) {
    let fx = setup(backend).await;
    append(&fx, &[event("ws-a", "1"), event("ws-a", "2")]).await;
    let now = 1_000 * SECOND;
    let claimed = claim(&fx, 10, now).await;
    let conn = fx.db.conn();

    assert_eq!(
        delivery::mark_delivered(conn, &claimed[..1], now)
            .await
            .unwrap(),
        1
    );
    // A late second acknowledgement (an expired lease sent it twice) changes nothing.
    assert_eq!(
        delivery::mark_delivered(conn, &claimed[..1], now + SECOND)
            .await
            .unwrap(),
        0
    );
    let backlog = delivery::backlog(conn).await.unwrap();
    assert_eq!(
        backlog,
        Backlog {
            pending: 1,
            dead: 0,
            oldest_pending_at: Some(claimed[1].event.occurred_at_us),
        }
    );
    assert!(claim(&fx, 10, now + 60 * SECOND).await.len() == 1);

    assert_eq!(delivery::purge_delivered(conn, now, 100).await.unwrap(), 0);
    assert_eq!(
        delivery::purge_delivered(conn, now + 1, 100).await.unwrap(),
        1
    );
    assert_eq!(
        outbox::pending(conn, 10).await.unwrap().len(),
        1,
        "the undelivered row stays"
    );
    fx.teardown().await;
}
on_both_backends!(delivered_rows_leave_the_queue_and_are_purged_after_their_time);

async fn an_unreachable_audit_service_delays_rows_but_never_kills_them(backend: &TestBackend) {
    let fx = setup(backend).await;
    append(&fx, &[event("ws-a", "1")]).await;
    let policy = policy();
    let mut now = 1_000 * SECOND;
    for attempt in 1..=10 {
        let claimed = claim(&fx, 10, now).await;
        assert_eq!(claimed.len(), 1, "attempt {attempt}");
        delivery::retry_later(fx.db.conn(), &claimed, "connection refused", now, &policy)
            .await
            .unwrap();
        // Not due before its backoff (1 s, doubling, at most 8 s) is over.
        let wait = (1_i64 << (attempt - 1).min(3)) * SECOND;
        assert!(claim(&fx, 10, now + wait - 1).await.is_empty());
        now += wait;
    }
    let backlog = delivery::backlog(fx.db.conn()).await.unwrap();
    assert_eq!((backlog.pending, backlog.dead), (1, 0));
    fx.teardown().await;
}
on_both_backends!(an_unreachable_audit_service_delays_rows_but_never_kills_them);

async fn refused_rows_become_dead_letters_that_an_operator_can_retry(backend: &TestBackend) {
    let fx = setup(backend).await;
    append(&fx, &[event("ws-a", "poison"), event("ws-a", "fine")]).await;
    let policy = policy();
    let mut now = 1_000 * SECOND;
    for attempt in 1..=3 {
        let claimed = claim(&fx, 10, now).await;
        let (poison, fine): (Vec<Claimed>, Vec<Claimed>) = claimed
            .into_iter()
            .partition(|c| c.event.target_id == "poison");
        assert_eq!(poison.len(), 1, "attempt {attempt}");
        let died = delivery::reject(fx.db.conn(), &poison, "INVALID_ARGUMENT: bad", now, &policy)
            .await
            .unwrap();
        assert_eq!(died, u64::from(attempt == 3));
        delivery::mark_delivered(fx.db.conn(), &fine, now)
            .await
            .unwrap();
        now += 60 * SECOND;
    }
    assert!(
        claim(&fx, 10, now).await.is_empty(),
        "dead letters are not sent"
    );
    let backlog = delivery::backlog(fx.db.conn()).await.unwrap();
    assert_eq!((backlog.pending, backlog.dead), (0, 1));
    assert_eq!(backlog.oldest_pending_at, None);

    assert_eq!(delivery::retry_dead(fx.db.conn(), now).await.unwrap(), 1);
    let retried = claim(&fx, 10, now).await;
    assert_eq!(targets(&retried), ["poison"]);
    assert_eq!(retried[0].attempts, 1, "a retried dead letter starts over");
    fx.teardown().await;
}
on_both_backends!(refused_rows_become_dead_letters_that_an_operator_can_retry);

/// Claims during an outage are not refusals: an event refused after many of them still
/// gets every refusal the policy allows before it dies.
async fn an_outage_does_not_use_up_an_events_refusals(backend: &TestBackend) {
    let fx = setup(backend).await;
    append(&fx, &[event("ws-a", "poison")]).await;
    let policy = policy();
    let mut now = 1_000 * SECOND;
    for _ in 0..5 {
        let claimed = claim(&fx, 10, now).await;
        delivery::retry_later(fx.db.conn(), &claimed, "connection refused", now, &policy)
            .await
            .unwrap();
        now += 60 * SECOND;
    }
    for refusal in 1..=3 {
        let claimed = claim(&fx, 10, now).await;
        assert_eq!(claimed.len(), 1, "refusal {refusal}");
        assert_eq!(claimed[0].refusals, refusal - 1);
        let died = delivery::reject(
            fx.db.conn(),
            &claimed,
            "INVALID_ARGUMENT: bad",
            now,
            &policy,
        )
        .await
        .unwrap();
        assert_eq!(died, u64::from(refusal == 3), "refusal {refusal}");
        now += 60 * SECOND;
    }
    fx.teardown().await;
}
on_both_backends!(an_outage_does_not_use_up_an_events_refusals);

/// Relays of several replicas claiming at once take disjoint batches that together cover
/// the queue, whose rows are spread over several workspaces.
async fn concurrent_relays_never_claim_the_same_row(backend: &TestBackend) {
    let fx = setup(backend).await;
    let events: Vec<AuditEvent> = (0..200)
        .map(|i| event(&format!("ws-{}", i % 5), &format!("{i}")))
        .collect();
    append(&fx, &events).await;
    let now = 1_000 * SECOND;
    let db = fx.db.clone();
    let relays: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let txn = db.begin_write().await.unwrap();
                    let claimed = delivery::claim(&*txn, 7, now, LEASE).await.unwrap();
                    txn.commit().await.unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    mine.extend(claimed.into_iter().map(|c| c.event.event_id));
                }
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for relay in relays {
        let mine = relay.await.unwrap();
        total += mine.len();
        seen.extend(mine);
    }
    assert_eq!(total, events.len(), "no row claimed twice");
    assert_eq!(
        seen,
        events.iter().map(|e| e.event_id).collect::<BTreeSet<_>>()
    );
    fx.teardown().await;
}
on_both_backends!(concurrent_relays_never_claim_the_same_row);

/// Two claims in flight at once on PostgreSQL, the first still holding its rows when the
/// second runs: each workspace's locked step skips what the other holds, so the two
/// batches are disjoint, both full, and together every row of every workspace.
#[tokio::test]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn overlapping_claims_on_postgres_split_every_workspace_between_them() {
    let Some(backend) = postgres() else {
        postgres_missing()
    };
    let fx = setup(&backend).await;
    let events: Vec<AuditEvent> = (0..30)
        .map(|i| event(&format!("ws-{}", i % 3), &format!("{i}")))
        .collect();
    append(&fx, &events).await;
    let now = 1_000 * SECOND;

    let first = fx.db.begin_write().await.unwrap();
    let mine = delivery::claim(&*first, 15, now, LEASE).await.unwrap();
    // The first has not committed: the second sees the same oldest rows due, finds them
    // locked, and takes the next ones of each workspace instead of waiting.
    let second = fx.db.begin_write().await.unwrap();
    let theirs = delivery::claim(&*second, 15, now, LEASE).await.unwrap();
    second.commit().await.unwrap();
    first.commit().await.unwrap();

    assert_eq!(
        (mine.len(), theirs.len()),
        (15, 15),
        "both batches are full"
    );
    let ids = |claimed: &[Claimed]| -> BTreeSet<uuid::Uuid> {
        claimed.iter().map(|c| c.event.event_id).collect()
    };
    assert!(
        ids(&mine).is_disjoint(&ids(&theirs)),
        "no row claimed twice"
    );
    let together: BTreeSet<_> = ids(&mine).union(&ids(&theirs)).copied().collect();
    assert_eq!(
        together,
        events.iter().map(|e| e.event_id).collect::<BTreeSet<_>>()
    );
    let workspaces = |claimed: &[Claimed]| -> BTreeSet<String> {
        claimed
            .iter()
            .map(|c| c.event.workspace_id.clone())
            .collect()
    };
    assert_eq!(workspaces(&mine).len(), 3);
    assert_eq!(workspaces(&theirs).len(), 3);
    // Each took the oldest rows it could: the first the oldest five of each workspace.
    assert_eq!(
        targets(&mine),
        (0..15).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    assert!(claim(&fx, 10, now + SECOND).await.is_empty());
    fx.teardown().await;
}

/// A claim goes by when rows fell due, across workspaces: the workspace whose rows have
/// been due longest is served first, even if another wrote earlier and holds more rows.
async fn a_claim_takes_the_oldest_due_workspace_first(backend: &TestBackend) {
    let fx = setup(backend).await;
    let policy = policy();
    let now = 1_000 * SECOND;
    // ws-busy wrote first and holds more rows, but the audit service was unreachable when
    // they were sent: they are due again only after their backoff (1 s).
    let busy: Vec<AuditEvent> = (0..6)
        .map(|i| event("ws-busy", &format!("busy-{i}")))
        .collect();
    append(&fx, &busy).await;
    let sent = claim(&fx, 10, now).await;
    delivery::retry_later(fx.db.conn(), &sent, "connection refused", now, &policy)
        .await
        .unwrap();
    // ws-quiet's rows were written since, and are due at once.
    append(
        &fx,
        &[event("ws-quiet", "quiet-0"), event("ws-quiet", "quiet-1")],
    )
    .await;

    let later = now + 2 * SECOND;
    assert_eq!(targets(&claim(&fx, 2, later).await), ["quiet-0", "quiet-1"]);
    assert_eq!(targets(&claim(&fx, 2, later).await), ["busy-0", "busy-1"]);
    fx.teardown().await;
}
on_both_backends!(a_claim_takes_the_oldest_due_workspace_first);
