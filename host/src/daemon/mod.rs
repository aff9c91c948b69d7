//! The daemon behind `cwpub run`: loads and checks every guest, starts the
//! sinks, drives each job on its schedule (schedule → guest run → validate
//! → sinks), serves the observability endpoint, reloads its configuration
//! when asked ([`reload`]), and on shutdown stops scheduling, lets running
//! guests finish, drains every sink within its deadline and reports what
//! happened.

pub mod facts;
pub mod job;
mod jobs;
mod outputs;
pub mod prepare;
mod reload;
mod watch;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Env, JobConfig};
use crate::delivery::DrainReport;
use crate::guest::{HostFacts, Runtime, RuntimeOptions};
use crate::ledger::{
    Collector, DescriptorEncoder, DropReason, Ledger, StatsSnapshot, encode_counters,
};
use crate::observe::{self, JobMetrics, ObserveState, Readiness, RunTotals};
use crate::sinks;
use crate::validate::Validator;

use jobs::Jobs;
use outputs::Outputs;

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

/// Why a reload was asked for (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadCause {
    /// SIGHUP (`kill -HUP`, `systemctl reload`).
    Signal,
    /// `--watch` saw the config file or a guest file change.
    FileChanged,
}

impl fmt::Display for ReloadCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReloadCause::Signal => "SIGHUP",
            ReloadCause::FileChanged => "a watched file changed",
        })
    }
}

/// What the daemon is asked while it runs, besides stopping: reloads, sent
/// through [`Control::requester`] (the SIGHUP handler) or, with `watch`, by
/// the daemon's own file watcher.
pub struct Control {
    requests: mpsc::UnboundedReceiver<ReloadCause>,
    requester: mpsc::UnboundedSender<ReloadCause>,
    watch: bool,
}

impl Control {
    /// Reloads on request; with `watch`, also when the config file or a
    /// guest file it names changes.
    pub fn new(watch: bool) -> Self {
        let (requester, requests) = mpsc::unbounded_channel();
        Control {
            requests,
            requester,
            watch,
        }
    }

    /// Sends reload requests to the daemon.
    pub fn requester(&self) -> mpsc::UnboundedSender<ReloadCause> {
        self.requester.clone()
    }
}

/// The files `--watch` watches for `config`: the config file and every
/// guest file it names.
fn watched_files(config: &Config) -> Vec<PathBuf> {
    let mut files = vec![config.path.clone()];
    for job in &config.jobs {
        if let crate::guest::GuestSource::Path(p) = &job.guest
            && !files.contains(p)
        {
            files.push(p.clone());
        }
    }
    files
}

/// The jobs' destinations at the running sinks.
fn routes(config: &Config, job: &JobConfig, outputs: &Outputs) -> Vec<job::Route> {
    job.sinks
        .iter()
        .filter_map(|name| {
            let cfg = config.sinks.get(name)?;
            Some(job::Route {
                output: outputs.get(name)?.output,
                target: cfg.target(job),
            })
        })
        .collect()
}

/// Reloads so far, by result, for `/metrics`.
#[derive(Debug, Default)]
struct Reloads {
    ok: AtomicU64,
    error: AtomicU64,
    last: Mutex<Option<reload::Outcome>>,
}

impl Reloads {
    fn record(&self, outcome: reload::Outcome) {
        match &outcome.result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.error.fetch_add(1, Ordering::Relaxed),
        };
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
    }

    /// The last reload, as lines for `/readyz`: its number (`cwpub reload`
    /// waits for it to change), time and result, with the first problems
    /// of a failed one.
    fn note(&self) -> Vec<String> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(o) = last.as_ref() else {
            return Vec::new();
        };
        let n = self.ok.load(Ordering::Relaxed) + self.error.load(Ordering::Relaxed);
        let at = chrono::DateTime::<chrono::Utc>::from(o.at)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        match &o.result {
            Ok(summary) => vec![format!("last reload #{n} at {at}: ok ({summary})")],
            Err(problems) => {
                let mut lines = vec![format!(
                    "last reload #{n} at {at}: failed, the configuration in force is unchanged:"
                )];
                lines.extend(
                    problems
                        .iter()
                        .take(NOTED_PROBLEMS)
                        .map(|p| format!("  - {}", crate::untrusted::escape(p, 400))),
                );
                if problems.len() > NOTED_PROBLEMS {
                    lines.push(format!(
                        "  - and {} more (see the log)",
                        problems.len() - NOTED_PROBLEMS
                    ));
                }
                lines
            }
        }
    }
}

/// A failed reload's problems shown on `/readyz` (all of them are logged).
const NOTED_PROBLEMS: usize = 5;

#[derive(Debug)]
struct ReloadsCollector(Arc<Reloads>);

impl Collector for ReloadsCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        encode_counters(
            &mut e,
            "cwpub_config_reloads",
            "Configuration reloads, by result: ok, or error (the configuration in force was kept).",
            [
                ([("result", "ok")], self.0.ok.load(Ordering::Relaxed)),
                ([("result", "error")], self.0.error.load(Ordering::Relaxed)),
            ],
        )
    }
}

