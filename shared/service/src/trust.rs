//! The keys a service's token verifier trusts, from two sources kept as their union:
//! configured keys (`ROSTER_AUTH_JWKS_FILE`), a fallback fixed at start, and the keys the
//! staff service publishes, learnt while the service runs (fetched by
//! [`crate::staff_link`], or read from its own database by the staff service). Where a
//! `kid` is in both, the learnt key wins: the staff service is the authority on its keys.
//!
//! A token naming a `kid` the verifier lacks asks whoever learns keys to look again
//! ([`TrustedKeys::refresh_wanted`]), so a key rotated in elsewhere works within moments.

use std::sync::{Arc, Mutex, PoisonError};

use roster_auth::{KeyError, KeySet, TokenVerifier, VerifierSettings};
use roster_core::{Clock, SystemClock};
use serde_json::Value;
use tokio::sync::Notify;

/// Shared by clones: the verifier, its sources and the refresh requests.
#[derive(Clone)]
pub struct TrustedKeys {
    inner: Arc<Inner>,
    refresh: Arc<Notify>,
}

struct Inner {
    verifier: TokenVerifier,
    /// The configured JWKS's keys, as JSON objects.
    configured: Vec<Value>,
    /// The last learnt JWKS's keys, sorted by `kid`; `None` until something was learnt.
    learnt: Mutex<Option<Vec<Value>>>,
}

impl TrustedKeys {
    /// Trusts `configured` (a JWKS) until keys are learnt; with nothing configured, no
    /// token verifies until then.
    ///
    /// # Errors
    ///
    /// `configured` is not a JWKS of usable keys.
    pub fn new(settings: VerifierSettings, configured: Option<&str>) -> Result<Self, KeyError> {
        Self::with_clock(settings, configured, Arc::new(SystemClock))
    }

    /// [`TrustedKeys::new`] with the verifier reading time from `clock`.
    ///
    /// # Errors
    ///
    /// `configured` is not a JWKS of usable keys.
    pub fn with_clock(
        settings: VerifierSettings,
        configured: Option<&str>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, KeyError> {
        let (keys, configured) = match configured {
            Some(json) => (KeySet::from_jwks_json(json)?, jwks_keys(json)?),
            None => (nothing_verifies()?, Vec::new()),
        };
        let verifier = TokenVerifier::with_clock(settings, keys, clock);
        let refresh = Arc::new(Notify::new());
        let wake = Arc::clone(&refresh);
        // `notify_one` keeps one permit when nobody waits, so requests arriving while a
        // fetch runs collapse into one more fetch rather than a queue of them.
        verifier.on_unknown_key(move |_| wake.notify_one());
        Ok(Self {
            inner: Arc::new(Inner {
                verifier,
                configured,
                learnt: Mutex::new(None),
            }),
            refresh,
        })
    }

    /// The verifier these keys feed; clones share its keys and cache.
    pub fn verifier(&self) -> TokenVerifier {
        self.inner.verifier.clone()
    }

    pub fn has_configured(&self) -> bool {
        !self.inner.configured.is_empty()
    }

    /// Whether any token can verify: keys are configured or were learnt.
    pub fn has_keys(&self) -> bool {
        self.has_configured() || self.lock_learnt().is_some()
    }

    /// Makes `jwks` (the staff service's published keys) the learnt keys, trusted along
    /// with the configured ones. A set equal to the last one changes nothing, so the
    /// verifier's cache survives a routine refresh; a different one replaces the keys and
    /// empties the cache, so a key dropped from the set stops working at once.
    ///
    /// # Errors
    ///
    /// `jwks` is not a JWKS of usable keys; the keys trusted before stay.
    pub fn learn(&self, jwks: &str) -> Result<bool, KeyError> {
        KeySet::from_jwks_json(jwks)?;
        let mut learnt = jwks_keys(jwks)?;
        learnt.sort_by(|a, b| kid(a).cmp(kid(b)));
        let mut current = self.lock_learnt();
        if current.as_ref() == Some(&learnt) {
            return Ok(false);
        }
        let mut union: Vec<Value> = Vec::with_capacity(self.inner.configured.len() + learnt.len());
        for key in &self.inner.configured {
            match learnt.iter().find(|known| kid(known) == kid(key)) {
                Some(known) if known != key => tracing::warn!(
                    kid = kid(key),
                    "a configured verification key has the kid of a different key the staff service publishes; trusting the published one"
                ),
                Some(_) => {}
                None => union.push(key.clone()),
            }
        }
        union.extend(learnt.iter().cloned());
        let keys = KeySet::from_jwks_json(&serde_json::json!({ "keys": union }).to_string())?;
        tracing::info!(keys = ?keys.key_ids(), "verification keys changed");
        self.inner.verifier.replace_keys(keys);
        *current = Some(learnt);
        Ok(true)
    }

    /// Resolves when a token arrived naming a key the verifier does not hold (or at once,
    /// if one did since the last call), for the task that learns keys.
    pub async fn refresh_wanted(&self) {
        self.refresh.notified().await;
    }

    fn lock_learnt(&self) -> std::sync::MutexGuard<'_, Option<Vec<Value>>> {
        self.inner
            .learnt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKeys")
            .field("configured", &self.inner.configured.len())
            .field("learnt", &self.lock_learnt().as_ref().map(Vec::len))
            .finish()
    }
}

