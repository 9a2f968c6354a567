//! Protobuf messages to domain values (checked) and back.

use prost_types::Timestamp;
use roster_core::FieldViolation;
use roster_proto::audit::v1 as pb;

use crate::domain::event::{ActorKind, Change, NewEvent, Outcome, Recorded, Slot};
use crate::domain::values;
use crate::entity::audit_legal_hold;
use crate::service::{CheckpointView, Problem, ProblemKind, RetentionView};

pub fn timestamp(us: i64) -> Timestamp {
    Timestamp {
        seconds: us.div_euclid(1_000_000),
        // Below 1e9 by construction.
        nanos: i32::try_from(us.rem_euclid(1_000_000) * 1000).unwrap_or(0),
    }
}

/// Unix microseconds of a timestamp (sub-microsecond digits dropped).
pub fn timestamp_us(field: &str, ts: &Timestamp) -> Result<i64, FieldViolation> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(FieldViolation::new(field, "nanos must be within 0..1e9"));
    }
    ts.seconds
        .checked_mul(1_000_000)
        .and_then(|us| us.checked_add(i64::from(ts.nanos / 1_000)))
        .filter(|us| *us >= 0)
        .ok_or_else(|| FieldViolation::new(field, "is out of range"))
}

pub fn actor_kind(kind: pb::ActorKind) -> Option<ActorKind> {
    match kind {
        pb::ActorKind::Unspecified => None,
        pb::ActorKind::Agent => Some(ActorKind::Agent),
        pb::ActorKind::EndUser => Some(ActorKind::EndUser),
        pb::ActorKind::Service => Some(ActorKind::Service),
        pb::ActorKind::System => Some(ActorKind::System),
        pb::ActorKind::Anonymous => Some(ActorKind::Anonymous),
    }
}

fn actor_kind_to_pb(kind: &str) -> pb::ActorKind {
    match ActorKind::parse(kind) {
        Some(ActorKind::Agent) => pb::ActorKind::Agent,
        Some(ActorKind::EndUser) => pb::ActorKind::EndUser,
        Some(ActorKind::Service) => pb::ActorKind::Service,
        Some(ActorKind::System) => pb::ActorKind::System,
        Some(ActorKind::Anonymous) => pb::ActorKind::Anonymous,
        None => pb::ActorKind::Unspecified,
    }
}

pub fn outcome(outcome: pb::Outcome) -> Option<Outcome> {
    match outcome {
        pb::Outcome::Unspecified => None,
        pb::Outcome::Success => Some(Outcome::Success),
        pb::Outcome::Failure => Some(Outcome::Failure),
        pb::Outcome::Denied => Some(Outcome::Denied),
    }
}

fn outcome_to_pb(value: &str) -> pb::Outcome {
    match Outcome::parse(value) {
        Some(Outcome::Success) => pb::Outcome::Success,
        Some(Outcome::Failure) => pb::Outcome::Failure,
        Some(Outcome::Denied) => pb::Outcome::Denied,
        None => pb::Outcome::Unspecified,
    }
}

/// Collects every violation of one event, each named under `path` (`events[3]`).
struct Checks<'a> {
    path: &'a str,
    violations: &'a mut Vec<FieldViolation>,
}

impl Checks<'_> {
    fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    fn take<T: Default>(&mut self, checked: Result<T, FieldViolation>) -> T {
        checked.unwrap_or_else(|violation| {
            self.violations.push(violation);
            T::default()
        })
    }

    fn fail(&mut self, name: &str, description: &str) {
        let field = self.field(name);
        self.violations
            .push(FieldViolation::new(field, description));
    }
}

/// The most changes one event may carry.
pub const MAX_CHANGES: usize = 200;

