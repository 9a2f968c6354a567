//! The directory as its own process, for containers: `roster-directory serve` (default) or
//! `roster-directory migrate`, configured by `ROSTER_DIRECTORY_…` and `ROSTER_AUTH_…`.

use std::path::Path;
use std::sync::Arc;

use roster_directory::domain::SystemClock;
use roster_directory::migration::Migrator;
use roster_directory::startup::{SERVICE, routes};
use roster_directory::widget_kek::WidgetKeyring;
use roster_service::relay::Relay;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    roster_service::main::<Migrator, _, _>(&SERVICE, |parts| async move {
        let widget_kek = WidgetKeyring::from_env(Path::new("data"))?;
        // Tokens for the audit service from the staff service, by client credentials.
        let relay = Relay::from_env(&SERVICE, &parts, Arc::new(SystemClock))?;
        // ExportUser reads users' audit events from the service the relay delivers to.
        let audit = relay.as_ref().map(Relay::reader);
        let routes = routes(
            parts.db,
            parts.verifier,
            Arc::new(SystemClock),
            widget_kek,
            audit,
            parts.max_message_bytes,
        )
        .await?;
        Ok(match relay {
            Some(relay) => relay.serve_with(routes),
            None => routes,
        })
    })
    .await
}
