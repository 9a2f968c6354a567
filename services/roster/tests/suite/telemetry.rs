//! The telemetry of the real `roster` binary, run as a subprocess on the test's databases:
//! the spans it exports over OTLP to a receiver in this test (one trace per CreateUser, from
//! the directory's handler and its statements through the relay to the audit service's
//! ingest, with W3C trace context between them and no personal data), its JSON log lines
//! (trace and span ids in every line of a call) and its Prometheus endpoint.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use roster_proto::directory::v1 as directory;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use roster_testkit::{TestBackend, TestDatabase};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Server};

const WS: &str = "acme";
const DIRECTORY: &str = "roster.directory.v1.DirectoryService";
const AUDIT: &str = "roster.audit.v1.AuditService";
/// How long the binary may take to start, and a span or line to arrive.
const PATIENCE: Duration = Duration::from_secs(30);

roster_testkit::on_both_databases!(
    crate::telemetry::run_without_collector =>
    json_log_lines_carry_the_callers_trace_without_a_collector,
);
roster_testkit::on_both_databases!(
    crate::telemetry::run => one_create_user_is_one_trace_from_handler_to_audit_ingest,
    json_log_lines_of_a_call_carry_its_trace,
    metrics_are_scraped_with_their_labels,
);

/// Boots `roster` on fresh databases of `backend` with an OTLP receiver, runs `test`,
/// stops the process and drops the databases.
async fn run<F, Fut>(backend: TestBackend, test: F)
where
    F: FnOnce(Roster) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let receiver = Receiver::start().await;
    let roster = Roster::start(&backend, Some(receiver)).await;
    test(roster).await;
}

/// [`run`] without a collector: no `OTEL_EXPORTER_OTLP_ENDPOINT`.
async fn run_without_collector<F, Fut>(backend: TestBackend, test: F)
where
    F: FnOnce(Roster) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let roster = Roster::start(&backend, None).await;
    test(roster).await;
}

