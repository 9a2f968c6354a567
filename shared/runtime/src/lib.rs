//! The server runtime shared by every Roster service (directory, staff, audit).
//!
//! A service's `main` reads [`ServerSettings`] and [`TelemetrySettings`] from the environment,
//! calls [`init_telemetry`], binds a [`GrpcServer`], flips its [`HealthHandle`] to SERVING once
//! its dependencies are ready, and serves its routes until [`shutdown_signal`] resolves:
//!
//! ```no_run
//! # async fn run(routes: tonic::service::Routes, fds: &'static [u8]) -> anyhow::Result<()> {
//! use roster_runtime::{GrpcServer, ServerSettings, TelemetrySettings};
//!
//! let telemetry = roster_runtime::init_telemetry(&TelemetrySettings::from_env("directory")?)?;
//! let settings = ServerSettings::from_env("ROSTER_DIRECTORY_", 50051)?;
//! let server = GrpcServer::bind(settings, &["roster.directory.v1.DirectoryService"]).await?;
//! server.health().set_serving().await;
//! server.serve(routes, &[fds], roster_runtime::shutdown_signal()).await?;
//! telemetry.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What every call goes through
//!
//! tonic wraps the layers below in its own per-connection stack: the connection info
//! (`TcpConnectInfo`) outside everything, then the deadline from [`Server::timeout`] (the
//! shorter of the server cap and the client's `grpc-timeout`, answered CANCELLED). Inside
//! that, [`GrpcServer::serve`] installs, outermost first:
//!
//! 1. **Request context** ([`layers::request_context`]). It must be outermost so that
//!    every call, including those shed or crashed by the inner layers, gets a request id,
//!    an `x-request-id` response header, a `grpc_request` span (continuing the caller's W3C
//!    trace) and exactly one completion log line with its status and duration. Everything
//!    below runs inside that span, so any log line a handler writes carries `request_id`.
//! 2. **Global concurrency limit** ([`layers::concurrency`]). Before any handler work, so an
//!    overloaded replica refuses cheaply (RESOURCE_EXHAUSTED) instead of queueing calls into
//!    timeouts. It is one semaphore for the process, not per connection, and health checks
//!    bypass it so probes keep answering under load.
//! 3. **Panic catcher** ([`layers::panic`]). Innermost, right around the handlers, so a
//!    panic becomes an INTERNAL status on its own stream and never reaches hyper, where it
//!    would drop a connection shared with unrelated calls. The permit of layer 2 is released
//!    as the panic response passes back out through it.
//!
//! Then the routes: the service's own, `grpc.health.v1.Health`, and server reflection v1 and
//! v1alpha (grpcurl 1.8 only speaks v1alpha).
//!
//! # Shutdown
//!
//! When the shutdown future resolves, health turns NOT_SERVING for every name, the listener
//! keeps accepting for `shutdown_drain` (time for Kubernetes to withdraw the endpoint), then
//! closes; health `Watch` streams are ended, and in-flight calls get up to `shutdown_grace`
//! to finish.
//!
//! [`Server::timeout`]: tonic::transport::Server::timeout

/// Every Roster process allocates through mimalloc: the audit ingest spent some 40% of its
/// CPU in glibc's malloc and free (building statements of thousands of values), and
/// mimalloc cut its CPU per event (ARCHITECTURE.md, *Tricks*). Declared here, in the crate
/// every binary links, so no binary can forget it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod context;
pub mod error_details;
pub mod health;
pub mod layers;
pub mod limits;
pub mod metrics;
pub mod propagation;
pub mod server;
pub mod settings;
pub mod telemetry;

pub use context::{RequestContext, record_workspace};
pub use health::{HealthHandle, LIVENESS};
pub use propagation::{continue_writers, inject_trace_context, propagate_trace_context};
pub use server::{GrpcServer, shutdown_signal};
pub use settings::{
    ServerSettings, SettingsError, env_bool_or, env_duration_opt, env_duration_or, env_opt, env_or,
};
pub use telemetry::{
    LogFormat, TelemetryGuard, TelemetrySettings, init_telemetry, init_test_telemetry,
};
