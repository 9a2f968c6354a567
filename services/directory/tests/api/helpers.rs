#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use roster_auth::{PrincipalKind, TokenVerifier};
use roster_db::DbSettings;
use roster_directory::domain::ShiftedClock;
use roster_directory::widget_kek::WidgetKeyring;
use roster_directory::{Application, prepare_database};
use roster_proto::directory::v1 as pb;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use roster_runtime::ServerSettings;
use roster_testkit::{Served, TestBackend, TestTokens};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

pub const WS: &str = "acme";

/// A running directory and what a test needs to call it.
#[derive(Clone)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: DirectoryServiceClient<Channel>,
    pub tokens: TestTokens,
    pub clock: ShiftedClock,
    pub backend_name: &'static str,
    pub database_url: String,
    /// The key-encryption key the service seals widget secrets with.
    pub widget_kek: WidgetKeyring,
}

/// Runs every listed test against SQLite, and against PostgreSQL when configured.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        roster_testkit::on_both_databases!($crate::helpers::run => $($name),*);
    };
}

/// A directory on a fresh database of `backend` for `test`.
pub async fn run<F, Fut>(backend: TestBackend, test: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    let backend_name = roster_testkit::backend_name(&backend);
    roster_testkit::run(
        backend,
        |database_url| async move {
            let widget_kek = WidgetKeyring::generate("test-kek").unwrap();
            spawn(&database_url, backend_name, widget_kek).await
        },
        test,
    )
    .await;
}

/// A directory on `database_url`; a second one on the same database stands for another
/// replica (or a restart) with its own configuration. Stop it with [`Served::stop`].
pub async fn spawn(
    database_url: &str,
    backend_name: &'static str,
    widget_kek: WidgetKeyring,
) -> (TestApp, Served) {
    let (tokens, verifier) = TestTokens::generate();
    let mut db_settings = DbSettings::new(database_url);
    db_settings.max_connections = 8;
    let db = prepare_database(&db_settings)
        .await
        .expect("database ready");
    let clock = ShiftedClock::default();
    let mut server = ServerSettings::for_tests();
    server.max_message_bytes = 1024 * 1024;
    let served = serve(
        server,
        db,
        verifier,
        Arc::new(clock.clone()),
        widget_kek.clone(),
    )
    .await;
    let app = TestApp {
        addr: served.addr,
        client: DirectoryServiceClient::new(served.channel.clone()),
        tokens,
        clock,
        backend_name,
        database_url: database_url.to_owned(),
        widget_kek,
    };
    (app, served)
}

/// Builds the directory on `db` and serves it on its own task.
pub async fn serve(
    server: ServerSettings,
    db: roster_db::Db,
    verifier: TokenVerifier,
    clock: Arc<dyn roster_directory::domain::Clock>,
    widget_kek: WidgetKeyring,
) -> Served {
    let app = Application::build(server, db, verifier, clock, widget_kek, None)
        .await
        .expect("app builds");
    roster_testkit::serve(app.into_service_app()).await
}

impl TestApp {
    pub fn token(&self, workspaces: &[&str], role: &str, permissions: &[&str]) -> String {
        self.tokens.agent(workspaces, role, permissions)
    }

    pub fn admin_token(&self) -> String {
        self.token(&[WS], "admin", &[])
    }

    /// A request carrying a token.
    pub fn with_token<T>(&self, token: &str, message: T) -> Request<T> {
        roster_testkit::with_bearer(token, message)
    }

    /// A request as the workspace's admin.
    pub fn admin<T>(&self, message: T) -> Request<T> {
        self.with_token(&self.admin_token(), message)
    }

    pub fn client(&self) -> DirectoryServiceClient<Channel> {
        self.client.clone()
    }

    pub async fn create_user(&self, external_id: &str, email: &str, name: &str) -> pb::User {
        let user = pb::User {
            external_id: external_id.into(),
            email: email.into(),
            name: name.into(),
            ..Default::default()
        };
        self.client()
            .create_user(self.admin(pb::CreateUserRequest {
                workspace_id: WS.into(),
                user: Some(user),
                request_id: String::new(),
            }))
            .await
            .expect("create user")
            .into_inner()
    }

