//! Following the staff service's revocation feed, so a revoked token is refused here within
//! about a second of the change that revoked it.
//!
//! The follower keeps one `WatchRevocations` stream open on the staff link (on a connection
//! of its own, see `staff_link`), applies what it hears to the verifier's
//! [`RevocationView`], and opens the stream again whenever it ends (the server ends each
//! after ~20 s) or fails. While the staff service is unreachable the view ages; the log
//! says how stale it is, and past its bound the verifier refuses every token.

use std::time::Duration;

use roster_auth::RevocationView;
use roster_proto::staff::v1 as pb;
use roster_proto::staff::v1::staff_service_client::StaffServiceClient;
use tonic::transport::Channel;

/// Longest wait between two attempts to reach the staff service.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often the view's freshness is reported (health, and the log while stale).
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// The health name under which the feed's state is reported: SERVING while the view is
/// current enough to accept tokens, NOT_SERVING while every token is refused. The replica
/// stays in rotation ("" does not follow it): with the staff service down every replica
/// is alike, and refusing with a clear status beats refusing to answer.
pub const HEALTH_NAME: &str = "roster.auth.Revocations";

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

    /// Follows until dropped, reporting the view's freshness under [`HEALTH_NAME`] when
    /// given the server's health.
    pub async fn run(self, health: Option<roster_runtime::HealthHandle>) {
        tokio::join!(self.follow(), report(self.view.clone(), health));
    }

    async fn follow(&self) {
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

/// Says how current `view` is: in health, and every ten seconds in the log while it is
/// too stale to accept tokens.
async fn report(view: RevocationView, health: Option<roster_runtime::HealthHandle>) {
    let mut ticks = tokio::time::interval(REPORT_EVERY);
    let mut reported: Option<bool> = None;
    let mut stale_ticks = 0u32;
    loop {
        ticks.tick().await;
        let current = view.is_current();
        if let Some(health) = &health
            && reported != Some(current)
        {
            health.set_part(HEALTH_NAME, current).await;
        }
        reported = Some(current);
        if current {
            stale_ticks = 0;
            continue;
        }
        if stale_ticks.is_multiple_of(10) {
            tracing::error!(
                staleness_secs = ?view.staleness().map(|stale| stale.as_secs()),
                max_staleness_secs = view.max_staleness().as_secs(),
                "no current word from the staff service's revocation feed: refusing every token"
            );
        }
        stale_ticks = stale_ticks.wrapping_add(1);
    }
}
