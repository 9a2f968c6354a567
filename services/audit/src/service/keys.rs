//! The checkpoint-signing key: Ed25519, created by the first replica to start, stored in
//! the database sealed with the audit KEK (`ROSTER_AUDIT_KEK_FILE`, else a development key
//! under the data directory), so every replica signs with the one key verifiers pin, and a
//! database dump alone cannot forge a checkpoint.

use anyhow::Context as _;
use rand::RngCore as _;
use roster_db::{Db, DbError};
use roster_kek::KekFile;
use secrecy::ExposeSecret as _;

use crate::domain::Clock;
use crate::domain::note::LogKey;
use crate::entity::audit_log_key;
use crate::error::AuditError;
use crate::store;

pub const KEK_FILE: KekFile = KekFile {
    variable: "ROSTER_AUDIT_KEK_FILE",
    dev_file: "dev-audit-kek",
    seals: "the audit log's checkpoint-signing key",
};

/// Separates this use of the audit KEK from any other.
const SEALING_CONTEXT: &str = "roster.audit.log_key";

/// The signing key, created and stored when the database has none. Replicas starting
/// together race to insert it; the losers read the winner's.
///
/// # Errors
///
/// The database fails, or the stored key does not open with `kek` (another KEK sealed it).
pub async fn load_or_create(
    db: &Db,
    kek: &roster_kek::Keyring,
    clock: &dyn Clock,
    origin_prefix: String,
) -> anyhow::Result<LogKey> {
    for _ in 0..2 {
        if let Some(row) = store::log_key::get(db.conn()).await? {
            return open(kek, &row, origin_prefix);
        }
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public_key = signing.verifying_key().to_bytes();
        let sealed = kek
            .seal(SEALING_CONTEXT, &public_key, &seed)
            .map_err(|error| anyhow::anyhow!("sealing the new log key: {error}"))?;
        seed.fill(0);
        let row = audit_log_key::Model {
            slot: 1,
            private_key_sealed: sealed,
            public_key: public_key.to_vec(),
            created_at: clock.now_us(),
        };
        match store::log_key::insert(db.conn(), row).await {
            Ok(()) => {
                tracing::info!("created the audit log's checkpoint-signing key");
                return Ok(LogKey::new(signing, origin_prefix));
            }
            Err(AuditError::Database(DbError::UniqueViolation { .. })) => continue,
            Err(error) => return Err(error).context("storing the new log key"),
        }
    }
    anyhow::bail!("the audit log key was neither readable nor creatable")
}

fn open(
    kek: &roster_kek::Keyring,
    row: &audit_log_key::Model,
    origin_prefix: String,
) -> anyhow::Result<LogKey> {
    let seed = kek
        .open(SEALING_CONTEXT, &row.public_key, &row.private_key_sealed)
        .map_err(|error| {
            anyhow::anyhow!(
                "the audit log's signing key does not open ({error}); start with the {} that sealed it",
                KEK_FILE.variable
            )
        })?;
    let seed = <[u8; 32]>::try_from(seed.expose_secret())
        .context("the audit log's sealed key is not an Ed25519 seed")?;
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    if signing.verifying_key().to_bytes().as_slice() != row.public_key.as_slice() {
        anyhow::bail!("the audit log's sealed key does not match its stored public key");
    }
    Ok(LogKey::new(signing, origin_prefix))
}
