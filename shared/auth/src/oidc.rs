//! ID tokens of external OpenID Connect providers (Google Workspace, Microsoft Entra ID,
//! Okta, any OIDC provider), verified as a relying party must (OpenID Connect Core
//! §3.1.3.7) against the provider's signing keys as an SSO connection stores them.
//!
//! Apart from Roster's own access tokens (`verify.rs`) because the two differ in every
//! respect that matters: identity providers sign with RSA or ECDSA, publish several keys
//! and rotate them on their own schedule, name the client in `aud`, and carry the nonce
//! of one sign-in. What is shared is the distrust: the algorithm is the key's, never the
//! token's choice (so `none`, HMAC keyed with a public key and algorithm swaps fail), a
//! header naming or embedding a key is refused, the key is found by `kid` only among the
//! stored ones, and time is the caller's clock. Nothing here fetches keys.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

/// The largest JWKS document an SSO connection stores: providers publish a handful of
/// keys (a few kilobytes, certificates included).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;
/// The most keys one JWKS may list.
pub const MAX_JWKS_KEYS: usize = 50;
/// The longest ID token considered: Entra ID's carry group claims and reach several
/// kilobytes; nothing legitimate comes near this.
pub const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;
/// RSA moduli below this are breakable; above, `rsa` refuses to verify.
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 4096;
/// OpenID Connect caps `sub` at 255 ASCII characters.
const MAX_SUBJECT_CHARS: usize = 255;
/// Header fields that name or embed a key: honouring one lets the token choose the key
/// that verifies it.
const UNTRUSTED_HEADERS: [&str; 5] = ["jwk", "jku", "x5u", "x5c", "crit"];

/// A signature algorithm identity providers use for ID tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdpAlgorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
}

impl IdpAlgorithm {
    const ALL: [IdpAlgorithm; 8] = [
        IdpAlgorithm::RS256,
        IdpAlgorithm::RS384,
        IdpAlgorithm::RS512,
        IdpAlgorithm::PS256,
        IdpAlgorithm::PS384,
        IdpAlgorithm::PS512,
        IdpAlgorithm::ES256,
        IdpAlgorithm::ES384,
    ];

    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdpAlgorithm::RS256 => "RS256",
            IdpAlgorithm::RS384 => "RS384",
            IdpAlgorithm::RS512 => "RS512",
            IdpAlgorithm::PS256 => "PS256",
            IdpAlgorithm::PS384 => "PS384",
            IdpAlgorithm::PS512 => "PS512",
            IdpAlgorithm::ES256 => "ES256",
            IdpAlgorithm::ES384 => "ES384",
        }
    }

    fn parse(name: &str) -> Option<IdpAlgorithm> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    fn jwt(self) -> Algorithm {
        match self {
            IdpAlgorithm::RS256 => Algorithm::RS256,
            IdpAlgorithm::RS384 => Algorithm::RS384,
            IdpAlgorithm::RS512 => Algorithm::RS512,
            IdpAlgorithm::PS256 => Algorithm::PS256,
            IdpAlgorithm::PS384 => Algorithm::PS384,
            IdpAlgorithm::PS512 => Algorithm::PS512,
            IdpAlgorithm::ES256 => Algorithm::ES256,
            IdpAlgorithm::ES384 => Algorithm::ES384,
        }
    }

    fn is_rsa(self) -> bool {
        !matches!(self, IdpAlgorithm::ES256 | IdpAlgorithm::ES384)
    }
}

impl fmt::Display for IdpAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone)]
struct IdpKey {
    algorithm: IdpAlgorithm,
    key: DecodingKey,
}

/// Why a JWKS document cannot serve an SSO connection. `Display` is written for the
/// administrator who pasted it.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    #[error("is not a JWK Set (a JSON object with a `keys` array): {0}")]
    NotAJwkSet(String),
    #[error("is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("lists more than {MAX_JWKS_KEYS} keys")]
    TooManyKeys,
    #[error("key {index}{}: {reason}", kid.as_ref().map(|kid| format!(" ({kid})")).unwrap_or_default())]
    BadKey {
        index: usize,
        kid: Option<String>,
        reason: String,
    },
    #[error("lists the key id '{0}' twice")]
    DuplicateKeyId(String),
    #[error(
        "has no key that can verify ID tokens: one with a `kid`, `use` sig (or none), and RSA of 2048 to 4096 bits (RS256, RS384, RS512, PS256, PS384, PS512) or EC on P-256 (ES256) or P-384 (ES384)"
    )]
    NoUsableKey,
}

