use roster_runtime::ServerSettings;
use tonic::{Code, Request};

use crate::support::{TestApp, request_id_of};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn request_with(headers: &[(&'static str, &str)]) -> Request<()> {
    let mut request = Request::new(());
    for (name, value) in headers {
        request.metadata_mut().insert(*name, value.parse().unwrap());
    }
    request
}

#[tokio::test]
async fn handlers_see_the_request_context_and_the_id_is_echoed() {
    let app = TestApp::spawn(ServerSettings::for_tests()).await;
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");

    let response = app
        .call(
            "Echo",
            request_with(&[("x-request-id", "req-123"), ("traceparent", &traceparent)]),
        )
        .await
        .unwrap();

    assert_eq!(request_id_of(&response), "req-123");
    let context = app.probe.last_seen().context;
    assert_eq!(context.request_id, "req-123");
    assert_eq!(context.trace_id.as_deref(), Some(TRACE_ID));
    assert_eq!(context.peer_ip.as_deref(), Some("127.0.0.1"));
    let user_agent = context.user_agent.unwrap();
    assert!(user_agent.starts_with("roster-test/1.0"), "{user_agent}");
}

#[tokio::test]
async fn a_request_id_is_generated_when_missing_or_unusable() {
    let app = TestApp::spawn(ServerSettings::for_tests()).await;
    let too_long = "x".repeat(129);

    for request in [
        request_with(&[]),
        request_with(&[("x-request-id", &too_long)]),
    ] {
        let response = app.call("Echo", request).await.unwrap();

        let echoed = request_id_of(&response);
        uuid::Uuid::parse_str(&echoed).expect("a generated UUID");
        assert_eq!(app.probe.last_seen().context.request_id, echoed);
        assert_eq!(app.probe.last_seen().context.trace_id, None);
    }
}

#[tokio::test]
async fn every_call_gets_its_own_generated_id() {
    let app = TestApp::spawn(ServerSettings::for_tests()).await;

    let first = app.call("Echo", Request::new(())).await.unwrap();
    let second = app.call("Echo", Request::new(())).await.unwrap();

    assert_ne!(request_id_of(&first), request_id_of(&second));
}

#[tokio::test]
async fn error_responses_carry_the_request_id_too() {
    let app = TestApp::spawn(ServerSettings::for_tests()).await;

    let failed = app
        .call("Fail", request_with(&[("x-request-id", "req-fail")]))
        .await
        .unwrap_err();
    let unknown = app
        .call(
            "NoSuchMethod",
            request_with(&[("x-request-id", "req-unknown")]),
        )
        .await
        .unwrap_err();

    assert_eq!(failed.code(), Code::NotFound);
    assert_eq!(failed.metadata().get("x-request-id").unwrap(), "req-fail");
    assert_eq!(unknown.code(), Code::Unimplemented);
    assert_eq!(
        unknown.metadata().get("x-request-id").unwrap(),
        "req-unknown"
    );
}
