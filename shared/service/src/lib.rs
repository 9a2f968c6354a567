//! The bootstrap every Roster service shares, so a service's crate holds only its own
//! domain: its routes, its migrator and a [`ServiceDef`] naming it. Its `main` is then
//!
//! ```ignore
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     roster_service::main::<Migrator>(&SERVICE, |parts| routes(parts.db, parts.verifier)).await
//! }
//! ```
//!
//! where `routes` is an async function answering a [`ServiceRoutes`] (the gRPC routes, plus
//! any background work, such as purges, that runs while the service serves), which gives it `serve` (the default) and `migrate` subcommands, settings from
//! `ROSTER_<NAME>_…` and `ROSTER_AUTH_…` variables, a database connected, migrated (or
//! checked to be current) and pinged before the port answers, and health that follows the
//! database on a connection of its own until a signal stops the process.
//!
//! This is a crate of its own rather than part of `roster-runtime` because it needs the
//! database and token verification: the runtime serves gRPC and knows neither, and a
//! process without a database (a relay, a gateway) can use it alone.

pub mod audit_reader;
pub mod refusal;
pub mod relay;
pub mod revocations;
pub mod staff_link;
pub mod trust;

pub use refusal::Refusal;
pub use staff_link::{KeyFollower, StaffLink, StaffLinkSettings};
pub use trust::TrustedKeys;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use roster_auth::{AuthSettings, TokenVerifier};
use roster_db::{Db, DbSettings, HealthProbe};
use roster_runtime::telemetry::{TelemetrySettings, init_telemetry};
use roster_runtime::{GrpcServer, HealthHandle, ServerSettings};
use sea_orm_migration::MigratorTrait;
use tonic::service::Routes;

/// What names a service and what the shared server must know about it.
#[derive(Clone, Copy, Debug)]
pub struct ServiceDef {
    /// `directory`: the binary is `roster-<name>`, its variables `ROSTER_<NAME>_…`, its
    /// default database `sqlite://data/<name>.db`.
    pub name: &'static str,
    pub default_port: u16,
    /// Fully qualified gRPC service names, each reported by health alongside "".
    pub grpc_services: &'static [&'static str],
    /// Encoded `FileDescriptorSet`s that reflection serves.
    pub file_descriptor_sets: &'static [&'static [u8]],
    /// Methods (`/package.Service/Method`) exempt from the server's request timeout:
    /// uploads that last as long as the file takes to send.
    pub long_running: &'static [&'static str],
    /// Whether the service signs access tokens and so trusts its own keys (the staff
    /// service): it needs neither `ROSTER_AUTH_JWKS_FILE` nor `ROSTER_AUTH_STAFF_URL`.
    pub signs_tokens: bool,
    /// Whether the service writes audit events to an outbox (a relay delivers them), and so
    /// has dead letters to list and retry.
    pub produces_events: bool,
    /// Whether its database connections plan every statement with its values
    /// ([`DbSettings::custom_plans`]).
    pub custom_plans: bool,
}

impl ServiceDef {
    /// `ROSTER_<NAME>_`.
    pub fn env_prefix(&self) -> String {
        format!("ROSTER_{}_", self.name.to_ascii_uppercase())
    }

    /// `roster-<name>`: the binary, and the name telemetry reports.
    pub fn binary(&self) -> String {
        format!("roster-{}", self.name)
    }

    /// `sqlite://<data_dir>/<name>.db?mode=rwc`.
    pub fn default_database_url(&self, data_dir: &std::path::Path) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join(format!("{}.db", self.name)).display()
        )
    }

    /// Server settings from `ROSTER_<NAME>_…`.
    pub fn server_settings(&self) -> anyhow::Result<ServerSettings> {
        Ok(ServerSettings::from_env(
            &self.env_prefix(),
            self.default_port,
        )?)
    }

    /// Database settings from `ROSTER_<NAME>_…`, the database under `data_dir` by default.
    pub fn database_settings(&self, data_dir: &std::path::Path) -> anyhow::Result<DbSettings> {
        DbSettings::from_env(&self.env_prefix(), &self.default_database_url(data_dir))
            .context("database settings")
    }
}

