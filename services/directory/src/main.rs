//! The directory as its own process, for containers: `serve` (default) or `migrate`.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use roster_auth::{KeySet, TokenVerifier};
use roster_directory::domain::SystemClock;
use roster_directory::migration::Migrator;
use roster_directory::widget_kek::WidgetKeyring;
use roster_directory::{Application, DirectorySettings, prepare_database};
use roster_runtime::telemetry::{TelemetrySettings, init_telemetry};

#[derive(Parser)]
#[command(
    name = "roster-directory",
    version,
    about = "Roster's directory service: customers and end-users"
)]
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _telemetry = init_telemetry(&TelemetrySettings::from_env("roster-directory")?)?;
    let settings = DirectorySettings::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let db = roster_db::Db::connect(&settings.database)
                .await
                .context("connecting to the directory database")?;
            db.migrate::<Migrator>()
                .await
                .context("running migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Serve => {
            let jwks = settings
                .auth
                .jwks_file
                .clone()
                .context("ROSTER_AUTH_JWKS_FILE: required; point it at the staff service's JWKS (the `roster` binary sets up development keys itself)")?;
            let keys = KeySet::from_jwks_file(&jwks)
                .with_context(|| format!("ROSTER_AUTH_JWKS_FILE: reading {}", jwks.display()))?;
            let verifier = TokenVerifier::new(settings.auth.verifier.clone(), keys);
            let widget_kek =
                WidgetKeyring::load(settings.widget_kek_file.as_deref(), Path::new("data"))?;
            let db = prepare_database(&settings.database).await?;
            let app = Application::build(
                settings.server.clone(),
                db,
                verifier,
                Arc::new(SystemClock),
                widget_kek,
            )
            .await?;
            tracing::info!(address = %app.local_addr(), "directory listening");
            app.run_until_stopped(roster_runtime::server::shutdown_signal())
                .await
        }
    }
}
