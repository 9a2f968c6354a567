//! Database settings, read from `{PREFIX}…` environment variables.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::error::{DbError, Result};

/// How to reach the database and size the pool.
#[derive(Clone, Debug)]
pub struct DbSettings {
    /// `sqlite://path?mode=rwc`, `sqlite::memory:` or `postgres://…`. Secret because a
    /// PostgreSQL URL may carry a password; `Debug` prints it redacted.
    pub url: SecretString,
    pub max_connections: u32,
    pub min_connections: u32,
    /// How long a caller waits for a pooled connection (or, on SQLite, for the write lock)
    /// before getting [`DbError::Unavailable`].
    pub acquire_timeout: Duration,
    /// Idle pooled connections above `min_connections` are closed after this long.
    pub idle_timeout: Duration,
    /// PostgreSQL only: `statement_timeout` set on every connection at start-up, so a
    /// runaway query cannot hold a connection forever. `None` disables it.
    pub statement_timeout: Option<Duration>,
    /// Run pending migrations when the service starts (otherwise a `migrate` job does).
    pub migrate_on_start: bool,
}

const DEFAULT_MAX_CONNECTIONS: u32 = 16;
const DEFAULT_MIN_CONNECTIONS: u32 = 1;
const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

impl DbSettings {
    /// Settings with defaults for everything but the URL (not validated: use
    /// [`DbSettings::from_env`] for user input).
    pub fn new(url: &str) -> DbSettings {
        DbSettings {
            url: SecretString::from(url),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            min_connections: DEFAULT_MIN_CONNECTIONS,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
            migrate_on_start: true,
        }
    }

    /// Reads `{prefix}DATABASE_URL` (default `default_url`), `{prefix}DB_MAX_CONNECTIONS` (16),
    /// `{prefix}DB_MIN_CONNECTIONS` (1), `{prefix}DB_ACQUIRE_TIMEOUT` (5s),
    /// `{prefix}DB_IDLE_TIMEOUT` (10m), `{prefix}DB_STATEMENT_TIMEOUT` (30s; `0` or `off`
    /// disables it) and `{prefix}MIGRATE_ON_START` (true).
    ///
    /// Durations are `500ms`, `30s`, `2m`, `1h` or plain seconds. Every error names the
    /// variable, e.g. `ROSTER_DIRECTORY_DATABASE_URL: unsupported scheme 'mysql'; use
    /// sqlite://… or postgres://…`.
    pub fn from_env(prefix: &str, default_url: &str) -> Result<DbSettings> {
        Self::from_lookup(prefix, default_url, |name| std::env::var(name).ok())
    }

    /// [`DbSettings::from_env`] over any variable source, so tests need not touch the
    /// process environment. A variable set to an empty string counts as unset.
    pub fn from_lookup(
        prefix: &str,
        default_url: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<DbSettings> {
        let var = |suffix: &str| {
            let name = format!("{prefix}{suffix}");
            let value = lookup(&name).filter(|v| !v.trim().is_empty());
            (name, value)
        };
        let invalid = |name: &str, why: String| DbError::Config(format!("{name}: {why}"));

        let (name, value) = var("DATABASE_URL");
        let url = value.unwrap_or_else(|| default_url.to_owned());
        validate_url(url.trim()).map_err(|why| invalid(&name, why))?;

        let mut settings = DbSettings::new(url.trim());

        let (name, value) = var("DB_MAX_CONNECTIONS");
        if let Some(v) = value {
            settings.max_connections = parse_count(&v).map_err(|why| invalid(&name, why))?;
            if settings.max_connections == 0 {
                return Err(invalid(&name, "must be at least 1".to_owned()));
            }
        }
        let max_name = name;

        let (name, value) = var("DB_MIN_CONNECTIONS");
        if let Some(v) = value {
            settings.min_connections = parse_count(&v).map_err(|why| invalid(&name, why))?;
        }
        if settings.min_connections > settings.max_connections {
            return Err(invalid(
                &name,
                format!(
                    "{} is more than {max_name} ({})",
                    settings.min_connections, settings.max_connections
                ),
            ));
        }

        let (name, value) = var("DB_ACQUIRE_TIMEOUT");
        if let Some(v) = value {
            settings.acquire_timeout = parse_duration(&v).map_err(|why| invalid(&name, why))?;
            if settings.acquire_timeout.is_zero() {
                return Err(invalid(&name, "must be more than 0".to_owned()));
            }
        }

        let (name, value) = var("DB_IDLE_TIMEOUT");
        if let Some(v) = value {
            settings.idle_timeout = parse_duration(&v).map_err(|why| invalid(&name, why))?;
        }

        let (name, value) = var("DB_STATEMENT_TIMEOUT");
        if let Some(v) = value {
            settings.statement_timeout = match v.trim().to_ascii_lowercase().as_str() {
                "off" | "none" => None,
                _ => Some(parse_duration(&v).map_err(|why| invalid(&name, why))?)
                    .filter(|d| !d.is_zero()),
            };
        }

        let (name, value) = var("MIGRATE_ON_START");
        if let Some(v) = value {
            settings.migrate_on_start = parse_bool(&v).map_err(|why| invalid(&name, why))?;
        }

        Ok(settings)
    }

    /// The URL with any password replaced by `***`, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose_secret())
    }
}

