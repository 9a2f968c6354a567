//! `roster-bench staff`: the staff service's sign-in paths on PostgreSQL — Login against a
//! bare argon2 verification at the same parameters, IssueServiceToken — and what checking
//! its tokens costs the directory, which follows its keys and revocations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use roster_proto::directory::v1 as directory_pb;
use roster_proto::directory::v1::directory_service_client::DirectoryServiceClient;
use roster_proto::staff::v1 as pb;
use roster_proto::staff::v1::staff_service_client::StaffServiceClient;
use roster_staff::service::SignInPolicy;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::argon2_baseline;
use crate::harness::{self, CLIENT_THREADS, Databases, SERVER_THREADS, channels, progress};
use crate::load::{self, LoadResult, LoadSpec};
use crate::pg;
use crate::report::{self, Check, Table};
use crate::service::{self, Directory};
use crate::staff_service::{self, Agent, Credentials, PASSWORD, StaffService, WORKSPACE};
use crate::verification::{self, Following, VerifyCost};

/// What the service accounts may do: the directory's writes, as an integration would hold.
const SERVICE_ACCOUNT_PERMISSIONS: [&str; 2] = ["end_users.write", "customers.write"];
/// End-users the verification cells read, round robin.
const USERS: usize = 16;

#[derive(Clone, Debug)]
pub struct Options {
    pub admin_url: String,
    pub duration: Duration,
    pub warmup: Duration,
    pub login_concurrency: Vec<usize>,
    pub issue_concurrency: Vec<usize>,
    pub verify_concurrency: usize,
    pub agents: usize,
    pub service_accounts: usize,
    pub connections: usize,
    pub pool_size: u32,
    pub login: bool,
    pub issue: bool,
    pub verify: bool,
    pub verify_iterations: u64,
    pub fresh_tokens: usize,
    pub keep_databases: bool,
    pub server_threads: usize,
    pub client_threads: usize,
}

/// One concurrency level of Login and its baseline.
struct LoginCell {
    concurrency: usize,
    login: LoadResult,
    bare: LoadResult,
}

struct Verification {
    token_bytes: usize,
    cached: VerifyCost,
    fresh: VerifyCost,
    get_user_cached: LoadResult,
    get_user_fresh: LoadResult,
}

struct Results {
    postgres_version: String,
    tls: bool,
    /// How long inviting and accepting the agents took, when they were prepared.
    agents_prepared_in: Option<Duration>,
    /// Parameters of a password hash the service stored, and of the baseline's hash.
    stored_parameters: Option<String>,
    bare_parameters: String,
    per_address_limit: i64,
    login: Vec<LoginCell>,
    issue: Vec<(usize, LoadResult)>,
    verification: Option<Verification>,
}

/// Runs the whole bench; databases are dropped however it ends (Ctrl-C included).
pub async fn run(options: Options, server_runtime: tokio::runtime::Handle) -> anyhow::Result<()> {
    let mut databases = Databases::new(&options.admin_url, options.keep_databases)?;
    let outcome = harness::interruptible(measure(&options, &server_runtime, &mut databases)).await;
    databases.drop_all().await;
    let results = outcome?;
    harness::report(&render(&options, &results), &error_summary(&results))
}

/// The sign-in policy under test: the service's defaults, except that the per-address limit
/// (attempts in flight from one address, since a success refunds its attempt) is raised
/// above the highest Login concurrency, as every bench caller shares 127.0.0.1.
fn sign_in_policy(options: &Options) -> SignInPolicy {
    let mut policy = SignInPolicy::default();
    let top = options.login_concurrency.iter().copied().max().unwrap_or(1);
    let top = i64::try_from(top).unwrap_or(i64::MAX);
    if options.login && top >= policy.throttle.per_address {
        policy.throttle.per_address = top.saturating_mul(2);
    }
    policy
}

