use roster_runtime::ServerSettings;
use tonic::{Code, Request};

use crate::support::TestApp;

#[tokio::test]
async fn a_panicking_handler_answers_internal_and_keeps_the_connection() {
    let app = TestApp::spawn(ServerSettings::for_tests()).await;
    app.call("Echo", Request::new(())).await.unwrap();
    let connection_before = app.probe.last_seen().remote_addr;

    let status = app.call("Panic", Request::new(())).await.unwrap_err();
    app.call("Echo", Request::new(())).await.unwrap();

    assert_eq!(status.code(), Code::Internal);
    assert_eq!(status.message(), "internal error");
    assert!(status.metadata().get("x-request-id").is_some());
    // Same client port: the panic did not cost the connection.
    assert_eq!(app.probe.last_seen().remote_addr, connection_before);
}
