//! The staff service as the shared service kit (`roster-service`) runs it: its [`SERVICE`]
//! definition, its routes, and [`Application`], which binds them (first, so tests learn the
//! port before serving).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use roster_auth::TokenVerifier;
use roster_db::{Db, DbSettings};
use roster_proto::staff::v1::staff_service_server::{SERVICE_NAME, StaffServiceServer};
use roster_runtime::limits::OversizeIsResourceExhausted;
use roster_runtime::{HealthHandle, ServerSettings};
use roster_service::{ServiceApp, ServiceDef, ServiceRoutes};
use tonic::service::Routes;

use crate::api::StaffApi;
use crate::api::authz::PUBLIC_METHODS;
use crate::domain::Clock;
use crate::migration::Migrator;
use crate::service::{SignInPolicy, Staff};

/// `roster-staff`, configured by `ROSTER_STAFF_…` variables, port 50052.
pub const SERVICE: ServiceDef = ServiceDef {
    name: "staff",
    default_port: 50052,
    grpc_services: &[SERVICE_NAME],
    file_descriptor_sets: &[roster_proto::FILE_DESCRIPTOR_SET],
    long_running: &[],
};

/// The staff service's gRPC routes: every method behind token verification but the public
/// ones (`authz::PUBLIC_METHODS`), with oversized messages answered RESOURCE_EXHAUSTED.
pub fn routes(
    db: Db,
    verifier: TokenVerifier,
    clock: Arc<dyn Clock>,
    sign_in: SignInPolicy,
    max_message_bytes: usize,
) -> ServiceRoutes {
    let service = StaffServiceServer::new(StaffApi::new(Staff::new(db, clock, sign_in)))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let routes = Routes::new(OversizeIsResourceExhausted(
        verifier.guard(service, PUBLIC_METHODS),
    ));
    ServiceRoutes::new(routes)
}

/// Connects and brings the schema up to date (or checks it is, when migrations run as a
/// separate job).
pub async fn prepare_database(settings: &DbSettings) -> anyhow::Result<Db> {
    roster_service::prepare_database::<Migrator>(&SERVICE, settings).await
}

/// The staff service bound to its port, for the `roster` binary and tests.
pub struct Application(ServiceApp);

impl Application {
    pub async fn build(
        server_settings: ServerSettings,
        db: Db,
        verifier: TokenVerifier,
        clock: Arc<dyn Clock>,
        sign_in: SignInPolicy,
    ) -> anyhow::Result<Self> {
        let routes = routes(
            db.clone(),
            verifier,
            clock,
            sign_in,
            server_settings.max_message_bytes,
        );
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