/// An identity provider's signing keys, by `kid`. Keys for encryption, of types or
/// algorithms ID tokens are not verified with, are left out; a document left with none is
/// refused, as is one with a symmetric or a malformed key (a sign of a wrong paste).
#[derive(Clone)]
pub struct IdpKeys {
    keys: HashMap<String, IdpKey>,
}

impl IdpKeys {
    pub fn from_jwks_json(json: &str) -> Result<IdpKeys, JwksError> {
        if json.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge);
        }
        let document: Value =
            serde_json::from_str(json).map_err(|error| JwksError::NotAJwkSet(error.to_string()))?;
        let entries = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| JwksError::NotAJwkSet("there is no `keys` array".to_owned()))?;
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JwksError::TooManyKeys);
        }
        let mut keys = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let kid = entry
                .get("kid")
                .and_then(Value::as_str)
                .filter(|kid| !kid.is_empty())
                .map(str::to_owned);
            let bad = |reason: String| JwksError::BadKey {
                index,
                kid: kid.clone(),
                reason,
            };
            let Some(key) = usable_key(entry).map_err(bad)? else {
                continue;
            };
            let kid = kid.clone().ok_or_else(|| {
                bad("a signing key needs a `kid`, which ID tokens name in their header".to_owned())
            })?;
            if keys.insert(kid.clone(), key).is_some() {
                return Err(JwksError::DuplicateKeyId(kid));
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok(IdpKeys { keys })
    }

    /// The `kid`s of the usable keys, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.keys.keys().cloned().collect();
        ids.sort_unstable();
        ids
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl fmt::Debug for IdpKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<(&str, &str)> = self
            .keys
            .iter()
            .map(|(kid, key)| (kid.as_str(), key.algorithm.as_str()))
            .collect();
        keys.sort_unstable();
        f.debug_struct("IdpKeys").field("keys", &keys).finish()
    }
}

/// The key `entry` describes, `None` when it is not for verifying signatures with an
/// algorithm we accept, or why it is broken.
fn usable_key(entry: &Value) -> Result<Option<IdpKey>, String> {
    if entry.get("kty").and_then(Value::as_str) == Some("oct") {
        return Err(
            "symmetric (`oct`) keys must never be published; this is not a provider's public JWKS"
                .to_owned(),
        );
    }
    let jwk: Jwk = match serde_json::from_value(entry.clone()) {
        Ok(jwk) => jwk,
        Err(error) => return Err(format!("is not a JWK: {error}")),
    };
    match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => {}
        Some(_) => return Ok(None),
    }
    if let Some(operations) = &jwk.common.key_operations
        && !operations.contains(&KeyOperations::Verify)
    {
        return Ok(None);
    }
    let stated = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => match IdpAlgorithm::parse(&alg.to_string()) {
            Some(alg) => Some(alg),
            // Another algorithm (RSA-OAEP, EdDSA, …): not one ID tokens are verified with.
            None => return Ok(None),
        },
    };
    match &jwk.algorithm {
        AlgorithmParameters::RSA(params) => {
            let algorithm = stated.unwrap_or(IdpAlgorithm::RS256);
            if !algorithm.is_rsa() {
                return Err(format!("`alg` {algorithm} does not fit an RSA key"));
            }
            let n = decode_b64(&params.n, "n")?;
            let e = decode_b64(&params.e, "e")?;
            let bits = bit_length(&n);
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(format!(
                    "the RSA modulus has {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
                ));
            }
            if !usable_exponent(&e) {
                return Err("the RSA exponent `e` is not a usable public exponent".to_owned());
            }
            let key = DecodingKey::from_rsa_raw_components(&n, &e);
            Ok(Some(IdpKey { algorithm, key }))
        }
        AlgorithmParameters::EllipticCurve(params) => {
            let (algorithm, size) = match params.curve {
                EllipticCurve::P256 => (IdpAlgorithm::ES256, 32),
                EllipticCurve::P384 => (IdpAlgorithm::ES384, 48),
                _ => return Ok(None),
            };
            if stated.is_some_and(|stated| stated != algorithm) {
                return Err(format!(
                    "`alg` {} does not fit an EC key on this curve (expected {algorithm})",
                    stated.map(IdpAlgorithm::as_str).unwrap_or_default()
                ));
            }
            for (name, coordinate) in [("x", &params.x), ("y", &params.y)] {
                if decode_b64(coordinate, name)?.len() != size {
                    return Err(format!("the coordinate `{name}` must be {size} bytes"));
                }
            }
            let key = DecodingKey::from_ec_components(&params.x, &params.y)
                .map_err(|error| format!("is not an EC public key: {error}"))?;
            // Building a verifier parses the point: an error means it is not on the curve,
            // better learnt now than at every sign-in.
            jsonwebtoken::crypto::verify("", b"", &key, algorithm.jwt())
                .map_err(|_| "(x, y) is not a point on the curve".to_owned())?;
            Ok(Some(IdpKey { algorithm, key }))
        }
        _ => Ok(None),
    }
}

