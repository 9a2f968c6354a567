//! A service's connection to the staff service, and what it follows over it: the
//! token-signing keys (`GetJwks`), fetched at start, every refresh interval, and soon after
//! a token names a key the verifier lacks; and the revocation feed (`WatchRevocations`).
//!
//! Two HTTP/2 connections: one for unary calls ([`StaffLink::channel`]: keys, and the
//! relay's `IssueServiceToken`), one for the revocation stream. hyper's client fails the
//! first call sent on a connection the server has closed gracefully (GOAWAY, as it does at
//! `…_MAX_CONNECTION_AGE` and at shutdown) while a stream is still open on it, with
//! CANCELLED and without sending it; with the stream on its own connection, unary calls
//! find theirs closed and reconnect first.
//!
//! Configured keys stay a fallback: when the staff service does not answer at start, a
//! service with `ROSTER_AUTH_JWKS_FILE` serves with those and keeps trying; one without
//! waits for the staff service (up to `ROSTER_AUTH_STAFF_START_TIMEOUT`), since it could
//! verify nothing.

use std::time::Duration;

use anyhow::Context as _;
use roster_proto::staff::v1::GetJwksRequest;
use roster_proto::staff::v1::staff_service_client::StaffServiceClient;
use roster_settings::{SettingsError, Source, duration_opt, duration_or, process_env, read};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use roster_auth::{RevocationView, TokenVerifier};
use roster_core::SystemClock;

use crate::revocations::RevocationFollower;
use crate::trust::TrustedKeys;

/// Verifiers ask for keys again at most this often because of unknown `kid`s: a caller
/// choosing `kid`s must not turn each of its calls into a fetch.
pub const UNKNOWN_KEY_REFRESH_GAP: Duration = Duration::from_secs(1);
/// Without `ROSTER_AUTH_JWKS_REFRESH_INTERVAL` and a suggestion from the staff service.
const DEFAULT_REFRESH: Duration = Duration::from_secs(60);
/// Bounds on any refresh interval, whoever suggested it.
const MIN_REFRESH: Duration = Duration::from_secs(1);
const MAX_REFRESH: Duration = Duration::from_secs(3600);
/// A fetch that takes longer has failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Without `ROSTER_AUTH_REVOCATION_MAX_STALENESS`.
const DEFAULT_REVOCATION_MAX_STALENESS: Duration = Duration::from_secs(300);

/// How a service reaches the staff service, from `ROSTER_AUTH_…` variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffLinkSettings {
    /// `ROSTER_AUTH_STAFF_URL` (`http://staff:50052`): fetch keys from the staff service.
    /// Unset: verify with configured keys only.
    pub url: Option<String>,
    /// `ROSTER_AUTH_JWKS_REFRESH_INTERVAL`: how often keys are fetched again; by default
    /// what the staff service suggests.
    pub refresh_interval: Option<Duration>,
    /// `ROSTER_AUTH_STAFF_START_TIMEOUT` (default 30 s): how long a service without
    /// configured keys waits at start for the staff service's keys.
    pub start_timeout: Duration,
    /// `ROSTER_AUTH_REVOCATION_MAX_STALENESS` (default 5m): how long without word from the
    /// staff service's revocation feed before every token is refused.
    pub revocation_max_staleness: Duration,
}

impl StaffLinkSettings {
    /// Reads the variables; errors name the variable.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_source(&process_env)
    }

    /// [`StaffLinkSettings::from_env`] over any variable source, for tests.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        Self::from_source(&|name: &str| Ok(lookup(name)))
    }

    fn from_source(source: Source<'_>) -> Result<Self, SettingsError> {
        let url = read(source, "ROSTER_AUTH_STAFF_URL")?;
        if let Some(url) = &url
            && (!url.starts_with("http://") || Endpoint::from_shared(url.clone()).is_err())
        {
            return Err(SettingsError::new(
                "ROSTER_AUTH_STAFF_URL",
                format!("'{url}' is not an http:// URL (such as http://staff:50052)"),
            ));
        }
        let refresh_interval = duration_opt(source, "ROSTER_AUTH_JWKS_REFRESH_INTERVAL")?;
        if let Some(interval) = refresh_interval {
            roster_settings::require(
                (MIN_REFRESH..=MAX_REFRESH).contains(&interval),
                "ROSTER_AUTH_JWKS_REFRESH_INTERVAL",
                "must be between 1s and 1h",
            )?;
        }
        Ok(Self {
            url,
            refresh_interval,
            start_timeout: duration_or(
                source,
                "ROSTER_AUTH_STAFF_START_TIMEOUT",
                Duration::from_secs(30),
            )?,
            revocation_max_staleness: duration_or(
                source,
                "ROSTER_AUTH_REVOCATION_MAX_STALENESS",
                DEFAULT_REVOCATION_MAX_STALENESS,
            )?,
        })
    }

    /// Settings following the staff service at `url`, for tests and the `roster` binary.
    pub fn following(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            refresh_interval: None,
            start_timeout: Duration::from_secs(30),
            revocation_max_staleness: DEFAULT_REVOCATION_MAX_STALENESS,
        }
    }
}

