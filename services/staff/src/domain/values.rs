//! Checking constructors for the staff service's own values; workspace ids, e-mails, text
//! and URLs are checked by the shared `roster_core::values`.

use roster_core::FieldViolation;
pub use roster_core::values::{email, email_key, request_id, text, url, workspace_id};
use uuid::Uuid;

use super::Role;
use super::roles::RoleId;

pub type Checked<T> = Result<T, FieldViolation>;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_SIGNATURE_CHARS: usize = 2000;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_TEAMS: usize = 100;
pub const MAX_ROLE_NAME_CHARS: usize = 64;
/// Agents named in one AddTeamMembers or RemoveTeamMembers.
pub const MAX_MEMBERS_PER_CALL: usize = 100;
/// Permissions named in one role, team or agent (the catalogues hold fewer; repeats count).
pub const MAX_PERMISSIONS: usize = 200;

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

/// The role an agent is to hold, by name: a built-in's or a custom role's (resolved against
/// the workspace's roles when used). Empty is `agent` when `default_agent`.
pub fn role(field: &str, value: &str, default_agent: bool) -> Checked<String> {
    let value = value.trim();
    if value.is_empty() {
        return if default_agent {
            Ok(Role::Agent.as_str().to_owned())
        } else {
            Err(FieldViolation::new(field, "is required"))
        };
    }
    if value.chars().count() > MAX_ROLE_NAME_CHARS {
        return Err(FieldViolation::new(
            field,
            format!("a role name has at most {MAX_ROLE_NAME_CHARS} characters"),
        ));
    }
    // Built-in names are stored lower-case, as tokens carry them.
    Ok(Role::parse_any_case(value)
        .map_or_else(|| value.to_owned(), |role| role.as_str().to_owned()))
}

/// A custom role's name: 1 to 64 letters, digits, spaces, `-`, `_` or `.`, starting with a
/// letter or digit, and not a built-in role's name in any case. Tokens and ListAgents'
/// `role:` filter carry it, so it stays plain.
pub fn role_name(field: &str, value: &str) -> Checked<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if value.chars().count() > MAX_ROLE_NAME_CHARS {
        return Err(FieldViolation::new(
            field,
            format!("at most {MAX_ROLE_NAME_CHARS} characters"),
        ));
    }
    let plain = value.chars().next().is_some_and(char::is_alphanumeric)
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'));
    if !plain {
        return Err(FieldViolation::new(
            field,
            format!(
                "'{value}' may hold only letters, digits, spaces, '-', '_' and '.', and start with a letter or digit"
            ),
        ));
    }
    if let Some(role) = Role::parse_any_case(value) {
        return Err(FieldViolation::new(
            field,
            format!("'{}' is a built-in role's name", role.as_str()),
        ));
    }
    Ok(value.to_owned())
}

/// A role id: a built-in role's name or a custom role's UUID.
pub fn role_id(field: &str, value: &str) -> Checked<RoleId> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if let Some(role) = Role::parse(value) {
        return Ok(RoleId::BuiltIn(role));
    }
    Uuid::parse_str(value).map(RoleId::Custom).map_err(|_| {
        FieldViolation::new(
            field,
            format!(
                "'{value}' is not a role id: admin, agent, viewer or a custom role's id (a UUID)"
            ),
        )
    })
}

/// The case-insensitive key of a custom role's name: unique in the workspace.
pub fn role_name_key(name: &str) -> String {
    name.trim().to_lowercase()
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

/// Agent ids of one AddTeamMembers or RemoveTeamMembers: 1 to 100, de-duplicated in the
/// order given.
pub fn agent_ids(field: &str, values: &[String]) -> Result<Vec<Uuid>, Vec<FieldViolation>> {
    if values.is_empty() || values.len() > MAX_MEMBERS_PER_CALL {
        return Err(vec![FieldViolation::new(
            field,
            format!("name 1 to {MAX_MEMBERS_PER_CALL} agents"),
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
    if values.len() > MAX_PERMISSIONS {
        return Err(vec![FieldViolation::new(
            field,
            format!("at most {MAX_PERMISSIONS} permissions"),
        )]);
    }
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
        assert_eq!(role("role", "", true).as_deref(), Ok("agent"));
        assert_eq!(role("role", " Admin", false).as_deref(), Ok("admin"));
        assert_eq!(
            role("role", "Team Lead ", false).as_deref(),
            Ok("Team Lead")
        );
        assert!(role("role", "", false).is_err());
        assert_eq!(role_name("name", " Team Lead").as_deref(), Ok("Team Lead"));
        assert!(role_name("name", "VIEWER").is_err());
        assert!(role_name("name", "-lead").is_err());
        assert!(role_name("name", "a:b").is_err());
        assert!(role_name("name", &"x".repeat(65)).is_err());
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
