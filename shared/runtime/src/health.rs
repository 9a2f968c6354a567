//! `grpc.health.v1.Health` status for the whole server and each of its services.
//!
//! Kubernetes' native gRPC probes and most balancers ask about the empty service name "",
//! while clients may ask about the service they call; both must tell the same story, so every
//! change here applies to "" and to each registered name together.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

/// The name gRPC health checking uses for the server as a whole.
const OVERALL: &str = "";

/// A name that is SERVING for as long as the server answers at all, whatever its
/// dependencies and through the shutdown drain: what a liveness probe asks about. "" and
/// the services' names follow readiness (the database, shutdown), and a replica whose
/// database is down must leave the rotation, not be restarted.
pub const LIVENESS: &str = "roster.runtime.Liveness";

/// Path prefix of the health service's methods, which some layers treat specially.
pub(crate) const HEALTH_PATH_PREFIX: &str = "/grpc.health.v1.Health/";

/// Flips the health status of the server and all its services.
#[derive(Clone, Debug)]
pub struct HealthHandle {
    reporter: HealthReporter,
    service_names: Arc<[&'static str]>,
    shutting_down: Arc<AtomicBool>,
    /// Names reported with [`HealthHandle::set_part`].
    parts: Arc<Mutex<Vec<&'static str>>>,
}

impl HealthHandle {
    /// A handle whose services all start NOT_SERVING: a replica must not receive traffic
    /// before its owner says it is ready (database reachable, migrations applied).
    pub(crate) async fn new(service_names: &[&'static str]) -> Self {
        let handle = Self {
            reporter: HealthReporter::new(),
            service_names: service_names.into(),
            shutting_down: Arc::new(AtomicBool::new(false)),
            parts: Arc::new(Mutex::new(Vec::new())),
        };
        handle.set_all(ServingStatus::NotServing).await;
        handle
            .reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        handle
    }

    /// Reports SERVING for "" and every service name. Ignored once shutdown has begun, so a
    /// late readiness task cannot put a draining replica back into rotation.
    pub async fn set_serving(&self) {
        if self.shutting_down.load(Ordering::SeqCst) {
            tracing::debug!("ignoring set_serving: the server is shutting down");
            return;
        }
        self.set_all(ServingStatus::Serving).await;
    }

    /// Reports NOT_SERVING for "" and every service name.
    pub async fn set_not_serving(&self) {
        self.set_all(ServingStatus::NotServing).await;
    }

    /// Reports one part of the server apart from the rest, under its own `name` (a
    /// dependency such as the revocation feed): its status says how that part fares
    /// without taking the replica out of rotation, which follows "" alone. Cleared with
    /// the rest at shutdown.
    pub async fn set_part(&self, name: &'static str, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        {
            let mut parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
            if !parts.contains(&name) {
                parts.push(name);
            }
        }
        self.reporter.set_service_status(name, status).await;
    }

    /// The service names registered besides "".
    pub fn service_names(&self) -> &[&'static str] {
        &self.service_names
    }

    /// First step of shutdown: NOT_SERVING for good.
    pub(crate) async fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.set_all(ServingStatus::NotServing).await;
    }

    /// Forgets every status. Health `Watch` streams are calls that never finish on their own,
    /// and graceful shutdown waits for in-flight calls; dropping the statuses ends those
    /// streams so shutdown is not held up until the grace period runs out.
    pub(crate) async fn end_watches(&self) {
        let mut reporter = self.reporter.clone();
        let parts: Vec<&'static str> = self
            .parts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for name in self.all_names().chain(parts).chain([LIVENESS]) {
            reporter.clear_service_status(name).await;
        }
    }

    pub(crate) fn server(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService::from_health_reporter(self.reporter.clone()))
    }

    fn all_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(OVERALL).chain(self.service_names.iter().copied())
    }

    async fn set_all(&self, status: ServingStatus) {
        for name in self.all_names() {
            self.reporter.set_service_status(name, status).await;
        }
    }
}
