//! `roster-bench audit`: the audit service on SQLite (default) or PostgreSQL — AppendEvents'
//! ingest rate by batch size, the delay until an appended event is listable, the delay
//! from a directory write through its outbox and relay until its event is listable,
//! ListEvents' first page, GetInclusionProof and VerifyLog on a large log, and beside
//! VerifyLog the bare RFC 6962 root over the log's stored leaf hashes (SHA-256 only), as
//! the audit issue asks for both.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use roster_audit::domain::tree::{EMPTY_ROOT, Hash, leaf_stored_index, node_hash};
use roster_db::{Db, DbSettings};
use roster_proto::audit::v1 as pb;
use roster_proto::audit::v1::audit_service_client::AuditServiceClient;
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::audit_delay::{self, DelayResult, DelaySpec, MatchBy};
use crate::audit_e2e::{self, EndToEnd};
use crate::audit_service::{self, AuditService, EventSource, TARGETS};
use crate::cpu;
use crate::harness::{self, CLIENT_THREADS, Databases, SERVER_THREADS, channels, progress};
use crate::load::{self, LoadResult, LoadSpec};
use crate::pg;
use crate::report::{self, Check, Table};
use crate::service;

/// The most events one AppendEvents may carry (`roster_audit::api::MAX_BATCH`): the
/// batch the large log is loaded in.
const LOAD_BATCH: usize = roster_audit::api::MAX_BATCH;
/// Event ids of the large log kept for GetInclusionProof, spread evenly over it.
const PROOF_IDS: u64 = 65_536;
/// Leaves whose stored hashes are read per query for the bare root.
const HASH_PAGE: u64 = 100_000;
/// The large log's workspace.
const LARGE: &str = "bench-large";
/// The longest one call of the loading or of VerifyLog may take.
const LONG_CALL: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub struct Options {
    /// A PostgreSQL admin URL; `None` measures on a SQLite file.
    pub postgres_url: Option<String>,
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: usize,
    pub pool_size: u32,
    pub keep_databases: bool,
    pub server_threads: usize,
    pub client_threads: usize,
    pub batch_sizes: Vec<usize>,
    pub concurrency: usize,
    pub workspaces: usize,
    pub delay_rate: u64,
    pub delay_batch: usize,
    pub log_events: u64,
    pub load_concurrency: usize,
    pub verify_runs: usize,
    pub ingest: bool,
    pub delay: bool,
    pub e2e: bool,
    pub list: bool,
    pub proofs: bool,
    pub verify: bool,
}

impl Options {
    fn large_log(&self) -> bool {
        self.list || self.proofs || self.verify
    }
}

/// How the events of one ingest cell spread over workspaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Every call to one workspace: all appends take turns on its head.
    One,
    /// Each call to one of several workspaces (worker w to workspace w mod n): producers
    /// of several tenants at once.
    Spread,
    /// Every call spans the workspaces, as a relay's batch from an outbox shared by
    /// tenants does: each call locks and signs every log it touches.
    Mixed,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::One => "one",
            Layout::Spread => "spread",
            Layout::Mixed => "mixed",
        }
    }

    fn describe(self, workspaces: usize) -> String {
        match self {
            Layout::One => "1 workspace".to_owned(),
            Layout::Spread => format!("{workspaces} workspaces, a call each"),
            Layout::Mixed => format!("{workspaces} workspaces in every call"),
        }
    }
}

struct IngestCell {
    batch: usize,
    layout: Layout,
    result: LoadResult,
}

impl IngestCell {
    fn events_per_second(&self) -> f64 {
        self.result.per_second() * self.batch as f64
    }
}

struct Loaded {
    events: u64,
    took: Duration,
    /// The end-users its events are about: `first_target + k` (mod [`TARGETS`]) for k
    /// below `targets`.
    first_target: u64,
    targets: u64,
}

impl Loaded {
    /// End-user `pick` (any number) among those the log's events are about.
    fn target(&self, pick: u64) -> String {
        audit_service::target_id((self.first_target + pick % self.targets.max(1)) % TARGETS)
    }
}

struct VerifyRun {
    took: Duration,
    events_checked: u64,
    server_cpu: Duration,
}

