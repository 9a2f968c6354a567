//! Process-wide in-flight call limit that sheds excess load at once.
//!
//! tonic clones `Server::layer` for every connection, so tower's `ConcurrencyLimitLayer`
//! would limit each connection separately; here one semaphore is shared by all clones.
//! Waiting for a permit would only turn overload into timeouts, so a call that finds none is
//! answered RESOURCE_EXHAUSTED immediately and the client can back off or try another replica.
//! Health checks bypass the limit: a busy replica is still alive, and failing its probes would
//! make Kubernetes restart or unroute it exactly when capacity is short.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

use crate::error_details;
use crate::health::HEALTH_PATH_PREFIX;

/// Sheds calls beyond `limit` in flight across every connection of the server.
#[derive(Clone, Debug)]
pub struct GlobalConcurrencyLimitLayer {
    semaphore: Arc<Semaphore>,
    limit: usize,
}

impl GlobalConcurrencyLimitLayer {
    /// `limit` is clamped to what a tokio semaphore can hold (about 2^61).
    pub fn new(limit: usize) -> Self {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> Layer<S> for GlobalConcurrencyLimitLayer {
    type Service = GlobalConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GlobalConcurrencyLimit {
            inner,
            semaphore: Arc::clone(&self.semaphore),
            limit: self.limit,
        }
    }
}

/// Service produced by [`GlobalConcurrencyLimitLayer`].
#[derive(Clone, Debug)]
pub struct GlobalConcurrencyLimit<S> {
    inner: S,
    semaphore: Arc<Semaphore>,
    limit: usize,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GlobalConcurrencyLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.uri().path().starts_with(HEALTH_PATH_PREFIX) {
            return ResponseFuture::Admitted {
                inner: self.inner.call(request),
                permit: None,
            };
        }
        match Arc::clone(&self.semaphore).try_acquire_owned() {
            Ok(permit) => ResponseFuture::Admitted {
                inner: self.inner.call(request),
                permit: Some(permit),
            },
            Err(_) => ResponseFuture::Rejected {
                response: Some(
                    error_details::simple_status(
                        tonic::Code::ResourceExhausted,
                        format!(
                            "server is at its concurrency limit of {} in-flight calls; retry with backoff",
                            self.limit
                        ),
                        error_details::domain::RUNTIME,
                        error_details::reason::OVERLOADED,
                    )
                    .into_http(),
                ),
            },
        }
    }
}

pin_project! {
    /// Response future of [`GlobalConcurrencyLimit`]: the permit lives as long as the inner
    /// future, so it is returned when the handler answers or the call is dropped.
    #[project = ResponseFutureProj]
    pub enum ResponseFuture<F, B> {
        Admitted {
            #[pin]
            inner: F,
            permit: Option<OwnedSemaphorePermit>,
        },
        Rejected {
            response: Option<Response<B>>,
        },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ResponseFutureProj::Admitted { inner, permit } => {
                let output = std::task::ready!(inner.poll(cx));
                drop(permit.take());
                Poll::Ready(output)
            }
            ResponseFutureProj::Rejected { response } => {
                // Only reachable if polled again after completion, which breaks the Future
                // contract; answering INTERNAL is a safer reaction than panicking.
                Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                    tonic::Status::internal("response already taken").into_http()
                })))
            }
        }
    }
}
