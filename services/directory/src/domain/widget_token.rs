//! Verification of vendor-signed widget tokens.
//!
//! A vendor's backend vouches for one of its end users by signing a JWT that carries
//! Fogbender's claim names (`userId`, `userEmail`, `userName`, `userAvatarUrl`, `customerId`,
//! `customerName`). The directory imports (or updates) that customer and user once the
//! signature checks out, so this module is the only gate between an anonymous browser and a
//! row in the directory: it is deliberately strict about algorithms and keys and forgiving
//! only where real vendors' tokens need it (numeric user ids). Tokens must expire, within a
//! lifetime the workspace sets.
//!
//! Pure code: no clock, no database, no transport. The caller loads the workspace's secrets
//! and registered keys and passes the current time in.
//!
//! Accepted: HS256 with any of the workspace's widget secrets (two during a rotation grace
//! period), RS256 and ES256 (P-256) with a public key the vendor registered. Everything else
//! is rejected before any key is touched; key-bearing headers (`jku`, `x5u`, `jwk`, `x5c`) are
//! never read, so a token cannot bring its own key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// Clock skew tolerated between the vendor's signer and us, for `exp`, `nbf` and `iat`.
pub const CLOCK_LEEWAY_SECONDS: i64 = 60;

/// Widget tokens are a few hundred bytes; refusing huge inputs up front keeps base64/JSON work
/// bounded for a request that has not proven anything yet.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Below this an RSA key is factorable with realistic effort (NIST SP 800-57).
const MIN_RSA_BITS: usize = 2048;

/// Attacker-controlled header values (`alg`, `kid`) end up in error messages and logs; cap them.
const MAX_ECHOED_CHARS: usize = 64;

/// The end user a vendor vouched for. All strings are trimmed and non-empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetIdentity {
    pub user_id: String,
    pub user_email: String,
    pub user_name: Option<String>,
    pub user_avatar_url: Option<String>,
    pub customer_id: String,
    pub customer_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WidgetKeyAlgorithm {
    Rs256,
    Es256,
}

impl WidgetKeyAlgorithm {
    /// The JOSE name (`RS256`, `ES256`), exactly; anything else is `None`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }
}

/// A public key a vendor registered for a workspace. `kid` must be unique per workspace (the
/// caller enforces it when registering); the algorithm is pinned to the key so that a token's
/// header can never make us use a key with a different algorithm than it was registered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredWidgetKey {
    pub kid: String,
    pub algorithm: WidgetKeyAlgorithm,
    pub public_key_pem: String,
}

/// Everything a workspace can verify widget tokens with.
///
/// `secrets` holds the current widget secret and, during a rotation grace period, the previous
/// one; every non-empty secret is tried. Empty secrets are ignored, because an empty HMAC key is
/// known to everyone.
#[derive(Debug, Clone, Default)]
pub struct WidgetVerificationKeys {
    pub secrets: Vec<Vec<u8>>,
    pub public_keys: Vec<RegisteredWidgetKey>,
}

/// Everything a workspace checks widget tokens with: its keys and how long a token may live.
#[derive(Debug, Clone)]
pub struct WidgetTokenPolicy {
    pub keys: WidgetVerificationKeys,
    /// The longest a token may live, in seconds: `exp - iat`, or `exp - now` without `iat`.
    pub max_lifetime_seconds: i64,
}

/// Why a widget token was refused.
///
/// The API maps `Malformed` and `BadClaim` to `INVALID_ARGUMENT` (the vendor built the token
/// wrong, and fixing it is on them) and every other variant to `UNAUTHENTICATED` (the token does
/// not prove who it claims to be); see [`WidgetTokenError::is_signature_problem`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WidgetTokenError {
    #[error("widget token is not a well-formed JWT")]
    Malformed,
    #[error(
        "widget token algorithm {0} is not accepted; sign with HS256 and the workspace's widget secret, or RS256/ES256 with a registered key"
    )]
    AlgorithmNotAccepted(String),
    #[error(
        "the workspace has no widget secret or key to verify this token; rotate a widget secret or register a public key first"
    )]
    NoKeys,
    /// Carries the header's `kid`; an empty string means the header had no `kid` and the
    /// workspace has several keys of the token's algorithm, so none could be chosen.
    #[error("widget token names unknown key id '{0}'")]
    UnknownKey(String),
    #[error("widget token signature does not verify")]
    BadSignature,
    #[error("widget token expired")]
    Expired,
    #[error("widget token is not valid yet")]
    NotYetValid,
    #[error("widget token claim {claim} {problem}")]
    BadClaim {
        claim: &'static str,
        problem: String,
    },
}

impl WidgetTokenError {
    /// Every variant is the caller's (vendor's) doing, never a fault of ours: a stored key that
    /// no longer parses surfaces as `BadSignature`, and keys are checked by
    /// [`validate_public_key`] when registered so that should not happen.
    #[must_use]
    pub fn is_client_error(&self) -> bool {
        true
    }

    /// True when the token failed to prove its origin or is outside its validity window
    /// (→ `UNAUTHENTICATED`); false for `Malformed` and `BadClaim` (→ `INVALID_ARGUMENT`).
    #[must_use]
    pub fn is_signature_problem(&self) -> bool {
        !matches!(self, Self::Malformed | Self::BadClaim { .. })
    }
}

/// Checks that a registered PEM parses for its algorithm (used when the vendor registers a key).
///
/// Accepts one SubjectPublicKeyInfo block (`-----BEGIN PUBLIC KEY-----`), or for RS256 also a
/// PKCS#1 `-----BEGIN RSA PUBLIC KEY-----`. RS256 keys need at least 2048 bits; ES256 keys must
/// be on P-256. The kid must be non-empty and carry no surrounding whitespace, since tokens
/// name it verbatim.
///
/// # Errors
///
/// A sentence meant for the vendor saying what is wrong with the key (private key pasted,
/// certificate, wrong curve, RSA key too small, several PEM blocks, not a key at all).
pub fn validate_public_key(key: &RegisteredWidgetKey) -> Result<(), String> {
    if key.kid.trim().is_empty() {
        return Err("the key id (kid) must not be empty".to_owned());
    }
    if key.kid != key.kid.trim() {
        return Err("the key id (kid) must not start or end with whitespace".to_owned());
    }
    let label = single_pem_label(&key.public_key_pem)?;
    if label.contains("PRIVATE") {
        return Err("this is a private key; register only the public key (openssl pkey -in key.pem -pubout) and keep the private key on your servers".to_owned());
    }
    if label == "CERTIFICATE" {
        return Err("certificates are not accepted; register the public key (openssl x509 -in cert.pem -pubkey -noout)".to_owned());
    }
    match key.algorithm {
        WidgetKeyAlgorithm::Rs256 => validate_rsa_key(&label, &key.public_key_pem),
        WidgetKeyAlgorithm::Es256 => validate_ec_key(&label, &key.public_key_pem),
    }
}

