//! The real services on the server runtime: [`Running`] serves any of them until stopped;
//! [`Directory`] is (a) of the directory bench — `prepare_database` (migrations),
//! `Application::build` with the shared runtime's layers and the token verifier, and its
//! outbox relay when asked — plus one access token that every call of the bench reuses.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use roster_auth::{
    PrincipalKind, TokenRequest, TokenSigner, TokenVerifier, VerifierSettings, WorkspaceAccess,
};
use roster_db::DbSettings;
use roster_directory::domain::SystemClock;
use roster_directory::{Application, prepare_database};
use roster_runtime::ServerSettings;
use roster_service::ServiceApp;
use roster_service::relay::{Relay, RelaySettings, RelayStatus, TokenSource};
use tokio::sync::oneshot;
use tonic::metadata::{Ascii, MetadataValue};

/// A service serving on the server runtime until [`Running::stop`].
pub struct Running {
    pub addr: SocketAddr,
    name: &'static str,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Builds the service with `build` on `runtime` (so its pool and background tasks run
    /// there too) and serves it; `build` also hands back what the caller keeps of it.
    pub async fn spawn<T, B>(
        runtime: &tokio::runtime::Handle,
        name: &'static str,
        build: B,
    ) -> anyhow::Result<(Self, T)>
    where
        T: Send + 'static,
        B: Future<Output = anyhow::Result<(ServiceApp, T)>> + Send + 'static,
    {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let served = runtime.spawn(async move {
            let (app, kept) = build.await?;
            let _ = ready_tx.send((app.local_addr(), kept));
            app.run_until_stopped(async move {
                let _ = stop_rx.await;
            })
            .await
        });
        let (addr, kept) = match ready_rx.await {
            Ok(ready) => ready,
            Err(_) => {
                return Err(served
                    .await
                    .with_context(|| format!("the {name} task failed"))?
                    .err()
                    .unwrap_or_else(|| anyhow::anyhow!("the {name} did not start")));
            }
        };
        let running = Self {
            addr,
            name,
            stop: Some(stop_tx),
            served,
        };
        Ok((running, kept))
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.served)
            .await
            .with_context(|| format!("the {} task failed", self.name))?
    }
}

/// The server settings of every service under test: the defaults on an OS-assigned port
/// of 127.0.0.1, a short shutdown.
pub fn server_settings() -> ServerSettings {
    let mut server = ServerSettings::for_tests();
    server.shutdown_grace = Duration::from_secs(2);
    server
}

/// A running directory and the `authorization` value to call it with.
pub struct Directory {
    pub addr: SocketAddr,
    pub authorization: MetadataValue<Ascii>,
    /// The relay's figures, when it runs one.
    pub relay: Option<RelayStatus>,
    running: Running,
}

impl Directory {
    /// Migrates the database, builds the application with a freshly generated Ed25519 key
    /// and serves it, with the default server settings except `request_timeout` when
    /// given. The token is an admin token for `workspace_id`, valid for an hour.
    pub async fn start(
        runtime: &tokio::runtime::Handle,
        database: DbSettings,
        workspace_id: &str,
        request_timeout: Option<Duration>,
    ) -> anyhow::Result<Self> {
        let (signer, keys, _) =
            roster_auth::generate_ed25519("bench-key").context("generating a signing key")?;
        let token = admin_token(&signer, workspace_id)?;
        let verifier = TokenVerifier::new(VerifierSettings::default(), keys);
        Self::start_with(runtime, database, verifier, &token, request_timeout, None).await
    }

    /// Like [`Directory::start`], verifying tokens with `verifier`; the bench's calls send
    /// `token`. With `relay`, its outbox relay runs beside it as in `roster serve`,
    /// delivering where the settings say with the tokens of the source.
    pub async fn start_with(
        runtime: &tokio::runtime::Handle,
        database: DbSettings,
        verifier: TokenVerifier,
        token: &str,
        request_timeout: Option<Duration>,
        relay: Option<(RelaySettings, TokenSource)>,
    ) -> anyhow::Result<Self> {
        let authorization = bearer(token)?;
        let mut server = server_settings();
        if let Some(timeout) = request_timeout {
            server.request_timeout = timeout;
        }
        let (running, relay) = Running::spawn(runtime, "directory", async move {
            let db = prepare_database(&database).await?;
            let relay = match relay {
                Some((settings, tokens)) => Relay::new(
                    &roster_directory::startup::SERVICE,
                    db.clone(),
                    Arc::new(SystemClock),
                    settings,
                    tokens,
                )?,
                None => None,
            };
            // The bench never reads a widget secret back across runs: a fresh key will do.
            let widget_kek = roster_directory::widget_kek::WidgetKeyring::generate("bench")
                .map_err(anyhow::Error::msg)?;
            let app = Application::build(
                server,
                db,
                verifier,
                Arc::new(SystemClock),
                widget_kek,
                relay.as_ref().map(Relay::reader),
            )
            .await?;
            let status = relay.as_ref().map(Relay::status);
            let app = match relay {
                Some(relay) => app.with_relay(relay),
                None => app,
            };
            Ok((app.into_service_app(), status))
        })
        .await?;
        Ok(Self {
            addr: running.addr,
            authorization,
            relay,
            running,
        })
    }

    /// `request` with the bench's token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        authorized(&self.authorization, message)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.running.stop().await
    }
}

/// An agent's admin token for `workspace_id`, signed by `signer`, valid for an hour.
pub fn admin_token(signer: &TokenSigner, workspace_id: &str) -> anyhow::Result<String> {
    let verifier_settings = VerifierSettings::default();
    signer
        .mint_for(
            &TokenRequest {
                subject: "agent-bench".to_owned(),
                kind: PrincipalKind::Agent,
                workspaces: [(workspace_id.to_owned(), WorkspaceAccess::new("admin", &[]))].into(),
                generation: 0,
                ttl: Duration::from_secs(3600),
                issuer: verifier_settings.issuer,
                audience: verifier_settings.audience,
            },
            roster_auth::unix_now(),
        )
        .context("minting the bench's token")
}

/// `Bearer <token>` as a header value.
pub fn bearer(token: &str) -> anyhow::Result<MetadataValue<Ascii>> {
    format!("Bearer {token}")
        .parse()
        .context("the token is not a valid header value")
}

pub fn authorized<T>(authorization: &MetadataValue<Ascii>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.clone());
    request
}
