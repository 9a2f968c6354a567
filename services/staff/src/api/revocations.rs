//! WatchRevocations: the feed as a server stream, polled from the database so that every
//! replica publishes what any replica committed.

use std::collections::HashMap;
use std::time::Duration;

use roster_proto::staff::v1 as pb;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::convert;
use crate::entity::token_revocation;
use crate::service::Staff;

/// How often the feed looks for new rows: the delay a revocation takes to reach services.
const POLL: Duration = Duration::from_millis(500);
/// The most time between two messages; a follower counts from the last one.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Rows are read again for this long after they were stamped: a transaction stamps
/// `revoked_at` before it commits, so a row can appear after later-stamped ones. Re-reading
/// is cheap (the feed is small) and rows already sent are not sent again.
const LOOKBACK_US: i64 = 60 * 1_000_000;
/// Streams end after this (and at once when shutdown begins), so followers regularly start
/// from a fresh snapshot and spread over replicas as they come and go.
const MAX_AGE: Duration = Duration::from_secs(20);

pub type RevocationStream = ReceiverStream<Result<pb::RevocationBatch, Status>>;

pub(super) fn watch(staff: &Staff, closing: roster_service::Closing) -> RevocationStream {
    let (sender, receiver) = mpsc::channel(4);
    let staff = staff.clone();
    tokio::spawn(async move {
        // Shutdown ends the stream: followers reconnect to another replica at once.
        tokio::select! {
            () = feed(staff, sender) => {}
            () = closing.begun() => {}
        }
    });
    ReceiverStream::new(receiver)
}

fn batch(staff: &Staff, snapshot: bool, rows: &[token_revocation::Model]) -> pb::RevocationBatch {
    pb::RevocationBatch {
        snapshot,
        revocations: rows
            .iter()
            .map(|row| pb::Revocation {
                subject: row.subject.clone(),
                min_generation: row.min_generation,
                revoked_at: Some(convert::timestamp(row.revoked_at)),
            })
            .collect(),
        sent_at: Some(convert::timestamp(staff.now())),
    }
}

async fn feed(staff: Staff, sender: mpsc::Sender<Result<pb::RevocationBatch, Status>>) {
    let opened = Instant::now();
    let retention = i64::try_from(staff.revocation_retention().as_micros()).unwrap_or(i64::MAX);
    let started_at = staff.now();
    let snapshot = match staff
        .revocations_since(started_at.saturating_sub(retention))
        .await
    {
        Ok(rows) => rows,
        Err(error) => {
            let _ = sender.send(Err(Status::from(error))).await;
            return;
        }
    };
    // What was sent, by row, until it falls out of the look-back window.
    let mut sent: HashMap<(String, i64), i64> = snapshot
        .iter()
        .map(|row| ((row.subject.clone(), row.min_generation), row.revoked_at))
        .collect();
    if sender
        .send(Ok(batch(&staff, true, &snapshot)))
        .await
        .is_err()
    {
        return;
    }
    let mut last_sent = Instant::now();
    let mut from = started_at.saturating_sub(LOOKBACK_US);
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if opened.elapsed() >= MAX_AGE {
            return;
        }
        let polled_at = staff.now();
        let rows = match staff.revocations_since(from).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "revocation feed could not read the database; ending the stream");
                let _ = sender.send(Err(Status::from(error))).await;
                return;
            }
        };
        from = polled_at.saturating_sub(LOOKBACK_US);
        sent.retain(|_, revoked_at| *revoked_at >= from);
        let fresh: Vec<_> = rows
            .into_iter()
            .filter(|row| {
                sent.insert((row.subject.clone(), row.min_generation), row.revoked_at)
                    .is_none()
            })
            .collect();
        if fresh.is_empty() && last_sent.elapsed() < HEARTBEAT {
            continue;
        }
        if sender.send(Ok(batch(&staff, false, &fresh))).await.is_err() {
            return;
        }
        last_sent = Instant::now();
    }
}
