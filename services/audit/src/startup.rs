//! The audit service as the shared service kit (`roster-service`) runs it: its [`SERVICE`]
//! definition, its routes, and [`Application`], which binds them (first, so tests learn the
//! port before serving).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use roster_auth::TokenVerifier;
use roster_db::{Db, DbSettings};
use roster_proto::audit::v1::audit_service_server::{AuditServiceServer, SERVICE_NAME};
use roster_runtime::limits::OversizeIsResourceExhausted;
use roster_runtime::{HealthHandle, ServerSettings};
use roster_service::{ServiceApp, ServiceDef, ServiceRoutes};
use tonic::service::Routes;

use crate::api::AuditApi;
use crate::api::authz::PUBLIC_METHODS;
use crate::domain::Clock;
use crate::migration::Migrator;
use crate::service::{Audit, keys};
use crate::settings::LogSettings;

/// `roster-audit`, configured by `ROSTER_AUDIT_…` variables, port 50053.
pub const SERVICE: ServiceDef = ServiceDef {
    name: "audit",
    default_port: 50053,
    grpc_services: &[SERVICE_NAME],
    file_descriptor_sets: &[roster_proto::FILE_DESCRIPTOR_SET],
    // A stream lasts as long as its watcher (at most 10 minutes, `api/watch.rs`), and
    // VerifyLog as long as the log is (millions of events take seconds): only the caller's
    // deadline bounds them.
    long_running: &[
        "/roster.audit.v1.AuditService/WatchEvents",
        "/roster.audit.v1.AuditService/VerifyLog",
    ],
    signs_tokens: false,
    produces_events: false,
    // Its logs grow from empty under prepared statements: a generic plan of the resend
    // check made on an empty table scanned the workspace (30 s a batch at 70,000 events).
    custom_plans: true,
};

/// How the service signs checkpoints: the KEK sealing its key at rest and the logs' origin.
#[derive(Clone, Debug)]
pub struct Signing {
    pub kek: roster_kek::Keyring,
    pub log: LogSettings,
}

impl Signing {
    /// `ROSTER_AUDIT_KEK_FILE` (else the development key under `data_dir`) and
    /// `ROSTER_AUDIT_LOG_ORIGIN`.
    ///
    /// # Errors
    ///
    /// A setting is invalid or the KEK file unreadable.
    pub fn from_env(data_dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            kek: keys::KEK_FILE.from_env(data_dir)?,
            log: LogSettings::from_env(&SERVICE.env_prefix())?,
        })
    }
}

/// The audit service's gRPC routes: every method but GetLogKey behind token verification,
/// oversized messages answered RESOURCE_EXHAUSTED. The checkpoint-signing key is loaded
/// (created by the first replica) before.
///
/// # Errors
///
/// The key cannot be loaded or opened.
pub async fn routes(
    db: Db,
    verifier: TokenVerifier,
    clock: Arc<dyn Clock>,
    signing: Signing,
    max_message_bytes: usize,
) -> anyhow::Result<ServiceRoutes> {
    let key = keys::load_or_create(&db, &signing.kek, clock.as_ref(), signing.log.origin)
        .await
        .context("loading the checkpoint-signing key")?;
    let audit = Audit::new(db, clock, key);
    let (closing_sender, closing) = roster_service::closing();
    let pruning = audit.clone().prune_periodically();
    let service = AuditServiceServer::new(AuditApi::new(audit, closing))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let routes = Routes::new(OversizeIsResourceExhausted(
        verifier.guard(service, PUBLIC_METHODS),
    ));
    Ok(ServiceRoutes::new(routes)
        .with_closing(closing_sender)
        .with_background(pruning))
}

/// Connects and brings the schema up to date (or checks it is, when migrations run as a
/// separate job).
pub async fn prepare_database(settings: &DbSettings) -> anyhow::Result<Db> {
    roster_service::prepare_database::<Migrator>(&SERVICE, settings).await
}

/// The audit service bound to its port, for the `roster` binary and tests.
pub struct Application(ServiceApp);

impl Application {
    pub async fn build(
        server_settings: ServerSettings,
        db: Db,
        verifier: TokenVerifier,
        clock: Arc<dyn Clock>,
        signing: Signing,
    ) -> anyhow::Result<Self> {
        let routes = routes(
            db.clone(),
            verifier,
            clock,
            signing,
            server_settings.max_message_bytes,
        )
        .await?;
        Ok(Self(
            ServiceApp::bind(&SERVICE, server_settings, db, routes).await?,
        ))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    pub fn health(&self) -> HealthHandle {
        self.0.health()
    }

    /// The service as the shared kit runs it, for `roster_testkit::serve`.
    pub fn into_service_app(self) -> ServiceApp {
        self.0
    }

    /// Serves until `shutdown` resolves; see [`ServiceApp::run_until_stopped`].
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.0.run_until_stopped(shutdown).await
    }
}
