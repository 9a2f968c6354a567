//! A revocation at the staff service reaches the directory within seconds, and a directory
//! cut off from the staff service fails closed once its view is too old.

use roster_testkit::status::reason;
use std::time::{Duration, Instant};

use roster_proto::directory::v1 as directory;
use roster_proto::staff::v1 as staff;
use roster_testkit::with_bearer;
use tonic::Code;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::Suite;

const WS: &str = "acme";
const PASSWORD: &str = "correct horse battery";

crate::on_both_databases!(
    deactivating_an_agent_refuses_its_token_at_the_directory_within_seconds,
    a_directory_cut_off_from_staff_keeps_serving_then_fails_closed,
);

/// The test's own calls on the suite.
trait Calls {
    fn admin(&self) -> String;
    async fn signed_in_agent(&mut self, email: &str) -> (String, String);
    async fn list_users(&mut self, token: &str) -> Result<(), tonic::Status>;
    async fn until(
        &mut self,
        token: &str,
        within: Duration,
        done: impl Fn(&Result<(), tonic::Status>) -> bool,
    ) -> Duration;
}

impl Calls for Suite {
    fn admin(&self) -> String {
        self.tokens.agent(&[WS], "admin", &[])
    }

    /// An active agent signed in: its id and access token.
    async fn signed_in_agent(&mut self, email: &str) -> (String, String) {
        let admin = self.admin();
        let invited = self
            .staff
            .invite_agent(with_bearer(
                &admin,
                staff::InviteAgentRequest {
                    workspace_id: WS.into(),
                    email: email.into(),
                    role: "agent".into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        self.staff
            .accept_invitation(staff::AcceptInvitationRequest {
                workspace_id: WS.into(),
                secret: invited.secret,
                password: PASSWORD.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let session = self
            .staff
            .login(staff::LoginRequest {
                workspace_id: WS.into(),
                email: email.into(),
                password: PASSWORD.into(),
            })
            .await
            .unwrap()
            .into_inner();
        (invited.agent.unwrap().agent_id, session.access_token)
    }

    async fn list_users(&mut self, token: &str) -> Result<(), tonic::Status> {
        self.directory
            .list_users(with_bearer(
                token,
                directory::ListUsersRequest {
                    workspace_id: WS.into(),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ())
    }

    /// Calls the directory with `token` until `done` says the answer is the awaited one,
    /// for at most `within`; answers how long it took.
    async fn until(
        &mut self,
        token: &str,
        within: Duration,
        done: impl Fn(&Result<(), tonic::Status>) -> bool,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let result = self.list_users(token).await;
            if done(&result) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "still {result:?} after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub(crate) async fn deactivating_an_agent_refuses_its_token_at_the_directory_within_seconds(
    mut suite: Suite,
) {
    let (agent_id, token) = suite.signed_in_agent("uhura@example.com").await;
    let (_, colleague) = suite.signed_in_agent("sulu@example.com").await;
    // The directory accepts the token once it holds the first snapshot, and caches it.
    suite
        .until(&token, Duration::from_secs(10), Result::is_ok)
        .await;
    suite.list_users(&token).await.unwrap();

    let admin = suite.admin();
    suite
        .staff
        .deactivate_agent(with_bearer(
            &admin,
            staff::DeactivateAgentRequest {
                workspace_id: WS.into(),
                agent_id,
                reason: "left the company".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();

    let took = suite
        .until(&token, Duration::from_secs(5), |result| {
            matches!(result, Err(status) if status.code() == Code::Unauthenticated && reason(status) == "TOKEN_REVOKED")
        })
        .await;
    assert!(took < Duration::from_secs(5), "revoked after {took:?}");
    suite
        .list_users(&colleague)
        .await
        .expect("another agent's token is untouched");
}

async fn a_directory_cut_off_from_staff_keeps_serving_then_fails_closed(mut suite: Suite) {
    let (_, token) = suite.signed_in_agent("chekov@example.com").await;
    suite
        .until(&token, Duration::from_secs(10), Result::is_ok)
        .await;

    feed_health_becomes(&suite, ServingStatus::Serving).await;

    suite.stop_staff().await;
    // Unrevoked tokens keep working on the last view while it is fresh enough...
    suite.view_clock.advance_secs(290);
    suite.list_users(&token).await.unwrap();
    // ...and past the bound (5 minutes) nothing does: the directory cannot tell, and its
    // health says why while the replica stays in rotation.
    suite.view_clock.advance_secs(20);
    let status = suite.list_users(&token).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "REVOCATIONS_UNKNOWN");
    assert!(
        status
            .message()
            .contains("has not heard from the staff service"),
        "{status:?}"
    );
    feed_health_becomes(&suite, ServingStatus::NotServing).await;
    assert_eq!(overall_health(&suite).await, ServingStatus::Serving);
}

/// Waits (up to 5 s: it is reported every second) for the feed's health to be `status`.
async fn feed_health_becomes(suite: &Suite, status: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while feed_health(suite).await != status {
        assert!(
            Instant::now() < deadline,
            "the feed's health is not {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn health_of(suite: &Suite, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(suite.directory_channel.clone());
    let status = health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    ServingStatus::try_from(status).unwrap()
}

async fn feed_health(suite: &Suite) -> ServingStatus {
    health_of(suite, roster_service::revocations::HEALTH_NAME).await
}

async fn overall_health(suite: &Suite) -> ServingStatus {
    health_of(suite, "").await
}
