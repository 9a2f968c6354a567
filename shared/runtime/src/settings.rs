//! Typed settings read from environment variables and validated at start-up.
//!
//! The readers and their error type come from `roster-settings`, shared with `roster-db`
//! and `roster-auth`, so a duration or a boolean reads the same in every variable; this
//! module adds what a gRPC server needs.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

pub use roster_settings::{
    SettingsError, env_bool_or, env_duration_opt, env_duration_or, env_opt, env_or,
};
use roster_settings::{Source, duration_opt, duration_or, parse_or, process_env, read, require};

/// How a gRPC server listens, limits and shuts down. See [`ServerSettings::from_env`] for the
/// variables.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// `{PREFIX}LISTEN_ADDR`, default `127.0.0.1:<default_port>`. Containers set `0.0.0.0:<port>`.
    pub listen_addr: SocketAddr,
    /// `{PREFIX}REQUEST_TIMEOUT`, default 30s: the server-side cap on a call; a shorter
    /// `grpc-timeout` sent by the client wins.
    pub request_timeout: Duration,
    /// `{PREFIX}CONCURRENCY_LIMIT`, default 1024: in-flight calls across all connections before
    /// new ones are shed with RESOURCE_EXHAUSTED.
    pub concurrency_limit: usize,
    /// `{PREFIX}MAX_MESSAGE_BYTES`, default 4 MiB: each service applies it to its generated
    /// server with `max_decoding_message_size`.
    pub max_message_bytes: usize,
    /// `{PREFIX}MAX_CONCURRENT_STREAMS`, default 256 per HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// `{PREFIX}MAX_CONNECTION_AGE`, default 5m; `0` or `off` keeps connections open
    /// indefinitely. A connection this old is closed gracefully (GOAWAY: no new calls on
    /// it, those in flight finish), so clients reconnect through the Service and spread
    /// over replicas added since: gRPC's long-lived HTTP/2 connections otherwise stay
    /// with the replicas that existed when they opened.
    pub max_connection_age: Option<Duration>,
    /// `{PREFIX}HTTP2_KEEPALIVE_INTERVAL`, default 30s: pings that detect dead peers and keep
    /// idle connections open through NAT and load balancers.
    pub http2_keepalive_interval: Duration,
    /// `{PREFIX}SHUTDOWN_DRAIN`, default 0s: how long health reports NOT_SERVING before the
    /// listener stops accepting, so endpoints are withdrawn before connections are refused.
    pub shutdown_drain: Duration,
    /// `{PREFIX}SHUTDOWN_GRACE`, default 25s: the longest shutdown waits for in-flight calls.
    /// Keep it below the pod's `terminationGracePeriodSeconds` minus the drain.
    pub shutdown_grace: Duration,
    /// `{PREFIX}HEALTH_CHECK_INTERVAL`, default 10s: how often a service checks what its
    /// readiness depends on (its database), so health turns NOT_SERVING within one interval
    /// of losing it and SERVING within one interval of getting it back.
    pub health_check_interval: Duration,
}

const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_CONCURRENCY_LIMIT: usize = 1024;
const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
const MIN_MAX_MESSAGE_BYTES: usize = 1024;
const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 256;
const DEFAULT_MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
const DEFAULT_HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_SHUTDOWN_DRAIN: Duration = Duration::ZERO;
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(10);

impl ServerSettings {
    /// Reads `{prefix}LISTEN_ADDR`, `{prefix}REQUEST_TIMEOUT`, `{prefix}CONCURRENCY_LIMIT`,
    /// `{prefix}MAX_MESSAGE_BYTES`, `{prefix}MAX_CONCURRENT_STREAMS`,
    /// `{prefix}MAX_CONNECTION_AGE`, `{prefix}HTTP2_KEEPALIVE_INTERVAL`,
    /// `{prefix}SHUTDOWN_DRAIN`, `{prefix}SHUTDOWN_GRACE` and
    /// `{prefix}HEALTH_CHECK_INTERVAL`. `prefix` is e.g.
    /// `"ROSTER_DIRECTORY_"`.
    pub fn from_env(prefix: &str, default_port: u16) -> Result<Self, SettingsError> {
        Self::from_source(&process_env, prefix, default_port)
    }

    /// Same as [`ServerSettings::from_env`] but reading variables through `lookup`, so tests can
    /// check configuration without touching the process environment.
    pub fn from_lookup(
        prefix: &str,
        default_port: u16,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        Self::from_source(&|name: &str| Ok(lookup(name)), prefix, default_port)
    }

