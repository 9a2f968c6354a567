//! A revocation at the staff service reaches the directory within seconds, and a directory
//! cut off from the staff service fails closed once its view is too old.

use std::sync::Arc;
use std::time::{Duration, Instant};

use roster_auth::RevocationView;
use roster_core::ShiftedClock;
use roster_db::DbSettings;
use roster_directory::widget_kek::WidgetKeyring;
use roster_proto::directory::v1 as directory;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use roster_proto::staff::v1 as staff;
use roster_proto::staff::v1::staff_service_client::StaffServiceClient;
use roster_runtime::ServerSettings;
use roster_staff::service::SignInPolicy;
use roster_staff::settings::SignInSettings;
use roster_testkit::{Served, TestBackend, TestDatabase, TestTokens, with_bearer};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

const WS: &str = "acme";
const PASSWORD: &str = "correct horse battery";

roster_testkit::on_both_databases!(
    crate::revocation::run => deactivating_an_agent_refuses_its_token_at_the_directory_within_seconds,
    a_directory_cut_off_from_staff_keeps_serving_then_fails_closed,
);

/// Staff and directory, each on a database of its own, with the directory following the
/// staff service's revocations on a clock the test controls.
struct Suite {
    tokens: TestTokens,
    staff: StaffServiceClient<Channel>,
    directory: DirectoryServiceClient<Channel>,
    staff_served: Option<Served>,
    /// The clock the directory's revocation view ages by.
    view_clock: ShiftedClock,
}

async fn run<F, Fut>(backend: TestBackend, test: F)
where
    F: FnOnce(Suite) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    roster_runtime::init_test_telemetry();
    let staff_db = TestDatabase::create(&backend).await.unwrap();
    let directory_db = TestDatabase::create(&backend).await.unwrap();
    let (tokens, staff_verifier) = TestTokens::generate();

    let db = roster_staff::prepare_database(&DbSettings::new(&staff_db.url))
        .await
        .unwrap();
    let defaults = roster_auth::VerifierSettings::default();
    let staff_app = roster_staff::Application::build(
        ServerSettings::for_tests(),
        db,
        staff_verifier,
        Arc::new(roster_core::SystemClock),
        SignInPolicy::new(
            Arc::new(tokens.signer().clone()),
            defaults.issuer,
            defaults.audience,
            SignInSettings::default(),
        ),
    )
    .await
    .unwrap();
    let staff_served = roster_testkit::serve(staff_app.into_service_app()).await;

    let view_clock = ShiftedClock::default();
    let view = RevocationView::new(Duration::from_secs(300), Arc::new(view_clock.clone()));
    let follower = tokio::spawn(roster_service::revocations::follow(
        format!("http://{}", staff_served.addr),
        view.clone(),
    ));
    let db = roster_directory::prepare_database(&DbSettings::new(&directory_db.url))
        .await
        .unwrap();
    let directory_app = roster_directory::Application::build(
        ServerSettings::for_tests(),
        db,
        tokens.verifier().with_revocations(view),
        Arc::new(roster_core::SystemClock),
        WidgetKeyring::generate("test-kek").unwrap(),
    )
    .await
    .unwrap();
    let directory_served = roster_testkit::serve(directory_app.into_service_app()).await;

    let suite = Suite {
        tokens,
        staff: StaffServiceClient::new(staff_served.channel.clone()),
        directory: DirectoryServiceClient::new(directory_served.channel.clone()),
        staff_served: Some(staff_served),
        view_clock,
    };
    let outcome =
        futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(test(suite))).await;
    follower.abort();
    directory_served.stop().await;
    staff_db.cleanup().await;
    directory_db.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

impl Suite {
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

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

async fn deactivating_an_agent_refuses_its_token_at_the_directory_within_seconds(mut suite: Suite) {
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

    suite.staff_served.take().unwrap().stop().await;
    // Unrevoked tokens keep working on the last view while it is fresh enough...
    suite.view_clock.advance_secs(290);
    suite.list_users(&token).await.unwrap();
    // ...and past the bound (5 minutes) nothing does: the directory cannot tell.
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
}