/// The connections to the staff service, opened on first use and re-opened after failures.
#[derive(Clone, Debug)]
pub struct StaffLink {
    url: String,
    channel: Channel,
    /// The revocation stream's own connection (module docs).
    stream_channel: Channel,
    settings: StaffLinkSettings,
}

impl StaffLink {
    /// `None` when no staff URL is configured.
    ///
    /// # Errors
    ///
    /// The URL is not usable.
    pub fn from_settings(settings: &StaffLinkSettings) -> anyhow::Result<Option<Self>> {
        let Some(url) = &settings.url else {
            return Ok(None);
        };
        let endpoint = Endpoint::from_shared(url.clone())
            .with_context(|| format!("ROSTER_AUTH_STAFF_URL: '{url}'"))?
            .connect_timeout(CALL_TIMEOUT);
        Ok(Some(Self {
            url: url.clone(),
            channel: endpoint.connect_lazy(),
            stream_channel: endpoint.connect_lazy(),
            settings: settings.clone(),
        }))
    }

    /// The connection for unary calls to the staff service (not for long streams: see
    /// the module docs).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Makes `verifier` refuse revoked tokens (and every token while it has not heard from
    /// the staff service recently enough), and returns the follower that keeps its view
    /// current (run it as a background task).
    pub fn follow_revocations(&self, verifier: &TokenVerifier) -> RevocationFollower {
        let view = RevocationView::new(
            self.settings.revocation_max_staleness,
            std::sync::Arc::new(SystemClock),
        );
        verifier.follow_revocations(view.clone());
        RevocationFollower::new(self.stream_channel.clone(), self.url.clone(), view)
    }

