//! The directory as the shared service kit (`roster-service`) runs it: its [`SERVICE`]
//! definition, its routes, and [`Application`], which binds them (first, so tests learn the
//! port before serving).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use roster_auth::TokenVerifier;
use roster_db::{Db, DbSettings};
use roster_proto::directory::v1::directory_service_server::{DirectoryServiceServer, SERVICE_NAME};
use roster_runtime::limits::OversizeIsResourceExhausted;
use roster_runtime::{HealthHandle, ServerSettings};
use roster_service::{ServiceApp, ServiceDef};
use tonic::service::Routes;

use crate::api::DirectoryApi;
use crate::domain::Clock;
use crate::migration::Migrator;
use crate::service::Directory;

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
};

/// The directory's gRPC routes: the API behind token verification, with oversized messages
/// answered RESOURCE_EXHAUSTED.
pub fn routes(
    db: Db,
    verifier: TokenVerifier,
    clock: Arc<dyn Clock>,
    max_message_bytes: usize,
) -> Routes {
    let api = DirectoryApi::new(Directory::new(db, clock));
    let service = DirectoryServiceServer::new(api)
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    Routes::new(OversizeIsResourceExhausted(
        tonic::service::interceptor::InterceptedService::new(service, verifier.interceptor()),
    ))
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
    ) -> anyhow::Result<Self> {
        let routes = routes(
            db.clone(),
            verifier,
            clock,
            server_settings.max_message_bytes,
        );
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

    /// Serves until `shutdown` resolves; see [`ServiceApp::run_until_stopped`].
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.0.run_until_stopped(shutdown).await
    }
}