/// Work a service runs beside its routes for as long as it serves (purging expired keys,
/// say); it must be safe with several replicas running it at once.
pub type BackgroundTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Says when the server begins to shut down, to calls that would otherwise last (streams):
/// they end then, so none holds up the drain. Made with [`closing`].
#[derive(Clone, Debug)]
pub struct Closing(tokio::sync::watch::Receiver<bool>);

impl Closing {
    /// Resolves once shutdown has begun (at once if it has).
    pub async fn begun(mut self) {
        let _ = self.0.wait_for(|closing| *closing).await;
    }

    /// Whether shutdown has begun.
    pub fn has_begun(&self) -> bool {
        *self.0.borrow()
    }
}

/// The sending half of a [`Closing`], handed to [`ServiceRoutes::with_closing`].
#[derive(Debug)]
pub struct ClosingSender(tokio::sync::watch::Sender<bool>);

impl ClosingSender {
    /// Begins the shutdown its [`Closing`]s wait for, for work run outside a server (a
    /// relay in a test).
    pub fn close(&self) {
        self.0.send_replace(true);
    }
}

/// A [`Closing`] for a service's calls and the sender its routes flip at shutdown.
pub fn closing() -> (ClosingSender, Closing) {
    let (sender, receiver) = tokio::sync::watch::channel(false);
    (ClosingSender(sender), Closing(receiver))
}

/// Background work that reports on the server's health, started with its handle.
type HealthTask = Box<dyn FnOnce(HealthHandle) -> BackgroundTask + Send>;

/// What a service serves: its gRPC routes and its background work.
pub struct ServiceRoutes {
    routes: Routes,
    background: Vec<BackgroundTask>,
    health_tasks: Vec<HealthTask>,
    closing: Option<ClosingSender>,
}

impl ServiceRoutes {
    pub fn new(routes: Routes) -> Self {
        Self {
            routes,
            background: Vec::new(),
            health_tasks: Vec::new(),
            closing: None,
        }
    }

    /// Flips `closing` when shutdown begins, before the drain.
    pub fn with_closing(mut self, closing: ClosingSender) -> Self {
        self.closing = Some(closing);
        self
    }

    /// A [`Closing`] flipped with the one given to [`ServiceRoutes::with_closing`] (or a
    /// new one), for background work that should stop when shutdown begins.
    pub fn closing(&mut self) -> Closing {
        let sender = self
            .closing
            .get_or_insert_with(|| ClosingSender(tokio::sync::watch::channel(false).0));
        Closing(sender.0.subscribe())
    }

    /// Like [`ServiceRoutes::with_background`], for work that reports a part of the
    /// server's health (`HealthHandle::set_part`); it gets the handle when serving starts.
    pub fn with_health_task<F, Fut>(mut self, task: F) -> Self
    where
        F: FnOnce(HealthHandle) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.health_tasks
            .push(Box::new(move |health| Box::pin(task(health))));
        self
    }

    /// Runs `task` while the service serves; it is stopped when serving ends.
    pub fn with_background(mut self, task: impl Future<Output = ()> + Send + 'static) -> Self {
        self.background.push(Box::pin(task));
        self
    }
}

/// What a service's routes are built from.
pub struct RouteParts {
    pub db: Db,
    /// `trust`'s verifier.
    pub verifier: TokenVerifier,
    /// The keys the verifier trusts, for a service that learns its own (the staff service).
    pub trust: TrustedKeys,
    /// `ROSTER_<NAME>_MAX_MESSAGE_BYTES`, for the generated server's message limits.
    pub max_message_bytes: usize,
    /// The connection to the staff service (`ROSTER_AUTH_STAFF_URL`), if configured: what
    /// the relay asks for its tokens.
    pub staff: Option<StaffLink>,
}

#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC (the default).
    Serve,
    /// Apply pending database migrations and exit (a Kubernetes Job runs this).
    Migrate,
    /// List the outbox's dead letters (events the audit service refused, with why), or
    /// put them back in the queue with `--retry` once the cause is fixed.
    DeadLetters {
        /// Put every dead letter back in the queue, with fresh attempts.
        #[arg(long)]
        retry: bool,
        /// List at most this many.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
}

