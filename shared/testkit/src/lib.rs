//! What every Roster service's tests share, so a service's test harness holds only what is
//! its own (its clients and shortcuts for its calls).
//!
//! - [`on_both_databases!`]: each test as two, `name::sqlite` and `name::postgres`, each on
//!   a database of its own so tests run in parallel and leave nothing behind. The
//!   PostgreSQL half is compiled as *ignored* when `ROSTER_TEST_DATABASE_URL` is not set,
//!   so the runner reports it skipped rather than passed; the crate's build script sets
//!   the cfg that decides it (`build = "../../shared/testkit/postgres_tests_cfg.rs"`).
//! - [`run`]: a fresh database, the service started on it, the test, then the server
//!   stopped and the database dropped, also when the test panics.
//! - [`serve`]: a bound service served on its own task, with a channel to it.
//! - [`TestTokens`]: tokens signed with a key generated for the test, and the verifier
//!   that accepts them.

// A test-support crate: a failure to set up is the test's failure, reported by a panic.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::FutureExt as _;
use roster_auth::{
    ALL_WORKSPACES, PrincipalKind, TokenRequest, TokenSigner, TokenVerifier, VerifierSettings,
    WorkspaceAccess,
};
pub mod dump;
pub mod status;

pub use roster_db::testing::{TestBackend, TestDatabase};
use roster_service::ServiceApp;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// Runs every listed test function (`async fn name(app: App)`) as `name::sqlite` and
/// `name::postgres` through `$runner(backend, name)`, usually a service's wrapper of
/// [`run`]:
///
/// ```ignore
/// roster_testkit::on_both_databases!(crate::helpers::run => creates_a_user, lists_users);
/// ```
#[macro_export]
macro_rules! on_both_databases {
    ($runner:path => $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $runner($crate::TestBackend::Sqlite, super::$name).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(roster_postgres_tests),
                ignore = "ROSTER_TEST_DATABASE_URL is not set"
            )]
            async fn postgres() {
                $runner($crate::postgres(), super::$name).await;
            }
        }
    )*};
}

/// Runs every listed test as `name::postgres` only, ignored without
/// `ROSTER_TEST_DATABASE_URL`: for behaviour SQLite cannot have (row locks held by another
/// session, a server that stops answering), so no SQLite half passes without checking
/// anything.
#[macro_export]
macro_rules! on_postgres_only {
    ($runner:path => $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(roster_postgres_tests),
                ignore = "ROSTER_TEST_DATABASE_URL is not set"
            )]
            async fn postgres() {
                $runner($crate::postgres(), super::$name).await;
            }
        }
    )*};
}

/// The PostgreSQL server named by `ROSTER_TEST_DATABASE_URL`, for a test compiled to run
/// only when it is set.
pub fn postgres() -> TestBackend {
    TestBackend::from_env_postgres()
        .expect("ROSTER_TEST_DATABASE_URL names a PostgreSQL server (an admin URL)")
}

/// `"sqlite"` or `"postgres"`, for messages and for tests whose expectations differ.
pub fn backend_name(backend: &TestBackend) -> &'static str {
    match backend {
        TestBackend::Sqlite => "sqlite",
        TestBackend::Postgres(_) => "postgres",
    }
}

/// Runs `test` against what `start` builds on a fresh database of `backend`: the value a
/// test works with and the server behind it. Afterwards the server is stopped and the
/// database dropped, also when the test panicked, whose panic is then raised again.
pub async fn run<App, Start, Started, Test, Tested>(backend: TestBackend, start: Start, test: Test)
where
    Start: FnOnce(String) -> Started,
    Started: Future<Output = (App, Served)>,
    Test: FnOnce(App) -> Tested,
    Tested: Future<Output = ()>,
{
    roster_runtime::init_test_telemetry();
    let database = TestDatabase::create(&backend)
        .await
        .expect("a test database");
    let (app, served) = start(database.url.clone()).await;
    let outcome = std::panic::AssertUnwindSafe(test(app)).catch_unwind().await;
    served.stop().await;
    database.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A service serving on its own task until stopped, and a channel to it.
pub struct Served {
    pub addr: SocketAddr,
    pub channel: Channel,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

impl Served {
    /// Asks the server to shut down and waits (up to 10 s) for it to finish.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
    }
}

/// Serves `app` (bound, usually on port 0) on its own task and connects a channel to it.
pub async fn serve(app: ServiceApp) -> Served {
    let addr = app.local_addr();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = stop.await;
        })
        .await
        .expect("the service serves until stopped");
    });
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("a loopback URL")
        .connect()
        .await
        .expect("the service accepts connections");
    Served {
        addr,
        channel,
        shutdown,
        server,
    }
}