async fn measure(
    options: &Options,
    server_runtime: &tokio::runtime::Handle,
    databases: &mut Databases,
) -> anyhow::Result<Results> {
    let database = databases.create("staff").await?;
    let mut settings = database.service_settings();
    settings.max_connections = options.pool_size;
    let mut conn = database.connection().await?;
    let (postgres_version, tls) = pg::server_info(&mut conn).await?;
    let policy = sign_in_policy(options);
    let per_address_limit = policy.throttle.per_address;
    let staff = StaffService::start(server_runtime, settings, policy).await?;
    progress(format!(
        "the staff service is serving on {} (migrated)",
        staff.addr()
    ));
    let staff_channels = channels(staff.addr(), options.connections).await?;

    let bare_hash = argon2_baseline::hash(PASSWORD)?;
    let mut results = Results {
        postgres_version,
        tls,
        agents_prepared_in: None,
        stored_parameters: None,
        bare_parameters: argon2_baseline::parameters(&bare_hash),
        per_address_limit,
        login: Vec::new(),
        issue: Vec::new(),
        verification: None,
    };

    let agents = if options.login || options.verify {
        let count = if options.login { options.agents } else { 1 };
        progress(format!("inviting and accepting {count} agents…"));
        let started = Instant::now();
        let agents = staff
            .prepare_agents(&staff_channels[0], count, "agent", 8)
            .await?;
        results.agents_prepared_in = Some(started.elapsed());
        let stored: String =
            sea_orm::sqlx::query_scalar("SELECT password_hash FROM agent_passwords LIMIT 1")
                .fetch_one(&mut conn)
                .await
                .context("reading a stored password hash")?;
        results.stored_parameters = Some(argon2_baseline::parameters(&stored));
        Arc::new(agents)
    } else {
        Arc::new(Vec::new())
    };

    for &concurrency in options.login_concurrency.iter().filter(|_| options.login) {
        let spec = harness::load_spec(concurrency, options.warmup, options.duration);
        progress(format!("Login c={concurrency}"));
        let login = login_cell(spec, &staff_channels, &agents).await?;
        progress(format!("bare argon2 verify c={concurrency}"));
        let bare = argon2_baseline::run(spec, server_runtime, &bare_hash, PASSWORD).await?;
        results.login.push(LoginCell {
            concurrency,
            login,
            bare,
        });
    }

    let accounts = if options.issue || options.verify {
        let count = if options.issue {
            options.service_accounts
        } else {
            1
        };
        progress(format!("creating {count} service accounts…"));
        Arc::new(
            staff
                .prepare_service_accounts(&staff_channels[0], count, &SERVICE_ACCOUNT_PERMISSIONS)
                .await?,
        )
    } else {
        Arc::new(Vec::new())
    };
    for &concurrency in options.issue_concurrency.iter().filter(|_| options.issue) {
        progress(format!("IssueServiceToken c={concurrency}"));
        let spec = harness::load_spec(concurrency, options.warmup, options.duration);
        results.issue.push((
            concurrency,
            issue_cell(spec, &staff_channels, &accounts).await?,
        ));
    }

    if options.verify {
        let directory_database = databases.create("directory").await?.service_settings();
        results.verification = Some(
            verify(
                options,
                server_runtime,
                &staff,
                &staff_channels[0],
                directory_database,
                &agents[0],
                &accounts[0],
            )
            .await?,
        );
    }
    drop(staff_channels);
    staff.stop().await?;
    Ok(results)
}

/// Login from `spec.concurrency` callers, each signing in its own agents in turn, so no
/// two calls in flight name one account.
async fn login_cell(
    spec: LoadSpec,
    channels: &[Channel],
    agents: &Arc<Vec<Agent>>,
) -> anyhow::Result<LoadResult> {
    let concurrency = spec.concurrency.max(1);
    anyhow::ensure!(
        agents.len() >= concurrency,
        "{} agents cannot keep {concurrency} sign-ins apart",
        agents.len()
    );
    let per_worker = agents.len() / concurrency;
    let channels = channels.to_vec();
    let agents = Arc::clone(agents);
    load::run(spec, Some(SERVER_THREADS), move |call| {
        let mut client = StaffServiceClient::new(channels[call.worker % channels.len()].clone());
        let turn = usize::try_from(call.call % per_worker as u64).unwrap_or_default();
        let agent = &agents[call.worker + concurrency * turn];
        let request = pb::LoginRequest {
            workspace_id: WORKSPACE.to_owned(),
            email: agent.email.clone(),
            password: PASSWORD.to_owned(),
        };
        async move {
            client.login(request).await?;
            Ok(())
        }
    })
    .await
}

async fn issue_cell(
    spec: LoadSpec,
    channels: &[Channel],
    accounts: &Arc<Vec<Credentials>>,
) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(!accounts.is_empty(), "no service accounts");
    let channels = channels.to_vec();
    let accounts = Arc::clone(accounts);
    load::run(spec, Some(SERVER_THREADS), move |call| {
        let mut client = StaffServiceClient::new(channels[call.worker % channels.len()].clone());
        let account = &accounts[call.worker % accounts.len()];
        let request = pb::IssueServiceTokenRequest {
            client_id: account.client_id.clone(),
            client_secret: account.client_secret.clone(),
        };
        async move {
            client.issue_service_token(request).await?;
            Ok(())
        }
    })
    .await
}

