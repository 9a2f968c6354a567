//! Outermost layer: request context, the `grpc_request` span and the one log line per call.
//!
//! The call is only over when the response body has sent its trailers: for a successful unary
//! call and for every streaming call the gRPC status travels there, not in the headers. So the
//! layer wraps the body and logs when the trailers go out. Errors returned before any message
//! are "trailers-only" responses whose status sits in the headers; those are logged at once.
//! A call whose future or body is dropped unfinished (deadline, client cancellation) is logged
//! as CANCELLED by a drop guard, so every call yields exactly one line. The same guard
//! records the call's metrics ([`crate::metrics`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use opentelemetry::trace::SpanContext;
use pin_project_lite::pin_project;
use tonic::Code;
use tower::{Layer, Service};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::context::{self, REQUEST_ID_HEADER};
use crate::health::HEALTH_PATH_PREFIX;
use crate::metrics::{MethodLabels, ServerMetrics, split_path};
use crate::propagation::extract_parent;

/// Builds the [`RequestContext`], opens the `grpc_request` span, logs each call's outcome
/// and records its metrics.
#[derive(Clone, Debug)]
pub struct RequestContextLayer {
    metrics: ServerMetrics,
}

impl RequestContextLayer {
    /// Makes the request metrics' instruments from the global meter provider: build the
    /// layer after [`crate::init_telemetry`].
    pub fn new() -> Self {
        Self {
            metrics: ServerMetrics::new(),
        }
    }
}

impl Default for RequestContextLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContextService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Service produced by [`RequestContextLayer`].
#[derive(Clone, Debug)]
pub struct RequestContextService<S> {
    inner: S,
    metrics: ServerMetrics,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestContextService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let mut ctx = context::from_http(request.headers(), request.extensions());
        let rpc = request.uri().path();
        let (service, method) = split_path(rpc).unwrap_or(("", ""));
        let span = tracing::info_span!(
            "grpc_request",
            request_id = %ctx.request_id,
            rpc = %rpc,
            peer = ctx.peer_ip.as_deref(),
            trace_id = Empty,
            // Set by the handler once the workspace is checked (`crate::record_workspace`).
            workspace_id = Empty,
            otel.kind = "server",
            // OpenTelemetry's gRPC conventions name server spans `package.Service/Method`.
            otel.name = %rpc.trim_start_matches('/'),
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = Empty,
        );
        // Fails only when no OpenTelemetry layer is installed (OTLP off) or the span is filtered
        // out; either way there is no trace to continue.
        let _ = span.set_parent(extract_parent(request.headers()));
        let recorded = recorded_span(&span);
        if ctx.trace_id.is_none() {
            ctx.trace_id = recorded.as_ref().map(|span| span.trace_id().to_string());
        }
        if let Some(trace_id) = &ctx.trace_id {
            span.record("trace_id", trace_id.as_str());
        }
        ctx.traceparent = recorded.as_ref().map(traceparent);
        let method = self.metrics.method(rpc);

        // Kubernetes probes every few seconds; successful checks would drown the real calls.
        let quiet = rpc.starts_with(HEALTH_PATH_PREFIX);
        let request_id = HeaderValue::from_str(&ctx.request_id).ok();
        request.extensions_mut().insert(ctx);
        let inner = span.in_scope(|| self.inner.call(request));
        ResponseFuture {
            inner,
            log: Some(CallLog {
                span,
                started,
                quiet,
                outcome: None,
                metrics: self.metrics.clone(),
                method,
            }),
            request_id,
        }
    }
}

/// This server span's OpenTelemetry identity, when OpenTelemetry is recording.
fn recorded_span(span: &Span) -> Option<SpanContext> {
    use opentelemetry::trace::TraceContextExt;

    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

/// The W3C `traceparent` naming `span` as the parent.
fn traceparent(span: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        span.trace_id(),
        span.span_id(),
        span.trace_flags().to_u8()
    )
}