/// Signs tokens the way a vendor's backend would, with a key generated for one test.
#[derive(Clone)]
pub struct TestTokens {
    signer: TokenSigner,
}

impl TestTokens {
    /// A fresh signing key, and a verifier (default issuer and audience) that trusts it.
    pub fn generate() -> (TestTokens, TokenVerifier) {
        let (signer, keys, _) = roster_auth::generate_ed25519("test-key").expect("a key pair");
        let verifier = TokenVerifier::new(VerifierSettings::default(), keys);
        (TestTokens { signer }, verifier)
    }

    /// The key these tokens are signed with, for a service under test that issues tokens
    /// the test's verifiers must accept.
    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    /// Another verifier trusting these tokens, for a second server in the same test.
    pub fn verifier(&self) -> TokenVerifier {
        let keys = roster_auth::KeySet::from_jwks_json(&self.jwks_json()).expect("a JWKS we wrote");
        TokenVerifier::new(VerifierSettings::default(), keys)
    }

    /// The public key as a JWKS, as a service is configured with (`ROSTER_AUTH_JWKS_FILE`).
    pub fn jwks_json(&self) -> String {
        self.signer.jwks_json().expect("the public key as a JWKS")
    }

    /// Keys trusting these tokens as configured ones, for a service that also learns keys
    /// (the staff service its own, another service the staff service's).
    pub fn trusted_keys(&self) -> roster_service::TrustedKeys {
        roster_service::TrustedKeys::new(VerifierSettings::default(), Some(&self.jwks_json()))
            .expect("a JWKS we wrote")
    }

    /// An agent's token with the same role and permissions in each of `workspaces`, valid
    /// for ten minutes from now.
    pub fn agent(&self, workspaces: &[&str], role: &str, permissions: &[&str]) -> String {
        self.agent_with(
            &format!("agent-{role}"),
            &workspaces
                .iter()
                .map(|w| (*w, WorkspaceAccess::new(role, permissions)))
                .collect::<Vec<_>>(),
        )
    }

    /// Agent `subject`'s token holding its own access in each workspace listed.
    pub fn agent_with(&self, subject: &str, workspaces: &[(&str, WorkspaceAccess)]) -> String {
        self.mint(
            PrincipalKind::Agent,
            subject,
            workspaces
                .iter()
                .map(|(w, access)| ((*w).to_owned(), access.clone()))
                .collect(),
            roster_auth::unix_now(),
        )
    }

    /// A platform service's token for every workspace with `permissions`.
    pub fn service(&self, subject: &str, permissions: &[&str]) -> String {
        self.mint(
            PrincipalKind::Service,
            subject,
            [(
                ALL_WORKSPACES.to_owned(),
                WorkspaceAccess::new("service", permissions),
            )]
            .into(),
            roster_auth::unix_now(),
        )
    }

    /// Any principal's token with one role everywhere, issued at `issued_at_unix` and valid
    /// for ten minutes from then: in the past for an expired token, in the future for one
    /// not yet valid.
    pub fn at(
        &self,
        kind: PrincipalKind,
        subject: &str,
        workspaces: &[&str],
        role: &str,
        permissions: &[&str],
        issued_at_unix: i64,
    ) -> String {
        self.mint(
            kind,
            subject,
            workspaces
                .iter()
                .map(|w| ((*w).to_owned(), WorkspaceAccess::new(role, permissions)))
                .collect(),
            issued_at_unix,
        )
    }

