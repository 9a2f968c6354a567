#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use tonic::metadata::MetadataValue;

use super::*;
use crate::{
    KeyError, PrincipalKind, TokenRequest, TokenSigner, WorkspaceAccess, WorkspaceScope,
    generate_ed25519,
};

const T0: i64 = 1_750_000_000;
const KID: &str = "k1";

// A throwaway P-256 key generated with openssl for these tests; it protects nothing.
const P256_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgeUJMZCNBhONsbB00
RKJi/plEXfCuL276JwFnLtLRNC6hRANCAATaqotWhPLjh1Z0uv5jcwSPULdu7n/o
GTTnmgmpN1NnP16zwa4FMHaTuKKZq6MhK6dGlYzuctYSmPvzAJFCPMaS
-----END PRIVATE KEY-----
";

/// A clock the test sets to any unix second.
struct SetClock(Arc<AtomicI64>);

impl Clock for SetClock {
    fn now_us(&self) -> i64 {
        self.0.load(Ordering::SeqCst) * 1_000_000
    }
}

struct Fixture {
    signer: TokenSigner,
    verifier: TokenVerifier,
    now: Arc<AtomicI64>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_settings(VerifierSettings::default())
    }

    fn with_settings(settings: VerifierSettings) -> Fixture {
        let (signer, keys, _) = generate_ed25519(KID).unwrap();
        Fixture::with(signer, keys, settings)
    }

    fn with(signer: TokenSigner, keys: KeySet, settings: VerifierSettings) -> Fixture {
        let now = Arc::new(AtomicI64::new(T0));
        let clock = SetClock(Arc::clone(&now));
        Fixture {
            signer,
            verifier: TokenVerifier::with_clock(settings, keys, Arc::new(clock)),
            now,
        }
    }

    fn set_time(&self, unix: i64) {
        self.now.store(unix, Ordering::SeqCst);
    }

    fn mint(&self, claims: &Claims) -> String {
        self.signer.mint(claims).unwrap()
    }

    /// Signs arbitrary header and payload with the fixture's key, bypassing the minting checks.
    fn sign_raw(&self, header: &Header, payload: &serde_json::Value) -> String {
        jsonwebtoken::encode(header, payload, self.signer.encoding_key()).unwrap()
    }

    fn header(&self) -> Header {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(KID.to_owned());
        header
    }
}

fn claims() -> Claims {
    Claims {
        iss: "roster-staff".into(),
        aud: "roster".into(),
        sub: "agent-42".into(),
        exp: T0 + 300,
        iat: T0,
        nbf: None,
        jti: "0b7e5c1e-8a53-4f0e-9d6c-3f1c0c8f5a11".into(),
        kind: PrincipalKind::Agent,
        workspaces: [
            (
                "w1".to_owned(),
                WorkspaceAccess::new("agent", &["end_users.write"]),
            ),
            ("w2".to_owned(), WorkspaceAccess::new("viewer", &[])),
        ]
        .into(),
        generation: 4,
    }
}

fn claims_json() -> serde_json::Value {
    serde_json::to_value(claims()).unwrap()
}

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[test]
fn round_trip_yields_the_principal() {
    let fx = Fixture::new();
    let principal = fx.verifier.verify(&fx.mint(&claims())).unwrap();
    assert_eq!(principal.subject, "agent-42");
    assert_eq!(principal.kind, PrincipalKind::Agent);
    let w1 = principal.grant("w1").unwrap();
    assert_eq!(w1.role, "agent");
    assert!(w1.has_permission("end_users.write"));
    let w2 = principal.grant("w2").unwrap();
    assert_eq!(w2.role, "viewer");
    assert!(!w2.has_permission("end_users.write"));
    assert!(principal.grant("w3").is_none());
    assert_eq!(principal.token_id, claims().jti);
    assert_eq!(principal.issued_at, T0);
    assert_eq!(principal.expires_at, T0 + 300);
    assert_eq!(principal.generation, 4);
}

