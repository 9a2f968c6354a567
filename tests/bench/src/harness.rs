//! What every bench of the binary shares: the runtimes' thread names, progress lines, the
//! load generator's gRPC connections and load bounds, and the databases a run creates,
//! dropped however the run ends.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tonic::transport::{Channel, Endpoint};
use uuid::Uuid;

use crate::load::{LoadResult, LoadSpec};
use crate::pg::{self, BenchDatabase};

/// Thread-name prefix of the runtime that hosts the servers under test (and their
/// `spawn_blocking` threads, which the runtime names alike).
pub const SERVER_THREADS: &str = "bench-srv";
/// Thread-name prefix of the runtime that runs the load generator and plain clients.
pub const CLIENT_THREADS: &str = "bench-load";

/// Calls per second of measured time that no cell can exceed: the count bound of every
/// load loop.
const MAX_CALLS_PER_SECOND: u64 = 100_000;

pub fn progress(message: impl AsRef<str>) {
    eprintln!("[roster-bench] {}", message.as_ref());
}

/// A multi-threaded runtime whose threads are named `name…`.
pub fn runtime(threads: usize, name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("starting the {name} runtime"))
}

/// `count` HTTP/2 connections to `addr`, for load workers to share.
pub async fn channels(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(count.max(1));
    for _ in 0..count.max(1) {
        channels.push(
            Endpoint::from_shared(format!("http://{addr}"))?
                .tcp_nodelay(true)
                .connect()
                .await
                .with_context(|| format!("connecting to {addr}"))?,
        );
    }
    Ok(channels)
}

/// A closed-loop cell: `concurrency` callers, a warm-up, a measured window.
pub fn load_spec(concurrency: usize, warmup: Duration, duration: Duration) -> LoadSpec {
    LoadSpec {
        concurrency,
        warmup,
        duration,
        max_calls: MAX_CALLS_PER_SECOND
            .saturating_mul(duration.as_secs().max(1) + warmup.as_secs() + 1),
    }
}

/// `what: N failed, first: …` for a cell with failed calls.
pub fn failures(what: &str, result: &LoadResult) -> Option<String> {
    (result.errors > 0).then(|| {
        format!(
            "{what}: {} failed, first: {}",
            result.errors,
            result.first_error.as_deref().unwrap_or("?")
        )
    })
}

/// The databases of one run, named after its id.
pub struct Databases {
    pub run_id: String,
    admin_url: String,
    keep: bool,
    created: Vec<BenchDatabase>,
}

impl Databases {
    /// For a run against the local server at `admin_url`; `keep` leaves the databases in
    /// place at the end.
    pub fn new(admin_url: &str, keep: bool) -> anyhow::Result<Self> {
        pg::check_local(admin_url)?;
        Ok(Self {
            run_id: Uuid::new_v4().simple().to_string()[..12].to_owned(),
            admin_url: admin_url.to_owned(),
            keep,
            created: Vec::new(),
        })
    }

    /// Creates `roster_bench_<run>_<role>`, empty, to be dropped with the others.
    pub async fn create(&mut self, role: &str) -> anyhow::Result<&BenchDatabase> {
        let database = BenchDatabase::create(&self.admin_url, &self.run_id, role).await?;
        progress(format!("created database {}", database.name));
        self.created.push(database);
        Ok(&self.created[self.created.len() - 1])
    }

    /// Drops (or keeps, as asked) every database created.
    pub async fn drop_all(self) {
        for database in self.created {
            let name = database.name.clone();
            if self.keep {
                eprintln!("kept database {name}");
            } else if let Err(error) = database.drop_now().await {
                eprintln!("could not drop database {name}: {error:#}");
            }
        }
    }
}

/// Prints a bench's report, then fails the run if any of its calls failed: figures from
/// failed calls are not figures.
pub fn report(rendered: &str, errors: &[String]) -> anyhow::Result<()> {
    println!("{rendered}");
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("calls failed during the run:\n{}", errors.join("\n"))
    }
}

/// `measure`, or an error at Ctrl-C, so the caller still drops its databases.
pub async fn interruptible<T>(
    measure: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        outcome = measure => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    }
}

/// Runs `bench` on a client runtime with the servers on a runtime of their own, so their
/// threads' CPU can be measured apart from the load generator's.
pub fn run_on_runtimes<F, Fut>(
    server_threads: usize,
    client_threads: usize,
    bench: F,
) -> anyhow::Result<()>
where
    F: FnOnce(tokio::runtime::Handle) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let servers = runtime(server_threads, SERVER_THREADS)?;
    let clients = runtime(client_threads, CLIENT_THREADS)?;
    let result = clients.block_on(bench(servers.handle().clone()));
    servers.shutdown_timeout(Duration::from_secs(5));
    clients.shutdown_timeout(Duration::from_secs(5));
    result
}
