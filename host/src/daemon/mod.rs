//! The daemon behind `cwpub run`: loads and checks every guest, drives each
//! job on its schedule (schedule → guest run → validate → sink), serves the
//! observability endpoint, and on shutdown stops scheduling, lets running
//! guests finish, drains delivery within its deadline and reports what
//! happened.

pub mod facts;
pub mod job;
mod memory;
pub mod prepare;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::{Config, Env};
use crate::delivery::DrainReport;
use crate::guest::{HostFacts, Runtime, RuntimeOptions};
use crate::ledger::{DropReason, Ledger, StatsSnapshot};
use crate::observe::{self, JobMetrics, ObserveState, Readiness, RunTotals};
use crate::schedule::{self, DriveOptions, SystemClock};
use crate::sinks::{self, Output};
use crate::validate::Validator;

pub use prepare::{PreparedJob, prepare};

/// What happened during a daemon's life, for the shutdown summary.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Counters at the end (per job, per sink, per target, in total).
    pub stats: StatsSnapshot,
    /// Each sink's shutdown drain, by sink name, in config order.
    pub drains: Vec<(Arc<str>, DrainReport)>,
    /// Guest runs over all jobs.
    pub runs: RunTotals,
    /// How long the daemon ran.
    pub uptime: Duration,
}

impl Summary {
    /// Events lost at shutdown: still held by a sink when its drain deadline
    /// passed and not kept in a spool. The exit status is non-zero only
    /// when this is not zero; drops during the daemon's life are in the
    /// summary and the metrics, not in the exit status.
    pub fn lost_at_shutdown(&self) -> u64 {
        self.drains.iter().map(|(_, d)| d.undelivered).sum()
    }

    /// Dropped events by reason over all jobs and sinks.
    pub fn drops(&self) -> &BTreeMap<DropReason, u64> {
        &self.stats.totals.drops
    }
}

/// The running sinks, by name.
struct Outputs {
    list: Vec<Arc<Output>>,
}

impl Outputs {
    /// Starts every configured sink, counting into `ledger`.
    async fn start(config: &Config, env: &Env, ledger: &Ledger) -> anyhow::Result<Outputs> {
        let mut list = Vec::with_capacity(config.sinks.list.len());
        for cfg in &config.sinks.list {
            list.push(Arc::new(
                sinks::start(cfg, ledger, env, &config.host).await?,
            ));
        }
        Ok(Outputs { list })
    }

    fn by_name(&self) -> HashMap<&str, &Arc<Output>> {
        self.list.iter().map(|o| (&**o.name(), o)).collect()
    }

    /// Events held by every sink.
    fn pending_events(&self) -> u64 {
        self.list.iter().map(|o| o.pending_events()).sum()
    }

    /// Drains every sink at once, each within `deadline`.
    async fn drain(&self, deadline: Duration) -> Vec<(Arc<str>, DrainReport)> {
        let mut set = tokio::task::JoinSet::new();
        for (i, o) in self.list.iter().enumerate() {
            let o = o.clone();
            set.spawn(async move { (i, o.name().clone(), o.drain(deadline).await) });
        }
        let mut out: Vec<(usize, Arc<str>, DrainReport)> = Vec::with_capacity(self.list.len());
        while let Some(r) = set.join_next().await {
            match r {
                Ok(r) => out.push(r),
                Err(e) => tracing::error!(error = %e, "a sink's drain failed"),
            }
        }
        out.sort_by_key(|(i, ..)| *i);
        out.into_iter().map(|(_, n, d)| (n, d)).collect()
    }