fn decode_b64(value: &str, name: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| format!("`{name}` is not base64url"))
}

/// An odd exponent from 3 to 2^33 - 1, the range `rsa` verifies with.
fn usable_exponent(big_endian: &[u8]) -> bool {
    let significant: Vec<u8> = big_endian
        .iter()
        .copied()
        .skip_while(|byte| *byte == 0)
        .collect();
    if significant.is_empty() || significant.len() > 8 {
        return false;
    }
    let value = significant
        .iter()
        .fold(0u64, |value, byte| (value << 8) | u64::from(*byte));
    value >= 3 && value % 2 == 1 && value < (1u64 << 33)
}

fn bit_length(big_endian: &[u8]) -> usize {
    let mut bytes = big_endian.iter().skip_while(|byte| **byte == 0);
    match bytes.next() {
        None => 0,
        Some(first) => {
            let rest = bytes.count();
            rest * 8 + (8 - usize::try_from(first.leading_zeros()).unwrap_or(8))
        }
    }
}

/// What a valid ID token must say for one SSO connection and one sign-in.
#[derive(Clone, Copy, Debug)]
pub struct IdTokenExpectations<'a> {
    /// The accepted `iss` values, compared exactly (Google's tokens say either form of
    /// its issuer; every other provider one).
    pub issuers: &'a [&'a str],
    /// The connection's client id: `aud` must contain it (and `azp`, when present, be it).
    pub client_id: &'a str,
    /// The nonce of this sign-in, as the caller's session kept it.
    pub nonce: &'a str,
    /// Now, in unix seconds, from the service's clock.
    pub now: i64,
    /// Clock skew tolerated between the provider and us, in seconds.
    pub leeway: i64,
}

/// What a verified ID token says about the person.
#[derive(Clone, Debug, PartialEq)]
pub struct IdToken {
    pub issuer: String,
    /// The provider's stable id of the person: the only claim to link an account by.
    pub subject: String,
    pub email: Option<String>,
    /// `email_verified`; a few providers send it as the string "true".
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Every claim, for provider-specific ones (Google's `hd`, Entra ID's `xms_edov`).
    pub claims: serde_json::Map<String, Value>,
}

impl IdToken {
    /// A claim's text, when it is a string.
    pub fn text_claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A claim that is `true` or the string "true".
    pub fn claim_is_true(&self, name: &str) -> bool {
        self.claims.get(name).is_some_and(is_true)
    }
}

fn is_true(value: &Value) -> bool {
    matches!(value, Value::Bool(true)) || value.as_str() == Some("true")
}

