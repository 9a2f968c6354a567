//! The server's own cap on how long a call may run.
//!
//! tonic's `Server::timeout` puts one cap on every method. A client-streaming upload such as
//! ImportUsers legitimately runs as long as its upload (a million-row CSV takes minutes), so
//! the cap here skips the paths a service declares long-running; those end when the client's
//! deadline says so. tonic applies a client's `grpc-timeout` to every call either way.
//! An expired call is answered CANCELLED, as tonic does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::{Layer, Service};

#[derive(Clone, Debug)]
pub struct ServerTimeoutLayer {
    timeout: Duration,
    long_running: Arc<[&'static str]>,
}

impl ServerTimeoutLayer {
    /// `long_running` holds full gRPC paths (`/package.Service/Method`) exempt from the cap.
    pub fn new(timeout: Duration, long_running: &[&'static str]) -> Self {
        Self {
            timeout,
            long_running: long_running.into(),
        }
    }
}

impl<S> Layer<S> for ServerTimeoutLayer {
    type Service = ServerTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerTimeout {
            inner,
            timeout: self.timeout,
            long_running: Arc::clone(&self.long_running),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServerTimeout<S> {
    inner: S,
    timeout: Duration,
    long_running: Arc<[&'static str]>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ServerTimeout<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let capped = !self.long_running.contains(&request.uri().path());
        ResponseFuture {
            inner: self.inner.call(request),
            deadline: capped.then(|| tokio::time::sleep(self.timeout)),
        }
    }
}

pin_project! {
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        deadline: Option<Sleep>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result);
        }
        let expired = this
            .deadline
            .as_pin_mut()
            .is_some_and(|deadline| deadline.poll(cx).is_ready());
        if expired {
            return Poll::Ready(Ok(tonic::Status::cancelled("Timeout expired").into_http()));
        }
        Poll::Pending
    }
}