/// A service's whole `main`: parses `serve|migrate`, reads its settings, and either
/// migrates and exits or serves `routes` until SIGINT or SIGTERM.
pub async fn main<M, F, Fut>(def: &ServiceDef, routes: F) -> anyhow::Result<()>
where
    M: MigratorTrait,
    F: FnOnce(RouteParts) -> Fut,
    Fut: Future<Output = anyhow::Result<ServiceRoutes>>,
{
    let cli = Cli::parse();
    let telemetry = init_telemetry(&TelemetrySettings::from_env(&def.binary())?)?;
    let database = def.database_settings(std::path::Path::new("data"))?;
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => migrate::<M>(def, &database).await,
        Command::Serve => serve::<M, F, Fut>(def, &database, routes).await,
        Command::DeadLetters { retry, limit } => dead_letters(def, &database, retry, limit).await,
    };
    telemetry.shutdown().await;
    result
}

async fn migrate<M: MigratorTrait>(def: &ServiceDef, database: &DbSettings) -> anyhow::Result<()> {
    let db = Db::connect(database)
        .await
        .with_context(|| format!("connecting to the {} database", def.name))?;
    db.migrate::<M>().await.context("running migrations")?;
    tracing::info!("migrations applied");
    db.close().await;
    Ok(())
}

async fn dead_letters(
    def: &ServiceDef,
    database: &DbSettings,
    retry: bool,
    limit: u64,
) -> anyhow::Result<()> {
    if !def.produces_events {
        anyhow::bail!("the {} keeps no outbox: it has no dead letters", def.name);
    }
    let db = Db::connect(database)
        .await
        .with_context(|| format!("connecting to the {} database", def.name))?;
    let outcome = async {
        if retry {
            let now = roster_core::Clock::now_us(&roster_core::SystemClock);
            let requeued = roster_db::delivery::retry_dead(db.conn(), now).await?;
            println!("{requeued} dead letters are back in the queue");
            return Ok(());
        }
        let dead = roster_db::delivery::dead_letters(db.conn(), limit).await?;
        for row in &dead {
            println!(
                "{}\t{}\t{}\t{} refusals\t{}",
                row.workspace_id,
                row.event_id,
                row.action,
                row.refusals,
                row.last_error.as_deref().unwrap_or("")
            );
        }
        println!("{} dead letters listed (at most {limit})", dead.len());
        Ok::<_, roster_db::DbError>(())
    }
    .await;
    db.close().await;
    Ok(outcome?)
}

async fn serve<M, F, Fut>(def: &ServiceDef, database: &DbSettings, routes: F) -> anyhow::Result<()>
where
    M: MigratorTrait,
    F: FnOnce(RouteParts) -> Fut,
    Fut: Future<Output = anyhow::Result<ServiceRoutes>>,
{
    let server = def.server_settings()?;
    let (trust, followers) = follow_keys(def).await?;
    let db = prepare_database::<M>(def, database).await?;
    let parts = RouteParts {
        db: db.clone(),
        verifier: trust.verifier(),
        trust: trust.clone(),
        max_message_bytes: server.max_message_bytes,
        staff: followers.link.clone(),
    };
    let mut routes = routes(parts).await?;
    if !trust.has_keys() {
        anyhow::bail!("the {} has no keys to verify access tokens with", def.name);
    }
    if let Some(keys) = followers.keys {
        routes = routes.with_background(keys.run());
    }
    if let Some(revocations) = followers.revocations {
        routes = routes.with_health_task(move |health| revocations.run(Some(health)));
    }
    let app = ServiceApp::bind(def, server, db, routes).await?;
    tracing::info!(address = %app.local_addr(), "{} listening", def.name);
    app.run_until_stopped(roster_runtime::shutdown_signal())
        .await
}

/// What follows the staff service while a service serves: its keys and its revocations.
pub struct Followers {
    pub keys: Option<KeyFollower>,
    pub revocations: Option<revocations::RevocationFollower>,
    /// The connection both follow on.
    pub link: Option<StaffLink>,
}

/// The keys a service verifies tokens with, from `ROSTER_AUTH_…`: configured ones
/// (`ROSTER_AUTH_JWKS_FILE`) and, with `ROSTER_AUTH_STAFF_URL`, the staff service's,
/// fetched now and followed by the returned tasks, which also follow its revocations
/// (the verifier then refuses revoked tokens). One of the two sources is required, except
/// by a service that signs tokens itself.
///
/// # Errors
///
/// Bad settings, an unreadable key file, or neither source of keys.
pub async fn follow_keys(def: &ServiceDef) -> anyhow::Result<(TrustedKeys, Followers)> {
    let auth = AuthSettings::from_env()?;
    let settings = StaffLinkSettings::from_env()?;
    follow_keys_with(def, &auth, &settings).await
}

