//! Typed settings read from environment variables and validated at start-up, for every
//! Roster crate that has settings (`roster-runtime`'s server and telemetry, `roster-db`'s
//! pool, `roster-auth`'s verifier), so a duration or a boolean is written the same way in
//! every variable.
//!
//! A misconfigured pod should refuse to start with a message that names the variable, rather
//! than start and misbehave, so every reader here returns a [`SettingsError`] that does.
//! An empty (or all-whitespace) variable counts as unset: Kubernetes manifests and `.env`
//! files often declare a variable with no value to mean "use the default".
//!
//! - Durations: a whole number followed by `ms`, `s`, `m` or `h` (`500ms`, `30s`, `2m`);
//!   a bare number means seconds.
//! - Booleans: `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`, in any case.

use std::env::VarError;
use std::fmt::Display;
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

/// Where variables come from: the process environment in production ([`process_env`]), a
/// closure in tests. Errors are reserved for values that exist but cannot be read (not UTF-8).
pub type Source<'a> = &'a dyn Fn(&str) -> Result<Option<String>, SettingsError>;

/// The process environment as a [`Source`].
pub fn process_env(name: &str) -> Result<Option<String>, SettingsError> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(VarError::NotPresent) => Ok(None),
        Err(VarError::NotUnicode(_)) => Err(SettingsError::new(name, "value is not valid UTF-8")),
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

/// Reads `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off` (any case).
pub fn env_bool_or(name: &str, default: bool) -> Result<bool, SettingsError> {
    bool_or(&process_env, name, default)
}

/// The trimmed value, with empty treated as unset.
pub fn read(source: Source<'_>, name: &str) -> Result<Option<String>, SettingsError> {
    Ok(source(name)?
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty()))
}

/// `Err` naming `name` with `message` unless `ok`: for range checks after parsing.
pub fn require(ok: bool, name: &str, message: impl Into<String>) -> Result<(), SettingsError> {
    if ok {
        Ok(())
    } else {
        Err(SettingsError::new(name, message))
    }
}

/// Parses `name` with `FromStr`; `what` names the expected kind of value in the error
/// ("socket address", "count").
pub fn parse_opt<T>(source: Source<'_>, name: &str, what: &str) -> Result<Option<T>, SettingsError>
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

/// [`parse_opt`] with a default for an unset variable.
pub fn parse_or<T>(
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

/// A duration (see the crate docs); `None` when unset.
pub fn duration_opt(source: Source<'_>, name: &str) -> Result<Option<Duration>, SettingsError> {
    read(source, name)?
        .map(|raw| {
            parse_duration(&raw)
                .map_err(|why| SettingsError::new(name, format!("invalid duration '{raw}': {why}")))
        })
        .transpose()
}

/// [`duration_opt`] with a default for an unset variable.
pub fn duration_or(
    source: Source<'_>,
    name: &str,
    default: Duration,
) -> Result<Duration, SettingsError> {
    Ok(duration_opt(source, name)?.unwrap_or(default))
}

/// A boolean (see the crate docs), or `default` when unset.
pub fn bool_or(source: Source<'_>, name: &str, default: bool) -> Result<bool, SettingsError> {
    let Some(raw) = read(source, name)? else {
        return Ok(default);
    };
    parse_bool(&raw)
        .ok_or_else(|| SettingsError::new(name, format!("invalid boolean '{raw}': {BOOL_FORMAT}")))
}

const BOOL_FORMAT: &str = "expected true/false, 1/0, yes/no or on/off";

const DURATION_FORMAT: &str = "expected a whole number followed by ms, s, m or h (e.g. 500ms, 30s, 2m); a bare number means seconds";

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
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
    use std::collections::HashMap;

    use super::*;

    fn vars(
        pairs: &[(&str, &str)],
    ) -> impl Fn(&str) -> Result<Option<String>, SettingsError> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| Ok(map.get(name).cloned())
    }

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration(" 45 "), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_reject_other_shapes() {
        for raw in [
            "",
            "s",
            "ms",
            "1.5s",
            "-1s",
            "10d",
            "ten",
            "5 parsecs",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(raw).is_err(), "{raw} should be rejected");
        }
        assert!(parse_duration(&format!("{}h", u64::MAX / 60)).is_err());
    }

    #[test]
    fn booleans_accept_the_documented_words_in_any_case() {
        for raw in ["true", "TRUE", "1", "yes", "Yes", "on", "ON"] {
            assert_eq!(parse_bool(raw), Some(true), "{raw}");
        }
        for raw in ["false", "False", "0", "no", "NO", "off", "Off"] {
            assert_eq!(parse_bool(raw), Some(false), "{raw}");
        }
        for raw in ["maybe", "2", "y", "n", "enabled", "t"] {
            assert_eq!(parse_bool(raw), None, "{raw}");
        }
    }

    #[test]
    fn errors_name_the_variable_and_the_value() {
        let source = vars(&[
            ("ROSTER_X_TIMEOUT", "5 parsecs"),
            ("ROSTER_X_ENABLED", "maybe"),
            ("ROSTER_X_COUNT", "many"),
        ]);

        let duration = duration_or(&source, "ROSTER_X_TIMEOUT", Duration::ZERO).unwrap_err();
        let boolean = bool_or(&source, "ROSTER_X_ENABLED", true).unwrap_err();
        let count = parse_or::<u32>(&source, "ROSTER_X_COUNT", 1, "count").unwrap_err();

        assert_eq!(duration.variable(), "ROSTER_X_TIMEOUT");
        assert_eq!(
            duration.to_string(),
            format!("ROSTER_X_TIMEOUT: invalid duration '5 parsecs': {DURATION_FORMAT}")
        );
        assert_eq!(
            boolean.to_string(),
            "ROSTER_X_ENABLED: invalid boolean 'maybe': expected true/false, 1/0, yes/no or on/off"
        );
        assert!(
            count
                .to_string()
                .starts_with("ROSTER_X_COUNT: invalid count 'many': "),
            "{count}"
        );
    }

    #[test]
    fn unset_or_blank_variables_take_the_default() {
        let source = vars(&[("ROSTER_X_BLANK", "  ")]);

        assert!(bool_or(&source, "ROSTER_X_BLANK", true).unwrap());
        assert!(!bool_or(&source, "ROSTER_X_MISSING", false).unwrap());
        assert_eq!(
            duration_or(&source, "ROSTER_X_BLANK", Duration::from_secs(3)).unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(duration_opt(&source, "ROSTER_X_MISSING").unwrap(), None);
    }

    #[test]
    fn generic_readers_use_the_process_environment() {
        // Variables that no environment defines exercise the real reader without mutating the
        // process environment, which edition 2024 makes `unsafe`.
        let unset = "ROSTER_SETTINGS_TEST_SURELY_UNSET_VARIABLE";
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
