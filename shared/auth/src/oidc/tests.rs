#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

// Throwaway keys generated with openssl for these tests; they protect nothing.
const RSA_PEM: &str = include_str!("testdata/rsa.pem");
const P256_PEM: &str = include_str!("testdata/p256.pem");

const ISSUER: &str = "https://idp.example.com";
const CLIENT: &str = "roster-client";
const NONCE: &str = "n-0S6_WzA2Mj";
const NOW: i64 = 1_750_000_000;

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap()
}

fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(P256_PEM.as_bytes()).unwrap()
}

fn public_jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(key, alg).unwrap()).unwrap();
    jwk["kid"] = kid.into();
    jwk["use"] = "sig".into();
    jwk
}

fn jwks() -> String {
    json!({"keys": [
        public_jwk(&rsa(), Algorithm::RS256, "rsa-1"),
        public_jwk(&ec(), Algorithm::ES256, "ec-1"),
        // An encryption key, as providers publish beside their signing keys: left out.
        {"kty": "RSA", "use": "enc", "kid": "enc-1", "n": "AQAB", "e": "AQAB"},
    ]})
    .to_string()
}

fn keys() -> IdpKeys {
    IdpKeys::from_jwks_json(&jwks()).unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "00u1abc", "iat": NOW - 10, "exp": NOW + 3600,
        "nonce": NONCE, "email": "Uhura@Example.com", "email_verified": true, "name": "Nyota Uhura",
    })
}

fn sign(key: &EncodingKey, alg: Algorithm, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn signed(edit: impl FnOnce(&mut Value)) -> String {
    let mut payload = claims();
    edit(&mut payload);
    sign(&rsa(), Algorithm::RS256, "rsa-1", &payload)
}

fn expectations() -> IdTokenExpectations<'static> {
    IdTokenExpectations {
        issuers: &[ISSUER],
        client_id: CLIENT,
        nonce: NONCE,
        now: NOW,
        leeway: 60,
    }
}

