//! What the host counts about guest runs, per job ([`JobMetrics`]: runs,
//! failures by kind, skipped and missed ticks, peak memory, a run-duration
//! histogram), kept in lock-free atomics and written to `/metrics` at each
//! scrape as a collector of the ledger's registry.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use prometheus_client::encoding::NoLabelSet;
use prometheus_client::metrics::MetricType;

use crate::ledger::{Collector, DescriptorEncoder, encode_counters, encode_gauges};
use crate::schedule::{DriveStats, DriveStatsSnapshot};
use crate::untrusted::LogBudget;

/// Upper bounds (seconds) of the run-duration histogram buckets.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Most distinct failure kinds kept per job; further kinds are counted as `other`.
pub const MAX_FAILURE_KINDS: usize = 32;

/// A run-duration histogram with the fixed [`DURATION_BUCKETS`].
#[derive(Debug, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = DURATION_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// Everything the host counts about one job. Cheap to share; all methods are lock-free
/// except recording a failure kind.
#[derive(Debug)]
pub struct JobStats {
    name: String,
    drive: Arc<DriveStats>,
    succeeded: AtomicU64,
    failed: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    duration: Histogram,
    last_success_ms: AtomicI64,
    last_failure_ms: AtomicI64,
    peak_memory_bytes: AtomicU64,
    log_budget: Arc<LogBudget>,
}

/// A point-in-time copy of one job's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatsSnapshot {
    /// The job's name.
    pub name: String,
    /// Runs that completed successfully.
    pub succeeded: u64,
    /// Runs that failed, any kind.
    pub failed: u64,
    /// Failed runs by kind, sorted by kind.
    pub failures: Vec<(String, u64)>,
    /// The scheduler's counters (ticks, skipped, missed, running).
    pub drive: DriveStatsSnapshot,
    /// When the last successful run finished, ms since the Unix epoch (0 = never).
    pub last_success_ms: i64,
    /// When the last failed run finished, ms since the Unix epoch (0 = never).
    pub last_failure_ms: i64,
    /// The largest linear memory any successful run reached, in bytes.
    pub peak_memory_bytes: u64,
    /// Log records of the job suppressed because it was over its log budget.
    pub log_records_suppressed: u64,
}

impl JobStats {
    fn new(name: &str) -> Self {
        JobStats {
            name: name.to_string(),
            drive: DriveStats::new(),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failures: Mutex::new(BTreeMap::new()),
            duration: Histogram::default(),
            last_success_ms: AtomicI64::new(0),
            last_failure_ms: AtomicI64::new(0),
            peak_memory_bytes: AtomicU64::new(0),
            log_budget: Arc::new(LogBudget::new(name.into())),
        }
    }

    /// The job's log budget: everything the job makes the host log is charged to it.
    pub fn log_budget(&self) -> &Arc<LogBudget> {
        &self.log_budget
    }

    /// Records the linear memory a run reached, keeping the largest.
    pub fn record_peak_memory(&self, bytes: usize) {
        self.peak_memory_bytes
            .fetch_max(bytes as u64, Ordering::Relaxed);
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scheduler counters to pass in [`crate::schedule::DriveOptions::stats`].
    pub fn drive_stats(&self) -> Arc<DriveStats> {
        self.drive.clone()
    }

    /// Records a successful run that took `duration`.
    pub fn record_success(&self, duration: Duration) {
        self.succeeded.fetch_add(1, Ordering::Relaxed);
        self.duration.observe(duration);
        self.last_success_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// Records a failed run of `kind` (a short fixed label such as `deadline`,
    /// `panic`, `fatal`: a `FailureKind::label`; sanitized to `[a-z0-9_]`) that took `duration`.
    pub fn record_failure(&self, kind: &str, duration: Duration) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.duration.observe(duration);
        self.last_failure_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        let mut kind = sanitize_kind(kind);
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(&kind) && map.len() >= MAX_FAILURE_KINDS {
            kind = "other".to_string();
        }
        *map.entry(kind).or_insert(0) += 1;
    }

    /// A copy of every counter.
    pub fn snapshot(&self) -> JobStatsSnapshot {
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        JobStatsSnapshot {
            name: self.name.clone(),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            failures,
            drive: self.drive.snapshot(),
            last_success_ms: self.last_success_ms.load(Ordering::Relaxed),
            last_failure_ms: self.last_failure_ms.load(Ordering::Relaxed),
            peak_memory_bytes: self.peak_memory_bytes.load(Ordering::Relaxed),
            log_records_suppressed: self.log_budget.suppressed_total(),
        }
    }
}

/// Run totals over all jobs (the `runs-succeeded` / `runs-failed` host facts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunTotals {
    /// Runs that completed successfully.
    pub succeeded: u64,
    /// Runs that failed.
    pub failed: u64,
}

