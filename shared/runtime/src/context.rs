//! Per-request context: who called, under which request and trace ids.
//!
//! The request-context layer builds one [`RequestContext`] per call and stores it in the
//! request's extensions, so handlers (audit events, login history) read the same values that
//! the logs carry instead of re-parsing headers each in their own way. The type itself is
//! plain data in `roster-core`, so crates without a server (the outbox's audit events) can
//! name it.

use http::{Extensions, HeaderMap};
pub use roster_core::RequestContext;
use tonic::transport::server::TcpConnectInfo;
use tracing_subscriber::Registry;
use tracing_subscriber::registry::LookupSpan as _;

/// Metadata key carrying the request id, read from the caller and echoed on the response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// W3C Trace Context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";

const MAX_REQUEST_ID_LEN: usize = 128;

/// The context the server layer stored in a request, or an empty one (e.g. in handler unit
/// tests that build a `tonic::Request` by hand).
pub fn of_request<T>(request: &tonic::Request<T>) -> RequestContext {
    request
        .extensions()
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_default()
}

/// Names the workspace the current call acts in: the `workspace_id` of its `grpc_request`
/// span (an attribute of its trace, a field of its log lines) and of the current span, if
/// it declares one (a handler's `#[instrument(fields(workspace_id))]`). Handlers call it
/// once the workspace id is checked, so only well-formed ids are recorded.
pub fn record_workspace(workspace_id: &str) {
    let current = tracing::Span::current();
    current.record(WORKSPACE_FIELD, workspace_id);
    // A handler's own span sits between it and the call's span; the registry knows the
    // call's span by name.
    tracing::dispatcher::get_default(|dispatch| {
        let (Some(registry), Some(id)) = (dispatch.downcast_ref::<Registry>(), current.id()) else {
            return;
        };
        let Some(call) = registry
            .span(&id)
            .and_then(|span| span.scope().skip(1).find(|s| s.name() == CALL_SPAN))
        else {
            return;
        };
        let fields = call.metadata().fields();
        if let Some(field) = fields.field(WORKSPACE_FIELD) {
            let values = [(&field, Some(&workspace_id as &dyn tracing::Value))];
            dispatch.record(
                &call.id(),
                &tracing::span::Record::new(&fields.value_set(&values)),
            );
        }
    });
}

/// The name of the server span of a call (`layers::request_context`).
pub(crate) const CALL_SPAN: &str = "grpc_request";
const WORKSPACE_FIELD: &str = "workspace_id";

/// Everything that can be read from the request itself; the layer fills `trace_id` from
/// the server span when the caller sent no `traceparent`, and `traceparent` from the server
/// span when traces are recorded.
pub(crate) fn from_http(headers: &HeaderMap, extensions: &Extensions) -> RequestContext {
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_acceptable_request_id(id))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let trace_id = headers
        .get(TRACEPARENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(trace_id_from_traceparent);
    let peer_ip = extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .map(|addr| addr.ip().to_string());
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    RequestContext {
        request_id,
        trace_id,
        traceparent: None,
        peer_ip,
        user_agent,
    }
}

/// Caller-chosen ids are copied into logs and audit records, so only short, visible ASCII is
/// trusted; anything else is replaced rather than escaped.
fn is_acceptable_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Extracts the trace id from a `traceparent` value
/// (`version-traceid-parentid-flags`, see <https://www.w3.org/TR/trace-context/>).
/// Invalid headers yield `None`, as the spec asks receivers to ignore them.
pub(crate) fn trace_id_from_traceparent(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent_id = parts.next()?;
    let flags = parts.next()?;
    let has_more = parts.next().is_some();

    let valid = is_lower_hex(version, 2)
        && version != "ff"
        // Version 00 has exactly four fields; later versions may append more.
        && (version != "00" || !has_more)
        && is_lower_hex(trace_id, 32)
        && !is_all_zeros(trace_id)
        && is_lower_hex(parent_id, 16)
        && !is_all_zeros(parent_id)
        && is_lower_hex(flags, 2);
    valid.then(|| trace_id.to_owned())
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_all_zeros(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::net::SocketAddr;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn traceparent_yields_its_trace_id() {
        let value = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
        assert_eq!(trace_id_from_traceparent(&value).as_deref(), Some(TRACE_ID));
    }

    #[test]
    fn future_traceparent_versions_may_carry_more_fields() {
        let value = format!("01-{TRACE_ID}-00f067aa0ba902b7-01-extra");
        assert_eq!(trace_id_from_traceparent(&value).as_deref(), Some(TRACE_ID));
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        let cases = [
            String::new(),
            "garbage".to_owned(),
            format!("00-{TRACE_ID}-00f067aa0ba902b7"),
            format!("00-{TRACE_ID}-00f067aa0ba902b7-01-extra"),
            format!("ff-{TRACE_ID}-00f067aa0ba902b7-01"),
            format!("00-{}-00f067aa0ba902b7-01", TRACE_ID.to_uppercase()),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{TRACE_ID}-{}-01", "0".repeat(16)),
            format!("00-{}-00f067aa0ba902b7-01", &TRACE_ID[..31]),
            format!("00-{TRACE_ID}-00f067aa0ba902b7-1"),
            format!("0-{TRACE_ID}-00f067aa0ba902b7-01"),
        ];
        for value in cases {
            assert_eq!(trace_id_from_traceparent(&value), None, "{value}");
        }
    }

    #[test]
    fn caller_request_ids_are_kept_only_when_safe() {
        assert!(is_acceptable_request_id("abc-123_XYZ.~"));
        assert!(is_acceptable_request_id(&"a".repeat(128)));
        assert!(!is_acceptable_request_id(""));
        assert!(!is_acceptable_request_id(&"a".repeat(129)));
        assert!(!is_acceptable_request_id("has space"));
        assert!(!is_acceptable_request_id("tab\tinside"));
    }

    #[test]
    fn context_is_built_from_headers_and_connection() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("req-1"));
        headers.insert(
            TRACEPARENT_HEADER,
            HeaderValue::from_str(&format!("00-{TRACE_ID}-00f067aa0ba902b7-01")).unwrap(),
        );
        headers.insert(http::header::USER_AGENT, HeaderValue::from_static("ua/1"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        let mut extensions = Extensions::new();
        let remote: SocketAddr = "192.0.2.7:4444".parse().unwrap();
        extensions.insert(TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(remote),
        });

        let ctx = from_http(&headers, &extensions);

        assert_eq!(
            ctx,
            RequestContext {
                request_id: "req-1".to_owned(),
                trace_id: Some(TRACE_ID.to_owned()),
                traceparent: None,
                peer_ip: Some("192.0.2.7".to_owned()),
                user_agent: Some("ua/1".to_owned()),
            }
        );
    }

    #[test]
    fn unusable_request_ids_are_replaced_by_a_uuid() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("two words"));

        let ctx = from_http(&headers, &Extensions::new());

        let id = uuid::Uuid::parse_str(&ctx.request_id).expect("a generated UUID");
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(ctx.trace_id, None);
        assert_eq!(ctx.peer_ip, None);
    }

    #[test]
    fn missing_context_reads_as_default() {
        let request = tonic::Request::new(());
        assert_eq!(of_request(&request), RequestContext::default());
    }
}
