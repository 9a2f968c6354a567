//! The audit service's operations: appending (one transaction per batch, each log's head
//! locked so its leaves follow each other), reading events and proofs, and verifying a
//! whole log. `keys` holds the checkpoint-signing key.

mod append;
pub mod keys;
mod read;
mod retention;
mod verify;

use std::sync::Arc;

use roster_db::Db;

use crate::domain::Clock;
use crate::domain::note::LogKey;

pub use append::Appended;
pub use read::{CheckpointView, Consistency, Inclusion, LeafRef, LogKeyView};
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
}

impl Audit {
    pub fn new(db: Db, clock: Arc<dyn Clock>, key: LogKey) -> Self {
        Self {
            db,
            clock,
            key,
            appended: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }

    /// Changes whenever this replica commits an append.
    pub fn appends(&self) -> tokio::sync::watch::Receiver<u64> {
        self.appended.subscribe()
    }
}