    fn mint(
        &self,
        kind: PrincipalKind,
        subject: &str,
        workspaces: BTreeMap<String, WorkspaceAccess>,
        issued_at_unix: i64,
    ) -> String {
        let defaults = VerifierSettings::default();
        let request = TokenRequest {
            subject: subject.to_owned(),
            kind,
            workspaces,
            generation: 0,
            ttl: Duration::from_secs(600),
            issuer: defaults.issuer,
            audience: defaults.audience,
        };
        self.signer
            .mint_for(&request, issued_at_unix)
            .expect("valid token claims")
    }
}

/// Tokens an attacker might present, each of which every service must answer
/// UNAUTHENTICATED without panicking: `tokens` signs the well-formed ones (so only the
/// named defect is wrong), for an admin of `workspace`.
pub fn hostile_tokens(tokens: &TestTokens, workspace: &str) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let b64 = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let now = roster_auth::unix_now();
    let defaults = VerifierSettings::default();
    let claims = serde_json::json!({
        "iss": defaults.issuer, "aud": defaults.audience, "sub": "agent-attacker",
        "iat": now, "exp": now + 600, "jti": "attack", "kind": "agent",
        "workspaces": { workspace: { "role": "admin", "permissions": [] } },
    });
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut payload = claims.clone();
        edit(&mut payload);
        tokens
            .signer
            .sign_unchecked(&payload)
            .expect("a signed payload")
    };
    let valid = with(&|_| {});
    let parts: Vec<&str> = valid.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    let flipped = |text: &str| {
        let mut bytes = text.as_bytes().to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).expect("base64url stays ASCII")
    };
    let public_x = {
        let jwks: serde_json::Value =
            serde_json::from_str(&tokens.jwks_json()).expect("our JWKS is JSON");
        jwks["keys"][0]["x"].as_str().unwrap_or_default().to_owned()
    };
    // The classic key confusion: the public key used as an HMAC secret.
    let hmac_with_public_key = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(tokens.signer.kid().to_owned());
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(public_x.as_bytes()),
        )
        .expect("an HS256 token")
    };
    vec![
        (
            "alg none",
            format!(
                "{}.{payload}.",
                b64(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": tokens.signer.kid()}))
            ),
        ),
        ("HS256 keyed with the public key", hmac_with_public_key),
        (
            "RS256 header",
            format!(
                "{}.{payload}.{signature}",
                b64(&serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": tokens.signer.kid()}))
            ),
        ),
        (
            "expired",
            with(&|p| {
                p["iat"] = (now - 3600).into();
                p["exp"] = (now - 1800).into();
            }),
        ),
        (
            "exp as a string",
            with(&|p| p["exp"] = (now + 600).to_string().into()),
        ),
        (
            "no aud",
            with(&|p| drop(p.as_object_mut().map(|o| o.remove("aud")))),
        ),
        (
            "no iss",
            with(&|p| drop(p.as_object_mut().map(|o| o.remove("iss")))),
        ),
        (
            "no sub",
            with(&|p| drop(p.as_object_mut().map(|o| o.remove("sub")))),
        ),
        (
            "wrong audience",
            with(&|p| p["aud"] = "someone-else".into()),
        ),
        (
            "unknown kid",
            format!(
                "{}.{payload}.{signature}",
                b64(&serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "no-such-key"}))
            ),
        ),
        (
            "bit-flipped signature",
            format!("{header}.{payload}.{}", flipped(signature)),
        ),
        (
            "bit-flipped payload",
            format!("{header}.{}.{signature}", flipped(payload)),
        ),
        (
            "100 KB token",
            with(&|p| p["padding"] = "x".repeat(100 * 1024).into()),
        ),
        ("not a JWT", "garbage".to_owned()),
    ]
}

/// `message` as a request carrying `token` as its bearer credential.
pub fn with_bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .expect("a token is visible ASCII");
    request.metadata_mut().insert("authorization", value);
    request
}

/// A request with `token` as its bearer, or with no credentials at all: what an
/// authorization matrix sends for each kind of caller.
pub fn with_optional_bearer<T>(token: Option<&str>, message: T) -> tonic::Request<T> {
    match token {
        Some(token) => with_bearer(token, message),
        None => tonic::Request::new(message),
    }
}
