//! The delivery counters a guest sees as host facts, read from the ledger.

use crate::guest::DeliveryStats;
use crate::ledger::Counters;
use crate::observe::RunTotals;

/// The host facts' delivery counters: the ledger's totals, what is pending and the run totals.
pub fn delivery_facts(totals: &Counters, pending: u64, runs: RunTotals) -> DeliveryStats {
    DeliveryStats {
        events_delivered: totals.events_sent,
        bytes_delivered: totals.bytes_sent,
        events_dropped: totals.dropped_total(),
        events_pending: pending,
        requests: totals.requests,
        retries: totals.retries,
        throttled: totals.throttles,
        runs_succeeded: runs.succeeded,
        runs_failed: runs.failed,
    }
}
