//! The keys the staff service signs access tokens with, kept in its database
//! (`signing_keys`) with the private halves sealed by the staff KEK
//! (`ROSTER_STAFF_KEK_FILE`).
//!
//! One key signs; [`Keyring::rotate`] makes a new one sign at once and leaves the old one
//! published until every token it signed has expired: the access-token lifetime, the
//! verifiers' leeway, and the time another replica may still sign with it before it
//! notices the rotation ([`KeySettings::recheck`]). Replicas converge by asking the
//! database which key signs (one indexed row) when their view is older than `recheck`,
//! on every `GetJwks`, and when a token names a key they do not know.
//!
//! Later features (Login, IssueServiceToken) mint with [`Keyring::current_signer`].

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use rand::RngCore;
use roster_auth::{SigningAlgorithm, TokenSigner, VerifierSettings};
use roster_core::{Actor, Clock};
use roster_db::outbox::{self, AuditEvent};
use roster_db::{Db, in_write_txn};
use roster_kek::KekFile;
use roster_service::TrustedKeys;
use roster_settings::{SettingsError, duration_or, process_env, require};
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::time::Instant;

use super::change;
use crate::entity::signing_key;
use crate::error::{Result, StaffError};
use crate::store;

/// Where the staff service finds its key-encryption keys.
pub const KEK_FILE: KekFile = KekFile {
    variable: "ROSTER_STAFF_KEK_FILE",
    dev_file: "dev-staff-kek",
    seals: "token-signing keys",
};

/// Separates the sealing of signing keys from any other use of the staff KEK.
const SEALING_CONTEXT: &str = "roster.staff.signing_key";

/// The workspace id of platform events (signing keys belong to no workspace): `*`, as in
/// a token for every workspace. No workspace can be named so, so the audit service can
/// tell them apart.
pub const PLATFORM_WORKSPACE: &str = roster_auth::ALL_WORKSPACES;

/// What `GetJwks` suggests as the verifiers' refresh interval. New keys reach them sooner
/// (a token with an unknown `kid` makes them fetch); this bounds how long a key that left
/// the JWKS stays trusted.
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// How often the purge of unpublished keys runs.
const PURGE_INTERVAL: Duration = Duration::from_secs(600);
/// A replica asks for keys again at most this often because of unknown `kid`s.
const UNKNOWN_KEY_REFRESH_GAP: Duration = roster_service::staff_link::UNKNOWN_KEY_REFRESH_GAP;

/// Lifetimes that decide when a retired key leaves the JWKS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySettings {
    /// `ROSTER_<NAME>_ACCESS_TOKEN_TTL` (default 15m, from 1m to 24h): the lifetime of the
    /// access tokens the service signs, and so of the longest-lived token a key signed.
    pub access_token_ttl: Duration,
    /// The verifiers' tolerance past `exp` (`VerifierSettings::leeway`).
    pub verifier_leeway: Duration,
    /// How long a replica signs with a key before checking whether another rotated it.
    pub recheck: Duration,
}

impl KeySettings {
    pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
    pub const DEFAULT_RECHECK: Duration = Duration::from_secs(5);

    /// From `ROSTER_<NAME>_ACCESS_TOKEN_TTL` (`prefix` is `ROSTER_STAFF_`) and the
    /// verifier's leeway.
    pub fn from_env(prefix: &str, verifier: &VerifierSettings) -> Result<Self, SettingsError> {
        let variable = format!("{prefix}ACCESS_TOKEN_TTL");
        let access_token_ttl =
            duration_or(&process_env, &variable, Self::DEFAULT_ACCESS_TOKEN_TTL)?;
        require(
            (Duration::from_secs(60)..=Duration::from_secs(24 * 3600)).contains(&access_token_ttl),
            &variable,
            "must be between 1m and 24h",
        )?;
        Ok(Self {
            access_token_ttl,
            verifier_leeway: verifier.leeway,
            recheck: Self::DEFAULT_RECHECK,
        })
    }

    /// How long a retired key stays published.
    pub fn retirement(&self) -> Duration {
        self.access_token_ttl + self.verifier_leeway + self.recheck
    }
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            access_token_ttl: Self::DEFAULT_ACCESS_TOKEN_TTL,
            verifier_leeway: VerifierSettings::default().leeway,
            recheck: Self::DEFAULT_RECHECK,
        }
    }
}

/// The published keys, as `GetJwks` answers them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwks {
    /// `{"keys": [...]}`.
    pub json: String,
    /// Sorted.
    pub key_ids: Vec<String>,
    pub signing_kid: String,
}