    /// Loopback on an OS-assigned port with every other value at its default.
    pub fn for_tests() -> Self {
        Self {
            listen_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ..Self::defaults(0)
        }
    }

    fn defaults(port: u16) -> Self {
        Self {
            listen_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            concurrency_limit: DEFAULT_CONCURRENCY_LIMIT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            max_connection_age: Some(DEFAULT_MAX_CONNECTION_AGE),
            http2_keepalive_interval: DEFAULT_HTTP2_KEEPALIVE_INTERVAL,
            shutdown_drain: DEFAULT_SHUTDOWN_DRAIN,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            health_check_interval: DEFAULT_HEALTH_CHECK_INTERVAL,
        }
    }

    fn from_source(
        source: Source<'_>,
        prefix: &str,
        default_port: u16,
    ) -> Result<Self, SettingsError> {
        let var = |suffix: &str| format!("{prefix}{suffix}");
        let defaults = Self::defaults(default_port);

        let listen_addr = parse_or(
            source,
            &var("LISTEN_ADDR"),
            defaults.listen_addr,
            "socket address",
        )?;

        let name = var("REQUEST_TIMEOUT");
        let request_timeout = duration_or(source, &name, defaults.request_timeout)?;
        require(!request_timeout.is_zero(), &name, "must be greater than 0")?;

        let name = var("CONCURRENCY_LIMIT");
        let concurrency_limit = parse_or(source, &name, defaults.concurrency_limit, "count")?;
        require(concurrency_limit > 0, &name, "must be greater than 0")?;

        let name = var("MAX_MESSAGE_BYTES");
        let max_message_bytes = parse_or(source, &name, defaults.max_message_bytes, "byte count")?;
        require(
            max_message_bytes >= MIN_MAX_MESSAGE_BYTES,
            &name,
            format!("must be at least {MIN_MAX_MESSAGE_BYTES} bytes, got {max_message_bytes}"),
        )?;

        let name = var("MAX_CONCURRENT_STREAMS");
        let max_concurrent_streams =
            parse_or(source, &name, defaults.max_concurrent_streams, "count")?;
        require(max_concurrent_streams > 0, &name, "must be greater than 0")?;

        // `off` (or `none`, or 0) keeps connections open, for callers that balance each
        // call themselves (a service mesh) and gain nothing from reconnecting.
        let name = var("MAX_CONNECTION_AGE");
        let max_connection_age = match read(source, &name)?.map(|v| v.to_ascii_lowercase()) {
            Some(word) if word == "off" || word == "none" => None,
            _ => duration_opt(source, &name)?
                .or(defaults.max_connection_age)
                .filter(|age| !age.is_zero()),
        };

        let name = var("HTTP2_KEEPALIVE_INTERVAL");
        let http2_keepalive_interval =
            duration_or(source, &name, defaults.http2_keepalive_interval)?;
        require(
            !http2_keepalive_interval.is_zero(),
            &name,
            "must be greater than 0",
        )?;

        let shutdown_drain = duration_or(source, &var("SHUTDOWN_DRAIN"), defaults.shutdown_drain)?;
        let shutdown_grace = duration_or(source, &var("SHUTDOWN_GRACE"), defaults.shutdown_grace)?;

        let name = var("HEALTH_CHECK_INTERVAL");
        let health_check_interval = duration_or(source, &name, defaults.health_check_interval)?;
        require(
            !health_check_interval.is_zero(),
            &name,
            "must be greater than 0",
        )?;

        Ok(Self {
            listen_addr,
            request_timeout,
            concurrency_limit,
            max_message_bytes,
            max_concurrent_streams,
            max_connection_age,
            http2_keepalive_interval,
            shutdown_drain,
            shutdown_grace,
            health_check_interval,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn server_settings_default_to_loopback_on_the_given_port() {
        let settings = ServerSettings::from_lookup("ROSTER_X_", 50051, vars(&[])).unwrap();

        assert_eq!(settings.listen_addr, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(settings.request_timeout, Duration::from_secs(30));
        assert_eq!(settings.concurrency_limit, 1024);
        assert_eq!(settings.max_message_bytes, 4 * 1024 * 1024);
        assert_eq!(settings.max_concurrent_streams, 256);
        assert_eq!(settings.max_connection_age, Some(Duration::from_secs(300)));
        assert_eq!(settings.http2_keepalive_interval, Duration::from_secs(30));
        assert_eq!(settings.shutdown_drain, Duration::ZERO);
        assert_eq!(settings.shutdown_grace, Duration::from_secs(25));
    }

    #[test]
    fn server_settings_read_every_variable_under_the_prefix() {
        let lookup = vars(&[
            ("ROSTER_X_LISTEN_ADDR", "0.0.0.0:6000"),
            ("ROSTER_X_REQUEST_TIMEOUT", "5s"),
            ("ROSTER_X_CONCURRENCY_LIMIT", "10"),
            ("ROSTER_X_MAX_MESSAGE_BYTES", "2048"),
            ("ROSTER_X_MAX_CONCURRENT_STREAMS", "8"),
            ("ROSTER_X_MAX_CONNECTION_AGE", "5m"),
            ("ROSTER_X_HTTP2_KEEPALIVE_INTERVAL", "10s"),
            ("ROSTER_X_SHUTDOWN_DRAIN", "5s"),
            ("ROSTER_X_SHUTDOWN_GRACE", "20"),
            ("ROSTER_X_HEALTH_CHECK_INTERVAL", "250ms"),
        ]);

        let settings = ServerSettings::from_lookup("ROSTER_X_", 1, lookup).unwrap();

        assert_eq!(settings.listen_addr, "0.0.0.0:6000".parse().unwrap());
        assert_eq!(settings.request_timeout, Duration::from_secs(5));
        assert_eq!(settings.concurrency_limit, 10);
        assert_eq!(settings.max_message_bytes, 2048);
        assert_eq!(settings.max_concurrent_streams, 8);
        assert_eq!(settings.max_connection_age, Some(Duration::from_secs(300)));
        assert_eq!(settings.http2_keepalive_interval, Duration::from_secs(10));
        assert_eq!(settings.shutdown_drain, Duration::from_secs(5));
        assert_eq!(settings.shutdown_grace, Duration::from_secs(20));
        assert_eq!(settings.health_check_interval, Duration::from_millis(250));
    }

    #[test]
    fn empty_values_mean_default() {
        let lookup = vars(&[
            ("ROSTER_X_LISTEN_ADDR", "  "),
            ("ROSTER_X_MAX_CONNECTION_AGE", ""),
        ]);

        let settings = ServerSettings::from_lookup("ROSTER_X_", 7, lookup).unwrap();

        assert_eq!(settings.listen_addr.port(), 7);
        assert_eq!(settings.max_connection_age, Some(Duration::from_secs(300)));
    }

    #[test]
    fn the_connection_age_limit_can_be_turned_off() {
        for off in ["0", "0s", "off", "None"] {
            let lookup = vars(&[("ROSTER_X_MAX_CONNECTION_AGE", off)]);

            let settings = ServerSettings::from_lookup("ROSTER_X_", 7, lookup).unwrap();

            assert_eq!(settings.max_connection_age, None, "{off}");
        }
    }

    #[test]
    fn errors_name_the_variable_and_the_value() {
        let err = ServerSettings::from_lookup(
            "ROSTER_DIRECTORY_",
            1,
            vars(&[("ROSTER_DIRECTORY_LISTEN_ADDR", "x")]),
        )
        .unwrap_err();

        assert_eq!(err.variable(), "ROSTER_DIRECTORY_LISTEN_ADDR");
        assert!(
            err.to_string()
                .starts_with("ROSTER_DIRECTORY_LISTEN_ADDR: invalid socket address 'x': "),
            "{err}"
        );
    }

    #[test]
    fn limits_are_validated() {
        let cases = [
            ("ROSTER_X_CONCURRENCY_LIMIT", "0"),
            ("ROSTER_X_MAX_MESSAGE_BYTES", "1023"),
            ("ROSTER_X_MAX_CONCURRENT_STREAMS", "0"),
            ("ROSTER_X_REQUEST_TIMEOUT", "0s"),
            ("ROSTER_X_MAX_CONNECTION_AGE", "soon"),
            ("ROSTER_X_HTTP2_KEEPALIVE_INTERVAL", "0ms"),
            ("ROSTER_X_HEALTH_CHECK_INTERVAL", "0s"),
            ("ROSTER_X_CONCURRENCY_LIMIT", "-1"),
            ("ROSTER_X_SHUTDOWN_GRACE", "soon"),
        ];
        for (name, value) in cases {
            let err = ServerSettings::from_lookup("ROSTER_X_", 1, vars(&[(name, value)]))
                .expect_err(name);
            assert_eq!(err.variable(), name, "{err}");
        }
    }
}
