//! A producer's access tokens for the audit service: platform service tokens (every
//! workspace, kind `service`), naming `audit_log.append` and `audit_log.erase` for the
//! relay, or `audit_log.view` for reading a subject's events back (the directory's
//! ExportUser, through [`crate::audit_reader`]).
//!
//! Two ways to hold one, and no third: a producer that signs tokens itself (the staff
//! service, and the directory inside the `roster` binary, which borrows the staff service's
//! keys in the same process) mints a short-lived one with its signing key; any other asks
//! the staff service for one with a platform service account's client credentials. Either
//! way the token is kept until shortly before it expires and dropped when the audit service
//! answers UNAUTHENTICATED (a rotated secret, a revoked account, a key it does not know).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use roster_auth::catalogues::{AUDIT_LOG_APPEND, AUDIT_LOG_ERASE, AUDIT_LOG_VIEW};
use roster_auth::{
    ALL_WORKSPACES, PrincipalKind, TokenRequest, TokenSigner, VerifierSettings, WorkspaceAccess,
};
use roster_proto::staff::v1::IssueServiceTokenRequest;
use roster_proto::staff::v1::staff_service_client::StaffServiceClient;
use secrecy::{ExposeSecret as _, SecretString};
use tokio::time::Instant;
use tonic::transport::Channel;

/// What a minted token lasts: long enough that minting is rare, short enough that a
/// leaked one is soon worthless.
const MINTED_TTL: Duration = Duration::from_secs(300);
/// A call to the staff service that takes longer has failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The role platform service tokens carry (as the staff service's service accounts do).
const SERVICE_ROLE: &str = "service";

/// The signing keys of a process that signs tokens (the staff service's keyring), for
/// [`TokenSource::minted`]; the kit cannot name the staff crate, which depends on it.
pub trait SigningKeys: Send + Sync + 'static {
    /// The key that signs now.
    fn current_signer(&self) -> SignerFuture<'_>;
}

/// What [`SigningKeys::current_signer`] answers.
pub type SignerFuture<'a> =
    Pin<Box<dyn Future<Output = anyhow::Result<Arc<TokenSigner>>> + Send + 'a>>;

/// Where the relay's tokens come from, and the one it holds.
pub struct TokenSource {
    origin: Origin,
    held: tokio::sync::Mutex<Option<Held>>,
}

#[derive(Clone)]
enum Origin {
    /// IssueServiceToken at the staff service.
    ClientCredentials {
        staff: StaffServiceClient<Channel>,
        client_id: String,
        client_secret: SecretString,
    },
    /// Signed here, with the process's own keys.
    Minted {
        keys: Arc<dyn SigningKeys>,
        subject: String,
        issuer: String,
        audience: String,
        /// What the token may do: a minted token names only what its user needs.
        permissions: &'static [&'static str],
    },
}

/// What the relay does at the audit service.
const PRODUCING: &[&str] = &[AUDIT_LOG_APPEND.name, AUDIT_LOG_ERASE.name];
/// What reading a subject's events back needs.
const READING: &[&str] = &[AUDIT_LOG_VIEW.name];

struct Held {
    token: String,
    /// When to get a new one: four fifths into its life, before any clock skew matters.
    renew_at: Instant,
}