fn verify(token: &str) -> Result<IdToken, IdTokenError> {
    verify_id_token(token, &keys(), &expectations())
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[test]
fn a_provider_jwks_yields_its_signing_keys() {
    let keys = keys();
    assert_eq!(keys.key_ids(), ["ec-1", "rsa-1"]);
}

#[test]
fn rs256_and_es256_tokens_verify_and_say_who() {
    let token = verify(&signed(|_| {})).unwrap();
    assert_eq!(token.subject, "00u1abc");
    assert_eq!(token.email.as_deref(), Some("Uhura@Example.com"));
    assert_eq!(token.email_verified, Some(true));
    assert_eq!(token.name.as_deref(), Some("Nyota Uhura"));
    let es = sign(&ec(), Algorithm::ES256, "ec-1", &claims());
    assert_eq!(verify(&es).unwrap().subject, "00u1abc");
    // A list of audiences naming the client, with the client as authorized party.
    let listed = signed(|c| {
        c["aud"] = json!([CLIENT, "other"]);
        c["azp"] = CLIENT.into();
    });
    assert!(verify(&listed).is_ok());
    let string_verified = signed(|c| c["email_verified"] = "true".into());
    assert_eq!(verify(&string_verified).unwrap().email_verified, Some(true));
}

/// A case's name, its token, and whether an error is the one it must fail with.
type Case = (&'static str, String, fn(&IdTokenError) -> bool);

#[test]
fn each_claim_check_refuses_its_token() {
    let cases: Vec<Case> = vec![
        (
            "wrong issuer",
            signed(|c| c["iss"] = "https://evil.example.com".into()),
            |e| matches!(e, IdTokenError::WrongIssuer { found, .. } if found == "https://evil.example.com"),
        ),
        (
            "wrong audience",
            signed(|c| c["aud"] = "someone-else".into()),
            |e| matches!(e, IdTokenError::WrongAudience(_)),
        ),
        (
            "several audiences without azp",
            signed(|c| c["aud"] = json!([CLIENT, "other"])),
            |e| matches!(e, IdTokenError::WrongAuthorizedParty(_)),
        ),
        (
            "azp of another client",
            signed(|c| c["azp"] = "other".into()),
            |e| matches!(e, IdTokenError::WrongAuthorizedParty(_)),
        ),
        (
            "expired beyond the leeway",
            signed(|c| c["exp"] = (NOW - 61).into()),
            |e| matches!(e, IdTokenError::Expired),
        ),
        (
            "not yet valid",
            signed(|c| c["nbf"] = (NOW + 120).into()),
            |e| matches!(e, IdTokenError::NotYetValid),
        ),
        (
            "issued in the future",
            signed(|c| c["iat"] = (NOW + 120).into()),
            |e| matches!(e, IdTokenError::IssuedInFuture),
        ),
        (
            "another nonce",
            signed(|c| c["nonce"] = "replayed".into()),
            |e| matches!(e, IdTokenError::NonceMismatch),
        ),
        (
            "no nonce",
            signed(|c| drop(c.as_object_mut().unwrap().remove("nonce"))),
            |e| matches!(e, IdTokenError::MissingClaim("nonce")),
        ),
        (
            "no iat",
            signed(|c| drop(c.as_object_mut().unwrap().remove("iat"))),
            |e| matches!(e, IdTokenError::MissingClaim("iat")),
        ),
        (
            "no sub",
            signed(|c| drop(c.as_object_mut().unwrap().remove("sub"))),
            |e| matches!(e, IdTokenError::MissingClaim("sub")),
        ),
        (
            "exp as a string",
            signed(|c| c["exp"] = (NOW + 60).to_string().into()),
            // jsonwebtoken reads a non-numeric `exp` as none.
            |e| {
                matches!(
                    e,
                    IdTokenError::InvalidClaim("exp") | IdTokenError::MissingClaim("exp")
                )
            },
        ),
        (
            "email_verified as a number",
            signed(|c| c["email_verified"] = 1.into()),
            |e| matches!(e, IdTokenError::InvalidClaim("email_verified")),
        ),
    ];
    for (case, token, expected) in cases {
        let result = verify(&token);
        assert!(
            matches!(&result, Err(error) if expected(error)),
            "{case}: {result:?}"
        );
    }
    // Within the leeway, an expired token still passes (clock skew).
    assert!(verify(&signed(|c| c["exp"] = (NOW - 30).into())).is_ok());
    // The caller must know the nonce: an empty expectation matches nothing.
    let empty = IdTokenExpectations {
        nonce: "",
        ..expectations()
    };
    assert!(matches!(
        verify_id_token(&signed(|c| c["nonce"] = "".into()), &keys(), &empty),
        Err(IdTokenError::NonceMismatch)
    ));
}

#[test]
fn the_key_not_the_token_chooses_the_algorithm() {
    let payload = b64(&claims());
    let valid = signed(|_| {});
    let signature = valid.rsplit('.').next().unwrap();
    let none = format!(
        "{}.{payload}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"}))
    );
    assert!(matches!(
        verify(&none),
        Err(IdTokenError::DisallowedAlgorithm(alg)) if alg == "none"
    ));
    // The classic confusion: the RSA public key's modulus used as an HMAC secret.
    let modulus = public_jwk(&rsa(), Algorithm::RS256, "rsa-1")["n"]
        .as_str()
        .unwrap()
        .to_owned();
    let hmac = sign(
        &EncodingKey::from_secret(modulus.as_bytes()),
        Algorithm::HS256,
        "rsa-1",
        &claims(),
    );
    assert!(matches!(
        verify(&hmac),
        Err(IdTokenError::DisallowedAlgorithm(alg)) if alg == "HS256"
    ));
    // An ES256 header on the RSA key's kid.
    let swapped = format!(
        "{}.{payload}.{signature}",
        b64(&json!({"alg": "ES256", "kid": "rsa-1"}))
    );
    assert!(matches!(
        verify(&swapped),
        Err(IdTokenError::AlgorithmMismatch { .. })
    ));
    let unknown = sign(&rsa(), Algorithm::RS256, "rotated-away", &claims());
    assert!(
        matches!(verify(&unknown), Err(IdTokenError::UnknownKey(kid)) if kid == "rotated-away")
    );
    let no_kid = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(), &rsa()).unwrap();
    assert!(matches!(verify(&no_kid), Err(IdTokenError::MissingKeyId)));
    // Signed by the EC key but naming the RSA key's kid with RS256: the signature fails.
    let forged = format!(
        "{}.{payload}.{}",
        b64(&json!({"alg": "RS256", "kid": "rsa-1"})),
        sign(&ec(), Algorithm::ES256, "ec-1", &claims())
            .rsplit('.')
            .next()
            .unwrap()
    );
    assert!(matches!(
        verify(&forged),
        Err(IdTokenError::InvalidSignature(_))
    ));
    let embedded = format!(
        "{}.{payload}.{signature}",
        b64(&json!({"alg": "RS256", "kid": "rsa-1", "jwk": {"kty": "RSA"}}))
    );
    assert!(matches!(
        verify(&embedded),
        Err(IdTokenError::UntrustedHeader("jwk"))
    ));
    for garbage in ["", "a.b", "a.b.c.d", "!!.e30.sig"] {
        assert!(
            matches!(verify(garbage), Err(IdTokenError::Malformed(_))),
            "{garbage}"
        );
    }
    let huge = signed(|c| c["padding"] = "x".repeat(MAX_ID_TOKEN_BYTES).into());
    assert!(matches!(verify(&huge), Err(IdTokenError::TooLarge)));
}

