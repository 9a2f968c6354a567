//! Database settings, read from `{PREFIX}…` environment variables.

use std::time::Duration;

use roster_settings::{
    SettingsError, Source, bool_or, duration_opt, duration_or, parse_or, read, require,
};
use secrecy::{ExposeSecret, SecretString};

use crate::error::Result;

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
    /// Send every statement's text to `tracing` (target `sqlx::query`, DEBUG), so a test
    /// can read what a service asks of its database (the roster suite's check that no
    /// query spans workspaces). Not an environment variable: an operator turns statement
    /// logs on with `RUST_LOG` naming `sqlx`, which logs them at INFO.
    pub log_statements: bool,
    /// PostgreSQL only: plan every statement with its values (`plan_cache_mode =
    /// force_custom_plan`) rather than reuse a generic plan. For a service whose hot
    /// prepared statements meet tables that grow from empty: a generic plan made while a
    /// table looked empty (not yet analyzed) may scan a workspace where an index would
    /// probe, and is kept until the next ANALYZE. Set by the service (`ServiceDef`), not an
    /// environment variable.
    pub custom_plans: bool,
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
            log_statements: false,
            custom_plans: false,
        }
    }

    /// Reads `{prefix}DATABASE_URL` (default `default_url`), `{prefix}DB_MAX_CONNECTIONS` (16),
    /// `{prefix}DB_MIN_CONNECTIONS` (1), `{prefix}DB_ACQUIRE_TIMEOUT` (5s),
    /// `{prefix}DB_IDLE_TIMEOUT` (10m), `{prefix}DB_STATEMENT_TIMEOUT` (30s; `0` or `off`
    /// disables it) and `{prefix}MIGRATE_ON_START` (true).
    ///
    /// Durations and booleans are read as `roster-settings` reads them everywhere (`500ms`,
    /// `30s`, `2m`, `1h` or plain seconds; `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
    /// Every error names the variable, e.g. `ROSTER_DIRECTORY_DATABASE_URL: unsupported scheme 'mysql'; use
    /// sqlite://… or postgres://…`.
    pub fn from_env(prefix: &str, default_url: &str) -> Result<DbSettings> {
        Ok(Self::from_source(
            &roster_settings::process_env,
            prefix,
            default_url,
        )?)
    }

    /// [`DbSettings::from_env`] over any variable source, so tests need not touch the
    /// process environment. A variable set to an empty string counts as unset.
    pub fn from_lookup(
        prefix: &str,
        default_url: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<DbSettings> {
        Ok(Self::from_source(
            &|name: &str| Ok(lookup(name)),
            prefix,
            default_url,
        )?)
    }

    fn from_source(
        source: Source<'_>,
        prefix: &str,
        default_url: &str,
    ) -> std::result::Result<DbSettings, SettingsError> {
        let var = |suffix: &str| format!("{prefix}{suffix}");
        let defaults = DbSettings::new(default_url);

        let name = var("DATABASE_URL");
        let url = read(source, &name)?.unwrap_or_else(|| default_url.trim().to_owned());
        validate_url(&url).map_err(|why| SettingsError::new(&name, why))?;

        let max_name = var("DB_MAX_CONNECTIONS");
        let max_connections = parse_or(source, &max_name, defaults.max_connections, "count")?;
        require(max_connections > 0, &max_name, "must be at least 1")?;

        let name = var("DB_MIN_CONNECTIONS");
        let min_connections = parse_or(source, &name, defaults.min_connections, "count")?;
        require(
            min_connections <= max_connections,
            &name,
            format!("{min_connections} is more than {max_name} ({max_connections})"),
        )?;

        let name = var("DB_ACQUIRE_TIMEOUT");
        let acquire_timeout = duration_or(source, &name, defaults.acquire_timeout)?;
        require(!acquire_timeout.is_zero(), &name, "must be more than 0")?;

        let idle_timeout = duration_or(source, &var("DB_IDLE_TIMEOUT"), defaults.idle_timeout)?;

        // `off` (or `none`, or 0) turns the timeout off, a word no other duration takes.
        let name = var("DB_STATEMENT_TIMEOUT");
        let statement_timeout = match read(source, &name)?.map(|v| v.to_ascii_lowercase()) {
            Some(word) if word == "off" || word == "none" => None,
            _ => duration_opt(source, &name)?
                .or(defaults.statement_timeout)
                .filter(|timeout| !timeout.is_zero()),
        };

        let migrate_on_start =
            bool_or(source, &var("MIGRATE_ON_START"), defaults.migrate_on_start)?;

        Ok(DbSettings {
            url: SecretString::from(url),
            max_connections,
            min_connections,
            acquire_timeout,
            idle_timeout,
            statement_timeout,
            migrate_on_start,
            log_statements: false,
            custom_plans: false,
        })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::collections::HashMap;

    use super::*;
    use crate::error::DbError;

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
                .starts_with("ROSTER_DIRECTORY_DB_MAX_CONNECTIONS: invalid count 'many'")
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
                .starts_with("ROSTER_DIRECTORY_DB_ACQUIRE_TIMEOUT: invalid duration '5 parsecs'")
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
    fn words_read_as_every_roster_setting_reads_them() {
        let s = settings(&[
            ("ROSTER_DIRECTORY_MIGRATE_ON_START", "off"),
            ("ROSTER_DIRECTORY_DB_IDLE_TIMEOUT", "90"),
            ("ROSTER_DIRECTORY_DB_STATEMENT_TIMEOUT", "0"),
        ])
        .unwrap();
        assert!(!s.migrate_on_start);
        assert_eq!(s.idle_timeout, Duration::from_secs(90));
        assert_eq!(s.statement_timeout, None);

        let s = settings(&[("ROSTER_DIRECTORY_MIGRATE_ON_START", "YES")]).unwrap();
        assert!(s.migrate_on_start);
    }
}
