//! WatchEvents: from a cursor or from now, live, resumed without gaps or repeats, across
//! replicas.

use std::time::Duration;

use roster_proto::audit::v1 as pb;
use tonic::Code;
use tonic::codec::Streaming;

use crate::helpers::{
    TestApp, WS, assert_refused, event, event_in, spawn_replica, violated_fields,
};
use crate::on_both_databases;

on_both_databases!(
    a_stream_from_a_cursor_sends_the_past_then_the_present,
    a_stream_from_now_sends_only_what_comes,
    a_resumed_stream_neither_skips_nor_repeats,
    what_another_replica_records_reaches_the_stream,
    cursors_the_log_lacks_are_refused,
);

/// A generous bound on one message's wait: a stream that never sends fails the test instead
/// of hanging it (no test waits for time to pass).
const WAIT: Duration = Duration::from_secs(20);

async fn open(
    app: &TestApp,
    from_leaf_index: Option<i64>,
) -> Result<Streaming<pb::EventBatch>, tonic::Status> {
    app.client()
        .watch_events(app.admin(pb::WatchEventsRequest {
            workspace_id: WS.into(),
            from_leaf_index,
        }))
        .await
        .map(tonic::Response::into_inner)
}

async fn next_batch(stream: &mut Streaming<pb::EventBatch>) -> pb::EventBatch {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a message in time")
        .expect("a healthy stream")
        .expect("the stream goes on")
}

/// The leaves of the next `count` events, skipping heartbeats.
async fn next_leaves(stream: &mut Streaming<pb::EventBatch>, count: usize) -> Vec<i64> {
    let mut leaves = Vec::new();
    while leaves.len() < count {
        let batch = next_batch(stream).await;
        leaves.extend(batch.events.iter().map(|e| e.leaf_index));
    }
    leaves
}

async fn a_stream_from_a_cursor_sends_the_past_then_the_present(app: TestApp) {
    let ids = app.append_each(3).await;
    let mut stream = open(&app, Some(0)).await.unwrap();
    let first = next_batch(&mut stream).await;
    assert_eq!(first.tree_size, 3);
    assert_eq!(
        first
            .events
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
        ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    app.append(vec![
        event("end_user.updated"),
        event_in("globex", "end_user.updated"),
        event("end_user.deleted"),
    ])
    .await;
    assert_eq!(next_leaves(&mut stream, 2).await, [3, 4]);
    let from_middle = next_leaves(&mut open(&app, Some(1)).await.unwrap(), 4).await;
    assert_eq!(from_middle, [1, 2, 3, 4]);
}

async fn a_stream_from_now_sends_only_what_comes(app: TestApp) {
    app.append_each(2).await;
    let mut stream = open(&app, None).await.unwrap();
    let first = next_batch(&mut stream).await;
    assert!(first.events.is_empty());
    assert_eq!(first.tree_size, 2);
    let sent = event("end_user.created");
    app.append(vec![sent.clone()]).await;
    let batch = loop {
        let batch = next_batch(&mut stream).await;
        if !batch.events.is_empty() {
            break batch;
        }
    };
    assert_eq!(batch.events.len(), 1);
    assert_eq!(batch.events[0].event_id, sent.event_id);
    assert_eq!(batch.events[0].leaf_index, 2);
    assert_eq!(batch.tree_size, 3);
}

async fn a_resumed_stream_neither_skips_nor_repeats(app: TestApp) {
    app.append_each(2).await;
    let mut stream = open(&app, Some(0)).await.unwrap();
    let seen = next_leaves(&mut stream, 2).await;
    drop(stream);
    // Recorded while nobody watched.
    app.append_each(3).await;
    let resume_from = seen.last().unwrap() + 1;
    let mut resumed = open(&app, Some(resume_from)).await.unwrap();
    app.append_each(1).await;
    let rest = next_leaves(&mut resumed, 4).await;
    assert_eq!(rest, [2, 3, 4, 5]);
}

async fn what_another_replica_records_reaches_the_stream(app: TestApp) {
    let mut stream = open(&app, Some(0)).await.unwrap();
    assert!(next_batch(&mut stream).await.events.is_empty());
    let (replica, served) =
        spawn_replica(&app.database_url, app.tokens.clone(), app.kek.clone()).await;
    replica.append_each(2).await;
    assert_eq!(next_leaves(&mut stream, 2).await, [0, 1]);
    served.stop().await;
}

async fn cursors_the_log_lacks_are_refused(app: TestApp) {
    app.append_each(2).await;
    assert_refused(
        open(&app, Some(3)).await,
        Code::OutOfRange,
        "TREE_SIZE_AHEAD",
    );
    let status = assert_refused(
        open(&app, Some(-1)).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["from_leaf_index"]);
    // The log's size itself is a cursor: the next event.
    let mut at_end = open(&app, Some(2)).await.unwrap();
    assert!(next_batch(&mut at_end).await.events.is_empty());
}
