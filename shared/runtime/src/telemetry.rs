//! The process-wide `tracing` subscriber: level filter, human or JSON output, and OpenTelemetry
//! trace export over OTLP when a collector endpoint is configured; and the process's meter
//! provider, exported over OTLP and/or served as Prometheus text ([`crate::metrics`]).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Once;

use anyhow::{Context as _, bail};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::layer::{self, Filter, Layer as _, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use roster_settings::{SettingsError, Source, parse_opt, parse_or, process_env, read};

/// How log lines are written to stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable single lines with span context, for terminals.
    #[default]
    Pretty,
    /// One JSON object per line with the event's and spans' fields, for log shippers.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected 'pretty' or 'json'".to_owned()),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        })
    }
}

/// Logging and tracing configuration.
#[derive(Clone, Debug)]
pub struct TelemetrySettings {
    /// `ROSTER_LOG_FORMAT`: `pretty` (default) or `json`.
    pub log_format: LogFormat,
    /// `ROSTER_LOG`, else `RUST_LOG`, else `info`; `tracing_subscriber::EnvFilter` syntax.
    pub log_filter: String,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://otel-collector:4317` (OTLP/gRPC). Unset: no
    /// trace export, and no exporter cost.
    pub otlp_endpoint: Option<String>,
    /// `OTEL_SERVICE_NAME`, else the name the service passes in; becomes `service.name`.
    pub service_name: String,
    /// `ROSTER_METRICS_ADDR`, e.g. `0.0.0.0:9464`: where metrics are served as Prometheus
    /// text (`GET /metrics`). Unset: no endpoint (metrics still go over OTLP when an
    /// endpoint is set).
    pub metrics_addr: Option<SocketAddr>,
}

const DEFAULT_LOG_FILTER: &str = "info";

impl TelemetrySettings {
    /// Reads `ROSTER_LOG_FORMAT`, `ROSTER_LOG`/`RUST_LOG`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
    /// `OTEL_SERVICE_NAME` and `ROSTER_METRICS_ADDR`, validating the filter and endpoint now rather than at first use.
    pub fn from_env(service_name: &str) -> Result<Self, SettingsError> {
        Self::from_source(&process_env, service_name)
    }

    /// Same as [`TelemetrySettings::from_env`] but reading variables through `lookup`.
    pub fn from_lookup(
        service_name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        Self::from_source(&|name: &str| Ok(lookup(name)), service_name)
    }

    fn from_source(source: Source<'_>, service_name: &str) -> Result<Self, SettingsError> {
        let log_format = parse_or(source, "ROSTER_LOG_FORMAT", LogFormat::Pretty, "log format")?;

        let (filter_variable, log_filter) = match read(source, "ROSTER_LOG")? {
            Some(filter) => ("ROSTER_LOG", filter),
            None => match read(source, "RUST_LOG")? {
                Some(filter) => ("RUST_LOG", filter),
                None => ("ROSTER_LOG", DEFAULT_LOG_FILTER.to_owned()),
            },
        };
        parse_filter(&log_filter).map_err(|err| {
            SettingsError::new(
                filter_variable,
                format!("invalid log filter '{log_filter}': {err}"),
            )
        })?;

        let otlp_endpoint = read(source, "OTEL_EXPORTER_OTLP_ENDPOINT")?;
        if let Some(endpoint) = &otlp_endpoint {
            check_otlp_endpoint(endpoint)
                .map_err(|why| SettingsError::new("OTEL_EXPORTER_OTLP_ENDPOINT", why))?;
        }

        let service_name =
            read(source, "OTEL_SERVICE_NAME")?.unwrap_or_else(|| service_name.to_owned());
        let metrics_addr = parse_opt(source, "ROSTER_METRICS_ADDR", "socket address")?;

        Ok(Self {
            log_format,
            log_filter,
            otlp_endpoint,
            service_name,
            metrics_addr,
        })
    }
}

fn parse_filter(filter: &str) -> Result<EnvFilter, tracing_subscriber::filter::ParseError> {
    EnvFilter::builder().parse(filter)
}