/// A producer's event, every field checked; violations are named under `path` and added to
/// `violations` (`None` when there were any).
pub fn new_event(
    path: &str,
    event: pb::AuditEvent,
    violations: &mut Vec<FieldViolation>,
) -> Option<NewEvent> {
    let before = violations.len();
    let mut checks = Checks { path, violations };
    let pb::AuditEvent {
        event_id,
        workspace_id,
        occurred_at,
        // Output only: the service sets them.
        recorded_at: _,
        actor,
        action,
        target,
        changes,
        outcome: event_outcome,
        request_id,
        trace_id,
        caller_ip,
        user_agent,
        source_service,
        schema_version,
        leaf_index: _,
        redacted_fields: _,
    } = event;
    let event_id = checks.take(values::event_id(&checks.field("event_id"), &event_id).map(Some));
    let workspace_id = checks.take(values::workspace_id(
        &checks.field("workspace_id"),
        &workspace_id,
    ));
    let occurred_at = match occurred_at {
        Some(ts) => checks.take(timestamp_us(&checks.field("occurred_at"), &ts)),
        None => {
            checks.fail("occurred_at", "is required");
            0
        }
    };
    let pb::Actor {
        kind,
        id: actor_id,
        display_name,
    } = actor.unwrap_or_default();
    let kind = pb::ActorKind::try_from(kind).ok().and_then(actor_kind);
    if kind.is_none() {
        checks.fail(
            "actor.kind",
            "is required: agent, end_user, service, system or anonymous",
        );
    }
    // An anonymous caller proved no identity, so it has no id to give.
    let actor_id = checks.take(values::text(
        &checks.field("actor.id"),
        &actor_id,
        256,
        kind != Some(ActorKind::Anonymous),
    ));
    let actor_display_name = checks.take(values::optional_text(
        &checks.field("actor.display_name"),
        &display_name,
        256,
    ));
    let action = checks.take(values::action(&checks.field("action"), &action));
    let pb::Target {
        r#type: target_type,
        id: target_id,
    } = target.unwrap_or_default();
    let target_type = checks.take(values::name(
        &checks.field("target.type"),
        &target_type,
        64,
        false,
    ));
    let target_id = checks.take(values::text(
        &checks.field("target.id"),
        &target_id,
        256,
        false,
    ));
    if changes.len() > MAX_CHANGES {
        checks.fail(
            "changes",
            &format!("at most {MAX_CHANGES} changes per event"),
        );
    }
    let changes: Vec<Change> = changes
        .into_iter()
        .enumerate()
        .map(|(at, change)| {
            let pb::FieldChange {
                field,
                before_json,
                after_json,
                before_redacted: _,
                after_redacted: _,
            } = change;
            let name = |part: &str| format!("{path}.changes[{at}].{part}");
            let field = checks.take(values::text(&name("field"), &field, 128, true));
            let before = before_json
                .map(|json| checks.take(values::json_value(&name("before_json"), &json)));
            let after =
                after_json.map(|json| checks.take(values::json_value(&name("after_json"), &json)));
            Change {
                field,
                before,
                after,
            }
        })
        .collect();
    let event_outcome = pb::Outcome::try_from(event_outcome).ok().and_then(outcome);
    if event_outcome.is_none() {
        checks.fail("outcome", "is required: success, failure or denied");
    }
    let request_id = checks.take(values::text(
        &checks.field("request_id"),
        &request_id,
        128,
        false,
    ));
    let trace_id = checks.take(values::text(
        &checks.field("trace_id"),
        &trace_id,
        128,
        false,
    ));
    let caller_ip = checks.take(values::ip_address(&checks.field("caller_ip"), &caller_ip));
    let user_agent = checks.take(values::optional_text(
        &checks.field("user_agent"),
        &user_agent,
        1024,
    ));
    let source_service = checks.take(values::name(
        &checks.field("source_service"),
        &source_service,
        64,
        true,
    ));
    if schema_version == 0 {
        checks.fail("schema_version", "is required (1 or more)");
    }
    if checks.violations.len() > before {
        return None;
    }
    Some(NewEvent {
        event_id: event_id?,
        workspace_id,
        occurred_at,
        source_service,
        schema_version,
        actor_kind: kind?,
        actor_id,
        actor_display_name,
        action,
        target_type,
        target_id,
        changes,
        outcome: event_outcome?,
        request_id,
        trace_id,
        caller_ip,
        user_agent,
    })
}

