//! An audit event: what a producer sends (`NewEvent`), and what the log holds of it
//! (`Recorded`): the envelope in the clear, a salted commitment per personal value, and the
//! values with their salts beside, which erasure may remove.

use std::collections::BTreeMap;

use uuid::Uuid;

/// Who acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorKind {
    Agent,
    EndUser,
    Service,
    System,
    /// An unauthenticated caller (a failed sign-in): no id.
    Anonymous,
}

impl ActorKind {
    pub const ALL: [ActorKind; 5] = [
        ActorKind::Agent,
        ActorKind::EndUser,
        ActorKind::Service,
        ActorKind::System,
        ActorKind::Anonymous,
    ];

    /// As stored and as the leaf commits to it.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Agent => "agent",
            ActorKind::EndUser => "end_user",
            ActorKind::Service => "service",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }
}

/// How the action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Denied];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == value)
    }
}

/// One changed field; values are canonical JSON text (`domain::json`), `None` when absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// An event as a producer sent it, every field checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub workspace_id: String,
    /// Unix microseconds.
    pub occurred_at: i64,
    pub source_service: String,
    pub schema_version: u32,
    pub actor_kind: ActorKind,
    pub actor_id: String,
    pub actor_display_name: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub changes: Vec<Change>,
    pub outcome: Outcome,
    pub request_id: String,
    pub trace_id: String,
    pub caller_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Where a personal value sits in an event. Personal are the values that name or describe
/// a person or their device: the actor's display name, the caller's IP address and user
/// agent, and every changed field's before and after value (a field holds an e-mail, a
/// name, a phone number as often as a status). Ids (actor, target, event, request, trace),
/// field names, actions and outcomes are not: they are pseudonymous or say what happened,
/// and the trail needs them after a person is erased (the directory keeps the erased user's
/// id on its tombstone too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slot {
    ActorDisplayName,
    CallerIp,
    UserAgent,
    Before(usize),
    After(usize),
}

impl Slot {
    /// The name values and commitments are stored under, and redaction reports.
    pub fn name(self) -> String {
        match self {
            Slot::ActorDisplayName => "actor.display_name".to_owned(),
            Slot::CallerIp => "caller_ip".to_owned(),
            Slot::UserAgent => "user_agent".to_owned(),
            Slot::Before(at) => format!("changes.{at}.before"),
            Slot::After(at) => format!("changes.{at}.after"),
        }
    }
}

/// A personal value and the salt of its commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonalValue {
    pub salt: [u8; 32],
    pub value: String,
}

/// An event as the log holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub event_id: Uuid,
    pub workspace_id: String,
    pub leaf_index: i64,
    pub occurred_at: i64,
    pub recorded_at: i64,
    pub source_service: String,
    pub schema_version: u32,
    pub actor_kind: String,
    pub actor_id: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub outcome: String,
    pub request_id: String,
    pub trace_id: String,
    /// The changed fields' names, in order.
    pub change_fields: Vec<String>,
    /// Slot name → commitment, for every personal value the event had.
    pub commitments: BTreeMap<String, [u8; 32]>,
    /// Slot name → value and salt, for every personal value not erased.
    pub values: BTreeMap<String, PersonalValue>,
}

impl Recorded {
    /// The slots of this event, in leaf order.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        [Slot::ActorDisplayName, Slot::CallerIp, Slot::UserAgent]
            .into_iter()
            .chain((0..self.change_fields.len()).flat_map(|at| [Slot::Before(at), Slot::After(at)]))
    }

    /// A personal value, when it exists and was not erased.
    pub fn value(&self, slot: Slot) -> Option<&str> {
        self.values.get(&slot.name()).map(|v| v.value.as_str())
    }

    /// Whether the event had a value in `slot` that was erased.
    pub fn redacted(&self, slot: Slot) -> bool {
        let name = slot.name();
        self.commitments.contains_key(&name) && !self.values.contains_key(&name)
    }
}