/// jsonwebtoken picks the first PEM block it finds; a paste with several blocks is ambiguous,
/// so we insist on exactly one and return its label.
fn single_pem_label(pem: &str) -> Result<String, String> {
    const BEGIN: &str = "-----BEGIN ";
    let mut labels = pem.lines().filter_map(|line| {
        let rest = line.trim().strip_prefix(BEGIN)?;
        Some(rest.strip_suffix("-----").unwrap_or(rest).to_owned())
    });
    match (labels.next(), labels.next()) {
        (Some(label), None) => Ok(label),
        (None, _) => {
            Err("not a PEM-encoded public key (expected -----BEGIN PUBLIC KEY-----)".to_owned())
        }
        (Some(_), Some(_)) => Err("the PEM must contain exactly one key".to_owned()),
    }
}

fn validate_rsa_key(label: &str, pem: &str) -> Result<(), String> {
    if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
        return Err(format!(
            "unexpected PEM block '{label}'; expected an RSA public key"
        ));
    }
    let not_rsa = || "not a valid RSA public key (2048 to 4096 bits)".to_owned();
    let decoding = DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| not_rsa())?;
    // from_rsa_pem only unwraps the PEM; converting to a JWK makes the RSA backend parse the
    // DER, which is the only public way to reject a key that would fail at every verification.
    let jwk = Jwk::from_decoding_key(&decoding, Some(Algorithm::RS256)).map_err(|_| not_rsa())?;
    let AlgorithmParameters::RSA(params) = &jwk.algorithm else {
        return Err(not_rsa());
    };
    let modulus = URL_SAFE_NO_PAD.decode(&params.n).map_err(|_| not_rsa())?;
    let bits = bit_length(&modulus);
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA keys need at least {MIN_RSA_BITS} bits; this one has {bits}"
        ));
    }
    Ok(())
}

fn validate_ec_key(label: &str, pem: &str) -> Result<(), String> {
    if label != "PUBLIC KEY" {
        return Err(format!(
            "unexpected PEM block '{label}'; expected an EC P-256 public key"
        ));
    }
    let not_p256 = || "not a valid EC P-256 public key (ES256 needs the P-256 curve)".to_owned();
    let decoding = DecodingKey::from_ec_pem(pem.as_bytes()).map_err(|_| not_p256())?;
    // Building the ES256 verifier decodes the point on P-256 (a P-384 key or a point off the
    // curve fails here); the dummy signature is expected not to verify, which is fine.
    jsonwebtoken::crypto::verify("AA", b"probe", &decoding, Algorithm::ES256)
        .map(|_| ())
        .map_err(|_| not_p256())
}

fn bit_length(big_endian: &[u8]) -> usize {
    let mut bytes = big_endian.iter().skip_while(|byte| **byte == 0);
    match bytes.next() {
        None => 0,
        Some(first) => (8 - first.leading_zeros() as usize) + 8 * bytes.count(),
    }
}

/// Verifies a widget token and returns the identity it vouches for.
///
/// `now_unix` is the current time in seconds since the Unix epoch. `exp` is required and
/// the token may live at most `max_lifetime_seconds` (`exp - iat`, or `exp - now_unix` when
/// there is no `iat`): a stolen token must stop working, and a vendor that minted
/// long-lived tokens learns it from the error, which names the claim and the maximum. `exp`
/// and `nbf` are checked with [`CLOCK_LEEWAY_SECONDS`]; an `iat` further in the future than
/// the leeway is refused.
///
/// Claims: `userId`, `userEmail`, `customerId`, `customerName` are required strings;
/// `userName`, `userAvatarUrl` are optional strings (`null` counts as absent). Values are
/// trimmed and an empty required value counts as missing. `userId` may also be a JSON integer
/// (many vendors use numeric primary keys); it becomes its decimal string, so `42` and `"42"`
/// name the same user. Any other JSON type is a `BadClaim`. Formats (email, URL) are not
/// checked here.
///
/// # Errors
///
/// Any [`WidgetTokenError`]; nothing is learned from a token that fails.
pub fn verify_widget_token(
    token: &str,
    keys: &WidgetVerificationKeys,
    max_lifetime_seconds: i64,
    now_unix: i64,
) -> Result<WidgetIdentity, WidgetTokenError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_BYTES {
        return Err(WidgetTokenError::Malformed);
    }
    let token = parse_token(token)?;

    // Allow-list on the exact header string, before any key is considered: this is what stops
    // `none`, HS384/512, PS256, EdDSA and any algorithm/key-type confusion.
    let (algorithm, wanted) = match token.alg.as_str() {
        "HS256" => (Algorithm::HS256, None),
        "RS256" => (Algorithm::RS256, Some(WidgetKeyAlgorithm::Rs256)),
        "ES256" => (Algorithm::ES256, Some(WidgetKeyAlgorithm::Es256)),
        other => return Err(WidgetTokenError::AlgorithmNotAccepted(echo(other))),
    };

    let claims = match wanted {
        // Secrets have no ids, so a `kid` on an HS256 token is ignored and each secret tried.
        None => {
            let secrets: Vec<DecodingKey> = keys
                .secrets
                .iter()
                .filter(|secret| !secret.is_empty())
                .map(|secret| DecodingKey::from_secret(secret))
                .collect();
            if secrets.is_empty() {
                return Err(WidgetTokenError::NoKeys);
            }
            verify_with_any(&token, algorithm, &secrets)?
        }
        Some(wanted) => {
            let candidates = select_public_keys(keys, &wanted, token.kid.as_deref())?;
            let decoding: Vec<DecodingKey> = candidates
                .into_iter()
                .filter_map(|key| public_decoding_key(key).ok())
                .collect();
            verify_with_any(&token, algorithm, &decoding)?
        }
    };

    check_validity_window(&claims, now_unix, max_lifetime_seconds)?;
    identity_from_claims(&claims)
}

/// The three segments of a compact JWS, plus what we read from its header.
struct ParsedToken<'t> {
    alg: String,
    kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'t str,
    payload: &'t str,
    signature: &'t str,
}

