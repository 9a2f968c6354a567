//! Retention and legal holds.
//!
//! Pruning raises a log's minimum leaf index, as C2SP tlog-tiles logs do, and deletes the
//! event rows below it; the tree's hashes and checkpoints stay, so every proof of a leaf
//! above the minimum, and every consistency proof, still verifies. It stops at the first
//! leaf recorded within the retention period, at the first leaf by or about a subject
//! under a legal hold, and does nothing while a hold covers the whole log. A prune, a
//! retention change and a hold placed or lifted are recorded in the log they concern, in
//! the transaction that makes them.

use std::time::Duration;

use roster_core::{Actor, FieldViolation};
use uuid::Uuid;

use crate::domain::event::{Change, NewEvent};
use crate::entity::{audit_legal_hold, audit_log};
use crate::error::{AuditError, Result};
use crate::service::{Audit, own_event};
use crate::store;

/// How often each replica prunes every log with a retention period.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// A log's retention, as GetRetention answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionView {
    pub workspace_id: String,
    pub retention_us: Option<i64>,
    pub min_index: u64,
    pub tree_size: u64,
    pub holds: Vec<audit_legal_hold::Model>,
}

/// A log pruned from `from` up to (not including) `to`.
struct Pruned {
    from: i64,
    to: i64,
}

/// An event the audit service records about a log's retention and holds.
fn log_event(
    actor: &Actor,
    workspace_id: &str,
    action: &str,
    changes: Vec<Change>,
    now: i64,
) -> NewEvent {
    own_event(
        actor,
        workspace_id,
        action,
        ("audit_log", workspace_id),
        changes,
        now,
    )
}