#[test]
fn jwks_documents_without_a_usable_key_or_with_a_broken_one_are_refused() {
    let rsa_jwk = public_jwk(&rsa(), Algorithm::RS256, "rsa-1");
    let set = |keys: Vec<Value>| json!({ "keys": keys }).to_string();
    let refused = |json: &str| IdpKeys::from_jwks_json(json).err();
    assert!(matches!(refused("nope"), Some(JwksError::NotAJwkSet(_))));
    assert!(matches!(refused("{}"), Some(JwksError::NotAJwkSet(_))));
    assert!(matches!(
        refused(&set(vec![])),
        Some(JwksError::NoUsableKey)
    ));
    assert!(matches!(
        refused(&set(vec![
            json!({"kty": "RSA", "use": "enc", "kid": "e", "n": "AQAB", "e": "AQAB"})
        ])),
        Some(JwksError::NoUsableKey)
    ));
    assert!(matches!(
        refused(&set(vec![
            json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"}),
            rsa_jwk.clone()
        ])),
        Some(JwksError::BadKey { index: 0, .. })
    ));
    assert!(matches!(
        refused(&set(vec![rsa_jwk.clone(), rsa_jwk.clone()])),
        Some(JwksError::DuplicateKeyId(kid)) if kid == "rsa-1"
    ));
    let mut no_kid = rsa_jwk.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    assert!(matches!(
        refused(&set(vec![no_kid])),
        Some(JwksError::BadKey { .. })
    ));
    let mut short = rsa_jwk.clone();
    short["n"] = URL_SAFE_NO_PAD.encode([0xc5u8; 128]).into();
    assert!(
        matches!(refused(&set(vec![short])), Some(JwksError::BadKey { reason, .. }) if reason.contains("1024 bits"))
    );
    let mut even = rsa_jwk.clone();
    even["e"] = "AQAA".into();
    assert!(matches!(
        refused(&set(vec![even])),
        Some(JwksError::BadKey { .. })
    ));
    let mut mismatched = rsa_jwk.clone();
    mismatched["alg"] = "ES256".into();
    assert!(matches!(
        refused(&set(vec![mismatched])),
        Some(JwksError::BadKey { .. })
    ));
    let mut off_curve = public_jwk(&ec(), Algorithm::ES256, "ec-1");
    off_curve["y"] = off_curve["x"].clone();
    assert!(matches!(
        refused(&set(vec![off_curve])),
        Some(JwksError::BadKey { .. })
    ));
    // An RSA key without `alg` (Entra ID publishes them so) is an RS256 key.
    let mut bare = rsa_jwk.clone();
    bare.as_object_mut().unwrap().remove("alg");
    bare.as_object_mut().unwrap().remove("use");
    bare["x5t"] = "ignored".into();
    bare["issuer"] = "https://login.microsoftonline.com/tenant/v2.0".into();
    let keys = IdpKeys::from_jwks_json(&set(vec![bare])).unwrap();
    let token = sign(&rsa(), Algorithm::RS256, "rsa-1", &claims());
    assert!(verify_id_token(&token, &keys, &expectations()).is_ok());
    assert!(matches!(
        refused(&"x".repeat(MAX_JWKS_BYTES + 1)),
        Some(JwksError::TooLarge)
    ));
}
