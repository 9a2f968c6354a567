//! A tiny gRPC service with methods that echo, block, hang, fail or panic on demand, served
//! through the runtime, plus a client for it. Messages are `()` (an empty protobuf message),
//! which is all these tests need.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use http::uri::PathAndQuery;
use prost::Message as _;
use roster_runtime::{GrpcServer, HealthHandle, RequestContext, ServerSettings};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_prost::ProstCodec;

pub const SERVICE: &str = "roster.test.v1.Test";

/// What the handler saw of one call.
#[derive(Clone, Debug)]
pub struct Seen {
    pub context: RequestContext,
    pub remote_addr: Option<SocketAddr>,
}

/// Shared between the test and the handlers it drives.
pub struct Probe {
    seen: Mutex<Vec<Seen>>,
    entered: mpsc::UnboundedSender<()>,
    dropped: mpsc::UnboundedSender<()>,
    release: Semaphore,
}

impl Probe {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last_seen(&self) -> Seen {
        self.seen().pop().expect("the handler ran")
    }

    /// Lets one blocked `Block` call return.
    pub fn release_one(&self) {
        self.release.add_permits(1);
    }

    async fn handle(&self, method: &str, request: Request<()>) -> Result<Response<()>, Status> {
        tracing::info!(method, "handler running");
        self.seen.lock().unwrap().push(Seen {
            context: roster_runtime::context::of_request(&request),
            remote_addr: request.remote_addr(),
        });
        match method {
            "Echo" => Ok(Response::new(())),
            "Fail" => Err(Status::not_found("no such thing")),
            "Panic" => panic!("handler exploded"),
            "Block" => {
                let _ = self.entered.send(());
                self.release.acquire().await.unwrap().forget();
                Ok(Response::new(()))
            }
            "Hang" => {
                let _dropped = SignalOnDrop(self.dropped.clone());
                let _ = self.entered.send(());
                std::future::pending().await
            }
            other => Err(Status::unimplemented(format!("no method {other}"))),
        }
    }
}

struct SignalOnDrop(mpsc::UnboundedSender<()>);

impl Drop for SignalOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[derive(Clone)]
struct TestService {
    probe: Arc<Probe>,
}

impl NamedService for TestService {
    const NAME: &'static str = SERVICE;
}

impl tower::Service<http::Request<tonic::body::Body>> for TestService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let probe = Arc::clone(&self.probe);
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        Box::pin(async move {
            let handler = tower::service_fn(move |request: Request<()>| {
                let probe = Arc::clone(&probe);
                let method = method.clone();
                async move { probe.handle(&method, request).await }
            });
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<(), ()>::default());
            Ok(grpc.unary(handler, request).await)
        })
    }
}

/// A descriptor set for the test service, built by hand since there is no .proto to compile.
pub fn test_descriptor_set() -> &'static [u8] {
    use prost_types::{
        DescriptorProto, FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
        ServiceDescriptorProto,
    };
    static ENCODED: OnceLock<Vec<u8>> = OnceLock::new();
    ENCODED.get_or_init(|| {
        let method = |name: &str| MethodDescriptorProto {
            name: Some(name.to_owned()),
            input_type: Some(".roster.test.v1.Nothing".to_owned()),
            output_type: Some(".roster.test.v1.Nothing".to_owned()),
            ..Default::default()
        };
        FileDescriptorSet {
            file: vec![FileDescriptorProto {
                name: Some("roster/test/v1/test.proto".to_owned()),
                package: Some("roster.test.v1".to_owned()),
                message_type: vec![DescriptorProto {
                    name: Some("Nothing".to_owned()),
                    ..Default::default()
                }],
                service: vec![ServiceDescriptorProto {
                    name: Some("Test".to_owned()),
                    method: ["Echo", "Fail", "Panic", "Block", "Hang"]
                        .into_iter()
                        .map(method)
                        .collect(),
                    ..Default::default()
                }],
                syntax: Some("proto3".to_owned()),
                ..Default::default()
            }],
        }
        .encode_to_vec()
    })
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub channel: Channel,
    pub health: HealthHandle,
    pub probe: Arc<Probe>,
    /// One message per `Block`/`Hang` call that reached its handler.
    pub entered: mpsc::UnboundedReceiver<()>,
    /// One message per `Hang` handler dropped by the server.
    pub dropped: mpsc::UnboundedReceiver<()>,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    pub async fn spawn(settings: ServerSettings) -> TestApp {
        Self::spawn_with_long_running(settings, &[]).await
    }

    /// `long_running` names methods of the test service (e.g. "Block") exempt from the
    /// server's request timeout.
    pub async fn spawn_with_long_running(
        settings: ServerSettings,
        long_running: &[&str],
    ) -> TestApp {
        install_test_subscriber();
        let paths: Vec<&'static str> = long_running
            .iter()
            .map(|method| &*Box::leak(format!("/{SERVICE}/{method}").into_boxed_str()))
            .collect();
        let server = GrpcServer::bind(settings, &[SERVICE])
            .await
            .unwrap()
            .long_running(&paths);
        let addr = server.local_addr();
        let health = server.health();

        let (entered_tx, entered) = mpsc::unbounded_channel();
        let (dropped_tx, dropped) = mpsc::unbounded_channel();
        let probe = Arc::new(Probe {
            seen: Mutex::new(Vec::new()),
            entered: entered_tx,
            dropped: dropped_tx,
            release: Semaphore::new(0),
        });
        let routes = Routes::new(TestService {
            probe: Arc::clone(&probe),
        });
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(server.serve(routes, &[test_descriptor_set()], async {
            let _ = shutdown_rx.await;
        }));

        TestApp {
            addr,
            channel: connect(addr).await,
            health,
            probe,
            entered,
            dropped,
            shutdown: Some(shutdown_tx),
            server,
        }
    }

    pub fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn call(&self, method: &str, request: Request<()>) -> Result<Response<()>, Status> {
        call(&self.channel, method, request).await
    }

    pub async fn check_health(&self, service: &str) -> Result<ServingStatus, Status> {
        check_health(&self.channel, service).await
    }

    /// Waits until a `Block` or `Hang` call is inside its handler.
    pub async fn handler_entered(&mut self) {
        self.entered.recv().await.expect("probe alive");
    }
}

