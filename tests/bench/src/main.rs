//! Roster's benchmarks on a local PostgreSQL, each printing one report (see `--help` for
//! the knobs): `cargo run --release -p roster-bench -- directory` measures the directory
//! against a bare tonic server and a plain SQL client; `… -- staff` measures Login against
//! a bare argon2 verification, IssueServiceToken, and what verifying the staff service's
//! tokens costs the directory; `… -- audit` measures the audit service (SQLite unless given
//! a PostgreSQL URL): ingest by batch size, the delay until an event is listable (appended
//! there, or written at the directory and relayed), reads and proofs, and VerifyLog next to
//! a bare RFC 6962 root.

mod argon2_baseline;
mod audit;
mod audit_delay;
mod audit_e2e;
mod audit_service;
mod baseline;
mod cpu;
mod dataset;
mod directory;
mod harness;
mod import;
mod load;
mod pg;
mod report;
mod search;
mod service;
mod sql;
mod staff;
mod staff_service;
mod verification;

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "roster-bench",
    version,
    about = "Benchmarks Roster's services on PostgreSQL (and the audit service on SQLite)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The directory over gRPC with auth (a) vs a bare tonic server (b) vs plain SQL (c).
    Directory(DirectoryArgs),
    /// The staff service: Login vs a bare argon2 verify, IssueServiceToken, and the
    /// directory's cost of verifying its tokens.
    Staff(StaffArgs),
    /// The audit service: AppendEvents by batch size, the delay until an event is
    /// listable (appended, or from a directory write through its relay), ListEvents,
    /// GetInclusionProof and VerifyLog on a large log.
    Audit(AuditArgs),
}

/// What the PostgreSQL benches take.
#[derive(Args)]
struct CommonArgs {
    /// An admin URL on the local server; the bench creates (and drops) its own databases.
    /// Without TLS by default: over loopback it protects nothing, and it would add some 40 µs
    /// of encryption per GetUser to every column alike. Pass `sslmode=require` to measure it.
    #[arg(
        long,
        env = "ROSTER_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
    )]
    database_url: String,
    #[command(flatten)]
    run: RunArgs,
}

/// What every bench takes, whatever its database.
#[derive(Args)]
struct RunArgs {
    /// Measured seconds per cell.
    #[arg(long, alias = "duration", default_value_t = 5)]
    duration_secs: u64,
    /// Warm-up seconds before each cell.
    #[arg(long, default_value_t = 1)]
    warmup_secs: u64,
    /// HTTP/2 connections the gRPC callers share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Database connections of each service's (and each plain client's) pool.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// Keep the bench's databases instead of dropping them.
    #[arg(long)]
    keep_databases: bool,
    /// Worker threads of the runtime hosting the servers under test.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
}

impl RunArgs {
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.duration_secs >= 1, "--duration-secs: at least 1");
        anyhow::ensure!(
            (1..=64).contains(&self.connections),
            "--connections: 1 to 64"
        );
        anyhow::ensure!((1..=64).contains(&self.pool_size), "--pool-size: 1 to 64");
        anyhow::ensure!(
            (1..=64).contains(&self.server_threads) && (1..=64).contains(&self.client_threads),
            "--server-threads / --client-threads: 1 to 64"
        );
        Ok(())
    }
}

fn check_concurrency(flag: &str, levels: &[usize]) -> anyhow::Result<()> {
    anyhow::ensure!(
        !levels.is_empty() && levels.iter().all(|c| (1..=1024).contains(c)),
        "{flag}: values from 1 to 1024"
    );
    Ok(())
}

#[derive(Args)]
struct DirectoryArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Users bulk-loaded for GetUser and search.
    #[arg(long, default_value_t = 1_000_000)]
    users: u64,
    /// Concurrency levels (closed-loop callers).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Measured seconds per search case and concurrency (at most `--search-calls` calls
    /// per caller).
    #[arg(long, default_value_t = 5)]
    search_secs: u64,
    #[arg(long, default_value_t = 20_000)]
    search_calls: u64,
    /// Concurrency levels of the search cases.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    search_concurrency: Vec<usize>,
    /// Leave out the ImportUsers / COPY comparison (the same as leaving `import` out of
    /// `--only`).
    #[arg(long)]
    skip_import: bool,
    /// Measure only these parts (comma-separated); the report leaves the others blank.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "get-user,create-user,search,import"
    )]
    only: Vec<Part>,
    /// Rows of the import CSV (default: --users).
    #[arg(long)]
    import_rows: Option<u64>,
    /// End the import stream after this many seconds; the rate then covers the rows done.
    #[arg(long, default_value_t = 300)]
    import_max_secs: u64,
    /// Have PostgreSQL log every statement on the main bench database (its server log shows
    /// the SQL of the service next to the bench's own).
    #[arg(long)]
    log_statements: bool,
}