/// jsonwebtoken's own header type cannot represent `alg: "none"` or unknown algorithms (it fails
/// with a JSON error), so the header is read here to tell "malformed" from "algorithm refused"
/// and to get at `kid` without trusting anything else in it.
fn parse_token(token: &str) -> Result<ParsedToken<'_>, WidgetTokenError> {
    let mut segments = token.split('.');
    // Exactly three segments: a JWE (five) or a detached payload is not a widget token.
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(WidgetTokenError::Malformed);
    };
    let signing_input = &token[..header.len() + 1 + payload.len()];
    let header: Map<String, Value> = decode_json_segment(header)?;

    // RFC 7515 §4.1.11: a recipient that does not understand every extension listed in `crit`
    // must reject the token, and we understand none.
    if header.contains_key("crit") {
        return Err(WidgetTokenError::Malformed);
    }
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.clone(),
        _ => return Err(WidgetTokenError::Malformed),
    };
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) if kid.is_empty() => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(WidgetTokenError::Malformed),
    };
    Ok(ParsedToken {
        alg,
        kid,
        signing_input,
        payload,
        signature,
    })
}

fn decode_json_segment(segment: &str) -> Result<Map<String, Value>, WidgetTokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| WidgetTokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| WidgetTokenError::Malformed)
}

/// Picks the registered keys a public-key token may be checked against. The key's registered
/// algorithm must equal the header's, so an RS256 token is never checked with an ES256 key.
fn select_public_keys<'k>(
    keys: &'k WidgetVerificationKeys,
    wanted: &WidgetKeyAlgorithm,
    kid: Option<&str>,
) -> Result<Vec<&'k RegisteredWidgetKey>, WidgetTokenError> {
    let same_algorithm: Vec<&RegisteredWidgetKey> = keys
        .public_keys
        .iter()
        .filter(|key| key.algorithm == *wanted)
        .collect();
    match kid {
        Some(kid) => {
            let named: Vec<&RegisteredWidgetKey> = keys
                .public_keys
                .iter()
                .filter(|key| key.kid == kid)
                .collect();
            if named.is_empty() {
                return Err(if keys.public_keys.is_empty() {
                    WidgetTokenError::NoKeys
                } else {
                    WidgetTokenError::UnknownKey(echo(kid))
                });
            }
            let usable: Vec<&RegisteredWidgetKey> = named
                .into_iter()
                .filter(|key| key.algorithm == *wanted)
                .collect();
            if usable.is_empty() {
                // The kid exists but was registered for the other algorithm.
                return Err(WidgetTokenError::AlgorithmNotAccepted(
                    wanted.as_str().to_owned(),
                ));
            }
            Ok(usable)
        }
        None => match same_algorithm.len() {
            0 => Err(WidgetTokenError::NoKeys),
            1 => Ok(same_algorithm),
            // Trying all of them would work, but the contract is that a vendor with several
            // keys names the one it used; an empty kid in the error says "you sent none".
            _ => Err(WidgetTokenError::UnknownKey(String::new())),
        },
    }
}

fn public_decoding_key(
    key: &RegisteredWidgetKey,
) -> Result<DecodingKey, jsonwebtoken::errors::Error> {
    match key.algorithm {
        WidgetKeyAlgorithm::Rs256 => DecodingKey::from_rsa_pem(key.public_key_pem.as_bytes()),
        WidgetKeyAlgorithm::Es256 => DecodingKey::from_ec_pem(key.public_key_pem.as_bytes()),
    }
}

/// Tries each key in turn; the first that verifies wins, and only then is the payload read.
///
/// This uses jsonwebtoken's signature primitive rather than `decode`: `decode` also validates
/// registered claims (against the system clock, and it refuses some wrong-typed `exp`/`nbf` as
/// a JSON error that cannot be told apart from a broken token), whereas time here is passed in
/// and claim problems must surface as `BadClaim`.
fn verify_with_any(
    token: &ParsedToken<'_>,
    algorithm: Algorithm,
    keys: &[DecodingKey],
) -> Result<Map<String, Value>, WidgetTokenError> {
    let mut verified = false;
    for key in keys {
        match jsonwebtoken::crypto::verify(
            token.signature,
            token.signing_input.as_bytes(),
            key,
            algorithm,
        ) {
            Ok(true) => {
                verified = true;
                break;
            }
            Err(error) if matches!(error.kind(), ErrorKind::Base64(_)) => {
                return Err(WidgetTokenError::Malformed);
            }
            // Ok(false) is a signature made with another key. Any other error comes from the
            // key itself (a stored PEM that does not parse cannot verify anything): treat both
            // alike and try the next key.
            Ok(false) | Err(_) => {}
        }
    }
    if !verified {
        return Err(WidgetTokenError::BadSignature);
    }
    // Only a verified payload is parsed, so unauthenticated input never reaches the claim
    // checks (or their error messages).
    decode_json_segment(token.payload)
}

fn check_validity_window(
    claims: &Map<String, Value>,
    now: i64,
    max_lifetime: i64,
) -> Result<(), WidgetTokenError> {
    let exp = numeric_date(claims, "exp")?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    let Some(exp) = exp else {
        return Err(WidgetTokenError::BadClaim {
            claim: "exp",
            problem: format!(
                "is missing; widget tokens must expire, at most {max_lifetime} seconds after they are issued"
            ),
        });
    };
    if now.saturating_sub(CLOCK_LEEWAY_SECONDS) >= exp {
        return Err(WidgetTokenError::Expired);
    }
    if let Some(nbf) = nbf
        && nbf > now.saturating_add(CLOCK_LEEWAY_SECONDS)
    {
        return Err(WidgetTokenError::NotYetValid);
    }
    // A token "issued" in the future comes from a broken clock or a forger planning ahead.
    if let Some(iat) = iat
        && iat > now.saturating_add(CLOCK_LEEWAY_SECONDS)
    {
        return Err(WidgetTokenError::NotYetValid);
    }
    let (start, since) = match iat {
        Some(iat) => (iat, "iat"),
        None => (now, "now (the token has no iat)"),
    };
    let lifetime = exp.saturating_sub(start);
    if lifetime > max_lifetime {
        return Err(WidgetTokenError::BadClaim {
            claim: "exp",
            problem: format!(
                "is {lifetime} seconds after {since}; this workspace accepts widget tokens that live at most {max_lifetime} seconds"
            ),
        });
    }
    Ok(())
}

/// Reads a NumericDate. Absent is fine; anything present must be a number, `null` included,
/// because treating a wrong-typed `exp` as absent would turn an expiring token into an eternal
/// one (the jsonwebtoken CVE-2026-25537 pattern).
fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<i64>, WidgetTokenError> {
    let Some(value) = claims.get(claim) else {
        return Ok(None);
    };
    let bad = || WidgetTokenError::BadClaim {
        claim,
        problem: "must be a number of seconds since the Unix epoch".to_owned(),
    };
    let Value::Number(number) = value else {
        return Err(bad());
    };
    if let Some(seconds) = number.as_i64() {
        return Ok(Some(seconds));
    }
    if number.as_u64().is_some() {
        // Beyond i64::MAX seconds: effectively never.
        return Ok(Some(i64::MAX));
    }
    match number.as_f64() {
        // RFC 7519 allows fractional seconds; flooring is at most one second off, well inside
        // the leeway. `as` saturates for out-of-range floats.
        Some(seconds) if seconds.is_finite() => Ok(Some(seconds.floor() as i64)),
        _ => Err(bad()),
    }
}

