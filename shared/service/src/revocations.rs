//! Following the staff service's revocation feed, so a revoked token is refused here within
//! about a second of the change that revoked it.
//!
//! The follower keeps one `WatchRevocations` stream open, applies what it hears to the
//! verifier's [`RevocationView`], and reconnects whenever the stream ends (the server ends
//! each after ~20 s) or fails. While the staff service is unreachable the view ages; the
//! log says how stale it is, and past its bound the verifier refuses every token.

use std::time::Duration;

use roster_auth::RevocationView;
use roster_proto::staff::v1 as pb;
use roster_proto::staff::v1::staff_service_client::StaffServiceClient;
use tonic::transport::Endpoint;

/// Longest wait between two attempts to reach the staff service.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Keeps `view` current from the staff service at `staff_url` (`http://host:port`) for as
/// long as it runs. Never returns; run it as a background task.
pub async fn follow(staff_url: String, view: RevocationView) {
    let endpoint = match Endpoint::from_shared(staff_url.clone()) {
        Ok(endpoint) => endpoint
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true),
        Err(error) => {
            // Settings are checked at start-up; this is a bug, and the view fails closed.
            tracing::error!(%error, staff_url, "the staff service URL does not parse; every token will be refused");
            return std::future::pending().await;
        }
    };
    let client = StaffServiceClient::new(endpoint.connect_lazy());
    let mut backoff = Duration::from_millis(100);
    loop {
        match watch(client.clone(), &view).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(status) => {
                let staleness = view.staleness().map(|stale| stale.as_secs());
                let bound = view.max_staleness().as_secs();
                if view.is_current() {
                    tracing::warn!(code = ?status.code(), message = status.message(), staleness_secs = ?staleness, max_staleness_secs = bound, staff_url, "revocation feed unreachable; accepting tokens on the last view until it is too stale");
                } else {
                    tracing::error!(code = ?status.code(), message = status.message(), staleness_secs = ?staleness, max_staleness_secs = bound, staff_url, "revocation feed unreachable and the view is too stale: refusing every token");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One stream, until the server ends it (`Ok`) or it fails.
async fn watch(
    mut client: StaffServiceClient<tonic::transport::Channel>,
    view: &RevocationView,
) -> Result<(), tonic::Status> {
    let mut stream = client
        .watch_revocations(pb::WatchRevocationsRequest {})
        .await?
        .into_inner();
    while let Some(batch) = stream.message().await? {
        let revocations = batch.revocations.into_iter().map(|revocation| {
            (
                revocation.subject,
                u64::try_from(revocation.min_generation).unwrap_or(0),
                revocation.revoked_at.map_or(0, |at| at.seconds),
            )
        });
        if batch.snapshot {
            view.replace(revocations);
        } else {
            view.apply(revocations);
        }
    }
    Ok(())
}
