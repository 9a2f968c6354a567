//! The audit issue's end-to-end delay: from a directory write to its event being listable
//! at the audit service. The real directory runs with its outbox relay, as `roster serve`
//! wires them, delivering to the run's audit service on the same backend; the relay mints
//! its tokens with the bench's key, which the audit service trusts. An open-loop writer
//! creates end-users through the directory's gRPC API and [`audit_delay`]'s reader matches
//! each `end_user.created` event by its target, the new user's id.

use std::sync::Arc;

use roster_auth::{TokenSigner, TokenVerifier, VerifierSettings};
use roster_db::DbSettings;
use roster_directory::startup::SERVICE as DIRECTORY;
use roster_proto::directory::v1 as pb;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use roster_service::relay::{
    RelayFigures, RelaySettings, RelayStatus, SignerFuture, SigningKeys, TokenSource,
};
use tonic::transport::Channel;

use crate::audit_delay::{self, DelayResult, DelaySpec, MatchBy};
use crate::audit_service::AuditService;
use crate::harness::{channels, progress};
use crate::service::{self, Directory};

/// What the part measured, and the relay settings it ran with.
pub struct EndToEnd {
    pub delay: DelayResult,
    pub relay: RelaySettings,
    /// The relay's own count of what it delivered and dead-lettered, at the end.
    pub relay_figures: Option<RelayFigures>,
}

/// The bench's key as the relay's signing keys (the staff service's keyring in `roster
/// serve`).
struct BenchKeys(Arc<TokenSigner>);

impl SigningKeys for BenchKeys {
    fn current_signer(&self) -> SignerFuture<'_> {
        Box::pin(async move { Ok(Arc::clone(&self.0)) })
    }
}

/// Serves the directory on `database` with its relay delivering to `audit`, creates
/// `spec.rate` end-users a second in `spec.workspace` for the warm-up and the window over
/// `connections` connections, and reads their events back over `lister`.
pub async fn run(
    runtime: &tokio::runtime::Handle,
    database: DbSettings,
    audit: &AuditService,
    spec: &DelaySpec,
    connections: usize,
    lister: Channel,
) -> anyhow::Result<EndToEnd> {
    // The directory's own variables tune the relay, as they would a deployed directory's;
    // only where it delivers is the run's.
    let mut relay = RelaySettings::from_env(&DIRECTORY.env_prefix())?;
    relay.url = Some(format!("http://{}", audit.addr()));
    let verifier_settings = VerifierSettings::default();
    let tokens = TokenSource::minted(
        Arc::new(BenchKeys(Arc::new(audit.signer.clone()))),
        DIRECTORY.binary(),
        &verifier_settings,
    );
    let directory = Directory::start_with(
        runtime,
        database,
        TokenVerifier::new(verifier_settings, audit.keys.clone()),
        &service::admin_token(&audit.signer, &spec.workspace)?,
        None,
        Some((relay.clone(), tokens)),
    )
    .await?;
    progress(format!(
        "the directory is serving on {}, its relay delivering to the audit service",
        directory.addr
    ));
    let measured = async {
        let writers = channels(directory.addr, connections).await?;
        let authorization = directory.authorization.clone();
        let workspace = spec.workspace.clone();
        let mut n = 0usize;
        let write = move || {
            n += 1;
            let mut client = DirectoryServiceClient::new(writers[n % writers.len()].clone());
            let request = service::authorized(
                &authorization,
                pb::CreateUserRequest {
                    workspace_id: workspace.clone(),
                    user: Some(pb::User {
                        email: format!("delay.{n}@e2e.test"),
                        name: "Delay Test".to_owned(),
                        ..pb::User::default()
                    }),
                    request_id: String::new(),
                },
            );
            async move {
                let user = client
                    .create_user(request)
                    .await
                    .map_err(|status| format!("{status:?}"))?
                    .into_inner();
                Ok(vec![user.user_id])
            }
        };
        audit_delay::run(spec, write, lister, &audit.reader, MatchBy::TargetId).await
    }
    .await;
    let relay_figures = directory.relay.as_ref().map(RelayStatus::figures);
    directory.stop().await?;
    Ok(EndToEnd {
        delay: measured?,
        relay,
        relay_figures,
    })
}
