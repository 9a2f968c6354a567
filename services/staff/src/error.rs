//! The staff service's one error type and its one mapping to gRPC statuses.
//!
//! Every status carries google.rpc details (AIP-193): an `ErrorInfo` with a stable
//! `reason` from [`reason`] in the domain `staff.roster`, a `ResourceInfo` on NOT_FOUND and
//! ALREADY_EXISTS, a `RetryInfo` on ABORTED, UNAVAILABLE and RESOURCE_EXHAUSTED, and
//! `BadRequest` field violations on INVALID_ARGUMENT.

use roster_core::FieldViolation;
use roster_db::DbError;
use roster_db::retry::RetryableError;
use roster_runtime::error_details::{self, domain};
use roster_service::Refusal;
use tonic::{Code, Status};

/// The `ErrorInfo.reason` values the staff service answers; listed in the proto's header
/// comment too, since clients branch on them.
pub mod reason {
    pub const INVALID_ARGUMENT: &str = roster_runtime::error_details::INVALID_ARGUMENT;
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const INTERNAL: &str = roster_service::refusal::reason::INTERNAL;
    pub const ALREADY_EXISTS: &str = roster_service::refusal::reason::ALREADY_EXISTS;

    pub const AGENT_NOT_FOUND: &str = "AGENT_NOT_FOUND";
    pub const TEAM_NOT_FOUND: &str = "TEAM_NOT_FOUND";
    pub const AGENT_ALREADY_ACTIVE: &str = "AGENT_ALREADY_ACTIVE";
    pub const AGENT_DEACTIVATED: &str = "AGENT_DEACTIVATED";
    pub const TEAM_ALREADY_EXISTS: &str = "TEAM_ALREADY_EXISTS";
    pub const AGENT_STATUS: &str = "AGENT_STATUS";
    pub const SEAT_LIMIT_REACHED: &str = "SEAT_LIMIT_REACHED";
    pub const LAST_ADMIN: &str = "LAST_ADMIN";
    pub const INVITATION_INVALID: &str = "INVITATION_INVALID";
    pub const INVITATION_USED: &str = "INVITATION_USED";
    pub const INVITATION_REVOKED: &str = "INVITATION_REVOKED";
    pub const INVITATION_SUPERSEDED: &str = "INVITATION_SUPERSEDED";
    pub const INVITATION_EXPIRED: &str = "INVITATION_EXPIRED";
    pub const NO_PENDING_INVITATION: &str = "NO_PENDING_INVITATION";
    pub const REQUEST_ID_REUSED: &str = "REQUEST_ID_REUSED";
    pub const ETAG_MISMATCH: &str = "ETAG_MISMATCH";
    pub const CONCURRENT_CHANGE: &str = roster_service::refusal::reason::CONCURRENT_CHANGE;
    pub const WORKSPACE_NOT_GRANTED: &str = "WORKSPACE_NOT_GRANTED";
    pub const PERMISSION_MISSING: &str = "PERMISSION_MISSING";
    pub const GRANT_NOT_HELD: &str = "GRANT_NOT_HELD";
    pub const OWN_ROLE: &str = "OWN_ROLE";
    /// A bulk deactivation naming the caller's own agent.
    pub const OWN_ACCOUNT: &str = "OWN_ACCOUNT";
    /// A streamed upload ended in a transport or decoding error, not a message.
    pub const UPLOAD_BROKEN: &str = "UPLOAD_BROKEN";
    pub const NOT_AN_AGENT: &str = "NOT_AN_AGENT";
    pub const WRONG_CREDENTIALS: &str = "WRONG_CREDENTIALS";
    pub const SIGN_IN_THROTTLED: &str = "SIGN_IN_THROTTLED";
    pub const AGENT_NOT_ACTIVE: &str = "AGENT_NOT_ACTIVE";
    pub const REFRESH_TOKEN_INVALID: &str = "REFRESH_TOKEN_INVALID";
    pub const SERVICE_ACCOUNT_NOT_FOUND: &str = "SERVICE_ACCOUNT_NOT_FOUND";
    pub const SERVICE_ACCOUNT_ALREADY_EXISTS: &str = "SERVICE_ACCOUNT_ALREADY_EXISTS";
    pub const SERVICE_ACCOUNT_REVOKED: &str = "SERVICE_ACCOUNT_REVOKED";
    pub const CLIENT_CREDENTIALS_INVALID: &str = "CLIENT_CREDENTIALS_INVALID";
    pub const DATABASE_UNAVAILABLE: &str = roster_service::refusal::reason::DATABASE_UNAVAILABLE;