fn validate_url(url: &str) -> std::result::Result<(), String> {
    let Some((scheme, _)) = url.split_once(':') else {
        return Err("not a URL; use sqlite://… or postgres://…".to_owned());
    };
    match scheme {
        "sqlite" => url
            .parse::<sea_orm::sqlx::sqlite::SqliteConnectOptions>()
            .map(|_| ())
            .map_err(|e| format!("invalid SQLite URL: {e}")),
        "postgres" | "postgresql" => url
            .parse::<sea_orm::sqlx::postgres::PgConnectOptions>()
            .map(|_| ())
            .map_err(|e| format!("invalid PostgreSQL URL: {e}")),
        other => Err(format!(
            "unsupported scheme '{other}'; use sqlite://… or postgres://…"
        )),
    }
}

fn redact_url(url: &str) -> String {
    // scheme://user:password@host… → scheme://user:***@host…
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn parse_count(value: &str) -> std::result::Result<u32, String> {
    value
        .trim()
        .parse::<u32>()
        .map_err(|_| format!("'{}' is not a whole number", value.trim()))
}

fn parse_bool(value: &str) -> std::result::Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!("'{other}' is not a boolean; use true or false")),
    }
}

/// `500ms`, `30s`, `2m`, `1h`, or a plain number of seconds.
pub(crate) fn parse_duration(value: &str) -> std::result::Result<Duration, String> {
    let v = value.trim();
    let bad = || format!("'{v}' is not a duration; use e.g. 500ms, 30s, 2m, 1h or seconds");
    let (digits, unit_ms): (&str, u64) = if let Some(d) = v.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = v.strip_suffix('s') {
        (d, 1_000)
    } else if let Some(d) = v.strip_suffix('m') {
        (d, 60_000)
    } else if let Some(d) = v.strip_suffix('h') {
        (d, 3_600_000)
    } else {
        (v, 1_000)
    };
    let digits = digits.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<DbSettings> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        DbSettings::from_lookup(
            "ROSTER_DIRECTORY_",
            "sqlite://data/directory.db?mode=rwc",
            |k| vars.get(k).cloned(),
        )
    }

    fn config_error(vars: &[(&str, &str)]) -> String {
        match settings(vars) {
            Err(DbError::Config(text)) => text,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.url.expose_secret(), "sqlite://data/directory.db?mode=rwc");
        assert_eq!(s.max_connections, 16);
        assert_eq!(s.min_connections, 1);
        assert_eq!(s.acquire_timeout, Duration::from_secs(5));
        assert_eq!(s.idle_timeout, Duration::from_secs(600));
        assert_eq!(s.statement_timeout, Some(Duration::from_secs(30)));
        assert!(s.migrate_on_start);
    }

    #[test]
    fn variables_override_defaults() {
        let s = settings(&[
            (
                "ROSTER_DIRECTORY_DATABASE_URL",
                "postgres://roster:pw@db:5432/directory",
            ),
            ("ROSTER_DIRECTORY_DB_MAX_CONNECTIONS", "32"),
            ("ROSTER_DIRECTORY_DB_MIN_CONNECTIONS", "4"),
            ("ROSTER_DIRECTORY_DB_ACQUIRE_TIMEOUT", "500ms"),
            ("ROSTER_DIRECTORY_DB_IDLE_TIMEOUT", "2m"),
            ("ROSTER_DIRECTORY_DB_STATEMENT_TIMEOUT", "off"),
            ("ROSTER_DIRECTORY_MIGRATE_ON_START", "false"),
        ])
        .unwrap();
        assert_eq!(s.max_connections, 32);
        assert_eq!(s.min_connections, 4);
        assert_eq!(s.acquire_timeout, Duration::from_millis(500));
        assert_eq!(s.idle_timeout, Duration::from_secs(120));
        assert_eq!(s.statement_timeout, None);
        assert!(!s.migrate_on_start);
        assert_eq!(s.redacted_url(), "postgres://roster:***@db:5432/directory");
        assert!(!format!("{s:?}").contains("pw@"));
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(
            config_error(&[("ROSTER_DIRECTORY_DATABASE_URL", "mysql://localhost/x")]),
            "ROSTER_DIRECTORY_DATABASE_URL: unsupported scheme 'mysql'; use sqlite://… or postgres://…"
        );
        assert!(
            config_error(&[("ROSTER_DIRECTORY_DB_MAX_CONNECTIONS", "many")])
                .starts_with("ROSTER_DIRECTORY_DB_MAX_CONNECTIONS: 'many' is not a whole number")
        );
        assert!(
            config_error(&[("ROSTER_DIRECTORY_DB_MAX_CONNECTIONS", "0")])
                .starts_with("ROSTER_DIRECTORY_DB_MAX_CONNECTIONS: ")
        );
        assert!(
            config_error(&[
                ("ROSTER_DIRECTORY_DB_MAX_CONNECTIONS", "2"),
                ("ROSTER_DIRECTORY_DB_MIN_CONNECTIONS", "3")
            ])
            .starts_with("ROSTER_DIRECTORY_DB_MIN_CONNECTIONS: 3 is more than")
        );
        assert!(
            config_error(&[("ROSTER_DIRECTORY_DB_ACQUIRE_TIMEOUT", "5 parsecs")])
                .starts_with("ROSTER_DIRECTORY_DB_ACQUIRE_TIMEOUT: '5 parsecs' is not a duration")
        );
        assert!(
            config_error(&[("ROSTER_DIRECTORY_MIGRATE_ON_START", "maybe")])
                .starts_with("ROSTER_DIRECTORY_MIGRATE_ON_START: ")
        );
        assert!(
            config_error(&[("ROSTER_DIRECTORY_DATABASE_URL", "sqlite://x.db?mode=bogus")])
                .starts_with("ROSTER_DIRECTORY_DATABASE_URL: invalid SQLite URL")
        );
    }

    #[test]
    fn durations_accept_the_documented_forms() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 45 "), Ok(Duration::from_secs(45)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("ms").is_err());
    }
}
