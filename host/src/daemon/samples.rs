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
    delivery_control_samples(&mut out, stats);
    out
}

/// The adaptive rate, the circuit breakers and the spool.
fn delivery_control_samples(out: &mut Vec<MetricSample>, stats: &StatsSnapshot) {
    out.push(
        MetricSample::gauge("cwpub_put_rate_per_sec", &[], stats.put_rate)
            .with_help("PutLogEvents requests per second allowed now (halved on throttling, climbs back to the ceiling)"),
    );
    out.push(MetricSample::gauge(
        "cwpub_put_rate_ceiling_per_sec",
        &[],
        stats.put_rate_ceiling,
    ));
    for (target, state) in &stats.circuits {
        out.push(
            MetricSample::gauge(
                "cwpub_target_circuit_state",
                &[
                    ("log_group", target.log_group.as_str()),
                    ("log_stream", target.log_stream.as_str()),
                ],
                state.as_gauge(),
            )
            .with_help("1 half-open (probing), 2 open; closed circuits are not listed"),
        );
    }
    let Some(sp) = &stats.spool else {
        return;
    };
    for (name, value) in [
        ("cwpub_spool_bytes", sp.bytes),
        ("cwpub_spool_events", sp.events),
        ("cwpub_spool_segments", sp.segments),
        ("cwpub_spool_foreign_files", sp.foreign_files),
    ] {
        out.push(MetricSample::gauge(name, &[], value as f64));
    }
    for (name, value) in [
        ("cwpub_spool_replayed_events_total", sp.replayed),
        ("cwpub_spool_corrupt_records_total", sp.corrupt_records),
        ("cwpub_spool_corrupt_bytes_total", sp.corrupt_bytes),
        (
            "cwpub_spool_possible_duplicates_total",
            sp.possible_duplicates,
        ),
        ("cwpub_spool_io_errors_total", sp.io_errors),
    ] {
        out.push(MetricSample::counter(name, &[], value));
    }
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
