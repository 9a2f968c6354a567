//! Verified tokens, remembered briefly so a client reusing its token skips the signature check.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use crate::principal::Principal;

pub(crate) struct TokenCache {
    capacity: usize,
    state: RwLock<State>,
}

struct State {
    entries: HashMap<String, Entry>,
    next_seq: u64,
    /// Bumped whenever the key set changes, so a verification that raced with the change
    /// cannot store a principal vouched for by a key that is no longer trusted.
    generation: u64,
}

struct Entry {
    principal: Principal,
    /// Unix seconds; the entry is served while `now < valid_until`.
    valid_until: i64,
    /// Insertion order, for evicting the oldest entries.
    seq: u64,
}

// Every critical section below leaves the map consistent before anything that could panic,
// so a poisoned lock still guards valid data and is recovered rather than propagated.
impl TokenCache {
    pub(crate) fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            state: RwLock::new(State {
                entries: HashMap::new(),
                next_seq: 0,
                generation: 0,
            }),
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    pub(crate) fn get(&self, token: &str, now: i64) -> Option<Principal> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let entry = state.entries.get(token)?;
        (now < entry.valid_until).then(|| entry.principal.clone())
    }

    pub(crate) fn generation(&self) -> u64 {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// Stores `principal` unless the key set changed since `generation` was read.
    pub(crate) fn insert(
        &self,
        token: &str,
        principal: Principal,
        valid_until: i64,
        now: i64,
        generation: u64,
    ) {
        if !self.is_enabled() || valid_until <= now {
            return;
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.generation != generation {
            return;
        }
        if !state.entries.contains_key(token) && state.entries.len() >= self.capacity {
            state.make_room(self.capacity, now);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.entries.insert(
            token.to_owned(),
            Entry {
                principal,
                valid_until,
                seq,
            },
        );
    }

    /// Forgets everything and invalidates verifications still in flight.
    pub(crate) fn reset(&self) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.entries.clear();
        state.generation += 1;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }
}

impl State {
    /// Drops stale entries, then if still full the older half: one O(n) pass per n/2
    /// insertions keeps inserts amortised O(1) without an ordered structure on the read path.
    fn make_room(&mut self, capacity: usize, now: i64) {
        self.entries.retain(|_, entry| now < entry.valid_until);
        if self.entries.len() < capacity {
            return;
        }
        let mut seqs: Vec<u64> = self.entries.values().map(|entry| entry.seq).collect();
        let middle = seqs.len() / 2;
        let (_, cutoff, _) = seqs.select_nth_unstable(middle);
        let cutoff = *cutoff;
        self.entries.retain(|_, entry| entry.seq > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{Grant, PrincipalKind, WorkspaceScope};

    fn principal(subject: &str) -> Principal {
        Principal {
            subject: subject.into(),
            kind: PrincipalKind::Service,
            workspaces: WorkspaceScope::All(Grant {
                role: "service".into(),
                permissions: Default::default(),
            }),
            token_id: "t".into(),
            issued_at: 0,
            expires_at: 1_000,
            generation: 0,
        }
    }

    #[test]
    fn entries_are_served_until_their_deadline() {
        let cache = TokenCache::new(10);
        cache.insert("tok", principal("a"), 100, 50, cache.generation());
        assert_eq!(cache.get("tok", 99).map(|p| p.subject), Some("a".into()));
        assert!(cache.get("tok", 100).is_none());
    }

    #[test]
    fn full_cache_evicts_stale_then_oldest() {
        let cache = TokenCache::new(4);
        let generation = cache.generation();
        for i in 0..4 {
            cache.insert(&format!("t{i}"), principal("a"), 100, 0, generation);
        }
        cache.insert("t4", principal("a"), 100, 0, generation);
        assert!(cache.len() <= 4);
        assert!(cache.get("t4", 0).is_some(), "newest entry kept");
        assert!(cache.get("t0", 0).is_none(), "oldest entry evicted");
        assert!(cache.get("t3", 0).is_some(), "recent entries kept");
    }

    #[test]
    fn capacity_one_still_caches_latest() {
        let cache = TokenCache::new(1);
        cache.insert("a", principal("a"), 100, 0, 0);
        cache.insert("b", principal("b"), 100, 0, 0);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("b", 0).is_some());
    }

    #[test]
    fn insert_after_reset_from_older_generation_is_dropped() {
        let cache = TokenCache::new(4);
        let before = cache.generation();
        cache.reset();
        cache.insert("tok", principal("a"), 100, 0, before);
        assert!(cache.get("tok", 0).is_none());
    }

    #[test]
    fn zero_capacity_disables_caching() {
        let cache = TokenCache::new(0);
        cache.insert("tok", principal("a"), 100, 0, 0);
        assert_eq!(cache.len(), 0);
    }
}
