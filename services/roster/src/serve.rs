//! `roster serve`: every service in one process, each on its own port and its own SQLite
//! file, verifying tokens against the development key set (or ROSTER_AUTH_JWKS_FILE).

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use roster_auth::{AuthSettings, DevKeys, KeySet, TokenVerifier, load_or_create_dev_keys};
use roster_directory::domain::SystemClock;
use roster_directory::startup::SERVICE as DIRECTORY;
use roster_directory::widget_kek::WidgetKeyring;
use roster_directory::{Application, prepare_database};
use roster_runtime::{TelemetrySettings, init_telemetry};
use roster_staff::service::SignInPolicy;
use roster_staff::settings::SignInSettings;
use roster_staff::startup::SERVICE as STAFF;
use tokio::sync::watch;

/// The verifier every service uses, and the development key the staff service signs with.
fn keys(data_dir: &Path, auth: &AuthSettings) -> anyhow::Result<(TokenVerifier, DevKeys)> {
    let dev = load_or_create_dev_keys(data_dir)
        .with_context(|| format!("development keys in {}", data_dir.display()))?;
    let keys = match &auth.jwks_file {
        Some(path) => KeySet::from_jwks_file(path)
            .with_context(|| format!("ROSTER_AUTH_JWKS_FILE: reading {}", path.display()))?,
        None => {
            tracing::info!(jwks = %dev.jwks_path.display(), "verifying tokens with the development key; mint one with `roster dev-token`");
            KeySet::from_jwks_json(&dev.jwks_json)?
        }
    };
    Ok((TokenVerifier::new(auth.verifier.clone(), keys), dev))
}

pub async fn run(data_dir: &Path) -> anyhow::Result<()> {
    let telemetry = init_telemetry(&TelemetrySettings::from_env("roster")?)?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let auth = AuthSettings::from_env()?;
    let (verifier, dev_keys) = keys(data_dir, &auth)?;

    let database = DIRECTORY.database_settings(data_dir)?;
    let server = DIRECTORY.server_settings()?;
    let widget_kek = WidgetKeyring::from_env(data_dir)?;
    let db = prepare_database(&database).await?;
    let directory = Application::build(
        server,
        db,
        verifier.clone(),
        Arc::new(SystemClock),
        widget_kek,
    )
    .await?;
    tracing::info!(address = %directory.local_addr(), "directory listening");
    let staff_db = roster_staff::prepare_database(&STAFF.database_settings(data_dir)?).await?;
    let staff = roster_staff::Application::build(
        STAFF.server_settings()?,
        staff_db,
        verifier,
        Arc::new(SystemClock),
        SignInPolicy::new(
            Arc::new(dev_keys.signer),
            auth.verifier.issuer.clone(),
            auth.verifier.audience.clone(),
            SignInSettings::from_env(&STAFF.env_prefix())?,
        ),
    )
    .await?;
    tracing::info!(address = %staff.local_addr(), "staff listening");
    println!(
        "roster: directory on {}, staff on {} (data in {})",
        directory.local_addr(),
        staff.local_addr(),
        data_dir.display()
    );

    // One signal stops every service; each drains on its own.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let directory = tokio::spawn(directory.run_until_stopped(stopped(stop_rx.clone())));
    let staff = tokio::spawn(staff.run_until_stopped(stopped(stop_rx.clone())));
    roster_runtime::shutdown_signal().await;
    let _ = stop_tx.send(true);
    let directory = directory.await.context("directory task")?;
    let staff = staff.await.context("staff task")?;
    let result = directory.and(staff);
    telemetry.shutdown().await;
    result
}
