//! Token minting, used by the staff service and by tests.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{EncodingKey, Header};

use crate::claims::{Claims, WorkspaceAccess};
use crate::error::KeyError;
use crate::keys::SigningAlgorithm;
use crate::principal::PrincipalKind;

/// PKCS#8 v1 `PrivateKeyInfo` for Ed25519 up to the 32-byte seed (RFC 8410 §7).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A private signing key with its `kid`.
#[derive(Clone)]
pub struct TokenSigner {
    kid: String,
    algorithm: SigningAlgorithm,
    key: EncodingKey,
    public_jwk: Jwk,
}

/// What to put in a token; [`TokenSigner::mint_for`] adds `iat`, `exp` and `jti`.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub subject: String,
    pub kind: PrincipalKind,
    /// Workspace id (or `*` for a service token for every workspace) → role and permissions.
    pub workspaces: BTreeMap<String, WorkspaceAccess>,
    /// The subject's current token generation (0 for subjects that are never revoked).
    pub generation: u64,
    pub ttl: Duration,
    pub issuer: String,
    pub audience: String,
}

impl TokenSigner {
    /// An EdDSA signer from an Ed25519 PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as written by
    /// `openssl genpkey -algorithm ed25519` or [`crate::load_or_create_dev_keys`]).
    pub fn from_ed25519_pkcs8_pem(kid: &str, pem: &str) -> Result<TokenSigner, KeyError> {
        let signing_key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| KeyError::InvalidPrivateKey(format!("not an Ed25519 PKCS#8 PEM: {e}")))?;
        TokenSigner::from_ed25519_key(kid, &signing_key)
    }

    /// An ES256 signer from a P-256 PKCS#8 PEM (as written by
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
    pub fn from_es256_pkcs8_pem(kid: &str, pem: &str) -> Result<TokenSigner, KeyError> {
        check_kid(kid)?;
        let key = EncodingKey::from_ec_pem(pem.as_bytes())
            .map_err(|e| KeyError::InvalidPrivateKey(format!("not a P-256 PKCS#8 PEM: {e}")))?;
        let derived = Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::ES256)
            .map_err(|e| KeyError::InvalidPrivateKey(format!("not a P-256 key: {e}")))?;
        match &derived.algorithm {
            AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => {}
            _ => {
                return Err(KeyError::InvalidPrivateKey(
                    "ES256 needs a P-256 key".to_owned(),
                ));
            }
        }
        Ok(TokenSigner {
            public_jwk: Jwk {
                common: public_common(kid, KeyAlgorithm::ES256),
                algorithm: derived.algorithm,
            },
            kid: kid.to_owned(),
            algorithm: SigningAlgorithm::ES256,
            key,
        })
    }

    pub(crate) fn from_ed25519_key(
        kid: &str,
        signing_key: &SigningKey,
    ) -> Result<TokenSigner, KeyError> {
        check_kid(kid)?;
        // Re-encoded as v1 because jsonwebtoken's EdDSA support only reads that form, while
        // PEM files in the wild may be v2 (with the public key appended).
        let der = ed25519_pkcs8_der(signing_key);
        let public_jwk = Jwk {
            common: public_common(kid, KeyAlgorithm::EdDSA),
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(signing_key.verifying_key().as_bytes()),
            }),
        };
        Ok(TokenSigner {
            kid: kid.to_owned(),
            algorithm: SigningAlgorithm::EdDSA,
            key: EncodingKey::from_ed_der(&der),
            public_jwk,
        })
    }

    #[cfg(test)]
    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }

    #[cfg(test)]
    pub(crate) fn public_jwk(&self) -> &Jwk {
        &self.public_jwk
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// The public JWKS holding just this signer's key (`kid`, `alg`, `use: sig`), for
    /// [`crate::KeySet::from_jwks_json`] or for publishing.
    pub fn jwks_json(&self) -> Result<String, KeyError> {
        let set = JwkSet {
            keys: vec![self.public_jwk.clone()],
        };
        serde_json::to_string_pretty(&set).map_err(KeyError::Serialize)
    }

    /// Signs `claims` after checking the rules verifiers enforce (non-empty `sub`, roles and
    /// `jti`; `{"*": …}` only for services; `exp >= iat`).
    pub fn mint(&self, claims: &Claims) -> Result<String, KeyError> {
        claims
            .check()
            .map_err(|reason| KeyError::InvalidClaims(reason.to_owned()))?;
        let mut header = Header::new(self.algorithm.jwt_algorithm());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(KeyError::Signing)
    }

    /// Signs any JSON `payload` with this key and its `kid`, without the checks of
    /// [`TokenSigner::mint`]: for testing what verifiers make of tokens no issuer would
    /// mint (a string `exp`, a missing `aud`). Only the key's holder can use it, so it
    /// grants nothing the key does not already.
    pub fn sign_unchecked(&self, payload: &serde_json::Value) -> Result<String, KeyError> {
        let mut header = Header::new(self.algorithm.jwt_algorithm());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, payload, &self.key).map_err(KeyError::Signing)
    }

    /// Mints a token valid from `now_unix` for `req.ttl` (whole seconds, at least one) with a
    /// fresh UUID v4 `jti`.
    pub fn mint_for(&self, req: &TokenRequest, now_unix: i64) -> Result<String, KeyError> {
        let ttl = i64::try_from(req.ttl.as_secs()).unwrap_or(i64::MAX);
        if ttl < 1 {
            return Err(KeyError::InvalidClaims(
                "ttl must be at least one second".to_owned(),
            ));
        }
        let exp = now_unix
            .checked_add(ttl)
            .ok_or_else(|| KeyError::InvalidClaims("ttl overflows the expiry time".to_owned()))?;
        self.mint(&Claims {
            iss: req.issuer.clone(),
            aud: req.audience.clone(),
            sub: req.subject.clone(),
            exp,
            iat: now_unix,
            nbf: None,
            jti: uuid::Uuid::new_v4().to_string(),
            kind: req.kind,
            workspaces: req.workspaces.clone(),
            generation: req.generation,
        })
    }
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The PKCS#8 v1 DER encoding of an Ed25519 private key.
pub(crate) fn ed25519_pkcs8_der(signing_key: &SigningKey) -> Vec<u8> {
    let mut der = Vec::with_capacity(ED25519_PKCS8_PREFIX.len() + 32);
    der.extend_from_slice(&ED25519_PKCS8_PREFIX);
    der.extend_from_slice(signing_key.as_bytes());
    der
}

fn check_kid(kid: &str) -> Result<(), KeyError> {
    if kid.is_empty() {
        return Err(KeyError::InvalidPrivateKey(
            "the key id is empty".to_owned(),
        ));
    }
    Ok(())
}

fn public_common(kid: &str, algorithm: KeyAlgorithm) -> CommonParameters {
    CommonParameters {
        public_key_use: Some(PublicKeyUse::Signature),
        key_algorithm: Some(algorithm),
        key_id: Some(kid.to_owned()),
        ..CommonParameters::default()
    }
}
