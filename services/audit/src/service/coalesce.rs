//! Concurrent reads of one key share their statements. A call joins its key's queue; up
//! to [`ROUNDS_PER_KEY`] rounds of a key run at once, each answering every call queued when
//! it starts with one set of statements. A lone call starts its round at once; under load
//! rounds grow with the queue, so database round trips are paid per round, not per call,
//! and the rounds of one key still keep more than one connection busy.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;
use tracing::Instrument as _;

/// At most this many calls share a round, which bounds the size of its statements.
pub const MAX_ROUND: usize = 64;

/// Rounds of one key running at once. One alone left the CPU a fifth idle while its
/// statements went back and forth; a second overlaps them.
pub const ROUNDS_PER_KEY: usize = 1;

type Queue<Ask, Answer> = Vec<(Ask, oneshot::Sender<Answer>)>;

/// A key's rounds running and the calls waiting for a round.
struct Pending<Ask, Answer> {
    rounds: usize,
    queue: Queue<Ask, Answer>,
}

pub struct Coalescer<Ask, Answer> {
    /// The keys with rounds running, each with the calls waiting for a round.
    keys: Mutex<HashMap<String, Pending<Ask, Answer>>>,
}

impl<Ask: Send + 'static, Answer: Send + 'static> Coalescer<Ask, Answer> {
    pub fn new() -> Self {
        Self {
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Answers `ask` in a round of `key`. `round` answers a round's asks, one answer per
    /// ask in their order. Rounds run on a task of their own, so a caller that goes away
    /// strands no one waiting behind it. `None` when the round ended without answering
    /// (it panicked).
    pub async fn call<Round, Answers>(
        self: &Arc<Self>,
        key: &str,
        ask: Ask,
        round: Round,
    ) -> Option<Answer>
    where
        Round: Fn(Vec<Ask>) -> Answers + Send + 'static,
        Answers: Future<Output = Vec<Answer>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut keys = self.lock();
            let pending = keys.entry(key.to_owned()).or_insert_with(|| Pending {
                rounds: 0,
                queue: Vec::new(),
            });
            pending.queue.push((ask, reply));
            let lead = pending.rounds < ROUNDS_PER_KEY;
            if lead {
                pending.rounds += 1;
            }
            lead
        };
        if lead {
            let rounds = Arc::clone(self).run(key.to_owned(), round);
            tokio::spawn(rounds.in_current_span());
        }
        answer.await.ok()
    }

    /// Runs rounds of `key` until its queue is empty, then stops; the last to stop frees
    /// the key.
    async fn run<Round, Answers>(self: Arc<Self>, key: String, round: Round)
    where
        Round: Fn(Vec<Ask>) -> Answers,
        Answers: Future<Output = Vec<Answer>>,
    {
        let mut running = Running {
            coalescer: &self,
            key: &key,
            finished: false,
        };
        loop {
            let batch: Queue<Ask, Answer> = {
                let mut keys = self.lock();
                let Some(pending) = keys.get_mut(&key) else {
                    break;
                };
                if pending.queue.is_empty() {
                    pending.rounds = pending.rounds.saturating_sub(1);
                    if pending.rounds == 0 {
                        keys.remove(&key);
                    }
                    break;
                }
                let take = pending.queue.len().min(MAX_ROUND);
                pending.queue.drain(..take).collect()
            };
            let (asks, replies): (Vec<Ask>, Vec<_>) = batch.into_iter().unzip();
            let answers = round(asks).await;
            for (reply, answer) in replies.into_iter().zip(answers) {
                // A caller that went away no longer wants its answer.
                let _ = reply.send(answer);
            }
        }
        running.finished = true;
    }

