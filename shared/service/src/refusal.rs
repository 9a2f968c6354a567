//! A refusal a client can act on, and its one way onto the wire: every service's error type
//! ends in a [`Refusal`] (or field violations), which [`Refusal::into_status`] answers with
//! the google.rpc details AIP-193 asks for: `ErrorInfo` (reason, the service's domain),
//! `ResourceInfo` when the refusal names a resource, `RetryInfo` when retrying can succeed.
//!
//! [`Refusal::from_database`] is how a database error that the service did not explain
//! itself is answered, the same in every service.

use roster_db::DbError;
use roster_runtime::error_details::{self, retry_delay};
use tonic::{Code, Status};
use tonic_types::ErrorDetails;

/// The `ErrorInfo.reason`s of [`Refusal::from_database`] and [`Refusal::internal`]; a
/// service lists them with its own in its proto's header.
pub mod reason {
    pub const ALREADY_EXISTS: &str = "ALREADY_EXISTS";
    /// Concurrent changes kept conflicting; retrying the same call may succeed.
    pub const CONCURRENT_CHANGE: &str = "CONCURRENT_CHANGE";
    pub const DATABASE_UNAVAILABLE: &str = "DATABASE_UNAVAILABLE";
    pub const INTERNAL: &str = "INTERNAL";
}

#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: Code,
    /// For a person: what is wrong and what would help.
    pub message: String,
    /// Stable UPPER_SNAKE_CASE; clients branch on it.
    pub reason: &'static str,
    /// (resource type, resource name), answered as `ResourceInfo`.
    pub resource: Option<(&'static str, String)>,
    /// When retrying can succeed, after how long (`RetryInfo`); `None` takes the code's
    /// default (`error_details::retry_delay`).
    pub retry_after: Option<std::time::Duration>,
}

impl Refusal {
    pub fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            reason,
            resource: None,
            retry_after: None,
        }
    }

    /// The refusal of a failure that is the server's, not the caller's. The cause goes to
    /// the log (the caller's request id finds it), never to the client.
    pub fn internal() -> Self {
        Refusal::new(
            Code::Internal,
            reason::INTERNAL,
            "internal error; the request id in the logs has the details",
        )
    }

    /// A database error the service did not turn into a precise refusal itself: a unique
    /// violation is ALREADY_EXISTS, a conflict that kept recurring ABORTED, an unreachable
    /// database UNAVAILABLE, and the rest INTERNAL, logged here, once.
    pub fn from_database(error: DbError) -> Self {
        match error {
            DbError::UniqueViolation { .. } => Refusal::new(
                Code::AlreadyExists,
                reason::ALREADY_EXISTS,
                "the resource already exists",
            ),
            DbError::Conflict => Refusal::new(
                Code::Aborted,
                reason::CONCURRENT_CHANGE,
                "a concurrent change conflicted with this one; retry",
            ),
            DbError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "database unavailable");
                Refusal::new(
                    Code::Unavailable,
                    reason::DATABASE_UNAVAILABLE,
                    "the database is unavailable; retry with backoff",
                )
            }
            DbError::ForeignKeyViolation | DbError::Config(_) | DbError::Other(_) => {
                tracing::error!(%error, "database error");
                Refusal::internal()
            }
        }
    }

    /// The code [`Refusal::from_database`] answers `error` with, for a service that needs
    /// the code without building the refusal (to tell errors apart, say).
    pub fn database_code(error: &DbError) -> Code {
        match error {
            DbError::UniqueViolation { .. } => Code::AlreadyExists,
            DbError::Conflict => Code::Aborted,
            DbError::Unavailable(_) => Code::Unavailable,
            DbError::ForeignKeyViolation | DbError::Config(_) | DbError::Other(_) => Code::Internal,
        }
    }

    /// The status a client receives, with `domain` (the service's) in its `ErrorInfo`.
    pub fn into_status(self, domain: &str) -> Status {
        let mut details = ErrorDetails::new();
        if let Some((resource_type, name)) = self.resource {
            details.set_resource_info(resource_type, name, "", "");
        }
        error_details::status(
            self.code,
            self.message,
            domain,
            self.reason,
            details,
            self.retry_after.or_else(|| retry_delay(self.code)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt as _;

    #[test]
    fn database_errors_nobody_explained_get_one_answer_everywhere() {
        let cases = [
            (
                DbError::UniqueViolation {
                    constraint: "t_key".into(),
                },
                Code::AlreadyExists,
                reason::ALREADY_EXISTS,
                false,
            ),
            (
                DbError::Conflict,
                Code::Aborted,
                reason::CONCURRENT_CHANGE,
                true,
            ),
            (
                DbError::Unavailable("refused".into()),
                Code::Unavailable,
                reason::DATABASE_UNAVAILABLE,
                true,
            ),
            (
                DbError::Other("syntax error at \"secret\"".into()),
                Code::Internal,
                reason::INTERNAL,
                false,
            ),
        ];
        for (error, code, reason, retryable) in cases {
            assert_eq!(Refusal::database_code(&error), code);
            let status = Refusal::from_database(error).into_status("test.roster");
            assert_eq!(status.code(), code);
            assert!(!status.message().contains("secret"), "{}", status.message());
            let details = status.get_error_details();
            let info = details.error_info();
            assert_eq!(info.map(|i| i.reason.as_str()), Some(reason));
            assert_eq!(info.map(|i| i.domain.as_str()), Some("test.roster"));
            assert_eq!(details.retry_info().is_some(), retryable, "{reason}");
        }
    }

    #[test]
    fn a_named_resource_is_answered_as_resource_info() {
        let refusal = Refusal {
            resource: Some(("roster.test.v1.Thing", "t-1".into())),
            ..Refusal::new(Code::NotFound, "THING_NOT_FOUND", "thing t-1 not found")
        };
        let status = refusal.into_status("test.roster");
        let details = status.get_error_details();
        let resource = details.resource_info();
        assert_eq!(
            resource.map(|r| (r.resource_type.as_str(), r.resource_name.as_str())),
            Some(("roster.test.v1.Thing", "t-1"))
        );
        assert!(details.retry_info().is_none());
    }
}
