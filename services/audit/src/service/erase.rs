//! Erasing a person: their personal values and salts go, the commitments stay in the
//! leaves, so the log still verifies and the values can be neither read nor guessed.
//!
//! What is theirs: in events *by* them, the actor's display name, the caller's IP address
//! and user agent; in events *about* them, every changed value. The other values of those
//! events (the agent's address on an event about the user, say) are someone else's and
//! stay.

use tonic::Code;
use uuid::Uuid;

use crate::domain::event::{Change, Slot};
use crate::error::{AuditError, EVENT_RESOURCE, Result, reason};
use crate::service::{Appended, Audit, own_event};
use crate::store;

/// Events rewritten per query.
const PAGE: u64 = 500;

/// The action of the event an erasure records.
pub const ERASED_ACTION: &str = "subject.erased";

/// Whom an erasure is about: a person, as an actor kind and as a target type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectType {
    EndUser,
    Agent,
}

impl SubjectType {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "end_user" => Some(SubjectType::EndUser),
            "agent" => Some(SubjectType::Agent),
            _ => None,
        }
    }

    /// As actor kind and target type alike.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectType::EndUser => "end_user",
            SubjectType::Agent => "agent",
        }
    }
}

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erased {
    pub events_redacted: u64,
    pub values_erased: u64,
    pub event: Appended,
}

impl Audit {
    /// Erases `subject_id`'s values from `workspace_id`'s log and records the erasure as
    /// event `erasure_id`, in one transaction. A retry of the same erasure finds it
    /// recorded and changes nothing.
    pub async fn erase_subject(
        &self,
        actor: &roster_core::Actor,
        workspace_id: &str,
        subject: (SubjectType, &str),
        erasure_id: Uuid,
    ) -> Result<Erased> {
        let (subject_type, subject_id) = subject;
        let erased = roster_db::in_write_txn!(self.db, AuditError, retry_unique = false, |txn| {
            let now = self.clock.now_us();
            // The head's lock orders the erasure with appends: an event committed before it
            // is erased, one after it is recorded after the erasure.
            store::logs::lock(&*txn, workspace_id, now).await?;
            if let Some(earlier) = store::events::by_id(&*txn, workspace_id, erasure_id).await? {
                if earlier.action != ERASED_ACTION
                    || earlier.target_type != subject_type.as_str()
                    || earlier.target_id != subject_id
                {
                    return Err(AuditError::refused(
                        Code::AlreadyExists,
                        reason::EVENT_ID_REUSED,
                        Some((EVENT_RESOURCE, erasure_id.to_string())),
                        format!(
                            "event {erasure_id} is already recorded as another event; an erasure id names one erasure"
                        ),
                    ));
                }
                return Ok(Erased {
                    events_redacted: 0,
                    values_erased: 0,
                    event: Appended {
                        event_id: erasure_id,
                        workspace_id: workspace_id.to_owned(),
                        leaf_index: earlier.leaf_index,
                        already_recorded: true,
                    },
                });
            }
            let kind = subject_type.as_str();
            let (mut events_redacted, mut values_erased) = (0u64, 0u64);
            let mut after = -1i64;
            loop {
                let page = store::events::of_subject(
                    &*txn,
                    workspace_id,
                    (kind, kind, subject_id),
                    after,
                    PAGE,
                )
                .await?;
                let Some(last) = page.last() else {
                    break;
                };
                after = last.leaf_index;
                for mut event in page {
                    let by = event.actor_kind == kind && event.actor_id == subject_id;
                    let about = event.target_type == kind && event.target_id == subject_id;
                    let theirs: Vec<String> = event
                        .slots()
                        .filter(|slot| match slot {
                            Slot::ActorDisplayName | Slot::CallerIp | Slot::UserAgent => by,
                            Slot::Before(_) | Slot::After(_) => about,
                        })
                        .map(Slot::name)
                        .collect();
                    let before = event.values.len();
                    event.values.retain(|slot, _| !theirs.contains(slot));
                    let erased = before - event.values.len();
                    if erased > 0 {
                        store::events::rewrite_values(&*txn, &event).await?;
                        events_redacted += 1;
                        values_erased += erased as u64;
                    }
                }
            }
            let mut record = own_event(
                actor,
                workspace_id,
                ERASED_ACTION,
                (kind, subject_id),
                vec![Change {
                    field: "events_redacted".to_owned(),
                    before: None,
                    after: Some(events_redacted.to_string()),
                }],
                now,
            );
            record.event_id = erasure_id;
            let appended = self
                .append_to_log(&*txn, workspace_id, &[&record], now)
                .await?;
            let event = appended
                .into_iter()
                .next()
                .ok_or_else(|| AuditError::Internal("the erasure event went unanswered".into()))?;
            Ok(Erased {
                events_redacted,
                values_erased,
                event,
            })
        })?;
        if !erased.event.already_recorded {
            self.notify_appended();
        }
        Ok(erased)
    }
}
