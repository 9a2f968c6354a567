//! WatchEvents: a workspace's log as a server stream, in leaf order.
//!
//! The cursor is the leaf index, and leaves are numbered without gaps by appends that hold
//! the log's head (`store::logs::lock`) and commit the head with the rows: every leaf below
//! a committed head's size has its row. So a stream reads the head, sends the leaves from
//! its cursor to that size, and moves the cursor there; nothing that commits later can land
//! below it. It wakes when this replica commits an append and polls the head for what other
//! replicas commit.

use std::time::Duration;

use roster_proto::audit::v1 as pb;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::convert;
use crate::service::Audit;

/// How often the head is read for other replicas' appends.
const POLL: Duration = Duration::from_secs(1);
/// The most time between two messages.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Streams end after this (and at once when shutdown begins), so watchers spread over
/// replicas as they come and go.
const MAX_AGE: Duration = Duration::from_secs(600);
/// Events per message at most.
const BATCH: u64 = 500;

pub type EventStream = ReceiverStream<Result<pb::EventBatch, Status>>;

/// The stream of `workspace_id`'s events from leaf `next` on.
pub(super) fn watch(
    audit: &Audit,
    closing: roster_service::Closing,
    workspace_id: String,
    next: u64,
) -> EventStream {
    let (sender, receiver) = mpsc::channel(4);
    let audit = audit.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = feed(audit, sender, workspace_id, next) => {}
            () = closing.begun() => {}
        }
    });
    ReceiverStream::new(receiver)
}

async fn feed(
    audit: Audit,
    sender: mpsc::Sender<Result<pb::EventBatch, Status>>,
    workspace_id: String,
    mut next: u64,
) {
    let opened = Instant::now();
    let mut appends = audit.appends();
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_sent: Option<Instant> = None;
    loop {
        if opened.elapsed() >= MAX_AGE {
            return;
        }
        let size = match audit.tree_size(&workspace_id).await {
            Ok(size) => size,
            Err(error) => {
                let _ = sender.send(Err(Status::from(error))).await;
                return;
            }
        };
        let idle = last_sent.is_none_or(|sent| sent.elapsed() >= HEARTBEAT);
        if next < size || idle {
            loop {
                // `max`: a head wound back by hand must not make the range run backwards.
                let to = size.min(next + BATCH).max(next);
                let events = match audit.leaves(&workspace_id, next, to).await {
                    Ok(events) => events,
                    Err(error) => {
                        let _ = sender.send(Err(Status::from(error))).await;
                        return;
                    }
                };
                let batch = pb::EventBatch {
                    events: events.into_iter().map(convert::event).collect(),
                    tree_size: i64::try_from(size).unwrap_or(i64::MAX),
                };
                if sender.send(Ok(batch)).await.is_err() {
                    return;
                }
                next = to;
                if next >= size {
                    break;
                }
            }
            last_sent = Some(Instant::now());
        }
        tokio::select! {
            changed = appends.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = ticks.tick() => {}
        }
    }
}
