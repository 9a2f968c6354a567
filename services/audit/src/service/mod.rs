//! The audit service's operations: appending (one transaction per batch, each log's head
//! locked so its leaves follow each other), reading events and proofs, and verifying a
//! whole log. `keys` holds the checkpoint-signing key.

mod append;
pub mod keys;
mod read;
mod verify;

use std::sync::Arc;

use roster_db::Db;

use crate::domain::Clock;
use crate::domain::note::LogKey;

pub use append::Appended;
pub use read::{CheckpointView, Consistency, Inclusion, LeafRef, LogKeyView};
pub use verify::{Problem, ProblemKind, Verification};

/// The audit service's operations over its database.
#[derive(Clone)]
pub struct Audit {
    db: Db,
    clock: Arc<dyn Clock>,
    key: LogKey,
}

impl Audit {
    pub fn new(db: Db, clock: Arc<dyn Clock>, key: LogKey) -> Self {
        Self { db, clock, key }
    }
}