fn jwks_keys(json: &str) -> Result<Vec<Value>, KeyError> {
    #[derive(serde::Deserialize)]
    struct Jwks {
        keys: Vec<Value>,
    }
    Ok(serde_json::from_str::<Jwks>(json)
        .map_err(KeyError::JwksJson)?
        .keys)
}

fn kid(key: &Value) -> &str {
    key.get("kid").and_then(Value::as_str).unwrap_or_default()
}

/// A key set no token verifies against: one public key whose private half was never kept.
/// A key set cannot be empty, and a verifier must exist before the keys are learnt.
fn nothing_verifies() -> Result<KeySet, KeyError> {
    let (_, keys, _) = roster_auth::generate_ed25519("roster-no-key-learnt-yet")?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use roster_auth::{PrincipalKind, TokenRequest, TokenSigner, generate_ed25519, unix_now};

    use super::*;

    fn token(signer: &TokenSigner) -> String {
        let defaults = VerifierSettings::default();
        signer
            .mint_for(
                &TokenRequest {
                    subject: "svc".into(),
                    kind: PrincipalKind::Service,
                    workspaces: [(
                        "*".to_owned(),
                        roster_auth::WorkspaceAccess::new("service", &[]),
                    )]
                    .into(),
                    generation: 0,
                    ttl: Duration::from_secs(60),
                    issuer: defaults.issuer,
                    audience: defaults.audience,
                },
                unix_now(),
            )
            .unwrap()
    }

    #[test]
    fn configured_and_learnt_keys_are_trusted_together() {
        let (configured, _, configured_jwks) = generate_ed25519("configured").unwrap();
        let (published, _, published_jwks) = generate_ed25519("published").unwrap();
        let trust = TrustedKeys::new(VerifierSettings::default(), Some(&configured_jwks)).unwrap();
        let verifier = trust.verifier();
        assert!(verifier.verify(&token(&configured)).is_ok());
        assert!(verifier.verify(&token(&published)).is_err());

        assert!(trust.learn(&published_jwks).unwrap());
        assert!(
            !trust.learn(&published_jwks).unwrap(),
            "same set, no change"
        );
        assert!(verifier.verify(&token(&configured)).is_ok());
        assert!(verifier.verify(&token(&published)).is_ok());

        // A key the staff service stops publishing stops verifying; configured keys stay.
        let (rotated, _, rotated_jwks) = generate_ed25519("rotated").unwrap();
        assert!(trust.learn(&rotated_jwks).unwrap());
        assert!(verifier.verify(&token(&published)).is_err());
        assert!(verifier.verify(&token(&rotated)).is_ok());
        assert!(verifier.verify(&token(&configured)).is_ok());
    }

    #[test]
    fn without_configured_keys_nothing_verifies_until_keys_are_learnt() {
        let (signer, _, jwks) = generate_ed25519("k").unwrap();
        let trust = TrustedKeys::new(VerifierSettings::default(), None).unwrap();
        assert!(!trust.has_keys());
        assert!(trust.verifier().verify(&token(&signer)).is_err());
        assert!(trust.learn("{\"keys\": []}").is_err());
        assert!(!trust.has_keys(), "a bad set teaches nothing");
        trust.learn(&jwks).unwrap();
        assert!(trust.has_keys());
        assert!(trust.verifier().verify(&token(&signer)).is_ok());
    }

    #[test]
    fn a_published_key_wins_over_a_configured_one_with_its_kid() {
        let (old, _, old_jwks) = generate_ed25519("same").unwrap();
        let (new, _, new_jwks) = generate_ed25519("same").unwrap();
        let trust = TrustedKeys::new(VerifierSettings::default(), Some(&old_jwks)).unwrap();
        trust.learn(&new_jwks).unwrap();
        assert!(trust.verifier().verify(&token(&new)).is_ok());
        assert!(trust.verifier().verify(&token(&old)).is_err());
    }

    #[tokio::test]
    async fn an_unknown_kid_asks_for_a_refresh() {
        let (stranger, _, _) = generate_ed25519("stranger").unwrap();
        let (_, _, jwks) = generate_ed25519("k").unwrap();
        let trust = TrustedKeys::new(VerifierSettings::default(), Some(&jwks)).unwrap();
        let waiting = trust.refresh_wanted();
        assert!(trust.verifier().verify(&token(&stranger)).is_err());
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap();
    }
}
