//! The delay from a write to its events being listable: a writer calls at a steady rate
//! (open loop, so a slow call does not slow the schedule), a reader lists the workspace's
//! newest events again and again, and each event's delay is the time from the start of the
//! call that caused it to the end of the first ListEvents that showed it. The write is an
//! AppendEvents at the audit service, or a directory call whose event comes through its
//! outbox and relay; the caller hands in the call and says how its events are recognised.
//!
//! Leaves of one log commit in leaf order (appends take turns on the log's head), so the
//! reader only needs the pages above the highest leaf it has seen: anything below was
//! already listable on its previous pass.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roster_proto::audit::v1 as pb;
use roster_proto::audit::v1::audit_service_client::AuditServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::load::Latencies;
use crate::service;

/// How long the reader keeps looking for events the writer sent before it stopped.
pub const DRAIN: Duration = Duration::from_secs(10);
/// The longest one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Events per ListEvents page: more than arrive between two passes at the rates measured,
/// so a pass is usually one call.
pub const PAGE_SIZE: i32 = 100;

#[derive(Clone, Debug)]
pub struct DelaySpec {
    pub workspace: String,
    /// Events per second the writer causes.
    pub rate: u64,
    /// Events per write call.
    pub batch: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

impl DelaySpec {
    /// The time between two of the writer's calls.
    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(self.batch as f64 / self.rate.max(1) as f64)
    }
}

/// What a write call answers and a listed event carries alike, to match them by.
#[derive(Clone, Copy, Debug)]
pub enum MatchBy {
    /// The event's id (the writer made the events).
    EventId,
    /// The id of what the event is about (the writer created it, the service recorded it).
    TargetId,
}

impl MatchBy {
    fn key(self, event: &pb::AuditEvent) -> &str {
        match self {
            MatchBy::EventId => &event.event_id,
            MatchBy::TargetId => event.target.as_ref().map_or("", |target| &target.id),
        }
    }
}

#[derive(Debug, Default)]
pub struct DelayResult {
    /// Events of the calls that succeeded in the measured window (after the warm-up).
    pub measured: u64,
    /// Of those, the ones no ListEvents showed before the drain ended.
    pub unseen: u64,
    /// Call start to first listed, of the measured events seen.
    pub delays: Latencies,
    /// Latency of the measured write calls.
    pub writes: Latencies,
    pub write_errors: u64,
    pub list_errors: u64,
    pub first_error: Option<String>,
    /// ListEvents passes per second while the writer ran.
    pub lists_per_second: f64,
    /// Events per second the writer actually caused in the measured window.
    pub sent_per_second: f64,
}

/// When the call that caused each event started, and whether it counts (started after the
/// warm-up), by [`MatchBy`] key.
type Sent = Arc<Mutex<HashMap<String, (Instant, bool)>>>;

#[derive(Default)]
struct Writes {
    micros: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs the writer and the reader for `spec.warmup + spec.duration`, then lets the reader
/// drain. Each of the writer's calls is `write()`, answering the keys of the events it
/// caused; the reader lists over `lister` with the `reader` token.
pub async fn run<W, F>(
    spec: &DelaySpec,
    mut write: W,
    lister: Channel,
    reader: &MetadataValue<Ascii>,
    match_by: MatchBy,
) -> anyhow::Result<DelayResult>
where
    W: FnMut() -> F + Send + 'static,
    F: Future<Output = Result<Vec<String>, String>> + Send + 'static,
{
    let sent: Sent = Arc::default();
    let writes: Arc<Mutex<Writes>> = Arc::default();
    let started = Instant::now();
    let measure_from = started + spec.warmup;
    let stop_at = measure_from + spec.duration;

    let writer = {
        let period = spec.period();
        let sent = Arc::clone(&sent);
        let writes = Arc::clone(&writes);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut calls = tokio::task::JoinSet::new();
            loop {
                ticks.tick().await;
                let now = Instant::now();
                if now >= stop_at {
                    break;
                }
                let measured = now >= measure_from;
                let call = write();
                let sent = Arc::clone(&sent);
                let writes = Arc::clone(&writes);
                calls.spawn(async move {
                    let outcome = tokio::time::timeout(CALL_TIMEOUT, call)
                        .await
                        .unwrap_or_else(|_| Err(format!("no answer within {CALL_TIMEOUT:?}")));
                    let took = micros(now.elapsed());
                    match outcome {
                        Ok(keys) => {
                            if let Ok(mut sent) = sent.lock() {
                                for key in keys {
                                    sent.insert(key, (now, measured));
                                }
                            }
                            if let (true, Ok(mut writes)) = (measured, writes.lock()) {
                                writes.micros.push(took);
                            }
                        }
                        Err(error) => {
                            if let Ok(mut writes) = writes.lock() {
                                writes.errors += 1;
                                writes.first_error.get_or_insert(error);
                            }
                        }
                    }
                });
            }
            while calls.join_next().await.is_some() {}
        })
    };

    let mut client = AuditServiceClient::new(lister);
    let mut seen: HashMap<String, Instant> = HashMap::new();
    let mut watermark = -1i64;
    let mut list_errors = 0u64;
    let mut first_error = None;
    let mut passes_while_writing = 0u64;
    let mut drain_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if drain_until.is_none() && writer.is_finished() {
            drain_until = Some(now + DRAIN);
        }
        if let Some(until) = drain_until {
            let all_seen = sent
                .lock()
                .map(|sent| sent.keys().all(|id| seen.contains_key(id)))
                .unwrap_or(true);
            if all_seen || now >= until {
                break;
            }
        } else {
            passes_while_writing += 1;
        }
        match pass(&mut client, reader, &spec.workspace, watermark, match_by).await {
            Ok((new, highest)) => {
                let at = Instant::now();
                for id in new {
                    seen.entry(id).or_insert(at);
                }
                watermark = watermark.max(highest);
            }
            Err(error) => {
                list_errors += 1;
                first_error.get_or_insert(error);
            }
        }
    }
    writer.await?;

    let sent = std::mem::take(&mut *sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let writes = std::mem::take(&mut *writes.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let (delays, measured, unseen) = delays(&sent, &seen);
    let writing = stop_at.saturating_duration_since(started);
    Ok(DelayResult {
        measured,
        unseen,
        delays: Latencies::from_unsorted(delays),
        writes: Latencies::from_unsorted(writes.micros),
        write_errors: writes.errors,
        list_errors,
        first_error: writes.first_error.or(first_error),
        lists_per_second: passes_while_writing as f64 / writing.as_secs_f64().max(1e-9),
        sent_per_second: measured as f64 / spec.duration.as_secs_f64().max(1e-9),
    })
}

/// One pass of the reader: the newest pages down to `watermark`; answers the keys of the
/// events above it and the highest leaf listed.
async fn pass(
    client: &mut AuditServiceClient<Channel>,
    reader: &MetadataValue<Ascii>,
    workspace: &str,
    watermark: i64,
    match_by: MatchBy,
) -> Result<(Vec<String>, i64), String> {
    let mut new = Vec::new();
    let mut highest = watermark;
    let mut page_token = String::new();
    loop {
        let request = service::authorized(
            reader,
            pb::ListEventsRequest {
                workspace_id: workspace.to_owned(),
                page_size: PAGE_SIZE,
                page_token,
                ..pb::ListEventsRequest::default()
            },
        );
        let page = tokio::time::timeout(CALL_TIMEOUT, client.list_events(request))
            .await
            .map_err(|_| format!("no answer within {CALL_TIMEOUT:?}"))?
            .map_err(|status| format!("{status:?}"))?
            .into_inner();
        let leaves: Vec<(i64, &str)> = page
            .events
            .iter()
            .map(|event| (event.leaf_index, match_by.key(event)))
            .collect();
        let (above, reached) = above_watermark(&leaves, watermark);
        if let Some((leaf, _)) = leaves.first() {
            highest = highest.max(*leaf);
        }
        new.extend(above.into_iter().map(str::to_owned));
        if reached || page.next_page_token.is_empty() {
            return Ok((new, highest));
        }
        page_token = page.next_page_token;
    }
}

/// The ids of a newest-first page listed above `watermark`, and whether the page reached
/// it (so older pages hold nothing new).
fn above_watermark<'a>(page: &[(i64, &'a str)], watermark: i64) -> (Vec<&'a str>, bool) {
    let above: Vec<&str> = page
        .iter()
        .take_while(|(leaf, _)| *leaf > watermark)
        .map(|(_, id)| *id)
        .collect();
    let reached = above.len() < page.len();
    (above, reached)
}

