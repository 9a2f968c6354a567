//! Event rows: written in batches, read by id, by leaf, by page, and in leaf order for
//! verification.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sea_orm::sea_query::InsertStatement;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Statement,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::event::{PersonalValue, Recorded};
use crate::entity::audit_event;
use crate::error::{AuditError, Result};
use crate::store::probe::{self, Keys};

/// Rows per INSERT: 18 bound values a row keep a batch under SQLite's 32 766 parameters.
const ROWS_PER_INSERT: usize = 1000;

#[derive(Serialize, Deserialize)]
struct StoredValue {
    salt: String,
    value: String,
}

/// The row `event` is stored as.
pub fn to_row(event: &Recorded) -> Result<audit_event::ActiveModel> {
    let encode = |what: &str, json: serde_json::Result<String>| {
        json.map_err(|e| {
            AuditError::Internal(format!("encoding {what} of {}: {e}", event.event_id))
        })
    };
    let commitments: BTreeMap<&str, String> = event
        .commitments
        .iter()
        .map(|(slot, commitment)| (slot.as_str(), STANDARD.encode(commitment)))
        .collect();
    let personal_values = encode_values(event)?;
    Ok(audit_event::ActiveModel {
        workspace_id: Set(event.workspace_id.clone()),
        leaf_index: Set(event.leaf_index),
        event_id: Set(event.event_id),
        occurred_at: Set(event.occurred_at),
        recorded_at: Set(event.recorded_at),
        source_service: Set(event.source_service.clone()),
        schema_version: Set(i32::try_from(event.schema_version).unwrap_or(i32::MAX)),
        actor_kind: Set(event.actor_kind.clone()),
        actor_id: Set(event.actor_id.clone()),
        action: Set(event.action.clone()),
        target_type: Set(event.target_type.clone()),
        target_id: Set(event.target_id.clone()),
        outcome: Set(event.outcome.clone()),
        request_id: Set(event.request_id.clone()),
        trace_id: Set(event.trace_id.clone()),
        change_fields: Set(encode(
            "change fields",
            serde_json::to_string(&event.change_fields),
        )?),
        commitments: Set(encode("commitments", serde_json::to_string(&commitments))?),
        personal_values: Set(personal_values),
    })
}

/// The `personal_values` column of `event`: NULL when nothing personal remains.
fn encode_values(event: &Recorded) -> Result<Option<String>> {
    if event.values.is_empty() {
        return Ok(None);
    }
    let values: BTreeMap<&str, StoredValue> = event
        .values
        .iter()
        .map(|(slot, kept)| {
            (
                slot.as_str(),
                StoredValue {
                    salt: STANDARD.encode(kept.salt),
                    value: kept.value.clone(),
                },
            )
        })
        .collect();
    serde_json::to_string(&values).map(Some).map_err(|e| {
        AuditError::Internal(format!(
            "encoding personal values of {}: {e}",
            event.event_id
        ))
    })
}

/// Writes `event`'s remaining personal values: the one change the append-only trigger
/// lets through (erasure).
pub async fn rewrite_values<C: ConnectionTrait>(conn: &C, event: &Recorded) -> Result<()> {
    audit_event::Entity::update_many()
        .col_expr(
            audit_event::Column::PersonalValues,
            sea_orm::sea_query::Expr::val(encode_values(event)?),
        )
        .filter(audit_event::Column::WorkspaceId.eq(event.workspace_id.as_str()))
        .filter(audit_event::Column::LeafIndex.eq(event.leaf_index))
        .exec(conn)
        .await?;
    Ok(())
}

/// A page of the events by (`actor_kind`, `id`) or about (`target_type`, `id`) that still
/// hold personal values, in leaf order after `after_leaf`.
pub async fn of_subject<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    (actor_kind, target_type, id): (&str, &str, &str),
    after_leaf: i64,
    limit: u64,
) -> Result<Vec<Recorded>> {
    audit_event::Entity::find()
        .filter(audit_event::Column::WorkspaceId.eq(workspace_id))
        .filter(audit_event::Column::LeafIndex.gt(after_leaf))
        .filter(audit_event::Column::PersonalValues.is_not_null())
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(audit_event::Column::ActorKind.eq(actor_kind))
                        .add(audit_event::Column::ActorId.eq(id)),
                )
                .add(
                    Condition::all()
                        .add(audit_event::Column::TargetType.eq(target_type))
                        .add(audit_event::Column::TargetId.eq(id)),
                ),
        )
        .order_by_asc(audit_event::Column::LeafIndex)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(read)
        .collect()
}

