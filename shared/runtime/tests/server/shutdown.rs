use std::time::Duration;

use roster_runtime::{LIVENESS, ServerSettings};
use tokio_stream::StreamExt as _;
use tonic::Request;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{SERVICE, TestApp, call, check_health, connect};

async fn watch(app: &TestApp) -> tonic::Streaming<tonic_health::pb::HealthCheckResponse> {
    HealthClient::new(app.channel.clone())
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn next_status(
    stream: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
) -> Option<ServingStatus> {
    stream.next().await.map(|message| message.unwrap().status())
}

#[tokio::test]
async fn while_draining_health_is_not_serving_and_connections_are_still_accepted() {
    let mut app = TestApp::spawn(ServerSettings {
        // Longer than any test run: the drain is observed, never waited out.
        shutdown_drain: Duration::from_secs(3600),
        ..ServerSettings::for_tests()
    })
    .await;
    app.health.set_serving().await;
    let mut statuses = watch(&app).await;
    assert_eq!(
        next_status(&mut statuses).await,
        Some(ServingStatus::Serving)
    );

    app.shut_down();

    assert_eq!(
        next_status(&mut statuses).await,
        Some(ServingStatus::NotServing)
    );
    let fresh_connection = connect(app.addr).await;
    assert_eq!(
        check_health(&fresh_connection, SERVICE).await.unwrap(),
        ServingStatus::NotServing
    );
    // A draining replica is alive: its liveness probe must not get it killed.
    assert_eq!(
        check_health(&fresh_connection, LIVENESS).await.unwrap(),
        ServingStatus::Serving
    );
    // A readiness task finishing late must not put a draining replica back in rotation.
    app.health.set_serving().await;
    assert_eq!(
        app.check_health("").await.unwrap(),
        ServingStatus::NotServing
    );

    app.server.abort();
}

#[tokio::test]
async fn shutdown_lets_in_flight_calls_finish_then_closes_the_listener() {
    let mut app = TestApp::spawn(ServerSettings {
        shutdown_grace: Duration::from_secs(3600),
        ..ServerSettings::for_tests()
    })
    .await;
    app.health.set_serving().await;
    let channel = app.channel.clone();
    let in_flight = tokio::spawn(async move { call(&channel, "Block", Request::new(())).await });
    app.handler_entered().await;
    let mut statuses = watch(&app).await;
    assert_eq!(
        next_status(&mut statuses).await,
        Some(ServingStatus::Serving)
    );

    app.shut_down();

    // Watchers learn the news, then their streams end so they do not hold shutdown up.
    assert_eq!(
        next_status(&mut statuses).await,
        Some(ServingStatus::NotServing)
    );
    assert_eq!(next_status(&mut statuses).await, None);
    app.probe.release_one();
    in_flight.await.unwrap().unwrap();
    (&mut app.server).await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(app.addr).await.is_err());
}

#[tokio::test]
async fn shutdown_gives_up_on_calls_that_outlast_the_grace_period() {
    let mut app = TestApp::spawn(ServerSettings {
        shutdown_grace: Duration::ZERO,
        ..ServerSettings::for_tests()
    })
    .await;
    let channel = app.channel.clone();
    let _stuck = tokio::spawn(async move { call(&channel, "Hang", Request::new(())).await });
    app.handler_entered().await;

    app.shut_down();

    (&mut app.server).await.unwrap().unwrap();
}

#[tokio::test]
async fn serve_reports_bad_descriptor_sets() {
    crate::support::install_test_subscriber();
    let server = roster_runtime::GrpcServer::bind(ServerSettings::for_tests(), &[SERVICE])
        .await
        .unwrap();

    let result = server
        .serve(
            tonic::service::Routes::default(),
            &[b"definitely not a descriptor set".as_slice()],
            std::future::pending(),
        )
        .await;

    let err = result.unwrap_err();
    assert!(format!("{err:#}").contains("reflection"), "{err:#}");
}
