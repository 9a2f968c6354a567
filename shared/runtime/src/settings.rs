//! Typed settings read from environment variables and validated at start-up.
//!
//! A misconfigured pod should refuse to start with a message that names the variable, rather
//! than start and misbehave, so every reader here returns a [`SettingsError`] that does.
//! An empty (or all-whitespace) variable counts as unset: Kubernetes manifests and `.env`
//! files often declare a variable with no value to mean "use the default".

use std::env::VarError;
use std::fmt::Display;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// A setting that could not be read or failed validation. `Display` starts with the variable's
/// name, e.g. `ROSTER_DIRECTORY_LISTEN_ADDR: invalid socket address 'x': ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct SettingsError {
    variable: String,
    message: String,
}

impl SettingsError {
    /// For callers validating their own settings, so every start-up error reads the same way.
    pub fn new(variable: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            message: message.into(),
        }
    }

    /// The environment variable at fault.
    pub fn variable(&self) -> &str {
        &self.variable
    }
}

/// Reads `name` and parses it, or returns `default` when it is unset or empty.
pub fn env_or<T>(name: &str, default: T) -> Result<T, SettingsError>
where
    T: FromStr,
    T::Err: Display,
{
    parse_or(&process_env, name, default, "value")
}

/// Reads `name` and parses it; `None` when it is unset or empty.
pub fn env_opt<T>(name: &str) -> Result<Option<T>, SettingsError>
where
    T: FromStr,
    T::Err: Display,
{
    parse_opt(&process_env, name, "value")
}

/// Reads a duration such as `30s`, `500ms`, `2m` or `1h`; a bare integer means seconds.
pub fn env_duration_or(name: &str, default: Duration) -> Result<Duration, SettingsError> {
    duration_or(&process_env, name, default)
}

/// Like [`env_duration_or`] for settings whose absence means "disabled".
pub fn env_duration_opt(name: &str) -> Result<Option<Duration>, SettingsError> {
    duration_opt(&process_env, name)
}

/// Reads `true`/`false`, `1`/`0` or `yes`/`no` (any case).
pub fn env_bool_or(name: &str, default: bool) -> Result<bool, SettingsError> {
    bool_or(&process_env, name, default)
}

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
    /// `{PREFIX}MAX_CONNECTION_AGE`, unset by default. Closing long-lived connections makes
    /// clients reconnect and so spread over new replicas after a scale-up.
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
}

const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_CONCURRENCY_LIMIT: usize = 1024;
const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
const MIN_MAX_MESSAGE_BYTES: usize = 1024;
const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 256;
const DEFAULT_HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_SHUTDOWN_DRAIN: Duration = Duration::ZERO;
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

impl ServerSettings {
    /// Reads `{prefix}LISTEN_ADDR`, `{prefix}REQUEST_TIMEOUT`, `{prefix}CONCURRENCY_LIMIT`,
    /// `{prefix}MAX_MESSAGE_BYTES`, `{prefix}MAX_CONCURRENT_STREAMS`,
    /// `{prefix}MAX_CONNECTION_AGE`, `{prefix}HTTP2_KEEPALIVE_INTERVAL`,
    /// `{prefix}SHUTDOWN_DRAIN` and `{prefix}SHUTDOWN_GRACE`. `prefix` is e.g.
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
            max_connection_age: None,
            http2_keepalive_interval: DEFAULT_HTTP2_KEEPALIVE_INTERVAL,
            shutdown_drain: DEFAULT_SHUTDOWN_DRAIN,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
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

        let name = var("MAX_CONNECTION_AGE");
        let max_connection_age = duration_opt(source, &name)?;
        require(
            max_connection_age.is_none_or(|age| !age.is_zero()),
            &name,
            "must be greater than 0; leave it unset to keep connections open indefinitely",
        )?;

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
        })
    }
}

/// Where variables come from: the process environment in production, a closure in tests.
/// Errors are reserved for values that exist but cannot be read (not UTF-8).
pub(crate) type Source<'a> = &'a dyn Fn(&str) -> Result<Option<String>, SettingsError>;

pub(crate) fn process_env(name: &str) -> Result<Option<String>, SettingsError> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(VarError::NotPresent) => Ok(None),
        Err(VarError::NotUnicode(_)) => Err(SettingsError::new(name, "value is not valid UTF-8")),
    }
}

/// The trimmed value, with empty treated as unset.
pub(crate) fn read(source: Source<'_>, name: &str) -> Result<Option<String>, SettingsError> {
    Ok(source(name)?
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty()))
}

fn require(ok: bool, name: &str, message: impl Into<String>) -> Result<(), SettingsError> {
    if ok {
        Ok(())
    } else {
        Err(SettingsError::new(name, message))
    }
}

/// `what` names the expected kind of value in the error ("socket address", "count").
pub(crate) fn parse_opt<T>(
    source: Source<'_>,
    name: &str,
    what: &str,
) -> Result<Option<T>, SettingsError>
where
    T: FromStr,
    T::Err: Display,
{
    read(source, name)?
        .map(|raw| {
            raw.parse::<T>()
                .map_err(|err| SettingsError::new(name, format!("invalid {what} '{raw}': {err}")))
        })
        .transpose()
}

