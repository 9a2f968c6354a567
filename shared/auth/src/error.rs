//! Errors: [`AuthError`] for rejected requests, [`KeyError`] for key material and minting.

use std::path::PathBuf;

use tonic::Status;

use crate::keys::SigningAlgorithm;

/// Why a request's credentials were refused. `Display` is meant for logs; the client sees the
/// message from the `tonic::Status` conversion, which never contains the token.
#[derive(thiserror::Error, Debug)]
pub enum AuthError {
    #[error("no `authorization` metadata")]
    MissingToken,
    #[error("`authorization` metadata is not `Bearer <token>`")]
    MalformedHeader,
    #[error("token header has no `kid`")]
    MissingKeyId,
    #[error("token signed with unknown key id {0:?}")]
    UnknownKey(String),
    #[error("token algorithm {found} is not accepted (expected {})", expected.as_str())]
    DisallowedAlgorithm {
        found: String,
        expected: SigningAlgorithm,
    },
    #[error("token header carries `{0}`, which is never trusted")]
    UntrustedHeader(&'static str),
    #[error("token signature does not verify")]
    InvalidSignature,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet (`nbf`)")]
    NotYetValid,
    #[error("token issued in the future (`iat`)")]
    IssuedInFuture,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    /// The reason is our own wording, safe to show to the client.
    #[error("token claims are invalid: {0}")]
    InvalidClaims(String),
    #[error("token revoked")]
    Revoked,
    /// The verifier cannot tell revoked tokens apart: it has not heard from the staff
    /// service yet (`None`) or not for this many seconds.
    #[error("revocations unknown (last heard {stale_secs:?} s ago)")]
    RevocationsUnknown { stale_secs: Option<u64> },
    /// The reason may quote token content, so it goes to logs only.
    #[error("invalid token: {0}")]
    InvalidToken(String),
}

/// The `google.rpc.ErrorInfo` domain of the statuses this crate answers.
pub const ERROR_DOMAIN: &str = "auth.roster";

impl AuthError {
    /// The stable `ErrorInfo.reason` a client may branch on: a missing or expired token
    /// means "get a new token", the rest mean "this token will never be accepted".
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken | AuthError::MalformedHeader => "TOKEN_MISSING",
            AuthError::Expired => "TOKEN_EXPIRED",
            AuthError::NotYetValid | AuthError::IssuedInFuture => "TOKEN_NOT_YET_VALID",
            AuthError::Revoked => "TOKEN_REVOKED",
            AuthError::RevocationsUnknown { .. } => "REVOCATIONS_UNKNOWN",
            AuthError::MissingKeyId | AuthError::UnknownKey(_) => "TOKEN_KEY_UNKNOWN",
            AuthError::WrongIssuer | AuthError::WrongAudience => "TOKEN_NOT_FOR_THIS_SERVICE",
            AuthError::DisallowedAlgorithm { .. }
            | AuthError::UntrustedHeader(_)
            | AuthError::InvalidSignature
            | AuthError::InvalidClaims(_)
            | AuthError::InvalidToken(_) => "TOKEN_INVALID",
        }
    }
}

