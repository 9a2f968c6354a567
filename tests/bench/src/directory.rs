//! `roster-bench directory`: sets up the databases and the three contenders, runs every
//! measurement, prints the report and drops what it created.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use roster_directory::domain::Clock as _;
use roster_proto::directory::v1 as pb;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use sea_orm::sqlx::postgres::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::baseline::Baseline;
use crate::dataset::{self, COMMON_TERM, SELECTIVE_TERM, WORKSPACE};
use crate::harness::{self, CLIENT_THREADS, Databases, SERVER_THREADS, channels, progress};
use crate::import::{self, ImportOutcome, ImportSpec};
use crate::load::{self, CallId, LoadResult, LoadSpec};
use crate::pg;
use crate::report::{self, Check, Table};
use crate::search::{self, SearchCase, SearchClients, SearchOutcome, SearchSpec};
use crate::service::{self, Directory};
use crate::sql;

#[derive(Clone, Debug)]
pub struct Options {
    pub admin_url: String,
    pub users: u64,
    pub duration: Duration,
    pub warmup: Duration,
    pub concurrency: Vec<usize>,
    pub connections: usize,
    pub pool_size: u32,
    pub search_duration: Duration,
    pub search_calls: u64,
    pub search_concurrency: Vec<usize>,
    pub get_user: bool,
    pub create_user: bool,
    pub search: bool,
    pub import: bool,
    pub import_rows: u64,
    pub import_max_time: Duration,
    pub keep_databases: bool,
    pub log_statements: bool,
    pub server_threads: usize,
    pub client_threads: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    Roster,
    Bare,
    Sql,
    /// (c) sending CreateUser's writes as the service does, in one statement.
    SqlOneStatement,
}

impl Contender {
    const ALL: [Contender; 3] = [Contender::Roster, Contender::Bare, Contender::Sql];

    fn label(self) -> &'static str {
        match self {
            Contender::Roster => "(a)",
            Contender::Bare => "(b)",
            Contender::Sql => "(c)",
            Contender::SqlOneStatement => "(c) one statement",
        }
    }
}

/// A cell per contender and concurrency.
#[derive(Default)]
struct Grid {
    cells: Vec<(Contender, usize, LoadResult)>,
}

impl Grid {
    fn get(&self, contender: Contender, concurrency: usize) -> Option<&LoadResult> {
        self.cells
            .iter()
            .find(|(c, n, _)| *c == contender && *n == concurrency)
            .map(|(_, _, result)| result)
    }
}

struct Results {
    postgres_version: String,
    /// Whether the connections to PostgreSQL use TLS (the URL's `sslmode`).
    tls: bool,
    loaded: dataset::Loaded,
    get_user: Grid,
    create_user: Grid,
    searches: Vec<SearchOutcome>,
    /// The import's figures, or why it failed (the rest of the report still prints).
    import: Option<Result<ImportOutcome, String>>,
}

/// Runs the whole bench; databases are dropped however it ends (Ctrl-C included).
pub async fn run(options: Options, server_runtime: tokio::runtime::Handle) -> anyhow::Result<()> {
    let mut databases = Databases::new(&options.admin_url, options.keep_databases)?;
    let outcome = harness::interruptible(measure(&options, &server_runtime, &mut databases)).await;
    databases.drop_all().await;
    let results = outcome?;
    harness::report(&render(&options, &results), &error_summary(&results))
}