/// What a rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The key that signed before (none only if no key did).
    pub previous_kid: Option<String>,
    /// Unix microseconds when the previous key leaves the JWKS.
    pub previous_unpublish_at: Option<i64>,
    pub signing_kid: String,
}

/// The signing keys: the one that signs, opened, and those published. Clones share them.
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    kek: roster_kek::Keyring,
    clock: Arc<dyn Clock>,
    settings: KeySettings,
    /// The staff service's own verifier's keys, fed with what it publishes.
    trust: Option<TrustedKeys>,
    state: RwLock<Arc<State>>,
    /// When the database last confirmed which key signs.
    checked: Mutex<Instant>,
    /// One reload at a time; the others then find it done.
    reload: tokio::sync::Mutex<()>,
}

struct State {
    signer: Arc<TokenSigner>,
    published: Vec<Published>,
}

struct Published {
    kid: String,
    jwk: Value,
    unpublish_at: Option<i64>,
}

impl Keyring {
    /// Loads the keys, creating the first signing key if none signs (safe with replicas
    /// starting together: one creates it, the others load it), and feeds `trust`.
    ///
    /// # Errors
    ///
    /// The database fails, or the signing key does not open with the KEK.
    pub async fn start(
        db: Db,
        kek: roster_kek::Keyring,
        clock: Arc<dyn Clock>,
        settings: KeySettings,
        trust: Option<TrustedKeys>,
    ) -> Result<Self> {
        ensure_signing_key(&db, &kek, clock.as_ref()).await?;
        let state = load(&db, &kek, clock.now_us()).await?;
        let keyring = Self {
            inner: Arc::new(Inner {
                db,
                kek,
                clock,
                settings,
                trust,
                state: RwLock::new(Arc::new(state)),
                checked: Mutex::new(Instant::now()),
                reload: tokio::sync::Mutex::new(()),
            }),
        };
        keyring.feed_trust()?;
        Ok(keyring)
    }

    pub fn settings(&self) -> &KeySettings {
        &self.inner.settings
    }

    /// The key to sign with now. Confirmed with the database when this replica's view is
    /// older than [`KeySettings::recheck`], so a rotation elsewhere is followed soon.
    ///
    /// # Errors
    ///
    /// The database fails during a check, or a new key does not open.
    pub async fn current_signer(&self) -> Result<Arc<TokenSigner>> {
        let fresh = self.lock_checked().elapsed() < self.inner.settings.recheck;
        let state = if fresh {
            self.state()
        } else {
            self.check().await?
        };
        Ok(Arc::clone(&state.signer))
    }

    /// The keys verifiers should trust now, checked against the database first, so a
    /// verifier fetching after a rotation on another replica learns the new key.
    ///
    /// # Errors
    ///
    /// The database fails, or a new key does not open.
    pub async fn jwks(&self) -> Result<Jwks> {
        let state = self.check().await?;
        Ok(published_jwks(&state, self.inner.clock.now_us()))
    }