impl NewEvent {
    /// The event's personal values by slot, absent ones left out.
    pub fn personal_values(&self) -> Vec<(Slot, &str)> {
        let mut values = Vec::new();
        let top = [
            (Slot::ActorDisplayName, &self.actor_display_name),
            (Slot::CallerIp, &self.caller_ip),
            (Slot::UserAgent, &self.user_agent),
        ];
        for (slot, value) in top {
            if let Some(value) = value {
                values.push((slot, value.as_str()));
            }
        }
        for (at, change) in self.changes.iter().enumerate() {
            if let Some(before) = &change.before {
                values.push((Slot::Before(at), before.as_str()));
            }
            if let Some(after) = &change.after {
                values.push((Slot::After(at), after.as_str()));
            }
        }
        values
    }

    /// Records the event at `leaf_index`, committing to each personal value with the salt
    /// `salt` hands out (fresh random bytes in the service; fixed ones in tests).
    pub fn record(
        self,
        leaf_index: i64,
        recorded_at: i64,
        mut salt: impl FnMut() -> [u8; 32],
    ) -> Recorded {
        let mut commitments = BTreeMap::new();
        let mut values = BTreeMap::new();
        for (slot, value) in self.personal_values() {
            let salt = salt();
            commitments.insert(slot.name(), crate::domain::leaf::commitment(&salt, value));
            values.insert(
                slot.name(),
                PersonalValue {
                    salt,
                    value: value.to_owned(),
                },
            );
        }
        Recorded {
            event_id: self.event_id,
            workspace_id: self.workspace_id,
            leaf_index,
            occurred_at: self.occurred_at,
            recorded_at,
            source_service: self.source_service,
            schema_version: self.schema_version,
            actor_kind: self.actor_kind.as_str().to_owned(),
            actor_id: self.actor_id,
            action: self.action,
            target_type: self.target_type,
            target_id: self.target_id,
            outcome: self.outcome.as_str().to_owned(),
            request_id: self.request_id,
            trace_id: self.trace_id,
            change_fields: self.changes.into_iter().map(|c| c.field).collect(),
            commitments,
            values,
        }
    }

    /// The first difference between this event and `recorded`, the event its id was
    /// recorded with, as a field name; `None` when this is a resend of it. Personal values
    /// are compared where the log still has them: one erased since cannot differ. A resend
    /// may lack a personal value the first delivery carried: the producer redacted it in
    /// between (an erasure while the first delivery went unacknowledged), and the erasure
    /// request following it in the outbox erases it here too.
    pub fn differs_from(&self, recorded: &Recorded) -> Option<String> {
        let plain: [(&str, String, &str); 12] = [
            (
                "workspace_id",
                self.workspace_id.clone(),
                &recorded.workspace_id,
            ),
            (
                "occurred_at",
                self.occurred_at.to_string(),
                &recorded.occurred_at.to_string(),
            ),
            (
                "source_service",
                self.source_service.clone(),
                &recorded.source_service,
            ),
            (
                "schema_version",
                self.schema_version.to_string(),
                &recorded.schema_version.to_string(),
            ),
            (
                "actor.kind",
                self.actor_kind.as_str().to_owned(),
                &recorded.actor_kind,
            ),
            ("actor.id", self.actor_id.clone(), &recorded.actor_id),
            ("action", self.action.clone(), &recorded.action),
            (
                "target.type",
                self.target_type.clone(),
                &recorded.target_type,
            ),
            ("target.id", self.target_id.clone(), &recorded.target_id),
            (
                "outcome",
                self.outcome.as_str().to_owned(),
                &recorded.outcome,
            ),
            ("request_id", self.request_id.clone(), &recorded.request_id),
            ("trace_id", self.trace_id.clone(), &recorded.trace_id),
        ];
        if let Some((field, _, _)) = plain.iter().find(|(_, new, old)| new != old) {
            return Some((*field).to_owned());
        }
        let fields: Vec<&str> = self.changes.iter().map(|c| c.field.as_str()).collect();
        if fields != recorded.change_fields {
            return Some("changes".to_owned());
        }
        let new: BTreeMap<String, &str> = self
            .personal_values()
            .into_iter()
            .map(|(slot, value)| (slot.name(), value))
            .collect();
        for slot in recorded.slots() {
            let name = slot.name();
            let present = recorded.commitments.contains_key(&name);
            match (new.get(&name), present) {
                (None, false | true) => {}
                (Some(_), false) => return Some(name),
                (Some(value), true) => {
                    if let Some(kept) = recorded.values.get(&name)
                        && kept.value != *value
                    {
                        return Some(name);
                    }
                }
            }
        }
        None
    }
}
