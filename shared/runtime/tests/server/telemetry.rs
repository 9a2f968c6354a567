//! Trace continuation and log correlation, observed through the test binary's subscriber
//! (see `support::capture`).

use opentelemetry::trace::{SpanKind, TraceContextExt as _};
use opentelemetry_sdk::trace::SpanData;
use roster_runtime::ServerSettings;
use tonic::Request;
use tonic::metadata::MetadataMap;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::support::{Capture, SERVICE, TestApp, capture};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

fn server_spans(capture: &Capture) -> Vec<SpanData> {
    let name = format!("{SERVICE}/Echo");
    capture
        .spans()
        .iter()
        .filter(|span| span.name == name)
        .cloned()
        .collect()
}

#[tokio::test]
async fn server_spans_continue_the_callers_trace() {
    let observed = capture();
    let app = TestApp::spawn(ServerSettings::for_tests()).await;
    let mut request = Request::new(());
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01")
            .parse()
            .unwrap(),
    );

    app.call("Echo", request).await.unwrap();

    let spans = server_spans(&observed);
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert_eq!(span.span_kind, SpanKind::Server);
    assert_eq!(span.span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(span.parent_span_id.to_string(), PARENT_SPAN_ID);
    assert!(span.parent_span_is_remote);
    assert_eq!(
        app.probe.last_seen().context.trace_id.as_deref(),
        Some(TRACE_ID)
    );
}

#[tokio::test]
async fn without_a_traceparent_the_context_names_the_new_trace() {
    let observed = capture();
    let app = TestApp::spawn(ServerSettings::for_tests()).await;

    app.call("Echo", Request::new(())).await.unwrap();

    let spans = server_spans(&observed);
    assert_eq!(spans.len(), 1, "{spans:?}");
    let trace_id = spans[0].span_context.trace_id().to_string();
    assert_eq!(
        app.probe.last_seen().context.trace_id.as_deref(),
        Some(trace_id.as_str())
    );
}

#[tokio::test]
async fn handler_logs_carry_the_request_id_and_each_call_logs_its_outcome() {
    let observed = capture();
    let app = TestApp::spawn(ServerSettings::for_tests()).await;
    let mut request = Request::new(());
    request
        .metadata_mut()
        .insert("x-request-id", "log-test-1".parse().unwrap());

    app.call("Echo", request).await.unwrap();

    let lines = observed.log_lines();
    let of_this_call: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains(r#""request_id":"log-test-1""#))
        .collect();
    assert!(
        of_this_call
            .iter()
            .any(|line| line.contains("handler running")),
        "{lines:#?}"
    );
    let finished: Vec<&&String> = of_this_call
        .iter()
        .filter(|line| line.contains("gRPC call finished"))
        .collect();
    assert_eq!(finished.len(), 1, "{lines:#?}");
    assert!(
        finished[0].contains(r#""grpc_status":"OK""#),
        "{}",
        finished[0]
    );
    assert!(finished[0].contains(r#""grpc_code":0"#), "{}", finished[0]);
    assert!(finished[0].contains(r#""duration_ms":"#), "{}", finished[0]);
    assert!(
        finished[0].contains(&format!(r#""rpc":"/{SERVICE}/Echo""#)),
        "{}",
        finished[0]
    );
}

#[tokio::test]
async fn failures_are_logged_with_their_status() {
    let observed = capture();
    let app = TestApp::spawn(ServerSettings::for_tests()).await;
    let mut request = Request::new(());
    request
        .metadata_mut()
        .insert("x-request-id", "log-test-2".parse().unwrap());

    app.call("Fail", request).await.unwrap_err();

    let lines = observed.log_lines();
    let finished: Vec<&String> = lines
        .iter()
        .filter(|line| {
            line.contains(r#""request_id":"log-test-2""#) && line.contains("gRPC call finished")
        })
        .collect();
    assert_eq!(finished.len(), 1, "{lines:#?}");
    assert!(
        finished[0].contains(r#""grpc_status":"NOT_FOUND""#),
        "{}",
        finished[0]
    );
}

#[test]
fn outgoing_calls_carry_the_current_trace() {
    let observed = capture();
    let span = tracing::info_span!("outgoing");
    let _entered = span.enter();
    let expected_trace = span.context().span().span_context().trace_id().to_string();

    let mut metadata = MetadataMap::new();
    roster_runtime::inject_trace_context(&mut metadata);

    let traceparent = metadata.get("traceparent").unwrap().to_str().unwrap();
    assert!(
        traceparent.starts_with(&format!("00-{expected_trace}-")),
        "{traceparent}"
    );
    drop(observed);
}

#[tokio::test]
async fn successful_health_checks_stay_out_of_info_logs() {
    let observed = capture();
    let app = TestApp::spawn(ServerSettings::for_tests()).await;

    app.check_health("").await.unwrap();

    let lines = observed.log_lines();
    assert!(
        !lines.iter().any(|line| line.contains("gRPC call finished")),
        "{lines:#?}"
    );
}