impl TokenSource {
    /// Tokens issued by the staff service on `staff` for the platform service account
    /// `client_id`.
    pub fn client_credentials(
        staff: Channel,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Self {
        Self::new(Origin::ClientCredentials {
            staff: StaffServiceClient::new(staff),
            client_id: client_id.into(),
            client_secret,
        })
    }

    /// Tokens minted with `keys` for `subject` (`roster-staff`, the relay's name in the
    /// audit log), for the issuer and audience the verifiers expect.
    pub fn minted(
        keys: Arc<dyn SigningKeys>,
        subject: impl Into<String>,
        verifier: &VerifierSettings,
    ) -> Self {
        Self::new(Origin::Minted {
            keys,
            subject: subject.into(),
            issuer: verifier.issuer.clone(),
            audience: verifier.audience.clone(),
            permissions: PRODUCING,
        })
    }

    /// A source of tokens for reading the log back, from the same origin: minted ones name
    /// `audit_log.view` alone; a service account's carry what the account holds, so the
    /// account needs `audit_log.view` too.
    pub fn for_reading(&self) -> Self {
        let origin = match &self.origin {
            Origin::Minted {
                keys,
                subject,
                issuer,
                audience,
                permissions: _,
            } => Origin::Minted {
                keys: keys.clone(),
                subject: subject.clone(),
                issuer: issuer.clone(),
                audience: audience.clone(),
                permissions: READING,
            },
            credentials @ Origin::ClientCredentials { .. } => credentials.clone(),
        };
        Self::new(origin)
    }

    fn new(origin: Origin) -> Self {
        Self {
            origin,
            held: tokio::sync::Mutex::new(None),
        }
    }

    /// What kind of source, for the log.
    pub fn describe(&self) -> &'static str {
        match self.origin {
            Origin::ClientCredentials { .. } => "client credentials",
            Origin::Minted { .. } => "minted in-process",
        }
    }

    /// The token to send now: the one held, or a new one.
    ///
    /// # Errors
    ///
    /// The staff service did not issue one (unreachable, or the credentials refused), or
    /// minting failed.
    pub async fn token(&self) -> anyhow::Result<String> {
        let mut held = self.held.lock().await;
        if let Some(current) = held.as_ref()
            && Instant::now() < current.renew_at
        {
            return Ok(current.token.clone());
        }
        let (token, lifetime) = self.obtain().await?;
        *held = Some(Held {
            token: token.clone(),
            renew_at: Instant::now() + lifetime.mul_f64(0.8),
        });
        Ok(token)
    }

    /// `message` as a request carrying the token to send now as its bearer.
    ///
    /// # Errors
    ///
    /// No token could be had (see [`TokenSource::token`]), or it is not a header value.
    pub async fn request<M>(&self, message: M) -> anyhow::Result<tonic::Request<M>> {
        let token = self.token().await?;
        let bearer = format!("Bearer {token}")
            .parse()
            .context("the token is not a valid header value")?;
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", bearer);
        Ok(request)
    }

    /// Drops the held token, after the audit service refused it.
    pub async fn forget(&self) {
        *self.held.lock().await = None;
    }

    async fn obtain(&self) -> anyhow::Result<(String, Duration)> {
        match &self.origin {
            Origin::ClientCredentials {
                staff,
                client_id,
                client_secret,
            } => {
                let mut request = tonic::Request::new(IssueServiceTokenRequest {
                    client_id: client_id.clone(),
                    client_secret: client_secret.expose_secret().to_owned(),
                });
                request.set_timeout(CALL_TIMEOUT);
                let issued = staff
                    .clone()
                    .issue_service_token(request)
                    .await
                    .map_err(|status| {
                        anyhow::anyhow!(
                            "IssueServiceToken answered {:?}: {}",
                            status.code(),
                            status.message()
                        )
                    })?
                    .into_inner();
                let expires_at = issued.access_token_expires_at.map_or(0, |at| at.seconds);
                let left =
                    u64::try_from(expires_at.saturating_sub(roster_auth::unix_now())).unwrap_or(0);
                Ok((issued.access_token, Duration::from_secs(left)))
            }
            Origin::Minted {
                keys,
                subject,
                issuer,
                audience,
                permissions,
            } => {
                let signer = keys.current_signer().await?;
                let request = TokenRequest {
                    subject: subject.clone(),
                    kind: PrincipalKind::Service,
                    workspaces: BTreeMap::from([(
                        ALL_WORKSPACES.to_owned(),
                        WorkspaceAccess::new(SERVICE_ROLE, permissions),
                    )]),
                    // Nobody revokes the process's own subject: it holds the key.
                    generation: 0,
                    ttl: MINTED_TTL,
                    issuer: issuer.clone(),
                    audience: audience.clone(),
                };
                let token = signer
                    .mint_for(&request, roster_auth::unix_now())
                    .context("minting the relay's token")?;
                Ok((token, MINTED_TTL))
            }
        }
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("origin", &self.describe())
            .finish_non_exhaustive()
    }
}
