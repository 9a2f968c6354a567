//! Builds the directory: database, migrations, auth, and the gRPC server with the shared
//! runtime's layers. `build` binds first, so tests learn the port before serving.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use roster_auth::TokenVerifier;
use roster_db::{Db, DbSettings};
use roster_proto::directory::v1::directory_service_server::{DirectoryServiceServer, SERVICE_NAME};
use roster_runtime::settings::ServerSettings;
use roster_runtime::{GrpcServer, HealthHandle};
use sea_orm_migration::MigratorTrait;
use tonic::service::Routes;

use crate::api::DirectoryApi;
use crate::domain::Clock;
use crate::migration::Migrator;
use crate::service::Directory;
use crate::widget_kek::WidgetKeyring;
use roster_runtime::limits::OversizeIsResourceExhausted;

const IMPORT_USERS_PATH: &str = "/roster.directory.v1.DirectoryService/ImportUsers";

/// How often the database is pinged to keep the health status honest.
const DATABASE_CHECK_INTERVAL: Duration = Duration::from_secs(10);

pub struct Application {
    server: GrpcServer,
    routes: Routes,
    db: Db,
    directory: Directory,
}

/// Connects and brings the schema up to date (or checks it is, when migrations run as a
/// separate job).
pub async fn prepare_database(settings: &DbSettings) -> anyhow::Result<Db> {
    let db = Db::connect(settings)
        .await
        .context("connecting to the directory database")?;
    if settings.migrate_on_start {
        db.migrate::<Migrator>()
            .await
            .context("running the directory's migrations")?;
    } else {
        let pending = Migrator::get_pending_migrations(db.conn())
            .await
            .context("reading migration state")?;
        if !pending.is_empty() {
            anyhow::bail!(
                "the directory database has {} pending migration(s); run `roster-directory migrate` or set ROSTER_DIRECTORY_MIGRATE_ON_START=true",
                pending.len()
            );
        }
    }
    db.ping()
        .await
        .context("the directory database does not answer")?;
    Ok(db)
}

impl Application {
    pub async fn build(
        server_settings: ServerSettings,
        db: Db,
        verifier: TokenVerifier,
        clock: Arc<dyn Clock>,
        widget_kek: WidgetKeyring,
    ) -> anyhow::Result<Self> {
        let max_message_bytes = server_settings.max_message_bytes;
        let server = GrpcServer::bind(server_settings, &[SERVICE_NAME])
            .await
            .context("binding the directory's listen address")?
            // A CSV upload lasts as long as the file takes to send; only the client's
            // deadline bounds it.
            .long_running(&[IMPORT_USERS_PATH]);
        let directory = Directory::new(db.clone(), clock, widget_kek);
        directory
            .seal_plaintext_widget_secrets()
            .await
            .context("sealing widget secrets stored in plaintext")?;
        let api = DirectoryApi::new(directory.clone());
        let service = DirectoryServiceServer::new(api)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes);
        let routes = Routes::new(OversizeIsResourceExhausted(
            tonic::service::interceptor::InterceptedService::new(service, verifier.interceptor()),
        ));
        Ok(Self {
            server,
            routes,
            db,
            directory,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn health(&self) -> HealthHandle {
        self.server.health()
    }

    /// Serves until `shutdown` resolves. Health turns SERVING now (the database answered
    /// and the schema is current) and follows the database afterwards.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let health = self.server.health();
        health.set_serving().await;
        let watcher = tokio::spawn(watch_database(self.db.clone(), health));
        let purger = tokio::spawn(self.directory.purge_request_ids_periodically());
        let result = self
            .server
            .serve(self.routes, &[roster_proto::FILE_DESCRIPTOR_SET], shutdown)
            .await;
        watcher.abort();
        purger.abort();
        self.db.close().await;
        result
    }
}

async fn watch_database(db: Db, health: HealthHandle) {
    let mut serving = true;
    let mut ticks = tokio::time::interval(DATABASE_CHECK_INTERVAL);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match db.ping().await {
            Ok(()) if !serving => {
                tracing::info!("the database answers again; serving");
                health.set_serving().await;
                serving = true;
            }
            Err(error) if serving => {
                tracing::error!(error = %error, "the database does not answer; health is NOT_SERVING");
                health.set_not_serving().await;
                serving = false;
            }
            _ => {}
        }
    }
}