    /// Makes a new key sign from now on and retires the signing one, published until
    /// every token it signed has expired; writes `signing_key.rotated` (workspace
    /// [`PLATFORM_WORKSPACE`]) in the same transaction.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn rotate(&self, actor: &Actor) -> Result<Rotation> {
        let inner = &self.inner;
        let retirement = micros(inner.settings.retirement());
        let rotation = in_write_txn!(inner.db, StaffError, retry_unique = true, |txn| {
            let conn = &*txn;
            let now = inner.clock.now_us();
            let unpublish_at = now.saturating_add(retirement);
            let mut retired = store::signing_keys::retire_signing(conn, now, unpublish_at).await?;
            retired.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
            let previous_kid = retired.first().map(|row| row.kid.clone());
            let row = new_key(&inner.kek, now)?;
            store::signing_keys::insert(conn, row.clone()).await?;
            let event = AuditEvent::new(
                actor,
                PLATFORM_WORKSPACE,
                "signing_key.rotated",
                ("signing_key", row.kid.clone()),
                vec![
                    change(
                        "signing_key_id",
                        previous_kid.clone().map(Value::from),
                        Some(row.kid.clone().into()),
                    ),
                    change(
                        "previous_key_unpublish_at_us",
                        None,
                        previous_kid.as_ref().map(|_| unpublish_at.into()),
                    ),
                ],
                now,
            );
            outbox::append(conn, &[event]).await?;
            Ok(Rotation {
                previous_kid: previous_kid.clone(),
                previous_unpublish_at: previous_kid.map(|_| unpublish_at),
                signing_kid: row.kid,
            })
        })?;
        tracing::info!(previous = ?rotation.previous_kid, signing = %rotation.signing_kid, "rotated the token-signing key");
        self.reload().await?;
        Ok(rotation)
    }

    /// Follows rotations made by other replicas (every `recheck`, and soon after a token
    /// names a key this replica lacks) and keeps the service's own verifier trusting what
    /// it publishes, keys past their time leaving it too. Runs while the service serves.
    pub async fn follow(self) {
        let mut last_wanted: Option<Instant> = None;
        loop {
            let recheck = tokio::time::sleep(self.inner.settings.recheck);
            match &self.inner.trust {
                Some(trust) => tokio::select! {
                    () = recheck => {}
                    () = trust.refresh_wanted() => {
                        if let Some(since) = last_wanted.map(|at| at.elapsed())
                            && since < UNKNOWN_KEY_REFRESH_GAP
                        {
                            tokio::time::sleep(UNKNOWN_KEY_REFRESH_GAP - since).await;
                        }
                        last_wanted = Some(Instant::now());
                    }
                },
                None => recheck.await,
            }
            if let Err(error) = self.check().await.and_then(|_| self.feed_trust()) {
                tracing::warn!(error = %error, "checking the token-signing keys failed; signing with the last key");
            }
        }
    }

    /// Deletes keys past their `unpublish_at`, private halves with them.
    ///
    /// # Errors
    ///
    /// The database fails.
    pub async fn purge(&self) -> Result<u64> {
        store::signing_keys::purge_unpublished(self.inner.db.conn(), self.inner.clock.now_us())
            .await
    }

    /// [`Keyring::purge`] every 10 minutes while the service serves; replicas may run it
    /// together (deleting twice deletes once).
    pub async fn purge_periodically(self) {
        let mut ticks = tokio::time::interval(PURGE_INTERVAL);
        loop {
            ticks.tick().await;
            match self.purge().await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "deleted unpublished token-signing keys"),
                Err(error) => {
                    tracing::warn!(error = %error, "purging unpublished signing keys failed")
                }
            }
        }
    }

    /// Asks the database which key signs (one indexed row) and reloads when it is not the
    /// one this replica holds.
    async fn check(&self) -> Result<Arc<State>> {
        let signing = store::signing_keys::signing_kid(self.inner.db.conn()).await?;
        let state = self.state();
        if signing.as_deref() == Some(state.signer.kid()) {
            *self.lock_checked() = Instant::now();
            return Ok(state);
        }
        self.reload().await
    }

    async fn reload(&self) -> Result<Arc<State>> {
        let _one_at_a_time = self.inner.reload.lock().await;
        let state =
            Arc::new(load(&self.inner.db, &self.inner.kek, self.inner.clock.now_us()).await?);
        *self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::clone(&state);
        *self.lock_checked() = Instant::now();
        self.feed_trust()?;
        Ok(state)
    }

    /// Makes the service's own verifier trust exactly what is published now.
    fn feed_trust(&self) -> Result<()> {
        if let Some(trust) = &self.inner.trust {
            let jwks = published_jwks(&self.state(), self.inner.clock.now_us());
            trust
                .learn(&jwks.json)
                .map_err(|error| StaffError::Internal(format!("the published JWKS: {error}")))?;
        }
        Ok(())
    }

    fn state(&self) -> Arc<State> {
        Arc::clone(
            &self
                .inner
                .state
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    fn lock_checked(&self) -> std::sync::MutexGuard<'_, Instant> {
        self.inner
            .checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The relay's tokens for the audit service are minted with the key that signs now, in the
/// staff service and in the `roster` binary's other services, which share its process.
impl roster_service::relay::SigningKeys for Keyring {
    fn current_signer(&self) -> roster_service::relay::SignerFuture<'_> {
        Box::pin(async move { Ok(Keyring::current_signer(self).await?) })
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("signing_kid", &self.state().signer.kid())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// Creates a signing key unless one signs. Replicas racing here collide on the unique
/// index; the loser retries and finds the winner's key.
async fn ensure_signing_key(db: &Db, kek: &roster_kek::Keyring, clock: &dyn Clock) -> Result<()> {
    if store::signing_keys::signing_kid(db.conn()).await?.is_some() {
        return Ok(());
    }
    let created = in_write_txn!(db, StaffError, retry_unique = true, |txn| {
        let conn = &*txn;
        if store::signing_keys::signing_kid(conn).await?.is_some() {
            return Ok(None);
        }
        let now = clock.now_us();
        let row = new_key(kek, now)?;
        store::signing_keys::insert(conn, row.clone()).await?;
        let system = Actor {
            kind: "system".to_owned(),
            id: "roster-staff".to_owned(),
            ..Actor::default()
        };
        let event = AuditEvent::new(
            &system,
            PLATFORM_WORKSPACE,
            "signing_key.created",
            ("signing_key", row.kid.clone()),
            vec![change("signing_key_id", None, Some(row.kid.clone().into()))],
            now,
        );
        outbox::append(conn, &[event]).await?;
        Ok(Some(row.kid))
    })?;
    if let Some(kid) = created {
        tracing::info!(%kid, "created the first token-signing key");
    }
    Ok(())
}

/// The published keys and the signing one, opened.
async fn load(db: &Db, kek: &roster_kek::Keyring, now: i64) -> Result<State> {
    let rows = store::signing_keys::published(db.conn(), now).await?;
    let signing = rows
        .iter()
        .filter(|row| row.retired_at.is_none())
        .max_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)))
        .ok_or_else(|| StaffError::Internal("no token-signing key signs".to_owned()))?;
    let signer = Arc::new(open(kek, signing)?);
    let published = rows
        .iter()
        .map(|row| {
            let jwk = serde_json::from_str(&row.public_jwk).map_err(|error| {
                StaffError::Internal(format!(
                    "the public key of {} is not JSON: {error}",
                    row.kid
                ))
            })?;
            Ok(Published {
                kid: row.kid.clone(),
                jwk,
                unpublish_at: row.unpublish_at,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(State { signer, published })
}

/// A fresh Ed25519 key, its private half sealed for the row it goes into.
fn new_key(kek: &roster_kek::Keyring, now: i64) -> Result<signing_key::Model> {
    let kid = uuid::Uuid::now_v7().simple().to_string();
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|error| StaffError::Internal(format!("encoding a new signing key: {error}")))?;
    let signer = TokenSigner::from_ed25519_pkcs8_pem(&kid, &pem)
        .map_err(|error| StaffError::Internal(format!("a new signing key: {error}")))?;
    let private_key_sealed = kek
        .seal(SEALING_CONTEXT, kid.as_bytes(), pem.as_bytes())
        .map_err(|error| StaffError::Internal(format!("sealing a new signing key: {error}")))?;
    Ok(signing_key::Model {
        public_jwk: public_jwk(&signer)?.to_string(),
        algorithm: SigningAlgorithm::EdDSA.as_str().to_owned(),
        kid,
        private_key_sealed,
        created_at: now,
        retired_at: None,
        unpublish_at: None,
    })
}

/// Opens a stored key. A key that does not open stops the service rather than letting it
/// sign with another: the KEK is not the one that sealed it.
fn open(kek: &roster_kek::Keyring, row: &signing_key::Model) -> Result<TokenSigner> {
    if row.algorithm != SigningAlgorithm::EdDSA.as_str() {
        return Err(StaffError::Internal(format!(
            "signing key {} uses {}; this release signs with EdDSA only",
            row.kid, row.algorithm
        )));
    }
    let pem = kek
        .open(SEALING_CONTEXT, row.kid.as_bytes(), &row.private_key_sealed)
        .map_err(|error| {
            StaffError::Internal(format!(
                "signing key {}: {error} ({})",
                row.kid, KEK_FILE.variable
            ))
        })?;
    let pem = std::str::from_utf8(pem.expose_secret())
        .map_err(|_| StaffError::Internal(format!("signing key {} is not a PEM", row.kid)))?;
    TokenSigner::from_ed25519_pkcs8_pem(&row.kid, pem)
        .map_err(|error| StaffError::Internal(format!("signing key {}: {error}", row.kid)))
}

fn public_jwk(signer: &TokenSigner) -> Result<Value> {
    let internal = |error: String| StaffError::Internal(format!("the public key: {error}"));
    let jwks: Value =
        serde_json::from_str(&signer.jwks_json().map_err(|e| internal(e.to_string()))?)
            .map_err(|e| internal(e.to_string()))?;
    jwks.get("keys")
        .and_then(|keys| keys.get(0))
        .cloned()
        .ok_or_else(|| internal("no key in the signer's JWKS".to_owned()))
}

fn published_jwks(state: &State, now: i64) -> Jwks {
    let keys: Vec<&Published> = state
        .published
        .iter()
        .filter(|key| key.unpublish_at.is_none_or(|at| at > now))
        .collect();
    let mut key_ids: Vec<String> = keys.iter().map(|key| key.kid.clone()).collect();
    key_ids.sort_unstable();
    Jwks {
        json: serde_json::json!({ "keys": keys.iter().map(|key| &key.jwk).collect::<Vec<_>>() })
            .to_string(),
        key_ids,
        signing_kid: state.signer.kid().to_owned(),
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}
