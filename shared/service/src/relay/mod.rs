//! The relay: delivers a producer's outbox (`roster_db::outbox`) to the audit service.
//!
//! Each replica of a producing service (the directory, the staff service) runs one, as a
//! background task beside its routes, and they share the work through the outbox's claims
//! (`roster_db::delivery`):
//!
//! 1. claim up to a batch of due rows in a write transaction of its own, committed before
//!    sending, so the lease keeps other replicas off them while they are in flight;
//! 2. convert them ([`convert`]) and send them in outbox order: runs of events with
//!    `AppendEvents` (split so no request nears the server's message limit), an erasure
//!    request with `EraseSubject`;
//! 3. mark them delivered only after the audit service acknowledged them.
//!
//! A failure that is not the events' (the audit service unreachable, overloaded, slow, or
//! refusing the token) puts the rows back for later ([`roster_db::delivery::retry_later`],
//! never a dead letter) and backs the whole loop off, exponentially up to a cap. A refusal
//! of the events themselves (INVALID_ARGUMENT, ALREADY_EXISTS `EVENT_ID_REUSED`,
//! FAILED_PRECONDITION, PERMISSION_DENIED) refuses a whole batch, since AppendEvents is all
//! or nothing; the relay then sends that batch's events one by one, delivers those accepted
//! and [`roster_db::delivery::reject`]s only those refused, which become dead letters after
//! the policy's attempts.
//!
//! Delivery is at least once (a relay that dies between the acknowledgement and marking the
//! rows leaves them to be sent again when the lease ends); the audit service ingests by
//! event id, so the log holds every event exactly once.
//!
//! Beside the loop: the backlog (pending rows, dead letters, and the lag, now minus the
//! oldest pending event's time) is measured every few seconds into [`RelayStatus`],
//! reported as the health part [`HEALTH_NAME`] and logged while the lag is above its alert;
//! delivered rows are purged once older than the retention.

pub mod convert;
pub mod settings;
pub mod tokens;

pub use settings::RelaySettings;
pub use tokens::{SignerFuture, SigningKeys, TokenSource};

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use prost::Message as _;
use roster_core::Clock;
use roster_db::Db;
use roster_db::delivery::{self, Claimed};
use roster_proto::audit::v1 as pb;
use roster_proto::audit::v1::audit_service_client::AuditServiceClient;
use roster_runtime::HealthHandle;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt as _;
use tracing::Instrument as _;

use crate::{Closing, RouteParts, ServiceDef};
use convert::Outgoing;

/// The service the relay calls, as OpenTelemetry's `rpc.service` names it.
const AUDIT_SERVICE: &str = "roster.audit.v1.AuditService";
/// The health name under which a relay reports: SERVING while the delivery lag is within
/// `…AUDIT_LAG_ALERT`. Apart from "", so a slow audit service does not take producers out
/// of rotation: they keep serving writes, whose events wait in the outbox.
pub const HEALTH_NAME: &str = "roster.audit.Relay";
/// How often the backlog is measured.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// How often a lag above the alert is logged again.
const LAG_LOG_EVERY: u32 = 6;
/// How often delivered rows past the retention are purged, and how many at a time.
const PURGE_EVERY: Duration = Duration::from_secs(600);
const PURGE_CHUNK: u64 = 1000;
/// AppendEvents requests are cut at this size, far below the servers' 4 MiB default, so
/// a batch of large changes still goes through (each event is at most a few hundred KiB).
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// The longest a call to the audit service may take; also bounded by half the lease.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an error's text kept in `outbox_events.last_error`.
const MAX_ERROR_CHARS: usize = 500;

/// What a relay's outbox looks like, for health, logs and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayFigures {
    /// Rows waiting to be delivered (not dead).
    pub pending: u64,
    /// Dead letters waiting for an operator (`roster_db::delivery::retry_dead`).
    pub dead: u64,
    /// Now minus when the oldest pending event happened; `None` with nothing pending.
    pub lag: Option<Duration>,
    /// Rows this relay delivered since it started.
    pub delivered: u64,
    /// Rows this relay made dead letters since it started.
    pub dead_lettered: u64,
    /// Why the last pass failed; `None` once one succeeds.
    pub last_error: Option<String>,
    /// When the backlog was last measured (Unix µs); 0 before the first time.
    pub measured_at_us: i64,
}

