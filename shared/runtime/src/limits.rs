//! Message size limits as callers should see them. Each service wraps its generated server
//! in `OversizeIsResourceExhausted`.
//!
//! tonic refuses a request larger than `max_decoding_message_size` with OUT_OF_RANGE before
//! any handler runs. gRPC's status code guide and our contract (DESIGN.md: "RESOURCE_EXHAUSTED
//! on limits") call that RESOURCE_EXHAUSTED, so this wrapper rewrites exactly that status on
//! its way out and leaves every other response alone.

use std::task::{Context, Poll};

use futures_util::FutureExt as _;
use futures_util::future::Map;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::{Code, Status};
use tonic_types::ErrorDetails;

use crate::error_details;

/// How tonic's decoder words the refusal (`tonic::codec::decode`).
const TONIC_OVERSIZE_MESSAGE: &str = "Error, decoded message length too large";

/// Wraps a generated gRPC server; routes under the same name.
#[derive(Clone, Debug)]
pub struct OversizeIsResourceExhausted<S>(pub S);

impl<S: NamedService> NamedService for OversizeIsResourceExhausted<S> {
    const NAME: &'static str = S::NAME;
}

type Rewrite<B, E> = fn(Result<http::Response<B>, E>) -> Result<http::Response<B>, E>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for OversizeIsResourceExhausted<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Map<S::Future, Rewrite<ResBody, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        self.0
            .call(request)
            .map(rewrite as Rewrite<ResBody, S::Error>)
    }
}

/// The refusal is a trailers-only response: its status is in the headers.
fn rewrite<B, E>(result: Result<http::Response<B>, E>) -> Result<http::Response<B>, E> {
    let mut response = result?;
    if let Some(status) = Status::from_header_map(response.headers())
        && status.code() == Code::OutOfRange
        && status.message().starts_with(TONIC_OVERSIZE_MESSAGE)
    {
        // No RetryInfo: resending the same message cannot succeed.
        let exhausted = error_details::status(
            Code::ResourceExhausted,
            format!(
                "the request is larger than this server accepts ({}); send smaller messages, e.g. a CSV in chunks",
                status
                    .message()
                    .trim_start_matches(TONIC_OVERSIZE_MESSAGE)
                    .trim_start_matches(':')
                    .trim()
            ),
            error_details::domain::RUNTIME,
            error_details::reason::MESSAGE_TOO_LARGE,
            ErrorDetails::new(),
            None,
        );
        if exhausted.add_header(response.headers_mut()).is_err() {
            tracing::warn!("could not rewrite an oversize refusal to RESOURCE_EXHAUSTED");
        }
    }
    Ok(response)
}
