//! Following the staff service's revocation feed, so a revoked token is refused here within
//! about a second of the change that revoked it.
//!
//! The follower keeps one `WatchRevocations` stream open on the staff link, applies what it
//! hears to the verifier's [`RevocationView`], and opens the stream again whenever it ends
//! (the server ends each after ~20 s) or fails. While the staff service is unreachable the
//! view ages; the log says how stale it is, and past its bound the verifier refuses every
//! token.

use std::time::Duration;

use roster_auth::RevocationView;
use roster_proto::staff::v1 as pb;
use roster_proto::staff::v1::staff_service_client::StaffServiceClient;
use tonic::transport::Channel;

/// Longest wait between two attempts to reach the staff service.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Keeps a [`RevocationView`] current; run [`RevocationFollower::run`] as a background task.
pub struct RevocationFollower {
    client: StaffServiceClient<Channel>,
    url: String,
    view: RevocationView,
}

impl RevocationFollower {
    /// Follows the staff service at `url` over `channel` into `view`.
    pub fn new(channel: Channel, url: String, view: RevocationView) -> Self {
        Self {
            client: StaffServiceClient::new(channel),
            url,
            view,
        }
    }

    /// The view this follower keeps, for another verifier of the same process to share.
    pub fn view(&self) -> RevocationView {
        self.view.clone()
    }

    /// Follows until dropped.
    pub async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.watch().await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(status) => {
                    let staleness_secs = self.view.staleness().map(|stale| stale.as_secs());
                    let max_staleness_secs = self.view.max_staleness().as_secs();
                    if self.view.is_current() {
                        tracing::warn!(code = ?status.code(), message = status.message(), ?staleness_secs, max_staleness_secs, url = %self.url, "revocation feed unreachable; accepting tokens on the last view until it is too stale");
                    } else {
                        tracing::error!(code = ?status.code(), message = status.message(), ?staleness_secs, max_staleness_secs, url = %self.url, "revocation feed unreachable and the view is too stale: refusing every token");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One stream, until the server ends it (`Ok`) or it fails.
    async fn watch(&self) -> Result<(), tonic::Status> {
        let mut stream = self
            .client
            .clone()
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
                self.view.replace(revocations);
            } else {
                self.view.apply(revocations);
            }
        }
        Ok(())
    }
}