/// The event a row holds, or why the row cannot be read as one (a stored value altered
/// into something that does not parse).
pub fn from_row(row: audit_event::Model) -> std::result::Result<Recorded, String> {
    let change_fields: Vec<String> = serde_json::from_str(&row.change_fields)
        .map_err(|_| "change_fields is not a JSON list of names".to_owned())?;
    let encoded: BTreeMap<String, String> = serde_json::from_str(&row.commitments)
        .map_err(|_| "commitments is not a JSON object".to_owned())?;
    let commitments = encoded
        .into_iter()
        .map(|(slot, commitment)| {
            STANDARD
                .decode(&commitment)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .map(|commitment| (slot.clone(), commitment))
                .ok_or_else(|| format!("the commitment of {slot} is not 32 bytes of base64"))
        })
        .collect::<std::result::Result<_, String>>()?;
    let stored: BTreeMap<String, StoredValue> = match &row.personal_values {
        None => BTreeMap::new(),
        Some(text) => serde_json::from_str(text)
            .map_err(|_| "personal_values is not a JSON object of values".to_owned())?,
    };
    let values = stored
        .into_iter()
        .map(|(slot, kept)| {
            let salt = STANDARD
                .decode(&kept.salt)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| format!("the salt of {slot} is not 32 bytes of base64"))?;
            Ok((
                slot,
                PersonalValue {
                    salt,
                    value: kept.value,
                },
            ))
        })
        .collect::<std::result::Result<_, String>>()?;
    Ok(Recorded {
        event_id: row.event_id,
        workspace_id: row.workspace_id,
        leaf_index: row.leaf_index,
        occurred_at: row.occurred_at,
        recorded_at: row.recorded_at,
        source_service: row.source_service,
        schema_version: u32::try_from(row.schema_version)
            .map_err(|_| "schema_version is negative".to_owned())?,
        actor_kind: row.actor_kind,
        actor_id: row.actor_id,
        action: row.action,
        target_type: row.target_type,
        target_id: row.target_id,
        outcome: row.outcome,
        request_id: row.request_id,
        trace_id: row.trace_id,
        change_fields,
        commitments,
        values,
    })
}

/// [`from_row`] where an unreadable row is the server's failure.
pub fn read(row: audit_event::Model) -> Result<Recorded> {
    let (workspace, leaf) = (row.workspace_id.clone(), row.leaf_index);
    from_row(row).map_err(|why| {
        AuditError::Internal(format!("event row {workspace}/{leaf} is unreadable: {why}"))
    })
}

/// The INSERTs that store `rows` (made by [`to_row`]; for [`super::insert_all`]).
pub fn insert_statements(rows: Vec<audit_event::ActiveModel>) -> Vec<InsertStatement> {
    rows.chunks(ROWS_PER_INSERT)
        .map(|chunk| audit_event::Entity::insert_many(chunk.to_vec()).into_query())
        .collect()
}

/// The events of `workspace_id` among `event_ids`, each id looked up through the
/// `(workspace_id, event_id)` index ([`probe`]).
pub async fn by_ids<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    event_ids: &[Uuid],
) -> Result<Vec<Recorded>> {
    let keys = Keys::Uuids(event_ids.to_vec());
    probe::find::<audit_event::Entity, _>(conn, "event_id", workspace_id, keys)
        .await?
        .into_iter()
        .map(read)
        .collect()
}

/// [`by_ids`]' statement for one chunk of ids (public for the test that keeps its plan on
/// the index).
pub fn by_ids_statement(backend: DbBackend, workspace_id: &str, event_ids: &[Uuid]) -> Statement {
    let ids = Keys::Uuids(event_ids.to_vec());
    probe::statement(backend, "audit_events", "event_id", workspace_id, ids)
}

pub async fn by_id<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    event_id: Uuid,
) -> Result<Option<Recorded>> {
    audit_event::Entity::find()
        .filter(audit_event::Column::WorkspaceId.eq(workspace_id))
        .filter(audit_event::Column::EventId.eq(event_id))
        .one(conn)
        .await?
        .map(read)
        .transpose()
}

pub async fn at_leaf<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    leaf_index: i64,
) -> Result<Option<Recorded>> {
    audit_event::Entity::find_by_id((workspace_id.to_owned(), leaf_index))
        .one(conn)
        .await?
        .map(read)
        .transpose()
}

/// The rows of leaves `[from, to)`, in leaf order, as stored (verification reads them raw
/// to report an unreadable one rather than fail).
pub async fn leaf_range<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    from: i64,
    to: i64,
) -> Result<Vec<audit_event::Model>> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::WorkspaceId.eq(workspace_id))
        .filter(audit_event::Column::LeafIndex.gte(from))
        .filter(audit_event::Column::LeafIndex.lt(to))
        .order_by_asc(audit_event::Column::LeafIndex)
        .all(conn)
        .await?)
}

