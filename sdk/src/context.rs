//! [`Context`]: everything the host tells a guest about the run it asks for,
//! as typed Rust values.

use std::time::Duration;

use crate::Guest;
use crate::config::Config;
use crate::error::Result;
use crate::output::Output;
use crate::time::Timestamp;

/// Everything the host tells a guest about one run.
///
/// The host fills it in for every run; in unit tests build one with
/// [`Context::new`] and set the fields you need:
///
/// ```
/// use cwpub_guest::{Config, Context};
///
/// let mut ctx = Context::new("orders", "2026-01-01T00:00:00Z".parse().unwrap());
/// ctx.sequence = 7;
/// ctx.host.hostname = "ip-10-0-0-1".into();
/// ctx.config = Config::new("orders", [("service", "orders-api")]);
/// assert_eq!(ctx.actual.to_string(), "2026-01-01T00:00:00.000Z");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Context {
    /// The job's name from the operator's configuration (unique per host).
    pub job: String,
    /// When the schedule meant this run to happen.
    pub scheduled: Timestamp,
    /// When the run actually started: the usual time for the events it returns.
    pub actual: Timestamp,
    /// Run counter for this job, starting at 1 when the host starts; it grows
    /// by one per run attempt, including skipped and failed ones.
    pub sequence: u64,
    /// A unique id (a UUID) for this run; with `job` it identifies the run's
    /// events downstream, e.g. to drop duplicates.
    pub invocation_id: String,
    /// The job's configuration, already checked against
    /// [`Guest::CONFIG_KEYS`](crate::Guest::CONFIG_KEYS).
    pub config: Config,
    /// Facts about the host at the start of the run.
    pub host: Host,
}

impl Context {
    /// A context for job `job` scheduled and started at `at`, with sequence 1,
    /// a fixed invocation id, no configuration and [`Host::default`] facts:
    /// a starting point for unit tests.
    pub fn new(job: &str, at: Timestamp) -> Self {
        Context {
            job: job.to_owned(),
            scheduled: at,
            actual: at,
            sequence: 1,
            invocation_id: "00000000-0000-4000-8000-000000000000".to_owned(),
            config: Config::new(job, std::iter::empty::<(String, String)>()),
            host: Host::default(),
        }
    }

    /// Runs guest `G` on this context as the host does: checks the
    /// configuration keys against [`Guest::CONFIG_KEYS`], then calls
    /// [`Guest::run`]. Use it in unit tests.
    pub fn run_for<G: Guest>(&self) -> Result<Output> {
        self.config.check_keys(G::NAME, G::CONFIG_KEYS)?;
        G::run(self)
    }

    /// The job's configuration (the same as the `config` field).
    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Read-only facts about the host process, for use in payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Host {
    /// The host's name (in a container, usually the container id).
    pub hostname: String,
    /// The orchestrator's task or pod id when the host knows it (e.g. the ECS task id).
    pub task_id: Option<String>,
    /// The AWS region the host delivers to, when configured.
    pub region: Option<String>,
    /// The cwpub host version, e.g. `"0.1.0"`.
    pub version: String,
    /// How long the host process has been running.
    pub uptime: Duration,
    /// The host's delivery counters at the start of the run.
    pub delivery: Delivery,
}

impl Default for Host {
    /// `localhost`, no task id or region, version `0.0.0`, zero uptime and counters.
    fn default() -> Self {
        Host {
            hostname: "localhost".to_owned(),
            task_id: None,
            region: None,
            version: "0.0.0".to_owned(),
            uptime: Duration::ZERO,
            delivery: Delivery::default(),
        }
    }
}

/// The host's delivery counters since it started, summed over all its jobs,
/// so a guest can publish the host's own health (e.g. as EMF metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Delivery {
    /// Events CloudWatch (or the stdout sink) accepted.
    pub events_delivered: u64,
    /// Message bytes in those events (UTF-8, without per-event overhead).
    pub bytes_delivered: u64,
    /// Events dropped for any reason (too old, too large, invalid EMF, overflow, rejected, …).
    pub events_dropped: u64,
    /// Events buffered and waiting for delivery.
    pub events_pending: u64,
    /// PutLogEvents requests sent, including retries.
    pub requests: u64,
    /// Requests retried after a transient failure.
    pub retries: u64,
    /// Requests CloudWatch throttled.
    pub throttled: u64,
    /// Guest runs that completed successfully.
    pub runs_succeeded: u64,
    /// Guest runs that failed (guest error, trap, deadline, limit).
    pub runs_failed: u64,
}
