//! The audit service's operations: appending (one transaction per batch, each log's head
//! locked so its leaves follow each other), reading events and proofs, and verifying a
//! whole log. `keys` holds the checkpoint-signing key.

mod append;
mod coalesce;
mod erase;
mod frontiers;
mod inclusion;
pub mod keys;
mod read;
mod retention;
mod upper_hashes;
mod verify;

use std::sync::Arc;

use roster_core::Actor;
use roster_db::Db;
use uuid::Uuid;

use crate::domain::Clock;
use crate::domain::event::{ActorKind, Change, NewEvent, Outcome};
use crate::domain::note::LogKey;
use crate::domain::values;
use crate::service::coalesce::Coalescer;
use crate::service::frontiers::Frontiers;
use crate::service::inclusion::InclusionAsk;
use crate::service::upper_hashes::UpperHashes;

pub use append::Appended;
pub use erase::{Erased, SubjectType};
pub use inclusion::{Inclusion, LeafRef};
pub use read::{CheckpointView, Consistency, LogKeyView};
pub use retention::{RetentionView, retention_period};
pub use verify::{Problem, ProblemKind, Verification};

/// The audit service's operations over its database.
#[derive(Clone)]
pub struct Audit {
    db: Db,
    clock: Arc<dyn Clock>,
    key: LogKey,
    /// Counts this replica's committed appends, so its event streams wake at once; they
    /// also poll, for what other replicas commit.
    appended: Arc<tokio::sync::watch::Sender<u64>>,
    /// The frontiers of the logs this replica appended to last.
    frontiers: Arc<Frontiers>,
    /// Inclusion proofs asked of one log at once share their reads.
    inclusions: Arc<Coalescer<InclusionAsk, crate::error::Result<Inclusion>>>,
    /// The upper levels of the trees proofs read, shared by every proof of a log.
    upper_hashes: Arc<UpperHashes>,
    /// The page reads VerifyLog calls may have in flight together, each holding a pooled
    /// connection (`verify::READS_IN_FLIGHT`).
    verify_reads: Arc<tokio::sync::Semaphore>,
}

impl Audit {
    pub fn new(db: Db, clock: Arc<dyn Clock>, key: LogKey) -> Self {
        Self {
            db,
            clock,
            key,
            appended: Arc::new(tokio::sync::watch::Sender::new(0)),
            frontiers: Arc::new(Frontiers::default()),
            inclusions: Arc::new(Coalescer::new()),
            upper_hashes: Arc::new(UpperHashes::default()),
            verify_reads: Arc::new(tokio::sync::Semaphore::new(verify::READS_IN_FLIGHT)),
        }
    }

    /// Changes whenever this replica commits an append.
    pub fn appends(&self) -> tokio::sync::watch::Receiver<u64> {
        self.appended.subscribe()
    }
}

/// An event the audit service records itself (a retention change, an erasure), with the
/// caller as its actor and the request's context.
pub(crate) fn own_event(
    actor: &Actor,
    workspace_id: &str,
    action: &str,
    target: (&str, &str),
    changes: Vec<Change>,
    now: i64,
) -> NewEvent {
    let context = &actor.context;
    let actor_kind = match actor.kind.as_str() {
        "agent" => ActorKind::Agent,
        "service" => ActorKind::Service,
        _ => ActorKind::System,
    };
    NewEvent {
        event_id: Uuid::now_v7(),
        workspace_id: workspace_id.to_owned(),
        occurred_at: now,
        source_service: "audit".to_owned(),
        schema_version: 1,
        actor_kind,
        actor_id: actor.id.clone(),
        actor_display_name: None,
        action: action.to_owned(),
        target_type: target.0.to_owned(),
        target_id: target.1.to_owned(),
        changes,
        outcome: Outcome::Success,
        request_id: context.request_id.clone(),
        trace_id: context.trace_id.clone().unwrap_or_default(),
        caller_ip: context
            .peer_ip
            .as_deref()
            .and_then(|ip| values::ip_address("caller_ip", ip).ok().flatten()),
        user_agent: context.user_agent.as_deref().map(|agent| {
            agent
                .chars()
                .filter(|c| !c.is_control())
                .take(1024)
                .collect()
        }),
    }
}