/// The parts of the directory bench, to measure one at a time while working on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    GetUser,
    CreateUser,
    Search,
    Import,
}

impl DirectoryArgs {
    fn into_options(self) -> anyhow::Result<directory::Options> {
        let common = self.common;
        common.run.check()?;
        anyhow::ensure!(self.users >= 100, "--users: at least 100");
        check_concurrency("--concurrency", &self.concurrency)?;
        check_concurrency("--search-concurrency", &self.search_concurrency)?;
        let import_rows = self.import_rows.unwrap_or(self.users);
        anyhow::ensure!(import_rows >= 1, "--import-rows: at least 1");
        Ok(directory::Options {
            admin_url: common.database_url,
            users: self.users,
            duration: Duration::from_secs(common.run.duration_secs),
            warmup: Duration::from_secs(common.run.warmup_secs),
            concurrency: self.concurrency,
            connections: common.run.connections,
            pool_size: common.run.pool_size,
            search_duration: Duration::from_secs(self.search_secs.max(1)),
            search_calls: self.search_calls.max(1),
            search_concurrency: self.search_concurrency,
            get_user: self.only.contains(&Part::GetUser),
            create_user: self.only.contains(&Part::CreateUser),
            search: self.only.contains(&Part::Search),
            import: self.only.contains(&Part::Import) && !self.skip_import,
            import_rows,
            import_max_time: Duration::from_secs(self.import_max_secs.max(1)),
            keep_databases: common.run.keep_databases,
            log_statements: self.log_statements,
            server_threads: common.run.server_threads,
            client_threads: common.run.client_threads,
        })
    }
}

#[derive(Args)]
struct StaffArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Concurrency levels of Login and of the bare argon2 verify.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    concurrency: Vec<usize>,
    /// Concurrency levels of IssueServiceToken.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    issue_concurrency: Vec<usize>,
    /// Concurrency of GetUser in the verification part.
    #[arg(long, default_value_t = 16)]
    verify_concurrency: usize,
    /// Active agents Login spreads over (at least the highest --concurrency).
    #[arg(long, default_value_t = 256)]
    agents: usize,
    /// Service accounts IssueServiceToken spreads over.
    #[arg(long, default_value_t = 16)]
    service_accounts: usize,
    /// Measure only these parts (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "login,issue,verify")]
    only: Vec<StaffPart>,
    /// Calls of `TokenVerifier::verify` with the cached token.
    #[arg(long, default_value_t = 1_000_000)]
    verify_iterations: u64,
    /// Fresh tokens minted for the uncached cases (more than the verifier's cache holds).
    #[arg(long, default_value_t = 30_000)]
    fresh_tokens: usize,
}

/// The parts of the staff bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StaffPart {
    Login,
    Issue,
    Verify,
}

impl StaffArgs {
    fn into_options(self) -> anyhow::Result<staff::Options> {
        let common = self.common;
        common.run.check()?;
        check_concurrency("--concurrency", &self.concurrency)?;
        check_concurrency("--issue-concurrency", &self.issue_concurrency)?;
        check_concurrency("--verify-concurrency", &[self.verify_concurrency])?;
        let top = self.concurrency.iter().copied().max().unwrap_or(1);
        anyhow::ensure!(
            (top..=100_000).contains(&self.agents),
            "--agents: from the highest --concurrency ({top}) to 100000, so no account has two sign-ins in flight"
        );
        anyhow::ensure!(
            (1..=1000).contains(&self.service_accounts),
            "--service-accounts: 1 to 1000"
        );
        anyhow::ensure!(
            self.verify_iterations >= 1,
            "--verify-iterations: at least 1"
        );
        let cache = roster_auth::VerifierSettings::default().cache_capacity;
        anyhow::ensure!(
            (cache + 1..=1_000_000).contains(&self.fresh_tokens),
            "--fresh-tokens: more than the verifier's cache holds ({cache}), at most 1000000"
        );
        Ok(staff::Options {
            admin_url: common.database_url,
            duration: Duration::from_secs(common.run.duration_secs),
            warmup: Duration::from_secs(common.run.warmup_secs),
            login_concurrency: self.concurrency,
            issue_concurrency: self.issue_concurrency,
            verify_concurrency: self.verify_concurrency,
            agents: self.agents,
            service_accounts: self.service_accounts,
            connections: common.run.connections,
            pool_size: common.run.pool_size,
            login: self.only.contains(&StaffPart::Login),
            issue: self.only.contains(&StaffPart::Issue),
            verify: self.only.contains(&StaffPart::Verify),
            verify_iterations: self.verify_iterations,
            fresh_tokens: self.fresh_tokens,
            keep_databases: common.run.keep_databases,
            server_threads: common.run.server_threads,
            client_threads: common.run.client_threads,
        })
    }
}