/// A relay's figures as it runs; clones share them.
#[derive(Clone, Debug, Default)]
pub struct RelayStatus(Arc<Mutex<RelayFigures>>);

impl RelayStatus {
    pub fn figures(&self) -> RelayFigures {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, change: impl FnOnce(&mut RelayFigures)) {
        change(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// One producer's relay; run it with [`Relay::run`] (or [`Relay::serve_with`]).
pub struct Relay {
    source: &'static str,
    db: Db,
    clock: Arc<dyn Clock>,
    settings: RelaySettings,
    url: String,
    channel: Channel,
    audit: AuditServiceClient<Channel>,
    tokens: TokenSource,
    status: RelayStatus,
}

impl Relay {
    /// The relay of the service `def` over its database, delivering where `settings` say
    /// with tokens from `tokens`. `None` when no audit URL is set: then events wait in the
    /// outbox, which is logged once as a warning.
    ///
    /// # Errors
    ///
    /// The URL is not usable.
    pub fn new(
        def: &ServiceDef,
        db: Db,
        clock: Arc<dyn Clock>,
        settings: RelaySettings,
        tokens: TokenSource,
    ) -> anyhow::Result<Option<Self>> {
        let Some(url) = settings.url.clone() else {
            warn_disabled(def);
            return Ok(None);
        };
        let channel = Endpoint::from_shared(url.clone())
            .with_context(|| format!("{}AUDIT_URL: '{url}'", def.env_prefix()))?
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        let status = RelayStatus::default();
        let figures = status.clone();
        roster_runtime::metrics::observe_outbox(def.name, move || {
            let RelayFigures {
                pending,
                dead,
                lag,
                delivered,
                ..
            } = figures.figures();
            roster_runtime::metrics::OutboxUsage {
                pending,
                dead,
                lag: lag.unwrap_or_default(),
                delivered,
            }
        });
        Ok(Some(Self {
            source: def.name,
            db,
            clock,
            settings,
            url,
            audit: AuditServiceClient::new(channel.clone()),
            channel,
            tokens,
            status,
        }))
    }

    /// The relay of a service that does not sign tokens (the directory), from its
    /// `ROSTER_<NAME>_AUDIT_…` settings: tokens from the staff service for the platform
    /// service account of `…AUDIT_CLIENT_ID`. `None` without `…AUDIT_URL`.
    ///
    /// # Errors
    ///
    /// Bad settings, an audit URL without client credentials, or client credentials
    /// without `ROSTER_AUTH_STAFF_URL` to ask.
    pub fn from_env(
        def: &ServiceDef,
        parts: &RouteParts,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Option<Self>> {
        let settings = RelaySettings::from_env(&def.env_prefix())?;
        if settings.url.is_none() {
            warn_disabled(def);
            return Ok(None);
        }
        let prefix = def.env_prefix();
        let Some((client_id, client_secret)) = settings.client.clone() else {
            anyhow::bail!(
                "{prefix}AUDIT_CLIENT_ID and {prefix}AUDIT_CLIENT_SECRET: required with {prefix}AUDIT_URL; create a platform service account (workspaces [\"*\"], permissions audit_log.append and audit_log.erase, plus audit_log.view for the directory's ExportUser) for the {}'s relay",
                def.name
            );
        };
        let Some(staff) = &parts.staff else {
            anyhow::bail!(
                "{prefix}AUDIT_CLIENT_ID: the relay's tokens come from the staff service; set ROSTER_AUTH_STAFF_URL"
            );
        };
        let tokens = TokenSource::client_credentials(staff.channel(), client_id, client_secret);
        Self::new(def, parts.db.clone(), clock, settings, tokens)
    }

    /// A reader of the same audit service, over the relay's connection, with tokens from
    /// the same origin for reading ([`TokenSource::for_reading`]).
    pub fn reader(&self) -> crate::audit_reader::AuditReader {
        crate::audit_reader::AuditReader::new(self.channel.clone(), self.tokens.for_reading())
    }

    /// The figures this relay keeps current.
    pub fn status(&self) -> RelayStatus {
        self.status.clone()
    }

    /// `routes` with this relay running beside them, reporting on their health, until
    /// their server begins to shut down.
    pub fn serve_with(self, mut routes: crate::ServiceRoutes) -> crate::ServiceRoutes {
        let closing = routes.closing();
        routes.with_health_task(move |health| self.run(Some(health), closing))
    }

    /// Delivers until `closing` (finishing the batch in hand), measuring the backlog and
    /// purging delivered rows meanwhile.
    pub async fn run(self, health: Option<HealthHandle>, closing: Closing) {
        tracing::info!(
            source = self.source,
            url = %self.url,
            tokens = self.tokens.describe(),
            batch = self.settings.batch,
            "relaying audit events from the outbox"
        );
        let beside = async { tokio::join!(self.report(health), self.purge()) };
        tokio::select! {
            () = self.deliver(closing) => {}
            _ = beside => {}
        }
        tracing::info!(source = self.source, "the relay stopped");
    }

    async fn deliver(&self, closing: Closing) {
        let mut failures = 0u32;
        while !closing.has_begun() {
            let wait = match self.pass().await {
                Ok(Pass::Full) => {
                    failures = 0;
                    continue;
                }
                Ok(Pass::Idle) => {
                    failures = 0;
                    self.settings.poll_interval
                }
                Err(why) => {
                    failures = failures.saturating_add(1);
                    let wait = self.backoff(failures);
                    tracing::warn!(source = self.source, error = %why, failures, retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "delivering audit events failed; they wait in the outbox");
                    self.status.update(|figures| figures.last_error = Some(why));
                    wait
                }
            };
            // A dropped sender counts as closing too, rather than waking the loop forever.
            let closed = tokio::select! {
                () = tokio::time::sleep(wait) => false,
                () = closing.clone().begun() => true,
            };
            if closed {
                return;
            }
        }
    }

    /// The loop's wait after `failures` failed passes in a row.
    fn backoff(&self, failures: u32) -> Duration {
        let policy = &self.settings.policy;
        policy
            .first_backoff
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(20)))
            .min(policy.max_backoff)
    }

    /// One claim and its delivery.
    async fn pass(&self) -> Result<Pass, String> {
        let claimed = self
            .claim()
            .await
            .map_err(|error| format!("claiming outbox rows: {error}"))?;
        if claimed.is_empty() {
            return Ok(Pass::Idle);
        }
        let full = u64::try_from(claimed.len()).unwrap_or(u64::MAX) >= self.settings.batch;
        self.send_in_order(claimed).await?;
        self.status.update(|figures| figures.last_error = None);
        Ok(if full { Pass::Full } else { Pass::Idle })
    }

    async fn claim(&self) -> roster_db::Result<Vec<Claimed>> {
        let txn = self.db.begin_write().await?;
        let claimed = delivery::claim(
            &*txn,
            self.settings.batch,
            self.clock.now_us(),
            self.settings.policy.lease,
        )
        .await?;
        txn.commit().await?;
        Ok(claimed)
    }

    /// Sends `claimed` in outbox order: runs of events, each erasure request in its place,
    /// so an erasure covers every event the outbox held before it. After a failure that is
    /// not the rows', every row not yet settled goes back to wait, and the error returns.
    async fn send_in_order(&self, claimed: Vec<Claimed>) -> Result<(), String> {
        let rows: Vec<(Claimed, Outgoing)> = claimed
            .into_iter()
            .map(|row| {
                let outgoing = convert::outgoing(&row.event, self.source);
                (row, outgoing)
            })
            .collect();
        let mut settled = 0;
        while settled < rows.len() {
            let rest = &rows[settled..];
            let step = if let (row, Outgoing::Erase(request)) = &rest[0] {
                self.erase(row, request.clone()).await.map(|()| 1)
            } else {
                let run = rest
                    .iter()
                    .take_while(|(_, outgoing)| matches!(outgoing, Outgoing::Append(_)))
                    .count();
                let chunk = request_sized(&rest[..run]);
                self.append(&rest[..chunk]).await.map(|()| chunk)
            };
            match step {
                Ok(done) => settled += done,
                Err(why) => {
                    let unsettled: Vec<Claimed> =
                        rows[settled..].iter().map(|(row, _)| row.clone()).collect();
                    self.settle(Settle::Later(&unsettled, &why)).await?;
                    return Err(why);
                }
            }
        }
        Ok(())
    }

    /// Appends `rows` (all `Outgoing::Append`) as one request; a refused request is sent
    /// again event by event so only the refused events are rejected. `Err` is a failure
    /// that is not the events' (their rows are not settled).
    async fn append(&self, rows: &[(Claimed, Outgoing)]) -> Result<(), String> {
        let events = |rows: &[(Claimed, Outgoing)]| -> Vec<pb::AuditEvent> {
            rows.iter()
                .filter_map(|(_, outgoing)| match outgoing {
                    Outgoing::Append(event) => Some((**event).clone()),
                    Outgoing::Erase(_) => None,
                })
                .collect()
        };
        let claimed = |rows: &[(Claimed, Outgoing)]| -> Vec<Claimed> {
            rows.iter().map(|(row, _)| row.clone()).collect()
        };
        let status = match self.call_append(rows, events(rows)).await {
            Ok(()) => return self.settle(Settle::Delivered(&claimed(rows))).await,
            Err(status) => status,
        };
        let refusal = self.classify(&status).await?;
        if rows.len() == 1 {
            return self.settle(Settle::Refused(&claimed(rows), &refusal)).await;
        }
        tracing::warn!(source = self.source, error = %refusal, events = rows.len(), "the audit service refused a batch; sending its events one by one to find the refused ones");
        for (at, row) in rows.iter().enumerate() {
            let one = std::slice::from_ref(row);
            let result = match self.call_append(one, events(one)).await {
                Ok(()) => self.settle(Settle::Delivered(&claimed(one))).await,
                Err(status) => match self.classify(&status).await {
                    Ok(refusal) => self.settle(Settle::Refused(&claimed(one), &refusal)).await,
                    Err(why) => Err(why),
                },
            };
            if let Err(why) = result {
                // Those before are settled; this one and the rest wait.
                self.settle(Settle::Later(&claimed(&rows[at..]), &why))
                    .await?;
                return Err(why);
            }
        }
        Ok(())
    }

    async fn erase(&self, row: &Claimed, request: pb::EraseSubjectRequest) -> Result<(), String> {
        let one = std::slice::from_ref(row);
        match self
            .call(
                "EraseSubject",
                one.iter(),
                |mut audit, request| async move { audit.erase_subject(request).await.map(|_| ()) },
                request,
            )
            .await
        {
            Ok(()) => self.settle(Settle::Delivered(one)).await,
            Err(status) => {
                let refusal = self.classify(&status).await?;
                self.settle(Settle::Refused(one, &refusal)).await
            }
        }
    }

    async fn call_append(
        &self,
        rows: &[(Claimed, Outgoing)],
        events: Vec<pb::AuditEvent>,
    ) -> Result<(), Status> {
        self.call(
            "AppendEvents",
            rows.iter().map(|(row, _)| row),
            |mut audit, request| async move { audit.append_events(request).await.map(|_| ()) },
            pb::AppendEventsRequest { events },
        )
        .await
    }

    /// One call with the relay's token and deadline, in a client span that continues the
    /// traces of the requests that wrote `rows` ([`roster_runtime::continue_writers`]) and
    /// whose context the call carries (`traceparent`), so the audit service's ingest joins
    /// them. A token that cannot be had is UNAVAILABLE: the rows are fine, the relay waits.
    async fn call<'a, M, F, Fut>(
        &self,
        method: &'static str,
        rows: impl Iterator<Item = &'a Claimed>,
        send: F,
        message: M,
    ) -> Result<(), Status>
    where
        F: FnOnce(AuditServiceClient<Channel>, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<(), Status>>,
    {
        let span = tracing::info_span!(
            "audit_delivery",
            otel.name = %format_args!("{AUDIT_SERVICE}/{method}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = AUDIT_SERVICE,
            rpc.method = method,
            rpc.grpc.status_code = tracing::field::Empty,
            source = self.source,
            events = tracing::field::Empty,
        );
        let mut events = 0u64;
        roster_runtime::continue_writers(
            &span,
            rows.inspect(|_| events += 1)
                .filter_map(|row| row.event.traceparent.as_deref()),
        );
        span.record("events", events);
        let result = async {
            let mut request = self.tokens.request(message).await.map_err(|error| {
                Status::unavailable(format!("no token for the audit service: {error:#}"))
            })?;
            request.set_timeout(CALL_TIMEOUT.min(self.settings.policy.lease / 2));
            roster_runtime::inject_trace_context(request.metadata_mut());
            send(self.audit.clone(), request).await
        }
        .instrument(span.clone())
        .await;
        let code = match &result {
            Ok(()) => Code::Ok,
            Err(status) => status.code(),
        };
        span.record("rpc.grpc.status_code", code as i32);
        if !matches!(
            code,
            Code::Ok | Code::InvalidArgument | Code::AlreadyExists | Code::FailedPrecondition
        ) {
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    /// `Ok` with the refusal's text when the audit service refused the events themselves;
    /// `Err` with the failure's when the fault lies elsewhere (after UNAUTHENTICATED the
    /// token is dropped, so the next attempt gets a new one).
    async fn classify(&self, status: &Status) -> Result<String, String> {
        let reason = status
            .get_error_details()
            .error_info()
            .map(|info| info.reason.clone())
            .unwrap_or_default();
        let text = truncate(format!(
            "{:?} {reason}: {}",
            status.code(),
            status.message()
        ));
        let refused = match status.code() {
            Code::InvalidArgument
            | Code::AlreadyExists
            | Code::FailedPrecondition
            | Code::PermissionDenied
            | Code::OutOfRange => true,
            // One event too large for any request is the event's fault; an overloaded
            // server (OVERLOADED) is not.
            Code::ResourceExhausted => reason == "MESSAGE_TOO_LARGE",
            Code::Unauthenticated => {
                self.tokens.forget().await;
                false
            }
            _ => false,
        };
        if refused { Ok(text) } else { Err(text) }
    }

    /// Records what became of `rows`, each in a write transaction of its own.
    async fn settle(&self, settle: Settle<'_>) -> Result<(), String> {
        let now = self.clock.now_us();
        let policy = &self.settings.policy;
        let result: roster_db::Result<()> = async {
            let txn = self.db.begin_write().await?;
            match settle {
                Settle::Delivered(rows) => {
                    delivery::mark_delivered(&*txn, rows, now).await?;
                    txn.commit().await?;
                    let count = u64::try_from(rows.len()).unwrap_or(u64::MAX);
                    self.status.update(|figures| figures.delivered += count);
                    tracing::debug!(source = self.source, delivered = rows.len(), "delivered audit events");
                }
                Settle::Refused(rows, why) => {
                    let died = delivery::reject(&*txn, rows, why, now, policy).await?;
                    txn.commit().await?;
                    for row in rows {
                        tracing::error!(source = self.source, event_id = %row.event.event_id, workspace_id = %row.event.workspace_id, action = %row.event.action, attempts = row.attempts, refusals = row.refusals + 1, dead = row.refusals + 1 >= policy.max_attempts, error = %why, "the audit service refused an event");
                    }
                    self.status.update(|figures| figures.dead_lettered += died);
                }
                Settle::Later(rows, why) => {
                    delivery::retry_later(&*txn, rows, why, now, policy).await?;
                    txn.commit().await?;
                }
            }
            Ok(())
        }
        .await;
        // Unrecorded, the rows come back when their lease ends: nothing is lost.
        result.map_err(|error| format!("recording a delivery in the outbox: {error}"))
    }

    /// Measures the backlog every few seconds: into the status, the health part, and the
    /// log while the lag is above its alert or dead letters appear.
    async fn report(&self, health: Option<HealthHandle>) {
        let mut ticks = tokio::time::interval(REPORT_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reported: Option<bool> = None;
        let mut lagging_ticks = 0u32;
        let mut dead_seen = 0u64;
        loop {
            ticks.tick().await;
            let backlog = match delivery::backlog(self.db.conn()).await {
                Ok(backlog) => backlog,
                Err(error) => {
                    tracing::warn!(source = self.source, %error, "measuring the outbox backlog failed");
                    continue;
                }
            };
            let now = self.clock.now_us();
            let lag = backlog.oldest_pending_at.map(|at| {
                Duration::from_micros(u64::try_from(now.saturating_sub(at)).unwrap_or(0))
            });
            self.status.update(|figures| {
                figures.pending = backlog.pending;
                figures.dead = backlog.dead;
                figures.lag = lag;
                figures.measured_at_us = now;
            });
            let lagging = lag.is_some_and(|lag| lag > self.settings.lag_alert);
            if let Some(health) = &health
                && reported != Some(!lagging)
            {
                health.set_part(HEALTH_NAME, !lagging).await;
            }
            reported = Some(!lagging);
            if lagging {
                if lagging_ticks.is_multiple_of(LAG_LOG_EVERY) {
                    let figures = self.status.figures();
                    tracing::warn!(
                        source = self.source,
                        pending = backlog.pending,
                        dead = backlog.dead,
                        lag_secs = lag.map(|lag| lag.as_secs()),
                        lag_alert_secs = self.settings.lag_alert.as_secs(),
                        last_error = figures.last_error.as_deref().unwrap_or(""),
                        "audit events are waiting in the outbox longer than the lag alert"
                    );
                }
                lagging_ticks = lagging_ticks.wrapping_add(1);
            } else {
                lagging_ticks = 0;
            }
            if backlog.dead > dead_seen {
                tracing::error!(
                    source = self.source,
                    dead = backlog.dead,
                    "the outbox holds dead letters: events the audit service refused (see outbox_events.last_error); fix the cause, then retry them"
                );
            }
            dead_seen = backlog.dead;
        }
    }

    /// Deletes delivered rows older than the retention, now and every ten minutes; several
    /// replicas doing so at once delete each row once.
    async fn purge(&self) {
        let retention = i64::try_from(self.settings.retention.as_micros()).unwrap_or(i64::MAX);
        let mut ticks = tokio::time::interval(PURGE_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let before = self.clock.now_us().saturating_sub(retention);
            let mut purged = 0;
            loop {
                let chunk: roster_db::Result<u64> = async {
                    let txn = self.db.begin_write().await?;
                    let deleted = delivery::purge_delivered(&*txn, before, PURGE_CHUNK).await?;
                    txn.commit().await?;
                    Ok(deleted)
                }
                .await;
                match chunk {
                    Ok(deleted) => {
                        purged += deleted;
                        if deleted < PURGE_CHUNK {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(source = self.source, %error, "purging delivered outbox rows failed");
                        break;
                    }
                }
            }
            if purged > 0 {
                tracing::info!(source = self.source, purged, "purged delivered outbox rows");
            }
        }
    }
}

/// How a pass ended.
enum Pass {
    /// Fewer rows than a batch were due: wait for the poll interval.
    Idle,
    /// A full batch: more may be due, claim again at once.
    Full,
}

enum Settle<'a> {
    Delivered(&'a [Claimed]),
    Refused(&'a [Claimed], &'a str),
    Later(&'a [Claimed], &'a str),
}

/// How many of `rows` (events to append) fit in one request.
fn request_sized(rows: &[(Claimed, Outgoing)]) -> usize {
    let mut bytes = 0;
    for (at, (_, outgoing)) in rows.iter().enumerate() {
        let size = match outgoing {
            Outgoing::Append(event) => event.encoded_len() + 8,
            Outgoing::Erase(_) => 0,
        };
        bytes += size;
        if bytes > MAX_REQUEST_BYTES && at > 0 {
            return at;
        }
    }
    rows.len()
}

fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_ERROR_CHARS) {
        text.truncate(cut);
    }
    text
}

fn warn_disabled(def: &ServiceDef) {
    tracing::warn!(
        "{}AUDIT_URL is unset: the {}'s audit events wait in its outbox until a relay delivers them",
        def.env_prefix(),
        def.name
    );
}
