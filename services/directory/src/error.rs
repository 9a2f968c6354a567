//! The directory's one error type and its one mapping to gRPC statuses.
//!
//! Every status carries google.rpc details (AIP-193): an `ErrorInfo` with a stable
//! `reason` from [`reason`] in the domain `directory.roster`, a `ResourceInfo` on NOT_FOUND
//! and ALREADY_EXISTS when the resource is known, a `RetryInfo` on ABORTED, UNAVAILABLE and
//! RESOURCE_EXHAUSTED, and `BadRequest` field violations on INVALID_ARGUMENT. The plain
//! variants (`NotFound(String)`, …) answer their code's generic reason; the constructors
//! below ([`DirectoryError::not_found`], …) name the precise one.

use roster_db::DbError;
use roster_runtime::error_details::{self, domain};
use roster_service::Refusal;
use tonic::{Code, Status};

use crate::domain::values::FieldViolation;

/// The `ErrorInfo.reason` values the directory answers. Listed in the proto's header
/// comment too: clients branch on them, so they never change meaning.
pub mod reason {
    pub const INVALID_ARGUMENT: &str = roster_runtime::error_details::INVALID_ARGUMENT;
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const ALREADY_EXISTS: &str = roster_service::refusal::reason::ALREADY_EXISTS;
    pub const FAILED_PRECONDITION: &str = "FAILED_PRECONDITION";
    pub const ABORTED: &str = "ABORTED";
    pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const RESOURCE_EXHAUSTED: &str = "RESOURCE_EXHAUSTED";
    pub const INTERNAL: &str = roster_service::refusal::reason::INTERNAL;

    pub const END_USER_NOT_FOUND: &str = "END_USER_NOT_FOUND";
    pub const CUSTOMER_NOT_FOUND: &str = "CUSTOMER_NOT_FOUND";
    pub const EXTERNAL_ID_TAKEN: &str = "EXTERNAL_ID_TAKEN";
    pub const EMAIL_TAKEN: &str = "EMAIL_TAKEN";
    pub const CUSTOMER_ALREADY_EXISTS: &str = "CUSTOMER_ALREADY_EXISTS";
    /// The user's status forbids the call (e.g. editing an erased user).
    pub const END_USER_STATUS: &str = "END_USER_STATUS";
    /// The customer is soft-deleted: restore it first.
    pub const CUSTOMER_DELETED: &str = "CUSTOMER_DELETED";
    /// The customer's state forbids the call (not deleted, for UndeleteCustomer).
    pub const CUSTOMER_STATUS: &str = "CUSTOMER_STATUS";
    /// DeleteCustomer while end-users that are not deleted still belong to the customer.
    pub const CUSTOMER_HAS_USERS: &str = "CUSTOMER_HAS_USERS";
    /// The workspace requires a customer on every end-user.
    pub const CUSTOMER_REQUIRED: &str = "CUSTOMER_REQUIRED";
    /// The workspace's chat access does not admit guests.
    pub const GUESTS_NOT_ADMITTED: &str = "GUESTS_NOT_ADMITTED";
    /// A request id was used before for a different call or different content.
    pub const REQUEST_ID_REUSED: &str = "REQUEST_ID_REUSED";
    /// A retried RotateWidgetSecret whose secret has been rotated out since.
    pub const WIDGET_SECRET_SUPERSEDED: &str = "WIDGET_SECRET_SUPERSEDED";
    pub const ETAG_MISMATCH: &str = "ETAG_MISMATCH";
    /// Concurrent changes kept conflicting; retrying the same call may succeed.
    pub const CONCURRENT_CHANGE: &str = roster_service::refusal::reason::CONCURRENT_CHANGE;
    pub const WORKSPACE_NOT_GRANTED: &str = "WORKSPACE_NOT_GRANTED";
    pub const PERMISSION_MISSING: &str = "PERMISSION_MISSING";
    pub const DATABASE_UNAVAILABLE: &str = roster_service::refusal::reason::DATABASE_UNAVAILABLE;
    /// ExportUser on a directory that has no audit service to read the user's events from.
    pub const AUDIT_NOT_CONFIGURED: &str = "AUDIT_NOT_CONFIGURED";
    /// ExportUser could not read the user's events from the audit service now.
    pub const AUDIT_UNAVAILABLE: &str = "AUDIT_UNAVAILABLE";
    /// More audit events about the user than one export holds.
    pub const EXPORT_TOO_LARGE: &str = "EXPORT_TOO_LARGE";
}

