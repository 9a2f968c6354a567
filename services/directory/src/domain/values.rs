//! Checking constructors for every value a caller sends. Each returns the normalised value
//! or a violation naming the field, so the API can answer with precise field violations.

use uuid::Uuid;

pub use roster_core::FieldViolation;
/// Shared with every service (`roster-core`), so a workspace id or an e-mail is checked
/// the same everywhere.
pub use roster_core::values::{
    Checked, MAX_EMAIL_CHARS, MAX_URL_CHARS, domain_name, email, email_key, request_id,
    required_text, text, url, workspace_id,
};

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_NOTES_CHARS: usize = 4000;
pub const MAX_TEXT_CHARS: usize = 200;
pub const MAX_EXTERNAL_ID_CHARS: usize = 256;

fn has_control(value: &str) -> bool {
    value.chars().any(char::is_control)
}

pub fn customer_id(field: &str, value: &str) -> Checked<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.chars().count() > 128 {
        return Err(FieldViolation::new(field, "must be at most 128 characters"));
    }
    if !value
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
    {
        return Err(FieldViolation::new(
            field,
            "may contain only letters, digits, '-', '_', '.', ':' and '@'",
        ));
    }
    Ok(value.to_owned())
}

pub fn external_id(field: &str, value: &str) -> Checked<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.chars().count() > MAX_EXTERNAL_ID_CHARS {
        return Err(FieldViolation::new(field, "must be at most 256 characters"));
    }
    if has_control(value) {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

pub fn user_id(field: &str, value: &str) -> Checked<Uuid> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    Uuid::parse_str(value)
        .map_err(|_| FieldViolation::new(field, format!("'{value}' is not a user id (a UUID)")))
}

pub fn customer_domain(field: &str, value: &str) -> Checked<String> {
    let value = value.trim().to_lowercase();
    if !value.contains('.') {
        return Err(FieldViolation::new(
            field,
            format!("'{value}' is not a domain like example.com"),
        ));
    }
    domain_name(&value).map_err(|why| FieldViolation::new(field, format!("'{value}': {why}")))?;
    Ok(value)
}

pub fn phone(field: &str, value: &str) -> Checked<String> {
    let value = value.trim();
    if value.chars().count() > 50 {
        return Err(FieldViolation::new(field, "must be at most 50 characters"));
    }
    let allowed =
        |c: char| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')' | '/');
    if !value.chars().all(allowed) || !value.chars().any(|c| c.is_ascii_digit()) {
        return Err(FieldViolation::new(
            field,
            format!(
                "'{value}' is not a phone number: use digits with optional '+', spaces, '-', '.', '/' and parentheses"
            ),
        ));
    }
    Ok(value.to_owned())
}

pub fn identity_key(field: &str, value: &str) -> Checked<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.chars().count() > 256 || has_control(value) {
        return Err(FieldViolation::new(
            field,
            "must be 1-256 characters without control characters",
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_and_ids() {
        assert!(phone("phone", "+1 (555) 010-0199").is_ok());
        assert!(phone("phone", "call me").is_err());
        assert!(customer_id("customer_id", "uss001").is_ok());
        assert!(customer_id("customer_id", "uss 001").is_err());
    }
}
