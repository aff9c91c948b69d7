//! The daemon behind `cwpub run`: loads and checks every guest, drives each
//! job on its schedule (schedule → guest run → validate → sink), serves the
//! observability endpoint, and on shutdown stops scheduling, lets running
//! guests finish, drains delivery within its deadline and reports what
//! happened.

pub mod facts;
pub mod job;
mod memory;
pub mod prepare;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, SinkKind};
use crate::delivery::{self, Delivery, DrainReport};
use crate::guest::{HostFacts, Runtime};
use crate::ledger::{DropReason, Ledger, StatsSnapshot};
use crate::observe::{self, JobMetrics, ObserveState, Readiness, RunTotals};
use crate::schedule::{self, DriveOptions, SystemClock};
use crate::sink::{Sink, StdoutSink};
use crate::validate::Validator;

pub use prepare::{PreparedJob, prepare};

/// What happened during a daemon's life, for the shutdown summary.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Delivery counters at the end.
    pub stats: StatsSnapshot,
    /// The shutdown drain's report.
    pub drain: DrainReport,
    /// Guest runs over all jobs.
    pub runs: RunTotals,
    /// How long the daemon ran.
    pub uptime: Duration,
}

impl Summary {
    /// True when no event was lost: nothing dropped and nothing left undelivered.
    pub fn lost_nothing(&self) -> bool {
        self.drain.undelivered == 0 && self.stats.totals.dropped_total() == 0
    }

    /// Dropped events by reason over all jobs.
    pub fn drops(&self) -> &BTreeMap<DropReason, u64> {
        &self.stats.totals.drops
    }
}

/// Builds the configured sink, counting into `ledger`.
pub async fn make_sink(config: &Config, ledger: &Ledger) -> anyhow::Result<Sink> {
    Ok(match config.sink.kind {
        SinkKind::Stdout => Sink::Stdout(StdoutSink::new(ledger.clone())),
        SinkKind::CloudWatch => {
            let client = delivery::client_from_settings(
                &config.sink.aws_settings(),
                config.delivery.request_timeout,
            )
            .await
            .context("setting up the CloudWatch Logs client")?;
            warn_without_credentials().await;
            Sink::CloudWatch(Delivery::start_with_ledger(
                config.delivery.clone(),
                client,
                ledger.clone(),
            )?)
        }
    })
}

/// Resolves credentials once at start so a missing or broken credential
/// source is reported in one clear line, not only at the first send. The
/// daemon still starts: credentials may appear later (an IAM role attached,
/// a profile written), and events stay buffered until they do.
async fn warn_without_credentials() {
    use aws_credential_types::provider::ProvideCredentials as _;
    let sdk_config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let Some(provider) = sdk_config.credentials_provider() else {
        tracing::warn!(
            "no AWS credentials provider is configured; deliveries will fail until one is"
        );
        return;
    };
    match tokio::time::timeout(CREDENTIALS_CHECK_TIMEOUT, provider.provide_credentials()).await {
        Ok(Ok(_)) => tracing::info!("AWS credentials found"),
        Ok(Err(e)) => tracing::warn!(
            detail = %first_line(&e.to_string()),
            "no AWS credentials found; looked in: environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), \
             profile (~/.aws), SSO, web identity (IRSA), ECS task role, EC2 instance metadata. \
             Events stay buffered and delivery starts once credentials are available"
        ),
        Err(_) => tracing::warn!(
            "resolving AWS credentials took longer than {CREDENTIALS_CHECK_TIMEOUT:?}; continuing, deliveries will retry"
        ),
    }
}

fn first_line(s: &str) -> &str {
    s.lines()
        .next()
        .unwrap_or(s)
        .trim_end_matches(". Attempted:")
        .trim_end_matches(':')
}

/// How long the start-up credentials check may take (IMDS probes time out in about a second each).
const CREDENTIALS_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the daemon until `shutdown` is cancelled; returns the summary after the drain.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<Summary> {
    let started = Instant::now();
    // One ledger counts every event, whichever stage or sink; its registry
    // holds every metric /metrics shows.
    let ledger = Ledger::new(config.delivery.drop_log_interval);
    let metrics = JobMetrics::new();
    ledger.metrics().collector(metrics.clone());
    // Serve /healthz at once, even while guests compile (a large guest can
    // take seconds); /readyz says "loading guests" until the sink is up.
    let live_sink: Arc<OnceLock<Arc<Sink>>> = Arc::default();
    let server = if config.observe.enabled {
        let readiness_sink = live_sink.clone();
        let state =
            ObserveState::new(ledger.metrics().clone()).with_readiness(
                move || match readiness_sink.get() {
                    Some(sink) => readiness(sink),
                    None => Readiness::not_ready("loading guests"),
                },
            );
        let server = observe::serve(config.observe.listen, state, shutdown.clone()).await?;
        tracing::info!(address = %server.local_addr(), "observability endpoint: /healthz /readyz /metrics");
        Some(server)
    } else {
        None
    };

    let runtime = Runtime::with_options(&config.runtime)?;
    let jobs = prepare(&config, &runtime).await?;
    let sink = Arc::new(make_sink(&config, &ledger).await?);
    let _ = live_sink.set(sink.clone());
    let facts = HostFacts::new(&config.host, config.sink.region.clone());
    let abort = CancellationToken::new();
    let shared = Arc::new(job::Shared {
        abort: abort.clone(),
        sink: sink.clone(),
        validator: Validator::new(config.delivery.max_event_bytes),
        metrics: metrics.clone(),
        facts,
        started,
    });

    let mut drivers = tokio::task::JoinSet::new();
    for job in jobs {
        let schedule = job.config.schedule.clone();
        let runner = Arc::new(job::JobRunner::new(job.clone(), shared.clone()));
        let options = DriveOptions {
            job: job.config.name.clone(),
            run_at_start: job.config.run_at_start,
            jitter: job.config.jitter,
            seed: None,
            stats: runner.stats().drive_stats(),
        };
        tracing::info!(
            job = %job.config.name, guest = job.guest.name(), schedule = schedule.as_str(),
            target = %job.config.target, "job scheduled"
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
    tracing::info!(sink = sink.name(), jobs = drivers.len(), "cwpub started");
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
    tracing::info!(deadline = ?config.shutdown.drain_deadline, "draining delivery");
    let drain = sink.drain(config.shutdown.drain_deadline).await;
    if let Some(server) = server {
        server.stop().await;
    }
    Ok(Summary {
        stats: sink.stats(),
        drain,
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

/// Ready when no circuit is open and credentials work.
fn readiness(sink: &Sink) -> Readiness {
    let health = sink.health();
    if let Some(problem) = &health.credential_problem {
        return Readiness::not_ready(format!(
            "credential problem: {}: {}",
            problem.code,
            first_line(&problem.message)
        ));
    }
    match health.open_circuits.first() {
        Some(open) => Readiness::not_ready(format!(
            "circuit open for {} after {} failed requests in a row: {}",
            open.target,
            open.consecutive_failures,
            first_line(&open.last_error)
        )),
        None => Readiness::ready(),
    }
}
