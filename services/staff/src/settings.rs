//! The staff service's own settings (`ROSTER_STAFF_…`), beyond the server and database
//! settings every service reads.

use std::time::Duration;

use roster_settings::{SettingsError, Source, duration_or, parse_or, process_env, require};

use crate::domain::sign_in::Throttle;

/// How agents sign in and how long what they get lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignInSettings {
    /// `…ACCESS_TOKEN_TTL` (default 15m): short, because a token is checked without asking
    /// this service; revocation covers the gap.
    pub access_ttl: Duration,
    /// `…REFRESH_TOKEN_TTL` (default 30d): how long a refresh token may wait to be used.
    pub refresh_ttl: Duration,
    /// `…SIGN_IN_ATTEMPTS_PER_ACCOUNT` (5), `…SIGN_IN_ATTEMPTS_PER_ADDRESS` (50) and
    /// `…SIGN_IN_WINDOW` (15m).
    pub throttle: Throttle,
}

impl Default for SignInSettings {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            throttle: Throttle::default(),
        }
    }
}

impl SignInSettings {
    pub fn from_env(prefix: &str) -> Result<Self, SettingsError> {
        Self::from_source(prefix, &process_env)
    }

    pub fn from_lookup(
        prefix: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        Self::from_source(prefix, &|name: &str| Ok(lookup(name)))
    }

    fn from_source(prefix: &str, source: Source<'_>) -> Result<Self, SettingsError> {
        let defaults = Self::default();
        let name = |suffix: &str| format!("{prefix}{suffix}");
        let access_ttl = duration_or(source, &name("ACCESS_TOKEN_TTL"), defaults.access_ttl)?;
        require(
            access_ttl >= Duration::from_secs(60),
            &name("ACCESS_TOKEN_TTL"),
            "must be at least 1m",
        )?;
        let refresh_ttl = duration_or(source, &name("REFRESH_TOKEN_TTL"), defaults.refresh_ttl)?;
        require(
            refresh_ttl > access_ttl,
            &name("REFRESH_TOKEN_TTL"),
            "must be longer than the access token's",
        )?;
        let throttle = Throttle {
            per_account: parse_or(
                source,
                &name("SIGN_IN_ATTEMPTS_PER_ACCOUNT"),
                defaults.throttle.per_account,
                "count",
            )?,
            per_address: parse_or(
                source,
                &name("SIGN_IN_ATTEMPTS_PER_ADDRESS"),
                defaults.throttle.per_address,
                "count",
            )?,
            window: duration_or(source, &name("SIGN_IN_WINDOW"), defaults.throttle.window)?,
        };
        for (suffix, value) in [
            ("SIGN_IN_ATTEMPTS_PER_ACCOUNT", throttle.per_account),
            ("SIGN_IN_ATTEMPTS_PER_ADDRESS", throttle.per_address),
        ] {
            require(value >= 1, &name(suffix), "must be at least 1")?;
        }
        require(
            !throttle.window.is_zero(),
            &name("SIGN_IN_WINDOW"),
            "must be longer than zero",
        )?;
        Ok(Self {
            access_ttl,
            refresh_ttl,
            throttle,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(
            SignInSettings::from_lookup("ROSTER_STAFF_", |_| None).unwrap(),
            SignInSettings::default()
        );
        let set = SignInSettings::from_lookup("ROSTER_STAFF_", |name| {
            match name {
                "ROSTER_STAFF_ACCESS_TOKEN_TTL" => Some("5m"),
                "ROSTER_STAFF_SIGN_IN_ATTEMPTS_PER_ACCOUNT" => Some("3"),
                _ => None,
            }
            .map(str::to_owned)
        })
        .unwrap();
        assert_eq!(set.access_ttl, Duration::from_secs(300));
        assert_eq!(set.throttle.per_account, 3);
    }

    #[test]
    fn nonsense_names_the_variable() {
        let err = SignInSettings::from_lookup("ROSTER_STAFF_", |name| {
            (name == "ROSTER_STAFF_SIGN_IN_ATTEMPTS_PER_ADDRESS").then(|| "0".to_owned())
        })
        .unwrap_err();
        assert_eq!(err.variable(), "ROSTER_STAFF_SIGN_IN_ATTEMPTS_PER_ADDRESS");
    }
}
