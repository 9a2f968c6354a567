//! Public verification keys, loaded from the staff service's JWKS and looked up by `kid`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};

use crate::error::KeyError;

/// The one signature algorithm a deployment uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// Ed25519.
    #[default]
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

impl SigningAlgorithm {
    /// The JOSE name (`"EdDSA"`, `"ES256"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::EdDSA => "EdDSA",
            SigningAlgorithm::ES256 => "ES256",
        }
    }

    pub(crate) fn jwt_algorithm(self) -> Algorithm {
        match self {
            SigningAlgorithm::EdDSA => Algorithm::EdDSA,
            SigningAlgorithm::ES256 => Algorithm::ES256,
        }
    }
}

#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) algorithm: SigningAlgorithm,
    pub(crate) key: DecodingKey,
}

/// Verification keys by `kid`.
#[derive(Clone)]
pub struct KeySet {
    keys: HashMap<String, VerificationKey>,
}

impl KeySet {
    /// Parses a JWKS (`{"keys": [...]}`). Every key needs a unique `kid` and must be OKP/Ed25519
    /// or EC/P-256 meant for signatures; anything else is refused rather than skipped, because
    /// the set comes from our own staff service and a surprise means misconfiguration.
    pub fn from_jwks_json(json: &str) -> Result<KeySet, KeyError> {
        let set: JwkSet = serde_json::from_str(json).map_err(KeyError::JwksJson)?;
        if set.keys.is_empty() {
            return Err(KeyError::EmptyKeySet);
        }
        let mut keys = HashMap::with_capacity(set.keys.len());
        for (index, jwk) in set.keys.iter().enumerate() {
            let kid = match &jwk.common.key_id {
                Some(kid) if !kid.is_empty() => kid.clone(),
                _ => return Err(KeyError::MissingKeyId { index }),
            };
            let key = verification_key(&kid, jwk)?;
            if keys.insert(kid.clone(), key).is_some() {
                return Err(KeyError::DuplicateKeyId(kid));
            }
        }
        Ok(KeySet { keys })
    }

    pub fn from_jwks_file(path: &Path) -> Result<KeySet, KeyError> {
        let json = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            action: "read JWKS file",
            path: path.to_owned(),
            source,
        })?;
        KeySet::from_jwks_json(&json)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, sorted, for start-up logs.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.get(kid)
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<(&str, &str)> = self
            .keys
            .iter()
            .map(|(kid, key)| (kid.as_str(), key.algorithm.as_str()))
            .collect();
        ids.sort_unstable();
        f.debug_struct("KeySet").field("keys", &ids).finish()
    }
}

fn verification_key(kid: &str, jwk: &Jwk) -> Result<VerificationKey, KeyError> {
    let unsupported = |reason: &str| KeyError::UnsupportedKey {
        kid: kid.to_owned(),
        reason: reason.to_owned(),
    };
    let invalid = |reason: &str| KeyError::InvalidKey {
        kid: kid.to_owned(),
        reason: reason.to_owned(),
    };

    if let Some(key_use) = &jwk.common.public_key_use
        && *key_use != PublicKeyUse::Signature
    {
        return Err(unsupported("`use` must be `sig`"));
    }

    match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(params) => {
            if params.curve != EllipticCurve::Ed25519 {
                return Err(unsupported("OKP keys must use curve Ed25519"));
            }
            expect_alg(jwk, KeyAlgorithm::EdDSA).map_err(|r| unsupported(&r))?;
            let x = decode_coordinate(&params.x).map_err(|r| invalid(&r))?;
            // jsonwebtoken slices the first 32 bytes when verifying and would panic on fewer.
            let x: [u8; 32] = x
                .try_into()
                .map_err(|_| invalid("Ed25519 `x` must be 32 bytes"))?;
            ed25519_dalek::VerifyingKey::from_bytes(&x)
                .map_err(|_| invalid("`x` is not an Ed25519 public key"))?;
            let key =
                DecodingKey::from_ed_components(&params.x).map_err(|e| invalid(&e.to_string()))?;
            Ok(VerificationKey {
                algorithm: SigningAlgorithm::EdDSA,
                key,
            })
        }
        AlgorithmParameters::EllipticCurve(params) => {
            if params.curve != EllipticCurve::P256 {
                return Err(unsupported("EC keys must use curve P-256"));
            }
            expect_alg(jwk, KeyAlgorithm::ES256).map_err(|r| unsupported(&r))?;
            for coordinate in [&params.x, &params.y] {
                if decode_coordinate(coordinate)
                    .map_err(|r| invalid(&r))?
                    .len()
                    != 32
                {
                    return Err(invalid("P-256 coordinates must be 32 bytes"));
                }
            }
            let key = DecodingKey::from_ec_components(&params.x, &params.y)
                .map_err(|e| invalid(&e.to_string()))?;
            // Building a verifier parses the point; an empty signature then merely fails to
            // match. An error here means the point is not on the curve, which we want to
            // learn at start-up rather than on every request.
            jsonwebtoken::crypto::verify("", b"", &key, Algorithm::ES256)
                .map_err(|_| invalid("(x, y) is not a point on P-256"))?;
            Ok(VerificationKey {
                algorithm: SigningAlgorithm::ES256,
                key,
            })
        }
        AlgorithmParameters::RSA(_) => Err(unsupported(
            "RSA keys are not accepted; use Ed25519 or P-256",
        )),
        AlgorithmParameters::OctetKey(_) => Err(unsupported(
            "symmetric (`oct`) keys must never be published in a JWKS",
        )),
        _ => Err(unsupported("unknown key type; use OKP/Ed25519 or EC/P-256")),
    }
}

