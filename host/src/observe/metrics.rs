//! Metrics the host keeps about itself and their Prometheus text exposition:
//! the per-job registry ([`JobMetrics`]: runs, failures by kind, skipped and
//! missed ticks, run duration histogram) and generic [`MetricSample`]s that
//! other stages (delivery) supply without depending on this module.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use crate::schedule::{DriveStats, DriveStatsSnapshot};
use crate::untrusted::LogBudget;

/// Upper bounds (seconds) of the run-duration histogram buckets.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Most distinct failure kinds kept per job; further kinds are counted as `other`.
pub const MAX_FAILURE_KINDS: usize = 32;

/// How a metric family is typed in the exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only ever goes up (name should end in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// No `# TYPE` information.
    Untyped,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Untyped => "untyped",
        }
    }
}

/// One sample of a metric: name, labels and value (plus optional help and type).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    /// Metric name, e.g. `cwpub_delivery_events_total` (invalid characters become `_`).
    pub name: String,
    /// One-line description, written once per family as `# HELP` (empty = none).
    pub help: String,
    /// Family type, written once per family as `# TYPE`.
    pub kind: MetricKind,
    /// Label pairs, in the order given.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl MetricSample {
    /// A counter sample.
    pub fn counter(name: &str, labels: &[(&str, &str)], value: u64) -> Self {
        Self::new(name, MetricKind::Counter, labels, value as f64)
    }

    /// A gauge sample.
    pub fn gauge(name: &str, labels: &[(&str, &str)], value: f64) -> Self {
        Self::new(name, MetricKind::Gauge, labels, value)
    }

    fn new(name: &str, kind: MetricKind, labels: &[(&str, &str)], value: f64) -> Self {
        MetricSample {
            name: name.to_string(),
            help: String::new(),
            kind,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        }
    }

    /// Sets the `# HELP` text.
    pub fn with_help(mut self, help: &str) -> Self {
        self.help = help.to_string();
        self
    }
}

impl From<(String, Vec<(String, String)>, f64)> for MetricSample {
    fn from((name, labels, value): (String, Vec<(String, String)>, f64)) -> Self {
        MetricSample {
            name,
            help: String::new(),
            kind: MetricKind::Untyped,
            labels,
            value,
        }
    }
}

/// Writes `samples` in the Prometheus text format, grouping each family's
/// samples together (in first-seen order) under one `# HELP` / `# TYPE`.
pub fn render_samples(samples: &[MetricSample], out: &mut String) {
    let mut order: Vec<String> = Vec::new();
    let mut families: BTreeMap<String, Vec<&MetricSample>> = BTreeMap::new();
    for s in samples {
        let name = sanitize_name(&s.name, true);
        families
            .entry(name.clone())
            .or_insert_with(|| {
                order.push(name);
                Vec::new()
            })
            .push(s);
    }
    for name in order {
        let family = &families[&name];
        if let Some(help) = family
            .iter()
            .map(|s| s.help.as_str())
            .find(|h| !h.is_empty())
        {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        }
        let _ = writeln!(out, "# TYPE {name} {}", family[0].kind.as_str());
        for s in family {
            let labels: Vec<(&str, &str)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            write_sample(out, &name, &labels, s.value);
        }
    }
}

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

