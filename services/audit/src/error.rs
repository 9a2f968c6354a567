//! The audit service's one error type and its one mapping to gRPC statuses, with the
//! google.rpc details every Roster service answers (AIP-193): an `ErrorInfo` with a stable
//! `reason` from [`reason`] in the domain `audit.roster`, a `ResourceInfo` on NOT_FOUND
//! and ALREADY_EXISTS, a `RetryInfo` where retrying can succeed, `BadRequest` field
//! violations on INVALID_ARGUMENT.

use roster_core::FieldViolation;
use roster_db::DbError;
use roster_db::retry::RetryableError;
use roster_runtime::error_details::{self, domain};
use roster_service::Refusal;
use tonic::{Code, Status};

/// The `ErrorInfo.reason` values the audit service answers; listed in the proto's header.
pub mod reason {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const EVENT_NOT_FOUND: &str = "EVENT_NOT_FOUND";
    pub const EVENT_ID_REUSED: &str = "EVENT_ID_REUSED";
    pub const LEGAL_HOLD_NOT_FOUND: &str = "LEGAL_HOLD_NOT_FOUND";
    pub const EVENTS_PRUNED: &str = "EVENTS_PRUNED";
    pub const TREE_SIZE_AHEAD: &str = "TREE_SIZE_AHEAD";
    pub const WORKSPACE_NOT_GRANTED: &str = "WORKSPACE_NOT_GRANTED";
    pub const PERMISSION_MISSING: &str = "PERMISSION_MISSING";
    pub const NOT_A_SERVICE: &str = "NOT_A_SERVICE";
}

/// The resource types named in `ResourceInfo`.
pub const EVENT_RESOURCE: &str = "roster.audit.v1.AuditEvent";
pub const LEGAL_HOLD_RESOURCE: &str = "roster.audit.v1.LegalHold";

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
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

pub type Result<T, E = AuditError> = std::result::Result<T, E>;

impl AuditError {
    pub fn refused(
        code: Code,
        reason: &'static str,
        resource: Option<(&'static str, String)>,
        message: impl Into<String>,
    ) -> Self {
        AuditError::Refused(Box::new(Refusal {
            code,
            message: message.into(),
            reason,
            resource,
            retry_after: None,
        }))
    }

    pub fn permission_denied(reason: &'static str, message: impl Into<String>) -> Self {
        Self::refused(Code::PermissionDenied, reason, None, message)
    }

    pub fn event_not_found(what: impl std::fmt::Display) -> Self {
        Self::refused(
            Code::NotFound,
            reason::EVENT_NOT_FOUND,
            Some((EVENT_RESOURCE, what.to_string())),
            format!("event {what} not found in this workspace's log"),
        )
    }

    pub fn hold_not_found(hold_id: impl std::fmt::Display) -> Self {
        Self::refused(
            Code::NotFound,
            reason::LEGAL_HOLD_NOT_FOUND,
            Some((LEGAL_HOLD_RESOURCE, hold_id.to_string())),
            format!("legal hold {hold_id} not found in this workspace (lifted already?)"),
        )
    }

    /// A cursor below the first leaf retention kept.
    pub fn events_pruned(min_index: u64) -> Self {
        Self::refused(
            Code::FailedPrecondition,
            reason::EVENTS_PRUNED,
            None,
            format!(
                "events below leaf {min_index} were pruned by the log's retention; resume from there"
            ),
        )
    }

    /// A tree size the log has not reached (yet).
    pub fn tree_size_ahead(asked: u64, size: u64) -> Self {
        Self::refused(
            Code::OutOfRange,
            reason::TREE_SIZE_AHEAD,
            None,
            format!("the log holds {size} events; a tree of {asked} does not exist (yet)"),
        )
    }

    pub fn code(&self) -> Code {
        match self {
            AuditError::Invalid(_) => Code::InvalidArgument,
            AuditError::Refused(refusal) => refusal.code,
            AuditError::Database(error) => Refusal::database_code(error),
            AuditError::Internal(_) => Code::Internal,
        }
    }
}

impl From<FieldViolation> for AuditError {
    fn from(violation: FieldViolation) -> Self {
        AuditError::Invalid(vec![violation])
    }
}

impl From<Vec<FieldViolation>> for AuditError {
    fn from(violations: Vec<FieldViolation>) -> Self {
        AuditError::Invalid(violations)
    }
}

impl From<sea_orm::DbErr> for AuditError {
    fn from(error: sea_orm::DbErr) -> Self {
        AuditError::Database(DbError::from(error))
    }
}

impl RetryableError for AuditError {
    fn as_db_error(&self) -> Option<&DbError> {
        match self {
            AuditError::Database(error) => Some(error),
            _ => None,
        }
    }
}

impl From<AuditError> for Status {
    fn from(error: AuditError) -> Self {
        let refusal = match error {
            AuditError::Invalid(violations) => {
                return error_details::invalid_argument(domain::AUDIT, &violations);
            }
            AuditError::Refused(refusal) => *refusal,
            AuditError::Database(error) => Refusal::from_database(error),
            AuditError::Internal(context) => {
                tracing::error!(error = %context, "internal error");
                Refusal::internal()
            }
        };
        refusal.into_status(domain::AUDIT)
    }
}
