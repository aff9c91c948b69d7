//! Throughput of the EMF builder and validator, in documents per second
//! (median of several rounds). Run with:
//!
//! ```text
//! cargo run --release -p cwpub-emf --example emf_bench
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use cwpub_emf::{DimensionSet, MetricsLogger, Unit, validate};

const NOW: i64 = 1_700_000_000_000;
const ROUNDS: usize = 7;
const ROUND_TIME: Duration = Duration::from_millis(300);

/// Builds a document shaped like `builtin:emf`'s: 2 dimensions, 4 properties, 12 metrics.
fn typical() -> Vec<String> {
    let mut logger = MetricsLogger::new("cwpub").unwrap();
    logger.set_timestamp(NOW).unwrap();
    let dims =
        DimensionSet::from_pairs([("Service", "orders-api"), ("Host", "ip-10-0-0-1")]).unwrap();
    logger.set_dimensions([dims], false).unwrap();
    logger
        .put_property("event_id", "emf:0b6f7c1e-8d1a-4c59-9a43-2f7e0c7d9a11")
        .unwrap();
    logger.put_property("sequence", 42).unwrap();
    logger.put_property("host_version", "0.1.0").unwrap();
    logger.put_property("region", "eu-west-1").unwrap();
    for (i, name) in [
        "Heartbeat",
        "UptimeSeconds",
        "EventsDelivered",
        "BytesDelivered",
        "EventsDropped",
        "EventsPending",
        "Requests",
        "Retries",
        "Throttled",
        "RunsSucceeded",
        "RunsFailed",
        "QueueDepth",
    ]
    .iter()
    .enumerate()
    {
        logger
            .put_metric(name, i as f64 * 1.5, Unit::Count)
            .unwrap();
    }
    logger.flush().unwrap()
}

/// Builds 100 metrics x 100 values: one maximal document.
fn large() -> Vec<String> {
    let mut logger = MetricsLogger::new("cwpub").unwrap();
    logger.set_timestamp(NOW).unwrap();
    logger
        .put_dimensions(DimensionSet::from_pairs([("Service", "orders-api")]).unwrap())
        .unwrap();
    for m in 0..100 {
        let name = format!("Metric{m:03}");
        for v in 0..100 {
            logger
                .put_metric(&name, f64::from(v) * 0.37, Unit::Milliseconds)
                .unwrap();
        }
    }
    logger.flush().unwrap()
}

/// Runs `f` repeatedly for `ROUNDS` rounds; returns the median documents/s.
fn measure(mut f: impl FnMut() -> usize) -> f64 {
    let mut rates: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let mut documents = 0usize;
            while start.elapsed() < ROUND_TIME {
                for _ in 0..16 {
                    documents += f();
                }
            }
            documents as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[ROUNDS / 2]
}

fn report(what: &str, bytes: usize, rate: f64) {
    println!(
        "{what:<38} {:>12.0} docs/s  {:>8.1} MB/s  ({bytes} B/doc)",
        rate,
        rate * bytes as f64 / 1e6
    );
}

fn main() {
    let typical_doc = typical().remove(0);
    let large_doc = large().remove(0);
    assert!(validate(&typical_doc, NOW).is_empty() && validate(&large_doc, NOW).is_empty());
    println!(
        "cwpub-emf benchmark: median of {ROUNDS} rounds of {} ms",
        ROUND_TIME.as_millis()
    );
    report(
        "builder, typical (12 metrics)",
        typical_doc.len(),
        measure(|| black_box(typical()).len()),
    );
    report(
        "builder, large (100 metrics x 100 values)",
        large_doc.len(),
        measure(|| black_box(large()).len()),
    );
    report(
        "validator, typical",
        typical_doc.len(),
        measure(|| {
            black_box(validate(black_box(&typical_doc), NOW));
            1
        }),
    );
    report(
        "validator, large",
        large_doc.len(),
        measure(|| {
            black_box(validate(black_box(&large_doc), NOW));
            1
        }),
    );
}