fn check_otlp_endpoint(endpoint: &str) -> Result<(), String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|err| format!("invalid URL '{endpoint}': {err}"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http"), Some(_)) => Ok(()),
        // The exporter is built without TLS support to keep the dependency tree lean.
        (Some("https"), Some(_)) => Err(format!(
            "'{endpoint}': TLS to the collector is not supported; use a plaintext http:// \
             endpoint such as a node-local or sidecar collector"
        )),
        _ => Err(format!(
            "'{endpoint}' is not an http:// URL; expected e.g. http://otel-collector:4317"
        )),
    }
}

/// Keeps the trace exporter alive. Dropping it flushes and shuts the exporter down, blocking
/// the dropping thread for up to a few seconds; in async code prefer
/// [`TelemetryGuard::shutdown`], which does that work on a blocking thread.
#[must_use = "dropping the guard shuts trace export down"]
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    meters: Option<SdkMeterProvider>,
    /// The Prometheus endpoint's accept loop.
    prometheus: Option<tokio::task::JoinHandle<()>>,
    /// Where the Prometheus endpoint listens.
    metrics_addr: Option<SocketAddr>,
}

impl TelemetryGuard {
    /// Where the Prometheus endpoint listens (the bound port when `ROSTER_METRICS_ADDR`
    /// named port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Flushes buffered spans and metrics and stops the exporters without blocking the
    /// async runtime.
    pub async fn shutdown(mut self) {
        let providers = self.take();
        match tokio::task::spawn_blocking(move || shut_down(providers)).await {
            Ok(()) => {}
            Err(err) => tracing::warn!(error = %err, "telemetry shutdown task failed"),
        }
    }

    fn take(&mut self) -> (Option<SdkTracerProvider>, Option<SdkMeterProvider>) {
        if let Some(task) = self.prometheus.take() {
            task.abort();
        }
        (self.provider.take(), self.meters.take())
    }
}

fn shut_down((provider, meters): (Option<SdkTracerProvider>, Option<SdkMeterProvider>)) {
    if let Some(provider) = provider
        && let Err(err) = provider.shutdown()
    {
        tracing::warn!(error = %err, "flushing traces at shutdown failed");
    }
    if let Some(meters) = meters
        && let Err(err) = meters.shutdown()
    {
        tracing::warn!(error = %err, "flushing metrics at shutdown failed");
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let providers = self.take();
        if providers.0.is_none() && providers.1.is_none() {
            return;
        }
        // Shutdown blocks until the batch is exported, and the export needs the Tokio
        // runtime's tasks to progress; a separate thread keeps the runtime's own threads free
        // to do that whichever thread drops the guard.
        let spawned = std::thread::Builder::new()
            .name("otel-shutdown".to_owned())
            .spawn(move || shut_down(providers));
        if let Ok(handle) = spawned {
            let _ = handle.join();
        }
    }
}