    pub const ROLE_NOT_FOUND: &str = "ROLE_NOT_FOUND";
    pub const ROLE_ALREADY_EXISTS: &str = "ROLE_ALREADY_EXISTS";
    /// A built-in role cannot be changed or deleted.
    pub const ROLE_BUILT_IN: &str = "ROLE_BUILT_IN";
    /// Agents still hold the role.
    pub const ROLE_IN_USE: &str = "ROLE_IN_USE";
    pub const ROLE_LIMIT_REACHED: &str = "ROLE_LIMIT_REACHED";
    /// An agent holds a role that no longer exists (fail closed).
    pub const ROLE_UNKNOWN: &str = "ROLE_UNKNOWN";

    pub const SSO_CONNECTION_NOT_FOUND: &str = "SSO_CONNECTION_NOT_FOUND";
    pub const SSO_CONNECTION_ALREADY_EXISTS: &str = "SSO_CONNECTION_ALREADY_EXISTS";
    pub const SSO_CONNECTION_LIMIT_REACHED: &str = "SSO_CONNECTION_LIMIT_REACHED";
    /// Deleting an enabled connection: disable it first.
    pub const SSO_CONNECTION_ENABLED: &str = "SSO_CONNECTION_ENABLED";
    /// A stored connection no longer parses (fail closed).
    pub const SSO_CONNECTION_INVALID: &str = "SSO_CONNECTION_INVALID";
    /// Enabling (or re-pointing an enabled connection) needs a successful test first.
    pub const SSO_TEST_REQUIRED: &str = "SSO_TEST_REQUIRED";
    pub const SSO_TEST_FAILED: &str = "SSO_TEST_FAILED";
    /// SsoLogin: the workspace has no such connection (another workspace's included).
    pub const SSO_CONNECTION_UNKNOWN: &str = "SSO_CONNECTION_UNKNOWN";
    pub const SSO_CONNECTION_DISABLED: &str = "SSO_CONNECTION_DISABLED";
    /// SsoLogin: the ID token does not verify, or was used before.
    pub const SSO_TOKEN_INVALID: &str = "SSO_TOKEN_INVALID";
    pub const SSO_EMAIL_NOT_VERIFIED: &str = "SSO_EMAIL_NOT_VERIFIED";
    pub const SSO_DOMAIN_NOT_ALLOWED: &str = "SSO_DOMAIN_NOT_ALLOWED";
    /// SsoLogin: the e-mail's agent is linked to another identity of the connection.
    pub const SSO_IDENTITY_CONFLICT: &str = "SSO_IDENTITY_CONFLICT";
    /// SsoLogin: nobody has the e-mail and the connection does not create agents.
    pub const SSO_NOT_PROVISIONED: &str = "SSO_NOT_PROVISIONED";
}

/// The resource types named in `ResourceInfo`.
pub const AGENT_RESOURCE: &str = "roster.staff.v1.Agent";
pub const TEAM_RESOURCE: &str = "roster.staff.v1.Team";
pub const ROLE_RESOURCE: &str = "roster.staff.v1.Role";
pub const SSO_CONNECTION_RESOURCE: &str = "roster.staff.v1.SsoConnection";

#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    /// A refusal with its precise reason (and resource).
    #[error("{}", .0.message)]
    Refused(Box<Refusal>),
    #[error(transparent)]
    Database(#[from] DbError),
    /// Logged once where it is turned into a status; the client sees a generic message.
    #[error("internal: {0}")]
    Internal(String),
}

pub type Result<T, E = StaffError> = std::result::Result<T, E>;

