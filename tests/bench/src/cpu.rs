//! CPU time and memory of this process, from /proc.
//!
//! The services under test and the load generator share the process, so CPU is counted per
//! thread: the servers run on their own Tokio runtime whose threads carry a name prefix, and
//! only threads with that prefix are summed.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;

/// Linux reports `utime`/`stime` in USER_HZ ticks, which is 100 per second on every
/// architecture Linux supports (the kernel scales its internal HZ to it).
const TICK: Duration = Duration::from_millis(10);

/// CPU ticks of each matching thread, by thread id, at one moment.
#[derive(Clone, Debug)]
pub struct CpuTime(HashMap<u64, u64>);

impl CpuTime {
    /// CPU time spent since `earlier`, thread by thread: a thread that ended in between
    /// (a blocking-pool thread idle for 10 s does) takes its ticks with it, and summing the
    /// totals instead would subtract them from everyone else's. Threads started since count
    /// whole.
    pub fn since(&self, earlier: &CpuTime) -> Duration {
        let ticks: u64 = self
            .0
            .iter()
            .map(|(tid, ticks)| ticks.saturating_sub(earlier.0.get(tid).copied().unwrap_or(0)))
            .sum();
        TICK * u32::try_from(ticks).unwrap_or(u32::MAX)
    }
}

/// User plus system time of every thread of this process whose name starts with `prefix`.
pub fn threads_cpu(prefix: &str) -> anyhow::Result<CpuTime> {
    let mut threads = HashMap::new();
    for entry in std::fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|tid| tid.parse().ok()) else {
            continue;
        };
        let path = entry.path().join("stat");
        // A thread may end between listing and reading; it no longer counts.
        let Ok(stat) = std::fs::read_to_string(&path) else {
            continue;
        };
        let (name, fields) = parse_stat(&stat)
            .with_context(|| format!("unexpected format of {}", path.display()))?;
        if name.starts_with(prefix) {
            threads.insert(tid, fields.0 + fields.1);
        }
    }
    Ok(CpuTime(threads))
}

/// `(comm, (utime, stime))` of a `/proc/<pid>/task/<tid>/stat` line. The name sits in
/// parentheses and may itself contain spaces and parentheses, so fields are counted from
/// the last `)`: state is field 3, utime 14 and stime 15.
fn parse_stat(stat: &str) -> Option<(&str, (u64, u64))> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let mut rest = stat.get(close + 1..)?.split_whitespace().skip(11);
    let utime = rest.next()?.parse().ok()?;
    let stime = rest.next()?.parse().ok()?;
    Some((name, (utime, stime)))
}

/// Resident set size now and at its peak (`VmRSS`, `VmHWM`), in bytes.
pub fn rss() -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .with_context(|| format!("/proc/self/status has no {name}"))?;
        let kib: u64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kib * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resets the peak RSS (`VmHWM`) to the current RSS, so the next reading covers only what
/// follows (Linux ≥ 4.0: writing 5 to `clear_refs`).
pub fn reset_peak_rss() -> anyhow::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").context("writing /proc/self/clear_refs")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "42 (bench-srv (x)) S 1 42 42 0 -1 4194368 100 0 0 0 250 75 0 0 20 0 1 0";
        assert_eq!(parse_stat(line), Some(("bench-srv (x)", (250, 75))));
    }

    #[test]
    fn time_is_counted_per_thread_so_an_ended_thread_subtracts_nothing() {
        let before = CpuTime([(1, 100), (2, 500)].into());
        // Thread 2 ended, thread 3 started.
        let after = CpuTime([(1, 130), (3, 20)].into());
        assert_eq!(after.since(&before), TICK * 50);
    }
}