    /// How many calls of `key` wait for a round.
    #[cfg(test)]
    fn waiting(&self, key: &str) -> usize {
        self.lock()
            .get(key)
            .map_or(0, |pending| pending.queue.len())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pending<Ask, Answer>>> {
        // The map stays consistent across a panic: no change spans a call that can panic.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Gives up a key's round if it stops short (it panicked). The last round of the key to
/// go drops its waiting calls, which get `None` rather than wait for a round that never
/// comes, and frees the key for the next call to lead.
struct Running<'a, Ask: Send + 'static, Answer: Send + 'static> {
    coalescer: &'a Coalescer<Ask, Answer>,
    key: &'a str,
    finished: bool,
}

impl<Ask: Send + 'static, Answer: Send + 'static> Drop for Running<'_, Ask, Answer> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut keys = self.coalescer.lock();
        if let Some(pending) = keys.get_mut(self.key) {
            pending.rounds = pending.rounds.saturating_sub(1);
            if pending.rounds == 0 {
                keys.remove(self.key);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;

    /// A round that waits for `gate` to open, then answers each ask doubled; counts rounds.
    fn doubling(
        gate: Arc<Semaphore>,
        rounds: Arc<AtomicUsize>,
    ) -> impl Fn(Vec<u32>) -> std::pin::Pin<Box<dyn Future<Output = Vec<u32>> + Send>>
    + Clone
    + Send
    + Sync
    + 'static {
        move |asks| {
            let gate = Arc::clone(&gate);
            let rounds = Arc::clone(&rounds);
            Box::pin(async move {
                rounds.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
                asks.into_iter().map(|ask| ask * 2).collect()
            })
        }
    }

    async fn until_waiting(coalescer: &Coalescer<u32, u32>, key: &str, count: usize) {
        while coalescer.waiting(key) < count {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    type Leaders = Vec<tokio::task::JoinHandle<Option<u32>>>;

    /// A coalescer with [`ROUNDS_PER_KEY`] rounds of `key` running, each waiting for its
    /// gate to open: its calls are the leaders; further calls of `key` wait in its queue.
    async fn occupied(
        key: &'static str,
    ) -> (
        Arc<Coalescer<u32, u32>>,
        Arc<Semaphore>,
        Arc<AtomicUsize>,
        Leaders,
    ) {
        let coalescer = Arc::new(Coalescer::new());
        let gate = Arc::new(Semaphore::new(0));
        let rounds = Arc::new(AtomicUsize::new(0));
        let leaders = (1..)
            .take(ROUNDS_PER_KEY)
            .map(|ask| {
                let coalescer = Arc::clone(&coalescer);
                let round = doubling(Arc::clone(&gate), Arc::clone(&rounds));
                tokio::spawn(async move { coalescer.call(key, ask, round).await })
            })
            .collect();
        while rounds.load(Ordering::SeqCst) < ROUNDS_PER_KEY {
            tokio::task::yield_now().await;
        }
        (coalescer, gate, rounds, leaders)
    }

    #[tokio::test]
    async fn calls_arriving_during_rounds_share_the_next() {
        let (coalescer, gate, rounds, leaders) = occupied("ws").await;
        let round = doubling(Arc::clone(&gate), Arc::clone(&rounds));
        let later: Vec<_> = (100..110)
            .map(|ask| {
                let (coalescer, round) = (Arc::clone(&coalescer), round.clone());
                tokio::spawn(async move { coalescer.call("ws", ask, round).await })
            })
            .collect();
        until_waiting(&coalescer, "ws", 10).await;
        gate.add_permits(ROUNDS_PER_KEY + 1);
        for (ask, leader) in (1..).zip(leaders) {
            assert_eq!(leader.await.unwrap(), Some(ask * 2));
        }
        for (ask, call) in (100..).zip(later) {
            assert_eq!(call.await.unwrap(), Some(ask * 2));
        }
        assert_eq!(
            rounds.load(Ordering::SeqCst),
            ROUNDS_PER_KEY + 1,
            "a round each for the first calls, then one for all ten"
        );
        assert_eq!(coalescer.waiting("ws"), 0);
        // The key is free again: a lone call leads a round of its own.
        gate.add_permits(1);
        assert_eq!(coalescer.call("ws", 21, round).await, Some(42));
    }

    #[tokio::test]
    async fn keys_do_not_wait_for_each_other() {
        let coalescer = Arc::new(Coalescer::new());
        let closed = Arc::new(Semaphore::new(0));
        let stuck = tokio::spawn({
            let coalescer = Arc::clone(&coalescer);
            let round = doubling(closed, Arc::new(AtomicUsize::new(0)));
            async move { coalescer.call("busy", 1, round).await }
        });
        let open = Arc::new(Semaphore::new(1));
        let round = doubling(open, Arc::new(AtomicUsize::new(0)));
        assert_eq!(coalescer.call("idle", 4, round).await, Some(8));
        stuck.abort();
    }

    #[tokio::test]
    async fn callers_that_leave_strand_no_one() {
        let (coalescer, gate, rounds, leaders) = occupied("ws").await;
        let follower = tokio::spawn({
            let coalescer = Arc::clone(&coalescer);
            let round = doubling(Arc::clone(&gate), Arc::clone(&rounds));
            async move { coalescer.call("ws", 3, round).await }
        });
        until_waiting(&coalescer, "ws", 1).await;
        for leader in leaders {
            leader.abort();
        }
        gate.add_permits(ROUNDS_PER_KEY + 1);
        assert_eq!(follower.await.unwrap(), Some(6));
    }

    #[tokio::test]
    async fn a_panicking_round_answers_none_and_frees_the_key() {
        let coalescer: Arc<Coalescer<u32, u32>> = Arc::new(Coalescer::new());
        let panicking = |asks: Vec<u32>| async move {
            assert!(asks.is_empty(), "a round that fails");
            Vec::new()
        };
        assert_eq!(coalescer.call("ws", 1, panicking).await, None);
        assert_eq!(coalescer.waiting("ws"), 0);
        let round = doubling(Arc::new(Semaphore::new(1)), Arc::new(AtomicUsize::new(0)));
        assert_eq!(coalescer.call("ws", 5, round).await, Some(10));
    }
}