#[test]
fn mint_for_fills_time_and_id() {
    let fx = Fixture::new();
    let request = TokenRequest {
        subject: "directory".into(),
        kind: PrincipalKind::Service,
        workspaces: [(
            "*".to_owned(),
            WorkspaceAccess::new("service", &["customers.write"]),
        )]
        .into(),
        generation: 0,
        ttl: Duration::from_secs(900),
        issuer: "roster-staff".into(),
        audience: "roster".into(),
    };
    let first = fx.signer.mint_for(&request, T0).unwrap();
    let second = fx.signer.mint_for(&request, T0).unwrap();
    let a = fx.verifier.verify(&first).unwrap();
    let b = fx.verifier.verify(&second).unwrap();
    assert!(matches!(&a.workspaces, WorkspaceScope::All(grant)
        if grant.permissions.contains("customers.write")));
    assert_eq!(a.expires_at, T0 + 900);
    assert_ne!(a.token_id, b.token_id);
    assert!(uuid::Uuid::parse_str(&a.token_id).is_ok());

    let header = jsonwebtoken::decode_header(&first).unwrap();
    assert_eq!(header.kid.as_deref(), Some(KID));
    assert_eq!(header.alg, Algorithm::EdDSA);

    let zero_ttl = TokenRequest {
        ttl: Duration::ZERO,
        ..request
    };
    assert!(matches!(
        fx.signer.mint_for(&zero_ttl, T0),
        Err(KeyError::InvalidClaims(_))
    ));
}

#[test]
fn es256_round_trip_when_configured() {
    let signer = TokenSigner::from_es256_pkcs8_pem("ec-1", P256_PEM).unwrap();
    let keys = KeySet::from_jwks_json(&signer.jwks_json().unwrap()).unwrap();
    let settings = VerifierSettings {
        algorithm: SigningAlgorithm::ES256,
        ..VerifierSettings::default()
    };
    let fx = Fixture::with(signer, keys, settings);
    let token = fx.mint(&claims());
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().alg,
        Algorithm::ES256
    );
    assert_eq!(fx.verifier.verify(&token).unwrap().subject, "agent-42");

    // The EdDSA default refuses the same token even with the right key present.
    let ec_keys = KeySet::from_jwks_json(&fx.signer.jwks_json().unwrap()).unwrap();
    let eddsa = TokenVerifier::new(VerifierSettings::default(), ec_keys);
    assert!(matches!(
        eddsa.verify(&token),
        Err(AuthError::DisallowedAlgorithm { .. })
    ));
}

#[test]
fn kid_of_the_wrong_key_type_is_refused() {
    // ES256 verifier whose `k1` is an Ed25519 key; the token claims ES256 and kid `k1`.
    let (_, ed_keys, _) = generate_ed25519(KID).unwrap();
    let ec_signer = TokenSigner::from_es256_pkcs8_pem(KID, P256_PEM).unwrap();
    let settings = VerifierSettings {
        algorithm: SigningAlgorithm::ES256,
        ..VerifierSettings::default()
    };
    let fx = Fixture::with(ec_signer, ed_keys, settings);
    let result = fx.verifier.verify(&fx.mint(&claims()));
    assert!(
        matches!(result, Err(AuthError::InvalidToken(_))),
        "{result:?}"
    );
}

#[test]
fn expired_token_is_refused_after_leeway() {
    let fx = Fixture::new();
    let token = fx.mint(&claims());
    fx.set_time(T0 + 300 + 30);
    assert!(fx.verifier.verify(&token).is_ok(), "inside the 30 s leeway");
    fx.set_time(T0 + 300 + 31);
    assert!(matches!(
        fx.verifier.verify(&token),
        Err(AuthError::Expired)
    ));
}

#[test]
fn tokens_from_the_future_are_refused_beyond_leeway() {
    let fx = Fixture::new();
    let leeway = 30;
    let early = Claims {
        nbf: Some(T0 + leeway + 1),
        ..claims()
    };
    assert!(matches!(
        fx.verifier.verify(&fx.mint(&early)),
        Err(AuthError::NotYetValid)
    ));
    let within_leeway = Claims {
        nbf: Some(T0 + leeway),
        ..claims()
    };
    assert!(fx.verifier.verify(&fx.mint(&within_leeway)).is_ok());

    let issued_later = Claims {
        iat: T0 + leeway + 1,
        exp: T0 + 600,
        ..claims()
    };
    assert!(matches!(
        fx.verifier.verify(&fx.mint(&issued_later)),
        Err(AuthError::IssuedInFuture)
    ));
    fx.set_time(T0 + 1);
    assert!(
        fx.verifier.verify(&fx.mint(&issued_later)).is_ok(),
        "once the clock catches up within the leeway the token is good"
    );
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let fx = Fixture::new();
    let wrong_iss = Claims {
        iss: "someone-else".into(),
        ..claims()
    };
    let wrong_aud = Claims {
        aud: "another-product".into(),
        ..claims()
    };
    assert!(matches!(
        fx.verifier.verify(&fx.mint(&wrong_iss)),
        Err(AuthError::WrongIssuer)
    ));
    assert!(matches!(
        fx.verifier.verify(&fx.mint(&wrong_aud)),
        Err(AuthError::WrongAudience)
    ));
}