async fn measure(
    options: &Options,
    server_runtime: &tokio::runtime::Handle,
    databases: &mut Databases,
) -> anyhow::Result<Results> {
    let run_id = databases.run_id.clone();
    let database = databases.create("main").await?;
    if options.log_statements {
        database.log_statements().await?;
    }
    let mut settings = database.service_settings();
    settings.max_connections = options.pool_size;
    let database_url = database.url.clone();
    let mut conn = database.connection().await?;

    let directory = Directory::start(server_runtime, settings, WORKSPACE, None).await?;
    progress(format!(
        "(a) the directory is serving on {} (migrated)",
        directory.addr
    ));

    let (postgres_version, tls) = pg::server_info(&mut conn).await?;
    progress(format!("loading {} users with COPY…", options.users));
    let loaded = dataset::load_users(&mut conn, options.users).await?;
    progress(format!(
        "loaded in {:.1} s, VACUUM (ANALYZE) {:.1} s",
        loaded.copy_time.as_secs_f64(),
        loaded.vacuum_time.as_secs_f64()
    ));

    let baseline = Baseline::start(server_runtime, &database_url, options.pool_size).await?;
    progress(format!(
        "(b) the bare server is serving on {}",
        baseline.addr
    ));
    let pool = pg::pool(&database_url, options.pool_size).await?;

    let roster_channels = channels(directory.addr, options.connections).await?;
    let bare_channels = channels(baseline.addr, options.connections).await?;
    let contenders = Contenders {
        roster: roster_channels,
        bare: bare_channels,
        pool: pool.clone(),
        authorization: directory.authorization.clone(),
        ids: Arc::new(loaded.sample_ids.clone()),
    };

    let mut get_user = Grid::default();
    let mut create_user = Grid::default();
    for &concurrency in options.concurrency.iter().filter(|_| options.get_user) {
        for contender in Contender::ALL {
            progress(format!("GetUser {} c={concurrency}", contender.label()));
            let result = contenders
                .get_user(contender, load_spec(options, concurrency))
                .await?;
            get_user.cells.push((contender, concurrency, result));
        }
    }
    let created = Arc::new(AtomicU64::new(0));
    for &concurrency in options.concurrency.iter().filter(|_| options.create_user) {
        for contender in Contender::ALL
            .into_iter()
            .chain([Contender::SqlOneStatement])
        {
            progress(format!("CreateUser {} c={concurrency}", contender.label()));
            let result = contenders
                .create_user(
                    contender,
                    load_spec(options, concurrency),
                    &run_id,
                    &created,
                )
                .await?;
            create_user.cells.push((contender, concurrency, result));
        }
    }

    let search_spec = SearchSpec {
        duration: options.search_duration,
        max_calls: options.search_calls,
        concurrency: options.search_concurrency.clone(),
    };
    let cases = [
        SearchCase {
            term: SELECTIVE_TERM,
            page: 1,
        },
        SearchCase {
            term: SELECTIVE_TERM,
            page: 10,
        },
        SearchCase {
            term: COMMON_TERM,
            page: 1,
        },
        SearchCase {
            term: COMMON_TERM,
            page: 10,
        },
    ];
    let roster_client = DirectoryServiceClient::new(contenders.roster[0].clone());
    let bare_client = DirectoryServiceClient::new(contenders.bare[0].clone());
    let search_clients = SearchClients {
        roster: &roster_client,
        authorization: &directory.authorization,
        bare: &bare_client,
    };
    let mut searches = Vec::new();
    for case in cases.iter().filter(|_| options.search) {
        progress(format!("search email:{} page {}", case.term, case.page));
        searches
            .push(search::run_case(case, &search_spec, &search_clients, &pool, &mut conn).await?);
    }
    drop(contenders);
    drop(roster_client);
    drop(bare_client);
    pool.close().await;
    baseline.stop().await?;
    directory.stop().await?;

    let import = if !options.import {
        None
    } else {
        progress(format!(
            "import of {} rows (at most {} s), then COPY of the same rows…",
            options.import_rows,
            options.import_max_time.as_secs()
        ));
        let spec = ImportSpec {
            rows: options.import_rows,
            max_time: options.import_max_time,
        };
        Some(
            import::run(&spec, server_runtime, databases)
                .await
                .map_err(|error| format!("{error:#}")),
        )
    };
    Ok(Results {
        postgres_version,
        tls,
        loaded,
        get_user,
        create_user,
        searches,
        import,
    })
}

