//! Benchmark: loading a config whose job has N keys in `[jobs.config]`
//! (flat and dotted keys, in an order no sort would produce), to show that
//! loading stays linear in the number of keys.
//!
//! Run with `cargo bench -p cwpub --bench config_load`. Prints, per N, the
//! file size and the median, fastest and slowest of several `config::parse`
//! calls, and the time per key.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use cwpub::config;
use cwpub::env::from_pairs;

const ROUNDS: usize = 7;

fn text(keys: usize) -> String {
    let mut text = String::from(
        "[[jobs]]\nname = \"big\"\nguest = \"builtin:heartbeat\"\nschedule = \"@every 1m\"\nlog_group = \"/cwpub/big\"\n[jobs.config]\n",
    );
    for i in 0..keys {
        let k = (i * 7_919) % keys;
        if i % 10 == 0 {
            writeln!(text, "group{k}.key = \"value {i}\"").expect("write");
        } else {
            writeln!(text, "key{k} = \"value {i}\"").expect("write");
        }
    }
    text
}

fn main() {
    let env = from_pairs(&[("CWPUB_HOSTNAME", "bench")]);
    println!(
        "{:>9} {:>9} {:>10} {:>10} {:>10} {:>9}",
        "keys", "bytes", "median", "min", "max", "per key"
    );
    for keys in [1_000, 10_000, 100_000] {
        let text = text(keys);
        let mut samples: Vec<Duration> = (0..ROUNDS)
            .map(|_| {
                let started = Instant::now();
                let cfg = config::parse(&text, Path::new("bench.toml"), &env).expect("loads");
                let elapsed = started.elapsed();
                assert_eq!(cfg.jobs[0].config.len(), keys);
                elapsed
            })
            .collect();
        samples.sort();
        let median = samples[ROUNDS / 2];
        println!(
            "{keys:>9} {:>9} {:>10.1?} {:>10.1?} {:>10.1?} {:>7.0?}",
            text.len(),
            median,
            samples[0],
            samples[ROUNDS - 1],
            median / keys as u32,
        );
    }
}
