use std::time::Duration;

use roster_runtime::ServerSettings;
use tonic::{Code, Request};

use crate::support::TestApp;

// The handler never finishes, so however long the timers take, a deadline is the only way the
// call can end.

#[tokio::test]
async fn the_server_caps_every_call() {
    let mut app = TestApp::spawn(ServerSettings {
        request_timeout: Duration::from_millis(50),
        ..ServerSettings::for_tests()
    })
    .await;

    let status = app.call("Hang", Request::new(())).await.unwrap_err();

    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    // The server abandoned the handler rather than leaving it running.
    app.dropped.recv().await.unwrap();
}

#[tokio::test]
async fn a_shorter_client_deadline_wins() {
    let mut app = TestApp::spawn(ServerSettings {
        request_timeout: Duration::from_secs(3600),
        ..ServerSettings::for_tests()
    })
    .await;
    let mut request = Request::new(());
    request.set_timeout(Duration::from_millis(50));

    let status = app.call("Hang", request).await.unwrap_err();

    assert!(
        matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{status:?}"
    );
    app.dropped.recv().await.unwrap();
}

#[tokio::test]
async fn long_running_methods_are_not_capped() {
    let mut app = TestApp::spawn_with_long_running(
        ServerSettings {
            request_timeout: Duration::from_millis(50),
            ..ServerSettings::for_tests()
        },
        &["Block"],
    )
    .await;
    let channel = app.channel.clone();
    let call =
        tokio::spawn(
            async move { crate::support::call(&channel, "Block", Request::new(())).await },
        );
    app.handler_entered().await;
    // Outlive the 50 ms cap on purpose: an upload may take as long as it takes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.probe.release_one();

    let outcome = call.await.unwrap();

    assert!(outcome.is_ok(), "{outcome:?}");
}