fn load_spec(options: &Options, concurrency: usize) -> LoadSpec {
    harness::load_spec(concurrency, options.warmup, options.duration)
}

/// What the load loops call.
struct Contenders {
    roster: Vec<Channel>,
    bare: Vec<Channel>,
    pool: PgPool,
    authorization: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    ids: Arc<Vec<Uuid>>,
}

/// Spreads calls over the sample: consecutive calls of a worker hit distant users.
fn pick(ids: &[Uuid], call: CallId) -> Uuid {
    let index = (call.worker as u64)
        .wrapping_mul(7919)
        .wrapping_add(call.call.wrapping_mul(104_729));
    ids[(index % ids.len().max(1) as u64) as usize]
}

impl Contenders {
    fn client(channels: &[Channel], call: CallId) -> DirectoryServiceClient<Channel> {
        DirectoryServiceClient::new(channels[call.worker % channels.len()].clone())
    }

    async fn get_user(&self, contender: Contender, spec: LoadSpec) -> anyhow::Result<LoadResult> {
        anyhow::ensure!(!self.ids.is_empty(), "no users were loaded");
        let ids = Arc::clone(&self.ids);
        match contender {
            Contender::Roster => {
                let channels = self.roster.clone();
                let authorization = self.authorization.clone();
                load::run(spec, Some(SERVER_THREADS), move |call| {
                    let mut client = Self::client(&channels, call);
                    let request = service::authorized(
                        &authorization,
                        pb::GetUserRequest {
                            workspace_id: WORKSPACE.to_owned(),
                            user_id: pick(&ids, call).to_string(),
                        },
                    );
                    async move {
                        client.get_user(request).await?;
                        Ok(())
                    }
                })
                .await
            }
            Contender::Bare => {
                let channels = self.bare.clone();
                load::run(spec, Some(SERVER_THREADS), move |call| {
                    let mut client = Self::client(&channels, call);
                    let request = tonic::Request::new(pb::GetUserRequest {
                        workspace_id: WORKSPACE.to_owned(),
                        user_id: pick(&ids, call).to_string(),
                    });
                    async move {
                        client.get_user(request).await?;
                        Ok(())
                    }
                })
                .await
            }
            // GetUser is one statement either way.
            Contender::Sql | Contender::SqlOneStatement => {
                let pool = self.pool.clone();
                load::run(spec, None, move |call| {
                    let pool = pool.clone();
                    let user_id = pick(&ids, call);
                    async move {
                        sql::get_user(&pool, WORKSPACE, user_id)
                            .await?
                            .context("a sampled user is missing")?;
                        Ok(())
                    }
                })
                .await
            }
        }
    }

    async fn create_user(
        &self,
        contender: Contender,
        spec: LoadSpec,
        run_id: &str,
        created: &Arc<AtomicU64>,
    ) -> anyhow::Result<LoadResult> {
        let run_id = run_id.to_owned();
        let created = Arc::clone(created);
        let email = move || {
            let n = created.fetch_add(1, Ordering::Relaxed);
            format!("new.{run_id}.{n}@load.test")
        };
        let user = |email: String| pb::User {
            email,
            name: "Load Test".to_owned(),
            ..pb::User::default()
        };
        match contender {
            Contender::Roster => {
                let channels = self.roster.clone();
                let authorization = self.authorization.clone();
                load::run(spec, Some(SERVER_THREADS), move |call| {
                    let mut client = Self::client(&channels, call);
                    let request = service::authorized(
                        &authorization,
                        pb::CreateUserRequest {
                            workspace_id: WORKSPACE.to_owned(),
                            user: Some(user(email())),
                            request_id: String::new(),
                        },
                    );
                    async move {
                        client.create_user(request).await?;
                        Ok(())
                    }
                })
                .await
            }
            Contender::Bare => {
                let channels = self.bare.clone();
                load::run(spec, Some(SERVER_THREADS), move |call| {
                    let mut client = Self::client(&channels, call);
                    let request = tonic::Request::new(pb::CreateUserRequest {
                        workspace_id: WORKSPACE.to_owned(),
                        user: Some(user(email())),
                        request_id: String::new(),
                    });
                    async move {
                        client.create_user(request).await?;
                        Ok(())
                    }
                })
                .await
            }
            Contender::Sql | Contender::SqlOneStatement => {
                let pool = self.pool.clone();
                let one_statement = contender == Contender::SqlOneStatement;
                load::run(spec, None, move |_| {
                    let pool = pool.clone();
                    let now_us = roster_directory::domain::SystemClock.now_us();
                    let user = sql::new_user(WORKSPACE, &email(), "Load Test", now_us);
                    async move {
                        if one_statement {
                            sql::create_user_in_one_statement(&pool, &user).await
                        } else {
                            sql::create_user(&pool, &user).await
                        }
                    }
                })
                .await
            }
        }
    }
}

