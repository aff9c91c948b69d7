//! Benchmark: what loading a guest costs, for the guest table in
//! docs/sizing.md and for choosing compile settings.
//!
//! ```sh
//! cargo bench -p cwpub --bench guest_compile -- [ROUNDS] [GUEST.wasm ...]
//! ```
//!
//! For each guest (default: the built-in ones) it prints the component size;
//! the first compile as `cwpub` does it (no cache), under other Cranelift
//! settings and with Winch, wasmtime's baseline compiler; then for each of
//! cwpub's code generators ([`Codegen`]): the first load through cwpub's
//! runtime, a load from the compiled-guest cache by a fresh engine (what a
//! restart costs), one run (fresh instance, median of 200) and the guest's
//! peak linear memory. Each figure is the median of ROUNDS (default 3)
//! rounds, with the range.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cwpub::guest::{
    Builtin, Codegen, GuestSource, HostFacts, RunLimits, RunRequest, Runtime, RuntimeOptions,
};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, OptLevel, RegallocAlgorithm, Strategy};

const RUNS: usize = 200;

fn main() {
    // `cargo bench` appends `--bench`; everything else is ROUNDS and guest paths.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (rounds, paths) = match args.first().and_then(|a| a.parse::<usize>().ok()) {
        Some(n) => (n.max(1), &args[1..]),
        None => (3, &args[..]),
    };
    let guests: Vec<GuestSource> = if paths.is_empty() {
        Builtin::ALL.map(GuestSource::Builtin).to_vec()
    } else {
        paths.iter().map(|p| GuestSource::Path(p.into())).collect()
    };
    // A private compiled-guest cache, set before any other thread exists.
    let cache = tempfile::tempdir().expect("cache dir");
    // SAFETY: no other thread is running yet, so none reads the environment concurrently.
    unsafe { std::env::set_var("CWPUB_CACHE_DIR", cache.path()) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    for source in &guests {
        let bytes = source.bytes().expect("guest readable");
        println!("\n{source}: {:.2} MB", bytes.len() as f64 / 1e6);
        for (name, settings) in VARIANTS {
            let times = (0..rounds)
                .map(|_| {
                    let engine = Engine::new(&settings(base_config())).expect("engine");
                    let started = Instant::now();
                    Component::new(&engine, &*bytes).expect("compiles");
                    started.elapsed()
                })
                .collect();
            println!("  compile, {name:<34} {}", summary(times));
        }
        for codegen in [Codegen::Optimized, Codegen::Baseline, Codegen::Quick] {
            rt.block_on(load_and_run(source, rounds, codegen));
        }
    }
}

/// Cranelift settings compared with `cwpub`'s (the defaults).
type Variant = (&'static str, fn(Config) -> Config);
const VARIANTS: [Variant; 6] = [
    ("cwpub's settings (opt speed)", |c| c),
    ("winch (baseline compiler)", |mut c| {
        c.strategy(Strategy::Winch);
        c
    }),
    ("opt_level none", |mut c| {
        c.cranelift_opt_level(OptLevel::None);
        c
    }),
    ("single-pass register allocator", |mut c| {
        c.cranelift_regalloc_algorithm(RegallocAlgorithm::SinglePass);
        c
    }),
    ("opt none + single-pass", |mut c| {
        c.cranelift_opt_level(OptLevel::None);
        c.cranelift_regalloc_algorithm(RegallocAlgorithm::SinglePass);
        c
    }),
    ("one thread (no parallel compile)", |mut c| {
        c.parallel_compilation(false);
        c
    }),
];

/// The engine settings that change generated code in `cwpub`'s engine
/// (the pooling allocator and cache do not).
fn base_config() -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
    c
}

/// The real runtime: a first load fills the cache, then loads by fresh
/// engines read it, then runs.
async fn load_and_run(source: &GuestSource, rounds: usize, codegen: Codegen) {
    let options = RuntimeOptions {
        codegen,
        ..RuntimeOptions::from_env(&cwpub::env::process_env())
    };
    println!("  {codegen:?} code, as `cwpub` compiles it:");
    let started = Instant::now();
    let first = Runtime::with_options(&options).expect("engine");
    first.load(source).await.expect("loads");
    println!(
        "  first load (compile, fill the cache)     {}",
        summary(vec![started.elapsed()])
    );
    let mut cached = Vec::new();
    let mut guest = None;
    for _ in 0..rounds {
        let runtime = Runtime::with_options(&options).expect("engine");
        let started = Instant::now();
        guest = Some(runtime.load(source).await.expect("loads from the cache"));
        cached.push(started.elapsed());
    }
    println!(
        "  load from the cache (fresh engine)       {}",
        summary(cached)
    );
    let guest = guest.expect("loaded");
    let config: Arc<[(String, String)]> = match source {
        GuestSource::Path(_) => vec![("service".to_owned(), "bench".to_owned())].into(),
        GuestSource::Builtin(_) => Arc::new([]),
    };
    let request = RunRequest::now("bench".into(), 1, config, HostFacts::from_process());
    let limits = RunLimits::default();
    let mut samples = Vec::with_capacity(RUNS);
    let mut peak = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let output = guest.run(&request, &limits).await.expect("runs");
        samples.push(started.elapsed());
        peak = peak.max(output.peak_memory_bytes);
    }
    samples.sort();
    println!(
        "  run (fresh instance), median of {RUNS}     {} (p90 {}); peak linear memory {:.1} MiB",
        short(samples[RUNS / 2]),
        short(samples[RUNS * 9 / 10]),
        peak as f64 / (1 << 20) as f64
    );
}

/// "median (min–max)" in the unit that suits.
fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    let median = times[times.len() / 2];
    let (min, max) = (times[0], times[times.len() - 1]);
    if median >= Duration::from_secs(1) {
        format!(
            "{:.1} s ({:.1}–{:.1})",
            median.as_secs_f64(),
            min.as_secs_f64(),
            max.as_secs_f64()
        )
    } else {
        format!("{:.1} ms ({:.1}–{:.1})", ms(median), ms(min), ms(max))
    }
}

/// A short duration in µs below a millisecond, else in ms.
fn short(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", ms(d))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