pub async fn connect(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .user_agent("roster-test/1.0")
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub async fn call(
    channel: &Channel,
    method: &str,
    request: Request<()>,
) -> Result<Response<()>, Status> {
    let mut client = tonic::client::Grpc::new(channel.clone());
    client
        .ready()
        .await
        .map_err(|err| Status::unavailable(err.to_string()))?;
    let path = PathAndQuery::try_from(format!("/{SERVICE}/{method}")).unwrap();
    client
        .unary(request, path, ProstCodec::<(), ()>::default())
        .await
}

pub async fn check_health(channel: &Channel, service: &str) -> Result<ServingStatus, Status> {
    let response = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(response.into_inner().status())
}

pub fn request_id_of<T>(response: &Response<T>) -> String {
    response
        .metadata()
        .get("x-request-id")
        .expect("x-request-id echoed")
        .to_str()
        .unwrap()
        .to_owned()
}

/// One global subscriber for the whole test binary, installed before any test emits an event.
///
/// Thread-local subscribers (`set_default`) would be simpler, but tracing caches each
/// callsite's interest process-wide, and a callsite first hit on a thread without a subscriber
/// can stay disabled for the others. Here interest is always re-evaluated per event
/// ("sometimes"), and output goes to whichever [`Capture`] the emitting thread registered.
/// `#[tokio::test]` runs server and client on the test's thread, so that routes everything a
/// test's calls emit to that test. Tests that capture nothing see no OpenTelemetry layer at
/// all, as in a service without an OTLP endpoint. `TEST_LOG=1` adds readable output.
pub fn install_test_subscriber() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing::subscriber::Interest;
    use tracing_subscriber::filter::{DynFilterFn, EnvFilter};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::{Layer as _, util::SubscriberInitExt as _};

    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        fn capturing<S>() -> impl tracing_subscriber::layer::Filter<S> {
            DynFilterFn::new(
                |metadata: &tracing::Metadata<'_>,
                 _: &tracing_subscriber::layer::Context<'_, S>| {
                    *metadata.level() <= tracing::Level::INFO
                        && CAPTURE.with(|capture| capture.borrow().is_some())
                },
            )
            .with_callsite_filter(|_| Interest::sometimes())
        }
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_simple_exporter(CapturingExporter)
            .build();
        let human = std::env::var_os("TEST_LOG").map(|_| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(EnvFilter::new("info"))
        });
        tracing_subscriber::registry()
            .with(
                tracing_opentelemetry::layer()
                    .with_tracer(provider.tracer("test"))
                    .with_filter(capturing()),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(|| CapturingWriter)
                    .with_filter(capturing()),
            )
            .with(human)
            .init();
    });
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Sinks>> = const { std::cell::RefCell::new(None) };
}

#[derive(Clone, Default)]
struct Sinks {
    logs: Arc<Mutex<Vec<u8>>>,
    spans: Arc<Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>,
}

/// Spans and JSON log lines emitted on this thread while the returned value lives.
pub fn capture() -> Capture {
    install_test_subscriber();
    let sinks = Sinks::default();
    CAPTURE.with(|slot| *slot.borrow_mut() = Some(sinks.clone()));
    Capture { sinks }
}

pub struct Capture {
    sinks: Sinks,
}

impl Capture {
    pub fn spans(&self) -> Vec<opentelemetry_sdk::trace::SpanData> {
        self.sinks.spans.lock().unwrap().clone()
    }

    pub fn log_lines(&self) -> Vec<String> {
        String::from_utf8(self.sinks.logs.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = CAPTURE.try_with(|slot| slot.borrow_mut().take());
    }
}

/// Simple span processors export on the thread that ends the span: the test's thread.
#[derive(Debug)]
struct CapturingExporter;

impl opentelemetry_sdk::trace::SpanExporter for CapturingExporter {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        CAPTURE.with(|slot| {
            if let Some(sinks) = slot.borrow().as_ref() {
                sinks.spans.lock().unwrap().extend(batch);
            }
        });
        Ok(())
    }
}

struct CapturingWriter;

impl std::io::Write for CapturingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|slot| {
            if let Some(sinks) = slot.borrow().as_ref() {
                sinks.logs.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
