//! Metrics: the instruments every service shares, and the Prometheus text endpoint.
//!
//! [`crate::init_telemetry`] installs one OpenTelemetry meter provider for the process with
//! up to two readers: a periodic OTLP export (with `OTEL_EXPORTER_OTLP_ENDPOINT`) and a pull
//! reader rendered as Prometheus text on `ROSTER_METRICS_ADDR` (for clusters that scrape).
//! Without either the global provider stays OpenTelemetry's no-op one, and every instrument
//! here costs a branch.
//!
//! Instruments are made once (the server layer's when the server starts, the pools' and the
//! relays' when they are built), after `init_telemetry`: an instrument made before the
//! provider is installed stays a no-op. A call records into pre-built attribute sets of
//! at most three values, so the request path allocates nothing for metrics once a method
//! has been seen.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::{Key, KeyValue, Value};
use prometheus::{Encoder as _, TextEncoder};
use tokio::task::JoinHandle;
use tonic::Code;

/// The instrumentation scope of every Roster instrument.
pub const METER_NAME: &str = "roster";

/// The meter Roster's instruments come from: the global provider's at the time of the call.
pub fn meter() -> Meter {
    opentelemetry::global::meter(METER_NAME)
}

const RPC_SERVICE: Key = Key::from_static_str("rpc.service");
const RPC_METHOD: Key = Key::from_static_str("rpc.method");
const RPC_STATUS: Key = Key::from_static_str("rpc.grpc.status_code");
/// OpenTelemetry's name for a value outside a bounded set (as `http.request.method` uses it).
const OTHER: &str = "_OTHER";
/// Distinct methods kept as labels; a caller sending made-up paths cannot grow the series
/// past this (they become `_OTHER`).
const MAX_METHODS: usize = 512;
/// Milliseconds; from a cached token check to the server's own call cap.
const DURATION_BUCKETS_MS: [f64; 14] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
];

/// `rpc.service` and `rpc.method` of a call, cheap to clone (shared strings).
pub(crate) type MethodLabels = [KeyValue; 2];

/// The server layer's instruments: `rpc.server.duration` (ms, by service, method and
/// code), `rpc.server.requests` (by service and method) and `rpc.server.errors` (non-OK
/// calls, by service, method and code).
#[derive(Clone, Debug)]
pub(crate) struct ServerMetrics(Arc<ServerInstruments>);

#[derive(Debug)]
struct ServerInstruments {
    duration: Histogram<f64>,
    requests: Counter<u64>,
    errors: Counter<u64>,
    methods: RwLock<HashMap<Box<str>, MethodLabels>>,
}

impl ServerMetrics {
    pub(crate) fn new() -> Self {
        let meter = meter();
        Self(Arc::new(ServerInstruments {
            duration: meter
                .f64_histogram("rpc.server.duration")
                .with_unit("ms")
                .with_description("Duration of gRPC calls handled, until their status was sent")
                .with_boundaries(DURATION_BUCKETS_MS.to_vec())
                .build(),
            requests: meter
                .u64_counter("rpc.server.requests")
                .with_unit("{request}")
                .with_description("gRPC calls handled")
                .build(),
            errors: meter
                .u64_counter("rpc.server.errors")
                .with_unit("{request}")
                .with_description("gRPC calls that ended with a status other than OK")
                .build(),
            methods: RwLock::new(HashMap::new()),
        }))
    }

    /// The labels of the method at HTTP/2 `path` (`/package.Service/Method`), made once per
    /// method.
    pub(crate) fn method(&self, path: &str) -> MethodLabels {
        let methods = &self.0.methods;
        if let Some(labels) = methods
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
        {
            return labels.clone();
        }
        let mut methods = methods.write().unwrap_or_else(PoisonError::into_inner);
        if methods.len() >= MAX_METHODS {
            return other_method();
        }
        let (service, method) = split_path(path).unwrap_or((OTHER, OTHER));
        let labels = [
            KeyValue::new(RPC_SERVICE, Value::from(Arc::<str>::from(service))),
            KeyValue::new(RPC_METHOD, Value::from(Arc::<str>::from(method))),
        ];
        methods.insert(path.into(), labels.clone());
        labels
    }

    /// Records one finished call.
    pub(crate) fn record(&self, method: &MethodLabels, code: Code, elapsed: Duration) {
        let [service, method] = method.clone();
        let attributes = [service, method, KeyValue::new(RPC_STATUS, code as i64)];
        self.0
            .duration
            .record(elapsed.as_secs_f64() * 1000.0, &attributes);
        self.0.requests.add(1, &attributes[..2]);
        if code != Code::Ok {
            self.0.errors.add(1, &attributes);
        }
    }
}

fn other_method() -> MethodLabels {
    [
        KeyValue::new(RPC_SERVICE, OTHER),
        KeyValue::new(RPC_METHOD, OTHER),
    ]
}

/// `("package.Service", "Method")` of a gRPC path, `None` for anything else.
pub(crate) fn split_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
    };
    (plain(service) && plain(method)).then_some((service, method))
}

/// What a connection pool holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolUsage {
    /// Open connections, idle or in use.
    pub open: u64,
    pub idle: u64,
    /// The pool's ceiling.
    pub max: u64,
}

