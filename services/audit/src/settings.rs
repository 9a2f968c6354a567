//! The audit service's own settings (`ROSTER_AUDIT_…`), beyond the server and database
//! settings every service reads and the KEK file (`ROSTER_AUDIT_KEK_FILE`).

use roster_settings::{SettingsError, Source, process_env, read, require};

use crate::domain::note::valid_key_name;

/// What names the logs to verifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSettings {
    /// `…LOG_ORIGIN` (default `roster.local/audit`): a workspace's log is
    /// `<origin>/<workspace id>`, the first line of its checkpoints and its key's name.
    /// Name the deployment (`audit.example.com`), so two Roster installations' logs never
    /// share an origin; changing it later changes every log's name and verifier key.
    pub origin: String,
}

pub const DEFAULT_ORIGIN: &str = "roster.local/audit";

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            origin: DEFAULT_ORIGIN.to_owned(),
        }
    }
}

impl LogSettings {
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
        let name = format!("{prefix}LOG_ORIGIN");
        let origin = read(source, &name)?.unwrap_or_else(|| DEFAULT_ORIGIN.to_owned());
        let origin = origin.trim_end_matches('/').to_owned();
        require(
            valid_key_name(&origin) && origin.chars().count() <= 200,
            &name,
            "must be 1 to 200 characters without spaces, '+' or control characters (a schema-less URL such as audit.example.com)",
        )?;
        Ok(Self { origin })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_and_override() {
        assert_eq!(
            LogSettings::from_lookup("ROSTER_AUDIT_", |_| None).unwrap(),
            LogSettings::default()
        );
        let set =
            LogSettings::from_lookup("ROSTER_AUDIT_", |_| Some("audit.example.com/".to_owned()))
                .unwrap();
        assert_eq!(set.origin, "audit.example.com");
    }

    #[test]
    fn a_name_a_verifier_cannot_read_names_the_variable() {
        let err =
            LogSettings::from_lookup("ROSTER_AUDIT_", |_| Some("a+b".to_owned())).unwrap_err();
        assert_eq!(err.variable(), "ROSTER_AUDIT_LOG_ORIGIN");
    }
}
