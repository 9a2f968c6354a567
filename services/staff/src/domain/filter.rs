//! The `ListAgents` filter and order: terms combined with AND, each a condition the store
//! turns into SQL (see the proto for the grammar).

use roster_core::FieldViolation;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::AgentStatus;

/// A comparison of `last_sign_in_at` with a time (unix microseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Before,
    AtOrBefore,
    After,
    AtOrAfter,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentFilter {
    /// Lower-case fragments each of which must occur in the e-mail or the name.
    pub text: Vec<String>,
    pub statuses: Vec<AgentStatus>,
    /// Role names as written (`role:"Team Lead"`); the service resolves them against the
    /// workspace's roles, so the store filters by stored names.
    pub roles: Vec<String>,
    pub teams: Vec<Uuid>,
    pub last_sign_in: Vec<(Comparison, i64)>,
}

const FIELD: &str = "filter";

/// Splits on spaces outside double quotes; quotes group and are removed. Each word says
/// whether it began with a quote: `"jean luc"` is text, `role:"Team Lead"` a field term.
fn words(filter: &str) -> Result<Vec<(String, bool)>, FieldViolation> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut had_quotes = false;
    for c in filter.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                had_quotes = had_quotes || current.is_empty();
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() || had_quotes {
                    words.push((std::mem::take(&mut current), had_quotes));
                }
                had_quotes = false;
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(FieldViolation::new(FIELD, "a double quote is not closed"));
    }
    if !current.is_empty() || had_quotes {
        words.push((current, had_quotes));
    }
    Ok(words)
}

fn time_value(value: &str) -> Result<i64, FieldViolation> {
    let parsed = OffsetDateTime::parse(value, &Rfc3339).or_else(|_| {
        Date::parse(value, format_description!("[year]-[month]-[day]"))
            .map(|date| date.midnight().assume_utc())
    });
    let at = parsed.map_err(|_| {
        FieldViolation::new(
            FIELD,
            format!("'{value}' is not an RFC 3339 time or a date like 2026-10-01"),
        )
    })?;
    i64::try_from(at.unix_timestamp_nanos() / 1000)
        .map_err(|_| FieldViolation::new(FIELD, format!("'{value}' is out of range")))
}

pub fn parse_filter(filter: &str) -> Result<AgentFilter, FieldViolation> {
    let mut parsed = AgentFilter::default();
    for (word, quoted) in words(filter)? {
        if quoted {
            if !word.trim().is_empty() {
                parsed.text.push(word.trim().to_lowercase());
            }
            continue;
        }
        if word == "AND" {
            continue;
        }
        if let Some(rest) = word.strip_prefix("last_sign_in_at") {
            let (comparison, value) = if let Some(v) = rest.strip_prefix("<=") {
                (Comparison::AtOrBefore, v)
            } else if let Some(v) = rest.strip_prefix(">=") {
                (Comparison::AtOrAfter, v)
            } else if let Some(v) = rest.strip_prefix('<') {
                (Comparison::Before, v)
            } else if let Some(v) = rest.strip_prefix('>') {
                (Comparison::After, v)
            } else {
                return Err(FieldViolation::new(
                    FIELD,
                    format!("'{word}': compare last_sign_in_at with <, <=, > or >="),
                ));
            };
            parsed.last_sign_in.push((comparison, time_value(value)?));
            continue;
        }
        match word.split_once(':') {
            Some(("status", value)) => {
                let status = AgentStatus::parse(&value.to_lowercase()).ok_or_else(|| {
                    FieldViolation::new(
                        FIELD,
                        format!("'{value}' is not a status; use invited, active or deactivated"),
                    )
                })?;
                parsed.statuses.push(status);
            }
            Some(("role", value)) => {
                if value.trim().is_empty() {
                    return Err(FieldViolation::new(
                        FIELD,
                        "role: needs a role's name, e.g. role:admin or role:\"Team Lead\"",
                    ));
                }
                parsed.roles.push(value.trim().to_owned());
            }
            Some(("team", value)) => {
                let team = Uuid::parse_str(value).map_err(|_| {
                    FieldViolation::new(FIELD, format!("team:'{value}' is not a team id (a UUID)"))
                })?;
                parsed.teams.push(team);
            }
            Some((key, _)) if !key.contains('@') && !key.is_empty() => {
                return Err(FieldViolation::new(
                    FIELD,
                    format!(
                        "'{key}:' is not a filter field; use status:, role:, team:, last_sign_in_at or plain words"
                    ),
                ));
            }
            _ => parsed.text.push(word.to_lowercase()),
        }
    }
    Ok(parsed)
}

/// What `ListAgents` can order by; ties are broken by agent id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AgentOrderKey {
    #[default]
    CreatedAt,
    Email,
    Name,
    LastSignInAt,
}

pub const AGENT_ORDER_KEYS: &[(&str, AgentOrderKey)] = &[
    ("created_at", AgentOrderKey::CreatedAt),
    ("email", AgentOrderKey::Email),
    ("name", AgentOrderKey::Name),
    ("last_sign_in_at", AgentOrderKey::LastSignInAt),
];

pub const AGENT_ORDER_NAMES: &str = "created_at, email, name or last_sign_in_at";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn terms_of_every_kind() {
        let filter = parse_filter(
            r#"Kirk AND status:active role:admin "jean luc" role:"Team Lead" last_sign_in_at<2026-10-01 last_sign_in_at>=2026-01-01T00:00:00Z"#,
        )
        .unwrap();
        assert_eq!(filter.text, ["kirk", "jean luc"]);
        assert_eq!(filter.statuses, [AgentStatus::Active]);
        assert_eq!(filter.roles, ["admin", "Team Lead"]);
        assert_eq!(filter.last_sign_in.len(), 2);
        assert_eq!(filter.last_sign_in[0].0, Comparison::Before);
        assert_eq!(filter.last_sign_in[0].1, 1_790_812_800_000_000);
        assert_eq!(
            parse_filter("kirk@example.com").unwrap().text,
            ["kirk@example.com"]
        );
    }

    #[test]
    fn mistakes_are_named() {
        for bad in [
            "status:sleeping",
            "role:",
            "team:x",
            "colour:red",
            "last_sign_in_at=2026-01-01",
            "last_sign_in_at<yesterday",
            "\"open",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }
}
