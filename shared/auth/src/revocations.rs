//! What a verifier knows of revoked tokens, as the staff service publishes it.
//!
//! Revoking a subject's tokens (deactivating an agent, changing what it holds, revoking a
//! service account) raises the subject's token generation; tokens carry the generation they
//! were issued under (`gen`), so a token is revoked exactly when its generation is below the
//! subject's published minimum. A follower (`roster_service::revocations`) keeps the view
//! current from the staff service's stream.
//!
//! The view fails closed: until it has heard from the staff service, and once it has not
//! heard for longer than its bound, every token is refused, because it can no longer tell
//! revoked ones apart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use roster_core::Clock;

use crate::error::AuthError;
use crate::principal::Principal;

/// A subject's published minimum generation and when it was set (unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Minimum {
    generation: u64,
    revoked_at: i64,
}

/// Shared by a verifier (reads) and its follower (writes). Clones share the view.
#[derive(Clone)]
pub struct RevocationView {
    inner: Arc<Inner>,
}

struct Inner {
    minimums: RwLock<HashMap<String, Minimum>>,
    /// Unix seconds of the last message from the staff service; 0 until the first.
    last_heard: AtomicI64,
    max_staleness_secs: i64,
    clock: Arc<dyn Clock>,
}

impl RevocationView {
    /// An empty view that refuses every token until it first hears from the staff service,
    /// and again whenever it has not heard for longer than `max_staleness`.
    pub fn new(max_staleness: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                minimums: RwLock::new(HashMap::new()),
                last_heard: AtomicI64::new(0),
                max_staleness_secs: i64::try_from(max_staleness.as_secs()).unwrap_or(i64::MAX),
                clock,
            }),
        }
    }

    /// Replaces the view with a snapshot of every revocation still able to matter.
    pub fn replace(&self, snapshot: impl IntoIterator<Item = (String, u64, i64)>) {
        let mut fresh = HashMap::new();
        merge(&mut fresh, snapshot);
        *self
            .inner
            .minimums
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fresh;
        self.heard();
    }

    /// Adds revocations; a subject keeps the highest minimum it was given, so a batch seen
    /// twice or out of order changes nothing.
    pub fn apply(&self, revocations: impl IntoIterator<Item = (String, u64, i64)>) {
        merge(
            &mut self
                .inner
                .minimums
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            revocations,
        );
        self.heard();
    }

    /// Forgets revocations set before `before` (unix seconds): every token they could
    /// refuse has expired by then.
    pub fn forget_before(&self, before: i64) {
        self.inner
            .minimums
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, minimum| minimum.revoked_at >= before);
    }

    /// Records that the staff service was heard from (a heartbeat).
    pub fn heard(&self) {
        self.inner
            .last_heard
            .store(self.inner.clock.now_secs(), Ordering::SeqCst);
    }

    /// How long since the staff service was last heard from; `None` if never.
    pub fn staleness(&self) -> Option<Duration> {
        let last = self.inner.last_heard.load(Ordering::SeqCst);
        (last != 0).then(|| {
            Duration::from_secs(
                u64::try_from(self.inner.clock.now_secs().saturating_sub(last)).unwrap_or(0),
            )
        })
    }

    /// The staleness bound past which every token is refused.
    pub fn max_staleness(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.inner.max_staleness_secs).unwrap_or(0))
    }

    /// Whether the view is current enough to accept tokens.
    pub fn is_current(&self) -> bool {
        self.staleness()
            .is_some_and(|stale| stale <= self.max_staleness())
    }

    pub(crate) fn check(&self, principal: &Principal) -> Result<(), AuthError> {
        match self.staleness() {
            None => return Err(AuthError::RevocationsUnknown { stale_secs: None }),
            Some(stale) if stale > self.max_staleness() => {
                return Err(AuthError::RevocationsUnknown {
                    stale_secs: Some(stale.as_secs()),
                });
            }
            Some(_) => {}
        }
        let minimums = self
            .inner
            .minimums
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        match minimums.get(&principal.subject) {
            Some(minimum) if principal.generation < minimum.generation => Err(AuthError::Revoked),
            _ => Ok(()),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .minimums
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn merge(
    minimums: &mut HashMap<String, Minimum>,
    revocations: impl IntoIterator<Item = (String, u64, i64)>,
) {
    for (subject, generation, revoked_at) in revocations {
        let entry = minimums.entry(subject).or_insert(Minimum {
            generation,
            revoked_at,
        });
        if generation > entry.generation {
            *entry = Minimum {
                generation,
                revoked_at,
            };
        }
    }
}

impl std::fmt::Debug for RevocationView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationView")
            .field("staleness", &self.staleness())
            .field("max_staleness", &self.max_staleness())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{Grant, PrincipalKind, WorkspaceScope};
    use roster_core::ShiftedClock;

    fn principal(subject: &str, generation: u64) -> Principal {
        Principal {
            subject: subject.into(),
            kind: PrincipalKind::Agent,
            workspaces: WorkspaceScope::Only(
                [(
                    "w".to_owned(),
                    Grant {
                        role: "agent".into(),
                        permissions: Default::default(),
                    },
                )]
                .into(),
            ),
            token_id: "t".into(),
            issued_at: 0,
            expires_at: 0,
            generation,
        }
    }

    #[test]
    fn tokens_below_the_published_generation_are_revoked() {
        let view = RevocationView::new(Duration::from_secs(300), Arc::new(ShiftedClock::default()));
        view.replace([("a".to_owned(), 2, 100)]);
        assert!(matches!(
            view.check(&principal("a", 1)),
            Err(AuthError::Revoked)
        ));
        assert!(view.check(&principal("a", 2)).is_ok());
        assert!(view.check(&principal("b", 0)).is_ok());
        // A lower or repeated minimum changes nothing; a higher one wins.
        view.apply([("a".to_owned(), 1, 90), ("a".to_owned(), 3, 110)]);
        assert!(matches!(
            view.check(&principal("a", 2)),
            Err(AuthError::Revoked)
        ));
        view.forget_before(111);
        assert_eq!(view.len(), 0);
    }

    #[test]
    fn an_unheard_or_stale_view_refuses_everything() {
        let clock = ShiftedClock::default();
        let view = RevocationView::new(Duration::from_secs(300), Arc::new(clock.clone()));
        assert!(matches!(
            view.check(&principal("a", 9)),
            Err(AuthError::RevocationsUnknown { stale_secs: None })
        ));
        view.heard();
        assert!(view.check(&principal("a", 9)).is_ok());
        clock.advance_secs(300);
        assert!(view.check(&principal("a", 9)).is_ok(), "at the bound");
        clock.advance_secs(2);
        assert!(matches!(
            view.check(&principal("a", 9)),
            Err(AuthError::RevocationsUnknown {
                stale_secs: Some(302)
            })
        ));
        assert!(!view.is_current());
    }
}
