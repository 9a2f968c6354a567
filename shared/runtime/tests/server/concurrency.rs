use roster_runtime::ServerSettings;
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::support::{TestApp, call};

#[tokio::test]
async fn calls_beyond_the_limit_are_shed_but_health_still_answers() {
    let mut app = TestApp::spawn(ServerSettings {
        concurrency_limit: 1,
        ..ServerSettings::for_tests()
    })
    .await;
    let channel = app.channel.clone();
    let blocked = tokio::spawn(async move { call(&channel, "Block", Request::new(())).await });
    app.handler_entered().await;

    let shed = app.call("Echo", Request::new(())).await.unwrap_err();
    let health = app.check_health("").await;

    assert_eq!(shed.code(), Code::ResourceExhausted);
    assert!(
        shed.message()
            .contains("concurrency limit of 1 in-flight calls"),
        "{}",
        shed.message()
    );
    // Clients branch on the reason and back off as RetryInfo says.
    let info = tonic_types::StatusExt::get_details_error_info(&shed).expect("ErrorInfo");
    assert_eq!(
        (info.domain.as_str(), info.reason.as_str()),
        ("runtime.roster", "OVERLOADED")
    );
    assert!(tonic_types::StatusExt::get_details_retry_info(&shed).is_some());
    assert_eq!(health.unwrap(), ServingStatus::NotServing);

    app.probe.release_one();
    blocked.await.unwrap().unwrap();
    // The finished call gave its permit back.
    app.call("Echo", Request::new(())).await.unwrap();
}

#[tokio::test]
async fn a_panicking_call_gives_its_permit_back() {
    let app = TestApp::spawn(ServerSettings {
        concurrency_limit: 1,
        ..ServerSettings::for_tests()
    })
    .await;

    let status = app.call("Panic", Request::new(())).await.unwrap_err();

    assert_eq!(status.code(), Code::Internal);
    app.call("Echo", Request::new(())).await.unwrap();
}
