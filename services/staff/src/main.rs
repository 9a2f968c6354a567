//! The staff service as its own process, for containers: `roster-staff serve` (default) or
//! `roster-staff migrate`, configured by `ROSTER_STAFF_…` and `ROSTER_AUTH_…`.

use std::sync::Arc;

use anyhow::Context as _;
use roster_auth::{AuthSettings, TokenSigner};
use roster_staff::domain::SystemClock;
use roster_staff::migration::Migrator;
use roster_staff::service::SignInPolicy;
use roster_staff::settings::SignInSettings;
use roster_staff::startup::{SERVICE, routes};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    roster_service::main::<Migrator, _, _>(&SERVICE, |parts| async move {
        let prefix = SERVICE.env_prefix();
        let key_var = format!("{prefix}SIGNING_KEY_FILE");
        let key_file = std::env::var_os(&key_var)
            .with_context(|| format!("{key_var}: required; an Ed25519 PKCS#8 PEM private key"))?;
        let pem = std::fs::read_to_string(&key_file)
            .with_context(|| format!("{key_var}: reading {}", key_file.to_string_lossy()))?;
        let signer = TokenSigner::from_ed25519_pkcs8_pem("staff-1", &pem)
            .with_context(|| format!("{key_var}: {}", key_file.to_string_lossy()))?;
        let auth = AuthSettings::from_env()?;
        let sign_in = SignInPolicy::new(
            Arc::new(signer),
            auth.verifier.issuer,
            auth.verifier.audience,
            SignInSettings::from_env(&prefix)?,
        );
        Ok(routes(
            parts.db,
            parts.verifier,
            Arc::new(SystemClock),
            sign_in,
            parts.max_message_bytes,
        ))
    })
    .await
}
