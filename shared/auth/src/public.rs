//! Token verification for a whole gRPC service with a short allowlist of public methods:
//! calls a person makes before they can hold a token (accepting an invitation) pass
//! without one, every other method of the service is verified as
//! [`TokenVerifier::interceptor`] does. The decision is made on the HTTP/2 path, which a
//! tonic interceptor never sees, so this wraps the generated server instead.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use futures_util::future::Either;
use tonic::server::NamedService;
use tower::Service;

use crate::verify::{TokenVerifier, bearer_token_of};

/// A service whose methods all need a verified token except those in `public`
/// (`/package.Service/Method` paths). Built by [`TokenVerifier::guard`].
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    verifier: TokenVerifier,
    public: &'static [&'static str],
}

impl TokenVerifier {
    /// Wraps a generated server: requests to a path in `public` reach it without a
    /// principal (a token they carry is ignored, not verified); every other request needs
    /// a valid token, whose [`crate::Principal`] goes into the request's extensions.
    pub fn guard<S>(&self, inner: S, public: &'static [&'static str]) -> Guarded<S> {
        Guarded {
            inner,
            verifier: self.clone(),
            public,
        }
    }
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Guarded<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>, Error = Infallible>,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = Infallible;
    type Future = Either<S::Future, Ready<Result<Self::Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        if self.public.contains(&request.uri().path()) {
            return Either::Left(self.inner.call(request));
        }
        let token = bearer_token_of(
            request
                .headers()
                .get_all(http::header::AUTHORIZATION)
                .iter()
                .map(|value| value.to_str().ok()),
        );
        match token.and_then(|token| self.verifier.verify(token)) {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                Either::Left(self.inner.call(request))
            }
            Err(error) => {
                tracing::debug!(%error, "rejected request credentials");
                Either::Right(ready(Ok(tonic::Status::from(error).into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Principal;
    use tower::ServiceExt as _;

    const PUBLIC: &[&str] = &["/pkg.Svc/Open"];

    /// Answers 200 with a header saying whether a principal reached it.
    fn inner() -> impl Service<
        http::Request<()>,
        Response = http::Response<String>,
        Error = Infallible,
        Future = Ready<Result<http::Response<String>, Infallible>>,
    > + Clone {
        tower::service_fn(|request: http::Request<()>| {
            let seen = request.extensions().get::<Principal>().is_some();
            ready(Ok(http::Response::builder()
                .header("x-principal", seen.to_string())
                .body(String::new())
                .unwrap()))
        })
    }

    /// Calls `path` guarded, with no token, a garbage one, or a valid one ("valid").
    async fn call(path: &str, token: Option<&str>) -> http::Response<String> {
        let (signer, keys, _) = crate::generate_ed25519("k").unwrap();
        let verifier = TokenVerifier::new(crate::VerifierSettings::default(), keys);
        let defaults = crate::VerifierSettings::default();
        let valid = signer
            .mint_for(
                &crate::TokenRequest {
                    subject: "a".into(),
                    kind: crate::PrincipalKind::Agent,
                    workspaces: [("w".to_owned(), crate::WorkspaceAccess::new("admin", &[]))]
                        .into(),
                    generation: 0,
                    ttl: std::time::Duration::from_secs(60),
                    issuer: defaults.issuer,
                    audience: defaults.audience,
                },
                crate::unix_now(),
            )
            .unwrap();
        let mut builder = http::Request::builder().uri(path);
        match token {
            Some("valid") => builder = builder.header("authorization", format!("Bearer {valid}")),
            Some(token) => builder = builder.header("authorization", format!("Bearer {token}")),
            None => {}
        }
        verifier
            .guard(inner(), PUBLIC)
            .oneshot(builder.body(()).unwrap())
            .await
            .unwrap()
    }

    fn grpc_code(response: &http::Response<String>) -> Option<tonic::Code> {
        tonic::Status::from_header_map(response.headers()).map(|status| status.code())
    }

    #[tokio::test]
    async fn public_methods_pass_without_a_token_and_without_a_principal() {
        let response = call("/pkg.Svc/Open", None).await;
        assert_eq!(grpc_code(&response), None);
        assert_eq!(response.headers()["x-principal"], "false");
        // A token on a public call is ignored, not verified: garbage is no reason to refuse.
        let response = call("/pkg.Svc/Open", Some("garbage")).await;
        assert_eq!(response.headers()["x-principal"], "false");
    }

    #[tokio::test]
    async fn every_other_method_needs_a_valid_token() {
        for token in [None, Some("garbage")] {
            let response = call("/pkg.Svc/Closed", token).await;
            assert_eq!(
                grpc_code(&response),
                Some(tonic::Code::Unauthenticated),
                "{token:?}"
            );
        }
        // Near misses of a public path are not public.
        for path in ["/pkg.Svc/Open/", "/pkg.Svc/OpenX", "/pkg.Other/Open"] {
            let response = call(path, None).await;
            assert_eq!(
                grpc_code(&response),
                Some(tonic::Code::Unauthenticated),
                "{path}"
            );
        }
        let response = call("/pkg.Svc/Closed", Some("valid")).await;
        assert_eq!(grpc_code(&response), None);
        assert_eq!(response.headers()["x-principal"], "true");
    }
}
