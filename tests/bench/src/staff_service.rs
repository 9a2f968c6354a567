//! The real staff service (`roster_staff::Application`, signing with keys in its database)
//! on the server runtime, and what the staff bench prepares through its public API: active
//! agents with passwords, service accounts with their client secrets, and the accounts'
//! first tokens.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use roster_auth::{PrincipalKind, TokenRequest, VerifierSettings, WorkspaceAccess};
use roster_db::DbSettings;
use roster_proto::staff::v1 as pb;
use roster_proto::staff::v1::staff_service_client::StaffServiceClient;
use roster_service::TrustedKeys;
use roster_staff::domain::SystemClock;
use roster_staff::service::SignInPolicy;
use roster_staff::service::keys::{KeySettings, Keyring};
use roster_staff::startup::Signing;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::service::{self, Running};

/// The workspace every agent and service account of the bench belongs to.
pub const WORKSPACE: &str = "bench";
/// Every prepared agent's password (the policy wants 10 characters or more).
pub const PASSWORD: &str = "bench password 0123";

/// A running staff service.
pub struct StaffService {
    running: Running,
    /// Its token-signing keys, to mint in-process exactly as Login does.
    pub keys: Keyring,
    /// An admin of [`WORKSPACE`], signed by a key the service is configured to trust (as a
    /// vendor's backend would be), for preparing agents and service accounts.
    admin: MetadataValue<Ascii>,
}

/// An agent who can sign in.
#[derive(Clone, Debug)]
pub struct Agent {
    pub email: String,
}

/// A service account's client credentials.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
}

impl StaffService {
    /// Migrates the database and serves the staff service with a fresh KEK, the default
    /// key settings and `sign_in`.
    pub async fn start(
        runtime: &tokio::runtime::Handle,
        database: DbSettings,
        sign_in: SignInPolicy,
    ) -> anyhow::Result<Self> {
        let settings = VerifierSettings::default();
        let (signer, _, jwks) =
            roster_auth::generate_ed25519("bench-admin").context("generating a signing key")?;
        let admin = signer
            .mint_for(
                &TokenRequest {
                    subject: "bench-admin".to_owned(),
                    kind: PrincipalKind::Agent,
                    workspaces: [(WORKSPACE.to_owned(), WorkspaceAccess::new("admin", &[]))].into(),
                    generation: 0,
                    ttl: Duration::from_secs(6 * 3600),
                    issuer: settings.issuer.clone(),
                    audience: settings.audience.clone(),
                },
                roster_auth::unix_now(),
            )
            .context("minting the bench's admin token")?;
        let trust = TrustedKeys::new(settings, Some(&jwks)).context("trusting the bench's key")?;
        let (running, keys) = Running::spawn(runtime, "staff service", async move {
            let db = roster_staff::prepare_database(&database).await?;
            let kek = roster_kek::Keyring::generate("bench").map_err(anyhow::Error::msg)?;
            let app = roster_staff::Application::build(
                service::server_settings(),
                db,
                trust,
                Arc::new(SystemClock),
                Signing {
                    kek,
                    keys: KeySettings::default(),
                    sign_in,
                },
            )
            .await?;
            let keys = app.keys().clone();
            Ok((app.into_service_app(), keys))
        })
        .await?;
        Ok(Self {
            running,
            keys,
            admin: service::bearer(&admin)?,
        })
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.running.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    /// `count` ACTIVE agents with `role` and [`PASSWORD`], each invited and accepted over
    /// gRPC (accepting hashes the password with argon2id), `parallel` at a time.
    pub async fn prepare_agents(
        &self,
        channel: &Channel,
        count: usize,
        role: &str,
        parallel: usize,
    ) -> anyhow::Result<Vec<Agent>> {
        let parallel = parallel.clamp(1, count.max(1));
        let mut tasks = tokio::task::JoinSet::new();
        for lane in 0..parallel {
            let mut client = StaffServiceClient::new(channel.clone());
            let admin = self.admin.clone();
            let role = role.to_owned();
            tasks.spawn(async move {
                let mut agents = Vec::new();
                for n in (lane..count).step_by(parallel) {
                    let email = format!("agent{n}@bench.test");
                    let invited = client
                        .invite_agent(service::authorized(
                            &admin,
                            pb::InviteAgentRequest {
                                workspace_id: WORKSPACE.to_owned(),
                                email: email.clone(),
                                name: format!("Agent {n}"),
                                role: role.clone(),
                                ..pb::InviteAgentRequest::default()
                            },
                        ))
                        .await
                        .with_context(|| format!("InviteAgent {email}"))?
                        .into_inner();
                    client
                        .accept_invitation(pb::AcceptInvitationRequest {
                            workspace_id: WORKSPACE.to_owned(),
                            secret: invited.secret,
                            name: String::new(),
                            password: PASSWORD.to_owned(),
                        })
                        .await
                        .with_context(|| format!("AcceptInvitation {email}"))?;
                    agents.push((n, Agent { email }));
                }
                anyhow::Ok(agents)
            });
        }
        let mut agents = Vec::with_capacity(count);
        while let Some(lane) = tasks.join_next().await {
            agents.extend(lane.context("an agent-preparing task failed")??);
        }
        agents.sort_by_key(|(n, _)| *n);
        Ok(agents.into_iter().map(|(_, agent)| agent).collect())
    }

    /// `count` service accounts of [`WORKSPACE`] holding `permissions`.
    pub async fn prepare_service_accounts(
        &self,
        channel: &Channel,
        count: usize,
        permissions: &[&str],
    ) -> anyhow::Result<Vec<Credentials>> {
        let mut client = StaffServiceClient::new(channel.clone());
        let mut accounts = Vec::with_capacity(count);
        for n in 0..count {
            let created = client
                .create_service_account(service::authorized(
                    &self.admin,
                    pb::CreateServiceAccountRequest {
                        workspace_id: WORKSPACE.to_owned(),
                        name: format!("bench-{n}"),
                        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                        ..pb::CreateServiceAccountRequest::default()
                    },
                ))
                .await
                .with_context(|| format!("CreateServiceAccount bench-{n}"))?
                .into_inner();
            let account = created
                .service_account
                .context("CreateServiceAccount answered no account")?;
            accounts.push(Credentials {
                client_id: account.client_id,
                client_secret: created.client_secret,
            });
        }
        Ok(accounts)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.running.stop().await
    }
}

/// Signs `agent` in and returns the access token.
pub async fn login(channel: &Channel, agent: &Agent) -> anyhow::Result<String> {
    let response = StaffServiceClient::new(channel.clone())
        .login(pb::LoginRequest {
            workspace_id: WORKSPACE.to_owned(),
            email: agent.email.clone(),
            password: PASSWORD.to_owned(),
        })
        .await
        .with_context(|| format!("Login {}", agent.email))?;
    Ok(response.into_inner().access_token)
}

/// An access token for `credentials`.
pub async fn issue(channel: &Channel, credentials: &Credentials) -> anyhow::Result<String> {
    let response = StaffServiceClient::new(channel.clone())
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: credentials.client_id.clone(),
            client_secret: credentials.client_secret.clone(),
        })
        .await
        .context("IssueServiceToken")?;
    Ok(response.into_inner().access_token)
}
