//! The staff service as its own process, for containers: `roster-staff serve` (default) or
//! `roster-staff migrate`, configured by `ROSTER_STAFF_…` and `ROSTER_AUTH_…`.

use std::path::Path;
use std::sync::Arc;

use roster_service::relay::RelaySettings;
use roster_staff::domain::SystemClock;
use roster_staff::migration::Migrator;
use roster_staff::startup::{SERVICE, Signing, own_relay, routes};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    roster_service::main::<Migrator, _, _>(&SERVICE, |parts| async move {
        let signing = Signing::from_env(Path::new("data"), parts.verifier.settings())?;
        let relay_settings = RelaySettings::from_env(&SERVICE.env_prefix())?;
        let (routes, keys) = routes(
            parts.db.clone(),
            parts.trust,
            Arc::new(SystemClock),
            signing,
            parts.max_message_bytes,
        )
        .await?;
        let relay = own_relay(
            parts.db,
            Arc::new(SystemClock),
            relay_settings,
            keys,
            parts.verifier.settings(),
        )?;
        Ok(match relay {
            Some(relay) => relay.serve_with(routes),
            None => routes,
        })
    })
    .await
}