#[test]
fn missing_or_mistyped_registered_claims_are_refused() {
    let fx = Fixture::new();
    for claim in ["sub", "exp", "iss", "aud"] {
        let mut payload = claims_json();
        payload.as_object_mut().unwrap().remove(claim);
        let result = fx.verifier.verify(&fx.sign_raw(&fx.header(), &payload));
        assert!(
            matches!(
                result,
                Err(AuthError::InvalidToken(_) | AuthError::InvalidClaims(_))
            ),
            "token without {claim} gave {result:?}"
        );
    }
    // CVE-2026-25537: an `exp` of the wrong JSON type must not count as absent.
    let mut payload = claims_json();
    payload["exp"] = json!("9999999999");
    assert!(
        fx.verifier
            .verify(&fx.sign_raw(&fx.header(), &payload))
            .is_err()
    );
    let mut payload = claims_json();
    payload["aud"] = json!(["roster", "other"]);
    assert!(
        fx.verifier
            .verify(&fx.sign_raw(&fx.header(), &payload))
            .is_err()
    );
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    let fx = Fixture::new();
    let jwk = serde_json::to_value(fx.signer.public_jwk()).unwrap();
    let x = jwk["x"].as_str().unwrap().to_owned();
    let secrets = [
        URL_SAFE_NO_PAD.decode(&x).unwrap(),
        x.into_bytes(),
        fx.signer.jwks_json().unwrap().into_bytes(),
    ];
    for secret in secrets {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KID.to_owned());
        let token =
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(&secret)).unwrap();
        let result = fx.verifier.verify(&token);
        assert!(
            matches!(result, Err(AuthError::DisallowedAlgorithm { ref found, .. }) if found == "HS256"),
            "{result:?}"
        );
    }
}

#[test]
fn alg_none_is_refused() {
    let fx = Fixture::new();
    let header = json!({"alg": "none", "typ": "JWT", "kid": KID});
    for signature in ["", "AAAA"] {
        let token = format!("{}.{}.{signature}", b64(&header), b64(&claims_json()));
        assert!(matches!(
            fx.verifier.verify(&token),
            Err(AuthError::InvalidToken(_))
        ));
    }
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    let fx = Fixture::new();
    let mut header = fx.header();
    header.kid = Some("rotated-away".into());
    let result = fx.verifier.verify(&fx.sign_raw(&header, &claims_json()));
    assert!(matches!(result, Err(AuthError::UnknownKey(ref kid)) if kid == "rotated-away"));

    header.kid = None;
    let result = fx.verifier.verify(&fx.sign_raw(&header, &claims_json()));
    assert!(matches!(result, Err(AuthError::MissingKeyId)));
}

#[test]
fn unknown_kids_are_reported_to_the_hook_and_known_ones_not() {
    let fx = Fixture::new();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let record = Arc::clone(&seen);
    assert!(fx.verifier.on_unknown_key(move |kid| {
        record.lock().unwrap().push(kid.to_owned());
    }));
    assert!(!fx.verifier.on_unknown_key(|_| {}), "one hook per verifier");

    let mut header = fx.header();
    fx.verifier.verify(&fx.mint(&claims())).unwrap();
    header.kid = Some("rotated-in".into());
    let result = fx.verifier.verify(&fx.sign_raw(&header, &claims_json()));
    assert!(matches!(result, Err(AuthError::UnknownKey(_))));
    // A token refused before its key is looked up (another algorithm) reports nothing.
    let hs256 = format!(
        "{}.{}.c2ln",
        b64(&json!({"alg": "HS256", "typ": "JWT", "kid": "other"})),
        b64(&claims_json())
    );
    assert!(fx.verifier.verify(&hs256).is_err());
    assert_eq!(*seen.lock().unwrap(), ["rotated-in"]);
}