/// [`follow_keys`] with the settings given rather than read.
///
/// A service that signs tokens (the staff service) follows only the revocations over the
/// link: its own keyring keeps its trust current from its database, and waiting for its
/// keys from `ROSTER_AUTH_STAFF_URL`, its own address, would keep the first replica from
/// ever starting, since nobody answers there until one has.
///
/// # Errors
///
/// As [`follow_keys`].
pub async fn follow_keys_with(
    def: &ServiceDef,
    auth: &AuthSettings,
    settings: &StaffLinkSettings,
) -> anyhow::Result<(TrustedKeys, Followers)> {
    let trust = configured_keys(auth)?;
    let followers = match StaffLink::from_settings(settings)? {
        Some(link) => Followers {
            keys: if def.signs_tokens {
                None
            } else {
                Some(link.follow_keys(trust.clone()).await?)
            },
            revocations: Some(link.follow_revocations(&trust.verifier())),
            link: Some(link),
        },
        None => {
            tracing::warn!(
                "ROSTER_AUTH_STAFF_URL is unset: revoked tokens keep working until they expire"
            );
            Followers {
                keys: None,
                revocations: None,
                link: None,
            }
        }
    };
    if followers.keys.is_none() && !trust.has_configured() && !def.signs_tokens {
        anyhow::bail!(
            "ROSTER_AUTH_STAFF_URL or ROSTER_AUTH_JWKS_FILE: one is required; point the {} at the staff service (http://staff:50052) or at its JWKS",
            def.name
        );
    }
    Ok((trust, followers))
}

/// The keys of `ROSTER_AUTH_JWKS_FILE`, if set, with the verifier the settings describe.
///
/// # Errors
///
/// The file cannot be read or is not a JWKS of usable keys.
pub fn configured_keys(auth: &AuthSettings) -> anyhow::Result<TrustedKeys> {
    let configured = match &auth.jwks_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("ROSTER_AUTH_JWKS_FILE: reading {}", path.display()))?,
        ),
        None => None,
    };
    TrustedKeys::new(auth.verifier.clone(), configured.as_deref()).with_context(|| {
        format!(
            "ROSTER_AUTH_JWKS_FILE: {}",
            auth.jwks_file
                .as_deref()
                .map(|path| path.display().to_string())
                .unwrap_or_default()
        )
    })
}

/// Connects and brings the schema up to date, or, with `ROSTER_<NAME>_MIGRATE_ON_START=false`
/// (migrations run as a separate job), checks it is; then checks the database answers.
pub async fn prepare_database<M: MigratorTrait>(
    def: &ServiceDef,
    settings: &DbSettings,
) -> anyhow::Result<Db> {
    let settings = &DbSettings {
        custom_plans: settings.custom_plans || def.custom_plans,
        ..settings.clone()
    };
    let db = Db::connect(settings)
        .await
        .with_context(|| format!("connecting to the {} database", def.name))?;
    if settings.migrate_on_start {
        db.migrate::<M>()
            .await
            .with_context(|| format!("running the {}'s migrations", def.name))?;
    } else {
        let pending = M::get_pending_migrations(db.conn())
            .await
            .context("reading migration state")?;
        if !pending.is_empty() {
            anyhow::bail!(
                "the {name} database has {count} pending migration(s); run `{binary} migrate` or set {prefix}MIGRATE_ON_START=true",
                name = def.name,
                count = pending.len(),
                binary = def.binary(),
                prefix = def.env_prefix(),
            );
        }
    }
    db.ping()
        .await
        .with_context(|| format!("the {} database does not answer", def.name))?;
    Ok(db)
}

/// A service bound to its port with its routes, not yet serving.
pub struct ServiceApp {
    server: GrpcServer,
    routes: ServiceRoutes,
    db: Db,
    file_descriptor_sets: &'static [&'static [u8]],
    health_check_interval: Duration,
}

