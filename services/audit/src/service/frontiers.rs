//! The right edge of each log this replica appended to lately, so its next append need not
//! read it back under the log's lock.
//!
//! A tree's first n leaves never change once committed, so the frontier of a committed
//! size is that size's frontier for good. One is kept only after its append committed,
//! and used only when the head still has its size: another replica's append in between
//! makes it miss, never wrong.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::domain::tree::Frontier;

/// Logs kept at most (a frontier is at most 64 hashes); reaching it starts over.
const CAPACITY: usize = 4096;

#[derive(Default)]
pub struct Frontiers {
    kept: Mutex<HashMap<String, Frontier>>,
}

impl Frontiers {
    /// `workspace_id`'s frontier if the one kept is of a tree of `size` leaves.
    pub fn of_size(&self, workspace_id: &str, size: u64) -> Option<Frontier> {
        self.lock()
            .get(workspace_id)
            .filter(|frontier| frontier.size() == size)
            .cloned()
    }

    /// Keeps the frontiers of committed appends.
    pub fn keep(&self, committed: impl IntoIterator<Item = (String, Frontier)>) {
        let mut kept = self.lock();
        for (workspace_id, frontier) in committed {
            if kept.len() >= CAPACITY && !kept.contains_key(&workspace_id) {
                kept.clear();
            }
            kept.insert(workspace_id, frontier);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Frontier>> {
        // Every change is one call on the map, so a panic leaves it whole.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
