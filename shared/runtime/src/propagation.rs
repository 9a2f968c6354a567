//! W3C Trace Context across process boundaries: extraction on incoming calls, injection on
//! outgoing ones, both through the global propagator that [`crate::init_telemetry`] installs.

use http::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // Propagators only emit ASCII header names and values; anything else is dropped
        // rather than failing the outgoing call.
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// The remote parent carried by the request headers (empty when there is none or no
/// propagator is installed).
pub(crate) fn extract_parent(headers: &HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    })
}

/// Writes the current span's trace context (`traceparent`) into outgoing call metadata, so the
/// callee's spans join this trace.
pub fn inject_trace_context(metadata: &mut MetadataMap) {
    let context = Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataInjector(metadata));
    });
}

/// A tonic interceptor for clients of other Roster services:
/// `XClient::with_interceptor(channel, roster_runtime::propagate_trace_context)`.
/// Interceptors run when the call is made, inside the caller's span.
#[allow(clippy::result_large_err)] // the signature tonic's `Interceptor` requires
pub fn propagate_trace_context(
    mut request: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    inject_trace_context(request.metadata_mut());
    Ok(request)
}

/// The most writers one delivery span links to; a batch holds up to a few hundred events.
const MAX_LINKS: usize = 128;

/// Makes `span`, which does work queued earlier by requests (the relay delivering their
/// audit events), continue those requests' traces, as OpenTelemetry models batched
/// messaging: when every writer belongs to one trace the span is a child of the first
/// writer, in that trace; otherwise it starts a trace of its own. Either way it links to
/// each writer. Call before the span is first entered; values that are not valid
/// `traceparent`s are skipped.
pub fn continue_writers<'a>(span: &Span, traceparents: impl IntoIterator<Item = &'a str>) {
    use opentelemetry::trace::TraceContextExt as _;

    let mut writers: Vec<SpanContext> = Vec::new();
    for value in traceparents {
        if let Some(writer) = parse_traceparent(value)
            && !writers
                .iter()
                .any(|seen| seen.span_id() == writer.span_id())
            && writers.len() < MAX_LINKS
        {
            writers.push(writer);
        }
    }
    let Some(first) = writers.first() else {
        return;
    };
    if writers
        .iter()
        .all(|writer| writer.trace_id() == first.trace_id())
    {
        // Fails only when OpenTelemetry is off, when there is no trace to continue.
        let _ =
            span.set_parent(opentelemetry::Context::new().with_remote_span_context(first.clone()));
    }
    for writer in writers {
        span.add_link(writer);
    }
}

/// A `traceparent` value as the remote span it names.
fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let trace_id = crate::context::trace_id_from_traceparent(value)?;
    let mut parts = value.trim().split('-').skip(2);
    let span_id = SpanId::from_hex(parts.next()?).ok()?;
    let flags = u8::from_str_radix(parts.next()?, 16).ok()?;
    Some(SpanContext::new(
        TraceId::from_hex(&trace_id).ok()?,
        span_id,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_parse_into_remote_spans() {
        let parsed =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();

        assert_eq!(
            parsed.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parsed.span_id().to_string(), "00f067aa0ba902b7");
        assert!(parsed.is_sampled());
        assert!(parsed.is_remote());
        assert!(
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01").is_none()
        );
        assert!(parse_traceparent("garbage").is_none());
    }
}