fn change(
    field: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Change {
    Change {
        field: field.to_owned(),
        before: before.map(|value| value.to_string()),
        after: after.map(|value| value.to_string()),
    }
}

fn seconds(retention_us: Option<i64>) -> Option<serde_json::Value> {
    retention_us.map(|us| (us / 1_000_000).into())
}

/// Who prunes as time passes.
fn retention_actor() -> Actor {
    Actor {
        kind: "system".to_owned(),
        id: "retention".to_owned(),
        context: roster_core::RequestContext::default(),
    }
}

impl Audit {
    pub async fn retention(&self, workspace_id: &str) -> Result<RetentionView> {
        let conn = self.db.conn();
        let head = store::logs::get(conn, workspace_id).await?;
        let holds = store::holds::list(conn, workspace_id).await?;
        Ok(view(workspace_id, head.as_ref(), holds))
    }

    /// Sets (or, with `None`, removes) the retention period and prunes at once.
    pub async fn set_retention(
        &self,
        actor: &Actor,
        workspace_id: &str,
        retention_us: Option<i64>,
    ) -> Result<RetentionView> {
        let view = roster_db::in_write_txn!(self.db, AuditError, retry_unique = false, |txn| {
            let now = self.clock.now_us();
            let head = store::logs::lock(&*txn, workspace_id, now).await?;
            store::logs::set_retention(&*txn, workspace_id, retention_us, now).await?;
            let mut events = vec![log_event(
                actor,
                workspace_id,
                "audit_log.retention_set",
                vec![change(
                    "retention_seconds",
                    Some(seconds(head.retention_us).unwrap_or(serde_json::Value::Null)),
                    Some(seconds(retention_us).unwrap_or(serde_json::Value::Null)),
                )],
                now,
            )];
            if let Some(pruned) = self.prune_in(&*txn, workspace_id, now).await? {
                events.push(pruned_event(workspace_id, &pruned, now));
            }
            let batch: Vec<&NewEvent> = events.iter().collect();
            self.append_to_log(&*txn, workspace_id, &batch, now).await?;
            self.view_in(&*txn, workspace_id).await
        })?;
        self.notify_appended();
        Ok(view)
    }

    /// Places a hold: on the whole log (`subject_id` empty) or on one subject's events.
    pub async fn place_hold(
        &self,
        actor: &Actor,
        workspace_id: &str,
        subject_id: &str,
        reason: &str,
    ) -> Result<audit_legal_hold::Model> {
        let hold = roster_db::in_write_txn!(self.db, AuditError, retry_unique = false, |txn| {
            let now = self.clock.now_us();
            // Under the head's lock, so a prune under way finishes first or sees the hold.
            store::logs::lock(&*txn, workspace_id, now).await?;
            let hold = audit_legal_hold::Model {
                workspace_id: workspace_id.to_owned(),
                hold_id: Uuid::now_v7(),
                subject_id: subject_id.to_owned(),
                reason: reason.to_owned(),
                placed_by: actor.id.clone(),
                placed_at: now,
            };
            store::holds::insert(&*txn, hold.clone()).await?;
            let event = log_event(
                actor,
                workspace_id,
                "audit_log.legal_hold_placed",
                hold_changes(&hold, false),
                now,
            );
            self.append_to_log(&*txn, workspace_id, &[&event], now)
                .await?;
            Ok(hold)
        })?;
        self.notify_appended();
        Ok(hold)
    }

    /// Lifts a hold and prunes what it held back.
    pub async fn release_hold(
        &self,
        actor: &Actor,
        workspace_id: &str,
        hold_id: Uuid,
    ) -> Result<RetentionView> {
        let view = roster_db::in_write_txn!(self.db, AuditError, retry_unique = false, |txn| {
            let now = self.clock.now_us();
            store::logs::lock(&*txn, workspace_id, now).await?;
            let hold = store::holds::delete(&*txn, workspace_id, hold_id)
                .await?
                .ok_or_else(|| AuditError::hold_not_found(hold_id))?;
            let mut events = vec![log_event(
                actor,
                workspace_id,
                "audit_log.legal_hold_released",
                hold_changes(&hold, true),
                now,
            )];
            if let Some(pruned) = self.prune_in(&*txn, workspace_id, now).await? {
                events.push(pruned_event(workspace_id, &pruned, now));
            }
            let batch: Vec<&NewEvent> = events.iter().collect();
            self.append_to_log(&*txn, workspace_id, &batch, now).await?;
            self.view_in(&*txn, workspace_id).await
        })?;
        self.notify_appended();
        Ok(view)
    }

    /// Prunes every log with a retention period, then again every ten minutes, for as long
    /// as the service serves. Idempotent, so replicas need no coordination: a second prune
    /// of the same log waits for the first's lock and finds nothing left.
    pub async fn prune_periodically(self) {
        let mut ticks = tokio::time::interval(PRUNE_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = self.prune_all().await {
                tracing::warn!(%error, "pruning audit logs failed");
            }
        }
    }

    async fn prune_all(&self) -> Result<()> {
        for workspace_id in store::logs::with_retention(self.db.conn()).await? {
            let pruned =
                roster_db::in_write_txn!(self.db, AuditError, retry_unique = false, |txn| {
                    let now = self.clock.now_us();
                    store::logs::lock(&*txn, &workspace_id, now).await?;
                    let Some(pruned) = self.prune_in(&*txn, &workspace_id, now).await? else {
                        return Ok(None);
                    };
                    let event = pruned_event(&workspace_id, &pruned, now);
                    self.append_to_log(&*txn, &workspace_id, &[&event], now)
                        .await?;
                    Ok(Some(pruned.to - pruned.from))
                })?;
            if let Some(count) = pruned {
                tracing::info!(
                    workspace_id,
                    count,
                    "pruned audit events past their retention"
                );
                self.notify_appended();
            }
        }
        Ok(())
    }

    /// Raises the minimum leaf index of a locked log as far as retention and holds allow,
    /// and deletes the rows below it.
    async fn prune_in<C: sea_orm::ConnectionTrait>(
        &self,
        txn: &C,
        workspace_id: &str,
        now: i64,
    ) -> Result<Option<Pruned>> {
        let Some(head) = store::logs::get(txn, workspace_id).await? else {
            return Ok(None);
        };
        let Some(retention_us) = head.retention_us else {
            return Ok(None);
        };
        let holds = store::holds::list(txn, workspace_id).await?;
        if holds.iter().any(|hold| hold.subject_id.is_empty()) {
            return Ok(None);
        }
        let from = head.min_index;
        let cutoff = now.saturating_sub(retention_us);
        let mut to = store::events::first_recorded_since(txn, workspace_id, from, cutoff)
            .await?
            .unwrap_or(head.tree_size);
        let subjects: Vec<String> = holds.into_iter().map(|hold| hold.subject_id).collect();
        if let Some(held) =
            store::events::first_about(txn, workspace_id, from, to, &subjects).await?
        {
            to = held;
        }
        if to <= from {
            return Ok(None);
        }
        store::logs::raise_min_index(txn, workspace_id, to).await?;
        store::events::delete_below(txn, workspace_id, to).await?;
        Ok(Some(Pruned { from, to }))
    }

    async fn view_in<C: sea_orm::ConnectionTrait>(
        &self,
        txn: &C,
        workspace_id: &str,
    ) -> Result<RetentionView> {
        let head = store::logs::get(txn, workspace_id).await?;
        let holds = store::holds::list(txn, workspace_id).await?;
        Ok(view(workspace_id, head.as_ref(), holds))
    }
}

fn view(
    workspace_id: &str,
    head: Option<&audit_log::Model>,
    holds: Vec<audit_legal_hold::Model>,
) -> RetentionView {
    RetentionView {
        workspace_id: workspace_id.to_owned(),
        retention_us: head.and_then(|head| head.retention_us),
        min_index: head.map_or(0, |head| u64::try_from(head.min_index).unwrap_or(0)),
        tree_size: head.map_or(0, |head| u64::try_from(head.tree_size).unwrap_or(0)),
        holds,
    }
}

fn hold_changes(hold: &audit_legal_hold::Model, released: bool) -> Vec<Change> {
    let values = [
        ("hold_id", hold.hold_id.to_string()),
        ("subject_id", hold.subject_id.clone()),
        ("reason", hold.reason.clone()),
    ];
    values
        .into_iter()
        .map(|(field, value)| {
            let value = Some(serde_json::Value::String(value));
            if released {
                change(field, value, None)
            } else {
                change(field, None, value)
            }
        })
        .collect()
}

fn pruned_event(workspace_id: &str, pruned: &Pruned, now: i64) -> NewEvent {
    log_event(
        &retention_actor(),
        workspace_id,
        "audit_log.pruned",
        vec![change(
            "min_leaf_index",
            Some(pruned.from.into()),
            Some(pruned.to.into()),
        )],
        now,
    )
}

/// A retention period as a request gives it: 0 keeps everything; otherwise at least a day,
/// so a slip of the finger cannot empty a log.
pub fn retention_period(
    field: &str,
    seconds: i64,
) -> std::result::Result<Option<i64>, FieldViolation> {
    const DAY: i64 = 86_400;
    const CENTURY: i64 = 100 * 366 * DAY;
    match seconds {
        0 => Ok(None),
        s if (DAY..=CENTURY).contains(&s) => Ok(Some(s * 1_000_000)),
        _ => Err(FieldViolation::new(
            field,
            "must be 0 (keep every event) or between 1 day and 100 years",
        )),
    }
}
