//! The directory as its own process, for containers: `roster-directory serve` (default) or
//! `roster-directory migrate`, configured by `ROSTER_DIRECTORY_…` and `ROSTER_AUTH_…`.

use std::sync::Arc;

use roster_directory::domain::SystemClock;
use roster_directory::migration::Migrator;
use roster_directory::startup::{SERVICE, routes};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    roster_service::main::<Migrator>(&SERVICE, |parts| {
        routes(
            parts.db,
            parts.verifier,
            Arc::new(SystemClock),
            parts.max_message_bytes,
        )
    })
    .await
}
