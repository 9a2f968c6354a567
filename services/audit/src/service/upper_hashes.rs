//! The upper levels of every log's tree, kept in memory as proofs read them.
//!
//! A stored hash never changes (the triggers refuse UPDATE and DELETE, and retention keeps
//! hashes), so a kept one is never stale, and every replica may keep its own. The levels
//! from [`KEPT_FROM_LEVEL`] up are shared by the proofs of many leaves (a subtree of 16
//! leaves and up) and are an eighth of a log's hashes; below, a proof's siblings are its
//! own, read from the database each time.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use sea_orm::ConnectionTrait;
use tlog_tiles::tlog::split_stored_hash_index;

use crate::domain::tree::{Hash, StoredHashes};
use crate::error::Result;
use crate::store;

/// The lowest level kept: nodes over 16 leaves.
const KEPT_FROM_LEVEL: u8 = 4;

/// Hashes kept at most, some 64 MB. Reaching it starts over, so the logs read now fill
/// it rather than those read first.
const CAPACITY: usize = 1_000_000;

#[derive(Default)]
pub struct UpperHashes {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    by_log: HashMap<String, HashMap<u64, Hash>>,
    count: usize,
}

impl UpperHashes {
    /// The hashes at `indexes` of `workspace_id`'s tree (those that exist): the kept ones
    /// from memory, the rest read, and those of the upper levels kept.
    pub async fn read<C: ConnectionTrait>(
        &self,
        conn: &C,
        workspace_id: &str,
        indexes: &[u64],
    ) -> Result<StoredHashes> {
        let mut found = StoredHashes::default();
        let mut missing = Vec::new();
        {
            let kept = self.lock();
            let log = kept.by_log.get(workspace_id);
            for &index in indexes {
                match log.and_then(|log| log.get(&index)) {
                    Some(hash) => {
                        found.0.insert(index, *hash);
                    }
                    None => missing.push(index),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let read = store::hashes::read(conn, workspace_id, &missing).await?;
        let upper: Vec<(u64, Hash)> = read
            .0
            .iter()
            .filter(|(index, _)| split_stored_hash_index(**index).0 >= KEPT_FROM_LEVEL)
            .map(|(index, hash)| (*index, *hash))
            .collect();
        if !upper.is_empty() {
            self.lock().keep(workspace_id, upper);
        }
        found.0.extend(read.0);
        Ok(found)
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        // Every change leaves the maps whole: none spans a call that can panic.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Kept {
    fn keep(&mut self, workspace_id: &str, hashes: Vec<(u64, Hash)>) {
        if self.count + hashes.len() > CAPACITY {
            self.by_log.clear();
            self.count = 0;
        }
        let log = match self.by_log.get_mut(workspace_id) {
            Some(log) => log,
            None => self.by_log.entry(workspace_id.to_owned()).or_default(),
        };
        for (index, hash) in hashes {
            if log.insert(index, hash).is_none() {
                self.count += 1;
            }
        }
    }
}