/// Logs how a reload ended: its summary, or every problem and then one line
/// saying nothing changed.
fn log_reload(outcome: &Result<String, Vec<String>>) {
    match outcome {
        Ok(summary) => tracing::info!(result = "ok", "{summary}"),
        Err(problems) => {
            for p in problems {
                tracing::error!(result = "error", "reload refused: {p}");
            }
            tracing::error!(
                result = "error",
                problems = problems.len(),
                "reload failed; the configuration in force is unchanged"
            );
        }
    }
}

/// Runs the daemon until `shutdown` is cancelled, reloading on `control`;
/// returns the summary after the drain. Secrets the sinks need (a DataDog
/// API key) are read from `env`, at start and at each reload.
pub async fn run(
    config: Config,
    env: &Env,
    mut control: Control,
    shutdown: CancellationToken,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    // One ledger counts every event, whichever stage or sink; its registry
    // holds every metric /metrics shows.
    let ledger = Ledger::new(config.delivery.drop_log_interval);
    let metrics = JobMetrics::new();
    ledger.metrics().collector(metrics.clone());
    let reloads = Arc::new(Reloads::default());
    ledger
        .metrics()
        .collector(ReloadsCollector(reloads.clone()));
    // Serve /healthz at once, even while guests compile (a large guest can
    // take seconds); /readyz says "loading guests" until the sinks are up.
    let live: Arc<OnceLock<Arc<Outputs>>> = Arc::default();
    let server = if config.observe.enabled {
        let readiness_sinks = live.clone();
        let notes = reloads.clone();
        let state = ObserveState::new(ledger.metrics().clone()).with_readiness(move || {
            let mut r = match readiness_sinks.get() {
                Some(outputs) => outputs.readiness(),
                None => Readiness::not_ready("loading guests"),
            };
            r.notes.extend(notes.note());
            r
        });
        let server = observe::serve(config.observe.listen, state, shutdown.clone()).await?;
        tracing::info!(address = %server.local_addr(), "observability endpoint: /healthz /readyz /metrics");
        Some(server)
    } else {
        None
    };

    // Watching starts before the guests load, so a change made while they
    // compile is reloaded once the daemon runs.
    let watcher = if control.watch {
        Some(watch::spawn(watched_files(&config), control.requester.clone()).await?)
    } else {
        None
    };
    // A guest not in the cache starts on baseline code while its optimized
    // code compiles.
    let runtime = Runtime::with_options(&RuntimeOptions {
        tiered: true,
        ..config.runtime.clone()
    })?;
    let prepared = prepare(&config, &runtime).await?;
    let _spool_root = match config.delivery.spool_dir.clone() {
        Some(base) => {
            let sinks = config.sinks.clone();
            let lock = tokio::task::spawn_blocking(move || {
                sinks::prepare_spool_root(&base, &sinks)
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
    let mut jobs = Jobs::new(shutdown.clone(), shared);
    for job in prepared {
        let digest = reload::guest_digest(&job.config.guest).await;
        let routes = routes(&config, &job.config, &outputs);
        jobs.start(job, routes, digest, true);
    }
    let names: Vec<String> = outputs
        .all()
        .iter()
        .map(|l| l.cfg.name.to_string())
        .collect();
    tracing::info!(sinks = %names.join(", "), jobs = jobs.len(), "cwpub started");
    crate::memory::release_startup_memory();

    let mut config = config;
    let path: PathBuf = config.path.clone();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(cause) = control.requests.recv() => {
                // Requests that came while this one ran are answered by it.
                while control.requests.try_recv().is_ok() {}
                tracing::info!(cause = %cause, config = %path.display(), "reloading the configuration");
                let planned = reload::plan(&path, env, &config, &runtime, &outputs, &jobs, &ledger).await;
                let result = planned.and_then(|plan| reload::apply(plan, &outputs, &mut jobs));
                let outcome = result.map(|(new, summary)| {
                    config = new;
                    if let Some(w) = &watcher {
                        w.send_replace(watched_files(&config));
                    }
                    summary
                });
                // Counted before it is logged: whoever reads the log line
                // finds the reload on /metrics and /readyz.
                reloads.record(reload::Outcome { at: SystemTime::now(), result: outcome.clone() });
                log_reload(&outcome);
            }
        }
    }
    // Running guests may finish within their own deadline, but never hold the
    // shutdown longer than the drain deadline: past that they are cancelled.
    let grace =
        (jobs.longest_run() + Duration::from_millis(500)).min(config.shutdown.drain_deadline);
    tracing::info!(grace = ?grace, "shutting down: no new runs; waiting for running guests");
    let finished = tokio::time::timeout(grace, jobs.join()).await;
    if finished.is_err() {
        tracing::warn!("guests still running after {grace:?}; cancelling them");
        abort.cancel();
        jobs.join().await;
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
