//! Checking constructors for the staff service's own values; workspace ids, e-mails, text
//! and URLs are checked by the shared `roster_core::values`.

use roster_core::FieldViolation;
pub use roster_core::values::{email, email_key, request_id, text, url, workspace_id};
use uuid::Uuid;

use super::Role;

pub type Checked<T> = Result<T, FieldViolation>;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_SIGNATURE_CHARS: usize = 2000;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_TEAMS: usize = 100;

/// An agent's or team's id: a UUID.
pub fn id(field: &str, value: &str) -> Checked<Uuid> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    Uuid::parse_str(value)
        .map_err(|_| FieldViolation::new(field, format!("'{value}' is not an id (a UUID)")))
}

pub fn name(field: &str, value: &str) -> Checked<String> {
    text(field, value, MAX_NAME_CHARS, false)
}

/// A built-in role's name; empty is `agent` when `default_agent`.
pub fn role(field: &str, value: &str, default_agent: bool) -> Checked<Role> {
    if value.is_empty() && default_agent {
        return Ok(Role::Agent);
    }
    Role::parse(value).ok_or_else(|| {
        FieldViolation::new(
            field,
            format!("'{value}' is not a role; use admin, agent or viewer"),
        )
    })
}

/// Team ids, de-duplicated in the order given.
pub fn team_ids(field: &str, values: &[String]) -> Result<Vec<Uuid>, Vec<FieldViolation>> {
    if values.len() > MAX_TEAMS {
        return Err(vec![FieldViolation::new(
            field,
            format!("at most {MAX_TEAMS} teams"),
        )]);
    }
    let mut ids = Vec::new();
    let mut violations = Vec::new();
    for (index, value) in values.iter().enumerate() {
        match id(&format!("{field}[{index}]"), value) {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(violation) => violations.push(violation),
        }
    }
    if violations.is_empty() {
        Ok(ids)
    } else {
        Err(violations)
    }
}

/// Permission names of the services' catalogues, de-duplicated and sorted.
pub fn permissions(field: &str, values: &[String]) -> Result<Vec<String>, Vec<FieldViolation>> {
    let mut names = Vec::new();
    let mut violations = Vec::new();
    for (index, value) in values.iter().enumerate() {
        match roster_auth::catalogues::find(value) {
            Some(permission) => names.push(permission.name.to_owned()),
            None => violations.push(FieldViolation::new(
                format!("{field}[{index}]"),
                format!("'{value}' is not a permission of any Roster service"),
            )),
        }
    }
    names.sort_unstable();
    names.dedup();
    if violations.is_empty() {
        Ok(names)
    } else {
        Err(violations)
    }
}

/// A BCP 47 language tag of the usual shape (`en`, `pt-BR`, `zh-Hant-TW`); empty unsets.
pub fn language(field: &str, value: &str) -> Checked<String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    let mut subtags = value.split('-');
    let primary_ok = subtags
        .next()
        .is_some_and(|s| (2..=3).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphabetic()));
    let rest_ok =
        subtags.all(|s| (1..=8).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric()));
    if primary_ok && rest_ok && value.len() <= 35 {
        Ok(value.to_owned())
    } else {
        Err(FieldViolation::new(
            field,
            format!("'{value}' is not a language tag like 'en' or 'pt-BR'"),
        ))
    }
}

/// A seat limit: 0 (no limit) or 1 to 1,000,000.
pub fn seat_limit(field: &str, value: i32) -> Checked<i64> {
    if (0..=1_000_000).contains(&value) {
        Ok(i64::from(value))
    } else {
        Err(FieldViolation::new(
            field,
            "must be 0 (no limit) or 1 to 1000000",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_roles_and_permissions() {
        assert_eq!(language("language", "pt-BR").as_deref(), Ok("pt-BR"));
        assert_eq!(language("language", "").as_deref(), Ok(""));
        assert!(language("language", "english please").is_err());
        assert_eq!(role("role", "", true), Ok(Role::Agent));
        assert!(role("role", "", false).is_err());
        assert!(role("role", "owner", true).is_err());
        assert_eq!(
            permissions(
                "p",
                &[
                    "staff.manage".into(),
                    "customers.write".into(),
                    "staff.manage".into()
                ]
            ),
            Ok(vec![
                "customers.write".to_owned(),
                "staff.manage".to_owned()
            ])
        );
        assert!(permissions("p", &["tickets.fly".into()]).is_err());
        assert!(seat_limit("seat_limit", -1).is_err());
    }
}

/// An agent's notification preferences, stored as JSON; fields missing from a stored value
/// read as off, so adding a preference needs no migration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct NotificationPreferences {
    pub email_on_assignment: bool,
    pub email_on_mention: bool,
    pub email_on_new_team_ticket: bool,
    pub desktop: bool,
}
