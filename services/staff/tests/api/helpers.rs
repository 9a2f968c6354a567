#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::future::Future;
use std::sync::Arc;

use roster_auth::PrincipalKind;
use roster_db::DbSettings;
use roster_proto::staff::v1 as pb;
use roster_proto::staff::v1::staff_service_client::StaffServiceClient;
use roster_runtime::ServerSettings;
use roster_staff::domain::ShiftedClock;
use roster_staff::service::SignInPolicy;
use roster_staff::service::keys::{KeySettings, Keyring};
use roster_staff::startup::Signing;
use roster_staff::{Application, prepare_database};
use roster_testkit::{Served, TestBackend, TestTokens};
use tonic::transport::Channel;
use tonic::{Request, Status};

pub const WS: &str = "acme";
pub const PASSWORD: &str = "correct horse battery";

/// A running staff service and what a test needs to call it.
#[derive(Clone)]
pub struct TestApp {
    pub client: StaffServiceClient<Channel>,
    pub tokens: TestTokens,
    pub clock: ShiftedClock,
    pub database_url: String,
    /// Its token-signing keys, to mint as Login will.
    pub keys: Keyring,
    /// The KEK sealing them, for a second replica on the same database.
    pub kek: roster_kek::Keyring,
    /// The keys the service verifies with: the test's and its own signing keys.
    pub trust: roster_service::TrustedKeys,
}

#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        roster_testkit::on_both_databases!($crate::helpers::run => $($name),*);
    };
}

pub async fn run<F, Fut>(backend: TestBackend, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    roster_testkit::run(backend, |url| async move { spawn(&url).await }, test).await;
}

pub async fn spawn(database_url: &str) -> (TestApp, Served) {
    let kek = roster_kek::Keyring::generate("test-kek").unwrap();
    spawn_replica(
        database_url,
        TestTokens::generate().0,
        kek,
        ShiftedClock::default(),
    )
    .await
}

/// A staff service on `database_url` trusting `tokens` and sealing keys with `kek`: a
/// second call on one database is a second replica.
pub async fn spawn_replica(
    database_url: &str,
    tokens: TestTokens,
    kek: roster_kek::Keyring,
    clock: ShiftedClock,
) -> (TestApp, Served) {
    let mut db_settings = DbSettings::new(database_url);
    db_settings.max_connections = 8;
    let db = prepare_database(&db_settings)
        .await
        .expect("database ready");
    let trust = tokens.trusted_keys();
    let app = Application::build(
        ServerSettings::for_tests(),
        db,
        trust.clone(),
        Arc::new(clock.clone()),
        Signing {
            kek: kek.clone(),
            keys: KeySettings::default(),
            sign_in: SignInPolicy::default(),
        },
    )
    .await
    .expect("app builds");
    let keys = app.keys().clone();
    let served = roster_testkit::serve(app.into_service_app()).await;
    let app = TestApp {
        client: StaffServiceClient::new(served.channel.clone()),
        tokens,
        clock,
        database_url: database_url.to_owned(),
        keys,
        kek,
        trust,
    };
    (app, served)
}

impl TestApp {
    pub fn client(&self) -> StaffServiceClient<Channel> {
        self.client.clone()
    }

    /// The principal of a token the service issued (or the test minted), as any service
    /// trusting the staff service's keys sees it.
    pub fn verify(&self, token: &str) -> roster_auth::Principal {
        self.trust
            .verifier()
            .verify(token)
            .expect("a token the service trusts")
    }

    /// An agent's token for `workspaces` whose subject is `subject`.
    pub fn token_as(
        &self,
        subject: &str,
        workspaces: &[&str],
        role: &str,
        permissions: &[&str],
    ) -> String {
        self.tokens.at(
            PrincipalKind::Agent,
            subject,
            workspaces,
            role,
            permissions,
            roster_auth::unix_now(),
        )
    }

    pub fn token(&self, role: &str, permissions: &[&str]) -> String {
        self.tokens.agent(&[WS], role, permissions)
    }

    pub fn admin_token(&self) -> String {
        self.token("admin", &[])
    }

    pub fn with<T>(&self, token: &str, message: T) -> Request<T> {
        roster_testkit::with_bearer(token, message)
    }

    pub fn admin<T>(&self, message: T) -> Request<T> {
        self.with(&self.admin_token(), message)
    }

