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

impl DeliveryStats {
    /// The counters' names, as the WIT record spells them in snake case; used
    /// by `cwpub test` case files and `cwpub invoke --delivery`.
    pub const KEYS: [&'static str; 9] = [
        "events_delivered",
        "bytes_delivered",
        "events_dropped",
        "events_pending",
        "requests",
        "retries",
        "throttled",
        "runs_succeeded",
        "runs_failed",
    ];

    /// Sets the counter named `key` (one of [`Self::KEYS`]); `None` for an unknown name.
    pub fn set(&mut self, key: &str, value: u64) -> Option<()> {
        let counter = match key {
            "events_delivered" => &mut self.events_delivered,
            "bytes_delivered" => &mut self.bytes_delivered,
            "events_dropped" => &mut self.events_dropped,
            "events_pending" => &mut self.events_pending,
            "requests" => &mut self.requests,
            "retries" => &mut self.retries,
            "throttled" => &mut self.throttled,
            "runs_succeeded" => &mut self.runs_succeeded,
            "runs_failed" => &mut self.runs_failed,
            _ => return None,
        };
        *counter = value;
        Some(())
    }
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

/// The parts of a run's context that a test case (or a `cwpub invoke` flag)
/// pins to fixed values; each `None` keeps what a real run would see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixedContext {
    /// When the run starts (ms since the epoch) instead of now.
    pub at_ms: Option<u64>,
    /// When the schedule meant the run to happen; defaults to the start time.
    pub scheduled_ms: Option<u64>,
    /// The invocation id instead of a fresh UUID.
    pub invocation_id: Option<String>,
    /// The host name.
    pub hostname: Option<String>,
    /// The orchestrator task id.
    pub task_id: Option<String>,
    /// The AWS region.
    pub region: Option<String>,
    /// The host version.
    pub host_version: Option<String>,
    /// Milliseconds since the host started.
    pub uptime_ms: Option<u64>,
    /// The delivery counters.
    pub delivery: Option<DeliveryStats>,
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
        Self::fixed(job, sequence, config, facts, &FixedContext::default())
    }

    /// A request like [`now`](Self::now) with the parts `fixed` pins replaced.
    pub fn fixed(
        job: Arc<str>,
        sequence: u64,
        config: Arc<[(String, String)]>,
        facts: HostFacts,
        fixed: &FixedContext,
    ) -> Self {
        let at_ms = fixed
            .at_ms
            .unwrap_or_else(|| u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0));
        let pick = |pinned: &Option<String>, real: String| pinned.clone().unwrap_or(real);
        let facts = HostFacts {
            hostname: pick(&fixed.hostname, facts.hostname),
            task_id: fixed.task_id.clone().or(facts.task_id),
            region: fixed.region.clone().or(facts.region),
            host_version: pick(&fixed.host_version, facts.host_version),
            uptime_ms: fixed.uptime_ms.unwrap_or(facts.uptime_ms),
            delivery: fixed.delivery.unwrap_or(facts.delivery),
        };
        RunRequest {
            job,
            scheduled_ms: fixed.scheduled_ms.unwrap_or(at_ms),
            actual_ms: at_ms,
            sequence,
            invocation_id: fixed
                .invocation_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            config,
            facts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_parts_replace_the_real_ones_and_the_rest_stay() {
        let real = HostFacts {
            hostname: "real-host".into(),
            task_id: Some("real-task".into()),
            region: None,
            host_version: "1.2.3".into(),
            uptime_ms: 5,
            delivery: DeliveryStats::default(),
        };
        let mut delivery = DeliveryStats::default();
        delivery.set("events_dropped", 7).expect("a counter");
        let fixed = FixedContext {
            at_ms: Some(1_767_225_600_000),
            hostname: Some("web-1".into()),
            region: Some("eu-west-1".into()),
            invocation_id: Some("id-1".into()),
            delivery: Some(delivery),
            ..FixedContext::default()
        };
        let r = RunRequest::fixed("job".into(), 3, Arc::new([]), real, &fixed);
        assert_eq!(
            (r.actual_ms, r.scheduled_ms),
            (1_767_225_600_000, 1_767_225_600_000)
        );
        assert_eq!(r.invocation_id, "id-1");
        assert_eq!(r.facts.hostname, "web-1");
        assert_eq!(
            r.facts.task_id.as_deref(),
            Some("real-task"),
            "not pinned: kept"
        );
        assert_eq!(r.facts.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            (r.facts.host_version.as_str(), r.facts.uptime_ms),
            ("1.2.3", 5)
        );
        assert_eq!(r.facts.delivery.events_dropped, 7);
        assert_eq!(r.sequence, 3);
    }

    #[test]
    fn every_counter_name_sets_its_own_counter() {
        for (i, key) in DeliveryStats::KEYS.iter().enumerate() {
            let mut d = DeliveryStats::default();
            d.set(key, i as u64 + 1).expect("known key");
            let all = [
                d.events_delivered,
                d.bytes_delivered,
                d.events_dropped,
                d.events_pending,
                d.requests,
                d.retries,
                d.throttled,
                d.runs_succeeded,
                d.runs_failed,
            ];
            assert_eq!(all.iter().filter(|&&v| v != 0).count(), 1, "{key}");
            assert_eq!(all[i], i as u64 + 1, "{key}");
        }
        assert!(DeliveryStats::default().set("events", 1).is_none());
    }
}