fn error_summary(results: &Results) -> Vec<String> {
    let mut errors = Vec::new();
    for (name, grid) in [
        ("GetUser", &results.get_user),
        ("CreateUser", &results.create_user),
    ] {
        for (contender, concurrency, result) in &grid.cells {
            errors.extend(harness::failures(
                &format!("{name} {} c={concurrency}", contender.label()),
                result,
            ));
        }
    }
    for search in &results.searches {
        for run in &search.runs {
            for (label, result) in [("(a)", &run.roster), ("(b)", &run.bare), ("(c)", &run.sql)] {
                errors.extend(harness::failures(
                    &format!(
                        "search email:{} page {} {label} c={}",
                        search.term, search.page, run.concurrency
                    ),
                    result,
                ));
            }
        }
    }
    if let Some(Err(error)) = &results.import {
        errors.push(format!("import: {error}"));
    }
    errors
}

fn render(options: &Options, results: &Results) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "\nRoster directory benchmark: PostgreSQL {} on 127.0.0.1 ({}), {} CPUs shared by client, servers and PostgreSQL\n",
        results.postgres_version,
        if results.tls {
            "connections over TLS"
        } else {
            "connections without TLS"
        },
        std::thread::available_parallelism().map_or(0, usize::from),
    ));
    out.push_str(&format!(
        "{} users loaded by COPY in {:.1} s ({:.0} rows/s, every index in place), then VACUUM (ANALYZE) in {:.1} s\n\n",
        options.users,
        results.loaded.copy_time.as_secs_f64(),
        options.users as f64 / results.loaded.copy_time.as_secs_f64().max(1e-9),
        results.loaded.vacuum_time.as_secs_f64(),
    ));

    let mut table = Table::new(&[
        "",
        "(a) Roster gRPC+auth",
        "(b) bare tonic",
        "(c) plain SQL",
    ]);
    let cells = |grid: &Grid, concurrency: usize, f: fn(Option<&LoadResult>) -> String| {
        Contender::ALL
            .iter()
            .map(|contender| f(grid.get(*contender, concurrency)))
            .collect::<Vec<_>>()
    };
    for (name, grid) in [
        (
            "GetUser (user + identities, one statement)",
            &results.get_user,
        ),
        (
            "CreateUser (user + outbox row, atomically)",
            &results.create_user,
        ),
    ] {
        if grid.cells.is_empty() {
            continue;
        }
        table.section(name);
        for &concurrency in &options.concurrency {
            table.row(
                format!("c={concurrency:<3} ops/s"),
                cells(grid, concurrency, report::throughput),
            );
            table.row(
                format!("c={concurrency:<3} p50 / p99 ms"),
                cells(grid, concurrency, report::p50_p99),
            );
            table.row(
                format!("c={concurrency:<3} server CPU µs/call"),
                cells(grid, concurrency, report::cpu_per_call),
            );
            table.row(
                format!("c={concurrency:<3} client CPU µs/call"),
                cells(grid, concurrency, report::client_cpu_per_call),
            );
            if let Some(one) = grid.get(Contender::SqlOneStatement, concurrency) {
                table.row(
                    format!("c={concurrency:<3} ops/s, (a)'s one statement"),
                    vec![String::new(), String::new(), report::throughput(Some(one))],
                );
            }
        }
    }
    for search in &results.searches {
        table.section(format!(
            "ListUsers filter email:{} ({} matches), page {}",
            search.term, search.matches, search.page
        ));
        if search.runs.is_empty() {
            table.row(
                "  (fewer pages than that)",
                vec!["-".to_owned(), "-".to_owned(), "-".to_owned()],
            );
            continue;
        }
        for run in &search.runs {
            let c = run.concurrency;
            let contenders = [Some(&run.roster), Some(&run.bare), Some(&run.sql)];
            for (what, figure) in [
                (
                    "calls/s",
                    report::throughput as fn(Option<&LoadResult>) -> String,
                ),
                ("p50 / p99 ms", report::p50_p99),
                ("server CPU µs/call", report::cpu_per_call),
                ("client CPU µs/call", report::client_cpu_per_call),
            ] {
                table.row(format!("c={c:<3} {what}"), contenders.map(figure).to_vec());
            }
        }
        table.row(
            "plan scans end_users (Seq Scan)?",
            vec![
                String::new(),
                String::new(),
                format!(
                    "{} (generic plan: {})",
                    yes_no(search.scans_table()),
                    yes_no(search.generic_scans_table())
                ),
            ],
        );
    }
    if let Some(Err(error)) = &results.import {
        table.section("Import: ImportUsers vs COPY");
        table.row(format!("FAILED: {error}"), Vec::new());
    }
    if let Some(Ok(import)) = &results.import {
        table.section(format!(
            "Import: {} of a {}-row CSV ({:.0} MiB), ImportUsers vs COPY",
            if import.cut_short {
                "first part"
            } else {
                "all"
            },
            import.file_rows,
            import.file_bytes as f64 / (1024.0 * 1024.0)
        ));
        table.row(
            "rows",
            vec![
                import.processed.to_string(),
                "-".to_owned(),
                import.copy_rows.to_string(),
            ],
        );
        table.row(
            "seconds",
            vec![
                format!("{:.1}", import.import_time.as_secs_f64()),
                "-".to_owned(),
                format!("{:.1}", import.copy_time.as_secs_f64()),
            ],
        );
        table.row(
            "rows/s",
            vec![
                report::rate(import.import_rate()),
                "-".to_owned(),
                report::rate(import.copy_rate()),
            ],
        );
        table.row(
            "peak RSS of the bench process",
            vec![report::mib(import.peak_rss), "-".to_owned(), "-".to_owned()],
        );
    }
    out.push_str(&table.render());

    out.push_str("\nTargets (ratios of this run)\n");
    out.push_str(&report::render_checks(&checks(options, results)));

    out.push_str("\nQuery plans: EXPLAIN (ANALYZE, BUFFERS) of the list query the store issues, with the same parameters\n");
    for search in &results.searches {
        if search.plan.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\n-- email:{} page {}: {}; generic plan: {}{}\n",
            search.term,
            search.page,
            if search.scans_table() {
                "SEQ SCAN on end_users"
            } else {
                "no seq scan"
            },
            if search.generic_scans_table() {
                "SEQ SCAN on end_users"
            } else {
                "no seq scan"
            },
            if search.same_rows {
                ""
            } else {
                "; WARNING: (a) and (c) returned different rows"
            },
        ));
        for line in &search.plan {
            out.push_str(&format!("   {line}\n"));
        }
        if let Some(top) = search.generic_plan.first() {
            out.push_str(&format!("   generic plan: {}\n", top.trim()));
        }
    }

    out.push_str(&notes(options, results));
    out
}

