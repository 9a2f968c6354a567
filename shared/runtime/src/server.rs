//! Binding, serving and shutting down a Roster gRPC server.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tower::ServiceBuilder;

use crate::health::HealthHandle;
use crate::layers::{
    GlobalConcurrencyLimitLayer, RequestContextLayer, ServerTimeoutLayer, catch_panic_layer,
};
use crate::settings::ServerSettings;

/// Metadata a call may carry. Above h2's 16 KiB default, so an oversized `authorization`
/// reaches the token verifier and is refused UNAUTHENTICATED like any bad token, instead
/// of h2 tearing down the caller's whole connection (GOAWAY) and every call on it.
const MAX_HEADER_LIST_BYTES: u32 = 256 * 1024;

/// A bound, not yet serving, gRPC server.
pub struct GrpcServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    settings: ServerSettings,
    health: HealthHandle,
    long_running: Vec<&'static str>,
}

impl GrpcServer {
    /// Binds the listener now, so port 0 works in tests and the port is known before serving.
    /// Health starts NOT_SERVING for "" and every name in `service_names`: call
    /// [`HealthHandle::set_serving`] once the service is ready.
    pub async fn bind(
        settings: ServerSettings,
        service_names: &[&'static str],
    ) -> std::io::Result<GrpcServer> {
        let listener = TcpListener::bind(settings.listen_addr).await?;
        let local_addr = listener.local_addr()?;
        let health = HealthHandle::new(service_names).await;
        Ok(GrpcServer {
            listener,
            local_addr,
            settings,
            health,
            long_running: Vec::new(),
        })
    }

    /// Exempts these methods (full paths, `/package.Service/Method`) from the server's
    /// `request_timeout`: uploads that stream a file run as long as the upload. The client's
    /// own deadline still applies.
    pub fn long_running(mut self, paths: &[&'static str]) -> Self {
        self.long_running.extend_from_slice(paths);
        self
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Handle to flip health; it stays usable while and after the server runs.
    pub fn health(&self) -> HealthHandle {
        self.health.clone()
    }

    /// Serves `routes` plus `grpc.health.v1.Health` and server reflection (v1 and v1alpha)
    /// describing `file_descriptor_sets` (encoded `FileDescriptorSet`s) until `shutdown`
    /// resolves. `routes` must not contain health or reflection services of its own.
    ///
    /// Shutdown: health turns NOT_SERVING, the server keeps accepting for
    /// `shutdown_drain` while balancers notice, then stops accepting and waits up to
    /// `shutdown_grace` for in-flight calls before returning. Calls still running then are
    /// abandoned (they end when the runtime does), which is logged.
    ///
    /// Everything borrowed is used before the returned future is first polled, so the future
    /// is `'static` and can be spawned even when `file_descriptor_sets` is a temporary.
    pub fn serve(
        self,
        routes: Routes,
        file_descriptor_sets: &[&'static [u8]],
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
        let GrpcServer {
            listener,
            local_addr,
            settings,
            health,
            long_running,
        } = self;
        let routes = with_health_and_reflection(routes, &health, file_descriptor_sets);

        async move {
            let routes = routes?;
            let layers = ServiceBuilder::new()
                .layer(RequestContextLayer::new())
                .layer(GlobalConcurrencyLimitLayer::new(settings.concurrency_limit))
                .layer(catch_panic_layer())
                .layer(ServerTimeoutLayer::new(
                    settings.request_timeout,
                    &long_running,
                ))
                .into_inner();

            // No `Server::timeout`: its cap would cut long uploads short. tonic still honours
            // each client's `grpc-timeout`; the server's cap is `ServerTimeoutLayer`.
            let mut builder = Server::builder()
                .max_concurrent_streams(Some(settings.max_concurrent_streams))
                .http2_keepalive_interval(Some(settings.http2_keepalive_interval))
                .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
                .tcp_nodelay(true);
            // No `max_connection_age_grace`: in tonic 0.14 setting it replaces the GOAWAY
            // at `age` with a hard close at `age + grace`, which would cut long streams
            // (WatchRevocations, WatchEvents, an ImportUsers upload) mid-call. Without it,
            // a connection past its age takes no new calls and closes once its last one
            // ends; shutdown (`shutdown_grace`) still bounds them all.
            if let Some(age) = settings.max_connection_age {
                builder = builder.max_connection_age(age);
            }
            let router = builder.layer(layers).add_routes(routes);

            // `serve_with_incoming*` ignores the builder's TCP options; they go on the incoming.
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));

            let (stopped_accepting_tx, stopped_accepting_rx) = oneshot::channel();
            let signal = shutdown_sequence(
                shutdown,
                health,
                settings.shutdown_drain,
                stopped_accepting_tx,
            );

            tracing::info!(
                %local_addr,
                concurrency_limit = settings.concurrency_limit,
                request_timeout_ms = duration_ms(settings.request_timeout),
                max_connection_age_ms = settings.max_connection_age.map(duration_ms),
                "gRPC server listening"
            );
            let served = router.serve_with_incoming_shutdown(incoming, signal);
            tokio::pin!(served);

            tokio::select! {
                result = &mut served => {
                    result.with_context(|| format!("gRPC server on {local_addr} failed"))?;
                    tracing::info!("gRPC server stopped: all calls finished");
                    Ok(())
                }
                () = grace_elapsed(stopped_accepting_rx, settings.shutdown_grace) => {
                    tracing::warn!(
                        shutdown_grace_ms = duration_ms(settings.shutdown_grace),
                        "gRPC server stopped with calls still in flight: the shutdown grace period ran out"
                    );
                    Ok(())
                }
            }
        }
    }
}

fn with_health_and_reflection(
    routes: Routes,
    health: &HealthHandle,
    file_descriptor_sets: &[&'static [u8]],
) -> anyhow::Result<Routes> {
    let v1 = reflection_builder(file_descriptor_sets)
        .build_v1()
        .context("building the gRPC reflection (v1) service from the file descriptor sets")?;
    let v1alpha = reflection_builder(file_descriptor_sets)
        .build_v1alpha()
        .context("building the gRPC reflection (v1alpha) service from the file descriptor sets")?;
    Ok(routes
        .add_service(health.server())
        .add_service(v1)
        .add_service(v1alpha))
}

/// Both reflection versions describe the same files, including each other's and health's,
/// so every grpcurl version can list everything the server answers.
fn reflection_builder(
    file_descriptor_sets: &[&'static [u8]],
) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    file_descriptor_sets
        .iter()
        .copied()
        .fold(builder, |builder, set| {
            builder.register_encoded_file_descriptor_set(set)
        })
}

/// The future tonic treats as its stop signal: it resolves when the listener should close.
async fn shutdown_sequence(
    shutdown: impl Future<Output = ()>,
    health: HealthHandle,
    drain: Duration,
    stopped_accepting: oneshot::Sender<()>,
) {
    shutdown.await;
    health.begin_shutdown().await;
    if !drain.is_zero() {
        tracing::info!(
            shutdown_drain_ms = duration_ms(drain),
            "shutdown requested: reporting NOT_SERVING and draining before refusing connections"
        );
        tokio::time::sleep(drain).await;
    }
    health.end_watches().await;
    tracing::info!("no longer accepting connections; waiting for in-flight calls");
    // The receiver is gone only if `serve` already returned, when nobody needs to know.
    let _ = stopped_accepting.send(());
}

/// Resolves `grace` after the listener stopped accepting; never if it never does.
async fn grace_elapsed(stopped_accepting: oneshot::Receiver<()>, grace: Duration) {
    if stopped_accepting.await.is_err() {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(grace).await;
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Resolves on SIGTERM (what Kubernetes sends) or SIGINT (ctrl-c), logging which.
pub async fn shutdown_signal() {
    let interrupt = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => {}
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGINT; relying on SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };

    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                if stream.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM; relying on SIGINT");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = terminate => tracing::info!(signal = "SIGTERM", "shutdown signal received"),
        () = interrupt => tracing::info!(signal = "SIGINT", "shutdown signal received"),
    }
}
