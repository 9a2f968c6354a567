//! A closed-loop load generator: `concurrency` workers each issue one call, wait for it,
//! and issue the next, for a warm-up and then a measured window. Every loop is bounded by
//! time and by count, and every call by a timeout.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::Notify;

use crate::cpu::{self, CpuTime};
use crate::harness::CLIENT_THREADS;

/// The longest a single call may take before it counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Latency samples kept per run at most (about 8 MB); calls beyond it still count.
const MAX_SAMPLES: usize = 2_000_000;

const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

#[derive(Clone, Copy, Debug)]
pub struct LoadSpec {
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Measured calls at most (the warm-up is bounded by its time).
    pub max_calls: u64,
}

/// Which call of which worker: workers use `worker` to pick a connection and `call` to
/// vary their input.
#[derive(Clone, Copy, Debug)]
pub struct CallId {
    pub worker: usize,
    pub call: u64,
}

/// Latencies of the measured calls, sorted.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    micros: Vec<u32>,
}

impl Latencies {
    pub fn from_unsorted(mut micros: Vec<u32>) -> Self {
        micros.sort_unstable();
        Self { micros }
    }

    /// Nearest-rank percentile, `p` in 0..=100.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.micros.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.micros.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.micros.len()) - 1;
        Some(Duration::from_micros(u64::from(self.micros[index])))
    }
}

#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    /// Calls that started and finished inside the measured window.
    pub calls: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub window: Duration,
    pub latencies: Latencies,
    /// CPU time of the server runtime's threads during the window, when asked for.
    pub server_cpu: Option<Duration>,
    /// CPU time of the load generator's threads during the window: the gRPC client for
    /// (a) and (b), the whole plain client for (c).
    pub client_cpu: Option<Duration>,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.calls as f64 / secs
        } else {
            0.0
        }
    }

    /// Server CPU per successful call.
    pub fn cpu_per_call(&self) -> Option<Duration> {
        self.per_call(self.server_cpu?)
    }

    /// Load-generator CPU per successful call.
    pub fn client_cpu_per_call(&self) -> Option<Duration> {
        self.per_call(self.client_cpu?)
    }

    fn per_call(&self, cpu: Duration) -> Option<Duration> {
        let calls = u32::try_from(self.calls).ok().filter(|calls| *calls > 0)?;
        Some(cpu / calls)
    }
}

struct WorkerOutcome {
    micros: Vec<u32>,
    calls: u64,
    errors: u64,
    first_error: Option<String>,
    /// When the worker's last measured call finished.
    last_measured: Option<Instant>,
}

/// Runs `call` from `spec.concurrency` workers on the current runtime: a warm-up of
/// `spec.warmup`, then a window that ends after `spec.duration` or once the workers have
/// made `spec.max_calls` measured calls between them, whichever comes first. When
/// `server_threads` names a thread-name prefix, the CPU time those threads spend during the
/// window is reported too.
pub async fn run<F, Fut>(
    spec: LoadSpec,
    server_threads: Option<&str>,
    call: F,
) -> anyhow::Result<LoadResult>
where
    F: Fn(CallId) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let concurrency = spec.concurrency.max(1);
    let phase = Arc::new(AtomicU8::new(WARMING));
    let running = Arc::new(AtomicUsize::new(concurrency));
    let all_done = Arc::new(Notify::new());
    let call = Arc::new(call);
    let measured_per_worker = (spec.max_calls / concurrency as u64).max(1);
    let samples_per_worker = MAX_SAMPLES / concurrency;
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let phase = Arc::clone(&phase);
        let running = Arc::clone(&running);
        let all_done = Arc::clone(&all_done);
        let call = Arc::clone(&call);
        workers.push(tokio::spawn(async move {
            let mut outcome = WorkerOutcome {
                micros: Vec::with_capacity(samples_per_worker.min(100_000)),
                calls: 0,
                errors: 0,
                first_error: None,
                last_measured: None,
            };
            let mut n = 0u64;
            // Warm-up calls are bounded by the warm-up time, measured ones by count too.
            while outcome.calls + outcome.errors < measured_per_worker {
                let started_in = phase.load(Ordering::Acquire);
                if started_in == STOPPED {
                    break;
                }
                let started = Instant::now();
                let result = tokio::time::timeout(CALL_TIMEOUT, call(CallId { worker, call: n }))
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {CALL_TIMEOUT:?}")));
                n += 1;
                let finished = Instant::now();
                if started_in != MEASURING || phase.load(Ordering::Acquire) != MEASURING {
                    continue;
                }
                outcome.last_measured = Some(finished);
                match result {
                    Ok(()) => {
                        outcome.calls += 1;
                        if outcome.micros.len() < samples_per_worker {
                            let took = finished - started;
                            outcome
                                .micros
                                .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                        }
                    }
                    Err(error) => {
                        outcome.errors += 1;
                        outcome
                            .first_error
                            .get_or_insert_with(|| format!("{error:#}"));
                    }
                }
            }
            if running.fetch_sub(1, Ordering::AcqRel) == 1 {
                all_done.notify_one();
            }
            outcome
        }));
    }

    tokio::time::sleep(spec.warmup).await;
    let cpu_before = server_cpu(server_threads)?;
    let client_before = cpu::threads_cpu(CLIENT_THREADS)?;
    let window_start = Instant::now();
    phase.store(MEASURING, Ordering::Release);
    tokio::select! {
        () = tokio::time::sleep(spec.duration) => {}
        () = all_done.notified() => {}
    }
    phase.store(STOPPED, Ordering::Release);
    let stopped = Instant::now();
    let cpu_after = server_cpu(server_threads)?;
    let client_after = cpu::threads_cpu(CLIENT_THREADS)?;

    let mut result = LoadResult {
        server_cpu: match (cpu_before, cpu_after) {
            (Some(before), Some(after)) => Some(after.since(&before)),
            _ => None,
        },
        client_cpu: Some(client_after.since(&client_before)),
        ..LoadResult::default()
    };
    let mut micros = Vec::new();
    let mut window_end = window_start;
    for worker in workers {
        let outcome = worker.await.context("a load worker failed")?;
        result.calls += outcome.calls;
        result.errors += outcome.errors;
        if result.first_error.is_none() {
            result.first_error = outcome.first_error;
        }
        if let Some(last) = outcome.last_measured {
            window_end = window_end.max(last.min(stopped));
        }
        micros.extend(outcome.micros);
    }
    result.window = window_end - window_start;
    result.latencies = Latencies::from_unsorted(micros);
    Ok(result)
}

fn server_cpu(prefix: Option<&str>) -> anyhow::Result<Option<CpuTime>> {
    prefix
        .map(cpu::threads_cpu)
        .transpose()
        .context("reading the server threads' CPU time from /proc/self/task")
}