fn yes_no(value: bool) -> &'static str {
    if value { "YES" } else { "no" }
}

fn checks(options: &Options, results: &Results) -> Vec<Check> {
    let top = options.concurrency.iter().copied().max().unwrap_or(1);
    let at = |grid: &Grid, contender, concurrency| {
        grid.get(contender, concurrency).map(LoadResult::per_second)
    };
    let mid = if options.concurrency.contains(&16) {
        16
    } else {
        top
    };
    let mut checks = vec![
        Check::ratio(
            &format!("GetUser (a)/(b) at c={top}"),
            at(&results.get_user, Contender::Roster, top),
            at(&results.get_user, Contender::Bare, top),
            0.9,
        ),
        Check::ratio(
            &format!("CreateUser (a)/(c) at c={mid}"),
            at(&results.create_user, Contender::Roster, mid),
            at(&results.create_user, Contender::Sql, mid),
            0.8,
        ),
        Check::at_most(
            &format!("server CPU per GetUser (a) at c={top}"),
            results
                .get_user
                .get(Contender::Roster, top)
                .and_then(LoadResult::cpu_per_call)
                .map(|cpu| cpu.as_secs_f64() * 1e6),
            100.0,
            "µs",
        ),
    ];
    let no_scan = results
        .searches
        .iter()
        .filter(|s| !s.plan.is_empty())
        .collect::<Vec<_>>();
    checks.push(Check::holds(
        "search never scans end_users (custom plans)",
        Some(format!(
            "{}/{} ok",
            no_scan.iter().filter(|s| !s.scans_table()).count(),
            no_scan.len()
        )),
        "no Seq Scan",
        (!no_scan.is_empty()).then(|| no_scan.iter().all(|s| !s.scans_table())),
    ));
    // The latency target is a single caller's: the first (lowest) concurrency level.
    let p99_ms = |search: &SearchOutcome| {
        search
            .runs
            .first()
            .and_then(|run| run.roster.latencies.percentile(99.0))
            .map(|p99| p99.as_secs_f64() * 1000.0)
    };
    if let Some(selective) = results
        .searches
        .iter()
        .find(|s| s.term == SELECTIVE_TERM && s.page == 1)
    {
        checks.push(Check::at_most(
            "search selective page 1 p99 (a)",
            p99_ms(selective),
            20.0,
            "ms",
        ));
    }
    // The bar is the plain client (c); (b) shows how much of the gap is the gRPC
    // hop itself, which Roster's layers are held to 10% of, as for GetUser.
    for search in results.searches.iter().filter(|s| s.term == COMMON_TERM) {
        for run in &search.runs {
            checks.push(Check::ratio(
                &format!(
                    "search common page {} rate (a)/(c) at c={}",
                    search.page, run.concurrency
                ),
                Some(run.roster.per_second()),
                Some(run.sql.per_second()),
                0.8,
            ));
            checks.push(Check::ratio(
                &format!(
                    "search common page {} rate (a)/(b) at c={}",
                    search.page, run.concurrency
                ),
                Some(run.roster.per_second()),
                Some(run.bare.per_second()),
                0.9,
            ));
        }
    }
    if let Some(Ok(import)) = &results.import {
        checks.push(Check::ratio(
            "import rows/s ImportUsers/COPY",
            Some(import.import_rate()),
            Some(import.copy_rate()),
            0.8,
        ));
        checks.push(Check::at_most(
            "peak RSS during import",
            Some(import.peak_rss as f64 / (1024.0 * 1024.0)),
            200.0,
            "MiB",
        ));
    }
    checks
}