#[derive(Args)]
struct AuditArgs {
    /// A PostgreSQL admin URL on the local server, to measure on PostgreSQL (the bench
    /// creates and drops a database of its own), as the other benches take it. Unset: a
    /// SQLite file in a temporary directory, the embedded default.
    #[arg(long, env = "ROSTER_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    #[command(flatten)]
    run: RunArgs,
    /// Events per AppendEvents call of the ingest cells (1 to 1000).
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    batch_sizes: Vec<usize>,
    /// Closed-loop callers of the ingest, ListEvents and GetInclusionProof cells.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Workspaces of the several-workspace ingest cells (below 2: only one workspace).
    #[arg(long, default_value_t = 8)]
    workspaces: usize,
    /// Events per second the delay part appends, and CreateUser calls per second the e2e
    /// part makes at the directory (open loop)...
    #[arg(long, default_value_t = 1000)]
    delay_rate: u64,
    /// ... the delay part's in calls of this many events.
    #[arg(long, default_value_t = 10)]
    delay_batch: usize,
    /// Events of the large log that ListEvents, GetInclusionProof and VerifyLog read (the
    /// audit issue's figure is 10000000; loading goes at the ingest rate of calls of 1000).
    #[arg(long, default_value_t = 1_000_000)]
    log_events: u64,
    /// AppendEvents calls in flight while loading the large log.
    #[arg(long, default_value_t = 4)]
    load_concurrency: usize,
    /// VerifyLog calls on the large log, one after the other.
    #[arg(long, default_value_t = 2)]
    verify_runs: usize,
    /// Measure only these parts (comma-separated); list, proofs and verify load the large
    /// log first; e2e runs the directory and its relay too (tuned by
    /// ROSTER_DIRECTORY_AUDIT_BATCH and ROSTER_DIRECTORY_AUDIT_POLL_INTERVAL).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ingest,delay,e2e,list,proofs,verify"
    )]
    only: Vec<AuditPart>,
}

/// The parts of the audit bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum AuditPart {
    Ingest,
    Delay,
    E2e,
    List,
    Proofs,
    Verify,
}

impl AuditArgs {
    fn into_options(self) -> anyhow::Result<audit::Options> {
        let run = self.run;
        run.check()?;
        check_concurrency("--concurrency", &[self.concurrency])?;
        check_concurrency("--load-concurrency", &[self.load_concurrency])?;
        anyhow::ensure!(
            !self.batch_sizes.is_empty()
                && self
                    .batch_sizes
                    .iter()
                    .all(|b| (1..=roster_audit::api::MAX_BATCH).contains(b)),
            "--batch-sizes: values from 1 to {}",
            roster_audit::api::MAX_BATCH
        );
        anyhow::ensure!(self.workspaces <= 1000, "--workspaces: at most 1000");
        anyhow::ensure!(
            (1..=100_000).contains(&self.delay_rate),
            "--delay-rate: 1 to 100000 events/s"
        );
        anyhow::ensure!(
            (1..=roster_audit::api::MAX_BATCH).contains(&self.delay_batch),
            "--delay-batch: 1 to {}",
            roster_audit::api::MAX_BATCH
        );
        anyhow::ensure!(
            (1000..=100_000_000).contains(&self.log_events),
            "--log-events: 1000 to 100000000"
        );
        anyhow::ensure!(
            (1..=100).contains(&self.verify_runs),
            "--verify-runs: 1 to 100"
        );
        Ok(audit::Options {
            postgres_url: self.database_url.filter(|url| !url.is_empty()),
            duration: Duration::from_secs(run.duration_secs),
            warmup: Duration::from_secs(run.warmup_secs),
            connections: run.connections,
            pool_size: run.pool_size,
            keep_databases: run.keep_databases,
            server_threads: run.server_threads,
            client_threads: run.client_threads,
            batch_sizes: self.batch_sizes,
            concurrency: self.concurrency,
            workspaces: self.workspaces,
            delay_rate: self.delay_rate,
            delay_batch: self.delay_batch,
            log_events: self.log_events,
            load_concurrency: self.load_concurrency,
            verify_runs: self.verify_runs,
            ingest: self.only.contains(&AuditPart::Ingest),
            delay: self.only.contains(&AuditPart::Delay),
            e2e: self.only.contains(&AuditPart::E2e),
            list: self.only.contains(&AuditPart::List),
            proofs: self.only.contains(&AuditPart::Proofs),
            verify: self.only.contains(&AuditPart::Verify),
        })
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Directory(args) => {
            let options = args.into_options()?;
            harness::run_on_runtimes(options.server_threads, options.client_threads, |servers| {
                directory::run(options, servers)
            })
        }
        Command::Staff(args) => {
            let options = args.into_options()?;
            harness::run_on_runtimes(options.server_threads, options.client_threads, |servers| {
                staff::run(options, servers)
            })
        }
        Command::Audit(args) => {
            let options = args.into_options()?;
            harness::run_on_runtimes(options.server_threads, options.client_threads, |servers| {
                audit::run(options, servers)
            })
        }
    }
}
