//! The staff service as the shared service kit (`roster-service`) runs it: its [`SERVICE`]
//! definition, its routes, and [`Application`], which binds them (first, so tests learn the
//! port before serving).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use roster_auth::{SigningAlgorithm, VerifierSettings};
use roster_db::{Db, DbSettings};
use roster_proto::staff::v1::staff_service_server::{SERVICE_NAME, StaffServiceServer};
use roster_runtime::limits::OversizeIsResourceExhausted;
use roster_runtime::{HealthHandle, ServerSettings};
use roster_service::relay::{Relay, RelaySettings, TokenSource};
use roster_service::{ServiceApp, ServiceDef, ServiceRoutes, TrustedKeys};
use tonic::service::Routes;

use crate::api::StaffApi;
use crate::api::authz::PUBLIC_METHODS;
use crate::domain::Clock;
use crate::migration::Migrator;
use crate::service::keys::{KEK_FILE, KeySettings, Keyring};
use crate::service::{SignInPolicy, Staff};
use crate::settings::SignInSettings;

/// `roster-staff`, configured by `ROSTER_STAFF_…` variables, port 50052.
pub const SERVICE: ServiceDef = ServiceDef {
    name: "staff",
    default_port: 50052,
    grpc_services: &[SERVICE_NAME],
    file_descriptor_sets: &[roster_proto::FILE_DESCRIPTOR_SET],
    long_running: &["/roster.staff.v1.StaffService/WatchRevocations"],
    signs_tokens: true,
    produces_events: true,
    custom_plans: false,
};

/// How the staff service issues tokens: the key-encryption keys that seal its signing
/// keys at rest, the lifetimes that decide when a retired key leaves the JWKS, and how
/// agents sign in.
#[derive(Clone, Debug)]
pub struct Signing {
    pub kek: roster_kek::Keyring,
    pub keys: KeySettings,
    pub sign_in: SignInPolicy,
}

impl Signing {
    /// `ROSTER_STAFF_KEK_FILE` (else the development key under `data_dir`),
    /// `ROSTER_STAFF_ACCESS_TOKEN_TTL` with the verifier's leeway, and the sign-in settings
    /// (`ROSTER_STAFF_REFRESH_TOKEN_TTL`, `ROSTER_STAFF_SIGN_IN_…`) for tokens the verifiers'
    /// issuer and audience.
    ///
    /// # Errors
    ///
    /// A setting is invalid or the KEK file unreadable.
    pub fn from_env(data_dir: &Path, verifier: &VerifierSettings) -> anyhow::Result<Self> {
        let prefix = SERVICE.env_prefix();
        Ok(Self {
            kek: KEK_FILE.from_env(data_dir)?,
            keys: KeySettings::from_env(&prefix, verifier)?,
            sign_in: SignInPolicy::new(
                verifier.issuer.clone(),
                verifier.audience.clone(),
                SignInSettings::from_env(&prefix)?,
            ),
        })
    }
}

/// The staff service's gRPC routes: every method behind token verification but the public
/// ones (`authz::PUBLIC_METHODS`), with oversized messages answered RESOURCE_EXHAUSTED;
/// beside them, following key rotations of other replicas and purging unpublished keys.
/// The signing keys are loaded (the first created) before, and feed `trust`, so the
/// service verifies the tokens it signs.
///
/// # Errors
///
/// The verifier expects another algorithm than the service signs with, or the keys cannot
/// be loaded.
pub async fn routes(
    db: Db,
    trust: TrustedKeys,
    clock: Arc<dyn Clock>,
    signing: Signing,
    max_message_bytes: usize,
) -> anyhow::Result<(ServiceRoutes, Keyring)> {
    let verifier = trust.verifier();
    if verifier.settings().algorithm != SigningAlgorithm::EdDSA {
        anyhow::bail!(
            "ROSTER_AUTH_ALGORITHM: the staff service signs with EdDSA, so its tokens would not verify with {}",
            verifier.settings().algorithm.as_str()
        );
    }
    let keys = Keyring::start(
        db.clone(),
        signing.kek,
        Arc::clone(&clock),
        signing.keys,
        Some(trust),
    )
    .await
    .context("loading the token-signing keys")?;
    let staff = Staff::new(db, clock, keys.clone(), signing.sign_in);
    let (closing_sender, closing) = roster_service::closing();
    let service = StaffServiceServer::new(StaffApi::new(staff.clone(), closing))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let routes = Routes::new(OversizeIsResourceExhausted(
        verifier.guard(service, PUBLIC_METHODS),
    ));
    let routes = ServiceRoutes::new(routes)
        .with_closing(closing_sender)
        .with_background(keys.clone().follow())
        .with_background(keys.clone().purge_periodically())
        .with_background(purge_revocations(staff.clone()))
        .with_background(purge_request_ids(staff));
    Ok((routes, keys))
}

/// The staff service's relay: it holds the signing keys, so it mints its own tokens for the
/// audit service rather than asking itself for them with client credentials.
///
/// # Errors
///
/// The audit URL is not usable.
pub fn own_relay(
    db: Db,
    clock: Arc<dyn Clock>,
    settings: RelaySettings,
    keys: Keyring,
    verifier: &VerifierSettings,
) -> anyhow::Result<Option<Relay>> {
    let tokens = TokenSource::minted(Arc::new(keys), SERVICE.binary(), verifier);
    Relay::new(&SERVICE, db, clock, settings, tokens)
}

/// Deletes revocations that can no longer refuse a token, once a minute.
async fn purge_revocations(staff: Staff) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(60));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match staff.purge_revocations().await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "purged expired revocations"),
            Err(error) => tracing::warn!(%error, "purging expired revocations failed"),
        }
    }
}

/// Deletes request ids past their 24 hours, every 10 minutes: an idempotent DELETE, so
/// every replica runs it without coordination.
async fn purge_request_ids(staff: Staff) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(600));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match staff.purge_request_ids().await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "purged expired request ids"),
            Err(error) => tracing::warn!(%error, "purging expired request ids failed"),
        }
    }
}

/// Connects and brings the schema up to date (or checks it is, when migrations run as a
/// separate job).
pub async fn prepare_database(settings: &DbSettings) -> anyhow::Result<Db> {
    roster_service::prepare_database::<Migrator>(&SERVICE, settings).await
}

/// The staff service bound to its port, for the `roster` binary and tests.
pub struct Application {
    app: ServiceApp,
    keys: Keyring,
}

impl Application {
    pub async fn build(
        server_settings: ServerSettings,
        db: Db,
        trust: TrustedKeys,
        clock: Arc<dyn Clock>,
        signing: Signing,
    ) -> anyhow::Result<Self> {
        let (routes, keys) = routes(
            db.clone(),
            trust,
            clock,
            signing,
            server_settings.max_message_bytes,
        )
        .await?;
        Ok(Self {
            app: ServiceApp::bind(&SERVICE, server_settings, db, routes).await?,
            keys,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.app.local_addr()
    }

    pub fn health(&self) -> HealthHandle {
        self.app.health()
    }

    /// The token-signing keys, for minting in-process (`roster dev-token`, tests).
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    /// Runs `relay` beside the routes (see `roster_service::relay`).
    pub fn with_relay(self, relay: Relay) -> Self {
        Self {
            app: self.app.with_relay(relay),
            keys: self.keys,
        }
    }

    /// The service as the shared kit runs it, for `roster_testkit::serve`.
    pub fn into_service_app(self) -> ServiceApp {
        self.app
    }

    /// Serves until `shutdown` resolves; see [`ServiceApp::run_until_stopped`].
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.app.run_until_stopped(shutdown).await
    }
}