impl ServiceApp {
    /// Binds now, so tests learn the port (bound to 0) before serving.
    pub async fn bind(
        def: &ServiceDef,
        settings: ServerSettings,
        db: Db,
        routes: ServiceRoutes,
    ) -> anyhow::Result<Self> {
        let health_check_interval = settings.health_check_interval;
        let pool = db.clone();
        roster_runtime::metrics::observe_pool(def.name, move || {
            let stats = pool.pool_stats();
            roster_runtime::metrics::PoolUsage {
                open: stats.open.into(),
                idle: stats.idle.into(),
                max: stats.max.into(),
            }
        });
        let server = GrpcServer::bind(settings, def.grpc_services)
            .await
            .with_context(|| format!("binding the {}'s listen address", def.name))?
            .long_running(def.long_running);
        Ok(Self {
            server,
            routes,
            db,
            file_descriptor_sets: def.file_descriptor_sets,
            health_check_interval,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn health(&self) -> HealthHandle {
        self.server.health()
    }

    /// Runs `relay` beside the routes while the service serves (see
    /// [`relay::Relay::serve_with`]).
    pub fn with_relay(self, relay: relay::Relay) -> Self {
        let Self {
            server,
            routes,
            db,
            file_descriptor_sets,
            health_check_interval,
        } = self;
        Self {
            server,
            routes: relay.serve_with(routes),
            db,
            file_descriptor_sets,
            health_check_interval,
        }
    }

    /// Serves until `shutdown` resolves, then closes the pool. Health turns SERVING now
    /// (the database answered and the schema is current) and follows the database
    /// afterwards, checked every `health_check_interval`.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let health = self.server.health();
        health.set_serving().await;
        let watcher = tokio::spawn(watch_database(
            self.db.health_probe(),
            health,
            self.health_check_interval,
        ));
        let ServiceRoutes {
            routes,
            background,
            health_tasks,
            closing,
        } = self.routes;
        let shutdown = async move {
            shutdown.await;
            if let Some(closing) = closing {
                closing.0.send_replace(true);
            }
        };
        let health = self.server.health();
        let background: Vec<_> = background
            .into_iter()
            .chain(health_tasks.into_iter().map(|task| task(health.clone())))
            .map(tokio::spawn)
            .collect();
        let result = self
            .server
            .serve(routes, self.file_descriptor_sets, shutdown)
            .await;
        for task in background {
            task.abort();
        }
        watcher.abort();
        self.db.close().await;
        result
    }
}

/// Follows the database on the probe's own connection: a pool busy with calls is no
/// reason to leave the load balancer's rotation.
async fn watch_database(mut probe: HealthProbe, health: HealthHandle, interval: Duration) {
    let mut serving = true;
    let mut ticks = tokio::time::interval(interval);
    // A check that overran its interval is followed by the next one a full interval later,
    // not by a burst of catch-up checks against a struggling database.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        match probe.check().await {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SIGNER: ServiceDef = ServiceDef {
        name: "signer",
        default_port: 0,
        grpc_services: &[],
        file_descriptor_sets: &[],
        long_running: &[],
        signs_tokens: true,
        produces_events: false,
        custom_plans: false,
    };

    /// The staff service pointed at its own address (as in Kubernetes, through its
    /// Service) must start while no replica answers there yet.
    #[tokio::test]
    async fn a_token_signer_follows_only_revocations_and_does_not_wait_for_itself() {
        let auth = AuthSettings::from_lookup(|_| None).unwrap();
        let mut settings = StaffLinkSettings::following("http://127.0.0.1:9");
        settings.start_timeout = Duration::from_millis(200);

        let (_, followers) = follow_keys_with(&SIGNER, &auth, &settings).await.unwrap();

        assert!(followers.keys.is_none());
        assert!(followers.revocations.is_some());
        assert!(followers.link.is_some());
    }

    #[tokio::test]
    async fn a_verifier_without_keys_still_waits_for_the_staff_service() {
        let auth = AuthSettings::from_lookup(|_| None).unwrap();
        let mut settings = StaffLinkSettings::following("http://127.0.0.1:9");
        settings.start_timeout = Duration::from_millis(200);
        let verifier = ServiceDef {
            signs_tokens: false,
            ..SIGNER
        };

        let error = follow_keys_with(&verifier, &auth, &settings)
            .await
            .err()
            .unwrap();

        assert!(
            format!("{error:#}").contains("ROSTER_AUTH_STAFF_START_TIMEOUT"),
            "{error:#}"
        );
    }
}
