//! The read-only facts and run context the host hands a guest, as plain Rust
//! types independent of the generated bindings.

use std::sync::Arc;

use crate::env::HostIdentity;

/// The host's delivery counters since start, summed over all jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Events accepted by the sink.
    pub events_delivered: u64,
    /// Message bytes in those events.
    pub bytes_delivered: u64,
    /// Events dropped for any reason.
    pub events_dropped: u64,
    /// Events buffered and not yet delivered.
    pub events_pending: u64,
    /// Delivery requests sent, including retries.
    pub requests: u64,
    /// Requests retried after a transient failure.
    pub retries: u64,
    /// Requests that were throttled.
    pub throttled: u64,
    /// Guest runs that succeeded.
    pub runs_succeeded: u64,
    /// Guest runs that failed.
    pub runs_failed: u64,
}

/// Facts about the host process passed to every run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Host name: `CWPUB_HOSTNAME`, else the system host name (see [`HostIdentity`]).
    pub hostname: String,
    /// Orchestrator task id, when known.
    pub task_id: Option<String>,
    /// AWS region delivered to, when configured.
    pub region: Option<String>,
    /// cwpub version.
    pub host_version: String,
    /// Milliseconds since the host started.
    pub uptime_ms: u64,
    /// Delivery counters at the start of the run.
    pub delivery: DeliveryStats,
}

impl HostFacts {
    /// Facts for the host `identity`, delivering to `region`; zero counters.
    pub fn new(identity: &HostIdentity, region: Option<String>) -> Self {
        HostFacts {
            hostname: identity.hostname.clone(),
            task_id: identity.task_id.clone(),
            region,
            host_version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_ms: 0,
            delivery: DeliveryStats::default(),
        }
    }

    /// [`HostFacts::new`] for the identity the process environment gives, no region.
    pub fn from_process() -> Self {
        HostFacts::new(&HostIdentity::detect(&crate::env::process_env()), None)
    }
}

/// Everything one run of a job is told.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Job name.
    pub job: Arc<str>,
    /// When the schedule meant the run to happen (ms since the epoch).
    pub scheduled_ms: u64,
    /// When the run actually started (ms since the epoch).
    pub actual_ms: u64,
    /// Per-job run counter, starting at 1.
    pub sequence: u64,
    /// Unique id of this run.
    pub invocation_id: String,
    /// The job's configuration, in file order.
    pub config: Arc<[(String, String)]>,
    /// Host facts at the start of the run.
    pub facts: HostFacts,
}

impl RunRequest {
    /// A request for a run happening now, with a fresh invocation id.
    pub fn now(
        job: Arc<str>,
        sequence: u64,
        config: Arc<[(String, String)]>,
        facts: HostFacts,
    ) -> Self {
        let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        RunRequest {
            job,
            scheduled_ms: now_ms,
            actual_ms: now_ms,
            sequence,
            invocation_id: uuid::Uuid::new_v4().to_string(),
            config,
            facts,
        }
    }
}
