//! A producer's relay settings, `ROSTER_<NAME>_AUDIT_…` and `ROSTER_<NAME>_OUTBOX_RETENTION`.

use std::time::Duration;

use roster_db::delivery::DeliveryPolicy;
use roster_settings::{SettingsError, Source, duration_or, parse_or, process_env, read, require};
use secrecy::SecretString;
use tonic::transport::Endpoint;

/// AppendEvents takes up to 1000 events; half leaves room for the isolation of a refused
/// batch to stay quick and a claim's lease to cover a slow send.
pub const MAX_BATCH: u64 = 500;

/// How one producer's relay runs.
#[derive(Clone, Debug)]
pub struct RelaySettings {
    /// `…AUDIT_URL` (`http://audit:50053`): where events go. Unset: the relay does not
    /// run and rows wait in the outbox.
    pub url: Option<String>,
    /// `…AUDIT_BATCH` (default and at most 500): rows claimed and sent at once.
    pub batch: u64,
    /// `…AUDIT_POLL_INTERVAL` (default 250ms): how long the relay idles after a claim
    /// smaller than a batch (the outbox is drained for now); a full claim is followed by
    /// the next at once. It is the floor of the delivery delay at low write rates.
    pub poll_interval: Duration,
    /// `…AUDIT_LEASE` (30s), `…AUDIT_MAX_ATTEMPTS` (8), `…AUDIT_MAX_BACKOFF` (30s): how
    /// long a claim keeps other replicas off a batch, refusals of one event before it is a
    /// dead letter, and the longest wait after failures (the relay's and a row's).
    pub policy: DeliveryPolicy,
    /// `…AUDIT_LAG_ALERT` (default 60s): a delivery lag (now − the oldest pending event)
    /// above this turns the relay's health part NOT_SERVING and is logged.
    pub lag_alert: Duration,
    /// `…OUTBOX_RETENTION` (default 24h): delivered rows are deleted this long after
    /// delivery.
    pub retention: Duration,
    /// `…AUDIT_CLIENT_ID` and `…AUDIT_CLIENT_SECRET`: a platform service account (every
    /// workspace, `audit_log.append` and `audit_log.erase`) whose tokens the staff service
    /// issues; for producers that do not sign tokens themselves.
    pub client: Option<(String, SecretString)>,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            url: None,
            batch: MAX_BATCH,
            poll_interval: Duration::from_millis(250),
            policy: DeliveryPolicy {
                max_backoff: Duration::from_secs(30),
                ..DeliveryPolicy::default()
            },
            lag_alert: Duration::from_secs(60),
            retention: Duration::from_secs(24 * 3600),
            client: None,
        }
    }
}

impl RelaySettings {
    /// Reads `<prefix>AUDIT_…` (`prefix` is `ROSTER_DIRECTORY_`); errors name the variable.
    pub fn from_env(prefix: &str) -> Result<Self, SettingsError> {
        Self::from_source(prefix, &process_env)
    }

    /// [`RelaySettings::from_env`] over any variable source, for tests.
    pub fn from_lookup(
        prefix: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        Self::from_source(prefix, &|name: &str| Ok(lookup(name)))
    }

