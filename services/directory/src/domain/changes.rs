//! Before/after of changed fields, for audit events.

use roster_db::outbox::FieldChange;
use serde_json::Value;

use super::user_fields::UserField;
use crate::entity::{customer, end_user};

/// Every stored field of an end-user that an audit reader cares about, as JSON.
fn user_snapshot(user: &end_user::Model) -> Vec<(&'static str, Value)> {
    let mut fields: Vec<(&'static str, Value)> = UserField::ALL
        .iter()
        .map(|field| (field.name(), Value::from(field.get(user))))
        .collect();
    fields.extend([
        ("status", Value::from(user.status.as_str())),
        (
            "confirmed_at",
            user.confirmed_at.map_or(Value::Null, Value::from),
        ),
        ("last_activity_at", Value::from(user.last_activity_at)),
        ("conversation_count", Value::from(user.conversation_count)),
        (
            "deleted_at",
            user.deleted_at.map_or(Value::Null, Value::from),
        ),
        (
            "merged_into_user_id",
            user.merged_into
                .map_or(Value::Null, |id| Value::from(id.to_string())),
        ),
    ]);
    fields
}

/// Fields of end-user events that say nothing about the person: the lifecycle an erasure
/// keeps. Every other field, including any added later, counts as personal and is
/// redacted from pending events when the person is erased.
const LIFECYCLE_FIELDS: [&str; 4] = [
    "status",
    "deleted_at",
    "merged_into_user_id",
    "merged_from_user_id",
];

/// Whether an end-user event field carries personal data.
pub fn is_personal_user_field(field: &str) -> bool {
    !LIFECYCLE_FIELDS.contains(&field)
}

/// Changed fields between two versions of a user; `None` before means the user is new.
pub fn user_changes(before: Option<&end_user::Model>, after: &end_user::Model) -> Vec<FieldChange> {
    let after_fields = user_snapshot(after);
    let before_fields = before.map(user_snapshot);
    diff(before_fields, after_fields)
}

fn customer_snapshot(customer: &customer::Model) -> Vec<(&'static str, Value)> {
    vec![
        ("name", Value::from(customer.name.as_str())),
        ("status", Value::from(customer.status.as_str())),
        (
            "domains",
            serde_json::from_str(&customer.domains).unwrap_or(Value::Null),
        ),
        ("notes", Value::from(customer.notes.as_str())),
        (
            "deleted_at",
            customer.deleted_at.map_or(Value::Null, Value::from),
        ),
    ]
}

pub fn customer_changes(
    before: Option<&customer::Model>,
    after: Option<&customer::Model>,
) -> Vec<FieldChange> {
    match (before, after) {
        (before, Some(after)) => diff(before.map(customer_snapshot), customer_snapshot(after)),
        (Some(before), None) => customer_snapshot(before)
            .into_iter()
            .map(|(field, value)| FieldChange {
                field: field.to_owned(),
                before: Some(value),
                after: None,
            })
            .collect(),
        (None, None) => Vec::new(),
    }
}

fn is_empty(value: &Value) -> bool {
    value.is_null() || value.as_str() == Some("") || value.as_i64() == Some(0)
}

fn diff(
    before: Option<Vec<(&'static str, Value)>>,
    after: Vec<(&'static str, Value)>,
) -> Vec<FieldChange> {
    match before {
        None => after
            .into_iter()
            .filter(|(_, value)| !is_empty(value))
            .map(|(field, value)| FieldChange {
                field: field.to_owned(),
                before: None,
                after: Some(value),
            })
            .collect(),
        Some(before) => before
            .into_iter()
            .zip(after)
            .filter(|((_, old), (_, new))| old != new)
            .map(|((field, old), (_, new))| FieldChange {
                field: field.to_owned(),
                before: Some(old),
                after: Some(new),
            })
            .collect(),
    }
}