/// An UNAUTHENTICATED status with its `ErrorInfo`.
pub fn unauthenticated(reason: &str, message: impl Into<String>) -> Status {
    let details = tonic_types::ErrorDetails::with_error_info(
        reason,
        ERROR_DOMAIN,
        std::collections::HashMap::new(),
    );
    <Status as tonic_types::StatusExt>::with_error_details(
        tonic::Code::Unauthenticated,
        message,
        details,
    )
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Status {
        let reason = error.reason();
        if let AuthError::RevocationsUnknown { stale_secs } = error {
            // Not the caller's fault and not about its token: UNAVAILABLE, so it retries.
            let message = match stale_secs {
                None => "this service has not yet heard from the staff service which tokens are revoked; retry shortly".to_owned(),
                Some(secs) => format!(
                    "this service has not heard from the staff service for {secs} s and cannot tell revoked tokens apart; retry later"
                ),
            };
            let details = tonic_types::ErrorDetails::with_error_info(
                reason,
                ERROR_DOMAIN,
                std::collections::HashMap::new(),
            );
            return <Status as tonic_types::StatusExt>::with_error_details(
                tonic::Code::Unavailable,
                message,
                details,
            );
        }
        let message = match error {
            AuthError::MissingToken => {
                "missing `authorization: Bearer <token>` metadata".to_owned()
            }
            AuthError::MalformedHeader => {
                "`authorization` metadata must be `Bearer <token>`".to_owned()
            }
            AuthError::MissingKeyId => {
                "token has no key id (`kid` header); request a new token from the staff service"
                    .to_owned()
            }
            AuthError::UnknownKey(kid) => format!(
                "token signed with unknown key id '{}'; request a new token from the staff service",
                printable(&kid)
            ),
            AuthError::DisallowedAlgorithm { found, expected } => format!(
                "token signed with {}; only {} is accepted",
                printable(&found),
                expected.as_str()
            ),
            AuthError::UntrustedHeader(header) => {
                format!("token header `{header}` is not allowed")
            }
            AuthError::InvalidSignature => "token signature is invalid".to_owned(),
            AuthError::Expired => "token expired; request a new one".to_owned(),
            AuthError::NotYetValid => {
                "token is not valid yet (`nbf` is in the future); check the clocks".to_owned()
            }
            AuthError::IssuedInFuture => {
                "token was issued in the future (`iat`); check the issuer's clock".to_owned()
            }
            AuthError::WrongIssuer => "token was not issued by the expected issuer".to_owned(),
            AuthError::WrongAudience => "token was issued for a different audience".to_owned(),
            AuthError::InvalidClaims(reason) => format!("token claims are invalid: {reason}"),
            AuthError::Revoked => {
                "token was revoked (the agent was deactivated or its access changed); sign in again"
                    .to_owned()
            }
            AuthError::RevocationsUnknown { .. } => String::new(),
            AuthError::InvalidToken(_) => "malformed access token".to_owned(),
        };
        unauthenticated(reason, message)
    }
}

/// Quotes attacker-chosen text (a `kid`) without letting it grow a status message or inject
/// control characters into logs and terminals.
fn printable(text: &str) -> String {
    const LIMIT: usize = 64;
    let mut out: String = text
        .chars()
        .take(LIMIT)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if text.chars().count() > LIMIT {
        out.push('…');
    }
    out
}

/// Problems with key material (JWKS, private keys, dev key files) or with minting a token.
#[derive(thiserror::Error, Debug)]
pub enum KeyError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("JWKS is not a valid JSON Web Key Set: {0}")]
    JwksJson(#[source] serde_json::Error),
    #[error("JWKS contains no keys")]
    EmptyKeySet,
    #[error("JWKS key #{index} has no `kid`")]
    MissingKeyId { index: usize },
    #[error("JWKS has more than one key with kid {0:?}")]
    DuplicateKeyId(String),
    #[error("JWKS key {kid:?} is not supported: {reason}")]
    UnsupportedKey { kid: String, reason: String },
    #[error("JWKS key {kid:?} is invalid: {reason}")]
    InvalidKey { kid: String, reason: String },
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(String),
    #[error("cannot mint token: {0}")]
    InvalidClaims(String),
    #[error("signing failed: {0}")]
    Signing(#[source] jsonwebtoken::errors::Error),
    #[error("cannot serialize JWKS: {0}")]
    Serialize(#[source] serde_json::Error),
    #[error("operating system random number generator failed: {0}")]
    Random(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_auth_error_is_unauthenticated() {
        let errors = [
            AuthError::MissingToken,
            AuthError::MalformedHeader,
            AuthError::MissingKeyId,
            AuthError::UnknownKey("k".into()),
            AuthError::DisallowedAlgorithm {
                found: "HS256".into(),
                expected: SigningAlgorithm::EdDSA,
            },
            AuthError::UntrustedHeader("jwk"),
            AuthError::InvalidSignature,
            AuthError::Expired,
            AuthError::WrongIssuer,
            AuthError::WrongAudience,
            AuthError::InvalidClaims("x".into()),
            AuthError::InvalidToken("secret detail".into()),
        ];
        for error in errors {
            let reason = error.reason();
            let status = Status::from(error);
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            let info = tonic_types::StatusExt::get_details_error_info(&status)
                .map(|info| (info.reason, info.domain));
            assert_eq!(info, Some((reason.to_owned(), ERROR_DOMAIN.to_owned())));
            assert!(!status.message().contains("secret detail"));
        }
    }

    #[test]
    fn unknown_kid_is_quoted_safely() {
        let status = Status::from(AuthError::UnknownKey(format!("a\nb{}", "x".repeat(100))));
        assert!(
            status
                .message()
                .starts_with("token signed with unknown key id 'a?bxxx")
        );
        assert!(!status.message().contains('\n'));
        assert!(status.message().len() < 160);
    }
}