pub(crate) fn parse_or<T>(
    source: Source<'_>,
    name: &str,
    default: T,
    what: &str,
) -> Result<T, SettingsError>
where
    T: FromStr,
    T::Err: Display,
{
    Ok(parse_opt(source, name, what)?.unwrap_or(default))
}

pub(crate) fn duration_opt(
    source: Source<'_>,
    name: &str,
) -> Result<Option<Duration>, SettingsError> {
    read(source, name)?
        .map(|raw| {
            parse_duration(&raw)
                .map_err(|why| SettingsError::new(name, format!("invalid duration '{raw}': {why}")))
        })
        .transpose()
}

pub(crate) fn duration_or(
    source: Source<'_>,
    name: &str,
    default: Duration,
) -> Result<Duration, SettingsError> {
    Ok(duration_opt(source, name)?.unwrap_or(default))
}

pub(crate) fn bool_or(
    source: Source<'_>,
    name: &str,
    default: bool,
) -> Result<bool, SettingsError> {
    let Some(raw) = read(source, name)? else {
        return Ok(default);
    };
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(SettingsError::new(
            name,
            format!("invalid boolean '{raw}': expected true/false, 1/0 or yes/no"),
        )),
    }
}

const DURATION_FORMAT: &str = "expected a whole number followed by ms, s, m or h (e.g. 500ms, 30s, 2m); a bare number means seconds";

fn parse_duration(raw: &str) -> Result<Duration, String> {
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    if digits.is_empty() {
        return Err(DURATION_FORMAT.to_owned());
    }
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("number is too large; {DURATION_FORMAT}"))?;
    let too_large = || format!("{raw} is too large");
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(amount)),
        "" | "s" => Ok(Duration::from_secs(amount)),
        "m" => amount
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(too_large),
        "h" => amount
            .checked_mul(3600)
            .map(Duration::from_secs)
            .ok_or_else(too_large),
        _ => Err(DURATION_FORMAT.to_owned()),
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
        assert_eq!(settings.max_connection_age, None);
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
    }

    #[test]
    fn empty_values_mean_default() {
        let lookup = vars(&[
            ("ROSTER_X_LISTEN_ADDR", "  "),
            ("ROSTER_X_MAX_CONNECTION_AGE", ""),
        ]);

        let settings = ServerSettings::from_lookup("ROSTER_X_", 7, lookup).unwrap();

        assert_eq!(settings.listen_addr.port(), 7);
        assert_eq!(settings.max_connection_age, None);
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
            ("ROSTER_X_MAX_CONNECTION_AGE", "0"),
            ("ROSTER_X_HTTP2_KEEPALIVE_INTERVAL", "0ms"),
            ("ROSTER_X_CONCURRENCY_LIMIT", "-1"),
            ("ROSTER_X_SHUTDOWN_GRACE", "soon"),
        ];
        for (name, value) in cases {
            let err = ServerSettings::from_lookup("ROSTER_X_", 1, vars(&[(name, value)]))
                .expect_err(name);
            assert_eq!(err.variable(), name, "{err}");
        }
    }

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_reject_other_shapes() {
        for raw in [
            "",
            "s",
            "1.5s",
            "-1s",
            "10d",
            "ten",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(raw).is_err(), "{raw} should be rejected");
        }
        assert!(parse_duration(&format!("{}h", u64::MAX / 60)).is_err());
    }

    #[test]
    fn booleans_accept_the_usual_spellings() {
        let lookup = vars(&[
            ("A", "TRUE"),
            ("B", "0"),
            ("C", "yes"),
            ("D", "No"),
            ("E", "maybe"),
        ]);
        let source = |name: &str| Ok(lookup(name));

        assert!(bool_or(&source, "A", false).unwrap());
        assert!(!bool_or(&source, "B", true).unwrap());
        assert!(bool_or(&source, "C", false).unwrap());
        assert!(!bool_or(&source, "D", true).unwrap());
        assert!(bool_or(&source, "MISSING", true).unwrap());
        let err = bool_or(&source, "E", true).unwrap_err();
        assert!(
            err.to_string().starts_with("E: invalid boolean 'maybe'"),
            "{err}"
        );
    }

    #[test]
    fn generic_readers_use_the_process_environment() {
        // Variables that no environment defines exercise the real reader without mutating the
        // process environment, which edition 2024 makes `unsafe`.
        let unset = "ROSTER_RUNTIME_TEST_SURELY_UNSET_VARIABLE";
        assert_eq!(env_or(unset, 5u16).unwrap(), 5);
        assert_eq!(env_opt::<u16>(unset).unwrap(), None);
        assert_eq!(
            env_duration_or(unset, Duration::from_secs(3)).unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(env_duration_opt(unset).unwrap(), None);
        assert!(env_bool_or(unset, true).unwrap());
    }
}
