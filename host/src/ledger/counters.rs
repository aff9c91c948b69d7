//! The counters the ledger keeps for one job, one target or in total, and
//! [`StatsSnapshot`], a point-in-time copy of all of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::event::Target;

use super::reason::DropReason;

/// Counters for one job, one target, or the total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events the sink accepted (events CloudWatch rejected excluded).
    pub events_sent: u64,
    /// UTF-8 message bytes of accepted events (without the 26-byte overhead).
    pub bytes_sent: u64,
    /// Requests (PutLogEvents calls, stdout writes) that got a successful answer.
    pub requests: u64,
    /// Requests that failed and were (or will be) retried, throttles included.
    pub retries: u64,
    /// Requests answered with ThrottlingException.
    pub throttles: u64,
    /// Log groups this host created.
    pub groups_created: u64,
    /// Log streams this host created.
    pub streams_created: u64,
    /// Dropped events by reason.
    pub drops: BTreeMap<DropReason, u64>,
}

impl Counters {
    /// Counts one answered request that delivered `events` events of `bytes` message bytes.
    pub(super) fn add_request(&mut self, events: u64, bytes: u64) {
        self.events_sent += events;
        self.bytes_sent += bytes;
        self.requests += 1;
    }

    /// Counts `count` events dropped for `reason`.
    pub(super) fn add_drop(&mut self, reason: DropReason, count: u64) {
        *self.drops.entry(reason).or_default() += count;
    }

    /// All dropped events, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops.values().sum()
    }

    /// Dropped events with one reason (0 when none).
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops.get(&reason).copied().unwrap_or(0)
    }
}

/// A point-in-time copy of every ledger counter, plus the sink's buffer gauges.
/// Cloning is cheap (the per-job and per-target maps are shared).
#[derive(Debug, Clone, Default)]
pub struct StatsSnapshot {
    /// Counters over all jobs and targets.
    pub totals: Counters,
    /// Counters per job over all its sinks (jobs that never had events are absent).
    pub per_job: Arc<BTreeMap<Arc<str>, Counters>>,
    /// Counters per sink, by its name.
    pub per_sink: Arc<BTreeMap<Arc<str>, Counters>>,
    /// Counters per target.
    pub per_target: Arc<BTreeMap<Target, Counters>>,
    /// Events currently buffered or held by requests in progress (0 for sinks without a buffer).
    pub buffered_events: u64,
    /// Bytes (message + 26) currently buffered or held by requests in progress.
    pub buffered_bytes: u64,
    /// Requests on the wire right now.
    pub in_flight_requests: u64,
}

impl StatsSnapshot {
    /// Counters of one job (default zeros when unknown).
    pub fn job(&self, job: &str) -> Counters {
        self.per_job.get(job).cloned().unwrap_or_default()
    }

    /// Counters of one sink (default zeros when unknown).
    pub fn sink(&self, sink: &str) -> Counters {
        self.per_sink.get(sink).cloned().unwrap_or_default()
    }

    /// Counters of one target (default zeros when unknown).
    pub fn target(&self, target: &Target) -> Counters {
        self.per_target.get(target).cloned().unwrap_or_default()
    }
}