/// The registry of per-job metrics, in registration order.
#[derive(Debug, Default)]
pub struct JobMetrics {
    jobs: RwLock<Vec<Arc<JobStats>>>,
}

impl JobMetrics {
    /// An empty registry, ready to share.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The stats of job `name`, created on first use (registering twice returns the same stats).
    pub fn register(&self, name: &str) -> Arc<JobStats> {
        if let Some(s) = self.get(name) {
            return s;
        }
        let mut jobs = self.jobs.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = jobs.iter().find(|j| j.name == name) {
            return s.clone();
        }
        let s = Arc::new(JobStats::new(name));
        jobs.push(s.clone());
        s
    }

    /// The stats of job `name`, if registered.
    pub fn get(&self, name: &str) -> Option<Arc<JobStats>> {
        let jobs = self.jobs.read().unwrap_or_else(PoisonError::into_inner);
        jobs.iter().find(|j| j.name == name).cloned()
    }

    /// Every registered job's stats.
    pub fn all(&self) -> Vec<Arc<JobStats>> {
        self.jobs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Succeeded and failed runs summed over all jobs.
    pub fn totals(&self) -> RunTotals {
        self.all()
            .iter()
            .fold(RunTotals::default(), |t, j| RunTotals {
                succeeded: t.succeeded + j.succeeded.load(Ordering::Relaxed),
                failed: t.failed + j.failed.load(Ordering::Relaxed),
            })
    }
}

/// A per-job gauge: name, help, and how to read it from a snapshot.
type JobGauge = (&'static str, &'static str, fn(&JobStatsSnapshot) -> i64);

/// A per-job counter: name (without `_total`), help, and how to read it.
type JobCounter = (&'static str, &'static str, fn(&JobStatsSnapshot) -> u64);

const JOB_COUNTERS: [JobCounter; 4] = [
    (
        "cwpub_job_ticks",
        "Schedule ticks acted on (run or skipped), including run-at-start.",
        |s| s.drive.ticks,
    ),
    (
        "cwpub_job_ticks_skipped",
        "Ticks skipped because the previous run of the job was still going.",
        |s| s.drive.skipped_overlap,
    ),
    (
        "cwpub_job_ticks_missed",
        "Ticks never run because the process was suspended or the clock jumped.",
        |s| s.drive.missed,
    ),
    (
        "cwpub_job_log_records_suppressed",
        "Log records the job caused that were not written: it was over its log budget.",
        |s| s.log_records_suppressed,
    ),
];

const JOB_GAUGES: [JobGauge; 2] = [
    (
        "cwpub_job_running",
        "1 while a run of the job is in progress.",
        |s| i64::from(s.drive.running),
    ),
    (
        "cwpub_job_peak_memory_bytes",
        "Largest guest linear memory a run of the job reached (bytes); size memory_mb from it.",
        |s| i64::try_from(s.peak_memory_bytes).unwrap_or(i64::MAX),
    ),
];

impl Collector for JobMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let jobs = self.all();
        let snaps: Vec<JobStatsSnapshot> = jobs.iter().map(|j| j.snapshot()).collect();
        encode_counters(
            &mut e,
            "cwpub_job_runs",
            "Guest runs that finished, by outcome.",
            snaps.iter().flat_map(|s| {
                [
                    (
                        [("job", s.name.as_str()), ("outcome", "success")],
                        s.succeeded,
                    ),
                    ([("job", s.name.as_str()), ("outcome", "failure")], s.failed),
                ]
            }),
        )?;
        encode_counters(
            &mut e,
            "cwpub_job_failures",
            "Failed guest runs, by failure kind.",
            snaps.iter().flat_map(|s| {
                s.failures
                    .iter()
                    .map(|(kind, n)| ([("job", s.name.as_str()), ("kind", kind.as_str())], *n))
            }),
        )?;
        for (name, help, get) in JOB_COUNTERS {
            let samples = snaps.iter().map(|s| ([("job", s.name.as_str())], get(s)));
            encode_counters(&mut e, name, help, samples)?;
        }
        for (name, help, get) in JOB_GAUGES {
            let samples = snaps.iter().map(|s| ([("job", s.name.as_str())], get(s)));
            encode_gauges(&mut e, name, help, samples)?;
        }
        encode_gauges(
            &mut e,
            "cwpub_job_last_success_timestamp_seconds",
            "When the last successful run finished (Unix seconds, 0 = never).",
            snaps.iter().map(|s| {
                (
                    [("job", s.name.as_str())],
                    s.last_success_ms as f64 / 1000.0,
                )
            }),
        )?;
        let mut family = e.encode_descriptor(
            "cwpub_job_run_duration_seconds",
            "Wall-clock duration of guest runs (successful and failed).",
            None,
            MetricType::Histogram,
        )?;
        for j in &jobs {
            let h = &j.duration;
            let buckets: Vec<(f64, u64)> = DURATION_BUCKETS
                .iter()
                .zip(&h.buckets)
                .map(|(bound, n)| (*bound, n.load(Ordering::Relaxed)))
                .collect();
            let count = h.count.load(Ordering::Relaxed);
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let labels = [("job", j.name.as_str())];
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

fn sanitize_kind(kind: &str) -> String {
    let k: String = kind
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if k.is_empty() {
        "unknown".to_string()
    } else {
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_metrics_render() {
        let m = JobMetrics::new();
        let hb = m.register("heartbeat");
        assert!(Arc::ptr_eq(&hb, &m.register("heartbeat")));
        hb.record_success(Duration::from_millis(3));
        hb.record_failure("Deadline Exceeded", Duration::from_secs(2));
        hb.record_failure("deadline_exceeded", Duration::from_secs(40));
        let registry = crate::ledger::Metrics::new();
        registry.collector(m.clone());
        let out = registry.render();
        for line in [
            "# TYPE cwpub_job_runs_total counter",
            "cwpub_job_runs_total{job=\"heartbeat\",outcome=\"success\"} 1",
            "cwpub_job_runs_total{job=\"heartbeat\",outcome=\"failure\"} 2",
            "cwpub_job_failures_total{job=\"heartbeat\",kind=\"deadline_exceeded\"} 2",
            "cwpub_job_ticks_skipped_total{job=\"heartbeat\"} 0",
            "cwpub_job_running{job=\"heartbeat\"} 0",
            "# TYPE cwpub_job_run_duration_seconds histogram",
            "cwpub_job_run_duration_seconds_bucket{job=\"heartbeat\",le=\"0.005\"} 1",
            "cwpub_job_run_duration_seconds_bucket{job=\"heartbeat\",le=\"2.5\"} 2",
            "cwpub_job_run_duration_seconds_bucket{job=\"heartbeat\",le=\"+Inf\"} 3",
            "cwpub_job_run_duration_seconds_count{job=\"heartbeat\"} 3",
            "cwpub_job_run_duration_seconds_sum{job=\"heartbeat\"} 42.003",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "missing {line:?} in:\n{out}"
            );
        }
        assert_eq!(
            m.totals(),
            RunTotals {
                succeeded: 1,
                failed: 2
            }
        );
    }

    #[test]
    fn failure_kinds_are_bounded() {
        let m = JobMetrics::new();
        let j = m.register("j");
        for i in 0..(MAX_FAILURE_KINDS + 5) {
            j.record_failure(&format!("k{i}"), Duration::ZERO);
        }
        let s = j.snapshot();
        assert_eq!(s.failures.len(), MAX_FAILURE_KINDS + 1);
        assert_eq!(
            s.failures
                .iter()
                .find(|(k, _)| k == "other")
                .map(|(_, n)| *n),
            Some(5)
        );
    }
}
