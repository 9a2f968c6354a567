//! Checks of the values an event carries. An audit log records what the producer said: a
//! value is refused, never trimmed or rewritten, except where one meaning has several
//! spellings (IP addresses, JSON), which are stored in their one canonical form so a resent
//! event compares equal.

use roster_core::FieldViolation;
use uuid::Uuid;

type Checked<T> = Result<T, FieldViolation>;

/// The platform's log: events of no workspace (signing-key rotations), as the staff
/// service records them.
pub const PLATFORM_WORKSPACE: &str = "*";

/// A workspace id as every service checks it, or the platform's `*`.
pub fn workspace_id(field: &str, value: &str) -> Checked<String> {
    if value == PLATFORM_WORKSPACE {
        return Ok(value.to_owned());
    }
    roster_core::values::workspace_id(field, value)
}

pub fn event_id(field: &str, value: &str) -> Checked<Uuid> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    match Uuid::parse_str(value) {
        Ok(id) if !id.is_nil() => Ok(id),
        _ => Err(FieldViolation::new(
            field,
            format!("'{value}' is not a UUID"),
        )),
    }
}

/// Text without control characters, at most `max` characters; `required` refuses empty.
pub fn text(field: &str, value: &str, max: usize, required: bool) -> Checked<String> {
    if required && value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.chars().count() > max {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// Optional text: empty is absent.
pub fn optional_text(field: &str, value: &str, max: usize) -> Checked<Option<String>> {
    text(field, value, max, false).map(|value| Some(value).filter(|v| !v.is_empty()))
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

/// A lower-case name (`end_user`, `directory`): letters, digits, `_` (and `-` where
/// `dash` allows it).
pub fn name(field: &str, value: &str, max: usize, dash: bool) -> Checked<String> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.len() > max || !value.chars().all(|c| is_word_char(c) || (dash && c == '-')) {
        return Err(FieldViolation::new(
            field,
            format!(
                "'{value}' must be at most {max} lower-case letters, digits{}",
                if dash { ", '_' or '-'" } else { " or '_'" }
            ),
        ));
    }
    Ok(value.to_owned())
}

/// `<target type>.<verb>`, lower case, dot-separated words: `end_user.deactivated`.
pub fn action(field: &str, value: &str) -> Checked<String> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    let words: Vec<&str> = value.split('.').collect();
    if value.len() > 128
        || words.len() < 2
        || words
            .iter()
            .any(|word| word.is_empty() || !word.chars().all(is_word_char))
    {
        return Err(FieldViolation::new(
            field,
            format!(
                "'{value}' is not an action: lower-case words joined by dots, like 'end_user.deactivated'"
            ),
        ));
    }
    Ok(value.to_owned())
}

/// A prefix of actions (`end_user.`, `end_user.de`): the characters actions have.
pub fn action_prefix(field: &str, value: &str) -> Checked<String> {
    if value.len() > 128 || !value.chars().all(|c| is_word_char(c) || c == '.') {
        return Err(FieldViolation::new(
            field,
            "may contain only lower-case letters, digits, '_' and '.'",
        ));
    }
    Ok(value.to_owned())
}

/// An IP address, in its canonical spelling; empty is absent.
pub fn ip_address(field: &str, value: &str) -> Checked<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<std::net::IpAddr>()
        .map(|ip| Some(ip.to_string()))
        .map_err(|_| FieldViolation::new(field, format!("'{value}' is not an IP address")))
}

/// The largest JSON value a change may carry.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// A changed field's value as canonical JSON text.
pub fn json_value(field: &str, value: &str) -> Checked<String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_VALUE_BYTES} bytes of JSON"),
        ));
    }
    crate::domain::json::canonical(value).map_err(|why| FieldViolation::new(field, why))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_dotted_lower_case_words() {
        assert!(action("a", "end_user.deactivated").is_ok());
        assert!(action("a", "agent.login_failed").is_ok());
        for bad in [
            "",
            "deactivated",
            "End_user.x",
            "end_user.",
            ".x",
            "a..b",
            "a.b c",
        ] {
            assert!(action("a", bad).is_err(), "{bad}");
        }
        assert!(action_prefix("p", "end_user.").is_ok());
        assert!(action_prefix("p", "end_user%").is_err());
    }

    #[test]
    fn ip_addresses_are_canonical() {
        assert_eq!(
            ip_address("ip", "2001:DB8:0:0::1").unwrap().as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(ip_address("ip", "").unwrap(), None);
        assert!(ip_address("ip", "localhost").is_err());
    }

    #[test]
    fn ids_and_text() {
        assert!(event_id("e", "00000000-0000-0000-0000-000000000000").is_err());
        assert!(event_id("e", "nope").is_err());
        assert!(workspace_id("w", "*").is_ok());
        assert!(workspace_id("w", "a b").is_err());
        assert!(text("t", "a\u{0}b", 10, false).is_err());
        assert_eq!(optional_text("t", "", 10).unwrap(), None);
        assert!(name("n", "end-user", 64, false).is_err());
        assert!(name("n", "roster-staff", 64, true).is_ok());
    }
}
