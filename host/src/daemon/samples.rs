//! Turns the delivery observer's snapshot into Prometheus samples for
//! `/metrics`, and into the host facts handed to guests.

use crate::delivery::{Counters, StatsSnapshot};
use crate::guest::DeliveryStats;
use crate::observe::{MetricSample, RunTotals};

/// Per-target and per-job delivery counters plus buffer gauges, as samples.
pub fn delivery_samples(stats: &StatsSnapshot) -> Vec<MetricSample> {
    let mut out = Vec::new();
    for (target, c) in stats.per_target.iter() {
        let labels = [
            ("log_group", target.log_group.as_str()),
            ("log_stream", target.log_stream.as_str()),
        ];
        counters(&mut out, "cwpub_target", &labels, c);
        out.push(MetricSample::counter(
            "cwpub_target_groups_created_total",
            &labels,
            c.groups_created,
        ));
        out.push(MetricSample::counter(
            "cwpub_target_streams_created_total",
            &labels,
            c.streams_created,
        ));
    }
    for (job, c) in stats.per_job.iter() {
        counters(&mut out, "cwpub_job_delivery", &[("job", job)], c);
    }
    out.push(MetricSample::gauge(
        "cwpub_buffered_events",
        &[],
        stats.buffered_events as f64,
    ));
    out.push(MetricSample::gauge(
        "cwpub_buffered_bytes",
        &[],
        stats.buffered_bytes as f64,
    ));
    out.push(MetricSample::gauge(
        "cwpub_in_flight_requests",
        &[],
        stats.in_flight_requests as f64,
    ));
    out
}

fn counters(out: &mut Vec<MetricSample>, prefix: &str, labels: &[(&str, &str)], c: &Counters) {
    for (name, value) in [
        ("events_sent_total", c.events_sent),
        ("bytes_sent_total", c.bytes_sent),
        ("requests_total", c.requests),
        ("retries_total", c.retries),
        ("throttles_total", c.throttles),
    ] {
        out.push(MetricSample::counter(
            &format!("{prefix}_{name}"),
            labels,
            value,
        ));
    }
    for (reason, value) in &c.drops {
        let mut with_reason = labels.to_vec();
        with_reason.push(("reason", reason));
        out.push(MetricSample::counter(
            &format!("{prefix}_events_dropped_total"),
            &with_reason,
            *value,
        ));
    }
}

/// The delivery counters a guest sees as host facts.
pub fn delivery_facts(stats: &StatsSnapshot, runs: RunTotals) -> DeliveryStats {
    let t = &stats.totals;
    DeliveryStats {
        events_delivered: t.events_sent,
        bytes_delivered: t.bytes_sent,
        events_dropped: t.dropped_total(),
        events_pending: stats.buffered_events,
        requests: t.requests,
        retries: t.retries,
        throttled: t.throttles,
        runs_succeeded: runs.succeeded,
        runs_failed: runs.failed,
    }
}
