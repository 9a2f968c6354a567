//! (b) of the Login cell: a bare argon2 verification, nothing else, with the parameters the
//! staff service hashes passwords with (the argon2 crate's defaults), run where Login runs
//! it: on the server runtime's blocking pool, one `spawn_blocking` per call.

use std::sync::Arc;

use anyhow::Context as _;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

use crate::harness::SERVER_THREADS;
use crate::load::{self, LoadResult, LoadSpec};

/// The PHC string of `password` made by `Argon2::default()`, with a fresh salt.
pub fn hash(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| anyhow::anyhow!("argon2 hashing failed: {error}"))
}

/// `argon2id v=19 m=19456 t=2 p=1` of a PHC string: algorithm, version and parameters
/// (memory in KiB, passes, lanes).
pub fn parameters(phc: &str) -> String {
    phc.split('$')
        .skip(1)
        .take(3)
        .flat_map(|field| field.split(','))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Argon2::default()`'s memory (KiB), passes and lanes.
pub fn default_parameters() -> (u32, u32, u32) {
    let params = Argon2::default().params().clone();
    (params.m_cost(), params.t_cost(), params.p_cost())
}

/// Verifies `password` against `stored` from `spec.concurrency` callers, each call on
/// `server`'s blocking pool.
pub async fn run(
    spec: LoadSpec,
    server: &tokio::runtime::Handle,
    stored: &str,
    password: &str,
) -> anyhow::Result<LoadResult> {
    PasswordHash::new(stored).map_err(|error| anyhow::anyhow!("not a PHC string: {error}"))?;
    let stored = Arc::new(stored.to_owned());
    let password = Arc::new(password.to_owned());
    let server = server.clone();
    load::run(spec, Some(SERVER_THREADS), move |_| {
        let stored = Arc::clone(&stored);
        let password = Arc::clone(&password);
        let verified = server.spawn_blocking(move || {
            // Parsed per call, as Login parses the stored string it reads.
            PasswordHash::new(&stored).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        });
        async move {
            anyhow::ensure!(
                verified.await.context("the verifying task failed")?,
                "the password did not verify"
            );
            Ok(())
        }
    })
    .await
}
