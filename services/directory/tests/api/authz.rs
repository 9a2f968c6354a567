//! Who may call what: a table over every RPC of DirectoryService and every kind of caller.
//! Each call is made with a valid request against fresh fixtures (arranged as the
//! workspace's admin), so OK versus PERMISSION_DENIED is the authorization decision alone.

use prost::Message as _;
use roster_auth::WorkspaceAccess;
use roster_proto::directory::v1 as pb;
use tonic::{Code, Request, Status};

use crate::helpers::{ALL_PERMISSIONS, TestApp, WS, mask, widget_claims, widget_token};
use crate::on_both_databases;

on_both_databases!(
    matrix_covers_every_rpc_of_the_service,
    missing_garbage_expired_or_foreign_tokens_are_unauthenticated,
    hostile_tokens_are_unauthenticated_and_harm_nothing,
    a_token_for_another_workspace_is_permission_denied,
    roles_and_permissions_unlock_exactly_their_calls,
    service_tokens_work_in_any_workspace,
    each_workspace_of_a_token_has_its_own_role,
    renaming_a_customer_through_an_import_path_needs_customers_write,
);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rpc {
    CreateCustomer,
    GetCustomer,
    ListCustomers,
    UpdateCustomer,
    SetCustomerStatus,
    DeleteCustomer,
    UndeleteCustomer,
    CreateUser,
    GetUser,
    LookupUser,
    ListUsers,
    UpdateUser,
    DeactivateUser,
    ReactivateUser,
    DeleteUser,
    UndeleteUser,
    MergeUsers,
    EraseUser,
    ExportUser,
    CreateGuestUser,
    IdentifyGuest,
    ConfirmUserEmail,
    RecordActivity,
    UpsertUser,
    ImportUsers,
    ImportUserFromWidgetToken,
    RotateWidgetSecret,
    GetWorkspaceSettings,
    UpdateWorkspaceSettings,
    CheckChatAccess,
}

use Rpc::*;

const ALL_RPCS: [Rpc; 30] = [
    CreateCustomer,
    GetCustomer,
    ListCustomers,
    UpdateCustomer,
    SetCustomerStatus,
    DeleteCustomer,
    UndeleteCustomer,
    CreateUser,
    GetUser,
    LookupUser,
    ListUsers,
    UpdateUser,
    DeactivateUser,
    ReactivateUser,
    DeleteUser,
    UndeleteUser,
    MergeUsers,
    EraseUser,
    ExportUser,
    CreateGuestUser,
    IdentifyGuest,
    ConfirmUserEmail,
    RecordActivity,
    UpsertUser,
    ImportUsers,
    ImportUserFromWidgetToken,
    RotateWidgetSecret,
    GetWorkspaceSettings,
    UpdateWorkspaceSettings,
    CheckChatAccess,
];

impl Rpc {
    /// The permission a call needs beyond access to the workspace; `None` for reads.
    fn needs(self) -> Option<&'static str> {
        match self {
            GetCustomer | ListCustomers | GetUser | LookupUser | ListUsers
            | GetWorkspaceSettings | CheckChatAccess => None,
            CreateCustomer | UpdateCustomer | SetCustomerStatus | DeleteCustomer
            | UndeleteCustomer => Some("customers.write"),
            CreateUser
            | UpdateUser
            | DeactivateUser
            | ReactivateUser
            | CreateGuestUser
            | IdentifyGuest
            | ConfirmUserEmail
            | RecordActivity
            | UpsertUser
            | ImportUsers
            | ImportUserFromWidgetToken => Some("end_users.write"),
            DeleteUser | UndeleteUser => Some("end_users.delete"),
            EraseUser => Some("end_users.erase"),
            ExportUser => Some("end_users.export"),
            MergeUsers => Some("end_users.merge"),
            RotateWidgetSecret | UpdateWorkspaceSettings => Some("workspace.manage"),
        }
    }
}

fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}{}", &id[..12])
}

