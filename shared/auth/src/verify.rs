//! Token verification: settings, the verifier with its cache, and the tonic interceptor.

use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Header, Validation};
use roster_core::{Clock, SystemClock};
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

use crate::cache::TokenCache;
use crate::claims::Claims;
use crate::error::AuthError;
use crate::keys::{KeySet, SigningAlgorithm};
use crate::principal::Principal;
use crate::revocations::RevocationView;

/// The system clock in unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemClock.now_secs()
}

#[derive(Clone, Debug)]
pub struct VerifierSettings {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// The only algorithm accepted; keys of another type in the key set are never used.
    pub algorithm: SigningAlgorithm,
    /// Clock skew tolerated on `exp` (whole seconds).
    pub leeway: Duration,
    /// How long a verified token is remembered (whole seconds; zero disables the cache).
    /// Never beyond the token's own `exp`.
    pub cache_ttl: Duration,
    /// Most tokens remembered at once (zero disables the cache).
    pub cache_capacity: usize,
}

impl Default for VerifierSettings {
    fn default() -> Self {
        VerifierSettings {
            issuer: "roster-staff".to_owned(),
            audience: "roster".to_owned(),
            algorithm: SigningAlgorithm::EdDSA,
            leeway: Duration::from_secs(30),
            cache_ttl: Duration::from_secs(60),
            cache_capacity: 10_000,
        }
    }
}

/// Verifies access tokens against a fixed key set. Clones share keys and cache.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    settings: VerifierSettings,
    validation: Validation,
    leeway_secs: i64,
    cache_ttl_secs: i64,
    keys: RwLock<Arc<KeySet>>,
    cache: TokenCache,
    clock: Arc<dyn Clock>,
    unknown_key: OnceLock<UnknownKeyHook>,
    revocations: OnceLock<RevocationView>,
}

/// Told the `kid` of a token naming a key the verifier does not hold; see
/// [`TokenVerifier::on_unknown_key`].
type UnknownKeyHook = Box<dyn Fn(&str) + Send + Sync>;

/// The longest token considered at all.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Header fields that name or embed a key. Honouring any of them lets the token choose the
/// key that verifies it; nothing we issue sets them, so their presence alone is suspicious.
const UNTRUSTED_HEADERS: [&str; 5] = ["jwk", "jku", "x5u", "x5c", "crit"];

impl TokenVerifier {
    pub fn new(settings: VerifierSettings, keys: KeySet) -> TokenVerifier {
        TokenVerifier::with_clock(settings, keys, Arc::new(SystemClock))
    }

