//! Workspace rules as the hot paths read them, parsed.
//!
//! CreateUser, UpsertUser and CheckChatAccess consult a workspace's rules on every call, and
//! the rules change rarely; a read per call was a third of CreateUser's queries. Entries
//! live for a few seconds: a change made through this process is seen at once (its entry is
//! dropped), one made through another replica within `TTL`. Widget keys are never served
//! from here: a rotated secret must verify everywhere immediately.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::settings::Rules;

const TTL: Duration = Duration::from_secs(2);
/// Bounds memory with many workspaces; on overflow the map starts over.
const CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
pub struct SettingsCache {
    entries: RwLock<HashMap<String, (Rules, Instant)>>,
}

impl SettingsCache {
    pub fn get(&self, workspace_id: &str) -> Option<Rules> {
        let entries = self.entries.read().ok()?;
        let (rules, fetched) = entries.get(workspace_id)?;
        (fetched.elapsed() < TTL).then_some(*rules)
    }

    /// Only rules that parsed are cached: an unreadable setting is an error on every read.
    pub fn put(&self, workspace_id: &str, rules: Rules) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(workspace_id.to_owned(), (rules, Instant::now()));
        }
    }

    pub fn forget(&self, workspace_id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(workspace_id);
        }
    }
}