#[test]
fn embedded_attacker_jwk_is_never_used() {
    let fx = Fixture::new();
    for attacker_kid in [KID, "attacker"] {
        let (attacker, _, _) = generate_ed25519(attacker_kid).unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(attacker_kid.to_owned());
        header.jwk = Some(attacker.public_jwk().clone());
        let token = jsonwebtoken::encode(&header, &claims(), attacker.encoding_key()).unwrap();
        let result = fx.verifier.verify(&token);
        assert!(
            matches!(result, Err(AuthError::UntrustedHeader("jwk"))),
            "{result:?}"
        );

        // Without the header the attacker's signature simply fails against our key.
        header.jwk = None;
        let token = jsonwebtoken::encode(&header, &claims(), attacker.encoding_key()).unwrap();
        assert!(fx.verifier.verify(&token).is_err());
    }
    let (attacker, _, _) = generate_ed25519(KID).unwrap();
    assert!(matches!(
        fx.verifier.verify(&attacker.mint(&claims()).unwrap()),
        Err(AuthError::InvalidSignature)
    ));

    let mut header = fx.header();
    header.jku = Some("https://attacker.example/jwks.json".into());
    assert!(matches!(
        fx.verifier.verify(&fx.sign_raw(&header, &claims_json())),
        Err(AuthError::UntrustedHeader("jku"))
    ));
    let mut header = fx.header();
    header.x5u = Some("https://attacker.example/cert.pem".into());
    assert!(matches!(
        fx.verifier.verify(&fx.sign_raw(&header, &claims_json())),
        Err(AuthError::UntrustedHeader("x5u"))
    ));
}

#[test]
fn tampered_payload_is_refused() {
    let fx = Fixture::new();
    let token = fx.mint(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let mut elevated = claims_json();
    elevated["workspaces"]["w2"]["role"] = json!("admin");
    let forged = format!("{}.{}.{}", parts[0], b64(&elevated), parts[2]);
    assert!(matches!(
        fx.verifier.verify(&forged),
        Err(AuthError::InvalidSignature)
    ));
}

#[test]
fn agent_with_every_workspace_is_refused() {
    let fx = Fixture::new();
    let star = Claims {
        workspaces: [("*".to_owned(), WorkspaceAccess::new("admin", &[]))].into(),
        ..claims()
    };
    assert!(matches!(
        fx.signer.mint(&star),
        Err(KeyError::InvalidClaims(_))
    ));
    let payload = serde_json::to_value(&star).unwrap();
    let result = fx.verifier.verify(&fx.sign_raw(&fx.header(), &payload));
    assert!(
        matches!(result, Err(AuthError::InvalidClaims(_))),
        "{result:?}"
    );

    let service = Claims {
        kind: PrincipalKind::Service,
        ..star
    };
    assert!(matches!(
        fx.verifier.verify(&fx.mint(&service)).unwrap().workspaces,
        WorkspaceScope::All(_)
    ));
}

#[test]
fn cache_returns_the_same_principal_but_never_past_exp() {
    let fx = Fixture::with_settings(VerifierSettings {
        leeway: Duration::ZERO,
        ..VerifierSettings::default()
    });
    let short = Claims {
        exp: T0 + 2,
        ..claims()
    };
    let token = fx.mint(&short);
    let first = fx.verifier.verify(&token).unwrap();
    assert!(fx.verifier.inner.cache.get(&token, T0).is_some());
    let second = fx.verifier.verify(&token).unwrap();
    assert_eq!(first, second);

    fx.set_time(T0 + 3);
    assert!(matches!(
        fx.verifier.verify(&token),
        Err(AuthError::Expired)
    ));
}

#[test]
fn cache_entry_ends_at_exp_even_within_leeway() {
    let fx = Fixture::new();
    let token = fx.mint(&Claims {
        exp: T0 + 2,
        ..claims()
    });
    fx.verifier.verify(&token).unwrap();
    fx.set_time(T0 + 2);
    assert!(fx.verifier.inner.cache.get(&token, T0 + 2).is_none());
    // Still accepted thanks to leeway, but through a full verification.
    assert!(fx.verifier.verify(&token).is_ok());
    fx.set_time(T0 + 33);
    assert!(matches!(
        fx.verifier.verify(&token),
        Err(AuthError::Expired)
    ));
}

#[test]
fn cache_entry_ends_after_ttl() {
    let fx = Fixture::new();
    let token = fx.mint(&claims());
    fx.verifier.verify(&token).unwrap();
    assert!(fx.verifier.inner.cache.get(&token, T0 + 59).is_some());
    assert!(fx.verifier.inner.cache.get(&token, T0 + 60).is_none());
}

#[test]
fn disabled_cache_stores_nothing() {
    let fx = Fixture::with_settings(VerifierSettings {
        cache_ttl: Duration::ZERO,
        ..VerifierSettings::default()
    });
    let token = fx.mint(&claims());
    fx.verifier.verify(&token).unwrap();
    assert_eq!(fx.verifier.inner.cache.len(), 0);
}

#[test]
fn replaced_keys_invalidate_cached_tokens() {
    let fx = Fixture::new();
    let token = fx.mint(&claims());
    fx.verifier.verify(&token).unwrap();
    let (next_signer, next_keys, _) = generate_ed25519("k2").unwrap();
    let clone = fx.verifier.clone();
    clone.replace_keys(next_keys);
    assert!(matches!(
        fx.verifier.verify(&token),
        Err(AuthError::UnknownKey(ref kid)) if kid == KID
    ));
    assert!(
        fx.verifier
            .verify(&next_signer.mint(&claims()).unwrap())
            .is_ok()
    );
}

fn metadata(values: &[&str]) -> MetadataMap {
    let mut map = MetadataMap::new();
    for value in values {
        map.append("authorization", MetadataValue::try_from(*value).unwrap());
    }
    map
}

#[test]
fn bearer_metadata_is_parsed_strictly() {
    let fx = Fixture::new();
    let token = fx.mint(&claims());
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let map = metadata(&[&format!("{scheme} {token}")]);
        assert!(fx.verifier.verify_metadata(&map).is_ok(), "{scheme}");
    }
    assert!(matches!(
        fx.verifier.verify_metadata(&MetadataMap::new()),
        Err(AuthError::MissingToken)
    ));
    for bad in ["Basic abc", "Bearer", "Bearer ", &token, "Bearer a b"] {
        assert!(
            matches!(
                fx.verifier.verify_metadata(&metadata(&[bad])),
                Err(AuthError::MalformedHeader)
            ),
            "{bad}"
        );
    }
    let twice = format!("Bearer {token}");
    assert!(matches!(
        fx.verifier.verify_metadata(&metadata(&[&twice, &twice])),
        Err(AuthError::MalformedHeader)
    ));
}

