//! Who asked for a change and the request it came with: what every audit event records
//! about its origin.

/// What the server runtime knows about the call being handled. Its request-context layer
/// builds one per call and stores it in the request's extensions, so handlers (audit
/// events, login history) read the same values that the logs carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The caller's `x-request-id` when it is 1..=128 visible ASCII characters, otherwise a
    /// fresh UUIDv7. Empty only when the request did not pass through the runtime's layers.
    pub request_id: String,
    /// 32 lowercase hex digits: the caller's W3C trace id, or the trace this server started.
    pub trace_id: Option<String>,
    /// The W3C `traceparent` of the server span handling the call
    /// (`00-<trace id>-<span id>-<flags>`), when traces are recorded: work done later on the
    /// call's behalf (the relay delivering its audit events) continues its trace from here.
    pub traceparent: Option<String>,
    /// Address of the TCP peer. Forwarding headers are ignored on purpose: any client can
    /// forge them, and this value ends up in audit records.
    pub peer_ip: Option<String>,
    /// The `user-agent` header as sent.
    pub user_agent: Option<String>,
}

/// The verified caller of a change, as audit records name it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// "agent" | "service" | "widget" | "system"
    pub kind: String,
    /// The token's subject, or what stands for it (a widget's external id).
    pub id: String,
    pub context: RequestContext,
}
