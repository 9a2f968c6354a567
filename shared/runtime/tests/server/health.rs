use roster_runtime::{LIVENESS, ServerSettings};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::support::{SERVICE, TestApp};

#[tokio::test]
async fn health_starts_not_serving_and_flips_for_every_name_together() {
    let app = TestApp::spawn(ServerSettings::for_tests()).await;

    assert_eq!(
        app.check_health("").await.unwrap(),
        ServingStatus::NotServing
    );
    assert_eq!(
        app.check_health(SERVICE).await.unwrap(),
        ServingStatus::NotServing
    );

    app.health.set_serving().await;
    assert_eq!(app.check_health("").await.unwrap(), ServingStatus::Serving);
    assert_eq!(
        app.check_health(SERVICE).await.unwrap(),
        ServingStatus::Serving
    );

    app.health.set_not_serving().await;
    assert_eq!(
        app.check_health("").await.unwrap(),
        ServingStatus::NotServing
    );
    assert_eq!(
        app.check_health(SERVICE).await.unwrap(),
        ServingStatus::NotServing
    );
}

#[tokio::test]
async fn unknown_services_are_not_found() {
    let app = TestApp::spawn(ServerSettings::for_tests()).await;

    let status = app.check_health("roster.nope.v1.Nope").await.unwrap_err();

    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn liveness_answers_serving_whatever_readiness_says() {
    let app = TestApp::spawn(ServerSettings::for_tests()).await;

    assert_eq!(
        app.check_health(LIVENESS).await.unwrap(),
        ServingStatus::Serving
    );
    app.health.set_serving().await;
    app.health.set_not_serving().await;

    assert_eq!(
        app.check_health(LIVENESS).await.unwrap(),
        ServingStatus::Serving
    );
}
