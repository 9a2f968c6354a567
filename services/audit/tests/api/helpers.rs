#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::future::Future;
use std::sync::Arc;

use roster_audit::domain::ShiftedClock;
use roster_audit::settings::LogSettings;
use roster_audit::startup::Signing;
use roster_audit::{Application, prepare_database};
use roster_db::DbSettings;
use roster_proto::audit::v1 as pb;
use roster_proto::audit::v1::audit_service_client::AuditServiceClient;
use roster_runtime::ServerSettings;
use roster_testkit::{Served, TestBackend, TestTokens};
use tonic::transport::Channel;
use tonic::{Request, Status};

pub const WS: &str = "acme";
pub const ORIGIN: &str = "roster.test/audit";
pub const APPEND: &str = "audit_log.append";

/// A running audit service and what a test needs to call it.
#[derive(Clone)]
pub struct TestApp {
    pub client: AuditServiceClient<Channel>,
    pub tokens: TestTokens,
    pub clock: ShiftedClock,
    pub database_url: String,
    pub kek: roster_kek::Keyring,
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
    spawn_replica(database_url, TestTokens::generate().0, kek).await
}

/// An audit service on `database_url` trusting `tokens`, its key sealed with `kek`: a
/// second call on one database is a second replica (or the same service restarted).
pub async fn spawn_replica(
    database_url: &str,
    tokens: TestTokens,
    kek: roster_kek::Keyring,
) -> (TestApp, Served) {
    let mut db_settings = DbSettings::new(database_url);
    db_settings.max_connections = 8;
    let db = prepare_database(&db_settings)
        .await
        .expect("database ready");
    let clock = ShiftedClock::default();
    let app = Application::build(
        ServerSettings::for_tests(),
        db,
        tokens.verifier(),
        Arc::new(clock.clone()),
        Signing {
            kek: kek.clone(),
            log: LogSettings {
                origin: ORIGIN.into(),
            },
        },
    )
    .await
    .expect("app builds");
    let served = roster_testkit::serve(app.into_service_app()).await;
    let app = TestApp {
        client: AuditServiceClient::new(served.channel.clone()),
        tokens,
        clock,
        database_url: database_url.to_owned(),
        kek,
    };
    (app, served)
}

/// An event as the directory's relay would send it: an agent changed an end-user's e-mail.
pub fn event(action: &str) -> pb::AuditEvent {
    event_in(WS, action)
}

pub fn event_in(workspace: &str, action: &str) -> pb::AuditEvent {
    pb::AuditEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        workspace_id: workspace.into(),
        occurred_at: Some(prost_types::Timestamp {
            seconds: 1_780_000_000,
            nanos: 123_456_000,
        }),
        actor: Some(pb::Actor {
            kind: pb::ActorKind::Agent as i32,
            id: "agent-1".into(),
            display_name: "Nyota Uhura".into(),
        }),
        action: action.into(),
        target: Some(pb::Target {
            r#type: "end_user".into(),
            id: "user-1".into(),
        }),
        changes: vec![pb::FieldChange {
            field: "email".into(),
            before_json: Some("\"kirk@example.com\"".into()),
            after_json: Some("\"jtk@example.com\"".into()),
            ..Default::default()
        }],
        outcome: pb::Outcome::Success as i32,
        request_id: "req-1".into(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        caller_ip: "192.0.2.10".into(),
        user_agent: "grpcurl/1.8.6".into(),
        source_service: "directory".into(),
        schema_version: 1,
        ..Default::default()
    }
}

impl TestApp {
    pub fn client(&self) -> AuditServiceClient<Channel> {
        self.client.clone()
    }

    /// The relay's token: a service for every workspace that may append.
    pub fn producer_token(&self) -> String {
        self.tokens.service("directory-relay", &[APPEND])
    }

    pub fn admin_token(&self) -> String {
        self.tokens.agent(&[WS], "admin", &[])
    }

