//! Checking constructors for the values every service takes from callers (workspace ids,
//! e-mail addresses, free text, URLs): each returns the normalised value or a violation
//! naming the field, so every service answers the same input the same way.

use uuid::Uuid;

use crate::FieldViolation;

pub type Checked<T> = Result<T, FieldViolation>;

pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_URL_CHARS: usize = 2048;

/// Workspace ids come from tokens and requests: short, ASCII, path- and log-safe.
pub fn workspace_id(field: &str, value: &str) -> Checked<String> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.len() > 64 {
        return Err(FieldViolation::new(field, "must be at most 64 characters"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(FieldViolation::new(
            field,
            "may contain only letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(value.to_owned())
}

/// Practical e-mail syntax: what mail systems deliver to, not the full RFC 5322 grammar
/// (quoted local parts and IP literals are refused on purpose).
pub fn email(field: &str, value: &str) -> Checked<String> {
    let value = value.trim();
    let invalid = |why: &str| {
        Err(FieldViolation::new(
            field,
            format!("'{value}' is not a valid e-mail address: {why}"),
        ))
    };
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.chars().count() > MAX_EMAIL_CHARS {
        return Err(FieldViolation::new(field, "must be at most 254 characters"));
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return invalid("missing '@'");
    };
    if local.is_empty() || local.len() > 64 {
        return invalid("the part before '@' must be 1-64 characters");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return invalid("misplaced '.' before '@'");
    }
    const LOCAL_SPECIALS: &str = ".!#$%&'*+/=?^_`{|}~-";
    if !local
        .chars()
        .all(|c| c.is_alphanumeric() || LOCAL_SPECIALS.contains(c))
    {
        return invalid("unexpected character before '@'");
    }
    if !domain.contains('.') {
        return invalid("the domain needs a dot");
    }
    if let Err(why) = domain_name(domain) {
        return invalid(&why);
    }
    Ok(value.to_owned())
}

pub fn email_key(email: &str) -> String {
    email.to_lowercase()
}

/// A DNS name: dot-separated labels of letters, digits and inner '-'.
pub fn domain_name(domain: &str) -> Result<(), String> {
    if domain.len() > 253 {
        return Err("the domain is too long".into());
    }
    for label in domain.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("empty or over-long domain label".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a domain label starts or ends with '-'".into());
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err("unexpected character in the domain".into());
        }
    }
    Ok(())
}

/// Absolute http(s) URL with a host.
pub fn url(field: &str, value: &str) -> Checked<String> {
    let value = value.trim();
    if value.chars().count() > MAX_URL_CHARS {
        return Err(FieldViolation::new(
            field,
            "must be at most 2048 characters",
        ));
    }
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| {
            FieldViolation::new(field, format!("'{value}' is not an absolute http(s) URL"))
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
    let host = host.split(':').next().unwrap_or_default();
    if host.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldViolation::new(
            field,
            format!("'{value}' is not an absolute http(s) URL"),
        ));
    }
    Ok(value.to_owned())
}

/// Free text of bounded length without control characters (notes may hold newlines).
pub fn text(field: &str, value: &str, max_chars: usize, multiline: bool) -> Checked<String> {
    let value = value.trim();
    if value.chars().count() > max_chars {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    let bad = |c: char| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'));
    if value.chars().any(bad) {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

pub fn required_text(field: &str, value: &str, max_chars: usize) -> Checked<String> {
    let value = text(field, value, max_chars, false)?;
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    Ok(value)
}

/// Idempotency keys (AIP-155) are UUIDs.
pub fn request_id(field: &str, value: &str) -> Checked<String> {
    Uuid::parse_str(value)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| FieldViolation::new(field, format!("'{value}' is not a UUID")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email("email", " Captain.Kirk@Example.com ").as_deref(),
            Ok("Captain.Kirk@Example.com")
        );
        for bad in [
            "kirk",
            "kirk@",
            "@example.com",
            "kirk@example",
            "ki rk@example.com",
            "kirk@exa_mple.com",
            "a..b@example.com",
            "kirk@-example.com",
        ] {
            assert!(email("email", bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn urls() {
        assert!(url("avatar_url", "https://cdn.example.com/a.png").is_ok());
        for bad in [
            "ftp://x.com",
            "https://",
            "example.com/a.png",
            "https://exa mple.com",
        ] {
            assert!(url("avatar_url", bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn workspace_ids() {
        assert!(workspace_id("workspace_id", "demo").is_ok());
        assert!(workspace_id("workspace_id", "de/mo").is_err());
        assert!(workspace_id("workspace_id", "").is_err());
    }
}