    /// Ready when no sink has an open circuit or a credential problem.
    fn readiness(&self) -> Readiness {
        let mut reasons = Vec::new();
        for o in &self.list {
            let health = o.health();
            let sink = o.name();
            if let Some(problem) = &health.credential_problem {
                reasons.push(format!(
                    "sink {sink:?}: credential problem: {}: {}",
                    problem.code,
                    first_line(&problem.message)
                ));
            }
            for open in &health.open_circuits {
                reasons.push(format!(
                    "sink {sink:?}: circuit open for {} after {} failed requests in a row: {}",
                    open.target,
                    open.consecutive_failures,
                    first_line(&open.last_error)
                ));
            }
        }
        Readiness { reasons }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// Runs the daemon until `shutdown` is cancelled; returns the summary after
/// the drain. Secrets the sinks need (a DataDog API key) are read from `env`.
pub async fn run(
    config: Config,
    env: &Env,
    shutdown: CancellationToken,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    // One ledger counts every event, whichever stage or sink; its registry
    // holds every metric /metrics shows.
    let ledger = Ledger::new(config.delivery.drop_log_interval);
    let metrics = JobMetrics::new();
    ledger.metrics().collector(metrics.clone());
    // Serve /healthz at once, even while guests compile (a large guest can
    // take seconds); /readyz says "loading guests" until the sinks are up.
    let live: Arc<OnceLock<Arc<Outputs>>> = Arc::default();
    let server = if config.observe.enabled {
        let readiness_sinks = live.clone();
        let state =
            ObserveState::new(ledger.metrics().clone()).with_readiness(
                move || match readiness_sinks.get() {
                    Some(outputs) => outputs.readiness(),
                    None => Readiness::not_ready("loading guests"),
                },
            );
        let server = observe::serve(config.observe.listen, state, shutdown.clone()).await?;
        tracing::info!(address = %server.local_addr(), "observability endpoint: /healthz /readyz /metrics");
        Some(server)
    } else {
        None
    };

    // A guest not in the cache starts on baseline code while its optimized
    // code compiles.
    let runtime = Runtime::with_options(&RuntimeOptions {
        tiered: true,
        ..config.runtime.clone()
    })?;
    let jobs = prepare(&config, &runtime).await?;
    let _spool_root = match config.delivery.spool_dir.clone() {
        Some(base) => {
            let default = config
                .sinks
                .default
                .as_ref()
                .and_then(|d| config.sinks.get(d))
                .cloned();
            let lock = tokio::task::spawn_blocking(move || {
                sinks::prepare_spool_root(&base, default.as_ref())
                    .map_err(|e| crate::delivery::spool::unusable_dir(&base, &e))
            })
            .await??;
            Some(lock)
        }
        None => None,
    };
    let outputs = Arc::new(Outputs::start(&config, env, &ledger).await?);
    let _ = live.set(outputs.clone());
    let facts = HostFacts::new(&config.host, config.region.clone());
    let abort = CancellationToken::new();
    let pending = outputs.clone();
    let shared = Arc::new(job::Shared {
        abort: abort.clone(),
        ledger: ledger.clone(),
        pending: Box::new(move || pending.pending_events()),
        validator: Validator::new(config.max_event_bytes),
        metrics: metrics.clone(),
        facts,
        started,
    });

    let by_name = outputs.by_name();
    let mut drivers = tokio::task::JoinSet::new();
    for job in jobs {
        let schedule = job.config.schedule.clone();
        let routes: Vec<job::Route> = job
            .config
            .sinks
            .iter()
            .filter_map(|name| {
                let cfg = config.sinks.get(name)?;
                Some(job::Route {
                    output: (*by_name.get(&**name)?).clone(),
                    target: cfg.target(&job.config),
                })
            })
            .collect();
        let destinations: Vec<String> = routes.iter().map(job::Route::describe).collect();
        let runner = Arc::new(job::JobRunner::new(job.clone(), routes, shared.clone()));
        let options = DriveOptions {
            job: job.config.name.clone(),
            run_at_start: job.config.run_at_start,
            jitter: job.config.jitter,
            seed: None,
            stats: runner.stats().drive_stats(),
        };
        tracing::info!(
            job = %job.config.name, guest = job.guest.name(), schedule = schedule.as_str(),
            sinks = %destinations.join(", "), "job scheduled"
        );
        let shutdown = shutdown.clone();
        drivers.spawn(async move {
            schedule::drive(
                schedule,
                options,
                Arc::new(SystemClock),
                shutdown,
                move |tick| {
                    let runner = runner.clone();
                    async move { runner.tick(tick).await }
                },
            )
            .await
        });
    }
    let names: Vec<&str> = outputs.list.iter().map(|o| &**o.name()).collect();
    tracing::info!(sinks = %names.join(", "), jobs = drivers.len(), "cwpub started");
    memory::release_startup_memory();

    shutdown.cancelled().await;
    // Running guests may finish within their own deadline, but never hold the
    // shutdown longer than the drain deadline: past that they are cancelled.
    let longest_run = config
        .jobs
        .iter()
        .map(|j| j.limits.deadline)
        .max()
        .unwrap_or_default();
    let grace = (longest_run + Duration::from_millis(500)).min(config.shutdown.drain_deadline);
    tracing::info!(grace = ?grace, "shutting down: no new runs; waiting for running guests");
    let finished = tokio::time::timeout(grace, join_all(&mut drivers)).await;
    if finished.is_err() {
        tracing::warn!("guests still running after {grace:?}; cancelling them");
        abort.cancel();
        join_all(&mut drivers).await;
    }
    tracing::info!(deadline = ?config.shutdown.drain_deadline, "draining every sink");
    let drains = outputs.drain(config.shutdown.drain_deadline).await;
    if let Some(server) = server {
        server.stop().await;
    }
    Ok(Summary {
        stats: ledger.snapshot(),
        drains,
        runs: metrics.totals(),
        uptime: started.elapsed(),
    })
}

/// Waits for every job driver, logging any that ended abnormally.
async fn join_all(drivers: &mut tokio::task::JoinSet<crate::schedule::DriveStatsSnapshot>) {
    while let Some(result) = drivers.join_next().await {
        if let Err(e) = result {
            tracing::error!(error = %e, "a job's scheduler task failed");
        }
    }
}
