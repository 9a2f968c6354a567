#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use roster_auth::RevocationView;
use roster_core::ShiftedClock;
use roster_db::DbSettings;
use roster_directory::widget_kek::WidgetKeyring;
use roster_proto::audit::v1::audit_service_client::AuditServiceClient;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use roster_proto::staff::v1::staff_service_client::StaffServiceClient;
use roster_runtime::ServerSettings;
use roster_service::revocations::RevocationFollower;
use roster_service::{StaffLink, StaffLinkSettings, TrustedKeys};
use roster_staff::domain::SystemClock;
use roster_staff::service::SignInPolicy;
use roster_staff::service::keys::{KeySettings, Keyring};
use roster_staff::startup::Signing;
use roster_testkit::{Served, TestBackend, TestDatabase, TestTokens};
use tonic::transport::Channel;

/// A staff service and a directory that verifies tokens with the keys it fetches from it
/// and refuses the tokens its revocation feed names.
pub struct Suite {
    pub staff: StaffServiceClient<Channel>,
    /// The directory's connection, for its health service.
    pub directory_channel: Channel,
    pub directory: DirectoryServiceClient<Channel>,
    /// The audit service, verifying tokens with the directory's view of the staff service.
    pub audit: AuditServiceClient<Channel>,
    /// The staff service's signing keys, to mint as Login will.
    pub keys: Keyring,
    /// Tokens the staff service trusts besides its own (the directory does not).
    pub tokens: TestTokens,
    /// The staff service, until a test stops it.
    staff_served: Arc<tokio::sync::Mutex<Option<Served>>>,
    /// The clock the directory's revocation view ages by.
    pub view_clock: ShiftedClock,
}

#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        roster_testkit::on_both_databases!($crate::helpers::run => $($name),*);
    };
}

/// Starts the staff service, then the directory following its keys, each on a fresh
/// database of `backend`; runs `test`; stops both and drops the databases, also when the
/// test panicked.
pub async fn run<F, Fut>(backend: TestBackend, test: F)
where
    F: FnOnce(Suite) -> Fut,
    Fut: Future<Output = ()>,
{
    roster_runtime::init_test_telemetry();
    let staff_database = TestDatabase::create(&backend).await.unwrap();
    let directory_database = TestDatabase::create(&backend).await.unwrap();
    let audit_database = TestDatabase::create(&backend).await.unwrap();

    let (tokens, _) = TestTokens::generate();
    let staff_db = roster_staff::prepare_database(&DbSettings::new(&staff_database.url))
        .await
        .unwrap();
    let staff = roster_staff::Application::build(
        ServerSettings::for_tests(),
        staff_db,
        tokens.trusted_keys(),
        Arc::new(SystemClock),
        Signing {
            kek: roster_kek::Keyring::generate("test-kek").unwrap(),
            keys: KeySettings::default(),
            sign_in: SignInPolicy::default(),
        },
    )
    .await
    .unwrap();
    let keys = staff.keys().clone();
    let staff = roster_testkit::serve(staff.into_service_app()).await;

    // No configured keys, and a refresh interval far beyond the test: only what the
    // follower fetches at start and after an unknown `kid` can make a token verify.
    let trust = TrustedKeys::new(roster_auth::VerifierSettings::default(), None).unwrap();
    let link = StaffLink::from_settings(&StaffLinkSettings {
        refresh_interval: Some(Duration::from_secs(3600)),
        ..StaffLinkSettings::following(format!("http://{}", staff.addr))
    })
    .unwrap()
    .unwrap();
    let follower = tokio::spawn(link.follow_keys(trust.clone()).await.unwrap().run());
    let staff_client = StaffServiceClient::new(staff.channel.clone());
    let view_clock = ShiftedClock::default();
    let view = RevocationView::new(Duration::from_secs(300), Arc::new(view_clock.clone()));
    assert!(trust.verifier().follow_revocations(view.clone()));
    let directory_db =
        roster_directory::prepare_database(&DbSettings::new(&directory_database.url))
            .await
            .unwrap();
    let directory = roster_directory::Application::build(
        ServerSettings::for_tests(),
        directory_db,
        trust.verifier(),
        Arc::new(SystemClock),
        WidgetKeyring::generate("test-kek").unwrap(),
    )
    .await
    .unwrap();
    let revocations = tokio::spawn(
        RevocationFollower::new(
            link.channel(),
            format!("http://{}", staff.addr),
            view.clone(),
        )
        .run(Some(directory.health())),
    );
    let directory = roster_testkit::serve(directory.into_service_app()).await;
    let audit_db = roster_audit::prepare_database(&DbSettings::new(&audit_database.url))
        .await
        .unwrap();
    let audit = roster_audit::Application::build(
        ServerSettings::for_tests(),
        audit_db,
        trust.verifier(),
        Arc::new(SystemClock),
        roster_audit::startup::Signing {
            kek: roster_kek::Keyring::generate("test-kek").unwrap(),
            log: roster_audit::settings::LogSettings::default(),
        },
    )
    .await
    .unwrap();
    let audit = roster_testkit::serve(audit.into_service_app()).await;
    // Tokens are refused until the first snapshot arrives; tests start after it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !view.is_current() {
        assert!(
            std::time::Instant::now() < deadline,
            "no revocation snapshot in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let staff_served = Arc::new(tokio::sync::Mutex::new(Some(staff)));
    let suite = Suite {
        staff: staff_client,
        directory_channel: directory.channel.clone(),
        directory: DirectoryServiceClient::new(directory.channel.clone()),
        audit: AuditServiceClient::new(audit.channel.clone()),
        keys,
        tokens,
        staff_served: Arc::clone(&staff_served),
        view_clock,
    };
    let outcome = std::panic::AssertUnwindSafe(test(suite))
        .catch_unwind()
        .await;
    directory.stop().await;
    audit.stop().await;
    follower.abort();
    revocations.abort();
    if let Some(staff) = staff_served.lock().await.take() {
        staff.stop().await;
    }
    directory_database.cleanup().await;
    audit_database.cleanup().await;
    staff_database.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

impl Suite {
    /// Stops the staff service, as an outage would.
    pub async fn stop_staff(&self) {
        if let Some(staff) = self.staff_served.lock().await.take() {
            staff.stop().await;
        }
    }
}
