//! (a): the real directory — `prepare_database` (migrations), `Application::build` with the
//! shared runtime's layers and the token verifier — on the server runtime, plus one access
//! token that every call of the bench reuses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use roster_auth::{PrincipalKind, TokenRequest, TokenVerifier, VerifierSettings, WorkspaceAccess};
use roster_db::DbSettings;
use roster_directory::domain::SystemClock;
use roster_directory::{Application, prepare_database};
use roster_runtime::ServerSettings;
use tokio::sync::oneshot;
use tonic::metadata::{Ascii, MetadataValue};

/// A running directory and the `authorization` value to call it with.
pub struct Directory {
    pub addr: SocketAddr,
    pub authorization: MetadataValue<Ascii>,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Directory {
    /// Migrates the database, builds the application with a freshly generated Ed25519 key
    /// and serves it on 127.0.0.1 (an OS-assigned port) on `runtime`, with the default server
    /// settings except `request_timeout` when given. The token is an admin token for
    /// `workspace_id`, valid for an hour.
    pub async fn start(
        runtime: &tokio::runtime::Handle,
        database: DbSettings,
        workspace_id: &str,
        request_timeout: Option<Duration>,
    ) -> anyhow::Result<Self> {
        let (signer, keys, _) =
            roster_auth::generate_ed25519("bench-key").context("generating a signing key")?;
        let verifier_settings = VerifierSettings::default();
        let token = signer
            .mint_for(
                &TokenRequest {
                    subject: "agent-bench".to_owned(),
                    kind: PrincipalKind::Agent,
                    workspaces: [(workspace_id.to_owned(), WorkspaceAccess::new("admin", &[]))]
                        .into(),
                    generation: 0,
                    ttl: Duration::from_secs(3600),
                    issuer: verifier_settings.issuer.clone(),
                    audience: verifier_settings.audience.clone(),
                },
                roster_auth::unix_now(),
            )
            .context("minting the bench's token")?;
        let authorization: MetadataValue<Ascii> = format!("Bearer {token}")
            .parse()
            .context("the token is not a valid header value")?;
        let verifier = TokenVerifier::new(verifier_settings, keys);

        let mut server = ServerSettings::for_tests();
        server.shutdown_grace = Duration::from_secs(2);
        if let Some(timeout) = request_timeout {
            server.request_timeout = timeout;
        }
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let served = runtime.spawn(async move {
            let db = prepare_database(&database).await?;
            // The bench never reads a widget secret back across runs: a fresh key will do.
            let widget_kek = roster_directory::widget_kek::WidgetKeyring::generate("bench")
                .map_err(anyhow::Error::msg)?;
            let app =
                Application::build(server, db, verifier, Arc::new(SystemClock), widget_kek).await?;
            let _ = ready_tx.send(app.local_addr());
            app.run_until_stopped(async move {
                let _ = stop_rx.await;
            })
            .await
        });
        let addr = match ready_rx.await {
            Ok(addr) => addr,
            Err(_) => {
                return Err(served
                    .await
                    .context("the directory task failed")?
                    .err()
                    .unwrap_or_else(|| anyhow::anyhow!("the directory did not start")));
            }
        };
        Ok(Self {
            addr,
            authorization,
            stop: Some(stop_tx),
            served,
        })
    }

    /// `request` with the bench's token.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        authorized(&self.authorization, message)
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.served)
            .await
            .context("the directory task failed")?
    }
}

pub fn authorized<T>(authorization: &MetadataValue<Ascii>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.clone());
    request
}