    pub fn with<T>(&self, token: &str, message: T) -> Request<T> {
        roster_testkit::with_bearer(token, message)
    }

    pub fn admin<T>(&self, message: T) -> Request<T> {
        self.with(&self.admin_token(), message)
    }

    pub async fn try_append(
        &self,
        events: Vec<pb::AuditEvent>,
    ) -> Result<Vec<pb::AppendedEvent>, Status> {
        self.client()
            .append_events(self.with(&self.producer_token(), pb::AppendEventsRequest { events }))
            .await
            .map(|response| response.into_inner().events)
    }

    pub async fn append(&self, events: Vec<pb::AuditEvent>) -> Vec<pb::AppendedEvent> {
        self.try_append(events).await.expect("append")
    }

    /// `count` events appended one batch each, their ids in order.
    pub async fn append_each(&self, count: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for at in 0..count {
            let event = event(&format!("end_user.updated_{at}"));
            ids.push(event.event_id.clone());
            self.append(vec![event]).await;
        }
        ids
    }

    pub async fn checkpoint_in(&self, workspace: &str) -> pb::Checkpoint {
        let token = self.tokens.agent(&[workspace], "admin", &[]);
        self.client()
            .get_checkpoint(self.with(
                &token,
                pb::GetCheckpointRequest {
                    workspace_id: workspace.into(),
                },
            ))
            .await
            .expect("checkpoint")
            .into_inner()
    }

    pub async fn checkpoint(&self) -> pb::Checkpoint {
        self.checkpoint_in(WS).await
    }

    pub async fn log_key(&self, workspace: &str) -> pb::LogKey {
        self.client()
            .get_log_key(pb::GetLogKeyRequest {
                workspace_id: workspace.into(),
            })
            .await
            .expect("log key")
            .into_inner()
    }

    pub async fn verify(&self) -> pb::VerifyLogResponse {
        self.client()
            .verify_log(self.admin(pb::VerifyLogRequest {
                workspace_id: WS.into(),
            }))
            .await
            .expect("verify")
            .into_inner()
    }

    pub async fn list(&self, request: pb::ListEventsRequest) -> pb::ListEventsResponse {
        self.client()
            .list_events(self.admin(pb::ListEventsRequest {
                workspace_id: WS.into(),
                ..request
            }))
            .await
            .expect("list")
            .into_inner()
    }

    pub async fn get(&self, event_id: &str) -> Result<pb::AuditEvent, Status> {
        self.client()
            .get_event(self.admin(pb::GetEventRequest {
                workspace_id: WS.into(),
                event_id: event_id.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }

    /// Runs `sql` on the service's database behind its back, as an operator at a console.
    pub async fn execute_sql(&self, sql: &str) -> Result<(), roster_db::DbError> {
        use sea_orm::ConnectionTrait as _;
        let db = roster_db::Db::connect(&DbSettings::new(&self.database_url)).await?;
        let result = db.conn().execute_unprepared(sql).await.map(|_| ());
        db.close().await;
        result.map_err(roster_db::DbError::from)
    }

    /// Runs `sql` with the append-only triggers out of the way: what someone with the
    /// database's owner role (or the file) can do, and what verification must catch.
    pub async fn tamper(&self, sql: &str) {
        let bypass = if self.is_postgres() {
            // Replica mode skips ordinary triggers for this session (superuser only).
            format!("SET session_replication_role = replica; {sql}")
        } else {
            let triggers = [
                "audit_events_no_update",
                "audit_events_no_delete",
                "audit_tree_hashes_no_update",
                "audit_tree_hashes_no_delete",
                "audit_checkpoints_no_update",
                "audit_checkpoints_no_delete",
            ];
            let drops: String = triggers
                .iter()
                .map(|name| format!("DROP TRIGGER IF EXISTS {name}; "))
                .collect();
            format!("{drops}{sql}")
        };
        self.execute_sql(&bypass).await.expect("tampering succeeds");
    }
}

pub use roster_testkit::status::{assert_refused, violated_fields};