/// A recorded event as readers see it: erased values absent and named.
pub fn event(recorded: Recorded) -> pb::AuditEvent {
    let value = |slot: Slot| recorded.value(slot).map(str::to_owned);
    let changes = recorded
        .change_fields
        .iter()
        .enumerate()
        .map(|(at, field)| pb::FieldChange {
            field: field.clone(),
            before_json: value(Slot::Before(at)),
            after_json: value(Slot::After(at)),
            before_redacted: recorded.redacted(Slot::Before(at)),
            after_redacted: recorded.redacted(Slot::After(at)),
        })
        .collect();
    let redacted_fields = [Slot::ActorDisplayName, Slot::CallerIp, Slot::UserAgent]
        .into_iter()
        .filter(|slot| recorded.redacted(*slot))
        .map(Slot::name)
        .collect();
    pb::AuditEvent {
        event_id: recorded.event_id.to_string(),
        workspace_id: recorded.workspace_id.clone(),
        occurred_at: Some(timestamp(recorded.occurred_at)),
        recorded_at: Some(timestamp(recorded.recorded_at)),
        actor: Some(pb::Actor {
            kind: actor_kind_to_pb(&recorded.actor_kind) as i32,
            id: recorded.actor_id.clone(),
            display_name: value(Slot::ActorDisplayName).unwrap_or_default(),
        }),
        action: recorded.action.clone(),
        target: Some(pb::Target {
            r#type: recorded.target_type.clone(),
            id: recorded.target_id.clone(),
        }),
        changes,
        outcome: outcome_to_pb(&recorded.outcome) as i32,
        request_id: recorded.request_id.clone(),
        trace_id: recorded.trace_id.clone(),
        caller_ip: value(Slot::CallerIp).unwrap_or_default(),
        user_agent: value(Slot::UserAgent).unwrap_or_default(),
        source_service: recorded.source_service.clone(),
        schema_version: recorded.schema_version,
        leaf_index: recorded.leaf_index,
        redacted_fields,
    }
}

pub fn checkpoint(view: CheckpointView) -> pb::Checkpoint {
    pb::Checkpoint {
        workspace_id: view.workspace_id,
        origin: view.origin,
        tree_size: i64::try_from(view.tree_size).unwrap_or(i64::MAX),
        root_hash: view.root.to_vec(),
        signed_note: view.signed_note,
    }
}

pub fn problem(problem: Problem) -> pb::LogProblem {
    use pb::log_problem::Kind;
    let kind = match problem.kind {
        ProblemKind::EventChanged => Kind::EventChanged,
        ProblemKind::EventMissing => Kind::EventMissing,
        ProblemKind::ValueChanged => Kind::ValueChanged,
        ProblemKind::TreeHashChanged => Kind::TreeHashChanged,
        ProblemKind::CheckpointMismatch => Kind::CheckpointMismatch,
        ProblemKind::EventUnreadable => Kind::EventUnreadable,
    };
    pb::LogProblem {
        kind: kind as i32,
        leaf_index: i64::try_from(problem.leaf_index).unwrap_or(i64::MAX),
        event_id: problem
            .event_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        message: problem.message,
    }
}

pub fn legal_hold(hold: audit_legal_hold::Model) -> pb::LegalHold {
    pb::LegalHold {
        hold_id: hold.hold_id.to_string(),
        subject_id: hold.subject_id,
        reason: hold.reason,
        placed_by: hold.placed_by,
        placed_at: Some(timestamp(hold.placed_at)),
    }
}

pub fn retention(view: RetentionView) -> pb::Retention {
    pb::Retention {
        workspace_id: view.workspace_id,
        retention: view.retention_us.map(|us| prost_types::Duration {
            seconds: us / 1_000_000,
            nanos: 0,
        }),
        min_leaf_index: i64::try_from(view.min_index).unwrap_or(i64::MAX),
        tree_size: i64::try_from(view.tree_size).unwrap_or(i64::MAX),
        legal_holds: view.holds.into_iter().map(legal_hold).collect(),
    }
}
