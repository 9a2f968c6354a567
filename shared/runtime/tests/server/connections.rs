use std::time::Duration;

use roster_runtime::ServerSettings;
use tokio::time::Instant;
use tonic::{Code, Request};

use crate::support::{TestApp, call, connect};

/// Long enough to reconnect many times over: the test ends when the client has.
const PATIENCE: Duration = Duration::from_secs(20);

/// What lets clients spread over replicas added after they connected: a connection past
/// its age is closed gracefully, so the client's next calls go over a new one, while a
/// call in flight on an old connection finishes there.
#[tokio::test]
async fn a_connection_past_its_age_moves_new_calls_to_a_new_one_and_finishes_the_old_ones() {
    let mut app = TestApp::spawn(ServerSettings {
        max_connection_age: Some(Duration::from_millis(200)),
        ..ServerSettings::for_tests()
    })
    .await;
    app.call("Echo", Request::new(())).await.unwrap();
    let first = app.probe.last_seen().remote_addr.unwrap();
    let other = connect(app.addr).await;
    let in_flight = tokio::spawn(async move { call(&other, "Block", Request::new(())).await });
    app.handler_entered().await;

    let deadline = Instant::now() + PATIENCE;
    let moved_to = loop {
        match app.call("Echo", Request::new(())).await {
            Ok(_) => {
                let now_from = app.probe.last_seen().remote_addr.unwrap();
                if now_from != first {
                    break Some(now_from);
                }
            }
            // hyper's client may hand a call to a connection in the instant between the
            // server's GOAWAY and its own noticing; it fails unsent, and callers retry
            // (docs/operations.md, "Load balancing").
            Err(status) if status.code() == Code::Cancelled => {}
            Err(status) => panic!("a call failed while connections rotate: {status:?}"),
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    assert!(
        moved_to.is_some(),
        "calls still arrive over the first connection ({first}) after {PATIENCE:?}"
    );
    // The blocked call's connection is past its age by now, and the call still completes.
    app.probe.release_one();
    in_flight.await.unwrap().unwrap();
}
