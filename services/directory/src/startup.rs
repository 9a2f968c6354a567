//! The directory as the shared service kit (`roster-service`) runs it: its [`SERVICE`]
//! definition, its routes, and [`Application`], which binds them (first, so tests learn the
//! port before serving).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use roster_auth::TokenVerifier;
use roster_db::{Db, DbSettings};
use roster_proto::directory::v1::directory_service_server::{DirectoryServiceServer, SERVICE_NAME};
use roster_runtime::limits::OversizeIsResourceExhausted;
use roster_runtime::{HealthHandle, ServerSettings};
use roster_service::audit_reader::AuditReader;
use roster_service::{ServiceApp, ServiceDef, ServiceRoutes};
use tonic::service::Routes;

use crate::api::DirectoryApi;
use crate::domain::Clock;
use crate::migration::Migrator;
use crate::service::Directory;
use crate::widget_kek::WidgetKeyring;

const IMPORT_USERS_PATH: &str = "/roster.directory.v1.DirectoryService/ImportUsers";

/// `roster-directory`, configured by `ROSTER_DIRECTORY_…` variables, port 50051.
pub const SERVICE: ServiceDef = ServiceDef {
    name: "directory",
    default_port: 50051,
    grpc_services: &[SERVICE_NAME],
    file_descriptor_sets: &[roster_proto::FILE_DESCRIPTOR_SET],
    // A CSV upload lasts as long as the file takes to send; only the client's deadline
    // bounds it.
    long_running: &[IMPORT_USERS_PATH],
    signs_tokens: false,
    produces_events: true,
    custom_plans: false,
};

/// The directory's gRPC routes (`audit` is where ExportUser reads users' audit events,
/// usually the relay's [`roster_service::relay::Relay::reader`]): the API behind token verification, with oversized messages
/// answered RESOURCE_EXHAUSTED; and the purge of expired request ids beside them. Widget
/// secrets still stored in plaintext are sealed first, so none is served unsealed.
pub async fn routes(
    db: Db,
    verifier: TokenVerifier,
    clock: Arc<dyn Clock>,
    widget_kek: WidgetKeyring,
    audit: Option<AuditReader>,
    max_message_bytes: usize,
) -> anyhow::Result<ServiceRoutes> {
    let directory = Directory::new(db, clock, widget_kek);
    directory
        .seal_plaintext_widget_secrets()
        .await
        .context("sealing widget secrets stored in plaintext")?;
    let service = DirectoryServiceServer::new(DirectoryApi::new(directory.clone(), audit))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let routes = Routes::new(OversizeIsResourceExhausted(
        tonic::service::interceptor::InterceptedService::new(service, verifier.interceptor()),
    ));
    Ok(ServiceRoutes::new(routes).with_background(directory.purge_request_ids_periodically()))
}

/// Connects and brings the schema up to date (or checks it is, when migrations run as a
/// separate job).
pub async fn prepare_database(settings: &DbSettings) -> anyhow::Result<Db> {
    roster_service::prepare_database::<Migrator>(&SERVICE, settings).await
}

/// The directory bound to its port, for the `roster` binary, tests and the benchmark.
pub struct Application(ServiceApp);

impl Application {
    pub async fn build(
        server_settings: ServerSettings,
        db: Db,
        verifier: TokenVerifier,
        clock: Arc<dyn Clock>,
        widget_kek: WidgetKeyring,
        audit: Option<AuditReader>,
    ) -> anyhow::Result<Self> {
        let routes = routes(
            db.clone(),
            verifier,
            clock,
            widget_kek,
            audit,
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

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn health(&self) -> HealthHandle {
        self.0.health()
    }

    /// Runs `relay` beside the routes (see `roster_service::relay`).
    pub fn with_relay(self, relay: roster_service::relay::Relay) -> Self {
        Self(self.0.with_relay(relay))
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
