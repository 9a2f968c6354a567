//! A test identity provider: signs ID tokens with fixed throwaway keys (`fixtures/`), and
//! the staff-service calls that set a connection to it up.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use roster_core::Clock as _;
use roster_proto::staff::v1 as pb;
use serde_json::{Value, json};
use tonic::Status;

use crate::helpers::{TestApp, WS};

pub const ISSUER: &str = "https://idp.example.com";
pub const CLIENT_ID: &str = "roster-test-client";
pub const RSA_KID: &str = "rsa-1";
pub const EC_KID: &str = "ec-1";

const RSA_PEM: &str = include_str!("fixtures/idp-rsa.pem");
const OTHER_RSA_PEM: &str = include_str!("fixtures/idp-rsa-other.pem");
const EC_PEM: &str = include_str!("fixtures/idp-ec.pem");

pub fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap()
}

/// A key the provider never published.
pub fn other_rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(OTHER_RSA_PEM.as_bytes()).unwrap()
}

pub fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_PEM.as_bytes()).unwrap()
}

fn public_jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(key, alg).unwrap()).unwrap();
    jwk["kid"] = kid.into();
    jwk["use"] = "sig".into();
    jwk
}

/// The provider's JWKS: its RSA and its EC signing key.
pub fn jwks() -> String {
    json!({"keys": [
        public_jwk(&rsa_key(), Algorithm::RS256, RSA_KID),
        public_jwk(&ec_key(), Algorithm::ES256, EC_KID),
    ]})
    .to_string()
}

/// The RSA key's modulus (base64url), as an attacker would read it from the JWKS.
pub fn rsa_modulus() -> String {
    public_jwk(&rsa_key(), Algorithm::RS256, RSA_KID)["n"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A fresh nonce, as a front end starts each sign-in with.
pub fn nonce() -> String {
    format!("n-{}", uuid::Uuid::new_v4().simple())
}

/// The claims of a valid ID token for `email` (subject derived from it), issued now by the
/// service's clock.
pub fn claims(app: &TestApp, email: &str, nonce: &str) -> Value {
    let now = app.clock.now_secs();
    json!({
        "iss": ISSUER, "aud": CLIENT_ID, "sub": subject_of(email),
        "iat": now - 5, "exp": now + 3600, "nonce": nonce,
        "email": email, "email_verified": true,
        "name": format!("{} (IdP)", email.split('@').next().unwrap_or_default()),
    })
}

/// The provider's stable id for a person.
pub fn subject_of(email: &str) -> String {
    format!("sub-{}", email.to_lowercase())
}

pub fn sign_with(key: &EncodingKey, alg: Algorithm, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// Signs `claims` as the provider does (RS256, its published key).
pub fn sign(claims: &Value) -> String {
    sign_with(&rsa_key(), Algorithm::RS256, RSA_KID, claims)
}

/// A valid ID token for `email` and its nonce.
pub fn token(app: &TestApp, email: &str) -> (String, String) {
    let nonce = nonce();
    (sign(&claims(app, email, &nonce)), nonce)
}

/// A connection to the test provider, not yet tested or enabled.
pub fn connection(name: &str, mode: pb::SsoProvisioningMode) -> pb::SsoConnection {
    pb::SsoConnection {
        display_name: name.into(),
        provider: pb::SsoProvider::GenericOidc as i32,
        issuer: ISSUER.into(),
        client_id: CLIENT_ID.into(),
        jwks: jwks(),
        default_role: "viewer".into(),
        provisioning_mode: mode as i32,
        ..Default::default()
    }
}

impl TestApp {
    pub async fn create_connection_in(
        &self,
        workspace: &str,
        connection: pb::SsoConnection,
    ) -> Result<pb::SsoConnection, Status> {
        let token = self.tokens.agent(&[workspace], "admin", &[]);
        self.client()
            .create_sso_connection(self.with(
                &token,
                pb::CreateSsoConnectionRequest {
                    workspace_id: workspace.into(),
                    connection: Some(connection),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn create_connection(&self, connection: pb::SsoConnection) -> pb::SsoConnection {
        self.create_connection_in(WS, connection)
            .await
            .expect("create SSO connection")
    }

    pub async fn get_connection(&self, connection_id: &str) -> pb::SsoConnection {
        self.client()
            .get_sso_connection(self.admin(pb::GetSsoConnectionRequest {
                workspace_id: WS.into(),
                connection_id: connection_id.into(),
            }))
            .await
            .expect("get SSO connection")
            .into_inner()
    }

    /// TestSsoConnection with `token` (the caller's access token) for an ID token of
    /// `email`.
    pub async fn test_connection_as(
        &self,
        token: &str,
        connection_id: &str,
        id_token: &str,
        nonce: &str,
    ) -> Result<pb::TestSsoConnectionResponse, Status> {
        self.client()
            .test_sso_connection(self.with(
                token,
                pb::TestSsoConnectionRequest {
                    workspace_id: WS.into(),
                    connection_id: connection_id.into(),
                    id_token: id_token.into(),
                    nonce: nonce.into(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Sets `enabled` alone (with the mask, so false is meant).
    pub async fn set_enabled(
        &self,
        connection_id: &str,
        enabled: bool,
    ) -> Result<pb::SsoConnection, Status> {
        self.client()
            .update_sso_connection(self.admin(pb::UpdateSsoConnectionRequest {
                workspace_id: WS.into(),
                connection: Some(pb::SsoConnection {
                    connection_id: connection_id.into(),
                    enabled,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["enabled".into()],
                }),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    /// A connection created, tested by an admin (a service-like admin token, so any
    /// verified e-mail does) and enabled.
    pub async fn enabled_connection(
        &self,
        name: &str,
        mode: pb::SsoProvisioningMode,
    ) -> pb::SsoConnection {
        let created = self.create_connection(connection(name, mode)).await;
        let (id_token, nonce) = token(self, "it@example.com");
        self.test_connection_as(
            &self.admin_token(),
            &created.connection_id,
            &id_token,
            &nonce,
        )
        .await
        .expect("test sign-in");
        self.set_enabled(&created.connection_id, true)
            .await
            .expect("enable")
    }

    pub async fn sso_login(
        &self,
        connection_id: &str,
        id_token: &str,
        nonce: &str,
    ) -> Result<pb::LoginResponse, Status> {
        self.sso_login_in(WS, connection_id, id_token, nonce).await
    }

    pub async fn sso_login_in(
        &self,
        workspace: &str,
        connection_id: &str,
        id_token: &str,
        nonce: &str,
    ) -> Result<pb::LoginResponse, Status> {
        self.client()
            .sso_login(pb::SsoLoginRequest {
                workspace_id: workspace.into(),
                connection_id: connection_id.into(),
                id_token: id_token.into(),
                nonce: nonce.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Signs `email` in through the connection with a fresh valid token.
    pub async fn sso_login_as(
        &self,
        connection_id: &str,
        email: &str,
    ) -> Result<pb::LoginResponse, Status> {
        let (id_token, nonce) = token(self, email);
        self.sso_login(connection_id, &id_token, &nonce).await
    }
}