/// Fresh fixtures in one workspace, made by that workspace's admin.
struct Arrange<'a> {
    app: &'a TestApp,
    ws: String,
    admin: String,
}

impl<'a> Arrange<'a> {
    fn new(app: &'a TestApp, ws: &str) -> Self {
        Self {
            app,
            ws: ws.to_owned(),
            admin: app.token(&[ws], "admin", &[]),
        }
    }

    fn admin<T>(&self, message: T) -> Request<T> {
        self.app.with_token(&self.admin, message)
    }

    async fn customer(&self) -> String {
        let customer_id = unique("c-");
        self.app
            .client()
            .create_customer(self.admin(pb::CreateCustomerRequest {
                request_id: String::new(),
                workspace_id: self.ws.clone(),
                customer: Some(pb::Customer {
                    customer_id: customer_id.clone(),
                    name: "Fixture Inc".into(),
                    ..Default::default()
                }),
            }))
            .await
            .unwrap();
        customer_id
    }

    async fn user(&self, status: pb::UserStatus) -> pb::User {
        let external_id = unique("u-");
        self.app
            .client()
            .create_user(self.admin(pb::CreateUserRequest {
                workspace_id: self.ws.clone(),
                user: Some(pb::User {
                    email: format!("{external_id}@example.com"),
                    external_id,
                    status: status as i32,
                    ..Default::default()
                }),
                request_id: String::new(),
            }))
            .await
            .unwrap()
            .into_inner()
    }

    async fn active_user(&self) -> pb::User {
        self.user(pb::UserStatus::Active).await
    }

    async fn deactivated_user(&self) -> pb::User {
        let user = self.active_user().await;
        self.app
            .client()
            .deactivate_user(self.admin(pb::DeactivateUserRequest {
                workspace_id: self.ws.clone(),
                user_id: user.user_id.clone(),
                etag: String::new(),
            }))
            .await
            .unwrap();
        user
    }

    async fn deleted_user(&self) -> pb::User {
        let user = self.active_user().await;
        self.app
            .client()
            .delete_user(self.admin(pb::DeleteUserRequest {
                workspace_id: self.ws.clone(),
                user_id: user.user_id.clone(),
                etag: String::new(),
            }))
            .await
            .unwrap();
        user
    }

    async fn guest(&self) -> pb::User {
        self.app
            .client()
            .create_guest_user(self.admin(pb::CreateGuestUserRequest {
                request_id: String::new(),
                workspace_id: self.ws.clone(),
                name: "Visitor".into(),
            }))
            .await
            .unwrap()
            .into_inner()
    }

    async fn widget_secret(&self) -> String {
        self.app
            .client()
            .rotate_widget_secret(self.admin(pb::RotateWidgetSecretRequest {
                request_id: String::new(),
                workspace_id: self.ws.clone(),
            }))
            .await
            .unwrap()
            .into_inner()
            .secret
    }
}

