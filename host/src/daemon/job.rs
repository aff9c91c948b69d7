//! One job's tick: build the run context, run the guest in its sandbox,
//! record the outcome, validate the events and hand them to each of the
//! job's sinks. Only the job's own targets (at CloudWatch, its configured log
//! group and stream) are ever used.
//!
//! Everything a job makes the host log is charged to the job's log budget
//! (see [`crate::untrusted`]), and a failure that repeats is logged in full
//! once per kind every few minutes, whatever order the kinds come in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::event::{Submission, Target};
use crate::guest::{FailureKind, HostFacts, LoadedGuest, RunError, RunRequest};
use crate::ledger::Ledger;
use crate::observe::{JobMetrics, JobStats};
use crate::schedule::Tick;
use crate::sinks::Output;
use crate::validate::Validator;

use super::facts::delivery_facts;
use super::prepare::PreparedJob;

/// One of a job's destinations: a sink and the job's target there.
#[derive(Clone)]
pub struct Route {
    /// The sink.
    pub output: Arc<Output>,
    /// Where the job's events go at that sink.
    pub target: Arc<Target>,
}

impl Route {
    /// `sink` or `sink (group:stream)`, for logs and `cwpub check`.
    pub fn describe(&self) -> String {
        if self.target.labels.is_empty() {
            self.target.sink.to_string()
        } else {
            format!("{} ({})", self.target.sink, self.target)
        }
    }
}

/// Everything a job's ticks share.
pub struct JobRunner {
    job: PreparedJob,
    routes: Vec<Route>,
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
    /// Where every count goes.
    pub ledger: Ledger,
    /// Events held by every sink (a host fact guests see).
    pub pending: Box<dyn Fn() -> u64 + Send + Sync>,
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
    /// A runner for `job` sending to `routes`, registered in the shared metrics.
    pub fn new(job: PreparedJob, routes: Vec<Route>, shared: Arc<Shared>) -> Self {
        let stats = shared.metrics.register(&job.config.name);
        JobRunner {
            routes,
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

    /// Hands the run's events to every sink of the job; each gets its own
    /// copy (the last one takes the original).
    fn fan_out(&self, kind: crate::event::PayloadKind, events: Vec<crate::event::LogEvent>) {
        if events.is_empty() {
            return;
        }
        let Some((last, rest)) = self.routes.split_last() else {
            return;
        };
        for route in rest {
            route.output.submit(Submission {
                job: self.name.clone(),
                kind,
                target: route.target.clone(),
                events: events.clone(),
            });
        }
        last.output.submit(Submission {
            job: self.name.clone(),
            kind,
            target: last.target.clone(),
            events,
        });
    }

    /// Runs one tick end to end; never panics on a failing guest.
    pub async fn tick(&self, tick: Tick) {
        let shared = &self.shared;
        let guest: &LoadedGuest = &self.job.guest;
        let now = chrono::Utc::now();
        let mut facts = shared.facts.clone();
        facts.uptime_ms = u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        facts.delivery = delivery_facts(
            &shared.ledger.totals(),
            (shared.pending)(),
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
                let mut events = output.events;
                for refused in shared.validator.check(
                    &self.name,
                    output.kind,
                    &mut events,
                    now.timestamp_millis(),
                ) {
                    shared
                        .ledger
                        .dropped_before_sinks(&self.name, refused.reason, 1);
                }
                self.fan_out(output.kind, events);
            }
            Err(e) => {
                self.stats.record_failure(e.kind.label(), started.elapsed());
                self.log_failure(&e, tick.sequence);
            }
        }
    }
}