/// The delays in µs of the measured events that were seen, how many were measured, and how
/// many of those were never seen.
fn delays(
    sent: &HashMap<String, (Instant, bool)>,
    seen: &HashMap<String, Instant>,
) -> (Vec<u32>, u64, u64) {
    let mut delays = Vec::new();
    let mut measured = 0u64;
    let mut unseen = 0u64;
    for (id, (at, counts)) in sent {
        if !counts {
            continue;
        }
        measured += 1;
        match seen.get(id) {
            Some(listed) => delays.push(micros(listed.saturating_duration_since(*at))),
            None => unseen += 1,
        }
    }
    (delays, measured, unseen)
}

fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_stops_at_the_highest_leaf_seen_before() {
        let page = [(9, "i"), (8, "h"), (7, "g"), (6, "f")];
        assert_eq!(above_watermark(&page, 7), (vec!["i", "h"], true));
        // The whole page is new: the next page may hold more.
        assert_eq!(above_watermark(&page, 5), (vec!["i", "h", "g", "f"], false));
        assert_eq!(above_watermark(&page, 9), (vec![], true));
        assert_eq!(above_watermark(&[], -1), (vec![], false));
    }

    #[test]
    fn only_events_sent_after_the_warm_up_count_and_unseen_ones_are_counted_apart() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let sent: HashMap<String, (Instant, bool)> = [
            ("warm".to_owned(), (at(0), false)),
            ("a".to_owned(), (at(10), true)),
            ("b".to_owned(), (at(20), true)),
            ("lost".to_owned(), (at(30), true)),
        ]
        .into();
        let seen: HashMap<String, Instant> = [
            ("warm".to_owned(), at(5)),
            ("a".to_owned(), at(15)),
            ("b".to_owned(), at(60)),
        ]
        .into();
        let (mut micros, measured, unseen) = delays(&sent, &seen);
        micros.sort_unstable();
        assert_eq!(micros, vec![5_000, 40_000]);
        assert_eq!((measured, unseen), (3, 1));
    }

    #[test]
    fn events_are_matched_by_their_id_or_by_what_they_are_about() {
        let event = pb::AuditEvent {
            event_id: "event-1".into(),
            target: Some(pb::Target {
                r#type: "end_user".into(),
                id: "user-1".into(),
            }),
            ..pb::AuditEvent::default()
        };
        assert_eq!(MatchBy::EventId.key(&event), "event-1");
        assert_eq!(MatchBy::TargetId.key(&event), "user-1");
        assert_eq!(MatchBy::TargetId.key(&pb::AuditEvent::default()), "");
    }

    #[test]
    fn the_writer_spaces_its_calls_to_keep_the_rate() {
        let spec = DelaySpec {
            workspace: "w".into(),
            rate: 1000,
            batch: 10,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
        };
        assert_eq!(spec.period(), Duration::from_millis(10));
    }
}