/// Calls `rpc` with a valid request in `arrange.ws`, carrying `token` (none when `None`).
async fn call(arrange: &Arrange<'_>, rpc: Rpc, token: Option<&str>) -> Result<(), Status> {
    let app = arrange.app;
    let ws = arrange.ws.clone();
    macro_rules! req {
        ($message:expr) => {
            match token {
                Some(token) => app.with_token(token, $message),
                None => Request::new($message),
            }
        };
    }
    let mut client = app.client();
    match rpc {
        CreateCustomer => {
            let customer = pb::Customer {
                customer_id: unique("c-"),
                name: "New Customer".into(),
                ..Default::default()
            };
            client
                .create_customer(req!(pb::CreateCustomerRequest {
                    request_id: String::new(),
                    workspace_id: ws,
                    customer: Some(customer),
                }))
                .await
                .map(drop)
        }
        GetCustomer => {
            let customer_id = arrange.customer().await;
            client
                .get_customer(req!(pb::GetCustomerRequest {
                    workspace_id: ws,
                    customer_id,
                }))
                .await
                .map(drop)
        }
        ListCustomers => client
            .list_customers(req!(pb::ListCustomersRequest {
                workspace_id: ws,
                ..Default::default()
            }))
            .await
            .map(drop),
        UpdateCustomer => {
            let customer_id = arrange.customer().await;
            client
                .update_customer(req!(pb::UpdateCustomerRequest {
                    workspace_id: ws,
                    customer: Some(pb::Customer {
                        customer_id,
                        name: "Renamed".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["name"]),
                }))
                .await
                .map(drop)
        }
        SetCustomerStatus => {
            let customer_id = arrange.customer().await;
            client
                .set_customer_status(req!(pb::SetCustomerStatusRequest {
                    workspace_id: ws,
                    customer_id,
                    status: pb::CustomerStatus::Inactive as i32,
                    etag: String::new(),
                }))
                .await
                .map(drop)
        }
        DeleteCustomer => {
            let customer_id = arrange.customer().await;
            client
                .delete_customer(req!(pb::DeleteCustomerRequest {
                    workspace_id: ws,
                    customer_id,
                    etag: String::new(),
                }))
                .await
                .map(drop)
        }
        UndeleteCustomer => {
            let customer_id = arrange.customer().await;
            arrange
                .app
                .client()
                .delete_customer(arrange.admin(pb::DeleteCustomerRequest {
                    workspace_id: ws.clone(),
                    customer_id: customer_id.clone(),
                    etag: String::new(),
                }))
                .await
                .unwrap();
            client
                .undelete_customer(req!(pb::UndeleteCustomerRequest {
                    workspace_id: ws,
                    customer_id,
                    etag: String::new(),
                }))
                .await
                .map(drop)
        }
        CreateUser => {
            let external_id = unique("n-");
            client
                .create_user(req!(pb::CreateUserRequest {
                    workspace_id: ws,
                    user: Some(pb::User {
                        email: format!("{external_id}@example.com"),
                        external_id,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                }))
                .await
                .map(drop)
        }
        GetUser => {
            let user = arrange.active_user().await;
            client
                .get_user(req!(pb::GetUserRequest {
                    workspace_id: ws,
                    user_id: user.user_id,
                }))
                .await
                .map(drop)
        }
        LookupUser => {
            let user = arrange.active_user().await;
            client
                .lookup_user(req!(pb::LookupUserRequest {
                    workspace_id: ws,
                    key: Some(pb::lookup_user_request::Key::ExternalId(user.external_id)),
                }))
                .await
                .map(drop)
        }
        ListUsers => client
            .list_users(req!(pb::ListUsersRequest {
                workspace_id: ws,
                filter: "example".into(),
                ..Default::default()
            }))
            .await
            .map(drop),
        UpdateUser => {
            let user = arrange.active_user().await;
            client
                .update_user(req!(pb::UpdateUserRequest {
                    workspace_id: ws,
                    user: Some(pb::User {
                        user_id: user.user_id,
                        name: "Renamed".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["name"]),
                }))
                .await
                .map(drop)
        }
        DeactivateUser => {
            let user = arrange.active_user().await;
            client
                .deactivate_user(req!(pb::DeactivateUserRequest {
                    workspace_id: ws,
                    user_id: user.user_id,
                    etag: user.etag,
                }))
                .await
                .map(drop)
        }
        ReactivateUser => {
            let user = arrange.deactivated_user().await;
            client
                .reactivate_user(req!(pb::ReactivateUserRequest {
                    workspace_id: ws,
                    user_id: user.user_id,
                    etag: String::new(),
                }))
                .await
                .map(drop)
        }
        DeleteUser => {
            let user = arrange.active_user().await;
            client
                .delete_user(req!(pb::DeleteUserRequest {
                    workspace_id: ws,
                    user_id: user.user_id,
                    etag: user.etag,
                }))
                .await
                .map(drop)
        }
        UndeleteUser => {
            let user = arrange.deleted_user().await;
            client
                .undelete_user(req!(pb::UndeleteUserRequest {
                    etag: String::new(),
                    workspace_id: ws,
                    user_id: user.user_id,
                }))
                .await
                .map(drop)
        }
        MergeUsers => {
            let source = arrange.active_user().await;
            let target = arrange.active_user().await;
            client
                .merge_users(req!(pb::MergeUsersRequest {
                    request_id: String::new(),
                    source_etag: String::new(),
                    target_etag: String::new(),
                    workspace_id: ws,
                    source_user_id: source.user_id,
                    target_user_id: target.user_id,
                }))
                .await
                .map(drop)
        }
        EraseUser => {
            let user = arrange.active_user().await;
            client
                .erase_user(req!(pb::EraseUserRequest {
                    etag: String::new(),
                    workspace_id: ws,
                    user_id: user.user_id,
                }))
                .await
                .map(drop)
        }
        ExportUser => {
            let user = arrange.active_user().await;
            let answer = client
                .export_user(req!(pb::ExportUserRequest {
                    workspace_id: ws,
                    user_id: user.user_id,
                }))
                .await
                .map(drop);
            // Authorization comes first; past it, the directory alone has no audit service
            // to read the user's events from (the suite exports with one).
            match answer {
                Err(status)
                    if roster_testkit::status::reason(&status) == "AUDIT_NOT_CONFIGURED" =>
                {
                    Ok(())
                }
                other => other,
            }
        }
        CreateGuestUser => client
            .create_guest_user(req!(pb::CreateGuestUserRequest {
                request_id: String::new(),
                workspace_id: ws,
                name: "Visitor from Berlin".into(),
            }))
            .await
            .map(drop),
        IdentifyGuest => {
            let guest = arrange.guest().await;
            let external_id = unique("id-");
            client
                .identify_guest(req!(pb::IdentifyGuestRequest {
                    etag: String::new(),
                    workspace_id: ws,
                    user_id: guest.user_id,
                    email: format!("{external_id}@example.com"),
                    external_id,
                    name: "Now Known".into(),
                    email_verified: true,
                }))
                .await
                .map(drop)
        }
        ConfirmUserEmail => {
            let user = arrange.user(pb::UserStatus::Unconfirmed).await;
            client
                .confirm_user_email(req!(pb::ConfirmUserEmailRequest {
                    etag: String::new(),
                    workspace_id: ws,
                    user_id: user.user_id,
                }))
                .await
                .map(drop)
        }
        RecordActivity => {
            let user = arrange.active_user().await;
            client
                .record_activity(req!(pb::RecordActivityRequest {
                    etag: String::new(),
                    request_id: String::new(),
                    workspace_id: ws,
                    user_id: user.user_id,
                    occurred_at: None,
                    conversations_started: 1,
                }))
                .await
                .map(drop)
        }
        UpsertUser => {
            let key = unique("slack-");
            client
                .upsert_user(req!(pb::UpsertUserRequest {
                    workspace_id: ws,
                    identity: Some(pb::Identity {
                        source: pb::IdentitySource::Slack as i32,
                        key: key.clone(),
                    }),
                    user: Some(pb::User {
                        email: format!("{key}@example.com"),
                        ..Default::default()
                    }),
                    customer_name: String::new(),
                }))
                .await
                .map(drop)
        }
        ImportUsers => {
            let external_id = unique("csv-");
            let csv = format!("external_id,email\n{external_id},{external_id}@example.com\n");
            let messages = vec![
                pb::ImportUsersRequest {
                    part: Some(pb::import_users_request::Part::Header(
                        pb::ImportUsersHeader {
                            workspace_id: ws,
                            dry_run: false,
                            on_error: pb::ImportErrorMode::SkipRow as i32,
                        },
                    )),
                },
                pb::ImportUsersRequest {
                    part: Some(pb::import_users_request::Part::Chunk(csv.into_bytes())),
                },
            ];
            let response = client
                .import_users(req!(tokio_stream::iter(messages)))
                .await?
                .into_inner();
            assert_eq!((response.created, response.failed), (1, 0), "{response:?}");
            Ok(())
        }
        ImportUserFromWidgetToken => {
            let secret = arrange.widget_secret().await;
            let user_id = unique("w-");
            let token = widget_token(
                &secret,
                &widget_claims(&user_id, &format!("{user_id}@example.com"), "acme-corp"),
            );
            client
                .import_user_from_widget_token(req!(pb::ImportUserFromWidgetTokenRequest {
                    workspace_id: ws,
                    token,
                }))
                .await
                .map(drop)
        }
        RotateWidgetSecret => client
            .rotate_widget_secret(req!(pb::RotateWidgetSecretRequest {
                request_id: String::new(),
                workspace_id: ws
            }))
            .await
            .map(drop),
        GetWorkspaceSettings => client
            .get_workspace_settings(req!(pb::GetWorkspaceSettingsRequest { workspace_id: ws }))
            .await
            .map(drop),
        UpdateWorkspaceSettings => client
            .update_workspace_settings(req!(pb::UpdateWorkspaceSettingsRequest {
                settings: Some(pb::WorkspaceSettings {
                    widget_secret_grace_seconds: 7200,
                    ..Default::default()
                }),
                update_mask: mask(&["widget_secret_grace_seconds"]),
                workspace_id: ws,
            }))
            .await
            .map(drop),
        CheckChatAccess => {
            let user = arrange.active_user().await;
            client
                .check_chat_access(req!(pb::CheckChatAccessRequest {
                    workspace_id: ws,
                    user_id: user.user_id,
                }))
                .await
                .map(drop)
        }
    }
}

/// A caller and what it should get for each RPC.
struct Caller {
    label: &'static str,
    token: Option<String>,
    expect: Box<dyn Fn(Rpc) -> Option<Code>>,
}

/// Runs every RPC for every caller in `ws` and reports all mismatches at once.
async fn check_matrix(app: &TestApp, ws: &str, callers: Vec<Caller>) {
    let arrange = Arrange::new(app, ws);
    let mut mismatches = Vec::new();
    for caller in &callers {
        for rpc in ALL_RPCS {
            let got = call(&arrange, rpc, caller.token.as_deref()).await;
            let want = (caller.expect)(rpc);
            let got_code = got.as_ref().err().map(Status::code);
            if got_code != want {
                mismatches.push(format!(
                    "{:<28} {rpc:?}: want {}, got {got:?}",
                    caller.label,
                    want.map_or("OK".to_owned(), |code| format!("{code:?}"))
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} calls got the wrong answer:\n{}",
        mismatches.len(),
        callers.len() * ALL_RPCS.len(),
        mismatches.join("\n")
    );
}

/// Agent callers in `WS`: reads for all, writes for the non-viewers holding the permission.
fn agent(
    app: &TestApp,
    label: &'static str,
    role: &'static str,
    permissions: &[&'static str],
) -> Caller {
    let held: Vec<&'static str> = permissions.to_vec();
    Caller {
        label,
        token: Some(app.token(&[WS], role, permissions)),
        expect: Box::new(move |rpc| match rpc.needs() {
            None => None,
            Some(_) if role == "admin" => None,
            Some(permission) if role != "viewer" && held.contains(&permission) => None,
            Some(_) => Some(Code::PermissionDenied),
        }),
    }
}

async fn matrix_covers_every_rpc_of_the_service(_app: TestApp) {
    let set = prost_types::FileDescriptorSet::decode(roster_proto::FILE_DESCRIPTOR_SET).unwrap();
    let service = set
        .file
        .iter()
        .filter(|file| file.package() == "roster.directory.v1")
        .flat_map(|file| file.service.iter())
        .find(|service| service.name() == "DirectoryService")
        .expect("DirectoryService in the descriptor set");
    let mut in_contract: Vec<String> = service
        .method
        .iter()
        .map(|method| method.name().to_owned())
        .collect();
    let mut in_matrix: Vec<String> = ALL_RPCS.iter().map(|rpc| format!("{rpc:?}")).collect();
    in_contract.sort();
    in_matrix.sort();
    assert_eq!(in_matrix, in_contract);
}

async fn missing_garbage_expired_or_foreign_tokens_are_unauthenticated(app: TestApp) {
    // Signed by a key of the same id that the service does not trust.
    let (foreign_tokens, _) = roster_testkit::TestTokens::generate();
    let foreign = foreign_tokens.agent(&[WS], "admin", &[]);
    let unauthenticated = |label, token: Option<String>| Caller {
        label,
        token,
        expect: Box::new(|_| Some(Code::Unauthenticated)),
    };
    check_matrix(
        &app,
        WS,
        vec![
            unauthenticated("no token", None),
            unauthenticated("garbage token", Some("not-a-jwt".into())),
            unauthenticated("expired admin token", Some(app.expired_token())),
            unauthenticated("token signed by another key", Some(foreign)),
        ],
    )
    .await;
}

async fn hostile_tokens_are_unauthenticated_and_harm_nothing(app: TestApp) {
    for (attack, token) in roster_testkit::hostile_tokens(&app.tokens, WS) {
        let status = app
            .client()
            .list_users(app.with_token(
                &token,
                pb::ListUsersRequest {
                    workspace_id: WS.into(),
                    ..Default::default()
                },
            ))
            .await
            .expect_err(attack);
        assert_eq!(status.code(), Code::Unauthenticated, "{attack}: {status:?}");
    }
    // The service is still there for honest callers.
    app.list("").await;
}

async fn a_token_for_another_workspace_is_permission_denied(app: TestApp) {
    let denied = |label, token: String| Caller {
        label,
        token: Some(token),
        expect: Box::new(|_| Some(Code::PermissionDenied)),
    };
    check_matrix(
        &app,
        WS,
        vec![
            denied(
                "admin of another workspace",
                app.token(&["other"], "admin", &[]),
            ),
            denied(
                "agent of another workspace",
                app.token(&["other"], "agent", &ALL_PERMISSIONS),
            ),
        ],
    )
    .await;
}

async fn roles_and_permissions_unlock_exactly_their_calls(app: TestApp) {
    check_matrix(
        &app,
        WS,
        vec![
            agent(&app, "viewer", "viewer", &[]),
            agent(
                &app,
                "viewer holding every permission",
                "viewer",
                &ALL_PERMISSIONS,
            ),
            agent(&app, "agent without permissions", "agent", &[]),
            agent(&app, "agent end_users.write", "agent", &["end_users.write"]),
            agent(
                &app,
                "agent end_users.delete",
                "agent",
                &["end_users.delete"],
            ),
            agent(&app, "agent end_users.erase", "agent", &["end_users.erase"]),
            agent(&app, "agent end_users.merge", "agent", &["end_users.merge"]),
            agent(
                &app,
                "agent end_users.export",
                "agent",
                &["end_users.export"],
            ),
            agent(
                &app,
                "agent workspace.manage",
                "agent",
                &["workspace.manage"],
            ),
            agent(&app, "agent customers.write", "agent", &["customers.write"]),
            agent(&app, "admin", "admin", &[]),
        ],
    )
    .await;
}

async fn each_workspace_of_a_token_has_its_own_role(app: TestApp) {
    // One agent, admin of WS and viewer of "beta": each workspace answers with its own role.
    let token = app.tokens.agent_with(
        "agent-two-hats",
        &[
            (WS, WorkspaceAccess::new("admin", &[])),
            ("beta", WorkspaceAccess::new("viewer", &ALL_PERMISSIONS)),
        ],
    );
    check_matrix(
        &app,
        WS,
        vec![Caller {
            label: "admin here, viewer elsewhere",
            token: Some(token.clone()),
            expect: Box::new(|_| None),
        }],
    )
    .await;
    check_matrix(
        &app,
        "beta",
        vec![Caller {
            label: "viewer here, admin elsewhere",
            token: Some(token),
            expect: Box::new(|rpc| rpc.needs().map(|_| Code::PermissionDenied)),
        }],
    )
    .await;
}

async fn service_tokens_work_in_any_workspace(app: TestApp) {
    let all = app.service_token(&ALL_PERMISSIONS);
    let writer = app.service_token(&["end_users.write"]);
    for ws in [WS, "beta"] {
        check_matrix(
            &app,
            ws,
            vec![
                Caller {
                    label: "service, every permission",
                    token: Some(all.clone()),
                    expect: Box::new(|_| None),
                },
                Caller {
                    label: "service, end_users.write",
                    token: Some(writer.clone()),
                    expect: Box::new(|rpc| match rpc.needs() {
                        None | Some("end_users.write") => None,
                        Some(_) => Some(Code::PermissionDenied),
                    }),
                },
            ],
        )
        .await;
    }
    // The audit trail names the service as the actor.
    let created = app
        .client()
        .create_user(app.with_token(
            &all,
            pb::CreateUserRequest {
                workspace_id: "beta".into(),
                user: Some(pb::User {
                    external_id: "svc-made".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let events = app.events_for(&created.user_id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].actor_kind.as_str(), events[0].actor_id.as_str()),
        ("service", "svc-widget-gateway")
    );
}

/// The import paths that may rename a customer.
#[derive(Clone, Copy, Debug)]
enum RenamingPath {
    UpsertUser,
    ImportUsers,
    ImportUserFromWidgetToken,
}

/// What a caller sees when an import path names an existing customer with a new name.
#[derive(Debug, PartialEq, Eq)]
enum RenameOutcome {
    Renamed,
    /// The user was imported; the name stayed and the response said so.
    Skipped,
    Denied,
}

/// Names customer `customer_id` (now "Fixture Inc") with another name through `path`.
async fn rename_through(
    arrange: &Arrange<'_>,
    path: RenamingPath,
    token: &str,
    customer_id: &str,
    secret: &str,
) -> RenameOutcome {
    let app = arrange.app;
    let mut client = app.client();
    let external_id = unique("r-");
    let email = format!("{external_id}@example.com");
    // The widget token's claims name the customer "Customer <id>"; the others do too.
    let new_name = format!("Customer {customer_id}");
    let outcome = match path {
        RenamingPath::UpsertUser => client
            .upsert_user(app.with_token(
                token,
                pb::UpsertUserRequest {
                    workspace_id: arrange.ws.clone(),
                    identity: None,
                    user: Some(pb::User {
                        external_id,
                        email,
                        customer_id: customer_id.to_owned(),
                        ..Default::default()
                    }),
                    customer_name: new_name.clone(),
                },
            ))
            .await
            .map(|response| response.into_inner().customer_rename_skipped),
        RenamingPath::ImportUsers => {
            let csv = format!(
                "external_id,email,customer_id,customer_name\n{external_id},{email},{customer_id},{new_name}\n"
            );
            let messages = vec![
                pb::ImportUsersRequest {
                    part: Some(pb::import_users_request::Part::Header(
                        pb::ImportUsersHeader {
                            workspace_id: arrange.ws.clone(),
                            dry_run: false,
                            on_error: pb::ImportErrorMode::SkipRow as i32,
                        },
                    )),
                },
                pb::ImportUsersRequest {
                    part: Some(pb::import_users_request::Part::Chunk(csv.into_bytes())),
                },
            ];
            client
                .import_users(app.with_token(token, tokio_stream::iter(messages)))
                .await
                .map(|response| {
                    let response = response.into_inner();
                    assert_eq!((response.created, response.failed), (1, 0), "{response:?}");
                    response.customer_renames_skipped == 1
                })
        }
        RenamingPath::ImportUserFromWidgetToken => client
            .import_user_from_widget_token(app.with_token(
                token,
                pb::ImportUserFromWidgetTokenRequest {
                    workspace_id: arrange.ws.clone(),
                    token: widget_token(secret, &widget_claims(&external_id, &email, customer_id)),
                },
            ))
            .await
            .map(|response| response.into_inner().customer_rename_skipped),
    };
    let stored = client
        .get_customer(arrange.admin(pb::GetCustomerRequest {
            workspace_id: arrange.ws.clone(),
            customer_id: customer_id.to_owned(),
        }))
        .await
        .unwrap()
        .into_inner()
        .name;
    match outcome {
        Ok(false) => {
            assert_eq!(stored, new_name, "{path:?}: renamed");
            RenameOutcome::Renamed
        }
        Ok(true) => {
            assert_eq!(stored, "Fixture Inc", "{path:?}: name kept");
            RenameOutcome::Skipped
        }
        Err(status) => {
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{path:?}: {status:?}"
            );
            assert!(status.message().contains("customers.write"), "{status:?}");
            assert_eq!(stored, "Fixture Inc", "{path:?}: name kept");
            RenameOutcome::Denied
        }
    }
}

/// Import paths may create customers, but renaming an existing one is a customer change:
/// UpsertUser without `customers.write` is refused, CSV imports and widget tokens keep the
/// stored name and say so. Creating a missing customer or repeating its name needs nothing
/// more than `end_users.write`.
async fn renaming_a_customer_through_an_import_path_needs_customers_write(app: TestApp) {
    let arrange = Arrange::new(&app, WS);
    let secret = arrange.widget_secret().await;
    let callers = [
        ("admin", app.token(&[WS], "admin", &[]), true),
        (
            "agent end_users.write",
            app.token(&[WS], "agent", &["end_users.write"]),
            false,
        ),
        (
            "agent end_users.write customers.write",
            app.token(&[WS], "agent", &["end_users.write", "customers.write"]),
            true,
        ),
        (
            "service end_users.write",
            app.service_token(&["end_users.write"]),
            false,
        ),
        (
            "service end_users.write customers.write",
            app.service_token(&["end_users.write", "customers.write"]),
            true,
        ),
    ];
    let mut mismatches = Vec::new();
    for (label, token, may_rename) in &callers {
        for path in [
            RenamingPath::UpsertUser,
            RenamingPath::ImportUsers,
            RenamingPath::ImportUserFromWidgetToken,
        ] {
            let customer_id = arrange.customer().await;
            let got = rename_through(&arrange, path, token, &customer_id, &secret).await;
            let want = match (may_rename, path) {
                (true, _) => RenameOutcome::Renamed,
                (false, RenamingPath::UpsertUser) => RenameOutcome::Denied,
                (false, _) => RenameOutcome::Skipped,
            };
            if got != want {
                mismatches.push(format!("{label:<40} {path:?}: want {want:?}, got {got:?}"));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    // Without customers.write: a new customer is created, and its own name is no rename.
    let writer = app.token(&[WS], "agent", &["end_users.write"]);
    for customer_id in [unique("new-"), arrange.customer().await] {
        let name = if customer_id.starts_with("new-") {
            "Brand New".to_owned()
        } else {
            "Fixture Inc".to_owned()
        };
        let external_id = unique("n-");
        let response = app
            .client()
            .upsert_user(app.with_token(
                &writer,
                pb::UpsertUserRequest {
                    workspace_id: WS.into(),
                    identity: None,
                    user: Some(pb::User {
                        email: format!("{external_id}@example.com"),
                        external_id,
                        customer_id: customer_id.clone(),
                        ..Default::default()
                    }),
                    customer_name: name.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.customer_created, customer_id.starts_with("new-"));
        assert!(!response.customer_rename_skipped);
    }
}
