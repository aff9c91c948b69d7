//! The running jobs, by name: each a runner (what it runs and where its
//! events go) and a driver (its schedule) under a token of its own, so a
//! reload can stop one job, change what another runs from its next tick, or
//! give a third a new schedule, and leave the others untouched — their
//! phase and their sequence numbers go on as if nothing happened.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::JobConfig;
use crate::schedule::{self, DriveOptions, DriveStatsSnapshot, SystemClock};

use super::job::{JobRunner, Route, Shared};
use super::prepare::PreparedJob;

/// One running job.
struct Running {
    runner: Arc<JobRunner>,
    /// Stops this job's driver (a child of the daemon's shutdown).
    stop: CancellationToken,
    driver: JoinHandle<DriveStatsSnapshot>,
    /// The guest's content when it was loaded, to tell a changed file.
    guest_digest: u64,
    /// The driver's end has been awaited.
    joined: bool,
}

/// What a reload did to one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Not in the old config.
    Added,
    /// Runs something else or sends elsewhere from its next tick.
    Changed,
    /// Same run and destinations.
    Unchanged,
}

/// See the module doc.
pub(crate) struct Jobs {
    running: BTreeMap<String, Running>,
    /// Removed by a reload; a run of theirs may still be in flight.
    removed: Vec<(String, JoinHandle<DriveStatsSnapshot>)>,
    shutdown: CancellationToken,
    shared: Arc<Shared>,
}

impl Jobs {
    /// No job yet; drivers stop when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken, shared: Arc<Shared>) -> Jobs {
        Jobs {
            running: BTreeMap::new(),
            removed: Vec::new(),
            shutdown,
            shared,
        }
    }

    /// How many jobs run.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// The names of the running jobs.
    pub fn names(&self) -> Vec<String> {
        self.running.keys().cloned().collect()
    }

    /// The config a running job has now.
    pub fn config(&self, name: &str) -> Option<(JobConfig, u64)> {
        self.running
            .get(name)
            .map(|r| (r.runner.current().job.config.clone(), r.guest_digest))
    }

    /// Starts `job` (its run at start if it asks for one and `at_start`).
    pub fn start(&mut self, job: PreparedJob, routes: Vec<Route>, digest: u64, at_start: bool) {
        let name = job.config.name.clone();
        let runner = Arc::new(JobRunner::new(job, routes, self.shared.clone()));
        self.spawn(name, runner, digest, at_start, None);
    }

    fn spawn(
        &mut self,
        name: String,
        runner: Arc<JobRunner>,
        digest: u64,
        at_start: bool,
        after: Option<JoinHandle<DriveStatsSnapshot>>,
    ) {
        let state = runner.current();
        let cfg = &state.job.config;
        let destinations: Vec<String> = state.routes.iter().map(Route::describe).collect();
        tracing::info!(
            job = %name, guest = state.job.guest.name(), schedule = cfg.schedule.as_str(),
            sinks = %destinations.join(", "), "job scheduled"
        );
        let schedule = cfg.schedule.clone();
        let stats = runner.stats().drive_stats();
        let options = DriveOptions {
            job: name.clone(),
            run_at_start: at_start && cfg.run_at_start,
            jitter: cfg.jitter,
            seed: None,
            last_sequence: stats.snapshot().ticks,
            stats,
        };
        let stop = self.shutdown.child_token();
        let token = stop.clone();
        let driving = runner.clone();
        let driver = tokio::spawn(async move {
            // A job never overlaps itself: a new schedule starts once the
            // run the old one had in flight is over.
            let last = match after {
                Some(old) => old.await.ok(),
                None => None,
            };
            let options = DriveOptions {
                last_sequence: last.map_or(options.last_sequence, |s| s.ticks),
                ..options
            };
            schedule::drive(
                schedule,
                options,
                Arc::new(SystemClock),
                token,
                move |tick| {
                    let runner = driving.clone();
                    async move { runner.tick(tick).await }
                },
            )
            .await
        });
        self.running.insert(
            name,
            Running {
                runner,
                stop,
                driver,
                guest_digest: digest,
                joined: false,
            },
        );
    }

    /// Applies a reload's version of `job`: unchanged jobs only take the new
    /// routes (a sink replaced under them); a changed run or destination is
    /// used from the next tick; a changed schedule or jitter gets a new
    /// driver that continues the sequence once the run in flight is over.
    pub fn update(&mut self, job: PreparedJob, routes: Vec<Route>, digest: u64) -> Change {
        let name = job.config.name.clone();
        let Some(old) = self.running.get(&name) else {
            self.start(job, routes, digest, true);
            return Change::Added;
        };
        let before = old.runner.current();
        let was = &before.job.config;
        let now = &job.config;
        let same_run = was.guest == now.guest
            && old.guest_digest == digest
            && was.config == now.config
            && was.limits == now.limits
            && was.sinks == now.sinks
            && was.log_group == now.log_group
            && was.log_stream == now.log_stream;
        let same_driver =
            was.schedule.as_str() == now.schedule.as_str() && was.jitter == now.jitter;
        if same_driver {
            old.runner.update(job, routes);
            return if same_run {
                Change::Unchanged
            } else {
                Change::Changed
            };
        }
        let Some(old) = self.running.remove(&name) else {
            return Change::Unchanged;
        };
        old.stop.cancel();
        old.runner.update(job, routes);
        self.spawn(name, old.runner, digest, false, Some(old.driver));
        Change::Changed
    }

    /// Stops `name`: no further tick; a run in flight finishes, and what the
    /// job already submitted is delivered as usual.
    pub fn stop(&mut self, name: &str) {
        if let Some(old) = self.running.remove(name) {
            old.stop.cancel();
            self.removed.retain(|(_, d)| !d.is_finished());
            self.removed.push((name.to_string(), old.driver));
            tracing::info!(job = name, "job removed: no further runs");
        }
    }

    /// The longest run deadline of the running jobs.
    pub fn longest_run(&self) -> Duration {
        self.running
            .values()
            .map(|r| r.runner.current().job.config.limits.deadline)
            .max()
            .unwrap_or_default()
    }

    /// Waits for every driver to stop (after the daemon's shutdown was
    /// cancelled), logging any that ended abnormally.
    /// Cancel-safe: cut short (a grace period), it can be called again.
    pub async fn join(&mut self) {
        while let Some((name, driver)) = self.removed.last_mut() {
            if let Err(e) = driver.await {
                tracing::error!(job = %name, error = %e, "a removed job's scheduler task failed");
            }
            self.removed.pop();
        }
        for (name, r) in self.running.iter_mut() {
            if r.joined {
                continue;
            }
            let ended = (&mut r.driver).await;
            r.joined = true;
            if let Err(e) = ended {
                tracing::error!(job = %name, error = %e, "a job's scheduler task failed");
            }
        }
    }
}
