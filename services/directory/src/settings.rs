//! The directory's configuration, from `ROSTER_DIRECTORY_…` and `ROSTER_AUTH_…` variables.

use std::path::PathBuf;

use anyhow::Context as _;
use roster_auth::{SigningAlgorithm, VerifierSettings};
use roster_db::DbSettings;
use roster_runtime::settings::{ServerSettings, env_opt, env_or};

pub const ENV_PREFIX: &str = "ROSTER_DIRECTORY_";
pub const DEFAULT_PORT: u16 = 50051;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/directory.db?mode=rwc";

#[derive(Clone)]
pub struct DirectorySettings {
    pub server: ServerSettings,
    pub database: DbSettings,
    pub auth: AuthSettings,
    /// Key-encryption keys for widget secrets (`ROSTER_DIRECTORY_WIDGET_KEK_FILE`); without
    /// it, a development key under `./data`. See `widget_kek`.
    pub widget_kek_file: Option<PathBuf>,
}

pub const WIDGET_KEK_FILE_VAR: &str = "ROSTER_DIRECTORY_WIDGET_KEK_FILE";

/// `ROSTER_DIRECTORY_WIDGET_KEK_FILE`, if set.
///
/// # Errors
///
/// The variable is set but not a path.
pub fn widget_kek_file_from_env() -> anyhow::Result<Option<PathBuf>> {
    Ok(env_opt::<PathBuf>(WIDGET_KEK_FILE_VAR)?)
}

#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// JWKS with the staff service's public keys (`ROSTER_AUTH_JWKS_FILE`).
    pub jwks_file: Option<PathBuf>,
    pub verifier: VerifierSettings,
}

impl AuthSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let mut verifier = VerifierSettings::default();
        verifier.issuer = env_or("ROSTER_AUTH_ISSUER", verifier.issuer)?;
        verifier.audience = env_or("ROSTER_AUTH_AUDIENCE", verifier.audience)?;
        let algorithm: String = env_or("ROSTER_AUTH_ALGORITHM", "EdDSA".to_owned())?;
        verifier.algorithm = match algorithm.as_str() {
            "EdDSA" => SigningAlgorithm::EdDSA,
            "ES256" => SigningAlgorithm::ES256,
            other => anyhow::bail!(
                "ROSTER_AUTH_ALGORITHM: '{other}' is not supported; use EdDSA or ES256"
            ),
        };
        let jwks_file = env_opt::<PathBuf>("ROSTER_AUTH_JWKS_FILE")?;
        Ok(Self {
            jwks_file,
            verifier,
        })
    }
}

impl DirectorySettings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            server: ServerSettings::from_env(ENV_PREFIX, DEFAULT_PORT)?,
            database: DbSettings::from_env(ENV_PREFIX, DEFAULT_DATABASE_URL)
                .context("database settings")?,
            auth: AuthSettings::from_env()?,
            widget_kek_file: widget_kek_file_from_env()?,
        })
    }
}