fn identity_from_claims(claims: &Map<String, Value>) -> Result<WidgetIdentity, WidgetTokenError> {
    Ok(WidgetIdentity {
        user_id: user_id(claims)?,
        user_email: required_text(claims, "userEmail")?,
        user_name: optional_text(claims, "userName")?,
        user_avatar_url: optional_text(claims, "userAvatarUrl")?,
        customer_id: required_text(claims, "customerId")?,
        customer_name: required_text(claims, "customerName")?,
    })
}

fn user_id(claims: &Map<String, Value>) -> Result<String, WidgetTokenError> {
    const CLAIM: &str = "userId";
    match claims.get(CLAIM) {
        // Integers only: a float id (1.5, 1e3) has no canonical decimal form to match on later.
        Some(Value::Number(number)) if number.is_i64() || number.is_u64() => Ok(number.to_string()),
        None | Some(Value::Null | Value::String(_)) => required_text(claims, CLAIM),
        Some(_) => Err(WidgetTokenError::BadClaim {
            claim: CLAIM,
            problem: "must be a string or an integer".to_owned(),
        }),
    }
}

const MUST_BE_STRING: &str = "must be a string";

fn required_text(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<String, WidgetTokenError> {
    optional_text(claims, claim)?.ok_or_else(|| WidgetTokenError::BadClaim {
        claim,
        problem: "is missing".to_owned(),
    })
}

/// `null` counts as absent: vendors' serializers commonly emit `"userName": null` for a user
/// without a name.
fn optional_text(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<String>, WidgetTokenError> {
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => {
            let text = text.trim();
            Ok((!text.is_empty()).then(|| text.to_owned()))
        }
        Some(_) => Err(WidgetTokenError::BadClaim {
            claim,
            problem: MUST_BE_STRING.to_owned(),
        }),
    }
}

/// Header values are attacker-controlled and end up in error messages: keep them short and
/// printable.
fn echo(value: &str) -> String {
    value
        .chars()
        .take(MAX_ECHOED_CHARS)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    // Throwaway keys generated once with `openssl genpkey`/`openssl pkey -pubout` for these
    // tests only; they protect nothing.
    const RSA_PRIVATE: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCazh8Q2G1dn9jH
iakboqbl6hVNnb7AaDgNdkcxwJrAQ2QSMOPzi2tYM+75PCwzuynPVe+nYCsZxHlS
sUsPvu4TOo2A4t1Rk9mTiPdwLruhDbTV7MhoTofET85vOmaDkYp3Bwd+EdmEz4Dv
LWGAb4upOkCCLzBrNcZMsm0VKYnD1pX5AzrddgQfizcyXe/5kt3qsnmv3VNX/9ul
QOUNr7ZY0n3x122AF5LHMjE2vxLScFzr8CpBhh9FsWfhm7akzTuwIa+GbK4Y2ne1
E9C/3ntl8ITov/1Kankfz4yMeVoi1S8vz8y5uQTIuGxPYQ8j1eX7Kw/dry7RQWu1
njO928a3AgMBAAECggEAJFNa2daXb0FLmqMUch4sQMY5ooFyGe86u/n1wdh618PY
jyY2z1b3ZPamzIhQrQDt0i/NsT5xTrYabAubXAIHFq8GNmjF21cw1pxsx7/Hmoa/
WPWbn1JSLIA3pkUTeiskTULygKRKoQ4aKMXC2+MQ6DB5o7LUD0xKkIPL8gvRvojW
LTR/pXp02xcddLRJ0s6+AP0z2GyF3r+13erEEP73UdIQXM/upnqtvIMIzb/mvG/B
UcvTxBu3ug126fj95lEOkGu2BlsridrmxxLiLS4UifpABo50JlXhNxJC52gM3R0G
KTg3Ifeu73QKuISUn/8TpJA+cGihjmVMCi3135EWIQKBgQDLBOwsd6vu8sJwqaVF
ICuJH2dqGHMH7QcOO9Ts3isr/2sJLW+8lqYoXmUUjbNc6ywu6h2X5cruH4x4u4NN
SbOiPUSZfLv5ttL8XV8cf/V1uc0tFpoD+jYxbdjFpclBe0ICFi6OO9I/gf03ZU1h
1MTB9kLzCcsSStZY5nO1Gel24QKBgQDDNCsVp+qWhtWq5TbXBxsXxaem8t+5J/nq
cP5m1vLpGvbwR2JQmJW+SdvlsEAUwAwLBf1172/aJjdLw2hPId6heQSuVAwlcCFB
wypZkxBrykWeTk62ifWL44vbLIVtMRPsw+S9gsHKsUdAdTIpsw0vT8KVMEMQdtKk
N8PXqoOolwKBgHEwlmiYdDCuAoCD5RQsQnmaG7NIXGIP4f4ql6VUnOdT6Z5dSc3w
hEU/k8Wo11a3+5NQjh1RThoDVvM9QJCHxfJvjF6y767jIrD3cf7WzMjNRbqcvlP3
Xd2jK9fOfe3XRc8aBOziJ2+nDsGi5kjkMqsdnOgaDrFtLiK0odBX2RWhAoGBALjj
nrNiWmW8zICTnn/IsTaw9fzBKnp7jNEruSq7CVUVPzOSyWJBRAP6fRdu+yMsS7vd
LpcX9L+RVuqh6Riaof4bW/2qid6j+DwLmP9CtlkCOzKYRSHMRhD7s6oi3zXvOEoX
uX5ubROJGk3JM3wfpatcRpd8IOllQlpcn1iUnyN9AoGAcehJzH9Zfk+HuAx4ltbd
MPIS2ImjIIMlvW9PKxbqIc+0yOh/2PQVbUQ75jZWTQux8mx5dAVQk1l4e1EEd+V6
fV4JhhXLYmNBWPiDysYfhp2ncKVjNyYX8KZxadvObNZPATLaab3uItQWYjNc11Uk
+c51YM1zvfjFRtZ2XFT/bF4=
-----END PRIVATE KEY-----
";

    const RSA_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAms4fENhtXZ/Yx4mpG6Km
5eoVTZ2+wGg4DXZHMcCawENkEjDj84trWDPu+TwsM7spz1Xvp2ArGcR5UrFLD77u
EzqNgOLdUZPZk4j3cC67oQ201ezIaE6HxE/Obzpmg5GKdwcHfhHZhM+A7y1hgG+L
qTpAgi8wazXGTLJtFSmJw9aV+QM63XYEH4s3Ml3v+ZLd6rJ5r91TV//bpUDlDa+2
WNJ98ddtgBeSxzIxNr8S0nBc6/AqQYYfRbFn4Zu2pM07sCGvhmyuGNp3tRPQv957
ZfCE6L/9Smp5H8+MjHlaItUvL8/MubkEyLhsT2EPI9Xl+ysP3a8u0UFrtZ4zvdvG
twIDAQAB
-----END PUBLIC KEY-----
";

    const RSA_PUBLIC_PKCS1: &str = "\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAms4fENhtXZ/Yx4mpG6Km5eoVTZ2+wGg4DXZHMcCawENkEjDj84tr
WDPu+TwsM7spz1Xvp2ArGcR5UrFLD77uEzqNgOLdUZPZk4j3cC67oQ201ezIaE6H
xE/Obzpmg5GKdwcHfhHZhM+A7y1hgG+LqTpAgi8wazXGTLJtFSmJw9aV+QM63XYE
H4s3Ml3v+ZLd6rJ5r91TV//bpUDlDa+2WNJ98ddtgBeSxzIxNr8S0nBc6/AqQYYf
RbFn4Zu2pM07sCGvhmyuGNp3tRPQv957ZfCE6L/9Smp5H8+MjHlaItUvL8/MubkE
yLhsT2EPI9Xl+ysP3a8u0UFrtZ4zvdvGtwIDAQAB
-----END RSA PUBLIC KEY-----
";

    const EC_PRIVATE: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgElgl7bwNmJLbbX8X
Y22N9izZzGVRD4fZo2GGaxVE3vihRANCAAQxOfmEFaf4oE4Ni2BwjoSriIZxh6u0
VSQPRqQN6WNeTBeorhKTrs2N213VhuDf00TpiQgrEqT33Md/TNUTzksu
-----END PRIVATE KEY-----
";

    const EC_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEMTn5hBWn+KBODYtgcI6Eq4iGcYer
tFUkD0akDeljXkwXqK4Sk67Njdtd1Ybg39NE6YkIKxKk99zHf0zVE85LLg==
-----END PUBLIC KEY-----
";

    const ATTACKER_EC_PRIVATE: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgFvGX1tNYsr5jWUJ4
wrA2kt/9coV0D7EGoTYTRWosLFmhRANCAARf/f7jacybCJgWZVCxEI/2/jKg/GHu
fBTycywHWjMifXyvgJ0Efi9qO3LTrfZT745mNeP6JGYKXHtwluwL7Mxy
-----END PRIVATE KEY-----
";

    const EC_P384_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEYBVWycpYkHxBm3q4oix09FVAniyVCMwJ
iKrh6bqijpA0elEXk1mDBRSvtczrZ3pqd97BzWgBrjZf9R1Sie1DHIZBryMW0Z0s
IXtHesxShjojzoKoVSGeuwS4rZHv5sQV
-----END PUBLIC KEY-----
";

    const RSA_1024_PUBLIC: &str = "\
-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDF/p7qE1atszx/WWEX79jBjO0z
+yd7z1iO7XObo3cf+owtpt8zr4vc3ICEKNQ9KS9TJXaZ0d7ygFMIQFHlFi8B8WuF
Mowq+2nBJEfjHs/+PyRbps4BAPzgZt9t76K1CJ7FPCbdwSR0ghY+SM5NzGML9W2f
strcCd9hsjgaJN4VgQIDAQAB
-----END PUBLIC KEY-----
";

    const NOW: i64 = 1_800_000_000;
    const LIFETIME: i64 = 86_400;
    const SECRET: &[u8] = b"current-widget-secret-0123456789abcdef";
    const PREVIOUS_SECRET: &[u8] = b"previous-widget-secret-0123456789abcdef";

    fn claims() -> Value {
        json!({
            "userId": "u-1",
            "userEmail": "kirk@example.com",
            "userName": "Captain Kirk",
            "userAvatarUrl": "https://example.com/kirk.png",
            "customerId": "uss001",
            "customerName": "USS Enterprise",
            "iat": NOW,
            "exp": NOW + 3600,
        })
    }

    fn kirk() -> WidgetIdentity {
        WidgetIdentity {
            user_id: "u-1".into(),
            user_email: "kirk@example.com".into(),
            user_name: Some("Captain Kirk".into()),
            user_avatar_url: Some("https://example.com/kirk.png".into()),
            customer_id: "uss001".into(),
            customer_name: "USS Enterprise".into(),
        }
    }

    fn hs256(claims: &Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn signed(alg: Algorithm, kid: Option<&str>, claims: &Value, private_pem: &str) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
            Algorithm::ES256 => EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap(),
            other => panic!("no test signer for {other:?}"),
        };
        encode(&header, claims, &key).unwrap()
    }

    /// Builds a token from raw JSON parts and raw signature bytes, for headers jsonwebtoken
    /// refuses to produce.
    fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// HMAC-SHA256 over header.payload, via jsonwebtoken's low-level signer.
    fn hmac_token(header: &Value, claims: &Value, secret: &[u8]) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(secret),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{message}.{signature}")
    }

    fn secrets() -> WidgetVerificationKeys {
        WidgetVerificationKeys {
            secrets: vec![SECRET.to_vec(), PREVIOUS_SECRET.to_vec()],
            public_keys: vec![],
        }
    }

    fn registered(kid: &str, algorithm: WidgetKeyAlgorithm, pem: &str) -> RegisteredWidgetKey {
        RegisteredWidgetKey {
            kid: kid.into(),
            algorithm,
            public_key_pem: pem.into(),
        }
    }

    fn public_keys() -> WidgetVerificationKeys {
        WidgetVerificationKeys {
            secrets: vec![],
            public_keys: vec![
                registered("rsa-1", WidgetKeyAlgorithm::Rs256, RSA_PUBLIC),
                registered("ec-1", WidgetKeyAlgorithm::Es256, EC_PUBLIC),
            ],
        }
    }

    fn bad_claim(claim: &'static str, problem: &str) -> WidgetTokenError {
        WidgetTokenError::BadClaim {
            claim,
            problem: problem.into(),
        }
    }

    #[test]
    fn hs256_with_current_secret() {
        assert_eq!(
            verify_widget_token(&hs256(&claims(), SECRET), &secrets(), LIFETIME, NOW),
            Ok(kirk())
        );
    }

    #[test]
    fn hs256_with_previous_secret_during_rotation() {
        assert_eq!(
            verify_widget_token(
                &hs256(&claims(), PREVIOUS_SECRET),
                &secrets(),
                LIFETIME,
                NOW
            ),
            Ok(kirk())
        );
    }

    #[test]
    fn hs256_with_wrong_secret() {
        let token = hs256(&claims(), b"someone-elses-secret-0123456789abcdef");
        assert_eq!(
            verify_widget_token(&token, &secrets(), LIFETIME, NOW),
            Err(WidgetTokenError::BadSignature)
        );
    }

    #[test]
    fn empty_secret_is_never_a_key() {
        let keys = WidgetVerificationKeys {
            secrets: vec![vec![]],
            public_keys: vec![],
        };
        let token = hs256(&claims(), b"");
        assert_eq!(
            verify_widget_token(&token, &keys, LIFETIME, NOW),
            Err(WidgetTokenError::NoKeys)
        );
    }

    #[test]
    fn no_keys_at_all() {
        let token = hs256(&claims(), SECRET);
        assert_eq!(
            verify_widget_token(&token, &WidgetVerificationKeys::default(), LIFETIME, NOW),
            Err(WidgetTokenError::NoKeys)
        );
    }

    #[test]
    fn rs256_and_es256_with_kid() {
        let rs = signed(Algorithm::RS256, Some("rsa-1"), &claims(), RSA_PRIVATE);
        let es = signed(Algorithm::ES256, Some("ec-1"), &claims(), EC_PRIVATE);
        assert_eq!(
            verify_widget_token(&rs, &public_keys(), LIFETIME, NOW),
            Ok(kirk())
        );
        assert_eq!(
            verify_widget_token(&es, &public_keys(), LIFETIME, NOW),
            Ok(kirk())
        );
    }

    #[test]
    fn pkcs1_rsa_public_key_works() {
        let keys = WidgetVerificationKeys {
            secrets: vec![],
            public_keys: vec![registered(
                "rsa-1",
                WidgetKeyAlgorithm::Rs256,
                RSA_PUBLIC_PKCS1,
            )],
        };
        let rs = signed(Algorithm::RS256, Some("rsa-1"), &claims(), RSA_PRIVATE);
        assert_eq!(verify_widget_token(&rs, &keys, LIFETIME, NOW), Ok(kirk()));
    }

    #[test]
    fn no_kid_uses_the_single_key_of_that_algorithm() {
        // public_keys() has one RS256 and one ES256 key: each algorithm has exactly one.
        let rs = signed(Algorithm::RS256, None, &claims(), RSA_PRIVATE);
        let es = signed(Algorithm::ES256, None, &claims(), EC_PRIVATE);
        assert_eq!(
            verify_widget_token(&rs, &public_keys(), LIFETIME, NOW),
            Ok(kirk())
        );
        assert_eq!(
            verify_widget_token(&es, &public_keys(), LIFETIME, NOW),
            Ok(kirk())
        );
    }

    #[test]
    fn no_kid_with_several_keys_of_that_algorithm() {
        let mut keys = public_keys();
        keys.public_keys
            .push(registered("ec-2", WidgetKeyAlgorithm::Es256, EC_PUBLIC));
        let es = signed(Algorithm::ES256, None, &claims(), EC_PRIVATE);
        assert_eq!(
            verify_widget_token(&es, &keys, LIFETIME, NOW),
            Err(WidgetTokenError::UnknownKey(String::new()))
        );
    }

    #[test]
    fn unknown_kid() {
        let es = signed(Algorithm::ES256, Some("ec-9"), &claims(), EC_PRIVATE);
        assert_eq!(
            verify_widget_token(&es, &public_keys(), LIFETIME, NOW),
            Err(WidgetTokenError::UnknownKey("ec-9".into()))
        );
    }

    #[test]
    fn kid_of_a_key_registered_for_the_other_algorithm() {
        let es = signed(Algorithm::ES256, Some("rsa-1"), &claims(), EC_PRIVATE);
        assert_eq!(
            verify_widget_token(&es, &public_keys(), LIFETIME, NOW),
            Err(WidgetTokenError::AlgorithmNotAccepted("ES256".into()))
        );
    }

    #[test]
    fn public_key_token_when_only_secrets_exist() {
        let rs = signed(Algorithm::RS256, None, &claims(), RSA_PRIVATE);
        assert_eq!(
            verify_widget_token(&rs, &secrets(), LIFETIME, NOW),
            Err(WidgetTokenError::NoKeys)
        );
        let rs = signed(Algorithm::RS256, Some("rsa-1"), &claims(), RSA_PRIVATE);
        assert_eq!(
            verify_widget_token(&rs, &secrets(), LIFETIME, NOW),
            Err(WidgetTokenError::NoKeys)
        );
    }

    #[test]
    fn alg_none_is_rejected() {
        for alg in ["none", "None", "NONE"] {
            let token = raw_token(&json!({"alg": alg, "typ": "JWT"}), &claims(), b"");
            assert_eq!(
                verify_widget_token(&token, &secrets(), LIFETIME, NOW),
                Err(WidgetTokenError::AlgorithmNotAccepted(alg.into()))
            );
        }
    }

    #[test]
    fn other_algorithms_are_rejected_before_any_key_is_used() {
        for alg in [
            "HS384", "HS512", "RS384", "PS256", "ES384", "EdDSA", "hs256",
        ] {
            let token = raw_token(&json!({"alg": alg}), &claims(), b"sig");
            assert_eq!(
                verify_widget_token(&token, &public_keys(), LIFETIME, NOW),
                Err(WidgetTokenError::AlgorithmNotAccepted(alg.into()))
            );
        }
        // A real HS384 token signed with the real secret is still refused.
        let token = encode(
            &Header::new(Algorithm::HS384),
            &claims(),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(
            verify_widget_token(&token, &secrets(), LIFETIME, NOW),
            Err(WidgetTokenError::AlgorithmNotAccepted("HS384".into()))
        );
    }

    #[test]
    fn echoed_header_values_are_bounded_and_printable() {
        let token = raw_token(
            &json!({"alg": format!("x\n{}", "A".repeat(500))}),
            &claims(),
            b"",
        );
        let Err(WidgetTokenError::AlgorithmNotAccepted(shown)) =
            verify_widget_token(&token, &secrets(), LIFETIME, NOW)
        else {
            panic!("expected AlgorithmNotAccepted");
        };
        assert_eq!(shown.chars().count(), MAX_ECHOED_CHARS);
        assert!(shown.starts_with("x?A"));
    }

    #[test]
    fn hs256_signed_with_the_rsa_public_key_is_rejected() {
        // Classic confusion: the attacker knows the public PEM and uses it as an HMAC secret.
        let forged = hs256(&claims(), RSA_PUBLIC.as_bytes());
        let forged_with_kid = hmac_token(
            &json!({"alg": "HS256", "kid": "rsa-1"}),
            &claims(),
            RSA_PUBLIC.as_bytes(),
        );
        assert_eq!(
            verify_widget_token(&forged, &public_keys(), LIFETIME, NOW),
            Err(WidgetTokenError::NoKeys)
        );
        assert_eq!(
            verify_widget_token(&forged_with_kid, &public_keys(), LIFETIME, NOW),
            Err(WidgetTokenError::NoKeys)
        );
        let mut both = public_keys();
        both.secrets = vec![SECRET.to_vec()];
        assert_eq!(
            verify_widget_token(&forged, &both, LIFETIME, NOW),
            Err(WidgetTokenError::BadSignature)
        );
        assert_eq!(
            verify_widget_token(&forged_with_kid, &both, LIFETIME, NOW),
            Err(WidgetTokenError::BadSignature)
        );
    }

    #[test]
    fn embedded_jwk_is_never_honoured() {
        let attacker = EncodingKey::from_ec_pem(ATTACKER_EC_PRIVATE.as_bytes()).unwrap();
        let mut header = Header::new(Algorithm::ES256);
        header.jwk = Some(Jwk::from_encoding_key(&attacker, Algorithm::ES256).unwrap());
        let no_kid = encode(&header, &claims(), &attacker).unwrap();
        header.kid = Some("ec-1".into());
        let with_kid = encode(&header, &claims(), &attacker).unwrap();
        header.kid = None;
        header.jku = Some("https://attacker.example/jwks.json".into());
        let with_jku = encode(&header, &claims(), &attacker).unwrap();
        for token in [no_kid, with_kid, with_jku] {
            assert_eq!(
                verify_widget_token(&token, &public_keys(), LIFETIME, NOW),
                Err(WidgetTokenError::BadSignature)
            );
        }
    }

    #[test]
    fn crit_header_is_rejected() {
        let token = hmac_token(
            &json!({"alg": "HS256", "crit": ["b64"], "b64": false}),
            &claims(),
            SECRET,
        );
        assert_eq!(
            verify_widget_token(&token, &secrets(), LIFETIME, NOW),
            Err(WidgetTokenError::Malformed)
        );
    }

    #[test]
    fn malformed_tokens() {
        let good = hs256(&claims(), SECRET);
        let too_long = format!("{good}{}", "A".repeat(MAX_TOKEN_BYTES));
        let five_parts = format!("{good}.a.b");
        let not_base64 = format!("!!!.{}", good.split_once('.').unwrap().1);
        for token in [
            "",
            "abc",
            "a.b",
            "a.b.c",
            &too_long,
            &five_parts,
            &not_base64,
        ] {
            assert_eq!(
                verify_widget_token(token, &secrets(), LIFETIME, NOW),
                Err(WidgetTokenError::Malformed),
                "{token:.40}"
            );
        }
        let header_without_alg = raw_token(&json!({"typ": "JWT"}), &claims(), b"");
        let numeric_kid = raw_token(&json!({"alg": "ES256", "kid": 7}), &claims(), b"");
        let array_payload = hmac_token(
            &json!({"alg": "HS256"}),
            &json!(["not", "an", "object"]),
            SECRET,
        );
        for token in [header_without_alg, numeric_kid, array_payload] {
            assert_eq!(
                verify_widget_token(&token, &public_keys_and_secrets(), LIFETIME, NOW),
                Err(WidgetTokenError::Malformed)
            );
        }
    }

    fn public_keys_and_secrets() -> WidgetVerificationKeys {
        let mut keys = public_keys();
        keys.secrets = secrets().secrets;
        keys
    }

    #[test]
    fn surrounding_whitespace_is_tolerated() {
        let token = format!("  {}\n", hs256(&claims(), SECRET));
        assert_eq!(
            verify_widget_token(&token, &secrets(), LIFETIME, NOW),
            Ok(kirk())
        );
    }

    fn with(extra: Value) -> Value {
        let mut claims = claims();
        for (name, value) in extra.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    }

    fn check(claims: &Value) -> Result<WidgetIdentity, WidgetTokenError> {
        verify_widget_token(&hs256(claims, SECRET), &secrets(), LIFETIME, NOW)
    }

    #[test]
    fn expiry() {
        assert_eq!(
            check(&with(json!({"exp": NOW - 3600}))),
            Err(WidgetTokenError::Expired)
        );
        assert_eq!(
            check(&with(json!({"exp": NOW - CLOCK_LEEWAY_SECONDS}))),
            Err(WidgetTokenError::Expired)
        );
        // Within the leeway is fine.
        assert_eq!(check(&with(json!({"exp": NOW - 30}))), Ok(kirk()));
        assert_eq!(check(&claims()), Ok(kirk()));
    }

    #[test]
    fn tokens_must_expire_within_the_maximum_lifetime() {
        let mut eternal = claims();
        eternal.as_object_mut().unwrap().remove("exp");
        let Err(WidgetTokenError::BadClaim { claim, problem }) = check(&eternal) else {
            panic!("a token without exp was accepted");
        };
        assert_eq!(claim, "exp");
        assert!(
            problem.contains("missing") && problem.contains("86400"),
            "{problem}"
        );

        for exp in [json!(u64::MAX), json!(1.9e9), json!(NOW + LIFETIME + 1)] {
            let Err(WidgetTokenError::BadClaim { claim, problem }) =
                check(&with(json!({ "exp": exp })))
            else {
                panic!("exp {exp} was accepted");
            };
            assert_eq!(claim, "exp");
            assert!(problem.contains("at most 86400 seconds"), "{problem}");
        }
        // Exactly the maximum is fine; an old iat counts, so a token issued long ago that
        // expires tomorrow lived too long.
        assert_eq!(check(&with(json!({"exp": NOW + LIFETIME}))), Ok(kirk()));
        assert!(check(&with(json!({"iat": NOW - LIFETIME, "exp": NOW + 60}))).is_err());
        // Without iat, the lifetime counts from now.
        let mut no_iat = with(json!({"exp": NOW + LIFETIME}));
        no_iat.as_object_mut().unwrap().remove("iat");
        assert_eq!(check(&no_iat), Ok(kirk()));
        no_iat["exp"] = json!(NOW + LIFETIME + 1);
        let Err(WidgetTokenError::BadClaim { problem, .. }) = check(&no_iat) else {
            panic!("accepted");
        };
        assert!(problem.contains("no iat"), "{problem}");
        // The workspace's maximum is the one applied.
        let week = hs256(&with(json!({"exp": NOW + 7 * 86_400})), SECRET);
        assert_eq!(
            verify_widget_token(&week, &secrets(), 7 * 86_400, NOW),
            Ok(kirk())
        );
    }

    #[test]
    fn not_before_and_issued_at() {
        assert_eq!(
            check(&with(json!({"nbf": NOW + 3600}))),
            Err(WidgetTokenError::NotYetValid)
        );
        assert_eq!(check(&with(json!({"nbf": NOW + 30}))), Ok(kirk()));
        assert_eq!(
            check(&with(json!({"iat": NOW + 3600}))),
            Err(WidgetTokenError::NotYetValid)
        );
        assert_eq!(
            check(&with(json!({"iat": NOW + 30, "nbf": NOW - 10}))),
            Ok(kirk())
        );
        assert_eq!(check(&with(json!({"iat": NOW - 3600}))), Ok(kirk()));
    }

    #[test]
    fn time_claims_of_the_wrong_type() {
        let problem = "must be a number of seconds since the Unix epoch";
        assert_eq!(
            check(&with(json!({"exp": "1"}))),
            Err(bad_claim("exp", problem))
        );
        assert_eq!(
            check(&with(json!({"exp": null}))),
            Err(bad_claim("exp", problem))
        );
        assert_eq!(
            check(&with(json!({"nbf": [1]}))),
            Err(bad_claim("nbf", problem))
        );
        assert_eq!(
            check(&with(json!({"iat": true}))),
            Err(bad_claim("iat", problem))
        );
    }

    #[test]
    fn missing_user_email() {
        let mut claims = claims();
        claims.as_object_mut().unwrap().remove("userEmail");
        assert_eq!(check(&claims), Err(bad_claim("userEmail", "is missing")));
        assert_eq!(
            check(&with(json!({"userEmail": "   "}))),
            Err(bad_claim("userEmail", "is missing"))
        );
        assert_eq!(
            check(&with(json!({"userEmail": null}))),
            Err(bad_claim("userEmail", "is missing"))
        );
    }

    #[test]
    fn numeric_user_id_becomes_its_decimal_string() {
        let identity = check(&with(json!({"userId": 4_200_000_001_u64}))).unwrap();
        assert_eq!(identity.user_id, "4200000001");
        assert_eq!(check(&with(json!({"userId": -7}))).unwrap().user_id, "-7");
        let problem = "must be a string or an integer";
        assert_eq!(
            check(&with(json!({"userId": 1.5}))),
            Err(bad_claim("userId", problem))
        );
        assert_eq!(
            check(&with(json!({"userId": {"id": 1}}))),
            Err(bad_claim("userId", problem))
        );
    }

    #[test]
    fn wrong_typed_claims() {
        assert_eq!(
            check(&with(json!({"customerId": ["uss001"]}))),
            Err(bad_claim("customerId", "must be a string"))
        );
        // Only userId accepts numbers.
        assert_eq!(
            check(&with(json!({"customerId": 1}))),
            Err(bad_claim("customerId", "must be a string"))
        );
        assert_eq!(
            check(&with(json!({"userName": false}))),
            Err(bad_claim("userName", "must be a string"))
        );
    }

    #[test]
    fn values_are_trimmed_and_optional_ones_may_be_absent() {
        let identity = check(&json!({
            "userId": "  u-1 ",
            "userEmail": "kirk@example.com\n",
            "userName": "   ",
            "userAvatarUrl": null,
            "customerId": " uss001",
            "customerName": "USS Enterprise ",
            "extra": {"ignored": true},
            "exp": NOW + 60,
        }))
        .unwrap();
        assert_eq!(
            identity,
            WidgetIdentity {
                user_name: None,
                user_avatar_url: None,
                ..kirk()
            }
        );
    }

    #[test]
    fn error_classification() {
        assert!(!WidgetTokenError::Malformed.is_signature_problem());
        assert!(!bad_claim("userId", "is missing").is_signature_problem());
        assert!(WidgetTokenError::BadSignature.is_signature_problem());
        assert!(WidgetTokenError::Expired.is_signature_problem());
        assert!(WidgetTokenError::NoKeys.is_client_error());
        assert_eq!(
            bad_claim("userEmail", "is missing").to_string(),
            "widget token claim userEmail is missing"
        );
    }

    #[test]
    fn validate_public_key_accepts_good_keys() {
        assert_eq!(
            validate_public_key(&registered("r", WidgetKeyAlgorithm::Rs256, RSA_PUBLIC)),
            Ok(())
        );
        assert_eq!(
            validate_public_key(&registered(
                "r",
                WidgetKeyAlgorithm::Rs256,
                RSA_PUBLIC_PKCS1
            )),
            Ok(())
        );
        assert_eq!(
            validate_public_key(&registered("e", WidgetKeyAlgorithm::Es256, EC_PUBLIC)),
            Ok(())
        );
    }

    #[test]
    fn validate_public_key_rejects_bad_keys() {
        let garbage_body =
            "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PUBLIC KEY-----\n";
        let rejected = [
            registered("r", WidgetKeyAlgorithm::Rs256, "not a pem at all"),
            registered("r", WidgetKeyAlgorithm::Rs256, garbage_body),
            registered("e", WidgetKeyAlgorithm::Es256, garbage_body),
            registered("r", WidgetKeyAlgorithm::Rs256, RSA_PRIVATE),
            registered("e", WidgetKeyAlgorithm::Es256, EC_PRIVATE),
            registered("r", WidgetKeyAlgorithm::Rs256, EC_PUBLIC),
            registered("e", WidgetKeyAlgorithm::Es256, RSA_PUBLIC),
            registered("e", WidgetKeyAlgorithm::Es256, EC_P384_PUBLIC),
            registered("r", WidgetKeyAlgorithm::Rs256, RSA_1024_PUBLIC),
            registered(
                "r",
                WidgetKeyAlgorithm::Rs256,
                &format!("{RSA_PUBLIC}{RSA_PUBLIC}"),
            ),
            registered("", WidgetKeyAlgorithm::Rs256, RSA_PUBLIC),
        ];
        for key in rejected {
            let outcome = validate_public_key(&key);
            assert!(outcome.is_err(), "accepted {key:?}");
        }
        let private = validate_public_key(&registered("r", WidgetKeyAlgorithm::Rs256, RSA_PRIVATE))
            .unwrap_err();
        assert!(private.contains("private key"), "{private}");
        let small =
            validate_public_key(&registered("r", WidgetKeyAlgorithm::Rs256, RSA_1024_PUBLIC))
                .unwrap_err();
        assert!(small.contains("1024"), "{small}");
    }
}