/// Installs the global subscriber and the W3C Trace Context propagator.
///
/// With an OTLP endpoint the exporter is built here, and it must be built inside a Tokio
/// runtime: call this from async code (e.g. first thing in `#[tokio::main]`). A second call
/// returns an error and changes nothing.
pub fn init_telemetry(settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    if tracing::dispatcher::has_been_set() {
        bail!("a global tracing subscriber is already installed; init_telemetry runs once");
    }
    let filter = parse_filter(&settings.log_filter)
        .with_context(|| format!("invalid log filter '{}'", settings.log_filter))?;

    let provider = match (&settings.otlp_endpoint, settings.log_format) {
        (Some(endpoint), _) => Some(tracer_provider(endpoint, &settings.service_name)?),
        // Without a collector, JSON lines still name their call's trace and span, and calls
        // to other services still carry them: spans get ids, and are recorded only when the
        // caller's are (then dropped, as nothing exports them).
        (None, LogFormat::Json) => Some(
            SdkTracerProvider::builder()
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
                .with_resource(resource(&settings.service_name))
                .build(),
        ),
        (None, LogFormat::Pretty) => None,
    };
    let (meters, prometheus) = meter_provider(settings)?;
    let metrics_addr = prometheus.as_ref().map(|(addr, _)| *addr);
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("roster"))
            .with_filter(StatementsInsideCalls)
    });
    // Statement spans would only lengthen every line's span list.
    let no_statements = || filter_fn(|metadata| !is_statement_span(metadata));
    let (pretty_layer, json_layer) = match settings.log_format {
        LogFormat::Pretty => (
            Some(tracing_subscriber::fmt::layer().with_filter(no_statements())),
            None,
        ),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(true)
                    .map_event_format(WithTraceIds)
                    .with_filter(no_statements()),
            ),
        ),
    };

    // On failure the provider is dropped here, which shuts its idle exporter down.
    tracing_subscriber::registry()
        .with(filter)
        .with(otel_layer)
        .with(pretty_layer)
        .with(json_layer)
        .try_init()
        .context("installing the global tracing subscriber")?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    if let Some(meters) = &meters {
        opentelemetry::global::set_meter_provider(meters.clone());
    }

    tracing::info!(
        service_name = %settings.service_name,
        log_format = %settings.log_format,
        otlp_endpoint = settings.otlp_endpoint.as_deref(),
        metrics_addr = metrics_addr.map(tracing::field::display),
        "telemetry initialised"
    );
    Ok(TelemetryGuard {
        provider,
        meters,
        prometheus: prometheus.map(|(_, task)| task),
        metrics_addr,
    })
}

type PrometheusEndpoint = (SocketAddr, tokio::task::JoinHandle<()>);

/// The meter provider with its readers (OTLP every `OTEL_METRIC_EXPORT_INTERVAL`, 60 s by
/// default; Prometheus on scrape), or `None` when neither is configured.
fn meter_provider(
    settings: &TelemetrySettings,
) -> anyhow::Result<(Option<SdkMeterProvider>, Option<PrometheusEndpoint>)> {
    if settings.otlp_endpoint.is_none() && settings.metrics_addr.is_none() {
        return Ok((None, None));
    }
    let mut builder = SdkMeterProvider::builder().with_resource(resource(&settings.service_name));
    if let Some(endpoint) = &settings.otlp_endpoint {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .with_context(|| format!("building the OTLP metric exporter for {endpoint}"))?;
        builder = builder.with_reader(PeriodicReader::builder(exporter).build());
    }
    let mut prometheus = None;
    if let Some(addr) = settings.metrics_addr {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            // Every instrument is Roster's own: the scope labels would only repeat it.
            .scope_info_enabled(false)
            .build()
            .context("building the Prometheus metric reader")?;
        builder = builder.with_reader(exporter);
        prometheus = Some(crate::metrics::serve_prometheus(addr, registry)?);
    }
    Ok((Some(builder.build()), prometheus))
}

fn resource(service_name: &str) -> Resource {
    Resource::builder()
        .with_service_name(service_name.to_owned())
        .build()
}

/// SeaORM's span around each statement (`sea_orm.query_all`, …).
fn is_statement_span(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.target().starts_with("sea_orm")
}

/// The trace layer's filter: statement spans are kept only inside another span (a call),
/// so background loops (the relay polling its outbox, health probes, purges) do not each
/// start a trace of their own every few seconds.
struct StatementsInsideCalls;

impl<S> Filter<S> for StatementsInsideCalls
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn enabled(&self, metadata: &Metadata<'_>, cx: &layer::Context<'_, S>) -> bool {
        !is_statement_span(metadata) || cx.lookup_current().is_some()
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        if is_statement_span(metadata) {
            Interest::sometimes()
        } else {
            Interest::always()
        }
    }
}

