//! Benchmark: the cost of one guest run (fresh store + instantiate + `run` +
//! collecting the events) for each reference guest, or for the guests named.
//!
//! ```sh
//! cargo bench -p cwpub --bench guest_run                       # builtin:heartbeat and builtin:emf
//! cargo bench -p cwpub --bench guest_run -- a.wasm b.wasm      # other guests, side by side
//! ```
//!
//! Loads each guest once, then times 5,000 runs of each after 200 warm-up
//! runs, the guests taking turns (so a busy moment of the machine falls on
//! all of them alike), from one task on a current-thread runtime: median,
//! p10–p90 and runs per second at the median.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cwpub::guest::{Builtin, GuestSource, HostFacts, RunLimits, RunRequest, Runtime};

const WARMUP: usize = 200;
const RUNS: usize = 5_000;

fn main() {
    let paths: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let sources: Vec<GuestSource> = if paths.is_empty() {
        Builtin::ALL.map(GuestSource::Builtin).to_vec()
    } else {
        paths.iter().map(|p| GuestSource::Path(p.into())).collect()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let runtime = Runtime::new().expect("engine");
        let mut guests = Vec::new();
        for source in &sources {
            let guest = runtime.load(source).await.expect("loads");
            let config: Arc<[(String, String)]> = match source {
                GuestSource::Path(_) => vec![("service".to_owned(), "bench".to_owned())].into(),
                GuestSource::Builtin(_) => Arc::new([]),
            };
            let request = RunRequest::now("bench".into(), 1, config, HostFacts::from_process());
            guests.push((source.to_string(), guest, request));
        }
        let limits = RunLimits::default();
        let mut samples = vec![Vec::with_capacity(RUNS); guests.len()];
        for i in 0..WARMUP + RUNS {
            for ((_, guest, request), samples) in guests.iter().zip(&mut samples) {
                let started = Instant::now();
                let output = guest.run(request, &limits).await.expect("run succeeds");
                let elapsed = started.elapsed();
                assert!(!output.events.is_empty());
                if i >= WARMUP {
                    samples.push(elapsed);
                }
            }
        }
        println!(
            "{:<20} {:>10} {:>20} {:>10}",
            "guest", "median", "p10–p90", "runs/s"
        );
        for ((name, _, _), samples) in guests.iter().zip(&mut samples) {
            samples.sort();
            let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
            let median = at(0.5);
            println!(
                "{:<20} {:>10} {:>20} {:>10.0}",
                name,
                micros(median),
                format!("{}–{}", micros(at(0.1)), micros(at(0.9))),
                1.0 / median.as_secs_f64()
            );
        }
    });
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
