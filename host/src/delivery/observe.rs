//! Delivery's live metrics in the ledger's registry, read at scrape time
//! from state the stage keeps anyway: the buffer gauges, the adaptive
//! PutLogEvents rate, the circuit breakers and the spool. Nothing is kept
//! twice and nothing runs between scrapes; once the stage is gone they read 0.

use std::fmt;
use std::sync::{Arc, Weak};

use crate::ledger::{Collector, DescriptorEncoder, encode_counters, encode_gauges};

use super::Shared;
use super::spool::{Spool, SpoolStats};

/// What the buffer holds right now.
pub(crate) struct BufferGauges {
    pub events: u64,
    pub bytes: u64,
    pub in_flight: u64,
}

/// Reads the buffer gauges.
pub(crate) fn buffer_gauges(shared: &Shared) -> BufferGauges {
    let (events, bytes) = shared.lock_core().buffer.gauges();
    let in_flight = shared.cfg.max_in_flight.clamp(1, 1_000) - shared.in_flight.available_permits();
    BufferGauges {
        events: events as u64,
        bytes: bytes as u64,
        in_flight: in_flight as u64,
    }
}

/// Registers every delivery metric in `shared.ledger`'s registry.
pub(crate) fn register(shared: &Arc<Shared>) {
    type Read = fn(&BufferGauges) -> u64;
    let gauges: [(&str, &str, Read); 3] = [
        (
            "cwpub_buffered_events",
            "Events buffered or held by requests in progress.",
            |g| g.events,
        ),
        (
            "cwpub_buffered_bytes",
            "Bytes (message + 26 per event) buffered or held by requests in progress.",
            |g| g.bytes,
        ),
        (
            "cwpub_in_flight_requests",
            "PutLogEvents requests on the wire.",
            |g| g.in_flight,
        ),
    ];
    for (name, help, read) in gauges {
        let weak = Arc::downgrade(shared);
        shared.ledger.metrics().gauge_fn(name, help, move || {
            weak.upgrade().map_or(0, |s| {
                i64::try_from(read(&buffer_gauges(&s))).unwrap_or(i64::MAX)
            })
        });
    }
    shared.ledger.metrics().collector(Control {
        shared: Arc::downgrade(shared),
    });
}

/// The rate, circuit and spool families.
struct Control {
    shared: Weak<Shared>,
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

type NoLabels = Vec<(&'static str, String)>;

impl Collector for Control {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let Some(s) = self.shared.upgrade() else {
            return Ok(());
        };
        let one = |v: f64| [(NoLabels::new(), v)];
        encode_gauges(
            &mut e,
            "cwpub_put_rate_per_sec",
            "PutLogEvents requests per second allowed now: halved on throttling, climbing back to the ceiling as requests succeed",
            one(s.rate.current()),
        )?;
        encode_gauges(
            &mut e,
            "cwpub_put_rate_ceiling_per_sec",
            "The configured ceiling of the PutLogEvents rate (put_rate_per_sec)",
            one(s.rate.ceiling()),
        )?;
        let circuits = s.health.circuits();
        encode_gauges(
            &mut e,
            "cwpub_target_circuit_state",
            "Circuit breakers that are not closed: 1 half-open (one probe allowed), 2 open",
            circuits.iter().map(|(t, state)| {
                (
                    [
                        ("log_group", t.log_group.as_str()),
                        ("log_stream", t.log_stream.as_str()),
                    ],
                    state.as_gauge(),
                )
            }),
        )?;
        let spool: Option<SpoolStats> = s.lock_core().spool.as_ref().map(Spool::stats);
        let Some(sp) = spool else {
            return Ok(());
        };
        for (name, help, value) in [
            (
                "cwpub_spool_bytes",
                "Bytes of the spool's segment files",
                sp.bytes,
            ),
            (
                "cwpub_spool_events",
                "Events in the spool not yet delivered or dropped",
                sp.events,
            ),
            (
                "cwpub_spool_segments",
                "Segment files in the spool",
                sp.segments,
            ),
            (
                "cwpub_spool_foreign_files",
                "Files in spool_dir that are not the spool's (left alone)",
                sp.foreign_files,
            ),
        ] {
            encode_gauges(&mut e, name, help, [(NoLabels::new(), value as i64)])?;
        }
        for (name, help, value) in [
            (
                "cwpub_spool_replayed_events",
                "Events found in the spool at start and queued again",
                sp.replayed,
            ),
            (
                "cwpub_spool_corrupt_records",
                "Damaged records skipped at start (each lost at least one event)",
                sp.corrupt_records,
            ),
            (
                "cwpub_spool_corrupt_bytes",
                "Bytes in damaged records and quarantined segments skipped at start",
                sp.corrupt_bytes,
            ),
            (
                "cwpub_spool_possible_duplicates",
                "Replayed events whose request's answer was lost in a crash: they may arrive twice",
                sp.possible_duplicates,
            ),
            (
                "cwpub_spool_io_errors",
                "Failed spool writes or deletions (the events stayed in memory)",
                sp.io_errors,
            ),
        ] {
            encode_counters(&mut e, name, help, [(NoLabels::new(), value)])?;
        }
        Ok(())
    }
}
