//! google.rpc error details (AIP-193) on the statuses Roster answers: every non-OK status
//! carries an `ErrorInfo` whose `reason` is a stable UPPER_SNAKE_CASE word a client may
//! branch on and whose `domain` names who decided; statuses a client should simply retry
//! (ABORTED, UNAVAILABLE, RESOURCE_EXHAUSTED) also carry a `RetryInfo`.

use std::time::Duration;

use roster_core::FieldViolation;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of each part of Roster that answers a status, in one place so a
/// client's table of reasons has one key per decider.
pub mod domain {
    /// The shared server runtime: load shedding, message limits, panics.
    pub const RUNTIME: &str = "runtime.roster";
    /// The directory service.
    pub const DIRECTORY: &str = "directory.roster";
    /// The staff service.
    pub const STAFF: &str = "staff.roster";
    /// The audit service.
    pub const AUDIT: &str = "audit.roster";
}

/// The runtime's own reasons.
pub mod reason {
    /// The process is at its concurrency limit; retry with backoff.
    pub const OVERLOADED: &str = "OVERLOADED";
    /// A message is larger than the server accepts; resending it cannot succeed.
    pub const MESSAGE_TOO_LARGE: &str = "MESSAGE_TOO_LARGE";
    /// The server failed; the request id in its logs has the details.
    pub const INTERNAL: &str = "INTERNAL";
}

/// How long a client should wait before retrying a status of this code, when retrying the
/// same request can succeed: a lost race (ABORTED) soon, an overloaded or unavailable
/// server after a pause long enough to let it recover.
pub fn retry_delay(code: Code) -> Option<Duration> {
    match code {
        Code::Aborted => Some(Duration::from_millis(100)),
        Code::Unavailable | Code::ResourceExhausted => Some(Duration::from_secs(1)),
        _ => None,
    }
}

/// `details` plus the `ErrorInfo` and, when `retry_after` is set, the `RetryInfo`, as a
/// status.
pub fn status(
    code: Code,
    message: impl Into<String>,
    domain: &str,
    reason: &str,
    mut details: ErrorDetails,
    retry_after: Option<Duration>,
) -> Status {
    details.set_error_info(reason, domain, std::collections::HashMap::new());
    if retry_after.is_some() {
        details.set_retry_info(retry_after);
    }
    Status::with_error_details(code, message, details)
}

/// A status whose only details are its `ErrorInfo` and, when the code is retryable, the
/// `RetryInfo` of [`retry_delay`].
pub fn simple_status(code: Code, message: impl Into<String>, domain: &str, reason: &str) -> Status {
    status(
        code,
        message,
        domain,
        reason,
        ErrorDetails::new(),
        retry_delay(code),
    )
}

/// The `ErrorInfo.reason` of a request refused for its fields.
pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";

/// INVALID_ARGUMENT for `violations`: each one in a `BadRequest` for programs, and all of
/// them in the message (`field: description; …`) for the person reading a log.
pub fn invalid_argument(domain: &str, violations: &[FieldViolation]) -> Status {
    let message = violations
        .iter()
        .map(|violation| format!("{}: {}", violation.field, violation.description))
        .collect::<Vec<_>>()
        .join("; ");
    let mut details = ErrorDetails::new();
    for violation in violations {
        details.add_bad_request_violation(violation.field.clone(), violation.description.clone());
    }
    status(
        Code::InvalidArgument,
        message,
        domain,
        INVALID_ARGUMENT,
        details,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_every_field_in_details_and_message() {
        let status = invalid_argument(
            domain::DIRECTORY,
            &[
                FieldViolation::new("user.email", "is not an e-mail address"),
                FieldViolation::new("page_size", "must not be negative"),
            ],
        );
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "user.email: is not an e-mail address; page_size: must not be negative"
        );
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .map(|bad| {
                bad.field_violations
                    .iter()
                    .map(|v| v.field.as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(fields, ["user.email", "page_size"]);
        assert_eq!(
            details.error_info().map(|info| info.reason.as_str()),
            Some(INVALID_ARGUMENT)
        );
        assert!(details.retry_info().is_none());
    }
}