/// Spans an OTLP exporter sent, as received.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
    addr: Option<SocketAddr>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        self.spans.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            addr: Some(listener.local_addr().unwrap()),
            ..Receiver::default()
        };
        let service = TraceServiceServer::new(receiver.clone());
        tokio::spawn(
            Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        receiver
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr.unwrap())
    }

    /// The spans of `trace_id` once `done` holds for them.
    async fn trace_until(&self, trace_id: &[u8], done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let trace: Vec<Span> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|span| span.trace_id == trace_id)
                .cloned()
                .collect();
            if done(&trace) {
                return trace;
            }
            assert!(
                Instant::now() < deadline,
                "the trace never completed; spans so far: {:#?}",
                trace.iter().map(describe).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn all(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

/// The `roster` binary running on the test's databases, its stdout collected.
struct Roster {
    child: Child,
    /// Where it exports its spans.
    receiver: Receiver,
    directory: SocketAddr,
    metrics: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    env: Vec<(String, String)>,
    _databases: Vec<TestDatabase>,
    data_dir: std::path::PathBuf,
}

impl Roster {
    async fn start(backend: &TestBackend, receiver: Option<Receiver>) -> Roster {
        let data_dir =
            std::env::temp_dir().join(format!("roster-telemetry-{}", uuid::Uuid::new_v4()));
        let mut env = vec![
            ("ROSTER_DATA_DIR".to_owned(), data_dir.display().to_string()),
            ("ROSTER_LOG_FORMAT".to_owned(), "json".to_owned()),
            ("ROSTER_LOG".to_owned(), "info".to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "50".to_owned()),
            ("ROSTER_METRICS_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "ROSTER_DIRECTORY_AUDIT_POLL_INTERVAL".to_owned(),
                "50ms".to_owned(),
            ),
        ];
        if let Some(receiver) = &receiver {
            env.push((
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
                receiver.endpoint(),
            ));
        }
        let mut databases = Vec::new();
        for service in ["DIRECTORY", "STAFF", "AUDIT"] {
            let database = TestDatabase::create(backend).await.unwrap();
            env.push((
                format!("ROSTER_{service}_DATABASE_URL"),
                database.url.clone(),
            ));
            env.push((
                format!("ROSTER_{service}_LISTEN_ADDR"),
                "127.0.0.1:0".to_owned(),
            ));
            databases.push(database);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_roster"))
            .arg("serve")
            // Only what this test sets, whatever the test runner's environment holds.
            .env_remove("RUST_LOG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let collected = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("{line}");
                }
                collected.lock().unwrap().push(line);
            }
        });
        let mut roster = Roster {
            child,
            receiver: receiver.unwrap_or_default(),
            directory: "127.0.0.1:0".parse().unwrap(),
            metrics: "127.0.0.1:0".parse().unwrap(),
            lines,
            env,
            _databases: databases,
            data_dir,
        };
        let started = roster
            .line_until(|line| line.starts_with("roster: directory on "))
            .await;
        roster.directory = started["roster: directory on ".len()..]
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let initialised = roster
            .json_until(|line| line["message"] == "telemetry initialised")
            .await;
        roster.metrics = initialised["metrics_addr"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        roster
    }

    /// The first line `matches` holds for, waiting for it.
    async fn line_until(&self, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.lines.lock().unwrap().iter().find(|l| matches(l)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "roster never wrote the line awaited; it wrote:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first JSON line `matches` holds for, waiting for it.
    async fn json_until(&self, matches: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let line = self
            .line_until(|line| {
                serde_json::from_str::<serde_json::Value>(line).is_ok_and(|json| matches(&json))
            })
            .await;
        serde_json::from_str(&line).unwrap()
    }

    fn json_lines(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// An admin token for `WS`, minted by `roster dev-token` with the running staff
    /// service's key.
    fn token(&self) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(["dev-token", "--workspace", WS])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("ROSTER_LOG", "off")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    async fn directory(&self) -> DirectoryServiceClient<Channel> {
        DirectoryServiceClient::connect(format!("http://{}", self.directory))
            .await
            .unwrap()
    }

    /// `GET /metrics` over plain HTTP, as a scraper asks.
    async fn scrape(&self) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(self.metrics).await.unwrap();
        stream
            .write_all(
                b"GET /metrics HTTP/1.1\r\nHost: roster\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        // Header names are case-insensitive; hyper writes them in lower case.
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        body.to_owned()
    }
}

impl Drop for Roster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A caller's W3C trace context: its trace id, its span id and the header.
fn caller_trace() -> ([u8; 16], [u8; 8], String) {
    let trace_id = *uuid::Uuid::new_v4().as_bytes();
    let span_id: [u8; 8] = uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap();
    let header = format!("00-{}-{}-01", hex(&trace_id), hex(&span_id));
    (trace_id, span_id, header)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a user as an agent calling with `traceparent`.
async fn create_user(roster: &Roster, token: &str, email: &str, traceparent: &str) {
    let mut request = crate::helpers::create_user_request(token, email);
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    roster.directory().await.create_user(request).await.unwrap();
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

fn text<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attribute(span, key) {
        Some(any_value::Value::StringValue(value)) => Some(value),
        _ => None,
    }
}

fn int(span: &Span, key: &str) -> Option<i64> {
    match attribute(span, key) {
        Some(any_value::Value::IntValue(value)) => Some(*value),
        _ => None,
    }
}

fn describe(span: &Span) -> String {
    format!(
        "{} {} parent {} kind {} {:?}",
        span.name,
        hex(&span.span_id),
        hex(&span.parent_span_id),
        span.kind,
        span.attributes
            .iter()
            .map(|kv| format!("{}={:?}", kv.key, kv.value))
            .collect::<Vec<_>>()
    )
}

/// The server span of `service`/`method` in `trace`.
fn server_span<'a>(trace: &'a [Span], service: &str, method: &str) -> Option<&'a Span> {
    trace.iter().find(|span| {
        span.kind == SpanKind::Server as i32
            && text(span, "rpc.service") == Some(service)
            && text(span, "rpc.method") == Some(method)
    })
}

/// Whether `span` descends from `ancestor` in `trace`.
fn descends_from(trace: &[Span], span: &Span, ancestor: &Span) -> bool {
    let by_id: HashMap<&[u8], &Span> = trace.iter().map(|s| (&s.span_id[..], s)).collect();
    let mut parent = &span.parent_span_id[..];
    while let Some(next) = by_id.get(parent) {
        if next.span_id == ancestor.span_id {
            return true;
        }
        parent = &next.parent_span_id[..];
    }
    false
}

/// Every string anywhere in a span's attributes, events and links.
fn strings(span: &Span) -> Vec<String> {
    fn of(values: &[KeyValue], out: &mut Vec<String>) {
        for kv in values {
            out.push(kv.key.clone());
            if let Some(value) = &kv.value {
                any(value, out);
            }
        }
    }
    fn any(value: &AnyValue, out: &mut Vec<String>) {
        match &value.value {
            Some(any_value::Value::StringValue(s)) => out.push(s.clone()),
            Some(any_value::Value::ArrayValue(array)) => {
                array.values.iter().for_each(|v| any(v, out));
            }
            Some(any_value::Value::KvlistValue(list)) => of(&list.values, out),
            Some(any_value::Value::BytesValue(bytes)) => {
                out.push(String::from_utf8_lossy(bytes).into_owned());
            }
            _ => {}
        }
    }
    let mut out = vec![span.name.clone(), span.trace_state.clone()];
    of(&span.attributes, &mut out);
    for event in &span.events {
        out.push(event.name.clone());
        of(&event.attributes, &mut out);
    }
    for link in &span.links {
        of(&link.attributes, &mut out);
    }
    out
}

async fn one_create_user_is_one_trace_from_handler_to_audit_ingest(roster: Roster) {
    let receiver = roster.receiver.clone();
    let token = roster.token();
    let email = format!("kirk-{}@example.com", uuid::Uuid::new_v4().simple());
    let (trace_id, caller_span, traceparent) = caller_trace();

    create_user(&roster, &token, &email, &traceparent).await;

    let trace = receiver
        .trace_until(&trace_id, |trace| {
            server_span(trace, AUDIT, "AppendEvents").is_some()
        })
        .await;
    let spans: Vec<String> = trace.iter().map(describe).collect();
    let handler = server_span(&trace, DIRECTORY, "CreateUser").expect("the directory's span");
    assert_eq!(handler.parent_span_id, caller_span, "{spans:#?}");
    assert_eq!(text(handler, "rpc.system"), Some("grpc"));
    assert_eq!(int(handler, "rpc.grpc.status_code"), Some(0));
    assert_eq!(
        text(handler, "workspace_id"),
        Some(WS),
        "{}",
        describe(handler)
    );
    let statement = trace
        .iter()
        .find(|span| text(span, "db.system").is_some() && descends_from(&trace, span, handler))
        .unwrap_or_else(|| panic!("no statement span under the handler: {spans:#?}"));
    assert_eq!(statement.kind, SpanKind::Client as i32);
    let delivery = trace
        .iter()
        .find(|span| {
            span.kind == SpanKind::Client as i32
                && text(span, "rpc.service") == Some(AUDIT)
                && text(span, "rpc.method") == Some("AppendEvents")
        })
        .unwrap_or_else(|| panic!("no delivery span: {spans:#?}"));
    assert_eq!(delivery.parent_span_id, handler.span_id, "{spans:#?}");
    assert!(
        delivery
            .links
            .iter()
            .any(|link| link.span_id == handler.span_id),
        "{spans:#?}"
    );
    assert_eq!(int(delivery, "rpc.grpc.status_code"), Some(0));
    let ingest = server_span(&trace, AUDIT, "AppendEvents").unwrap();
    assert_eq!(ingest.parent_span_id, delivery.span_id, "{spans:#?}");
    assert_eq!(text(ingest, "workspace_id"), Some(WS));
    assert_eq!(int(ingest, "rpc.grpc.status_code"), Some(0));
    assert!(
        trace
            .iter()
            .any(|span| text(span, "db.system").is_some() && descends_from(&trace, span, ingest)),
        "the audit service's statements are in the trace too: {spans:#?}"
    );
    // Nothing personal or secret in any span the process exported, this trace or another.
    let bearer_secret = token.rsplit('.').next().unwrap();
    for span in receiver.all() {
        for value in strings(&span) {
            assert!(!value.contains(&email), "{value} in {}", describe(&span));
            assert!(
                !value.contains("James Kirk"),
                "{value} in {}",
                describe(&span)
            );
            assert!(
                !value.contains(bearer_secret),
                "{value} in {}",
                describe(&span)
            );
        }
    }
}

/// Creates a user under a trace of the caller's and answers that trace's ids with the JSON
/// line that ends the call, whose trace id must be the caller's.
async fn create_user_traced(
    roster: &Roster,
    person: &str,
) -> ([u8; 16], [u8; 8], serde_json::Value) {
    let token = roster.token();
    let email = format!("{person}-{}@example.com", uuid::Uuid::new_v4().simple());
    let (trace_id, caller_span, traceparent) = caller_trace();

    create_user(roster, &token, &email, &traceparent).await;

    let finished = roster
        .json_until(|line| {
            line["message"] == "gRPC call finished"
                && line["span"]["rpc"] == format!("/{DIRECTORY}/CreateUser")
        })
        .await;
    assert_eq!(finished["trace_id"], hex(&trace_id), "{finished}");
    (trace_id, caller_span, finished)
}

async fn json_log_lines_of_a_call_carry_its_trace(roster: Roster) {
    let (trace_id, _, finished) = create_user_traced(&roster, "uhura").await;
    let handler = roster
        .receiver
        .trace_until(&trace_id, |trace| {
            server_span(trace, DIRECTORY, "CreateUser").is_some()
        })
        .await;
    let handler = server_span(&handler, DIRECTORY, "CreateUser").unwrap();
    assert_eq!(finished["span_id"], hex(&handler.span_id), "{finished}");
    // Every line written inside a call names its trace and span.
    let inside_calls: Vec<serde_json::Value> = roster
        .json_lines()
        .into_iter()
        .filter(|line| line["span"].is_object())
        .collect();
    assert!(!inside_calls.is_empty());
    for line in inside_calls {
        let ids = (line["trace_id"].as_str(), line["span_id"].as_str());
        assert!(
            matches!(ids, (Some(t), Some(s)) if t.len() == 32 && s.len() == 16),
            "{line}"
        );
    }
}

async fn metrics_are_scraped_with_their_labels(roster: Roster) {
    let token = roster.token();
    let (_, _, traceparent) = caller_trace();
    let email = format!("sulu-{}@example.com", uuid::Uuid::new_v4().simple());
    create_user(&roster, &token, &email, &traceparent).await;
    let missing = roster
        .directory()
        .await
        .get_user(roster_testkit::with_bearer(
            &token,
            directory::GetUserRequest {
                workspace_id: WS.into(),
                user_id: uuid::Uuid::now_v7().to_string(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // The relay's figures are observed as it measures them: wait for the delivery.
    let deadline = Instant::now() + PATIENCE;
    let scraped = loop {
        let scraped = roster.scrape().await;
        if sample(
            &scraped,
            "roster_outbox_delivered_total",
            &[("source", "directory")],
        )
        .is_some_and(|delivered| delivered >= 1.0)
        {
            break scraped;
        }
        assert!(Instant::now() < deadline, "no delivery counted:\n{scraped}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let create = [("rpc_service", DIRECTORY), ("rpc_method", "CreateUser")];
    let get = [("rpc_service", DIRECTORY), ("rpc_method", "GetUser")];
    let value = |name: &str, labels: &[(&str, &str)]| {
        sample(&scraped, name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{scraped}"))
    };
    assert_eq!(value("rpc_server_requests_total", &create), 1.0);
    assert_eq!(value("rpc_server_requests_total", &get), 1.0);
    let not_found = [get[0], get[1], ("rpc_grpc_status_code", "5")];
    assert_eq!(value("rpc_server_errors_total", &not_found), 1.0);
    assert!(
        sample(&scraped, "rpc_server_errors_total", &create).is_none(),
        "a success is no error:\n{scraped}"
    );
    let ok = [create[0], create[1], ("rpc_grpc_status_code", "0")];
    assert_eq!(value("rpc_server_duration_milliseconds_count", &ok), 1.0);
    let all = [ok[0], ok[1], ok[2], ("le", "+Inf")];
    assert_eq!(value("rpc_server_duration_milliseconds_bucket", &all), 1.0);
    let slow = [ok[0], ok[1], ok[2], ("le", "30000")];
    assert_eq!(value("rpc_server_duration_milliseconds_bucket", &slow), 1.0);
    let not_found_bucket = [not_found[0], not_found[1], not_found[2], ("le", "+Inf")];
    assert_eq!(
        value("rpc_server_duration_milliseconds_bucket", &not_found_bucket),
        1.0
    );
    for pool in ["directory", "staff", "audit"] {
        let name = ("db_client_connection_pool_name", pool);
        assert!(value("db_client_connection_max", &[name]) >= 1.0);
        let open = value(
            "db_client_connection_count",
            &[name, ("db_client_connection_state", "idle")],
        ) + value(
            "db_client_connection_count",
            &[name, ("db_client_connection_state", "used")],
        );
        assert!(open >= 1.0, "{pool}:\n{scraped}");
    }
    for source in ["directory", "staff"] {
        let source = [("source", source)];
        assert_eq!(value("roster_outbox_dead_letters", &source), 0.0);
        assert!(value("roster_outbox_pending", &source) >= 0.0);
        assert!(value("roster_outbox_lag_seconds", &source) >= 0.0);
    }
}

/// The value of the sample `name` carrying every one of `labels`, from Prometheus text.
fn sample(scraped: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scraped
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            (metric == name).then_some((rest, value))
        })
        .find(|(rest, _)| {
            labels
                .iter()
                .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

async fn json_log_lines_carry_the_callers_trace_without_a_collector(roster: Roster) {
    let (trace_id, caller_span, finished) = create_user_traced(&roster, "chekov").await;
    let span_id = finished["span_id"].as_str().unwrap();
    assert_eq!(span_id.len(), 16, "{finished}");
    assert_ne!(
        span_id,
        hex(&caller_span),
        "the server's own span: {finished}"
    );
    // The relay carries the trace to the audit service without a collector too.
    let ingest = roster
        .json_until(|line| {
            line["message"] == "gRPC call finished"
                && line["span"]["rpc"] == format!("/{AUDIT}/AppendEvents")
                && line["trace_id"] == hex(&trace_id)
        })
        .await;
    assert_eq!(ingest["span"]["workspace_id"], WS, "{ingest}");
}
