//! `roster serve`: every service in one process, each on its own port and its own SQLite
//! file. The staff service starts first: it signs tokens (its keys in its database, sealed
//! with its KEK under the data directory), and the directory and the audit service verify
//! them with the keys they fetch from it, as they would from a staff service elsewhere
//! (plus ROSTER_AUTH_JWKS_FILE's, if set).
//!
//! The directory's and the staff service's relays deliver their outboxes to the audit
//! service in this process unless `ROSTER_<NAME>_AUDIT_URL` says otherwise, so events are
//! listable out of the box. Both mint their tokens with the staff service's key: the
//! directory borrows it in-process, which trusts nothing the process did not already hold.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use roster_audit::startup::SERVICE as AUDIT;
use roster_auth::AuthSettings;
use roster_directory::domain::SystemClock;
use roster_directory::startup::SERVICE as DIRECTORY;
use roster_directory::widget_kek::WidgetKeyring;
use roster_directory::{Application, prepare_database};
use roster_runtime::{TelemetrySettings, init_telemetry};
use roster_service::relay::{Relay, RelaySettings, TokenSource};
use roster_service::{StaffLink, StaffLinkSettings, configured_keys};
use roster_staff::startup::{SERVICE as STAFF, Signing};
use tokio::sync::watch;

pub async fn run(data_dir: &Path) -> anyhow::Result<()> {
    let telemetry = init_telemetry(&TelemetrySettings::from_env("roster")?)?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let auth = AuthSettings::from_env()?;

    let staff_db = roster_staff::prepare_database(&STAFF.database_settings(data_dir)?).await?;
    let staff_db_for_relay = staff_db.clone();
    let staff_trust = configured_keys(&auth)?;
    let staff = roster_staff::Application::build(
        STAFF.server_settings()?,
        staff_db,
        staff_trust.clone(),
        Arc::new(SystemClock),
        Signing::from_env(data_dir, &auth.verifier)?,
    )
    .await?;
    let staff_addr = staff.local_addr();
    tracing::info!(address = %staff_addr, "staff listening");
    let staff_keys = staff.keys().clone();
    let link = StaffLink::from_settings(&StaffLinkSettings {
        url: Some(format!("http://{}", reachable(staff_addr))),
        ..StaffLinkSettings::from_env()?
    })?
    .context("the in-process staff service's address")?;
    // Both services refuse revoked tokens, from one view of the staff service's feed; until
    // its first snapshot arrives they refuse every token (fail closed).
    let revocations = link.follow_revocations(&staff_trust.verifier());
    let trust = configured_keys(&auth)?;
    trust.verifier().follow_revocations(revocations.view());

    // One signal stops every service; each drains on its own.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // Bound before the producers start, which deliver to it; its verifier learns the staff
    // service's keys with the directory's below.
    let audit_db = roster_audit::prepare_database(&AUDIT.database_settings(data_dir)?).await?;
    let audit = roster_audit::Application::build(
        AUDIT.server_settings()?,
        audit_db,
        trust.verifier(),
        Arc::new(SystemClock),
        roster_audit::startup::Signing::from_env(data_dir)?,
    )
    .await?;
    let audit_addr = audit.local_addr();
    tracing::info!(address = %audit_addr, "audit listening");
    let audit_url = format!("http://{}", reachable(audit_addr));
    let audit = tokio::spawn(audit.run_until_stopped(stopped(stop_rx.clone())));

    let staff_relay = roster_staff::startup::own_relay(
        staff_db_for_relay,
        Arc::new(SystemClock),
        relay_settings(&STAFF.env_prefix(), &audit_url)?,
        staff_keys.clone(),
        &auth.verifier,
    )?;
    let staff = match staff_relay {
        Some(relay) => staff.with_relay(relay),
        None => staff,
    };
    // Serving before the directory starts, which fetches the staff service's keys.
    let staff = tokio::spawn(staff.run_until_stopped(stopped(stop_rx.clone())));

    let keys = link
        .follow_keys(trust.clone())
        .await
        .context("the directory fetching the staff service's keys")?;
    let keys = tokio::spawn(keys.run());
    let database = DIRECTORY.database_settings(data_dir)?;
    let widget_kek = WidgetKeyring::from_env(data_dir)?;
    let db = prepare_database(&database).await?;
    let directory_relay = Relay::new(
        &DIRECTORY,
        db.clone(),
        Arc::new(SystemClock),
        relay_settings(&DIRECTORY.env_prefix(), &audit_url)?,
        TokenSource::minted(Arc::new(staff_keys), DIRECTORY.binary(), &auth.verifier),
    )?;
    let directory = Application::build(
        DIRECTORY.server_settings()?,
        db,
        trust.verifier(),
        Arc::new(SystemClock),
        widget_kek,
        directory_relay.as_ref().map(Relay::reader),
    )
    .await?;
    let directory = match directory_relay {
        Some(relay) => directory.with_relay(relay),
        None => directory,
    };
    tracing::info!(address = %directory.local_addr(), "directory listening");
    let revocations = tokio::spawn(revocations.run(Some(directory.health())));
    println!(
        "roster: directory on {}, staff on {}, audit on {} (data in {}); mint a token with `roster dev-token`",
        directory.local_addr(),
        staff_addr,
        audit_addr,
        data_dir.display()
    );
    let directory = tokio::spawn(directory.run_until_stopped(stopped(stop_rx.clone())));

    roster_runtime::shutdown_signal().await;
    let _ = stop_tx.send(true);
    let directory = directory.await.context("directory task")?;
    let audit = audit.await.context("audit task")?;
    keys.abort();
    revocations.abort();
    let staff = staff.await.context("staff task")?;
    let result = directory.and(audit).and(staff);
    telemetry.shutdown().await;
    result
}

/// A producer's relay settings (`prefix` is `ROSTER_DIRECTORY_`), delivering to the
/// in-process audit service at `audit_url` unless `<prefix>AUDIT_URL` names another.
fn relay_settings(prefix: &str, audit_url: &str) -> anyhow::Result<RelaySettings> {
    let mut settings = RelaySettings::from_env(prefix)?;
    settings.url.get_or_insert_with(|| audit_url.to_owned());
    Ok(settings)
}

/// Where this process reaches a service listening on `addr`: a wildcard address is
/// reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let loopback = match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        };
        SocketAddr::new(loopback, addr.port())
    } else {
        addr
    }
}