    /// Like [`TokenVerifier::new`] with an injected clock, so tests control time.
    pub fn with_clock(
        settings: VerifierSettings,
        keys: KeySet,
        clock: Arc<dyn Clock>,
    ) -> TokenVerifier {
        let mut validation = Validation::new(settings.algorithm.jwt_algorithm());
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        // jsonwebtoken reads the system clock itself; `exp` is checked in `verify_uncached`
        // against our clock instead. Presence and numeric type are still enforced above and
        // by `Claims::exp: i64`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        let cache_capacity = if settings.cache_ttl.as_secs() == 0 {
            0
        } else {
            settings.cache_capacity
        };
        TokenVerifier {
            inner: Arc::new(Inner {
                leeway_secs: secs(settings.leeway),
                cache_ttl_secs: secs(settings.cache_ttl),
                validation,
                keys: RwLock::new(Arc::new(keys)),
                cache: TokenCache::new(cache_capacity),
                clock,
                settings,
                unknown_key: OnceLock::new(),
                revocations: OnceLock::new(),
            }),
        }
    }

    pub fn settings(&self) -> &VerifierSettings {
        &self.inner.settings
    }

    /// Swaps in a new key set (JWKS rotation) for this verifier and all its clones. Cached
    /// tokens are forgotten, so a key dropped from the set stops working immediately.
    pub fn replace_keys(&self, keys: KeySet) {
        *self
            .inner
            .keys
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
        self.inner.cache.reset();
    }

    /// Has `hook` told the `kid` of every otherwise well-formed token signed with a key
    /// this verifier does not hold (the token is refused all the same), so whoever keeps
    /// the keys can fetch them again: a key the staff service just rotated in works soon
    /// after, without a restart. `kid`s are the caller's choice, so the hook must be cheap
    /// and rate-limit what it triggers. One hook per verifier; false if one was set.
    pub fn on_unknown_key(&self, hook: impl Fn(&str) + Send + Sync + 'static) -> bool {
        self.inner.unknown_key.set(Box::new(hook)).is_ok()
    }

    /// Makes this verifier and its clones also refuse the tokens `view` says are revoked
    /// (checked on every call, cached or not), and every token while `view` is not current.
    /// Set it before serving; false if a view was set already.
    pub fn follow_revocations(&self, view: RevocationView) -> bool {
        self.inner.revocations.set(view).is_ok()
    }

    /// Verifies a bare token (without the `Bearer ` prefix).
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let principal = self.verify_signed(token)?;
        // After the cache, so a cached token is refused on the first call after its
        // revocation arrived.
        if let Some(revocations) = self.inner.revocations.get() {
            revocations.check(&principal)?;
        }
        Ok(principal)
    }

    fn verify_signed(&self, token: &str) -> Result<Principal, AuthError> {
        // Tokens we issue are well under a kilobyte; a huge one is refused before it is
        // decoded or cached.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::InvalidToken(format!(
                "token of {} bytes is over the {MAX_TOKEN_BYTES}-byte limit",
                token.len()
            )));
        }
        let inner = &self.inner;
        let now = inner.clock.now_secs();
        if let Some(principal) = inner.cache.get(token, now) {
            return Ok(principal);
        }
        // Read before the keys so a concurrent `replace_keys` makes this insert a no-op.
        let generation = inner.cache.generation();
        let principal = self.verify_uncached(token, now)?;
        if inner.cache.is_enabled() {
            let valid_until = principal
                .expires_at
                .min(now.saturating_add(inner.cache_ttl_secs));
            inner
                .cache
                .insert(token, principal.clone(), valid_until, now, generation);
        }
        Ok(principal)
    }

    /// Verifies the token in `authorization: Bearer <token>` (scheme case-insensitive).
    pub fn verify_metadata(&self, metadata: &MetadataMap) -> Result<Principal, AuthError> {
        self.verify(bearer_token(metadata)?)
    }

    /// A tonic interceptor: verifies and inserts the [`Principal`] into request extensions.
    /// Use with `XServer::with_interceptor(svc, verifier.interceptor())`; handlers read it
    /// with [`crate::principal_of`].
    pub fn interceptor(
        &self,
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone + Send + Sync + 'static
    {
        let verifier = self.clone();
        move |mut request: Request<()>| match verifier.verify_metadata(request.metadata()) {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                Ok(request)
            }
            Err(error) => {
                tracing::debug!(%error, "rejected request credentials");
                Err(error.into())
            }
        }
    }

    fn verify_uncached(&self, token: &str, now: i64) -> Result<Principal, AuthError> {
        let inner = &self.inner;
        let expected = inner.settings.algorithm;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::InvalidToken(format!("unreadable header: {e}")))?;
        reject_untrusted_headers(&header)?;
        if header.alg != expected.jwt_algorithm() {
            return Err(AuthError::DisallowedAlgorithm {
                found: format!("{:?}", header.alg),
                expected,
            });
        }
        let kid = header.kid.ok_or(AuthError::MissingKeyId)?;
        let keys = Arc::clone(&inner.keys.read().unwrap_or_else(PoisonError::into_inner));
        let Some(key) = keys.get(&kid) else {
            if let Some(hook) = inner.unknown_key.get() {
                hook(&kid);
            }
            return Err(AuthError::UnknownKey(kid));
        };
        if key.algorithm != expected {
            return Err(AuthError::InvalidToken(format!(
                "key {kid:?} is an {} key but this verifier accepts only {}",
                key.algorithm.as_str(),
                expected.as_str()
            )));
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &inner.validation)
            .map_err(map_jwt_error)?
            .claims;
        if now > claims.exp.saturating_add(inner.leeway_secs) {
            return Err(AuthError::Expired);
        }
        let latest_start = now.saturating_add(inner.leeway_secs);
        if claims.nbf.is_some_and(|nbf| nbf > latest_start) {
            return Err(AuthError::NotYetValid);
        }
        // A token from the future means a skewed or compromised issuer; honouring it would
        // stretch its life past what the issuer's clock allowed.
        if claims.iat > latest_start {
            return Err(AuthError::IssuedInFuture);
        }
        Principal::from_claims(claims).map_err(|reason| AuthError::InvalidClaims(reason.to_owned()))
    }
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

fn reject_untrusted_headers(header: &Header) -> Result<(), AuthError> {
    let present = [
        header.jwk.is_some(),
        header.jku.is_some(),
        header.x5u.is_some(),
        header.x5c.is_some(),
        header.crit.is_some(),
    ];
    match UNTRUSTED_HEADERS
        .iter()
        .zip(present)
        .find(|(_, present)| *present)
    {
        Some((name, _)) => Err(AuthError::UntrustedHeader(name)),
        None => Ok(()),
    }
}

fn bearer_token(metadata: &MetadataMap) -> Result<&str, AuthError> {
    bearer_token_of(
        metadata
            .get_all("authorization")
            .iter()
            .map(|value| value.to_str().ok()),
    )
}

/// The token of the one `authorization` value (`None`: not visible ASCII).
pub(crate) fn bearer_token_of<'a>(
    mut values: impl Iterator<Item = Option<&'a str>>,
) -> Result<&'a str, AuthError> {
    let value = values.next().ok_or(AuthError::MissingToken)?;
    // Two credentials leave it ambiguous which one a proxy or log line saw.
    if values.next().is_some() {
        return Err(AuthError::MalformedHeader);
    }
    let value = value.ok_or(AuthError::MalformedHeader)?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or(AuthError::MalformedHeader)?;
    let token = token.trim_start();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.contains(char::is_whitespace)
    {
        return Err(AuthError::MalformedHeader);
    }
    Ok(token)
}

fn map_jwt_error(error: jsonwebtoken::errors::Error) -> AuthError {
    match error.kind() {
        ErrorKind::InvalidSignature => AuthError::InvalidSignature,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::MissingRequiredClaim(claim) => {
            AuthError::InvalidClaims(format!("required claim `{claim}` is missing"))
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            AuthError::InvalidClaims(format!("claim `{claim}` has the wrong type"))
        }
        _ => AuthError::InvalidToken(error.to_string()),
    }
}

#[cfg(test)]
mod tests;