pin_project! {
    /// Response future of [`RequestContextService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        log: Option<CallLog>,
        request_id: Option<HeaderValue>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ObservedBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.log.as_ref().map(|log| log.span.enter());
            ready!(this.inner.poll(cx))
        };
        let mut log = this.log.take();
        match result {
            Ok(mut response) => {
                if let Some(request_id) = this.request_id.take() {
                    response.headers_mut().insert(REQUEST_ID_HEADER, request_id);
                }
                if let Some(code) = status_in(response.headers())
                    && let Some(log) = log.take()
                {
                    log.finish(Outcome::Status(code));
                }
                Poll::Ready(Ok(response.map(|inner| ObservedBody { inner, log })))
            }
            Err(err) => {
                if let Some(log) = log {
                    log.finish(Outcome::ServiceError);
                }
                Poll::Ready(Err(err))
            }
        }
    }
}

pin_project! {
    /// Response body that logs the call when its trailers (and so its status) go out.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        log: Option<CallLog>,
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        // Streaming handlers run while the body is polled, so their logs need the span too.
        let polled = {
            let _entered = this.log.as_ref().map(|log| log.span.enter());
            this.inner.poll_frame(cx)
        };
        let outcome = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|trailers| Outcome::Status(status_in(trailers).unwrap_or(Code::Unknown))),
            Poll::Ready(Some(Err(_))) => Some(Outcome::BodyError),
            Poll::Ready(None) => Some(Outcome::EndedWithoutStatus),
            Poll::Pending => None,
        };
        if let Some(outcome) = outcome
            && let Some(log) = this.log.take()
        {
            log.finish(outcome);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn status_in(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

enum Outcome {
    Status(Code),
    /// The inner service failed instead of answering; tonic turns this into a status later.
    ServiceError,
    BodyError,
    EndedWithoutStatus,
}

/// Writes the call's single log line when dropped, whichever way the call ended.
struct CallLog {
    span: Span,
    started: Instant,
    /// Log a success at DEBUG rather than INFO.
    quiet: bool,
    outcome: Option<Outcome>,
    metrics: ServerMetrics,
    method: MethodLabels,
}

impl CallLog {
    fn finish(mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
    }
}

impl Drop for CallLog {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let _entered = self.span.enter();
        let code = match &self.outcome {
            Some(Outcome::Status(code)) => *code,
            Some(Outcome::ServiceError | Outcome::BodyError | Outcome::EndedWithoutStatus) => {
                Code::Internal
            }
            None => Code::Cancelled,
        };
        self.span.record("rpc.grpc.status_code", code as i32);
        self.metrics.record(&self.method, code, elapsed);
        if is_server_fault(code) {
            self.span.record("otel.status_code", "ERROR");
        }
        let grpc_code = code as i32;
        let grpc_status = code_name(code);
        match &self.outcome {
            None => tracing::info!(
                grpc_code,
                grpc_status,
                duration_ms,
                "gRPC call abandoned before completion (deadline exceeded or client went away)"
            ),
            Some(Outcome::ServiceError) => tracing::error!(
                grpc_code,
                grpc_status,
                duration_ms,
                "gRPC call failed inside the server stack"
            ),
            Some(Outcome::BodyError) => tracing::error!(
                grpc_code,
                grpc_status,
                duration_ms,
                "gRPC response stream failed"
            ),
            Some(Outcome::EndedWithoutStatus) => tracing::error!(
                grpc_code,
                grpc_status,
                duration_ms,
                "gRPC response ended without a status"
            ),
            Some(Outcome::Status(_)) => match code {
                Code::Ok if self.quiet => {
                    tracing::debug!(grpc_code, grpc_status, duration_ms, "gRPC call finished")
                }
                Code::Unknown | Code::Internal | Code::DataLoss => {
                    tracing::error!(grpc_code, grpc_status, duration_ms, "gRPC call finished")
                }
                Code::Unavailable
                | Code::DeadlineExceeded
                | Code::ResourceExhausted
                | Code::Unimplemented => {
                    tracing::warn!(grpc_code, grpc_status, duration_ms, "gRPC call finished")
                }
                _ => tracing::info!(grpc_code, grpc_status, duration_ms, "gRPC call finished"),
            },
        }
    }
}

/// Codes that OpenTelemetry's gRPC conventions count as server-side errors.
fn is_server_fault(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// The canonical names used by grpcurl, Envoy and the gRPC docs, so log searches match them.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
