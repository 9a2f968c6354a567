//! The audit service as its own process, for containers: `roster-audit serve` (default) or
//! `roster-audit migrate`, configured by `ROSTER_AUDIT_…` and `ROSTER_AUTH_…`.

use std::path::Path;
use std::sync::Arc;

use roster_audit::domain::SystemClock;
use roster_audit::migration::Migrator;
use roster_audit::startup::{SERVICE, Signing, routes};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    roster_service::main::<Migrator, _, _>(&SERVICE, |parts| async move {
        let signing = Signing::from_env(Path::new("data"))?;
        routes(
            parts.db,
            parts.verifier,
            Arc::new(SystemClock),
            signing,
            parts.max_message_bytes,
        )
        .await
    })
    .await
}
