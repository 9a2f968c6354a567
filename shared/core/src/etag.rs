//! Etags (AIP-154) are a row's version. Bare digits, because callers type them into
//! grpcurl's JSON; HTTP-style quoted (`"3"`) and weak (`W/"3"`) forms are accepted too.

use crate::FieldViolation;

/// The etag of a row at `version`.
pub fn etag(version: i64) -> String {
    version.to_string()
}

/// The version an etag names; an empty etag means "no precondition".
///
/// # Errors
///
/// The text is no etag this code produced, reported against `field`.
pub fn parse_etag(field: &str, etag: &str) -> Result<Option<i64>, FieldViolation> {
    if etag.is_empty() {
        return Ok(None);
    }
    etag.trim_start_matches("W/")
        .trim_matches('"')
        .parse::<i64>()
        .map(Some)
        .map_err(|_| {
            FieldViolation::new(
                field,
                format!("'{etag}' is not an etag this service returned"),
            )
        })
}

/// Whether a caller's precondition (`None`: none) still holds for a row at `version`.
pub fn is_current(expected: Option<i64>, version: i64) -> bool {
    expected.is_none_or(|expected| expected == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_quoted_and_weak_forms_name_the_same_version() {
        for text in ["7", "\"7\"", "W/\"7\""] {
            assert_eq!(parse_etag("etag", text), Ok(Some(7)), "{text}");
        }
        assert_eq!(parse_etag("etag", ""), Ok(None));
        assert_eq!(
            parse_etag("user.etag", "abc").map_err(|violation| violation.field),
            Err("user.etag".to_owned())
        );
    }

    #[test]
    fn no_precondition_is_always_current() {
        assert!(is_current(None, 4));
        assert!(is_current(Some(4), 4));
        assert!(!is_current(Some(3), 4));
    }
}