/// The first leaf at or above `from` recorded at or after `cutoff`: where pruning by age
/// stops. Leaves are recorded in order, so the scan is as long as what is pruned.
pub async fn first_recorded_since<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    from: i64,
    cutoff: i64,
) -> Result<Option<i64>> {
    Ok(audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::LeafIndex)
        .filter(audit_event::Column::WorkspaceId.eq(workspace_id))
        .filter(audit_event::Column::LeafIndex.gte(from))
        .filter(audit_event::Column::RecordedAt.gte(cutoff))
        .order_by_asc(audit_event::Column::LeafIndex)
        .limit(1)
        .into_tuple::<i64>()
        .one(conn)
        .await?)
}

/// The first leaf in `[from, to)` by or about one of `subjects` (as actor or target).
pub async fn first_about<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    from: i64,
    to: i64,
    subjects: &[String],
) -> Result<Option<i64>> {
    if subjects.is_empty() {
        return Ok(None);
    }
    Ok(audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::LeafIndex)
        .filter(audit_event::Column::WorkspaceId.eq(workspace_id))
        .filter(audit_event::Column::LeafIndex.gte(from))
        .filter(audit_event::Column::LeafIndex.lt(to))
        .filter(
            Condition::any()
                .add(audit_event::Column::ActorId.is_in(subjects.iter().map(String::as_str)))
                .add(audit_event::Column::TargetId.is_in(subjects.iter().map(String::as_str))),
        )
        .order_by_asc(audit_event::Column::LeafIndex)
        .limit(1)
        .into_tuple::<i64>()
        .one(conn)
        .await?)
}

/// Deletes the rows below `min_index`, which the log's head must already name (the
/// append-only trigger refuses any other delete).
pub async fn delete_below<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    min_index: i64,
) -> Result<u64> {
    Ok(audit_event::Entity::delete_many()
        .filter(audit_event::Column::WorkspaceId.eq(workspace_id))
        .filter(audit_event::Column::LeafIndex.lt(min_index))
        .exec(conn)
        .await?
        .rows_affected)
}

/// What ListEvents filters on; `None` does not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub actor_id: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub action_prefix: Option<String>,
    /// Unix microseconds, inclusive.
    pub occurred_after: Option<i64>,
    /// Unix microseconds, exclusive.
    pub occurred_before: Option<i64>,
    pub outcome: Option<String>,
}

/// One page of a workspace's events, newest (highest leaf) first, below `before_leaf`.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    workspace_id: &str,
    filter: &Filter,
    before_leaf: Option<i64>,
    limit: u64,
) -> Result<Vec<Recorded>> {
    let mut condition = Condition::all().add(audit_event::Column::WorkspaceId.eq(workspace_id));
    if let Some(actor_id) = &filter.actor_id {
        condition = condition.add(audit_event::Column::ActorId.eq(actor_id.as_str()));
    }
    if let Some(target_type) = &filter.target_type {
        condition = condition.add(audit_event::Column::TargetType.eq(target_type.as_str()));
    }
    if let Some(target_id) = &filter.target_id {
        condition = condition.add(audit_event::Column::TargetId.eq(target_id.as_str()));
    }
    if let Some(prefix) = filter.action_prefix.as_deref().filter(|p| !p.is_empty()) {
        // A bytewise range (the column sorts bytewise on both engines): the index serves
        // it, and no LIKE wildcard in an action ('_') needs escaping.
        condition = condition.add(audit_event::Column::Action.gte(prefix));
        if let Some(end) = prefix_end(prefix) {
            condition = condition.add(audit_event::Column::Action.lt(end));
        }
    }
    if let Some(after) = filter.occurred_after {
        condition = condition.add(audit_event::Column::OccurredAt.gte(after));
    }
    if let Some(before) = filter.occurred_before {
        condition = condition.add(audit_event::Column::OccurredAt.lt(before));
    }
    if let Some(outcome) = &filter.outcome {
        condition = condition.add(audit_event::Column::Outcome.eq(outcome.as_str()));
    }
    if let Some(before_leaf) = before_leaf {
        condition = condition.add(audit_event::Column::LeafIndex.lt(before_leaf));
    }
    audit_event::Entity::find()
        .filter(condition)
        .order_by_desc(audit_event::Column::LeafIndex)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(read)
        .collect()
}

/// The least string above every string starting with `prefix` (ASCII, as action prefixes
/// are): its last character raised by one.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    let last = bytes.pop()?;
    bytes.push(last.checked_add(1)?);
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_where_its_last_character_is_raised() {
        assert_eq!(prefix_end("end_user.").as_deref(), Some("end_user/"));
        assert_eq!(prefix_end("a").as_deref(), Some("b"));
        assert_eq!(prefix_end(""), None);
    }
}