/// Why an ID token was refused. `Display` names the failed check precisely, for the
/// administrator testing a connection and for the audit log; a signing-in caller is told
/// less.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum IdTokenError {
    #[error("the ID token is longer than {MAX_ID_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("the ID token is not a signed JWT: {0}")]
    Malformed(String),
    #[error("the ID token's header carries `{0}`, which is never trusted")]
    UntrustedHeader(&'static str),
    #[error(
        "the ID token is signed with `{0}`, which is not accepted (RS256, RS384, RS512, PS256, PS384, PS512, ES256 or ES384)"
    )]
    DisallowedAlgorithm(String),
    #[error("the ID token's header names no `kid`")]
    MissingKeyId,
    #[error(
        "the ID token was signed with the key '{0}', which the connection's JWKS does not list (the provider may have rotated its keys: update the JWKS)"
    )]
    UnknownKey(String),
    #[error("the ID token says {token} but the key '{kid}' is for {key}")]
    AlgorithmMismatch {
        kid: String,
        key: IdpAlgorithm,
        token: String,
    },
    #[error("the ID token's signature does not verify with the key '{0}'")]
    InvalidSignature(String),
    #[error("the ID token's issuer '{found}' is not the connection's issuer '{expected}'")]
    WrongIssuer { found: String, expected: String },
    #[error("the ID token's audience does not include the connection's client id '{0}'")]
    WrongAudience(String),
    #[error("the ID token's authorized party (`azp`) is not the connection's client id '{0}'")]
    WrongAuthorizedParty(String),
    #[error("the ID token has no `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the ID token's `{0}` claim is malformed")]
    InvalidClaim(&'static str),
    #[error("the ID token expired")]
    Expired,
    #[error("the ID token is not valid yet (`nbf`)")]
    NotYetValid,
    #[error("the ID token was issued in the future (`iat`): check the provider's and our clocks")]
    IssuedInFuture,
    #[error("the ID token's nonce is not this sign-in's nonce")]
    NonceMismatch,
}

impl IdTokenError {
    /// Whether the token merely ran out, which a person fixes by signing in at the provider
    /// again (the one failure worth telling a signing-in caller apart).
    pub fn is_expiry(&self) -> bool {
        matches!(self, IdTokenError::Expired)
    }
}

/// The claims as they arrive; presence and types are checked after the signature.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(flatten)]
    all: serde_json::Map<String, Value>,
}

/// Verifies `token` with `keys` against `expected`.
pub fn verify_id_token(
    token: &str,
    keys: &IdpKeys,
    expected: &IdTokenExpectations<'_>,
) -> Result<IdToken, IdTokenError> {
    if token.len() > MAX_ID_TOKEN_BYTES {
        return Err(IdTokenError::TooLarge);
    }
    let header = read_header(token)?;
    for name in UNTRUSTED_HEADERS {
        if header.contains_key(name) {
            return Err(IdTokenError::UntrustedHeader(name));
        }
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| IdTokenError::Malformed("the header has no `alg`".to_owned()))?;
    let algorithm = IdpAlgorithm::parse(alg)
        .ok_or_else(|| IdTokenError::DisallowedAlgorithm(alg.to_owned()))?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .filter(|kid| !kid.is_empty())
        .ok_or(IdTokenError::MissingKeyId)?;
    let key = keys
        .keys
        .get(kid)
        .ok_or_else(|| IdTokenError::UnknownKey(kid.to_owned()))?;
    if key.algorithm != algorithm {
        return Err(IdTokenError::AlgorithmMismatch {
            kid: kid.to_owned(),
            key: key.algorithm,
            token: alg.to_owned(),
        });
    }

    let mut validation = Validation::new(key.algorithm.jwt());
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(expected.issuers);
    validation.set_audience(&[expected.client_id]);
    // Time is checked below against the service's clock, not the system's.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    let claims = match jsonwebtoken::decode::<RawClaims>(token, &key.key, &validation) {
        Ok(data) => data.claims.all,
        Err(error) => return Err(map_error(&error, kid, token, expected)),
    };

    let text = |name: &'static str| -> Result<Option<String>, IdTokenError> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(IdTokenError::InvalidClaim(name)),
        }
    };
    let number = |name: &'static str| -> Result<Option<i64>, IdTokenError> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_i64()
                .map(Some)
                .ok_or(IdTokenError::InvalidClaim(name)),
        }
    };
    let issuer = text("iss")?.ok_or(IdTokenError::MissingClaim("iss"))?;
    let subject = text("sub")?
        .filter(|sub| !sub.is_empty())
        .ok_or(IdTokenError::MissingClaim("sub"))?;
    if subject.chars().count() > MAX_SUBJECT_CHARS || subject.chars().any(char::is_control) {
        return Err(IdTokenError::InvalidClaim("sub"));
    }
    let expires_at = number("exp")?.ok_or(IdTokenError::MissingClaim("exp"))?;
    let issued_at = number("iat")?.ok_or(IdTokenError::MissingClaim("iat"))?;
    let not_before = number("nbf")?;
    if expected.now > expires_at.saturating_add(expected.leeway) {
        return Err(IdTokenError::Expired);
    }
    let latest_start = expected.now.saturating_add(expected.leeway);
    if not_before.is_some_and(|nbf| nbf > latest_start) {
        return Err(IdTokenError::NotYetValid);
    }
    if issued_at > latest_start {
        return Err(IdTokenError::IssuedInFuture);
    }
    // Several audiences: the one the token was issued to must be named (§3.1.3.7 3-5).
    let several_audiences = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|audiences| audiences.len() > 1);
    match text("azp")? {
        Some(azp) if azp != expected.client_id => {
            return Err(IdTokenError::WrongAuthorizedParty(
                expected.client_id.to_owned(),
            ));
        }
        None if several_audiences => {
            return Err(IdTokenError::WrongAuthorizedParty(
                expected.client_id.to_owned(),
            ));
        }
        _ => {}
    }
    let nonce = text("nonce")?.ok_or(IdTokenError::MissingClaim("nonce"))?;
    if expected.nonce.is_empty() || nonce != expected.nonce {
        return Err(IdTokenError::NonceMismatch);
    }
    let email_verified = match claims.get("email_verified") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(verified)) => Some(*verified),
        Some(Value::String(text)) if text == "true" || text == "false" => Some(text == "true"),
        Some(_) => return Err(IdTokenError::InvalidClaim("email_verified")),
    };
    Ok(IdToken {
        issuer,
        subject,
        email: text("email")?,
        email_verified,
        name: text("name")?,
        given_name: text("given_name")?,
        family_name: text("family_name")?,
        issued_at,
        expires_at,
        claims,
    })
}