    /// Fetches the staff service's keys into `trust` and returns the follower that keeps
    /// them current (run it as a background task). When the first fetch fails, configured
    /// keys are used if there are any (the failure is logged); otherwise it tries again
    /// until `start_timeout`.
    ///
    /// # Errors
    ///
    /// No configured keys and no answer from the staff service in time.
    pub async fn follow_keys(&self, trust: TrustedKeys) -> anyhow::Result<KeyFollower> {
        let mut follower = KeyFollower {
            client: StaffServiceClient::new(self.channel.clone()),
            url: self.url.clone(),
            trust,
            configured_interval: self.settings.refresh_interval,
            interval: self.settings.refresh_interval.unwrap_or(DEFAULT_REFRESH),
            last_fetch: None,
        };
        let deadline = Instant::now() + self.settings.start_timeout;
        let mut pause = Duration::from_millis(100);
        loop {
            match follower.fetch().await {
                Ok(()) => return Ok(follower),
                Err(error) if follower.trust.has_configured() => {
                    tracing::warn!(url = %self.url, error = %error, "the staff service's keys could not be fetched; verifying with the configured keys (ROSTER_AUTH_JWKS_FILE) until it answers");
                    return Ok(follower);
                }
                Err(error) if Instant::now() + pause > deadline => {
                    return Err(error).with_context(|| {
                        format!(
                            "no verification keys: the staff service at {} did not answer within {:?} (ROSTER_AUTH_STAFF_START_TIMEOUT), and ROSTER_AUTH_JWKS_FILE is unset",
                            self.url, self.settings.start_timeout
                        )
                    });
                }
                Err(error) => {
                    tracing::info!(url = %self.url, error = %error, "waiting for the staff service's keys");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

/// Keeps a service's trusted keys equal to what the staff service publishes.
pub struct KeyFollower {
    client: StaffServiceClient<Channel>,
    url: String,
    trust: TrustedKeys,
    configured_interval: Option<Duration>,
    interval: Duration,
    last_fetch: Option<Instant>,
}

impl KeyFollower {
    /// Fetches again every refresh interval and soon after an unknown `kid`, at most once
    /// per [`UNKNOWN_KEY_REFRESH_GAP`] for the latter. After a failure, the last keys stay
    /// trusted and the next attempt comes sooner (from 1 s, doubling up to the interval).
    pub async fn run(mut self) {
        let mut failures = 0u32;
        loop {
            let wait = if failures == 0 {
                self.interval
            } else {
                (MIN_REFRESH * 2u32.saturating_pow(failures - 1)).min(self.interval)
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.trust.refresh_wanted() => {
                    if let Some(last) = self.last_fetch {
                        let since = last.elapsed();
                        if since < UNKNOWN_KEY_REFRESH_GAP {
                            tokio::time::sleep(UNKNOWN_KEY_REFRESH_GAP - since).await;
                        }
                    }
                }
            }
            match self.fetch().await {
                Ok(()) => failures = 0,
                Err(error) => {
                    failures = failures.saturating_add(1).min(16);
                    tracing::warn!(url = %self.url, error = %error, failures, "fetching the staff service's keys failed; the last keys stay trusted");
                }
            }
        }
    }

    async fn fetch(&mut self) -> anyhow::Result<()> {
        self.last_fetch = Some(Instant::now());
        let response = self
            .client
            .get_jwks({
                // Per call, not on the channel: the revocation stream on it lasts.
                let mut request = tonic::Request::new(GetJwksRequest {});
                request.set_timeout(CALL_TIMEOUT);
                request
            })
            .await
            .map_err(|status| {
                anyhow::anyhow!("GetJwks answered {:?}: {}", status.code(), status.message())
            })?
            .into_inner();
        self.trust
            .learn(&response.jwks_json)
            .context("the staff service's JWKS")?;
        let suggested = response
            .refresh_interval
            .and_then(|interval| Duration::try_from(interval).ok());
        self.interval = self
            .configured_interval
            .or(suggested)
            .unwrap_or(DEFAULT_REFRESH)
            .clamp(MIN_REFRESH, MAX_REFRESH);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<StaffLinkSettings, SettingsError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        StaffLinkSettings::from_lookup(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn without_a_url_nothing_is_followed() {
        let defaults = settings(&[]).unwrap();
        assert_eq!(defaults.url, None);
        assert_eq!(defaults.refresh_interval, None);
        assert_eq!(defaults.start_timeout, Duration::from_secs(30));
        assert!(StaffLink::from_settings(&defaults).unwrap().is_none());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let url = settings(&[("ROSTER_AUTH_STAFF_URL", "staff:50052")]).unwrap_err();
        assert_eq!(url.variable(), "ROSTER_AUTH_STAFF_URL");
        let interval = settings(&[("ROSTER_AUTH_JWKS_REFRESH_INTERVAL", "2h")]).unwrap_err();
        assert_eq!(interval.variable(), "ROSTER_AUTH_JWKS_REFRESH_INTERVAL");
        let good = settings(&[
            ("ROSTER_AUTH_STAFF_URL", "http://127.0.0.1:50052"),
            ("ROSTER_AUTH_JWKS_REFRESH_INTERVAL", "10s"),
        ])
        .unwrap();
        assert_eq!(good.url.as_deref(), Some("http://127.0.0.1:50052"));
        assert_eq!(good.refresh_interval, Some(Duration::from_secs(10)));
    }

    #[tokio::test]
    async fn without_configured_keys_an_absent_staff_service_stops_the_start() {
        let mut settings = StaffLinkSettings::following("http://127.0.0.1:9");
        settings.start_timeout = Duration::from_millis(300);
        let link = StaffLink::from_settings(&settings).unwrap().unwrap();
        let trust = TrustedKeys::new(roster_auth::VerifierSettings::default(), None).unwrap();
        let error = link.follow_keys(trust).await.err().unwrap();
        assert!(
            format!("{error:#}").contains("ROSTER_AUTH_STAFF_START_TIMEOUT"),
            "{error:#}"
        );
    }

    #[tokio::test]
    async fn with_configured_keys_an_absent_staff_service_is_survived() {
        let link = StaffLink::from_settings(&StaffLinkSettings::following("http://127.0.0.1:9"))
            .unwrap()
            .unwrap();
        let (_, _, jwks) = roster_auth::generate_ed25519("configured").unwrap();
        let trust =
            TrustedKeys::new(roster_auth::VerifierSettings::default(), Some(&jwks)).unwrap();
        assert!(link.follow_keys(trust.clone()).await.is_ok());
        assert!(trust.has_keys());
    }
}