impl StaffError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        StaffError::Invalid(vec![FieldViolation::new(field, description)])
    }

    pub fn refused(
        code: Code,
        reason: &'static str,
        resource: Option<(&'static str, String)>,
        message: impl Into<String>,
    ) -> Self {
        StaffError::Refused(Box::new(Refusal {
            code,
            message: message.into(),
            reason,
            resource,
            retry_after: None,
        }))
    }

    pub fn failed_precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::refused(Code::FailedPrecondition, reason, None, message)
    }

    pub fn permission_denied(reason: &'static str, message: impl Into<String>) -> Self {
        Self::refused(Code::PermissionDenied, reason, None, message)
    }

    pub fn agent_not_found(agent_id: impl std::fmt::Display) -> Self {
        Self::refused(
            Code::NotFound,
            reason::AGENT_NOT_FOUND,
            Some((AGENT_RESOURCE, agent_id.to_string())),
            format!("agent {agent_id} not found in this workspace"),
        )
    }

    pub fn team_not_found(team_id: impl std::fmt::Display) -> Self {
        Self::refused(
            Code::NotFound,
            reason::TEAM_NOT_FOUND,
            Some((TEAM_RESOURCE, team_id.to_string())),
            format!("team {team_id} not found in this workspace"),
        )
    }

    pub fn role_not_found(role_id: impl std::fmt::Display) -> Self {
        Self::refused(
            Code::NotFound,
            reason::ROLE_NOT_FOUND,
            Some((ROLE_RESOURCE, role_id.to_string())),
            format!("role {role_id} not found in this workspace"),
        )
    }

    pub fn sso_connection_not_found(connection_id: impl std::fmt::Display) -> Self {
        Self::refused(
            Code::NotFound,
            reason::SSO_CONNECTION_NOT_FOUND,
            Some((SSO_CONNECTION_RESOURCE, connection_id.to_string())),
            format!("SSO connection {connection_id} not found in this workspace"),
        )
    }

    /// A stale etag of a `what` (role, team).
    pub fn stale(what: &str) -> Self {
        Self::refused(
            Code::Aborted,
            reason::ETAG_MISMATCH,
            None,
            format!(
                "the {what} changed since it was read (etag mismatch); read it again and retry"
            ),
        )
    }

    pub fn stale_etag() -> Self {
        Self::refused(
            Code::Aborted,
            reason::ETAG_MISMATCH,
            None,
            "the agent changed since it was read (etag mismatch); read it again and retry",
        )
    }

    /// The gRPC code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            StaffError::Invalid(_) => Code::InvalidArgument,
            StaffError::Refused(refusal) => refusal.code,
            StaffError::Database(error) => Refusal::database_code(error),
            StaffError::Internal(_) => Code::Internal,
        }
    }
}

impl From<FieldViolation> for StaffError {
    fn from(violation: FieldViolation) -> Self {
        StaffError::Invalid(vec![violation])
    }
}

impl From<Vec<FieldViolation>> for StaffError {
    fn from(violations: Vec<FieldViolation>) -> Self {
        StaffError::Invalid(violations)
    }
}

impl From<crate::domain::access::NotHeld> for StaffError {
    fn from(refused: crate::domain::access::NotHeld) -> Self {
        StaffError::permission_denied(reason::GRANT_NOT_HELD, refused.message())
    }
}

impl From<sea_orm::DbErr> for StaffError {
    fn from(error: sea_orm::DbErr) -> Self {
        StaffError::Database(DbError::from(error))
    }
}

impl RetryableError for StaffError {
    fn as_db_error(&self) -> Option<&DbError> {
        match self {
            StaffError::Database(error) => Some(error),
            _ => None,
        }
    }
}

impl From<StaffError> for Status {
    fn from(error: StaffError) -> Self {
        let refusal = match error {
            StaffError::Invalid(violations) => {
                return error_details::invalid_argument(domain::STAFF, &violations);
            }
            StaffError::Refused(refusal) => *refusal,
            StaffError::Database(error) => Refusal::from_database(error),
            StaffError::Internal(context) => {
                tracing::error!(error = %context, "internal error");
                Refusal::internal()
            }
        };
        refusal.into_status(domain::STAFF)
    }
}