/// A per-job family: name, type, help, and how to read its value from a snapshot.
type PerJobFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&JobStatsSnapshot) -> f64,
);

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

    /// Writes every job metric family in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let jobs = self.all();
        let snaps: Vec<JobStatsSnapshot> = jobs.iter().map(|j| j.snapshot()).collect();

        family(
            out,
            "cwpub_job_runs_total",
            "counter",
            "Guest runs that finished, by outcome.",
        );
        for s in &snaps {
            write_sample(
                out,
                "cwpub_job_runs_total",
                &[("job", &s.name), ("outcome", "success")],
                s.succeeded as f64,
            );
            write_sample(
                out,
                "cwpub_job_runs_total",
                &[("job", &s.name), ("outcome", "failure")],
                s.failed as f64,
            );
        }
        family(
            out,
            "cwpub_job_failures_total",
            "counter",
            "Failed guest runs, by failure kind.",
        );
        for s in &snaps {
            for (kind, n) in &s.failures {
                write_sample(
                    out,
                    "cwpub_job_failures_total",
                    &[("job", &s.name), ("kind", kind)],
                    *n as f64,
                );
            }
        }
        let per_job: [PerJobFamily; 7] = [
            (
                "cwpub_job_ticks_total",
                "counter",
                "Schedule ticks acted on (run or skipped), including run-at-start.",
                |s| s.drive.ticks as f64,
            ),
            (
                "cwpub_job_ticks_skipped_total",
                "counter",
                "Ticks skipped because the previous run of the job was still going.",
                |s| s.drive.skipped_overlap as f64,
            ),
            (
                "cwpub_job_ticks_missed_total",
                "counter",
                "Ticks never run because the process was suspended or the clock jumped.",
                |s| s.drive.missed as f64,
            ),
            (
                "cwpub_job_log_records_suppressed_total",
                "counter",
                "Log records the job caused that were not written: it was over its log budget.",
                |s| s.log_records_suppressed as f64,
            ),
            (
                "cwpub_job_running",
                "gauge",
                "1 while a run of the job is in progress.",
                |s| f64::from(u8::from(s.drive.running)),
            ),
            (
                "cwpub_job_peak_memory_bytes",
                "gauge",
                "Largest guest linear memory a run of the job reached (bytes); size memory_mb from it.",
                |s| s.peak_memory_bytes as f64,
            ),
            (
                "cwpub_job_last_success_timestamp_seconds",
                "gauge",
                "When the last successful run finished (Unix seconds, 0 = never).",
                |s| s.last_success_ms as f64 / 1000.0,
            ),
        ];
        for (name, kind, help, get) in per_job {
            family(out, name, kind, help);
            for s in &snaps {
                write_sample(out, name, &[("job", &s.name)], get(s));
            }
        }

        let h = "cwpub_job_run_duration_seconds";
        family(
            out,
            h,
            "histogram",
            "Wall-clock duration of guest runs (successful and failed).",
        );
        for j in &jobs {
            let mut cumulative = 0u64;
            for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
                cumulative += j.duration.buckets[i].load(Ordering::Relaxed);
                let le = format_value(*bound);
                write_sample(
                    out,
                    &format!("{h}_bucket"),
                    &[("job", &j.name), ("le", &le)],
                    cumulative as f64,
                );
            }
            let count = j.duration.count.load(Ordering::Relaxed);
            write_sample(
                out,
                &format!("{h}_bucket"),
                &[("job", &j.name), ("le", "+Inf")],
                count as f64,
            );
            let sum = j.duration.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            write_sample(out, &format!("{h}_sum"), &[("job", &j.name)], sum);
            write_sample(
                out,
                &format!("{h}_count"),
                &[("job", &j.name)],
                count as f64,
            );
        }
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a family.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one sample line; label names are sanitized and values escaped.
pub(crate) fn write_sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&sanitize_name(k, false));
            out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&format_value(value));
    out.push('\n');
}

/// Integers without a fraction, `NaN`, `+Inf`, `-Inf`, else the shortest float form.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Makes a valid metric (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or label (no `:`) name.
fn sanitize_name(name: &str, metric: bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
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
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("cwpub_job_runs_total{job=\"heartbeat\",outcome=\"success\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("cwpub_job_runs_total{job=\"heartbeat\",outcome=\"failure\"} 2\n"));
        assert!(out.contains(
            "cwpub_job_failures_total{job=\"heartbeat\",kind=\"deadline_exceeded\"} 2\n"
        ));
        assert!(
            out.contains(
                "cwpub_job_run_duration_seconds_bucket{job=\"heartbeat\",le=\"0.005\"} 1\n"
            )
        );
        assert!(
            out.contains("cwpub_job_run_duration_seconds_bucket{job=\"heartbeat\",le=\"2.5\"} 2\n")
        );
        assert!(
            out.contains(
                "cwpub_job_run_duration_seconds_bucket{job=\"heartbeat\",le=\"+Inf\"} 3\n"
            )
        );
        assert!(out.contains("cwpub_job_run_duration_seconds_count{job=\"heartbeat\"} 3\n"));
        assert!(
            out.contains("cwpub_job_run_duration_seconds_sum{job=\"heartbeat\"} 42.003\n"),
            "{out}"
        );
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

    #[test]
    fn generic_samples_group_and_escape() {
        let samples = vec![
            MetricSample::counter(
                "cwpub_delivery_events_total",
                &[("target", "/g:s"), ("outcome", "delivered")],
                5,
            )
            .with_help("Events by outcome."),
            MetricSample::gauge("cwpub_delivery_buffered_events", &[], 2.5),
            MetricSample::counter(
                "cwpub_delivery_events_total",
                &[("target", "a\"b\\c\nd"), ("outcome", "dropped")],
                1,
            ),
            MetricSample::from((
                "bad name-1".to_string(),
                vec![("9x".to_string(), "v".to_string())],
                f64::INFINITY,
            )),
        ];
        let mut out = String::new();
        render_samples(&samples, &mut out);
        let expected = "\
# HELP cwpub_delivery_events_total Events by outcome.
# TYPE cwpub_delivery_events_total counter
cwpub_delivery_events_total{target=\"/g:s\",outcome=\"delivered\"} 5
cwpub_delivery_events_total{target=\"a\\\"b\\\\c\\nd\",outcome=\"dropped\"} 1
# TYPE cwpub_delivery_buffered_events gauge
cwpub_delivery_buffered_events 2.5
# TYPE bad_name_1 untyped
bad_name_1{_9x=\"v\"} +Inf
";
        assert_eq!(out, expected);
    }
}
