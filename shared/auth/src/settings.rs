//! Token verification settings, from the `ROSTER_AUTH_…` variables every service reads.

use std::path::PathBuf;

use roster_settings::{SettingsError, Source, parse_opt, parse_or, process_env};

use crate::keys::SigningAlgorithm;
use crate::verify::VerifierSettings;

/// How a service verifies access tokens.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// `ROSTER_AUTH_JWKS_FILE`: the staff service's public keys. Required to serve, except
    /// by the all-in-one `roster` binary, which falls back to its development keys.
    pub jwks_file: Option<PathBuf>,
    /// `ROSTER_AUTH_ISSUER` (default `roster-staff`), `ROSTER_AUTH_AUDIENCE` (`roster`) and
    /// `ROSTER_AUTH_ALGORITHM` (`EdDSA` or `ES256`, default `EdDSA`).
    pub verifier: VerifierSettings,
}

impl AuthSettings {
    /// Reads the `ROSTER_AUTH_…` variables; errors name the variable.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_source(&process_env)
    }

    /// [`AuthSettings::from_env`] over any variable source, for tests.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        Self::from_source(&|name: &str| Ok(lookup(name)))
    }

    fn from_source(source: Source<'_>) -> Result<Self, SettingsError> {
        let defaults = VerifierSettings::default();
        let algorithm: String = parse_or(
            source,
            "ROSTER_AUTH_ALGORITHM",
            defaults.algorithm.as_str().to_owned(),
            "algorithm",
        )?;
        let algorithm = match algorithm.as_str() {
            "EdDSA" => SigningAlgorithm::EdDSA,
            "ES256" => SigningAlgorithm::ES256,
            other => {
                return Err(SettingsError::new(
                    "ROSTER_AUTH_ALGORITHM",
                    format!("'{other}' is not supported; use EdDSA or ES256"),
                ));
            }
        };
        let verifier = VerifierSettings {
            issuer: parse_or(
                source,
                "ROSTER_AUTH_ISSUER",
                defaults.issuer.clone(),
                "issuer",
            )?,
            audience: parse_or(
                source,
                "ROSTER_AUTH_AUDIENCE",
                defaults.audience.clone(),
                "audience",
            )?,
            algorithm,
            ..defaults
        };
        Ok(Self {
            jwks_file: parse_opt(source, "ROSTER_AUTH_JWKS_FILE", "path")?,
            verifier,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_verify_staff_tokens_with_eddsa() {
        let settings = AuthSettings::from_lookup(|_| None).unwrap();

        assert_eq!(settings.jwks_file, None);
        assert_eq!(settings.verifier.issuer, "roster-staff");
        assert_eq!(settings.verifier.audience, "roster");
        assert_eq!(settings.verifier.algorithm, SigningAlgorithm::EdDSA);
    }

    #[test]
    fn variables_override_defaults() {
        let settings = AuthSettings::from_lookup(|name| {
            match name {
                "ROSTER_AUTH_JWKS_FILE" => Some("/etc/roster/jwks.json"),
                "ROSTER_AUTH_ISSUER" => Some("https://staff.example"),
                "ROSTER_AUTH_AUDIENCE" => Some("directory"),
                "ROSTER_AUTH_ALGORITHM" => Some("ES256"),
                _ => None,
            }
            .map(str::to_owned)
        })
        .unwrap();

        assert_eq!(
            settings.jwks_file,
            Some(PathBuf::from("/etc/roster/jwks.json"))
        );
        assert_eq!(settings.verifier.issuer, "https://staff.example");
        assert_eq!(settings.verifier.audience, "directory");
        assert_eq!(settings.verifier.algorithm, SigningAlgorithm::ES256);
    }

    #[test]
    fn an_unknown_algorithm_names_the_variable() {
        let err = AuthSettings::from_lookup(|name| {
            (name == "ROSTER_AUTH_ALGORITHM").then(|| "HS256".to_owned())
        })
        .unwrap_err();

        assert_eq!(
            err.to_string(),
            "ROSTER_AUTH_ALGORITHM: 'HS256' is not supported; use EdDSA or ES256"
        );
    }
}