    pub async fn invite_in(
        &self,
        workspace: &str,
        email: &str,
        role: &str,
    ) -> Result<pb::InviteAgentResponse, Status> {
        let token = self.tokens.agent(&[workspace], "admin", &[]);
        self.client()
            .invite_agent(self.with(
                &token,
                pb::InviteAgentRequest {
                    workspace_id: workspace.into(),
                    email: email.into(),
                    name: email.split('@').next().unwrap_or_default().into(),
                    role: role.into(),
                    ..Default::default()
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn invite(&self, email: &str, role: &str) -> pb::InviteAgentResponse {
        self.invite_in(WS, email, role).await.expect("invite")
    }

    pub async fn accept(&self, secret: &str) -> Result<pb::Agent, Status> {
        self.client()
            .accept_invitation(pb::AcceptInvitationRequest {
                workspace_id: WS.into(),
                secret: secret.into(),
                name: String::new(),
                password: PASSWORD.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Signs in with e-mail and password.
    pub async fn login(&self, email: &str, password: &str) -> Result<pb::LoginResponse, Status> {
        self.client()
            .login(pb::LoginRequest {
                workspace_id: WS.into(),
                email: email.into(),
                password: password.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<pb::LoginResponse, Status> {
        self.client()
            .refresh_token(pb::RefreshTokenRequest {
                refresh_token: refresh_token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// The agent's login history as an admin reads it, newest first.
    pub async fn history(&self, agent_id: &str, page_size: i32) -> Vec<pb::LoginAttempt> {
        self.client()
            .list_login_history(self.admin(pb::ListLoginHistoryRequest {
                workspace_id: WS.into(),
                agent_id: agent_id.into(),
                page_size,
                ..Default::default()
            }))
            .await
            .expect("login history")
            .into_inner()
            .attempts
    }

    /// A new service account of the workspace with `permissions`, and its client secret.
    pub async fn service_account(&self, permissions: &[&str]) -> (pb::ServiceAccount, String) {
        let created = self
            .client()
            .create_service_account(self.admin(pb::CreateServiceAccountRequest {
                workspace_id: WS.into(),
                name: format!("sa-{}", uuid::Uuid::now_v7()),
                permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                ..Default::default()
            }))
            .await
            .expect("service account")
            .into_inner();
        (created.service_account.unwrap(), created.client_secret)
    }

    pub async fn issue(
        &self,
        client_id: &str,
        client_secret: &str,
    ) -> Result<pb::IssueServiceTokenResponse, Status> {
        self.client()
            .issue_service_token(pb::IssueServiceTokenRequest {
                client_id: client_id.into(),
                client_secret: client_secret.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// An ACTIVE agent: invited and accepted.
    pub async fn active(&self, email: &str, role: &str) -> pb::Agent {
        let invited = self.invite(email, role).await;
        self.accept(&invited.secret).await.expect("accept")
    }

    pub async fn get(&self, agent_id: &str) -> pb::Agent {
        self.client()
            .get_agent(self.admin(pb::GetAgentRequest {
                workspace_id: WS.into(),
                agent_id: agent_id.into(),
            }))
            .await
            .expect("get agent")
            .into_inner()
    }

    pub async fn usage(&self) -> pb::WorkspaceUsage {
        self.client()
            .get_workspace_usage(self.admin(pb::GetWorkspaceUsageRequest {
                workspace_id: WS.into(),
            }))
            .await
            .expect("usage")
            .into_inner()
    }

    pub async fn set_seats(&self, seat_limit: i32) {
        self.client()
            .set_seat_limit(self.admin(pb::SetSeatLimitRequest {
                workspace_id: WS.into(),
                seat_limit,
            }))
            .await
            .expect("seat limit");
    }

    /// The workspace's outbox events' actions, in order.
    pub async fn actions(&self) -> Vec<String> {
        self.events().await.into_iter().map(|e| e.action).collect()
    }

    pub async fn events(&self) -> Vec<roster_db::outbox::entity::Model> {
        self.events_in(WS).await
    }

    /// The outbox events of `workspace_id` (`*` for the platform's), in order.
    pub async fn events_in(&self, workspace_id: &str) -> Vec<roster_db::outbox::entity::Model> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        let db = roster_db::Db::connect(&DbSettings::new(&self.database_url))
            .await
            .unwrap();
        let rows = roster_db::outbox::entity::Entity::find()
            .filter(roster_db::outbox::entity::Column::WorkspaceId.eq(workspace_id))
            .order_by_asc(roster_db::outbox::entity::Column::Seq)
            .all(db.conn())
            .await
            .unwrap();
        db.close().await;
        rows
    }

    /// Runs `sql` on the service's database, behind its back.
    pub async fn execute_sql(&self, sql: &str) {
        use sea_orm::ConnectionTrait as _;
        let db = roster_db::Db::connect(&DbSettings::new(&self.database_url))
            .await
            .unwrap();
        db.conn().execute_unprepared(sql).await.unwrap();
        db.close().await;
    }
}

/// Roles, teams and the events about them.
impl TestApp {
    pub async fn create_role(&self, name: &str, permissions: &[&str]) -> pb::Role {
        self.client()
            .create_role(self.admin(pb::CreateRoleRequest {
                workspace_id: WS.into(),
                role: Some(pb::Role {
                    name: name.into(),
                    description: format!("{name}'s work"),
                    permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                    ..Default::default()
                }),
            }))
            .await
            .expect("create role")
            .into_inner()
    }

    pub async fn create_team(&self, name: &str, permissions: &[&str]) -> pb::Team {
        self.client()
            .create_team(self.admin(pb::CreateTeamRequest {
                workspace_id: WS.into(),
                team: Some(pb::Team {
                    name: name.into(),
                    permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                    ..Default::default()
                }),
            }))
            .await
            .expect("create team")
            .into_inner()
    }

    /// The last outbox event of `action` in the workspace.
    pub async fn last_event(&self, action: &str) -> roster_db::outbox::entity::Model {
        self.events()
            .await
            .into_iter()
            .rev()
            .find(|event| event.action == action)
            .unwrap_or_else(|| panic!("no {action} event"))
    }
}

/// The `(before, after)` an event's changes record for `field`.
pub fn change_of(
    event: &roster_db::outbox::entity::Model,
    field: &str,
) -> (serde_json::Value, serde_json::Value) {
    let changes: Vec<serde_json::Value> = serde_json::from_value(event.changes.clone()).unwrap();
    let change = changes
        .into_iter()
        .find(|change| change["field"] == field)
        .unwrap_or_else(|| panic!("{} has no change of {field}", event.action));
    (change["before"].clone(), change["after"].clone())
}

pub use roster_testkit::status::{assert_refused, reason, violated_fields};