/// The resource types named in `ResourceInfo`: the proto message of the resource.
pub const END_USER_RESOURCE: &str = "roster.directory.v1.User";
pub const CUSTOMER_RESOURCE: &str = "roster.directory.v1.Customer";

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
    /// A refusal with its precise reason (and resource), built by the constructors below.
    #[error("{}", .0.message)]
    Refused(Box<Refusal>),
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

    fn refused(
        code: Code,
        reason: &'static str,
        resource: Option<(&'static str, String)>,
        message: impl Into<String>,
    ) -> Self {
        DirectoryError::Refused(Box::new(Refusal {
            code,
            message: message.into(),
            reason,
            resource,
            retry_after: None,
        }))
    }

    /// NOT_FOUND for the resource (`type`, `name`).
    pub fn not_found(
        reason: &'static str,
        resource: (&'static str, String),
        message: impl Into<String>,
    ) -> Self {
        Self::refused(Code::NotFound, reason, Some(resource), message)
    }

    /// ALREADY_EXISTS, naming the resource that already holds the value.
    pub fn already_exists(
        reason: &'static str,
        resource: (&'static str, String),
        message: impl Into<String>,
    ) -> Self {
        Self::refused(Code::AlreadyExists, reason, Some(resource), message)
    }

    pub fn failed_precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::refused(Code::FailedPrecondition, reason, None, message)
    }

    pub fn aborted(reason: &'static str, message: impl Into<String>) -> Self {
        Self::refused(Code::Aborted, reason, None, message)
    }

    /// UNAVAILABLE, with the default RetryInfo: something the directory depends on cannot
    /// serve the call now.
    pub fn unavailable(reason: &'static str, message: impl Into<String>) -> Self {
        Self::refused(Code::Unavailable, reason, None, message)
    }

    pub fn permission_denied(reason: &'static str, message: impl Into<String>) -> Self {
        Self::refused(Code::PermissionDenied, reason, None, message)
    }

    pub fn user_not_found(user_id: impl std::fmt::Display) -> Self {
        Self::not_found(
            reason::END_USER_NOT_FOUND,
            (END_USER_RESOURCE, user_id.to_string()),
            format!("end-user {user_id} not found in this workspace"),
        )
    }

    pub fn customer_not_found(customer_id: &str) -> Self {
        Self::not_found(
            reason::CUSTOMER_NOT_FOUND,
            (CUSTOMER_RESOURCE, customer_id.to_owned()),
            format!("customer '{customer_id}' not found in this workspace"),
        )
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
        Self::aborted(
            reason::ETAG_MISMATCH,
            "the resource changed since it was read (etag mismatch); read it again and retry",
        )
    }

    /// The same request id came with a different call or different content.
    pub fn request_id_reused() -> Self {
        Self::failed_precondition(
            reason::REQUEST_ID_REUSED,
            "request_id was already used for a different request (another call or other \
             values); a retry must repeat the request exactly, a new request needs a new id",
        )
    }

    /// The gRPC code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            DirectoryError::Invalid(_) => Code::InvalidArgument,
            DirectoryError::NotFound(_) => Code::NotFound,
            DirectoryError::AlreadyExists(_) => Code::AlreadyExists,
            DirectoryError::FailedPrecondition(_) => Code::FailedPrecondition,
            DirectoryError::Aborted(_) => Code::Aborted,
            DirectoryError::PermissionDenied(_) => Code::PermissionDenied,
            DirectoryError::Unauthenticated(_) => Code::Unauthenticated,
            DirectoryError::ResourceExhausted(_) => Code::ResourceExhausted,
            DirectoryError::Refused(refusal) => refusal.code,
            DirectoryError::Database(error) => Refusal::database_code(error),
            DirectoryError::Internal(_) => Code::Internal,
        }
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
        let code = error.code();
        let refusal = match error {
            DirectoryError::Invalid(violations) => {
                return error_details::invalid_argument(domain::DIRECTORY, &violations);
            }
            DirectoryError::Refused(refusal) => *refusal,
            DirectoryError::NotFound(message) => generic(code, message, reason::NOT_FOUND),
            DirectoryError::AlreadyExists(message) => {
                generic(code, message, reason::ALREADY_EXISTS)
            }
            DirectoryError::FailedPrecondition(message) => {
                generic(code, message, reason::FAILED_PRECONDITION)
            }
            DirectoryError::Aborted(message) => generic(code, message, reason::ABORTED),
            DirectoryError::PermissionDenied(message) => {
                generic(code, message, reason::PERMISSION_DENIED)
            }
            DirectoryError::Unauthenticated(message) => {
                generic(code, message, reason::UNAUTHENTICATED)
            }
            DirectoryError::ResourceExhausted(message) => {
                generic(code, message, reason::RESOURCE_EXHAUSTED)
            }
            DirectoryError::Database(error) => database_refusal(error),
            DirectoryError::Internal(context) => {
                tracing::error!(error = %context, "internal error");
                Refusal::internal()
            }
        };
        refusal.into_status(domain::DIRECTORY)
    }
}

fn generic(code: Code, message: String, reason: &'static str) -> Refusal {
    Refusal::new(code, reason, message)
}

/// Unique violations that reach this point were not translated by the store into a
/// precise ALREADY_EXISTS; the rest are the server's problem and are logged here, once.
fn database_refusal(error: DbError) -> Refusal {
    match error {
        DbError::UniqueViolation { constraint } => {
            let (reason, what) = if constraint.contains("email") {
                (
                    reason::EMAIL_TAKEN,
                    "another live end-user in this workspace has this e-mail",
                )
            } else if constraint.contains("external_id") {
                (
                    reason::EXTERNAL_ID_TAKEN,
                    "another live end-user in this workspace has this external id",
                )
            } else if constraint.contains("customers") {
                (
                    reason::CUSTOMER_ALREADY_EXISTS,
                    "a customer with this customer_id already exists in this workspace",
                )
            } else {
                (reason::ALREADY_EXISTS, "the resource already exists")
            };
            generic(Code::AlreadyExists, what.into(), reason)
        }
        other => Refusal::from_database(other),
    }
}