#[test]
fn interceptor_stores_the_principal_or_refuses() {
    let fx = Fixture::new();
    let mut interceptor = fx.verifier.interceptor();
    let token = fx.mint(&claims());

    let mut request = Request::new(());
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    let request = interceptor(request).unwrap();
    assert_eq!(crate::principal_of(&request).unwrap().subject, "agent-42");

    let status = interceptor(Request::new(())).unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(
        status.message(),
        "missing `authorization: Bearer <token>` metadata"
    );

    fx.set_time(T0 + 10_000);
    let mut request = Request::new(());
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    let status = interceptor(request).unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert_eq!(status.message(), "token expired; request a new one");
    assert!(!status.message().contains(&token));
}

#[test]
fn rejection_messages_never_echo_the_token() {
    let fx = Fixture::new();
    let token = fx.mint(&claims());
    let tampered = format!("{token}x");
    let status = Status::from(fx.verifier.verify(&tampered).unwrap_err());
    assert!(!status.message().contains(&tampered));
    assert!(!status.message().contains(token.split('.').nth(1).unwrap()));
}

#[test]
fn a_cached_token_is_refused_on_the_first_call_after_its_revocation() {
    let fx = Fixture::new();
    let clock: Arc<dyn Clock> = Arc::new(SetClock(Arc::clone(&fx.now)));
    let view = crate::RevocationView::new(Duration::from_secs(300), clock);
    let verifier = fx.verifier.clone();
    assert!(verifier.follow_revocations(view.clone()));
    let token = fx.mint(&claims());

    assert!(
        matches!(
            verifier.verify(&token),
            Err(AuthError::RevocationsUnknown { stale_secs: None })
        ),
        "nothing heard from the staff service yet: fail closed"
    );
    view.replace([]);
    assert!(verifier.verify(&token).is_ok());
    assert!(verifier.verify(&token).is_ok(), "now served from the cache");

    view.apply([("agent-42".to_owned(), 5, T0)]);
    assert!(matches!(verifier.verify(&token), Err(AuthError::Revoked)));
    let status = tonic::Status::from(AuthError::Revoked);
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    fx.set_time(T0 + 301);
    let stale = verifier.verify(&fx.mint(&Claims {
        generation: 9,
        iat: T0 + 301,
        exp: T0 + 600,
        ..claims()
    }));
    let status = tonic::Status::from(stale.unwrap_err());
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
}
