//! (b): a bare tonic server for the directory's contract with none of Roster's layers (no
//! auth, request context, concurrency limit, panic catcher, timeouts or validation). Its
//! GetUser, CreateUser and ListUsers (`email:<term>` only) run the same SQL as the service
//! through a plain sqlx pool ([`crate::sql`]) and answer the same messages; every other RPC
//! is UNIMPLEMENTED.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use anyhow::Context as _;
use roster_directory::api::convert;
use roster_directory::domain::Clock as _;
use roster_directory::service::UserView;
use roster_proto::directory::v1 as pb;
use roster_proto::directory::v1::directory_service_server::{
    DirectoryService, DirectoryServiceServer,
};
use sea_orm::sqlx::postgres::PgPool;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use crate::sql;

/// HTTP/2 streams per connection, as Roster's servers set it.
const MAX_CONCURRENT_STREAMS: u32 = 256;

struct BareDirectory {
    pool: PgPool,
}

fn internal(error: impl std::fmt::Display) -> Status {
    Status::internal(error.to_string())
}

/// Stubs for the RPCs the bench does not call. `#[async_trait]` cannot see into a macro,
/// so they are written in its expanded form: a boxed future borrowing `self`.
macro_rules! unimplemented_rpcs {
    ($($name:ident($request:ty) -> $response:ty;)*) => {$(
        fn $name<'life0, 'async_trait>(
            &'life0 self,
            _: Request<$request>,
        ) -> Pin<Box<dyn Future<Output = Result<Response<$response>, Status>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(std::future::ready(Err(Status::unimplemented("not part of the baseline"))))
        }
    )*};
}

#[tonic::async_trait]
impl DirectoryService for BareDirectory {
    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let pb::GetUserRequest {
            workspace_id,
            user_id,
        } = request.into_inner();
        let user_id = uuid::Uuid::parse_str(&user_id)
            .map_err(|_| Status::invalid_argument("user_id is not a UUID"))?;
        match sql::get_user(&self.pool, &workspace_id, user_id)
            .await
            .map_err(internal)?
        {
            Some(view) => Ok(Response::new(convert::user(view))),
            None => Err(Status::not_found("no such user")),
        }
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let pb::CreateUserRequest {
            workspace_id, user, ..
        } = request.into_inner();
        let user = user.ok_or_else(|| Status::invalid_argument("user is required"))?;
        let now_us = roster_directory::domain::SystemClock.now_us();
        let user = sql::new_user(&workspace_id, &user.email, &user.name, now_us);
        sql::create_user_in_one_statement(&self.pool, &user)
            .await
            .map_err(internal)?;
        Ok(Response::new(convert::user(UserView {
            user,
            identities: Vec::new(),
        })))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let pb::ListUsersRequest {
            workspace_id,
            page_size,
            page_token,
            filter,
            ..
        } = request.into_inner();
        let term = filter
            .strip_prefix("email:")
            .ok_or_else(|| Status::unimplemented("the baseline searches `email:<term>` only"))?;
        let after = match page_token.as_str() {
            "" => None,
            token => Some(
                sql::PageCursor::from_token(token)
                    .ok_or_else(|| Status::invalid_argument("not a baseline page token"))?,
            ),
        };
        let (users, next) = sql::search_page(
            &self.pool,
            &workspace_id,
            term,
            i64::from(page_size.clamp(1, 1000)),
            after,
        )
        .await
        .map_err(internal)?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(convert::user).collect(),
            next_page_token: next.map(sql::PageCursor::token).unwrap_or_default(),
        }))
    }

    async fn import_users(
        &self,
        _: Request<Streaming<pb::ImportUsersRequest>>,
    ) -> Result<Response<pb::ImportUsersResponse>, Status> {
        Err(Status::unimplemented("not part of the baseline"))
    }

    unimplemented_rpcs! {
        create_customer(pb::CreateCustomerRequest) -> pb::Customer;
        get_customer(pb::GetCustomerRequest) -> pb::Customer;
        list_customers(pb::ListCustomersRequest) -> pb::ListCustomersResponse;
        update_customer(pb::UpdateCustomerRequest) -> pb::Customer;
        set_customer_status(pb::SetCustomerStatusRequest) -> pb::Customer;
        delete_customer(pb::DeleteCustomerRequest) -> pb::Customer;
        undelete_customer(pb::UndeleteCustomerRequest) -> pb::Customer;
        lookup_user(pb::LookupUserRequest) -> pb::User;
        update_user(pb::UpdateUserRequest) -> pb::User;
        deactivate_user(pb::DeactivateUserRequest) -> pb::User;
        reactivate_user(pb::ReactivateUserRequest) -> pb::User;
        delete_user(pb::DeleteUserRequest) -> pb::User;
        undelete_user(pb::UndeleteUserRequest) -> pb::User;
        merge_users(pb::MergeUsersRequest) -> pb::MergeUsersResponse;
        erase_user(pb::EraseUserRequest) -> pb::User;
        export_user(pb::ExportUserRequest) -> pb::ExportUserResponse;
        create_guest_user(pb::CreateGuestUserRequest) -> pb::User;
        identify_guest(pb::IdentifyGuestRequest) -> pb::User;
        confirm_user_email(pb::ConfirmUserEmailRequest) -> pb::User;
        record_activity(pb::RecordActivityRequest) -> pb::User;
        upsert_user(pb::UpsertUserRequest) -> pb::UpsertUserResponse;
        import_user_from_widget_token(pb::ImportUserFromWidgetTokenRequest) -> pb::UpsertUserResponse;
        rotate_widget_secret(pb::RotateWidgetSecretRequest) -> pb::RotateWidgetSecretResponse;
        get_workspace_settings(pb::GetWorkspaceSettingsRequest) -> pb::WorkspaceSettings;
        update_workspace_settings(pb::UpdateWorkspaceSettingsRequest) -> pb::WorkspaceSettings;
        check_chat_access(pb::CheckChatAccessRequest) -> pb::CheckChatAccessResponse;
    }
}

/// The baseline, serving on 127.0.0.1 until dropped or stopped.
pub struct Baseline {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Baseline {
    /// Binds and serves on `runtime` (the server runtime), with a pool of `pool_size`
    /// connections to `database_url` opened there too.
    pub async fn start(
        runtime: &tokio::runtime::Handle,
        database_url: &str,
        pool_size: u32,
    ) -> anyhow::Result<Self> {
        let url = database_url.to_owned();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let served = runtime.spawn(async move {
            let pool = crate::pg::pool(&url, pool_size).await?;
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            let addr = listener.local_addr()?;
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            let _ = ready_tx.send(addr);
            Server::builder()
                .max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS))
                .tcp_nodelay(true)
                .add_service(DirectoryServiceServer::new(BareDirectory {
                    pool: pool.clone(),
                }))
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop_rx.await;
                })
                .await
                .context("the baseline server failed")?;
            pool.close().await;
            Ok(())
        });
        let addr = match ready_rx.await {
            Ok(addr) => addr,
            Err(_) => {
                return Err(served
                    .await
                    .context("the baseline server task failed")?
                    .err()
                    .unwrap_or_else(|| anyhow::anyhow!("the baseline server did not start")));
            }
        };
        Ok(Self {
            addr,
            stop: Some(stop_tx),
            served,
        })
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.served)
            .await
            .context("the baseline server task failed")?
    }
}