fn expect_alg(jwk: &Jwk, expected: KeyAlgorithm) -> Result<(), String> {
    match jwk.common.key_algorithm {
        None => Ok(()),
        Some(alg) if alg == expected => Ok(()),
        Some(alg) => Err(format!(
            "`alg` {alg:?} does not match the key type (expected {expected:?})"
        )),
    }
}

fn decode_coordinate(value: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|e| format!("key coordinate is not base64url without padding: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Public half of a throwaway P-256 key generated with openssl for these tests.
    const P256_X: &str = "2qqLVoTy44dWdLr-Y3MEj1C3bu5_6Bk055oJqTdTZz8";
    const P256_Y: &str = "XrPBrgUwdpO4opmroyErp0aVjO5y1hKY-_MAkUI8xpI";

    fn jwks(keys: &[serde_json::Value]) -> String {
        serde_json::json!({ "keys": keys }).to_string()
    }

    fn ed_jwk(kid: &str) -> serde_json::Value {
        // RFC 8037 appendix A.2 public key.
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
    }

    #[test]
    fn loads_ed25519_and_p256_keys() -> Result<(), KeyError> {
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "ec-1", "x": P256_X, "y": P256_Y});
        let set = KeySet::from_jwks_json(&jwks(&[ed_jwk("ed-1"), ec]))?;
        assert_eq!(set.len(), 2);
        assert_eq!(set.key_ids(), vec!["ec-1", "ed-1"]);
        assert_eq!(
            set.get("ec-1").map(|k| k.algorithm),
            Some(SigningAlgorithm::ES256)
        );
        assert_eq!(
            set.get("ed-1").map(|k| k.algorithm),
            Some(SigningAlgorithm::EdDSA)
        );
        Ok(())
    }

    #[test]
    fn refuses_keys_without_kid_or_duplicated() {
        let mut no_kid = ed_jwk("x");
        if let Some(object) = no_kid.as_object_mut() {
            object.remove("kid");
        }
        assert!(matches!(
            KeySet::from_jwks_json(&jwks(&[no_kid])),
            Err(KeyError::MissingKeyId { index: 0 })
        ));
        assert!(matches!(
            KeySet::from_jwks_json(&jwks(&[ed_jwk("a"), ed_jwk("a")])),
            Err(KeyError::DuplicateKeyId(kid)) if kid == "a"
        ));
        assert!(matches!(
            KeySet::from_jwks_json(&jwks(&[])),
            Err(KeyError::EmptyKeySet)
        ));
    }

    #[test]
    fn refuses_unsupported_and_broken_keys() {
        let cases = [
            serde_json::json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"}),
            serde_json::json!({"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}),
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "short", "x": "AAAA"}),
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "alg", "alg": "ES256",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
            serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "off-curve", "x": P256_X, "y": P256_X}),
            serde_json::json!({"kty": "EC", "crv": "P-384", "kid": "p384", "x": P256_X, "y": P256_Y}),
        ];
        for case in cases {
            let result = KeySet::from_jwks_json(&jwks(std::slice::from_ref(&case)));
            assert!(
                matches!(
                    result,
                    Err(KeyError::UnsupportedKey { .. } | KeyError::InvalidKey { .. })
                ),
                "accepted {case}: {result:?}"
            );
        }
    }

    #[test]
    fn reports_unreadable_files_with_their_path() {
        let path = Path::new("/nonexistent/roster/jwks.json");
        let message = KeySet::from_jwks_file(path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("/nonexistent/roster/jwks.json"),
            "{message}"
        );
    }
}
