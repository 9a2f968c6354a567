//! The directory's one error type and its one mapping to gRPC statuses.

use roster_db::DbError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::values::FieldViolation;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("internal: {0}")]
    Internal(String),
}

pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;

impl DirectoryError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        DirectoryError::Invalid(vec![FieldViolation::new(field, description)])
    }

    pub fn user_not_found(user_id: impl std::fmt::Display) -> Self {
        DirectoryError::NotFound(format!("end-user {user_id} not found in this workspace"))
    }

    pub fn customer_not_found(customer_id: &str) -> Self {
        DirectoryError::NotFound(format!(
            "customer '{customer_id}' not found in this workspace"
        ))
    }

    /// A stored value that no longer parses (a workspace setting, a customer's domains).
    /// Refused, never read as a permissive default. FAILED_PRECONDITION rather than
    /// INTERNAL: someone with the right to change the value repairs it by setting it again
    /// (`repair` says how), and retrying before that cannot succeed. Logged here, once,
    /// since the status conversion logs internal errors only.
    pub fn unreadable_stored_value(
        workspace_id: &str,
        what: &str,
        detail: &str,
        repair: &str,
    ) -> Self {
        tracing::error!(
            workspace_id,
            what,
            detail,
            "a stored value does not parse; refusing instead of assuming a default"
        );
        DirectoryError::FailedPrecondition(format!("{what} is unreadable; {repair}"))
    }

    pub fn stale_etag() -> Self {
        DirectoryError::Aborted(
            "the resource changed since it was read (etag mismatch); read it again and retry"
                .into(),
        )
    }
}

impl From<FieldViolation> for DirectoryError {
    fn from(violation: FieldViolation) -> Self {
        DirectoryError::Invalid(vec![violation])
    }
}

impl From<Vec<FieldViolation>> for DirectoryError {
    fn from(violations: Vec<FieldViolation>) -> Self {
        DirectoryError::Invalid(violations)
    }
}

impl From<DirectoryError> for Status {
    fn from(error: DirectoryError) -> Self {
        match error {
            DirectoryError::Invalid(violations) => {
                let summary = violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.description))
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut details = ErrorDetails::new();
                for violation in &violations {
                    details.add_bad_request_violation(
                        violation.field.clone(),
                        violation.description.clone(),
                    );
                }
                Status::with_error_details(Code::InvalidArgument, summary, details)
            }
            DirectoryError::NotFound(message) => Status::not_found(message),
            DirectoryError::AlreadyExists(message) => Status::already_exists(message),
            DirectoryError::FailedPrecondition(message) => Status::failed_precondition(message),
            DirectoryError::Aborted(message) => Status::aborted(message),
            DirectoryError::PermissionDenied(message) => Status::permission_denied(message),
            DirectoryError::Unauthenticated(message) => Status::unauthenticated(message),
            DirectoryError::ResourceExhausted(message) => Status::resource_exhausted(message),
            DirectoryError::Database(error) => database_status(error),
            DirectoryError::Internal(context) => {
                tracing::error!(error = %context, "internal error");
                Status::internal("internal error; the request id in the logs has the details")
            }
        }
    }
}

/// Unique violations that reach this point were not translated by the store into a
/// precise ALREADY_EXISTS; the rest are the server's problem and are logged here, once.
fn database_status(error: DbError) -> Status {
    match error {
        DbError::UniqueViolation { constraint } => {
            let what = if constraint.contains("email") {
                "another live end-user in this workspace has this e-mail"
            } else if constraint.contains("external_id") {
                "another live end-user in this workspace has this external id"
            } else if constraint.contains("customers") {
                "a customer with this customer_id already exists in this workspace"
            } else {
                "the resource already exists"
            };
            Status::already_exists(what)
        }
        DbError::Conflict => Status::aborted("a concurrent change conflicted with this one; retry"),
        DbError::Unavailable(detail) => {
            tracing::warn!(error = %detail, "database unavailable");
            Status::unavailable("the database is unavailable; retry with backoff")
        }
        DbError::ForeignKeyViolation | DbError::Config(_) | DbError::Other(_) => {
            tracing::error!(error = %error, "database error");
            Status::internal("internal error; the request id in the logs has the details")
        }
    }
}
