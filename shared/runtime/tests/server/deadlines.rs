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