/// The header as JSON; jsonwebtoken's own parser would refuse unknown algorithms (`none`)
/// with a less useful error.
fn read_header(token: &str) -> Result<serde_json::Map<String, Value>, IdTokenError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed(
            "it does not have three dot-separated parts".to_owned(),
        ));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| IdTokenError::Malformed("the header is not base64url".to_owned()))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(IdTokenError::Malformed(
            "the header is not a JSON object".to_owned(),
        )),
    }
}

fn map_error(
    error: &jsonwebtoken::errors::Error,
    kid: &str,
    token: &str,
    expected: &IdTokenExpectations<'_>,
) -> IdTokenError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => IdTokenError::InvalidSignature(kid.to_owned()),
        ErrorKind::InvalidIssuer => IdTokenError::WrongIssuer {
            // The signature verified, so the payload is the provider's word.
            found: payload_issuer(token).unwrap_or_default(),
            expected: expected
                .issuers
                .first()
                .copied()
                .unwrap_or_default()
                .to_owned(),
        },
        ErrorKind::InvalidAudience => IdTokenError::WrongAudience(expected.client_id.to_owned()),
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => IdTokenError::MissingClaim("exp"),
            "iss" => IdTokenError::MissingClaim("iss"),
            "aud" => IdTokenError::MissingClaim("aud"),
            "sub" => IdTokenError::MissingClaim("sub"),
            _ => IdTokenError::Malformed(format!("a required claim is missing: {claim}")),
        },
        ErrorKind::InvalidClaimFormat(claim) => match claim.as_str() {
            "exp" => IdTokenError::InvalidClaim("exp"),
            "iss" => IdTokenError::InvalidClaim("iss"),
            "aud" => IdTokenError::InvalidClaim("aud"),
            "sub" => IdTokenError::InvalidClaim("sub"),
            "nbf" => IdTokenError::InvalidClaim("nbf"),
            _ => IdTokenError::Malformed(format!("a claim has the wrong type: {claim}")),
        },
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            IdTokenError::DisallowedAlgorithm(error.to_string())
        }
        _ => IdTokenError::Malformed(error.to_string()),
    }
}

fn payload_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value
        .get("iss")?
        .as_str()
        .map(|iss| iss.chars().take(200).collect())
}

#[cfg(test)]
mod tests;
