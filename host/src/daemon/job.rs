//! One job's tick: build the run context, run the guest in its sandbox,
//! record the outcome, validate the events and hand them to the sink. Only the
//! job's own configured log group/stream is ever used as the target.
//!
//! Everything a job makes the host log is charged to the job's log budget
//! (see [`crate::untrusted`]), and a failure that repeats is logged in full
//! once per kind every few minutes, whatever order the kinds come in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::event::Submission;
use crate::guest::{FailureKind, HostFacts, LoadedGuest, RunError, RunRequest};
use crate::observe::{JobMetrics, JobStats};
use crate::schedule::Tick;
use crate::sink::Sink;
use crate::validate::Validator;

use super::facts::delivery_facts;
use super::prepare::PreparedJob;

/// Everything a job's ticks share.
pub struct JobRunner {
    job: PreparedJob,
    name: Arc<str>,
    config: Arc<[(String, String)]>,
    stats: Arc<JobStats>,
    shared: Arc<Shared>,
    /// When a failure of each kind was last logged in full.
    last_logged: std::sync::Mutex<HashMap<&'static str, Instant>>,
}

/// A failure of a kind already logged in full is logged in full again at most this often.
const REPEAT_FAILURE_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// What all jobs of a daemon share.
pub struct Shared {
    /// Cancels runs still going when the shutdown grace period ends.
    pub abort: tokio_util::sync::CancellationToken,
    /// Where events go.
    pub sink: Arc<Sink>,
    /// The EMF validation stage.
    pub validator: Validator,
    /// Per-job run metrics.
    pub metrics: Arc<JobMetrics>,
    /// Host facts without the live parts (uptime, counters).
    pub facts: HostFacts,
    /// When the daemon started.
    pub started: Instant,
}

impl JobRunner {
    /// A runner for `job`, registered in the shared metrics.
    pub fn new(job: PreparedJob, shared: Arc<Shared>) -> Self {
        let stats = shared.metrics.register(&job.config.name);
        JobRunner {
            name: job.config.name.as_str().into(),
            config: job.config.config.clone().into(),
            job,
            stats,
            shared,
            last_logged: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The job's stats (its drive counters live here too).
    pub fn stats(&self) -> &Arc<JobStats> {
        &self.stats
    }

    /// Logs a failed run, within the job's log budget: in full the first
    /// time each kind is seen and every few minutes while it repeats;
    /// otherwise one short line at debug level (every failure is counted in
    /// the metrics either way).
    fn log_failure(&self, e: &RunError, sequence: u64) {
        let kind = e.kind.label();
        let full = {
            let mut last = self.last_logged.lock().unwrap_or_else(|p| p.into_inner());
            let due = last
                .get(kind)
                .is_none_or(|at| at.elapsed() >= REPEAT_FAILURE_LOG_INTERVAL);
            if due {
                last.insert(kind, Instant::now());
            }
            due
        };
        let job = &*self.name;
        let budget = self.stats.log_budget();
        if !full {
            if tracing::enabled!(tracing::Level::DEBUG) && budget.admit(64 + job.len()) {
                tracing::debug!(job, kind, sequence, "run failed again ({kind})");
            }
            return;
        }
        let record = e.to_string();
        if !budget.admit(record.len() + 64 + job.len()) {
            return;
        }
        match &e.kind {
            FailureKind::Transient(_) | FailureKind::Cancelled => {
                tracing::warn!(job, kind, sequence, "{record}")
            }
            _ => tracing::error!(job, kind, sequence, "{record}"),
        }
    }

    /// Runs one tick end to end; never panics on a failing guest.
    pub async fn tick(&self, tick: Tick) {
        let shared = &self.shared;
        let guest: &LoadedGuest = &self.job.guest;
        let now = chrono::Utc::now();
        let mut facts = shared.facts.clone();
        facts.uptime_ms = u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        facts.delivery = delivery_facts(
            &shared.sink.ledger().totals(),
            shared.sink.pending_events(),
            shared.metrics.totals(),
        );
        let request = RunRequest {
            job: self.name.clone(),
            scheduled_ms: u64::try_from(tick.scheduled.timestamp_millis()).unwrap_or(0),
            actual_ms: u64::try_from(now.timestamp_millis()).unwrap_or(0),
            sequence: tick.sequence,
            invocation_id: uuid::Uuid::new_v4().to_string(),
            config: self.config.clone(),
            facts,
        };
        let started = Instant::now();
        match guest
            .run_until(
                &request,
                &self.job.config.limits,
                &shared.abort,
                self.stats.log_budget(),
            )
            .await
        {
            Ok(output) => {
                self.stats.record_success(output.elapsed);
                self.stats.record_peak_memory(output.peak_memory_bytes);
                let printed = !output.stderr.is_empty() || !output.stdout.is_empty();
                if printed && tracing::enabled!(tracing::Level::DEBUG) {
                    let (stdout, stderr) = (output.stdout.to_string(), output.stderr.to_string());
                    let bytes = stdout.len() + stderr.len() + 64 + self.name.len();
                    if self.stats.log_budget().admit(bytes) {
                        tracing::debug!(job = &*self.name, stdout = %stdout, stderr = %stderr, "guest output");
                    }
                }
                let target = self.job.config.target.clone();
                let mut submission = Submission {
                    job: self.name.clone(),
                    kind: output.kind,
                    target,
                    events: output.events,
                };
                for refused in shared
                    .validator
                    .check(&mut submission, now.timestamp_millis())
                {
                    shared
                        .sink
                        .ledger()
                        .dropped(&self.name, &submission.target, refused.reason, 1);
                }
                if !submission.events.is_empty() {
                    shared.sink.submit(submission);
                }
            }
            Err(e) => {
                self.stats.record_failure(e.kind.label(), started.elapsed());
                self.log_failure(&e, tick.sequence);
            }
        }
    }
}