/// The JSON event format with the OpenTelemetry trace and span ids of the line's span in
/// front (`"trace_id"`, `"span_id"`, as log shippers and Grafana's derived fields expect),
/// so every line inside a call leads to its trace.
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        use opentelemetry::trace::TraceContextExt as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;

        // Events are formatted where they happen, inside the span they belong to.
        let context = tracing::Span::current().context();
        let ids = context.span().span_context().clone();
        if !ids.is_valid() {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::with_capacity(512);
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(
                writer,
                "{{\"trace_id\":\"{}\",\"span_id\":\"{}\"{}{rest}",
                ids.trace_id(),
                ids.span_id(),
                if rest.starts_with('}') { "" } else { "," },
            ),
            None => writer.write_str(&line),
        }
    }
}

fn tracer_provider(endpoint: &str, service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    // The tonic channel behind the exporter spawns its worker on the current runtime and
    // would panic without one.
    if tokio::runtime::Handle::try_current().is_err() {
        bail!(
            "the OTLP exporter must be built inside a Tokio runtime: call init_telemetry from async code"
        );
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .with_context(|| format!("building the OTLP span exporter for {endpoint}"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(service_name))
        .build())
}

/// For tests: logs to the test harness's captured output, only when `TEST_LOG` is set (quiet
/// test runs by default). Safe to call from every test.
pub fn init_test_telemetry() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        if std::env::var_os("TEST_LOG").is_none() {
            return;
        }
        let filter = EnvFilter::try_from_env("ROSTER_LOG")
            .or_else(|_| EnvFilter::try_from_default_env())
            .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
        // Another subscriber may already be installed by the test itself; that one wins.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<TelemetrySettings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TelemetrySettings::from_lookup("roster-test", move |name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_pretty_info_without_export() {
        let s = settings(&[]).unwrap();

        assert_eq!(s.log_format, LogFormat::Pretty);
        assert_eq!(s.log_filter, "info");
        assert_eq!(s.otlp_endpoint, None);
        assert_eq!(s.service_name, "roster-test");
        assert_eq!(s.metrics_addr, None);
    }

    #[test]
    fn variables_override_defaults() {
        let s = settings(&[
            ("ROSTER_LOG_FORMAT", "JSON"),
            ("ROSTER_LOG", "warn,roster=debug"),
            ("RUST_LOG", "trace"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_SERVICE_NAME", "directory-canary"),
            ("ROSTER_METRICS_ADDR", "0.0.0.0:9464"),
        ])
        .unwrap();

        assert_eq!(s.metrics_addr, Some("0.0.0.0:9464".parse().unwrap()));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.log_filter, "warn,roster=debug");
        assert_eq!(s.otlp_endpoint.as_deref(), Some("http://collector:4317"));
        assert_eq!(s.service_name, "directory-canary");
    }

    #[test]
    fn rust_log_is_the_fallback_filter() {
        let s = settings(&[("RUST_LOG", "debug")]).unwrap();
        assert_eq!(s.log_filter, "debug");
    }

    #[test]
    fn invalid_values_name_their_variable() {
        let cases = [
            ("ROSTER_LOG_FORMAT", "yaml"),
            ("ROSTER_LOG", "roster=loud"),
            ("RUST_LOG", "roster=loud"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
            ("ROSTER_METRICS_ADDR", ":9464"),
        ];
        for (name, value) in cases {
            let err = settings(&[(name, value)]).expect_err(value);
            assert_eq!(err.variable(), name, "{err}");
        }
    }

    #[test]
    fn exporter_needs_a_runtime() {
        let s = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")]).unwrap();

        let err = tracer_provider(s.otlp_endpoint.as_deref().unwrap(), &s.service_name)
            .expect_err("no runtime here");
        assert!(err.to_string().contains("Tokio runtime"), "{err}");
    }

    // The only test in this binary that installs the global subscriber.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn init_installs_once_and_shuts_down_cleanly() {
        let s = settings(&[
            ("ROSTER_LOG", "off"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ])
        .unwrap();

        let guard = init_telemetry(&s).unwrap();
        let second = init_telemetry(&s);
        init_test_telemetry();

        assert!(second.is_err(), "a second init must fail, not panic");
        guard.shutdown().await;
    }
}
