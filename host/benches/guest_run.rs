//! Benchmark: the cost of one guest run (fresh store + instantiate + `run` +
//! collecting the events) for each reference guest.
//!
//! Run with `cargo bench -p cwpub --bench guest_run`. Prints the median and
//! 90th percentile over several thousand sequential runs, after a warm-up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cwpub::guest::{Builtin, GuestSource, HostFacts, RunLimits, RunRequest, Runtime};

const WARMUP: usize = 200;
const RUNS: usize = 5_000;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let runtime = Runtime::new().expect("engine");
        println!(
            "{:<20} {:>10} {:>10} {:>10}",
            "guest", "median", "p90", "runs/s"
        );
        for builtin in Builtin::ALL {
            let guest = runtime
                .load(&GuestSource::Builtin(builtin))
                .await
                .expect("loads");
            let limits = RunLimits::default();
            let config: Arc<[(String, String)]> = Arc::new([]);
            let request = RunRequest::now("bench".into(), 1, config, HostFacts::from_process());
            let mut samples = Vec::with_capacity(RUNS);
            for i in 0..WARMUP + RUNS {
                let started = Instant::now();
                let output = guest.run(&request, &limits).await.expect("run succeeds");
                let elapsed = started.elapsed();
                assert!(!output.events.is_empty());
                if i >= WARMUP {
                    samples.push(elapsed);
                }
            }
            samples.sort();
            let median = samples[samples.len() / 2];
            let p90 = samples[samples.len() * 9 / 10];
            println!(
                "{:<20} {:>10} {:>10} {:>10.0}",
                format!("builtin:{}", builtin.name()),
                micros(median),
                micros(p90),
                1.0 / median.as_secs_f64()
            );
        }
    });
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