    pub async fn create_customer(&self, customer_id: &str, name: &str) -> pb::Customer {
        let customer = pb::Customer {
            customer_id: customer_id.into(),
            name: name.into(),
            ..Default::default()
        };
        self.client()
            .create_customer(self.admin(pb::CreateCustomerRequest {
                request_id: String::new(),
                workspace_id: WS.into(),
                customer: Some(customer),
            }))
            .await
            .expect("create customer")
            .into_inner()
    }

    pub async fn get_user(&self, user_id: &str) -> Result<pb::User, Status> {
        self.client()
            .get_user(self.admin(pb::GetUserRequest {
                workspace_id: WS.into(),
                user_id: user_id.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn list(&self, filter: &str) -> Vec<pb::User> {
        self.list_page(filter, "", 1000, "", false).await.0
    }

    pub async fn list_page(
        &self,
        filter: &str,
        order_by: &str,
        page_size: i32,
        page_token: &str,
        show_deleted: bool,
    ) -> (Vec<pb::User>, String) {
        let response = self
            .client()
            .list_users(self.admin(pb::ListUsersRequest {
                workspace_id: WS.into(),
                page_size,
                page_token: page_token.into(),
                filter: filter.into(),
                order_by: order_by.into(),
                show_deleted,
            }))
            .await
            .expect("list users")
            .into_inner();
        (response.users, response.next_page_token)
    }

    /// Streams a CSV to ImportUsers in chunks of `chunk` bytes.
    pub async fn import_csv(
        &self,
        csv: &[u8],
        chunk: usize,
        dry_run: bool,
        stop: bool,
    ) -> Result<pb::ImportUsersResponse, Status> {
        let mut messages = vec![pb::ImportUsersRequest {
            part: Some(pb::import_users_request::Part::Header(
                pb::ImportUsersHeader {
                    workspace_id: WS.into(),
                    dry_run,
                    on_error: if stop {
                        pb::ImportErrorMode::Stop as i32
                    } else {
                        pb::ImportErrorMode::SkipRow as i32
                    },
                },
            )),
        }];
        for piece in csv.chunks(chunk.max(1)) {
            messages.push(pb::ImportUsersRequest {
                part: Some(pb::import_users_request::Part::Chunk(piece.to_vec())),
            });
        }
        let request = self.admin(tokio_stream::iter(messages));
        self.client()
            .import_users(request)
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn pending_events(&self) -> Vec<roster_db::AuditEvent> {
        let db = roster_db::Db::connect(&DbSettings::new(&self.database_url))
            .await
            .unwrap();
        let events = roster_db::outbox::pending(db.conn(), 100_000)
            .await
            .unwrap();
        db.close().await;
        events
    }
}

/// Permissions an agent may hold in the directory.
pub const ALL_PERMISSIONS: [&str; 7] = [
    "customers.write",
    "end_users.write",
    "end_users.delete",
    "end_users.erase",
    "end_users.merge",
    "workspace.manage",
    "end_users.export",
];

impl TestApp {
    /// A platform service's token: every workspace, the given permissions.
    pub fn service_token(&self, permissions: &[&str]) -> String {
        self.tokens.service("svc-widget-gateway", permissions)
    }

    /// An admin token that expired 50 minutes ago.
    pub fn expired_token(&self) -> String {
        self.tokens.at(
            PrincipalKind::Agent,
            "agent-admin",
            &[WS],
            "admin",
            &[],
            roster_auth::unix_now() - 3600,
        )
    }

    /// A request as the workspace's admin with an `x-request-id`.
    pub fn admin_with_request_id<T>(&self, request_id: &str, message: T) -> Request<T> {
        let mut request = self.admin(message);
        request
            .metadata_mut()
            .insert("x-request-id", request_id.parse().unwrap());
        request
    }

    pub async fn try_create_user(&self, user: pb::User) -> Result<pb::User, Status> {
        self.create_user_once(user, "").await
    }

    /// CreateUser with an idempotency `request_id` (empty: none), as a future that owns
    /// what it needs, so it can be spawned.
    pub fn create_user_once(
        &self,
        user: pb::User,
        request_id: &str,
    ) -> impl Future<Output = Result<pb::User, Status>> + Send + 'static {
        let mut client = self.client();
        let request = self.admin(pb::CreateUserRequest {
            workspace_id: WS.into(),
            user: Some(user),
            request_id: request_id.into(),
        });
        async move {
            client
                .create_user(request)
                .await
                .map(tonic::Response::into_inner)
        }
    }

    pub async fn upsert(
        &self,
        identity: Option<(pb::IdentitySource, &str)>,
        user: pb::User,
        customer_name: &str,
    ) -> Result<pb::UpsertUserResponse, Status> {
        self.client()
            .upsert_user(self.admin(pb::UpsertUserRequest {
                workspace_id: WS.into(),
                identity: identity.map(|(source, key)| pb::Identity {
                    source: source as i32,
                    key: key.into(),
                }),
                user: Some(user),
                customer_name: customer_name.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn lookup(&self, key: pb::lookup_user_request::Key) -> Result<pb::User, Status> {
        self.client()
            .lookup_user(self.admin(pb::LookupUserRequest {
                workspace_id: WS.into(),
                key: Some(key),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn lookup_external_id(&self, external_id: &str) -> Result<pb::User, Status> {
        self.lookup(pb::lookup_user_request::Key::ExternalId(external_id.into()))
            .await
    }

    pub async fn delete_user(&self, user_id: &str) -> Result<pb::User, Status> {
        self.client()
            .delete_user(self.admin(pb::DeleteUserRequest {
                workspace_id: WS.into(),
                user_id: user_id.into(),
                etag: String::new(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn deactivate_user(&self, user_id: &str) -> Result<pb::User, Status> {
        self.client()
            .deactivate_user(self.admin(pb::DeactivateUserRequest {
                workspace_id: WS.into(),
                user_id: user_id.into(),
                etag: String::new(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn create_guest(&self, name: &str) -> Result<pb::User, Status> {
        self.client()
            .create_guest_user(self.admin(pb::CreateGuestUserRequest {
                request_id: String::new(),
                workspace_id: WS.into(),
                name: name.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn record_activity(
        &self,
        user_id: &str,
        occurred_at: Option<prost_types::Timestamp>,
        conversations: i32,
    ) -> Result<pb::User, Status> {
        self.client()
            .record_activity(self.admin(pb::RecordActivityRequest {
                etag: String::new(),
                request_id: String::new(),
                workspace_id: WS.into(),
                user_id: user_id.into(),
                occurred_at,
                conversations_started: conversations,
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Changes workspace settings named by `paths`.
    pub async fn update_settings(
        &self,
        settings: pb::WorkspaceSettings,
        paths: &[&str],
    ) -> Result<pb::WorkspaceSettings, Status> {
        self.client()
            .update_workspace_settings(self.admin(pb::UpdateWorkspaceSettingsRequest {
                settings: Some(settings),
                update_mask: mask(paths),
                workspace_id: WS.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn set_chat_access(&self, access: pb::ChatAccess) {
        self.update_settings(
            pb::WorkspaceSettings {
                chat_access: access as i32,
                ..Default::default()
            },
            &["chat_access"],
        )
        .await
        .expect("chat access set");
    }

    pub async fn rotate_widget_secret(&self) -> pb::RotateWidgetSecretResponse {
        self.client()
            .rotate_widget_secret(self.admin(pb::RotateWidgetSecretRequest {
                request_id: String::new(),
                workspace_id: WS.into(),
            }))
            .await
            .expect("rotates")
            .into_inner()
    }

    pub async fn import_widget_token(&self, token: &str) -> Result<pb::UpsertUserResponse, Status> {
        self.client()
            .import_user_from_widget_token(self.admin(pb::ImportUserFromWidgetTokenRequest {
                workspace_id: WS.into(),
                token: token.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Runs SQL on the test database directly, as a broken migration or a hand edit would.
    pub async fn execute_sql(&self, statement: &str) {
        use sea_orm::ConnectionTrait as _;
        let db = roster_db::Db::connect(&DbSettings::new(&self.database_url))
            .await
            .unwrap();
        db.conn().execute_unprepared(statement).await.unwrap();
        db.close().await;
    }

    /// Every text column of the workspace's settings row, for looking for what must not be
    /// stored.
    pub async fn settings_row_text(&self) -> String {
        use sea_orm::ConnectionTrait as _;
        let db = roster_db::Db::connect(&DbSettings::new(&self.database_url))
            .await
            .unwrap();
        let columns = [
            "chat_access",
            "widget_secret",
            "previous_widget_secret",
            "widget_keys",
        ];
        let statement = sea_orm::Statement::from_string(
            db.conn().get_database_backend(),
            format!(
                "SELECT {} FROM workspace_settings WHERE workspace_id = '{WS}'",
                columns.join(", ")
            ),
        );
        let rows = db.conn().query_all_raw(statement).await.unwrap();
        db.close().await;
        let mut text = String::new();
        for row in rows {
            for column in columns {
                let value: Option<String> = row.try_get("", column).unwrap();
                text.push_str(&format!("{column}={value:?}\n"));
            }
        }
        text
    }

    /// Every user the filter matches, over all pages.
    pub async fn list_all(
        &self,
        filter: &str,
        order_by: &str,
        show_deleted: bool,
    ) -> Vec<pb::User> {
        let mut users = Vec::new();
        let mut token = String::new();
        loop {
            let (page, next) = self
                .list_page(filter, order_by, 1000, &token, show_deleted)
                .await;
            users.extend(page);
            if next.is_empty() {
                return users;
            }
            token = next;
        }
    }

    /// How many outbox events record `action`.
    pub async fn count_events(&self, action: &str) -> usize {
        self.pending_events()
            .await
            .into_iter()
            .filter(|event| event.action == action)
            .count()
    }

    /// Outbox events about one target, oldest first.
    pub async fn events_for(&self, target_id: &str) -> Vec<roster_db::AuditEvent> {
        self.pending_events()
            .await
            .into_iter()
            .filter(|event| event.target_id == target_id)
            .collect()
    }
}

/// Signs a widget token with an HS256 secret, as a vendor's backend does.
pub fn widget_token(secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Fogbender-style claims for one user of one customer.
pub fn widget_claims(user_id: &str, email: &str, customer_id: &str) -> serde_json::Value {
    serde_json::json!({
        "userId": user_id,
        "userEmail": email,
        "userName": format!("User {user_id}"),
        "customerId": customer_id,
        "customerName": format!("Customer {customer_id}"),
        "iat": roster_auth::unix_now(),
        "exp": roster_auth::unix_now() + 3600,
    })
}

pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// A user with an external id and e-mail, for requests.
pub fn user(external_id: &str, email: &str) -> pb::User {
    pb::User {
        external_id: external_id.into(),
        email: email.into(),
        ..Default::default()
    }
}

/// The google.rpc.BadRequest field violations of a status, as (field, description).
pub fn field_violations(status: &Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt as _;
    status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

/// INVALID_ARGUMENT whose message and field violations name `field`.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) -> Status {
    let status = assert_code(result, Code::InvalidArgument);
    let violations = field_violations(&status);
    assert!(
        violations.iter().any(|(f, _)| f == field),
        "expected a field violation for {field}, got {violations:?} ({status:?})"
    );
    assert!(
        status.message().contains(field),
        "message should name {field}: {}",
        status.message()
    );
    status
}

pub fn ts(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: i32::try_from(us.rem_euclid(1_000_000) * 1000).unwrap(),
    }
}

pub fn us(timestamp: Option<&prost_types::Timestamp>) -> i64 {
    timestamp.map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
}

#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(value) => panic!("expected {code:?}, got Ok({value:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}
