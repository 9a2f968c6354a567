//! Roster's benchmarks. `cargo run --release -p roster-bench -- directory` measures the
//! directory against a bare tonic server and a plain SQL client on a local PostgreSQL and
//! prints one report; see `--help` for the knobs.

mod baseline;
mod cpu;
mod dataset;
mod directory;
mod import;
mod load;
mod pg;
mod report;
mod search;
mod service;
mod sql;

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "roster-bench",
    version,
    about = "Benchmarks Roster's services on PostgreSQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The directory over gRPC with auth (a) vs a bare tonic server (b) vs plain SQL (c).
    Directory(DirectoryArgs),
}

#[derive(Args)]
struct DirectoryArgs {
    /// An admin URL on the local server; the bench creates (and drops) its own databases.
    /// Without TLS by default: over loopback it protects nothing, and it would add some 40 µs
    /// of encryption per GetUser to every column alike. Pass `sslmode=require` to measure it.
    #[arg(
        long,
        env = "ROSTER_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
    )]
    database_url: String,
    /// Users bulk-loaded for GetUser and search.
    #[arg(long, default_value_t = 1_000_000)]
    users: u64,
    /// Measured seconds per GetUser/CreateUser cell.
    #[arg(long, default_value_t = 5)]
    duration_secs: u64,
    /// Warm-up seconds before each cell.
    #[arg(long, default_value_t = 1)]
    warmup_secs: u64,
    /// Concurrency levels (closed-loop callers).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// HTTP/2 connections the gRPC callers share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Database connections of each contender's pool.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
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
    /// Keep the bench's databases instead of dropping them.
    #[arg(long)]
    keep_databases: bool,
    /// Have PostgreSQL log every statement on the main bench database (its server log shows
    /// the SQL of the service next to the bench's own).
    #[arg(long)]
    log_statements: bool,
    /// Worker threads of the runtime hosting the servers under test.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
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
        anyhow::ensure!(self.users >= 100, "--users: at least 100");
        anyhow::ensure!(self.duration_secs >= 1, "--duration-secs: at least 1");
        anyhow::ensure!(
            !self.concurrency.is_empty() && self.concurrency.iter().all(|c| (1..=1024).contains(c)),
            "--concurrency: values from 1 to 1024"
        );
        anyhow::ensure!(
            !self.search_concurrency.is_empty()
                && self
                    .search_concurrency
                    .iter()
                    .all(|c| (1..=1024).contains(c)),
            "--search-concurrency: values from 1 to 1024"
        );
        anyhow::ensure!(
            (1..=64).contains(&self.connections),
            "--connections: 1 to 64"
        );
        anyhow::ensure!((1..=64).contains(&self.pool_size), "--pool-size: 1 to 64");
        anyhow::ensure!(
            (1..=64).contains(&self.server_threads) && (1..=64).contains(&self.client_threads),
            "--server-threads / --client-threads: 1 to 64"
        );
        let import_rows = self.import_rows.unwrap_or(self.users);
        anyhow::ensure!(import_rows >= 1, "--import-rows: at least 1");
        Ok(directory::Options {
            admin_url: self.database_url,
            users: self.users,
            duration: Duration::from_secs(self.duration_secs),
            warmup: Duration::from_secs(self.warmup_secs),
            concurrency: self.concurrency,
            connections: self.connections,
            pool_size: self.pool_size,
            search_duration: Duration::from_secs(self.search_secs.max(1)),
            search_calls: self.search_calls.max(1),
            search_concurrency: self.search_concurrency,
            get_user: self.only.contains(&Part::GetUser),
            create_user: self.only.contains(&Part::CreateUser),
            search: self.only.contains(&Part::Search),
            import: self.only.contains(&Part::Import) && !self.skip_import,
            import_rows,
            import_max_time: Duration::from_secs(self.import_max_secs.max(1)),
            keep_databases: self.keep_databases,
            log_statements: self.log_statements,
            server_threads: self.server_threads,
            client_threads: self.client_threads,
        })
    }
}

fn runtime(threads: usize, name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("starting the {name} runtime"))
}

fn main() -> anyhow::Result<()> {
    let Command::Directory(args) = Cli::parse().command;
    let options = args.into_options()?;
    // The servers under test get their own runtime so their threads' CPU can be measured
    // apart from the load generator's.
    let servers = runtime(options.server_threads, directory::SERVER_THREADS)?;
    let clients = runtime(options.client_threads, directory::CLIENT_THREADS)?;
    let result = clients.block_on(directory::run(options, servers.handle().clone()));
    servers.shutdown_timeout(Duration::from_secs(5));
    clients.shutdown_timeout(Duration::from_secs(5));
    result
}
