//! Readiness as Kubernetes sees it, through `grpc.health.v1.Health/Check`: it follows the
//! database, and only the database. A pool with every connection out is a busy replica,
//! which must stay in rotation; a database that stops answering takes the replica out
//! within the check interval, and one that answers again puts it back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roster_auth::{TokenVerifier, VerifierSettings};
use roster_db::testing::{TestBackend, TestDatabase};
use roster_db::{Db, DbError, DbSettings};
use roster_directory::domain::ShiftedClock;
use roster_directory::prepare_database;
use roster_runtime::ServerSettings;
use sea_orm::TransactionTrait;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const CHECK_INTERVAL: Duration = Duration::from_millis(100);
const POOL_SIZE: u32 = 2;
/// How long a test waits for health to reach a status: many intervals, so a slow machine
/// does not fail the test, but far less than the 10 s default interval.
const SETTLE_WITHIN: Duration = Duration::from_secs(5);

/// A directory on its own small pool, with a short health-check interval.
struct HealthApp {
    health: HealthClient<Channel>,
    /// Shares the service's pool.
    db: Db,
    served: roster_testkit::Served,
}

impl HealthApp {
    async fn start(database_url: &str) -> Self {
        let mut db_settings = DbSettings::new(database_url);
        db_settings.max_connections = POOL_SIZE;
        db_settings.min_connections = 1;
        db_settings.acquire_timeout = Duration::from_millis(300);
        let db = prepare_database(&db_settings)
            .await
            .expect("database ready");
        let (_, keys, _) = roster_auth::generate_ed25519("test-key").unwrap();
        let verifier = TokenVerifier::new(VerifierSettings::default(), keys);
        let mut settings = ServerSettings::for_tests();
        settings.health_check_interval = CHECK_INTERVAL;
        let served = crate::helpers::serve(
            settings,
            db.clone(),
            verifier,
            Arc::new(ShiftedClock::default()),
            roster_directory::widget_kek::WidgetKeyring::generate("test-kek").unwrap(),
        )
        .await;
        Self {
            health: HealthClient::new(served.channel.clone()),
            db,
            served,
        }
    }

    async fn status(&mut self) -> ServingStatus {
        let response = self
            .health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health answers")
            .into_inner();
        ServingStatus::try_from(response.status).unwrap()
    }

    /// Polls until health reports `expected`, failing after [`SETTLE_WITHIN`].
    async fn wait_for(&mut self, expected: ServingStatus) {
        let deadline = tokio::time::Instant::now() + SETTLE_WITHIN;
        loop {
            let status = self.status().await;
            if status == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "health is still {status:?}, not {expected:?}, after {SETTLE_WITHIN:?}"
            );
            tokio::time::sleep(CHECK_INTERVAL / 4).await;
        }
    }

    /// Asserts health answers SERVING at every poll for `checks` check intervals.
    async fn stays_serving_for(&mut self, checks: u32) {
        let until = tokio::time::Instant::now() + CHECK_INTERVAL * checks;
        while tokio::time::Instant::now() < until {
            assert_eq!(self.status().await, ServingStatus::Serving);
            tokio::time::sleep(CHECK_INTERVAL / 4).await;
        }
    }

    async fn stop(self) {
        self.served.stop().await;
        self.db.close().await;
    }
}

async fn a_saturated_pool_keeps_the_replica_serving(backend: TestBackend) {
    roster_runtime::init_test_telemetry();
    let database = TestDatabase::create(&backend).await.unwrap();
    let mut app = HealthApp::start(&database.url).await;
    app.wait_for(ServingStatus::Serving).await;

    let mut held = Vec::new();
    for _ in 0..POOL_SIZE {
        held.push(app.db.conn().begin().await.unwrap());
    }
    // Every connection is out: a call needing one waits, then gives up.
    assert!(matches!(app.db.ping().await, Err(DbError::Unavailable(_))));

    // The pool's acquire timeout is 3 intervals: a check that queued for a connection
    // would have reported NOT_SERVING well inside this window.
    app.stays_serving_for(12).await;

    drop(held);
    app.stop().await;
    database.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_pool_keeps_the_replica_serving_sqlite() {
    a_saturated_pool_keeps_the_replica_serving(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn a_saturated_pool_keeps_the_replica_serving_postgres() {
    let backend = TestBackend::from_env_postgres().expect("ROSTER_TEST_DATABASE_URL is set");
    a_saturated_pool_keeps_the_replica_serving(backend).await;
}

/// PostgreSQL only: a SQLite file cannot stop answering while its process runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roster_postgres_tests),
    ignore = "ROSTER_TEST_DATABASE_URL is not set"
)]
async fn a_database_that_stops_answering_takes_the_replica_out_until_it_is_back() {
    let backend = TestBackend::from_env_postgres().expect("ROSTER_TEST_DATABASE_URL is set");
    roster_runtime::init_test_telemetry();
    let database = TestDatabase::create(&backend).await.unwrap();
    let (authority, proxied_url) = through_proxy(&database.url);
    let upstream = tokio::net::lookup_host(authority)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = CuttableProxy::start(upstream).await;
    let mut app = HealthApp::start(&proxied_url(proxy.addr)).await;
    app.wait_for(ServingStatus::Serving).await;

    proxy.cut();
    app.wait_for(ServingStatus::NotServing).await;

    proxy.restore();
    app.wait_for(ServingStatus::Serving).await;

    app.stop().await;
    database.cleanup().await;
}

/// The `host:port` of a PostgreSQL URL, and the same URL pointed at another address.
fn through_proxy(url: &str) -> (String, impl Fn(SocketAddr) -> String + use<>) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, rest) = match rest.split_once('@') {
        Some((userinfo, rest)) => (format!("{userinfo}@"), rest),
        None => (String::new(), rest),
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (scheme, tail) = (scheme.to_owned(), tail.to_owned());
    let rebuilt = move |addr: SocketAddr| format!("{scheme}://{userinfo}{addr}{tail}");
    (authority.to_owned(), rebuilt)
}

/// A TCP relay to PostgreSQL that the test can cut (open connections dropped, new ones
/// closed at once, as when the server dies) and restore.
struct CuttableProxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl CuttableProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = watch::channel(false);
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *cut_rx.borrow() {
                    continue;
                }
                tokio::spawn(relay(client, upstream, cut_rx.clone()));
            }
        });
        Self {
            addr,
            cut,
            accepting,
        }
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }

    fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, mut cut: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
}
