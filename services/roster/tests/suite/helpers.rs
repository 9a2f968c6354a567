#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use roster_auth::RevocationView;
use roster_core::ShiftedClock;
use roster_db::Db;
use roster_db::DbSettings;
use roster_directory::widget_kek::WidgetKeyring;
use roster_proto::audit::v1::audit_service_client::AuditServiceClient;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use roster_proto::staff::v1 as staff_pb;
use roster_proto::staff::v1::staff_service_client::StaffServiceClient;
use roster_runtime::ServerSettings;
use roster_service::relay::{Relay, RelaySettings, RelayStatus, TokenSource};
use roster_service::revocations::RevocationFollower;
use roster_service::{ClosingSender, StaffLink, StaffLinkSettings, TrustedKeys};
use roster_staff::domain::SystemClock;
use roster_staff::service::SignInPolicy;
use roster_staff::service::keys::{KeySettings, Keyring};
use roster_staff::startup::Signing;
use roster_testkit::{Served, TestBackend, TestDatabase, TestTokens};
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The workspace the suite's tests write in.
pub const WS: &str = "acme";

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
    /// The databases behind the producers, to read their outboxes.
    pub directory_db: Db,
    pub staff_db: Db,
    /// What a second directory replica on the same database needs.
    pub directory_database_url: String,
    pub directory_verifier: roster_auth::TokenVerifier,
    /// The platform service account the directories' relays take their tokens with.
    relay_account: (String, String),
    staff_channel: Channel,
    /// The audit service (stopped and started again by tests) and how to start it.
    audit_served: Arc<tokio::sync::Mutex<Option<Served>>>,
    audit_start: AuditStart,
    audit_addr: std::net::SocketAddr,
    /// Directory replicas tests started.
    replicas: Arc<tokio::sync::Mutex<Vec<Served>>>,
    /// The relays running beside the services, stopped with them.
    relays: Arc<std::sync::Mutex<Vec<RunningRelay>>>,
    /// The relays' figures: the directory's, then the staff service's.
    pub directory_relay: RelayStatus,
    pub staff_relay: RelayStatus,
}

/// What starts the audit service again on its database, key and address.
#[derive(Clone)]
struct AuditStart {
    database_url: String,
    kek: roster_kek::Keyring,
    verifier: roster_auth::TokenVerifier,
}

struct RunningRelay {
    closing: ClosingSender,
    task: JoinHandle<()>,
}