/// The directory following the staff service: the in-process cost of `verify` with a
/// cached and with fresh tokens, then GetUser over gRPC with either.
async fn verify(
    options: &Options,
    server_runtime: &tokio::runtime::Handle,
    staff: &StaffService,
    staff_channel: &Channel,
    directory_database: roster_db::DbSettings,
    agent: &Agent,
    account: &Credentials,
) -> anyhow::Result<Verification> {
    let following = Following::start(server_runtime, &staff.url()).await?;
    progress("the directory's verifier holds the staff service's keys and revocation snapshot");
    let agent_token = staff_service::login(staff_channel, agent).await?;
    let service_token = staff_service::issue(staff_channel, account).await?;
    let directory = Directory::start_with(
        server_runtime,
        directory_database,
        following.verifier.clone(),
        &agent_token,
        None,
        None,
    )
    .await?;
    progress(format!("the directory is serving on {}", directory.addr));
    let directory_channels = channels(directory.addr, options.connections).await?;
    let users = Arc::new(create_users(&directory_channels[0], &service_token).await?);

    progress(format!(
        "minting {} fresh tokens as Login does…",
        options.fresh_tokens
    ));
    let fresh = Arc::new(
        verification::fresh_tokens(
            &staff.keys,
            &following.verifier,
            &agent_token,
            options.fresh_tokens,
        )
        .await?,
    );
    progress("TokenVerifier::verify in a tight loop, cached and fresh tokens");
    let (cached, fresh_cost) = {
        let verifier = following.verifier.clone();
        let token = agent_token.clone();
        let fresh = Arc::clone(&fresh);
        let iterations = options.verify_iterations;
        tokio::task::spawn_blocking(move || {
            anyhow::Ok((
                verification::cached_cost(&verifier, &token, iterations)?,
                verification::fresh_cost(&verifier, &fresh)?,
            ))
        })
        .await
        .context("the verifying thread failed")??
    };

    let spec = harness::load_spec(options.verify_concurrency, options.warmup, options.duration);
    progress(format!(
        "GetUser c={} with the agent's token",
        options.verify_concurrency
    ));
    let cached_authorization = Arc::new(vec![directory.authorization.clone()]);
    let get_user_cached =
        get_user_cell(spec, &directory_channels, &users, cached_authorization).await?;
    progress(format!(
        "GetUser c={} with a fresh token per call",
        options.verify_concurrency
    ));
    let fresh_authorization = Arc::new(
        fresh
            .iter()
            .map(|token| service::bearer(token))
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    let get_user_fresh =
        get_user_cell(spec, &directory_channels, &users, fresh_authorization).await?;

    drop(directory_channels);
    directory.stop().await?;
    following.stop();
    Ok(Verification {
        token_bytes: agent_token.len(),
        cached,
        fresh: fresh_cost,
        get_user_cached,
        get_user_fresh,
    })
}

/// [`USERS`] end-users created with a service account's token.
async fn create_users(channel: &Channel, service_token: &str) -> anyhow::Result<Vec<String>> {
    let authorization = service::bearer(service_token)?;
    let mut client = DirectoryServiceClient::new(channel.clone());
    let mut ids = Vec::with_capacity(USERS);
    for n in 0..USERS {
        let user = client
            .create_user(service::authorized(
                &authorization,
                directory_pb::CreateUserRequest {
                    workspace_id: WORKSPACE.to_owned(),
                    user: Some(directory_pb::User {
                        email: format!("user{n}@bench.test"),
                        name: format!("User {n}"),
                        ..directory_pb::User::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .context("CreateUser with a service account's token")?
            .into_inner();
        ids.push(user.user_id);
    }
    Ok(ids)
}

/// GetUser, each call sending the next of `authorizations` (one for all calls, or fresh
/// tokens taken in turn: with more of them than the verifier's cache holds, a token comes
/// round again only after it was evicted).
async fn get_user_cell(
    spec: LoadSpec,
    channels: &[Channel],
    users: &Arc<Vec<String>>,
    authorizations: Arc<Vec<MetadataValue<Ascii>>>,
) -> anyhow::Result<LoadResult> {
    let channels = channels.to_vec();
    let users = Arc::clone(users);
    let next = Arc::new(AtomicUsize::new(0));
    load::run(spec, Some(SERVER_THREADS), move |call| {
        let mut client =
            DirectoryServiceClient::new(channels[call.worker % channels.len()].clone());
        let turn = next.fetch_add(1, Ordering::Relaxed);
        let request = service::authorized(
            &authorizations[turn % authorizations.len()],
            directory_pb::GetUserRequest {
                workspace_id: WORKSPACE.to_owned(),
                user_id: users[turn % users.len()].clone(),
            },
        );
        async move {
            client.get_user(request).await?;
            Ok(())
        }
    })
    .await
}

fn error_summary(results: &Results) -> Vec<String> {
    let mut errors = Vec::new();
    for cell in &results.login {
        let c = cell.concurrency;
        errors.extend(harness::failures(&format!("Login c={c}"), &cell.login));
        errors.extend(harness::failures(&format!("bare argon2 c={c}"), &cell.bare));
    }
    for (c, result) in &results.issue {
        errors.extend(harness::failures(
            &format!("IssueServiceToken c={c}"),
            result,
        ));
    }
    if let Some(verification) = &results.verification {
        errors.extend(harness::failures(
            "GetUser (cached token)",
            &verification.get_user_cached,
        ));
        errors.extend(harness::failures(
            "GetUser (fresh tokens)",
            &verification.get_user_fresh,
        ));
    }
    errors
}

fn micros(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 10.0 {
        format!("{micros:.2}")
    } else {
        format!("{micros:.1}")
    }
}

/// The four figures of a load cell, one row each, for the given columns.
fn load_rows(table: &mut Table, prefix: &str, cells: &[Option<&LoadResult>]) {
    for (what, figure) in [
        (
            "calls/s",
            report::throughput as fn(Option<&LoadResult>) -> String,
        ),
        ("p50 / p99 ms", report::p50_p99),
        ("server CPU µs/call", report::cpu_per_call),
        ("client CPU µs/call", report::client_cpu_per_call),
    ] {
        table.row(
            format!("{prefix} {what}"),
            cells.iter().map(|cell| figure(*cell)).collect(),
        );
    }
}

fn render(options: &Options, results: &Results) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "\nRoster staff benchmark: PostgreSQL {} on 127.0.0.1 ({}), {} CPUs shared by client, servers and PostgreSQL\n",
        results.postgres_version,
        if results.tls {
            "connections over TLS"
        } else {
            "connections without TLS"
        },
        std::thread::available_parallelism().map_or(0, usize::from),
    ));
    let (m, t, p) = argon2_baseline::default_parameters();
    out.push_str(&format!(
        "Passwords: argon2id, m = {m} KiB, t = {t}, p = {p} (Argon2::default()); stored hashes: {}; baseline's hash: {}\n",
        results.stored_parameters.as_deref().unwrap_or("-"),
        results.bare_parameters,
    ));
    out.push_str(
        "Client secrets: 256 random bits, stored as SHA-256 (hex), compared in constant time\n",
    );
    if let Some(took) = results.agents_prepared_in {
        out.push_str(&format!(
            "Agents: {} invited and accepted over gRPC in {:.1} s\n",
            if options.login { options.agents } else { 1 },
            took.as_secs_f64()
        ));
    }
    out.push('\n');

    if !results.login.is_empty() {
        let mut table = Table::new(&["Login", "(a) Login over gRPC", "(b) bare argon2 verify"]);
        for cell in &results.login {
            let c = cell.concurrency;
            table.section(format!("c={c}"));
            load_rows(
                &mut table,
                &format!("c={c:<3}"),
                &[Some(&cell.login), Some(&cell.bare)],
            );
            table.row(
                format!("c={c:<3} (a)/(b) calls/s"),
                vec![ratio(cell.login.per_second(), cell.bare.per_second())],
            );
        }
        out.push_str(&table.render());
        out.push('\n');
    }
    if !results.issue.is_empty() {
        let mut table = Table::new(&["IssueServiceToken", "(a) over gRPC"]);
        for (c, result) in &results.issue {
            load_rows(&mut table, &format!("c={c:<3}"), &[Some(result)]);
        }
        out.push_str(&table.render());
        out.push('\n');
    }
    if let Some(v) = &results.verification {
        let mut table = Table::new(&[
            "Token verification in the directory",
            "cached token",
            "fresh token",
        ]);
        table.section("TokenVerifier::verify, in-process, one thread");
        table.row(
            "µs/call (revocation check included)",
            vec![micros(v.cached.per_call), micros(v.fresh.per_call)],
        );
        table.row(
            "calls",
            vec![v.cached.calls.to_string(), v.fresh.calls.to_string()],
        );
        table.row(
            "agent token bytes",
            vec![v.token_bytes.to_string(), v.token_bytes.to_string()],
        );
        table.section(format!(
            "GetUser over gRPC, c={}",
            options.verify_concurrency
        ));
        load_rows(
            &mut table,
            &format!("c={:<3}", options.verify_concurrency),
            &[Some(&v.get_user_cached), Some(&v.get_user_fresh)],
        );
        out.push_str(&table.render());
        out.push('\n');
    }

    out.push_str("Targets (this run)\n");
    out.push_str(&report::render_checks(&checks(results)));
    out.push_str(&notes(options, results));
    out
}

fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 {
        format!("{:.2}", numerator / denominator)
    } else {
        "-".to_owned()
    }
}

fn checks(results: &Results) -> Vec<Check> {
    let mut checks = Vec::new();
    let login = results
        .login
        .iter()
        .find(|cell| cell.concurrency == 16)
        .or_else(|| results.login.first());
    if let Some(cell) = login {
        checks.push(Check::ratio(
            &format!("Login/bare argon2 calls/s at c={}", cell.concurrency),
            Some(cell.login.per_second()),
            Some(cell.bare.per_second()),
            0.9,
        ));
    }
    for (c, result) in &results.issue {
        checks.push(Check::at_least(
            &format!("IssueServiceToken at c={c}"),
            Some(result.per_second()),
            1000.0,
            "/s",
        ));
    }
    checks
}

fn notes(options: &Options, results: &Results) -> String {
    let mut out = String::from("\nHow this was measured\n");
    let lines = [
        format!(
            "The real staff service (roster_staff::Application: the runtime's layers, token guard, validation, service and store; its signing key created in its database, sealed with a generated KEK) on a pool of {} connections. Closed loop: c workers each wait for their call; {} s warm-up, then {} s measured; gRPC workers spread over {} HTTP/2 connections.",
            options.pool_size,
            options.warmup.as_secs_f64(),
            options.duration.as_secs_f64(),
            options.connections,
        ),
        format!(
            "Login: {} ACTIVE agents (role agent) invited and accepted through the API. Worker w signs in agents w, w+c, w+2c… in turn, so no account has two sign-ins in flight and the per-account limit (5 failures) never applies; successes clear it anyway. Every call comes from 127.0.0.1 and the per-address limit counts attempts in flight (a success refunds its own): it was {} in this run{}. A Login is: count the attempt (account and address, one transaction), read the agent and its hash, argon2 verify on the blocking pool, then one transaction that re-reads the agent, clears and refunds the counters, stamps the sign-in, stores a refresh token and the attempt, reads the effective access; then sign the access token.",
            options.agents,
            results.per_address_limit,
            if results.per_address_limit > 50 {
                " (raised from the default 50 to stay above the Login concurrency)"
            } else {
                " (the default)"
            },
        ),
        format!(
            "(b) bare argon2: Argon2::default().verify_password of a PHC string made by Argon2::default(), parsed per call, one spawn_blocking per call on the servers' runtime ({} worker threads; its blocking pool runs as many verifications at once as there are callers, as Login's does), driven by the same load loop at the same concurrency.",
            options.server_threads
        ),
        format!(
            "IssueServiceToken: {} service accounts (workspace {WORKSPACE}, permissions {}), worker w using account w mod {}: read the account by id, compare SHA-256(secret) with the stored digest in constant time, sign an EdDSA token. No write.",
            options.service_accounts,
            SERVICE_ACCOUNT_PERMISSIONS.join(", "),
            options.service_accounts,
        ),
        format!(
            "Verification: a verifier set up as the directory's (`ROSTER_AUTH_STAFF_URL`): keys fetched from the staff service's GetJwks (the key cache warm), and a RevocationView followed from its WatchRevocations feed (snapshot received before measuring), so every verify, cached or not, includes the revocation check. Cached: one agent token verified {} times after a first call. Fresh: {} tokens minted beforehand by the staff service's AccessTokens with its current key, the claims of the agent's Login token and a fresh jti each, each verified once (signature, claims, cache insert with eviction once its {} entries are full, revocation check). GetUser: the directory on its own database serving that verifier, {USERS} end-users read round robin; with one token for all calls, or the fresh tokens in turn (more than the cache holds, so none is cached when it comes round).",
            options.verify_iterations,
            options.fresh_tokens,
            roster_auth::VerifierSettings::default().cache_capacity,
        ),
        format!(
            "Server CPU: utime+stime of the {SERVER_THREADS}* threads (the servers' runtime with {} workers and its blocking pool, where argon2 runs) over the measured window, divided by the successful calls; excludes PostgreSQL. Client CPU: the same for the load generator's {CLIENT_THREADS}* threads ({} workers). Resolution 10 ms per thread. No tracing subscriber is installed.",
            options.server_threads, options.client_threads
        ),
    ];
    for line in lines {
        out.push_str(&format!("- {line}\n"));
    }
    out
}
