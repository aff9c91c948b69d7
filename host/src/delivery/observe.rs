//! The delivery cores' live metrics in the ledger's registry, one family per
//! metric with a `sink` label, read at scrape time from what each core
//! publishes anyway: the buffer gauges, the adaptive rate, the circuit
//! breakers and the spool. Nothing is kept twice, nothing runs between
//! scrapes, and a scrape never waits for a core's owner or its disk.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::ledger::{
    Collector, DescriptorEncoder, Labels, encode_counters, encode_gauges, target_labels,
};

use super::Shared;
use super::spool::SpoolStats;

/// Requests of a core on the wire now.
pub(crate) fn in_flight(shared: &Shared) -> u64 {
    let limit = shared.in_flight_limit.load(Ordering::Relaxed);
    limit.saturating_sub(shared.in_flight.available_permits()) as u64
}

/// The cores counting into one ledger; registered once as its collector.
#[derive(Default)]
struct Cores {
    cores: Mutex<Vec<Weak<Shared>>>,
}

/// Adds `shared` to its ledger's collector (registering that collector
/// the first time).
pub(crate) fn register(shared: &Arc<Shared>) {
    let ledger = &shared.ledger;
    let cores = ledger.extension(|| {
        let cores = Arc::new(Cores::default());
        ledger.metrics().collector(Collect(Arc::clone(&cores)));
        cores
    });
    let mut list = cores.cores.lock().unwrap_or_else(PoisonError::into_inner);
    list.retain(|w| w.strong_count() > 0);
    list.push(Arc::downgrade(shared));
}

struct Collect(Arc<Cores>);

impl fmt::Debug for Collect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryCores").finish_non_exhaustive()
    }
}

fn sink_label(s: &Shared) -> Labels<'_> {
    vec![(Cow::Borrowed("sink"), Cow::Borrowed(&*s.name))]
}

impl Collector for Collect {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let cores: Vec<Arc<Shared>> = self
            .0
            .cores
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        type Read = fn(&Shared) -> i64;
        let gauges: [(&str, &str, Read); 3] = [
            (
                "cwpub_buffered_events",
                "Events buffered or held by requests in progress, by sink.",
                |s| s.gauges.events.load(Ordering::Relaxed) as i64,
            ),
            (
                "cwpub_buffered_bytes",
                "Bytes (message + 26 per event) buffered or held by requests in progress, by sink.",
                |s| s.gauges.bytes.load(Ordering::Relaxed) as i64,
            ),
            (
                "cwpub_in_flight_requests",
                "Requests on the wire, by sink.",
                |s| in_flight(s) as i64,
            ),
        ];
        for (name, help, read) in gauges {
            encode_gauges(
                &mut e,
                name,
                help,
                cores.iter().map(|s| (sink_label(s), read(s))),
            )?;
        }
        encode_gauges(
            &mut e,
            "cwpub_put_rate_per_sec",
            "Requests per second allowed now, by sink: halved on throttling, climbing back to the ceiling as requests succeed.",
            cores.iter().map(|s| (sink_label(s), s.rate.current())),
        )?;
        encode_gauges(
            &mut e,
            "cwpub_put_rate_ceiling_per_sec",
            "The configured ceiling of the request rate (put_rate_per_sec), by sink.",
            cores.iter().map(|s| (sink_label(s), s.rate.ceiling())),
        )?;
        let circuits: Vec<_> = cores.iter().flat_map(|s| s.health.circuits()).collect();
        encode_gauges(
            &mut e,
            "cwpub_target_circuit_state",
            "Circuit breakers that are not closed: 1 half-open (one probe allowed), 2 open.",
            circuits
                .iter()
                .map(|(t, state)| (target_labels(t), state.as_gauge())),
        )?;
        let spools: Vec<(Labels<'_>, SpoolStats)> = cores
            .iter()
            .filter_map(|s| {
                let stats = *s
                    .gauges
                    .spool
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                stats.map(|st| (sink_label(s), st))
            })
            .collect();
        type SpoolRead = fn(&SpoolStats) -> u64;
        let spool_gauges: [(&str, &str, SpoolRead); 5] = [
            (
                "cwpub_spool_bytes",
                "Bytes of the spool's segment files, by sink.",
                |s| s.bytes,
            ),
            (
                "cwpub_spool_events",
                "Events in the spool not yet delivered or dropped, by sink.",
                |s| s.events,
            ),
            (
                "cwpub_spool_segments",
                "Segment files in the spool, by sink.",
                |s| s.segments,
            ),
            (
                "cwpub_spool_foreign_files",
                "Files in the spool directory that are not the spool's (left alone), by sink.",
                |s| s.foreign_files,
            ),
            (
                "cwpub_spool_unreadable_segments",
                "Segments that could not be read at start (skipped, left in place), by sink.",
                |s| s.unreadable_segments,
            ),
        ];
        for (name, help, read) in spool_gauges {
            encode_gauges(
                &mut e,
                name,
                help,
                spools.iter().map(|(l, st)| (l.clone(), read(st) as i64)),
            )?;
        }
        let spool_counters: [(&str, &str, SpoolRead); 5] = [
            (
                "cwpub_spool_replayed_events",
                "Events found in the spool at start and queued again, by sink.",
                |s| s.replayed,
            ),
            (
                "cwpub_spool_corrupt_records",
                "Damaged records skipped at start (each lost at least one event), by sink.",
                |s| s.corrupt_records,
            ),
            (
                "cwpub_spool_corrupt_bytes",
                "Bytes in damaged records and quarantined segments skipped at start, by sink.",
                |s| s.corrupt_bytes,
            ),
            (
                "cwpub_spool_possible_duplicates",
                "Replayed events whose request's answer was lost in a crash: they may arrive twice, by sink.",
                |s| s.possible_duplicates,
            ),
            (
                "cwpub_spool_io_errors",
                "Failed spool writes, syncs or deletions (events whose write failed are sent from memory), by sink.",
                |s| s.io_errors,
            ),
        ];
        for (name, help, read) in spool_counters {
            encode_counters(
                &mut e,
                name,
                help,
                spools.iter().map(|(l, st)| (l.clone(), read(st))),
            )?;
        }
        Ok(())
    }
}