/// Reports the pool named `pool` (the service's name) as `db.client.connection.count`
/// (by `db.client.connection.state`: `idle`, `used`) and `db.client.connection.max`, read
/// with `usage` whenever metrics are collected.
pub fn observe_pool(pool: &'static str, usage: impl Fn() -> PoolUsage + Send + Sync + 'static) {
    let usage = Arc::new(usage);
    let name = KeyValue::new("db.client.connection.pool.name", pool);
    let states = [
        [
            name.clone(),
            KeyValue::new("db.client.connection.state", "idle"),
        ],
        [
            name.clone(),
            KeyValue::new("db.client.connection.state", "used"),
        ],
    ];
    let meter = meter();
    let read = Arc::clone(&usage);
    let _count = meter
        .u64_observable_gauge("db.client.connection.count")
        .with_unit("{connection}")
        .with_description("Connections of the database pool, by state")
        .with_callback(move |observer| {
            let now = read();
            observer.observe(now.idle, &states[0]);
            observer.observe(now.open.saturating_sub(now.idle), &states[1]);
        })
        .build();
    let _max = meter
        .u64_observable_gauge("db.client.connection.max")
        .with_unit("{connection}")
        .with_description("The most connections the database pool opens")
        .with_callback(move |observer| observer.observe(usage().max, std::slice::from_ref(&name)))
        .build();
}

/// An outbox as its relay last measured it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OutboxUsage {
    /// Rows waiting to be delivered (not dead).
    pub pending: u64,
    /// Dead letters waiting for an operator.
    pub dead: u64,
    /// Now minus the oldest pending event's time (0 with nothing pending).
    pub lag: Duration,
    /// Rows delivered since the relay started.
    pub delivered: u64,
}

/// Reports the outbox of `source` (the producing service) as `roster.outbox.pending`,
/// `roster.outbox.dead_letters`, `roster.outbox.lag` (seconds) and
/// `roster.outbox.delivered`, read with `usage` whenever metrics are collected.
pub fn observe_outbox(
    source: &'static str,
    usage: impl Fn() -> OutboxUsage + Send + Sync + 'static,
) {
    let usage = Arc::new(usage);
    let meter = meter();
    let gauge = |name: &'static str, description: &'static str, pick: fn(&OutboxUsage) -> u64| {
        let usage = Arc::clone(&usage);
        let attributes = [KeyValue::new("source", source)];
        meter
            .u64_observable_gauge(name)
            .with_unit("{event}")
            .with_description(description)
            .with_callback(move |observer| observer.observe(pick(&usage()), &attributes))
            .build()
    };
    let _pending = gauge(
        "roster.outbox.pending",
        "Audit events in the outbox waiting for delivery",
        |u| u.pending,
    );
    let _dead = gauge(
        "roster.outbox.dead_letters",
        "Audit events the audit service refused, set aside for an operator",
        |u| u.dead,
    );
    let attributes = [KeyValue::new("source", source)];
    let read = Arc::clone(&usage);
    let _lag = meter
        .f64_observable_gauge("roster.outbox.lag")
        .with_unit("s")
        .with_description("Age of the oldest audit event waiting in the outbox")
        .with_callback(move |observer| observer.observe(read().lag.as_secs_f64(), &attributes))
        .build();
    let attributes = [KeyValue::new("source", source)];
    let _delivered = meter
        .u64_observable_counter("roster.outbox.delivered")
        .with_unit("{event}")
        .with_description("Audit events this process delivered")
        .with_callback(move |observer| observer.observe(usage().delivered, &attributes))
        .build();
}

/// How long a scraper may take to send its request's head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `registry` as Prometheus text at `GET /metrics` on `addr` over HTTP/1.1 (hyper,
/// which tonic already brings). Binds now, so a taken port fails start-up; returns the
/// bound address and the task.
pub(crate) fn serve_prometheus(
    addr: SocketAddr,
    registry: prometheus::Registry,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    if tokio::runtime::Handle::try_current().is_err() {
        anyhow::bail!("the Prometheus endpoint must start inside a Tokio runtime");
    }
    let listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("ROSTER_METRICS_ADDR: binding {addr}"))?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a metrics scrape failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let registry = registry.clone();
            let scrape = service_fn(move |request| {
                let answer = answer_scrape(&request, &registry);
                async move { Ok::<_, std::convert::Infallible>(answer) }
            });
            tokio::spawn(async move {
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), scrape);
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "a metrics scrape failed");
                }
            });
        }
    });
    Ok((local, task))
}

fn answer_scrape<B>(
    request: &Request<B>,
    registry: &prometheus::Registry,
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            let encoder = TextEncoder::new();
            let mut body = Vec::new();
            match encoder.encode(&registry.gather(), &mut body) {
                Ok(()) => (StatusCode::OK, encoder.format_type().to_owned(), body),
                Err(error) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain".to_owned(),
                    error.to_string().into_bytes(),
                ),
            }
        }
        (&Method::GET, _) => (
            StatusCode::NOT_FOUND,
            "text/plain".to_owned(),
            b"metrics are at /metrics\n".to_vec(),
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain".to_owned(),
            b"GET /metrics\n".to_vec(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = http::HeaderValue::from_str(&content_type) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grpc_paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/roster.directory.v1.DirectoryService/CreateUser"),
            Some(("roster.directory.v1.DirectoryService", "CreateUser"))
        );
        for odd in ["", "/", "/a", "/a/", "//b", "/a/b/c", "/a b/c", "/a/b?x"] {
            assert_eq!(split_path(odd), None, "{odd}");
        }
    }

    #[test]
    fn made_up_methods_stop_adding_labels() {
        let metrics = ServerMetrics::new();
        for n in 0..MAX_METHODS + 10 {
            metrics.method(&format!("/pkg.S/M{n}"));
        }
        let labels = metrics.method("/pkg.S/Another");
        assert_eq!(labels[0].value.as_str(), OTHER);
        let known = metrics.method("/pkg.S/M3");
        assert_eq!(known[1].value.as_str(), "M3");
    }
}
