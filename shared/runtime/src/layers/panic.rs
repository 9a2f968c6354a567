//! Turns a handler panic into a gRPC INTERNAL status.
//!
//! Without this, a panic unwinds into hyper, which resets the stream and may tear down the
//! connection that other calls are multiplexed on. Caught here, the caller gets an ordinary
//! `INTERNAL: internal error` response (the panic text may hold data the caller must not see)
//! and the panic is logged inside the request's span, so it carries the request id.

use std::any::Any;

use tower_http::catch_panic::CatchPanicLayer;

/// Signature of [`internal_error_response`], named so the layer type can be spelled out.
pub type PanicResponder = fn(Box<dyn Any + Send + 'static>) -> http::Response<tonic::body::Body>;

/// `CatchPanicLayer` answering panics with [`internal_error_response`].
pub fn catch_panic_layer() -> CatchPanicLayer<PanicResponder> {
    CatchPanicLayer::custom(internal_error_response as PanicResponder)
}

/// A trailers-only gRPC response (HTTP 200, `grpc-status: 13`), logging the panic message.
pub fn internal_error_response(
    payload: Box<dyn Any + Send + 'static>,
) -> http::Response<tonic::body::Body> {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panic payload is not a string");
    tracing::error!(panic = message, "gRPC handler panicked; answering INTERNAL");
    crate::error_details::simple_status(
        tonic::Code::Internal,
        "internal error",
        crate::error_details::domain::RUNTIME,
        crate::error_details::reason::INTERNAL,
    )
    .into_http()
}