    /// Delivering to `url` with the defaults, for tests and the `roster` binary.
    pub fn delivering_to(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::default()
        }
    }

    fn from_source(prefix: &str, source: Source<'_>) -> Result<Self, SettingsError> {
        let defaults = Self::default();
        let name = |suffix: &str| format!("{prefix}{suffix}");
        let url = read(source, &name("AUDIT_URL"))?;
        if let Some(url) = &url {
            let usable = (url.starts_with("http://") || url.starts_with("https://"))
                && Endpoint::from_shared(url.clone()).is_ok();
            require(
                usable,
                &name("AUDIT_URL"),
                format!("'{url}' is not an http:// URL (such as http://audit:50053)"),
            )?;
        }
        let batch = parse_or(source, &name("AUDIT_BATCH"), defaults.batch, "count")?;
        require(
            (1..=MAX_BATCH).contains(&batch),
            &name("AUDIT_BATCH"),
            format!("must be between 1 and {MAX_BATCH}"),
        )?;
        let poll_interval =
            duration_or(source, &name("AUDIT_POLL_INTERVAL"), defaults.poll_interval)?;
        require(
            (Duration::from_millis(10)..=Duration::from_secs(60)).contains(&poll_interval),
            &name("AUDIT_POLL_INTERVAL"),
            "must be between 10ms and 60s",
        )?;
        let lease = duration_or(source, &name("AUDIT_LEASE"), defaults.policy.lease)?;
        require(
            lease >= Duration::from_secs(1),
            &name("AUDIT_LEASE"),
            "must be at least 1s, longer than a send can take",
        )?;
        let max_attempts = parse_or(
            source,
            &name("AUDIT_MAX_ATTEMPTS"),
            defaults.policy.max_attempts,
            "count",
        )?;
        require(
            max_attempts >= 1,
            &name("AUDIT_MAX_ATTEMPTS"),
            "must be at least 1",
        )?;
        let max_backoff = duration_or(
            source,
            &name("AUDIT_MAX_BACKOFF"),
            defaults.policy.max_backoff,
        )?;
        require(
            max_backoff >= Duration::from_millis(10),
            &name("AUDIT_MAX_BACKOFF"),
            "must be at least 10ms",
        )?;
        let lag_alert = duration_or(source, &name("AUDIT_LAG_ALERT"), defaults.lag_alert)?;
        let retention = duration_or(source, &name("OUTBOX_RETENTION"), defaults.retention)?;
        let client_id = read(source, &name("AUDIT_CLIENT_ID"))?;
        let client_secret = read(source, &name("AUDIT_CLIENT_SECRET"))?;
        let client = match (client_id, client_secret) {
            (Some(id), Some(secret)) => Some((id, SecretString::from(secret))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(SettingsError::new(
                    name("AUDIT_CLIENT_SECRET"),
                    format!("is required with {}", name("AUDIT_CLIENT_ID")),
                ));
            }
            (None, Some(_)) => {
                return Err(SettingsError::new(
                    name("AUDIT_CLIENT_ID"),
                    format!("is required with {}", name("AUDIT_CLIENT_SECRET")),
                ));
            }
        };
        Ok(Self {
            url,
            batch,
            poll_interval,
            policy: DeliveryPolicy {
                lease,
                max_attempts,
                // The first wait stays below the cap, however small the cap is set.
                first_backoff: defaults.policy.first_backoff.min(max_backoff),
                max_backoff,
            },
            lag_alert,
            retention,
            client,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use secrecy::ExposeSecret as _;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<RelaySettings, SettingsError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        RelaySettings::from_lookup("ROSTER_DIRECTORY_", move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn unset_means_no_relay_and_the_defaults() {
        let defaults = settings(&[("ROSTER_DIRECTORY_AUDIT_URL", " ")]).unwrap();
        assert_eq!(defaults.url, None);
        assert_eq!(defaults.batch, 500);
        assert_eq!(defaults.poll_interval, Duration::from_millis(250));
        assert_eq!(defaults.retention, Duration::from_secs(86_400));
        assert_eq!(defaults.policy.max_attempts, 8);
        assert!(defaults.client.is_none());
    }

    #[test]
    fn values_are_read_and_checked_by_name() {
        let set = settings(&[
            ("ROSTER_DIRECTORY_AUDIT_URL", "http://audit:50053"),
            ("ROSTER_DIRECTORY_AUDIT_BATCH", "100"),
            ("ROSTER_DIRECTORY_AUDIT_POLL_INTERVAL", "50ms"),
            ("ROSTER_DIRECTORY_AUDIT_MAX_BACKOFF", "200ms"),
            ("ROSTER_DIRECTORY_OUTBOX_RETENTION", "1h"),
            ("ROSTER_DIRECTORY_AUDIT_CLIENT_ID", "sa.Kg.0123"),
            ("ROSTER_DIRECTORY_AUDIT_CLIENT_SECRET", "s3cret"),
        ])
        .unwrap();
        assert_eq!(set.url.as_deref(), Some("http://audit:50053"));
        assert_eq!(set.batch, 100);
        assert_eq!(set.poll_interval, Duration::from_millis(50));
        assert_eq!(set.policy.max_backoff, Duration::from_millis(200));
        assert_eq!(set.policy.first_backoff, Duration::from_millis(200));
        assert_eq!(set.retention, Duration::from_secs(3600));
        let (id, secret) = set.client.unwrap();
        assert_eq!(
            (id.as_str(), secret.expose_secret()),
            ("sa.Kg.0123", "s3cret")
        );

        for (variable, value) in [
            ("ROSTER_DIRECTORY_AUDIT_URL", "audit:50053"),
            ("ROSTER_DIRECTORY_AUDIT_BATCH", "501"),
            ("ROSTER_DIRECTORY_AUDIT_BATCH", "0"),
            ("ROSTER_DIRECTORY_AUDIT_POLL_INTERVAL", "2m"),
            ("ROSTER_DIRECTORY_AUDIT_MAX_ATTEMPTS", "0"),
            ("ROSTER_DIRECTORY_OUTBOX_RETENTION", "soon"),
        ] {
            let error = settings(&[(variable, value)]).unwrap_err();
            assert_eq!(error.variable(), variable, "{value}");
        }
        let half = settings(&[("ROSTER_DIRECTORY_AUDIT_CLIENT_ID", "sa.Kg.0123")]).unwrap_err();
        assert_eq!(half.variable(), "ROSTER_DIRECTORY_AUDIT_CLIENT_SECRET");
    }
}