impl VerifyRun {
    fn rate(&self) -> f64 {
        self.events_checked as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

struct BareRoot {
    leaves: u64,
    /// Reading the event rows, as VerifyLog's query returns them, and nothing else: the
    /// floor of any verification that recomputes leaves from rows.
    rows_read: Duration,
    /// Reading the leaf hashes with the store's range query.
    read: Duration,
    /// The root over them, in memory, on one thread.
    compute: Duration,
}

struct Results {
    engine: String,
    load_before: String,
    load_after: String,
    ingest: Vec<IngestCell>,
    delay: Option<DelayResult>,
    e2e: Option<EndToEnd>,
    loaded: Option<Loaded>,
    list_first_page: Option<LoadResult>,
    list_by_target: Option<LoadResult>,
    proofs: Option<LoadResult>,
    floor: Option<LoadResult>,
    verify_runs: Vec<VerifyRun>,
    bare_root: Option<BareRoot>,
}

/// Where the service keeps its data in this run.
enum Storage {
    Sqlite { dir: PathBuf, keep: bool },
    Postgres(Databases),
}

impl Storage {
    fn new(options: &Options) -> anyhow::Result<Self> {
        Ok(match &options.postgres_url {
            Some(url) => Storage::Postgres(Databases::new(url, options.keep_databases)?),
            None => {
                let dir = std::env::temp_dir().join(format!(
                    "roster-bench-audit-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                ));
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                Storage::Sqlite {
                    dir,
                    keep: options.keep_databases,
                }
            }
        })
    }

    /// The database settings of the service `role` (`audit`) and a description of the
    /// engine.
    async fn database(
        &mut self,
        role: &str,
        pool_size: u32,
    ) -> anyhow::Result<(DbSettings, String)> {
        let (mut settings, engine) = match self {
            Storage::Sqlite { dir, .. } => {
                let path = dir.join(format!("{role}.db"));
                let settings = DbSettings::new(&format!("sqlite://{}?mode=rwc", path.display()));
                (settings, format!("SQLite file {}", path.display()))
            }
            Storage::Postgres(databases) => {
                let database = databases.create(role).await?;
                let mut conn = database.connection().await?;
                let (version, tls) = pg::server_info(&mut conn).await?;
                let engine = format!(
                    "PostgreSQL {version} on 127.0.0.1 (database {}, {})",
                    database.name,
                    if tls { "TLS" } else { "no TLS" }
                );
                (database.service_settings(), engine)
            }
        };
        settings.max_connections = pool_size;
        Ok((settings, engine))
    }

    async fn clean_up(self) {
        match self {
            Storage::Sqlite { dir, keep: true } => eprintln!("kept {}", dir.display()),
            Storage::Sqlite { dir, keep: false } => {
                if let Err(error) = std::fs::remove_dir_all(&dir) {
                    eprintln!("could not remove {}: {error}", dir.display());
                }
            }
            Storage::Postgres(databases) => databases.drop_all().await,
        }
    }
}

/// Runs the whole bench; its database is removed however it ends (Ctrl-C included).
pub async fn run(options: Options, server_runtime: tokio::runtime::Handle) -> anyhow::Result<()> {
    let mut storage = Storage::new(&options)?;
    let outcome = harness::interruptible(measure(&options, &server_runtime, &mut storage)).await;
    storage.clean_up().await;
    let results = outcome?;
    harness::report(&render(&options, &results), &error_summary(&results))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|line| {
            let fields: Vec<&str> = line.split_whitespace().take(3).collect();
            (fields.len() == 3).then(|| fields.join(" "))
        })
        .unwrap_or_else(|| "?".to_owned())
}

async fn measure(
    options: &Options,
    server_runtime: &tokio::runtime::Handle,
    storage: &mut Storage,
) -> anyhow::Result<Results> {
    let load_before = load_average();
    let (settings, engine) = storage.database("audit", options.pool_size).await?;
    let audit = AuditService::start(server_runtime, settings.clone()).await?;
    progress(format!(
        "the audit service is serving on {} (migrated; {engine})",
        audit.addr()
    ));
    let channels = channels(audit.addr(), options.connections).await?;
    let source = Arc::new(EventSource::default());
    let mut results = Results {
        engine,
        load_before,
        load_after: String::new(),
        ingest: Vec::new(),
        delay: None,
        e2e: None,
        loaded: None,
        list_first_page: None,
        list_by_target: None,
        proofs: None,
        floor: None,
        verify_runs: Vec::new(),
        bare_root: None,
    };

    if options.ingest {
        for &batch in &options.batch_sizes {
            for layout in [Layout::One, Layout::Spread, Layout::Mixed] {
                // A one-event call spans no workspaces; with one workspace there is
                // nothing to spread.
                if layout != Layout::One
                    && (options.workspaces < 2 || batch == 1 && layout == Layout::Mixed)
                {
                    continue;
                }
                progress(format!(
                    "AppendEvents, batches of {batch}, {}, c={}",
                    layout.describe(options.workspaces),
                    options.concurrency
                ));
                let spec =
                    harness::load_spec(options.concurrency, options.warmup, options.duration);
                let result = ingest_cell(
                    spec,
                    &channels,
                    &audit.producer,
                    &source,
                    batch,
                    layout,
                    options.workspaces,
                )
                .await?;
                results.ingest.push(IngestCell {
                    batch,
                    layout,
                    result,
                });
            }
        }
    }

    if options.delay {
        let spec = DelaySpec {
            workspace: "bench-delay".to_owned(),
            rate: options.delay_rate,
            batch: options.delay_batch,
            warmup: options.warmup,
            duration: options.duration,
        };
        progress(format!(
            "delay: {} events/s in calls of {}, ListEvents polled in a loop",
            spec.rate, spec.batch
        ));
        results.delay = Some(append_delay(&spec, &channels, &audit, &source).await?);
    }

    if options.e2e {
        let spec = DelaySpec {
            workspace: "bench-e2e".to_owned(),
            rate: options.delay_rate,
            batch: 1,
            warmup: options.warmup,
            duration: options.duration,
        };
        let (directory_database, _) = storage.database("directory", options.pool_size).await?;
        progress(format!(
            "end to end: {} CreateUser/s at the directory, ListEvents polled in a loop",
            spec.rate
        ));
        results.e2e = Some(
            audit_e2e::run(
                server_runtime,
                directory_database,
                &audit,
                &spec,
                options.connections,
                channels[channels.len() - 1].clone(),
            )
            .await?,
        );
    }

    if options.large_log() {
        progress(format!(
            "loading {} events into one log in calls of {LOAD_BATCH}, {} at a time…",
            options.log_events, options.load_concurrency
        ));
        let (loaded, proof_ids) = load_log(options, &channels, &audit.producer, &source).await?;
        progress(format!(
            "loaded in {:.1} s ({} events/s)",
            loaded.took.as_secs_f64(),
            report::rate(loaded.events as f64 / loaded.took.as_secs_f64().max(1e-9))
        ));
        let targets: Arc<Vec<String>> =
            Arc::new((0..loaded.targets).map(|k| loaded.target(k)).collect());
        results.loaded = Some(loaded);
        let spec = harness::load_spec(options.concurrency, options.warmup, options.duration);
        if options.list {
            progress(format!("ListEvents first page, c={}", options.concurrency));
            results.list_first_page = Some(list_cell(spec, &channels, &audit.reader, None).await?);
            progress(format!(
                "ListEvents first page of one end-user's events, c={}",
                options.concurrency
            ));
            results.list_by_target =
                Some(list_cell(spec, &channels, &audit.reader, Some(targets)).await?);
        }
        if options.proofs {
            progress(format!("GetInclusionProof, c={}", options.concurrency));
            results.proofs =
                Some(proof_cell(spec, &channels, &audit.reader, &Arc::new(proof_ids)).await?);
            progress(format!(
                "GetLogKey (no token, no database), c={}",
                options.concurrency
            ));
            results.floor = Some(floor_cell(spec, &channels).await?);
        }
        if options.verify {
            let mut root = None;
            for run in 1..=options.verify_runs {
                progress(format!("VerifyLog, run {run} of {}", options.verify_runs));
                let (verify_run, checkpoint_root) = verify_log(&channels[0], &audit.reader).await?;
                root = Some(checkpoint_root);
                results.verify_runs.push(verify_run);
            }
            progress("reading the stored leaf hashes and computing the bare root…");
            let (bare, computed) = bare_root(&settings, options.log_events).await?;
            if let Some(root) = root
                && root != computed
            {
                anyhow::bail!("the bare root differs from the log's signed checkpoint");
            }
            results.bare_root = Some(bare);
        }
    }
    drop(channels);
    audit.stop().await?;
    results.load_after = load_average();
    Ok(results)
}

/// The delay part's writer: AppendEvents of `spec.batch` new events on the first
/// connection; the reader lists on the last.
async fn append_delay(
    spec: &DelaySpec,
    channels: &[Channel],
    audit: &AuditService,
    source: &Arc<EventSource>,
) -> anyhow::Result<DelayResult> {
    let channel = channels[0].clone();
    let producer = audit.producer.clone();
    let source = Arc::clone(source);
    let workspaces = [spec.workspace.clone()];
    let batch = spec.batch;
    let write = move || {
        let events = source.batch(&workspaces, batch);
        let ids = events.iter().map(|event| event.event_id.clone()).collect();
        let mut client = AuditServiceClient::new(channel.clone());
        let request = service::authorized(&producer, pb::AppendEventsRequest { events });
        async move {
            client
                .append_events(request)
                .await
                .map_err(|status| format!("{status:?}"))?;
            Ok(ids)
        }
    };
    let lister = channels[channels.len() - 1].clone();
    audit_delay::run(spec, write, lister, &audit.reader, MatchBy::EventId).await
}

/// The workspaces of one ingest cell.
fn cell_workspaces(batch: usize, layout: Layout, workspaces: usize) -> Vec<String> {
    let count = if layout == Layout::One { 1 } else { workspaces };
    (0..count)
        .map(|k| format!("bench-ingest-b{batch}-{}-{k}", layout.name()))
        .collect()
}

async fn ingest_cell(
    spec: LoadSpec,
    channels: &[Channel],
    producer: &MetadataValue<Ascii>,
    source: &Arc<EventSource>,
    batch: usize,
    layout: Layout,
    workspaces: usize,
) -> anyhow::Result<LoadResult> {
    let workspaces = Arc::new(cell_workspaces(batch, layout, workspaces));
    let channels = channels.to_vec();
    let producer = producer.clone();
    let source = Arc::clone(source);
    load::run(spec, Some(SERVER_THREADS), move |call| {
        let mut client = AuditServiceClient::new(channels[call.worker % channels.len()].clone());
        let events = match layout {
            Layout::One | Layout::Mixed => source.batch(&workspaces, batch),
            Layout::Spread => {
                let own = &workspaces[call.worker % workspaces.len()];
                source.batch(std::slice::from_ref(own), batch)
            }
        };
        let request = service::authorized(&producer, pb::AppendEventsRequest { events });
        async move {
            client.append_events(request).await?;
            Ok(())
        }
    })
    .await
}

/// Times a loading call is sent before its failure stops the bench.
const LOAD_ATTEMPTS: u32 = 5;

/// AppendEvents of `events`, sent again when the call did not reach the service: the
/// server closes a connection at its maximum age, and a call racing that close fails
/// with Cancelled or Unavailable, unprocessed. A resent batch is recorded once (ingest is
/// idempotent by event id), as the relays count on.
async fn append_resending(
    client: &mut AuditServiceClient<Channel>,
    producer: &MetadataValue<Ascii>,
    events: Vec<pb::AuditEvent>,
) -> Result<pb::AppendEventsResponse, tonic::Status> {
    let mut attempt = 1;
    loop {
        let mut request = service::authorized(
            producer,
            pb::AppendEventsRequest {
                events: events.clone(),
            },
        );
        request.set_timeout(LONG_CALL);
        match client.append_events(request).await {
            Ok(appended) => return Ok(appended.into_inner()),
            Err(status)
                if attempt < LOAD_ATTEMPTS
                    && matches!(status.code(), Code::Cancelled | Code::Unavailable) =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => return Err(status),
        }
    }
}

/// Appends `options.log_events` events to [`LARGE`] in calls of [`LOAD_BATCH`]; answers
/// how long it took and some of the event ids, spread over the log.
async fn load_log(
    options: &Options,
    channels: &[Channel],
    producer: &MetadataValue<Ascii>,
    source: &Arc<EventSource>,
) -> anyhow::Result<(Loaded, Vec<String>)> {
    let total = options.log_events;
    let calls = total.div_ceil(LOAD_BATCH as u64);
    let every = (total / PROOF_IDS).max(1);
    let next = Arc::new(AtomicU64::new(0));
    // Nothing else appends while the log loads, so its events take consecutive numbers.
    let first = source.position();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..options.load_concurrency.max(1) {
        let next = Arc::clone(&next);
        let channel = channels[worker % channels.len()].clone();
        let producer = producer.clone();
        let source = Arc::clone(source);
        tasks.spawn(async move {
            let mut client = AuditServiceClient::new(channel);
            let workspaces = [LARGE.to_owned()];
            let mut kept = Vec::new();
            loop {
                let call = next.fetch_add(1, Ordering::Relaxed);
                if call >= calls {
                    return anyhow::Ok(kept);
                }
                let count = (total - call * LOAD_BATCH as u64).min(LOAD_BATCH as u64);
                let events = source.batch(&workspaces, usize::try_from(count).unwrap_or(0));
                let appended = append_resending(&mut client, &producer, events)
                    .await
                    .with_context(|| format!("AppendEvents while loading (call {call})"))?;
                kept.extend(
                    appended
                        .events
                        .into_iter()
                        .filter(|event| {
                            u64::try_from(event.leaf_index)
                                .is_ok_and(|leaf| leaf.is_multiple_of(every))
                        })
                        .map(|event| event.event_id),
                );
                if (call + 1).is_multiple_of((calls / 10).max(1)) {
                    progress(format!(
                        "  {} of {calls} calls sent, {:.0} s",
                        call + 1,
                        started.elapsed().as_secs_f64()
                    ));
                }
            }
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = tasks.join_next().await {
        ids.extend(done.context("a loading task failed")??);
    }
    Ok((
        Loaded {
            events: total,
            took: started.elapsed(),
            first_target: audit_service::target_of(first),
            targets: total.min(TARGETS),
        },
        ids,
    ))
}

/// ListEvents' first page (the default 30 events, newest first) of [`LARGE`]: the whole
/// log, or one end-user's events (a user's audit log tab), the user varying by call.
async fn list_cell(
    spec: LoadSpec,
    channels: &[Channel],
    reader: &MetadataValue<Ascii>,
    targets: Option<Arc<Vec<String>>>,
) -> anyhow::Result<LoadResult> {
    let channels = channels.to_vec();
    let reader = reader.clone();
    load::run(spec, Some(SERVER_THREADS), move |call| {
        let mut client = AuditServiceClient::new(channels[call.worker % channels.len()].clone());
        let mut message = pb::ListEventsRequest {
            workspace_id: LARGE.to_owned(),
            ..pb::ListEventsRequest::default()
        };
        if let Some(targets) = &targets {
            let pick = spread(call.worker, call.call, targets.len() as u64);
            message.target_type = "end_user".to_owned();
            message.target_id = targets[usize::try_from(pick).unwrap_or(0)].clone();
        }
        let request = service::authorized(&reader, message);
        async move {
            let page = client.list_events(request).await?.into_inner();
            anyhow::ensure!(!page.events.is_empty(), "an empty first page");
            Ok(())
        }
    })
    .await
}

/// GetInclusionProof of events of [`LARGE`] named by id (as a consumer holding an event
/// asks), in the current tree.
async fn proof_cell(
    spec: LoadSpec,
    channels: &[Channel],
    reader: &MetadataValue<Ascii>,
    ids: &Arc<Vec<String>>,
) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(!ids.is_empty(), "no event ids kept for the proofs");
    let channels = channels.to_vec();
    let reader = reader.clone();
    let ids = Arc::clone(ids);
    load::run(spec, Some(SERVER_THREADS), move |call| {
        let mut client = AuditServiceClient::new(channels[call.worker % channels.len()].clone());
        let id =
            &ids[usize::try_from(spread(call.worker, call.call, ids.len() as u64)).unwrap_or(0)];
        let request = service::authorized(
            &reader,
            pb::GetInclusionProofRequest {
                workspace_id: LARGE.to_owned(),
                leaf: Some(pb::get_inclusion_proof_request::Leaf::EventId(id.clone())),
                tree_size: 0,
            },
        );
        async move {
            let proof = client.get_inclusion_proof(request).await?.into_inner();
            anyhow::ensure!(!proof.hashes.is_empty(), "a proof without hashes");
            Ok(())
        }
    })
    .await
}

/// GetLogKey, public and answered from memory: what any call of the service costs on this
/// machine (HTTP/2, the runtime's layers, the load generator), the floor under the others.
async fn floor_cell(spec: LoadSpec, channels: &[Channel]) -> anyhow::Result<LoadResult> {
    let channels = channels.to_vec();
    load::run(spec, Some(SERVER_THREADS), move |call| {
        let mut client = AuditServiceClient::new(channels[call.worker % channels.len()].clone());
        async move {
            client
                .get_log_key(pb::GetLogKeyRequest {
                    workspace_id: LARGE.to_owned(),
                })
                .await?;
            Ok(())
        }
    })
    .await
}

/// A call's pick among `count` things: a multiplicative hash of worker and call, so
/// workers spread over the whole range rather than walk it in step.
fn spread(worker: usize, call: u64, count: u64) -> u64 {
    let key = (worker as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ call;
    key.wrapping_mul(0xbf58_476d_1ce4_e5b9).rotate_left(31) % count.max(1)
}

/// One VerifyLog of [`LARGE`]; answers the checkpoint's root with the run.
async fn verify_log(
    channel: &Channel,
    reader: &MetadataValue<Ascii>,
) -> anyhow::Result<(VerifyRun, Hash)> {
    let mut client = AuditServiceClient::new(channel.clone());
    let mut request = service::authorized(
        reader,
        pb::VerifyLogRequest {
            workspace_id: LARGE.to_owned(),
        },
    );
    request.set_timeout(LONG_CALL);
    let cpu_before = cpu::threads_cpu(SERVER_THREADS)?;
    let started = Instant::now();
    let response = client
        .verify_log(request)
        .await
        .context("VerifyLog")?
        .into_inner();
    let took = started.elapsed();
    let server_cpu = cpu::threads_cpu(SERVER_THREADS)?.since(&cpu_before);
    anyhow::ensure!(
        response.verified,
        "VerifyLog found a problem: {:?}",
        response.problem
    );
    let root = response
        .checkpoint
        .and_then(|checkpoint| Hash::try_from(checkpoint.root_hash.as_slice()).ok())
        .context("VerifyLog answered no checkpoint root")?;
    Ok((
        VerifyRun {
            took,
            events_checked: u64::try_from(response.events_checked).unwrap_or(0),
            server_cpu,
        },
        root,
    ))
}

/// Reads the leaf hashes of [`LARGE`] with the store's own range query (its own pool, no
/// gRPC), then computes the RFC 6962 root over them in memory, timing both.
async fn bare_root(settings: &DbSettings, leaves: u64) -> anyhow::Result<(BareRoot, Hash)> {
    let db = Db::connect(settings)
        .await
        .context("connecting for the bare root")?;
    let started = Instant::now();
    let mut from = 0u64;
    while from < leaves {
        let to = (from + HASH_PAGE).min(leaves);
        let rows = roster_audit::store::events::leaf_range(
            db.conn(),
            LARGE,
            i64::try_from(from)?,
            i64::try_from(to)?,
        )
        .await?;
        anyhow::ensure!(
            rows.len() as u64 == to - from,
            "event rows missing in [{from}, {to})"
        );
        from = to;
    }
    let rows_read = started.elapsed();
    let started = Instant::now();
    let mut hashes: Vec<Hash> = Vec::with_capacity(usize::try_from(leaves).unwrap_or(0));
    let mut from = 0u64;
    while from < leaves {
        let to = (from + HASH_PAGE).min(leaves);
        let rows = roster_audit::store::hashes::range(
            db.conn(),
            LARGE,
            leaf_stored_index(from),
            leaf_stored_index(to),
        )
        .await?;
        hashes.extend(leaf_hashes(from, to, &rows)?);
        from = to;
    }
    let read = started.elapsed();
    db.close().await;
    let started = Instant::now();
    let root = rfc6962_root(&hashes);
    let compute = started.elapsed();
    Ok((
        BareRoot {
            leaves,
            rows_read,
            read,
            compute,
        },
        root,
    ))
}

/// The leaf hashes of leaves `[from, to)` among stored hashes `(index, bytes)` read in
/// index order (each leaf's hash is followed by the subtree hashes it completed).
fn leaf_hashes(from: u64, to: u64, rows: &[(u64, Vec<u8>)]) -> anyhow::Result<Vec<Hash>> {
    let mut rows = rows.iter().peekable();
    let mut out = Vec::with_capacity(usize::try_from(to - from).unwrap_or(0));
    for leaf in from..to {
        let wanted = leaf_stored_index(leaf);
        while rows.next_if(|(index, _)| *index < wanted).is_some() {}
        let (_, bytes) = rows
            .next_if(|(index, _)| *index == wanted)
            .with_context(|| format!("no stored hash of leaf {leaf}"))?;
        out.push(
            Hash::try_from(bytes.as_slice())
                .with_context(|| format!("the stored hash of leaf {leaf} is not 32 bytes"))?,
        );
    }
    Ok(out)
}

/// RFC 6962's Merkle tree hash over leaf hashes: a stack of complete subtrees, each leaf
/// merged into its equals, then the stack folded right to left. n − 1 SHA-256 of 65 bytes.
pub fn rfc6962_root(leaves: &[Hash]) -> Hash {
    let mut stack: Vec<(u32, Hash)> = Vec::with_capacity(64);
    for &leaf in leaves {
        let mut hash = leaf;
        let mut level = 0u32;
        while let Some(&(top, left)) = stack.last() {
            if top != level {
                break;
            }
            stack.pop();
            hash = node_hash(left, hash);
            level += 1;
        }
        stack.push((level, hash));
    }
    let mut subtrees = stack.iter().rev().map(|(_, hash)| *hash);
    let Some(mut root) = subtrees.next() else {
        return EMPTY_ROOT;
    };
    for left in subtrees {
        root = node_hash(left, root);
    }
    root
}

fn error_summary(results: &Results) -> Vec<String> {
    let mut errors = Vec::new();
    for cell in &results.ingest {
        errors.extend(harness::failures(
            &format!("AppendEvents b={} {}", cell.batch, cell.layout.name()),
            &cell.result,
        ));
    }
    for (what, call, delay) in [
        ("delay", "AppendEvents", results.delay.as_ref()),
        (
            "end to end",
            "CreateUser",
            results.e2e.as_ref().map(|e2e| &e2e.delay),
        ),
    ] {
        if let Some(delay) = delay
            && (delay.write_errors > 0 || delay.list_errors > 0)
        {
            errors.push(format!(
                "{what}: {} {call} and {} ListEvents failed, first: {}",
                delay.write_errors,
                delay.list_errors,
                delay.first_error.as_deref().unwrap_or("?")
            ));
        }
    }
    for (what, result) in [
        ("ListEvents first page", &results.list_first_page),
        ("ListEvents by target", &results.list_by_target),
        ("GetInclusionProof", &results.proofs),
        ("GetLogKey", &results.floor),
    ] {
        if let Some(result) = result {
            errors.extend(harness::failures(what, result));
        }
    }
    errors
}

fn per_event(cpu: Option<Duration>, batch: usize) -> String {
    cpu.map_or_else(
        || "-".to_owned(),
        |cpu| format!("{:.1}", cpu.as_secs_f64() * 1e6 / batch.max(1) as f64),
    )
}

fn seconds(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64())
}

fn render(options: &Options, results: &Results) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "\nRoster audit benchmark: {}; {} CPUs shared by client, server{}; load average (1/5/15 min) {} before, {} after\n\n",
        results.engine,
        std::thread::available_parallelism().map_or(0, usize::from),
        if options.postgres_url.is_some() { " and PostgreSQL" } else { "" },
        results.load_before,
        results.load_after,
    ));

    if !results.ingest.is_empty() {
        let title = format!("AppendEvents, c={}", options.concurrency);
        let mut table = Table::new(&[
            title.as_str(),
            "events/s",
            "calls/s",
            "p50 / p99 ms per call",
            "server CPU µs/event",
            "client CPU µs/event",
        ]);
        let mut last_batch = None;
        for cell in &results.ingest {
            if last_batch != Some(cell.batch) {
                table.section(format!("batches of {}", cell.batch));
                last_batch = Some(cell.batch);
            }
            table.row(
                cell.layout.describe(options.workspaces),
                vec![
                    report::rate(cell.events_per_second()),
                    report::rate(cell.result.per_second()),
                    report::p50_p99(Some(&cell.result)),
                    per_event(cell.result.cpu_per_call(), cell.batch),
                    per_event(cell.result.client_cpu_per_call(), cell.batch),
                ],
            );
        }
        out.push_str(&table.render());
        out.push('\n');
    }

    if let Some(delay) = &results.delay {
        let table = delay_table(
            "Delay, AppendEvents to ListEvents",
            "writer: events/s (calls of n)",
            format!(
                "{} ({})",
                report::rate(delay.sent_per_second),
                options.delay_batch
            ),
            "AppendEvents",
            delay,
        );
        out.push_str(&table.render());
        out.push('\n');
    }

    if let Some(e2e) = &results.e2e {
        let delay = &e2e.delay;
        let mut table = delay_table(
            "Delay, directory CreateUser to ListEvents",
            "writer: CreateUser/s",
            report::rate(delay.sent_per_second),
            "CreateUser",
            delay,
        );
        table.row(
            "relay: batch / poll interval when idle",
            vec![format!(
                "{} / {} ms",
                e2e.relay.batch,
                e2e.relay.poll_interval.as_millis()
            )],
        );
        if let Some(figures) = &e2e.relay_figures {
            table.row(
                "relay: rows delivered / dead-lettered",
                vec![format!("{} / {}", figures.delivered, figures.dead_lettered)],
            );
        }
        out.push_str(&table.render());
        out.push('\n');
    }

    if let Some(loaded) = &results.loaded {
        let title = format!(
            "Large log, {} events, c={}",
            loaded.events, options.concurrency
        );
        let mut table = Table::new(&[
            title.as_str(),
            "calls/s",
            "p50 / p99 ms",
            "server CPU µs/call",
            "client CPU µs/call",
        ]);
        for (what, result) in [
            ("ListEvents first page (30)", &results.list_first_page),
            (
                "ListEvents first page, one end-user",
                &results.list_by_target,
            ),
            ("GetInclusionProof by event id", &results.proofs),
            ("floor: GetLogKey, no token or database", &results.floor),
        ] {
            if let Some(result) = result {
                table.row(
                    what,
                    vec![
                        report::throughput(Some(result)),
                        report::p50_p99(Some(result)),
                        report::cpu_per_call(Some(result)),
                        report::client_cpu_per_call(Some(result)),
                    ],
                );
            }
        }
        out.push_str(&table.render());
        out.push('\n');

        let mut table = Table::new(&["Verification", "seconds", "events/s", "server CPU µs/event"]);
        table.row(
            format!(
                "loading: AppendEvents of {LOAD_BATCH}, {} at a time",
                options.load_concurrency
            ),
            vec![
                seconds(loaded.took),
                report::rate(loaded.events as f64 / loaded.took.as_secs_f64().max(1e-9)),
                "-".to_owned(),
            ],
        );
        for (run, verify) in results.verify_runs.iter().enumerate() {
            table.row(
                format!("VerifyLog, run {}", run + 1),
                vec![
                    seconds(verify.took),
                    report::rate(verify.rate()),
                    format!(
                        "{:.2}",
                        verify.server_cpu.as_secs_f64() * 1e6 / verify.events_checked.max(1) as f64
                    ),
                ],
            );
        }
        if let Some(bare) = &results.bare_root {
            table.row(
                "event rows read (VerifyLog's query), no checks",
                vec![
                    seconds(bare.rows_read),
                    report::rate(bare.leaves as f64 / bare.rows_read.as_secs_f64().max(1e-9)),
                    "-".to_owned(),
                ],
            );
            table.row(
                "leaf hashes read (store's range query)",
                vec![
                    seconds(bare.read),
                    report::rate(bare.leaves as f64 / bare.read.as_secs_f64().max(1e-9)),
                    "-".to_owned(),
                ],
            );
            table.row(
                "bare RFC 6962 root over them, 1 thread",
                vec![
                    seconds(bare.compute),
                    report::rate(bare.leaves as f64 / bare.compute.as_secs_f64().max(1e-9)),
                    "-".to_owned(),
                ],
            );
        }
        out.push_str(&table.render());
        out.push('\n');
    }

    out.push_str("Targets (this run)\n");
    out.push_str(&report::render_checks(&checks(options, results)));
    out.push_str(&notes(options, results));
    out
}

/// A delay part's table: the writer's rate, events expected and seen, the delay's
/// percentiles, the write call's latency and the reader's pace.
fn delay_table(title: &str, writer: &str, rate: String, call: &str, delay: &DelayResult) -> Table {
    let mut table = Table::new(&[title, "figure"]);
    table.row(writer, vec![rate]);
    table.row(
        "events seen / expected",
        vec![format!(
            "{} / {}",
            delay.measured - delay.unseen,
            delay.measured
        )],
    );
    let delays: Option<Vec<String>> = [50.0, 90.0, 99.0, 100.0]
        .into_iter()
        .map(|p| delay.delays.percentile(p).map(report::ms))
        .collect();
    table.row(
        "delay p50 / p90 / p99 / max ms",
        vec![delays.map_or_else(|| "-".to_owned(), |delays| delays.join(" / "))],
    );
    table.row(
        format!("{call} p50 / p99 ms"),
        vec![
            match (delay.writes.percentile(50.0), delay.writes.percentile(99.0)) {
                (Some(p50), Some(p99)) => format!("{} / {}", report::ms(p50), report::ms(p99)),
                _ => "-".to_owned(),
            },
        ],
    );
    table.row(
        "ListEvents passes/s (reader)",
        vec![report::rate(delay.lists_per_second)],
    );
    table
}

fn checks(options: &Options, results: &Results) -> Vec<Check> {
    let mut checks = Vec::new();
    for cell in results.ingest.iter().filter(|cell| cell.batch == 100) {
        if cell.layout == Layout::Mixed {
            continue;
        }
        checks.push(Check::at_least(
            &format!("ingest, batches of 100, {}", cell.layout.name()),
            Some(cell.events_per_second()),
            20_000.0,
            "events/s",
        ));
    }
    if let Some(delay) = &results.delay {
        checks.push(Check::at_most(
            "delay p99, AppendEvents to ListEvents",
            delay
                .delays
                .percentile(99.0)
                .map(|p99| p99.as_secs_f64() * 1000.0),
            1000.0,
            "ms",
        ));
    }
    if let Some(e2e) = &results.e2e {
        checks.push(end_to_end_check(options.delay_rate, &e2e.delay));
    }
    if let Some(proofs) = &results.proofs {
        checks.push(Check::at_least(
            "GetInclusionProof",
            Some(proofs.per_second()),
            10_000.0,
            "/s",
        ));
    }
    if let Some(best) = results
        .verify_runs
        .iter()
        .map(VerifyRun::rate)
        .reduce(f64::max)
    {
        checks.push(Check::at_least(
            "VerifyLog (best run)",
            Some(best),
            1_000_000.0,
            "events/s",
        ));
    }
    checks
}

/// The audit issue's target: p99 within 1 s at 1,000 writes/s, every event listed. Slower
/// writers do not test it.
fn end_to_end_check(rate: u64, delay: &DelayResult) -> Check {
    let p99 = delay.delays.percentile(99.0);
    Check::holds(
        &format!("end-to-end delay p99, {rate} CreateUser/s"),
        p99.map(|p99| format!("{} ms", report::ms(p99))),
        "<= 1000 ms at 1000 writes/s, every event listed",
        p99.filter(|_| rate >= 1000)
            .map(|p99| p99 <= Duration::from_secs(1) && delay.unseen == 0),
    )
}

fn notes(options: &Options, results: &Results) -> String {
    let mut out = String::from("\nHow this was measured\n");
    let mut lines = vec![
        format!(
            "The real audit service (roster_audit::Application: the runtime's layers, token guard, validation, service and store; its checkpoint key created in its database, sealed with a generated KEK) on a pool of {} connections, {} server worker threads; the load generator on {} threads over {} HTTP/2 connections. Closed-loop cells: c workers each wait for their call; {} s warm-up, then {} s measured.",
            options.pool_size,
            options.server_threads,
            options.client_threads,
            options.connections,
            options.warmup.as_secs_f64(),
            options.duration.as_secs_f64(),
        ),
        "Events: an agent (50 in turn) changed an end-user's e-mail (10,000 end-users in turn), with the five personal values an event usually carries (agent's name, caller IP, user agent, the value before and after), each a salted commitment, a fresh UUIDv7 each; sent with a producer's service token naming audit_log.append, read with a service token naming audit_log.view.".to_owned(),
        format!(
            "Ingest: events/s = calls/s × batch. Each cell appends to workspaces of its own, empty at its start. 'spread': worker w appends to workspace w mod {}; 'mixed': every call's events go round robin to all {} workspaces, as a relay's batch from one outbox shared by tenants.",
            options.workspaces, options.workspaces
        ),
        format!(
            "Delay: the writer appends {} events/s in calls of {} on a timer (open loop), one workspace; one reader lists that workspace's newest page ({} events) in a loop, following pages down to the highest leaf it had seen. An event's delay runs from the start of its AppendEvents call to the end of the first ListEvents that showed it: the audit service alone.",
            options.delay_rate, options.delay_batch, audit_delay::PAGE_SIZE
        ),
        format!(
            "Large log: {} events appended through AppendEvents (calls of {LOAD_BATCH}, {} in flight) to one workspace, then ListEvents' first page (default size 30, newest first; and filtered by one end-user, {} events each of the {} the log is about), GetInclusionProof by event id (ids spread over the log, current tree size) and beside it GetLogKey (public, answered from memory: the floor of any call here), VerifyLog of the whole log {} time(s).",
            options.log_events,
            options.load_concurrency,
            (options.log_events / TARGETS).max(1),
            options.log_events.min(TARGETS),
            options.verify_runs,
        ),
        "Event rows read: the log's rows in leaf order with VerifyLog's own range query (roster_audit::store::events::leaf_range, pages of 100,000 leaves), decoded into rows and dropped: what any verification that rebuilds leaves from rows must read first. Bare root: the log's leaf hashes read in leaf order with the store's range query (roster_audit::store::hashes::range, pages of 100,000 leaves; about two stored hashes per leaf), then RFC 6962's tree hash over them in memory on one thread: n − 1 SHA-256 of 65 bytes, nothing else. Its root is checked against the log's signed checkpoint. VerifyLog does that and more: reads every event row, parses its JSON columns, rebuilds each leaf's bytes, checks five commitments, hashes the leaf, compares every stored hash.".to_owned(),
        format!(
            "Server CPU: utime+stime of the {SERVER_THREADS}* threads (the service's runtime and its blocking pool) over the window, divided by calls or events; excludes PostgreSQL. Client CPU: the load generator's {CLIENT_THREADS}* threads, building the events included. No tracing subscriber is installed."
        ),
    ];
    if let Some(e2e) = &results.e2e {
        lines.push(format!(
            "End to end: the real directory (roster_directory::Application) on a database of its own on the same engine, with its outbox relay beside it as `roster serve` wires them: batch {}, idling {} ms only when fewer than a batch were due (ROSTER_DIRECTORY_AUDIT_BATCH and …_POLL_INTERVAL, else the defaults), delivering to the audit service above with tokens it mints with the bench's key, which the audit service trusts. The writer calls CreateUser {} times a second on a timer (open loop) over {} HTTP/2 connections, one workspace; the reader is the delay part's. A user's delay runs from the start of its CreateUser call to the end of the first ListEvents that showed an event about the user id it answered; events not listed within {} s of the writer's end count as unseen.",
            e2e.relay.batch,
            e2e.relay.poll_interval.as_millis(),
            options.delay_rate,
            options.connections,
            audit_delay::DRAIN.as_secs(),
        ));
    }
    if options.postgres_url.is_none() {
        lines.push("SQLite: one file in WAL mode (synchronous=NORMAL), writers taking turns in-process (Db::begin_write), readers on the pool.".to_owned());
    }
    if !results.load_before.is_empty() {
        lines.push("The machine's load average above includes whatever else ran (other builds): figures from a loaded machine are lower bounds.".to_owned());
    }
    for line in lines {
        out.push_str(&format!("- {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use roster_audit::domain::tree::Frontier;

    use super::*;

    fn leaf(n: u64) -> Hash {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&n.to_be_bytes());
        hash
    }

    /// RFC 6962 §2.1 as written: split at the largest power of two below n.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                node_hash(mth(&leaves[..k]), mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn the_bare_root_is_rfc_6962s_and_the_services() {
        for size in 0..70u64 {
            let leaves: Vec<Hash> = (0..size).map(leaf).collect();
            let mut frontier = Frontier::default();
            for hash in &leaves {
                frontier.push(*hash);
            }
            assert_eq!(rfc6962_root(&leaves), mth(&leaves), "size {size}");
            assert_eq!(rfc6962_root(&leaves), frontier.root(), "size {size}");
        }
    }

    #[test]
    fn leaf_hashes_are_picked_from_the_stored_layout() {
        // Stored layout of 4 leaves: leaf 0, leaf 1, node(0,1), leaf 2, leaf 3, node(2,3),
        // node(01,23) — indexes 0..7 (tlog's stored_hash_index).
        let rows: Vec<(u64, Vec<u8>)> = (0..7u64).map(|i| (i, leaf(100 + i).to_vec())).collect();
        let picked = leaf_hashes(0, 4, &rows).unwrap();
        assert_eq!(picked, vec![leaf(100), leaf(101), leaf(103), leaf(104)]);
        // A page starting mid-log reads from its first leaf's index on.
        let picked = leaf_hashes(2, 4, &rows[3..]).unwrap();
        assert_eq!(picked, vec![leaf(103), leaf(104)]);
        assert!(leaf_hashes(0, 4, &rows[..4]).is_err(), "leaf 3 is missing");
    }

    #[test]
    fn calls_spread_over_the_whole_range() {
        let picks: std::collections::HashSet<u64> =
            (0..1000u64).map(|call| spread(3, call, 100)).collect();
        assert!(picks.len() > 90, "{} distinct of 100", picks.len());
        assert!(picks.iter().all(|pick| *pick < 100));
        assert_eq!(spread(0, 5, 0), 0);
    }

    #[test]
    fn each_cell_has_its_own_workspaces() {
        assert_eq!(
            cell_workspaces(100, Layout::One, 8),
            vec!["bench-ingest-b100-one-0"]
        );
        let spread = cell_workspaces(100, Layout::Spread, 3);
        assert_eq!(spread.len(), 3);
        assert_ne!(spread, cell_workspaces(100, Layout::Mixed, 3));
    }
}