fn notes(options: &Options, results: &Results) -> String {
    let mut out = String::from("\nHow this was measured\n");
    let lines = [
        format!(
            "(a) the real directory (roster_directory::Application: request context, global concurrency limit, panic catcher, tonic timeout, token interceptor, validation, service and store) on a pool of {} connections. ONE admin token (EdDSA) is minted at start and sent as `authorization: Bearer` on every call, so the verifier checks its signature once and then answers from its cache (TTL 60 s: about one re-verification a minute).",
            options.pool_size
        ),
        "(b) a tonic server for the same contract with no Roster layers, no auth and no validation; GetUser, CreateUser and ListUsers send the service's statements through a plain sqlx pool and answer the same messages.".to_owned(),
        format!(
            "(c) a plain sqlx client in the bench with a pool of {} connections: GetUser and ListUsers send the store's statements (the user by primary key, or a page, with identities folded in by a correlated subquery, as store::views reads them); CreateUser writes the user and its outbox event the textbook way, BEGIN, INSERT end_users, INSERT outbox_events, COMMIT: four round trips. The service (and (b)) send the same two INSERTs as ONE statement, the user's as a data-modifying CTE of the outbox's (roster_db::Db::insert_atomically): one round trip, atomic without BEGIN/COMMIT. The row \"(a)'s one statement\" is (c) sending that statement itself.",
            options.pool_size
        ),
        format!(
            "Closed loop: c workers each wait for their call before the next; {} s warm-up, then {} s measured; gRPC workers spread over {} HTTP/2 connections. Latency is the client's view.",
            options.warmup.as_secs_f64(),
            options.duration.as_secs_f64(),
            options.connections
        ),
        format!(
            "Server CPU: (a) and (b) run on their own Tokio runtime ({} threads named {SERVER_THREADS}*), the load generator and (c) on another ({} threads, {CLIENT_THREADS}*). utime+stime of the {SERVER_THREADS}* threads from /proc/self/task/*/stat over the measured window, divided by the calls; includes the service's database driver, excludes PostgreSQL's own CPU and the client. Client CPU: the same for the {CLIENT_THREADS}* threads, which for (a) and (b) is the gRPC client the load generator needs and a real caller runs elsewhere, and for (c) the plain client's whole work. Resolution 10 ms per thread.",
            options.server_threads, options.client_threads
        ),
        "Service logs: no tracing subscriber is installed, so the per-call log line is filtered out, not formatted.".to_owned(),
        format!(
            "Search: filter `email:<term>`, default order (created_at, user_id), page size {}; page 10 is requested with the token/cursor reached by following next_page_token; at each of the concurrency levels {:?}, {} s or {} calls per caller. `generic plan` = the plan with plan_cache_mode=force_generic_plan, which a prepared statement may switch to after five executions.",
            search::PAGE_SIZE,
            options.search_concurrency,
            options.search_duration.as_secs_f64(),
            options.search_calls
        ),
        "Import: the CSV (Fogbender columns + phone, 1000 customers) streams in 64 KiB chunks through ImportUsers to a second directory on a fresh database (its request timeout raised to --import-max-secs + 300 s: with the default 30 s the call is CANCELLED after 30 s); COPY loads the same rows (and the customers) into another fresh, migrated database with the same indexes. Peak RSS = VmHWM of the whole bench process (service, client streaming, idle pools), reset through /proc/self/clear_refs just before the import: an upper bound for the service.".to_owned(),
    ];
    for line in lines {
        out.push_str(&format!("- {line}\n"));
    }
    if let Some(Ok(import)) = &results.import {
        out.push_str(&format!(
            "- Import detail: {} of {} rows processed{}, {} failed{}; RSS before {}.\n",
            import.processed,
            import.file_rows,
            if import.cut_short {
                " (stopped at --import-max-secs)"
            } else {
                ""
            },
            import.failed,
            import
                .first_failure
                .as_ref()
                .map(|f| format!(" (first: {f})"))
                .unwrap_or_default(),
            report::mib(import.rss_before),
        ));
    }
    out
}