/// An agent's CreateUser of a user with `email` in [`WS`], as the suite's flows send it.
pub fn create_user_request(
    token: &str,
    email: &str,
) -> tonic::Request<roster_proto::directory::v1::CreateUserRequest> {
    use roster_proto::directory::v1 as directory;
    roster_testkit::with_bearer(
        token,
        directory::CreateUserRequest {
            workspace_id: WS.into(),
            user: Some(directory::User {
                email: email.into(),
                name: "James Kirk".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
}

/// How the suite's relays run: quick to poll and to retry, refused events dead at the
/// second refusal, so tests wait briefly.
pub fn relay_settings(audit: std::net::SocketAddr) -> RelaySettings {
    let mut settings = RelaySettings::delivering_to(format!("http://{audit}"));
    settings.poll_interval = Duration::from_millis(20);
    settings.policy.first_backoff = Duration::from_millis(20);
    settings.policy.max_backoff = Duration::from_millis(200);
    settings.policy.max_attempts = 2;
    settings
}

/// Every pool of the suite sends its statements to `tracing` at DEBUG (seen with
/// `TEST_LOG` and a filter naming `sqlx::query`), so `workspace_keys` can read what the
/// services ask of their databases.
pub fn db_settings(url: &str) -> DbSettings {
    DbSettings {
        log_statements: true,
        ..DbSettings::new(url)
    }
}

#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        roster_testkit::on_both_databases!($crate::helpers::run => $($name),*);
    };
}

#[macro_export]
macro_rules! on_postgres_only {
    ($($name:ident),* $(,)?) => {
        roster_testkit::on_postgres_only!($crate::helpers::run => $($name),*);
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
    let staff_db = roster_staff::prepare_database(&db_settings(&staff_database.url))
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
    let audit_kek = roster_kek::Keyring::generate("test-kek").unwrap();
    let audit_db = roster_audit::prepare_database(&db_settings(&audit_database.url))
        .await
        .unwrap();
    let audit = roster_audit::Application::build(
        ServerSettings::for_tests(),
        audit_db,
        trust.verifier(),
        Arc::new(SystemClock),
        roster_audit::startup::Signing {
            kek: audit_kek.clone(),
            log: roster_audit::settings::LogSettings::default(),
        },
    )
    .await
    .unwrap();
    let audit = roster_testkit::serve(audit.into_service_app()).await;
    let audit_addr = audit.addr;
    let audit_start = AuditStart {
        database_url: audit_database.url.clone(),
        kek: audit_kek,
        verifier: trust.verifier(),
    };
    // The relays: the staff service's mints its tokens with its own key; the directory's
    // asks the staff service for them with a platform service account's credentials, as
    // the directory's own binary does, and ExportUser reads through the same account.
    let relay_account = platform_service_account(&staff_client, &tokens).await;
    let directory_app_db =
        roster_directory::prepare_database(&db_settings(&directory_database.url))
            .await
            .unwrap();
    let directory_db = Db::connect(&db_settings(&directory_database.url))
        .await
        .unwrap();
    let directory_relay = Relay::new(
        &roster_directory::startup::SERVICE,
        directory_db.clone(),
        Arc::new(SystemClock),
        relay_settings(audit_addr),
        TokenSource::client_credentials(
            staff.channel.clone(),
            relay_account.0.clone(),
            SecretString::from(relay_account.1.clone()),
        ),
    )
    .unwrap()
    .unwrap();
    let directory = roster_directory::Application::build(
        ServerSettings::for_tests(),
        directory_app_db,
        trust.verifier(),
        Arc::new(SystemClock),
        WidgetKeyring::generate("test-kek").unwrap(),
        Some(directory_relay.reader()),
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
    // Tokens are refused until the first snapshot arrives; tests start after it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !view.is_current() {
        assert!(
            std::time::Instant::now() < deadline,
            "no revocation snapshot in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let staff_db = Db::connect(&db_settings(&staff_database.url))
        .await
        .unwrap();
    let relays = Arc::new(std::sync::Mutex::new(Vec::new()));
    let directory_relay = start_relay(&relays, directory_relay);
    let staff_relay = start_relay(
        &relays,
        roster_staff::startup::own_relay(
            staff_db.clone(),
            Arc::new(SystemClock),
            relay_settings(audit_addr),
            keys.clone(),
            &roster_auth::VerifierSettings::default(),
        )
        .unwrap()
        .unwrap(),
    );

    let staff_channel = staff.channel.clone();
    let staff_served = Arc::new(tokio::sync::Mutex::new(Some(staff)));
    let audit_client = AuditServiceClient::new(audit.channel.clone());
    let audit_served = Arc::new(tokio::sync::Mutex::new(Some(audit)));
    let replicas = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let suite = Suite {
        staff: staff_client,
        directory_channel: directory.channel.clone(),
        directory: DirectoryServiceClient::new(directory.channel.clone()),
        audit: audit_client,
        keys,
        tokens,
        staff_served: Arc::clone(&staff_served),
        view_clock,
        directory_db: directory_db.clone(),
        staff_db: staff_db.clone(),
        directory_database_url: directory_database.url.clone(),
        directory_verifier: trust.verifier(),
        relay_account,
        staff_channel,
        audit_served: Arc::clone(&audit_served),
        audit_start,
        audit_addr,
        replicas: Arc::clone(&replicas),
        relays: Arc::clone(&relays),
        directory_relay,
        staff_relay,
    };
    let outcome = std::panic::AssertUnwindSafe(test(suite))
        .catch_unwind()
        .await;
    let running: Vec<RunningRelay> = std::mem::take(&mut *relays.lock().unwrap());
    for relay in running {
        relay.closing.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), relay.task).await;
    }
    for replica in std::mem::take(&mut *replicas.lock().await) {
        replica.stop().await;
    }
    directory.stop().await;
    if let Some(audit) = audit_served.lock().await.take() {
        audit.stop().await;
    }
    directory_db.close().await;
    staff_db.close().await;
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

/// Runs `relay` until the suite ends, and answers its figures.
fn start_relay(relays: &std::sync::Mutex<Vec<RunningRelay>>, relay: Relay) -> RelayStatus {
    let status = relay.status();
    let (closing, closed) = roster_service::closing();
    let task = tokio::spawn(relay.run(None, closed));
    relays.lock().unwrap().push(RunningRelay { closing, task });
    status
}

/// A platform service account (every workspace) holding what the relays need, created by a
/// platform provisioner's token: its client id and secret.
async fn platform_service_account(
    staff: &StaffServiceClient<Channel>,
    tokens: &TestTokens,
) -> (String, String) {
    let provisioner = tokens.service(
        "provisioner",
        &[
            "staff.manage",
            "audit_log.append",
            "audit_log.erase",
            "audit_log.view",
        ],
    );
    let created = staff
        .clone()
        .create_service_account(roster_testkit::with_bearer(
            &provisioner,
            staff_pb::CreateServiceAccountRequest {
                workspace_id: WS.into(),
                name: "directory-relay".into(),
                workspaces: vec!["*".into()],
                permissions: vec![
                    "audit_log.append".into(),
                    "audit_log.erase".into(),
                    "audit_log.view".into(),
                ],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    (
        created.service_account.unwrap().client_id,
        created.client_secret,
    )
}

impl Suite {
    /// The audit service as it runs now (a stopped one refuses connections).
    pub async fn audit_client(&self) -> AuditServiceClient<Channel> {
        match &*self.audit_served.lock().await {
            Some(served) => AuditServiceClient::new(served.channel.clone()),
            None => self.audit.clone(),
        }
    }

    /// Stops the audit service, as an outage would; its database stays.
    pub async fn stop_audit(&self) {
        if let Some(audit) = self.audit_served.lock().await.take() {
            audit.stop().await;
        }
    }

    /// Starts the audit service again on its database and key, at the address the relays
    /// deliver to.
    pub async fn start_audit(&self) {
        let mut served = self.audit_served.lock().await;
        assert!(served.is_none(), "the audit service is running");
        let start = self.audit_start.clone();
        let db = roster_audit::prepare_database(&db_settings(&start.database_url))
            .await
            .unwrap();
        let settings = ServerSettings {
            listen_addr: self.audit_addr(),
            ..ServerSettings::for_tests()
        };
        let audit = roster_audit::Application::build(
            settings,
            db,
            start.verifier,
            Arc::new(SystemClock),
            roster_audit::startup::Signing {
                kek: start.kek,
                log: roster_audit::settings::LogSettings::default(),
            },
        )
        .await
        .unwrap();
        *served = Some(roster_testkit::serve(audit.into_service_app()).await);
    }

    /// Where the relays deliver.
    pub fn audit_addr(&self) -> std::net::SocketAddr {
        self.audit_addr
    }

    /// A second directory on the directory's database with a relay of its own, as a second
    /// replica would run: its client and its relay's figures. Stopped with the suite.
    pub async fn directory_replica(&self) -> (DirectoryServiceClient<Channel>, RelayStatus) {
        let db = roster_directory::prepare_database(&db_settings(&self.directory_database_url))
            .await
            .unwrap();
        let relay = Relay::new(
            &roster_directory::startup::SERVICE,
            db.clone(),
            Arc::new(SystemClock),
            relay_settings(self.audit_addr()),
            TokenSource::client_credentials(
                self.staff_channel.clone(),
                self.relay_account.0.clone(),
                SecretString::from(self.relay_account.1.clone()),
            ),
        )
        .unwrap()
        .unwrap();
        let directory = roster_directory::Application::build(
            ServerSettings::for_tests(),
            db,
            self.directory_verifier.clone(),
            Arc::new(SystemClock),
            WidgetKeyring::generate("test-kek").unwrap(),
            Some(relay.reader()),
        )
        .await
        .unwrap();
        let served = roster_testkit::serve(directory.into_service_app()).await;
        let status = start_relay(&self.relays, relay);
        let client = DirectoryServiceClient::new(served.channel.clone());
        self.replicas.lock().await.push(served);
        (client, status)
    }

    /// Stops the staff service, as an outage would.
    pub async fn stop_staff(&self) {
        if let Some(staff) = self.staff_served.lock().await.take() {
            staff.stop().await;
        }
    }
}
