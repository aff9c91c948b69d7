//! The one wasmtime [`Engine`] a host process uses: pooling instance
//! allocation (cheap fresh instances per run), epoch interruption driven by
//! the [`EpochTicker`] (wall-clock deadlines; ticks only while a call is in
//! flight), the shared [`Linker`] with WASI p2 and the `cwpub:publisher`
//! imports, and the [`GuestPool`] of threads where guest code that runs
//! longer than one tick goes on, apart from the host's timers, HTTP endpoint
//! and delivery.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limits::RunLimits;
use super::options::{Codegen, RuntimeOptions};
use super::sandbox::{self, RunState};
pub use super::ticker::EPOCH_TICK;
use super::ticker::EpochTicker;

/// Guest runs that may be in flight at once (pooling allocator slots).
const MAX_CONCURRENT_INSTANCES: u32 = 64;

/// How many nice steps guest threads run below the host's own threads, so
/// the scheduler, the HTTP endpoint and delivery get a CPU first when guests
/// keep every CPU busy.
const GUEST_THREAD_NICE: i32 = 10;
/// The lowest CPU priority Linux knows.
const LOWEST_NICE: i32 = 19;

/// The engine and linker shared by every guest of a host process.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    /// The engine guests are compiled for (with the code generator the
    /// options name), and its linker.
    pub(crate) main: Tier,
    /// Winch's engine, for the first runs of a guest whose optimized code is
    /// still being compiled (see `load`); built when first needed.
    baseline: Mutex<Option<Arc<Tier>>>,
    /// Whether a guest not in the cache starts on baseline code.
    pub(crate) tiered: bool,
    /// The compiled-guest cache, shared by both engines.
    cache: Option<wasmtime::Cache>,
    /// One permit per pooling-allocator slot: runs beyond it wait for a slot
    /// instead of failing to instantiate.
    pub(crate) slots: Arc<tokio::sync::Semaphore>,
    /// Where guest calls longer than one epoch tick go on.
    pub(crate) pool: GuestPool,
    /// Advances the epochs while guest calls are in flight.
    pub(crate) ticker: EpochTicker,
    /// Where compiled guests are cached (`CWPUB_CACHE_DIR`, absolute), if
    /// anywhere: wasmtime's entries in [`WASMTIME_CACHE`], cwpub's notes
    /// beside them.
    pub(crate) cache_dir: Option<std::path::PathBuf>,
}

/// An engine and the linker of every import a guest may use in it.
pub(crate) struct Tier {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<RunState>,
}

impl Tier {
    fn new(engine: Engine) -> anyhow::Result<Self> {
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(to_anyhow)
            .context("linking WASI")?;
        sandbox::add_to_linker(&mut linker)
            .map_err(to_anyhow)
            .context("linking the cwpub:publisher imports")?;
        Ok(Tier { engine, linker })
    }
}

impl Runtime {
    /// Builds the engine with the options the process environment asks for
    /// ([`RuntimeOptions::from_env`]).
    pub fn new() -> anyhow::Result<Self> {
        Self::with_options(&RuntimeOptions::from_env(&crate::env::process_env()))
    }

    /// Builds the engine (pooling allocator unless `options` says otherwise,
    /// or when the address space cannot be reserved), the guest threads and
    /// the epoch ticker (all idle until a call starts).
    pub fn with_options(options: &RuntimeOptions) -> anyhow::Result<Self> {
        let codegen = options.codegen;
        let root = options
            .cache_dir
            .as_deref()
            .and_then(|d| std::path::absolute(d).ok());
        let cache = root.as_deref().and_then(compile_cache);
        let cache_dir = cache.as_ref().and(root);
        let engine = if options.pooling {
            match Engine::new(&config(true, cache.clone(), codegen)) {
                Ok(engine) => engine,
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "pooling allocator unavailable (address space reservation failed?); \
                         falling back to on-demand instance allocation"
                    );
                    Engine::new(&config(false, cache.clone(), codegen))
                        .map_err(to_anyhow)
                        .context("creating the wasm engine")?
                }
            }
        } else {
            Engine::new(&config(false, cache.clone(), codegen))
                .map_err(to_anyhow)
                .context("creating the wasm engine")?
        };
        let ticker = EpochTicker::start(&engine)?;
        let main = Tier::new(engine)?;
        let slots = Arc::new(tokio::sync::Semaphore::new(
            MAX_CONCURRENT_INSTANCES as usize,
        ));
        let pool = GuestPool::new()?;
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                main,
                baseline: Mutex::new(None),
                tiered: options.tiered
                    && codegen == Codegen::Optimized
                    && Codegen::BASELINE_AVAILABLE,
                cache,
                slots,
                pool,
                ticker,
                cache_dir,
            }),
        })
    }

    /// The underlying wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.main.engine
    }

    /// Winch's engine (on-demand instance allocation: it serves only the
    /// first minutes of a guest), built at the first call.
    pub(crate) fn baseline(&self) -> anyhow::Result<Arc<Tier>> {
        let mut baseline = self
            .inner
            .baseline
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(tier) = &*baseline {
            return Ok(tier.clone());
        }
        let engine = Engine::new(&config(false, self.inner.cache.clone(), Codegen::Baseline))
            .map_err(to_anyhow)
            .context("creating the baseline (Winch) engine")?;
        self.inner.ticker.watch(&engine);
        let tier = Arc::new(Tier::new(engine)?);
        *baseline = Some(tier.clone());
        Ok(tier)
    }
}

fn config(pooling: bool, cache: Option<wasmtime::Cache>, codegen: Codegen) -> Config {
    let mut cfg = Config::new();
    cfg.cache(cache);
    match codegen {
        Codegen::Optimized => {}
        Codegen::Baseline => {
            cfg.strategy(wasmtime::Strategy::Winch);
        }
        Codegen::Quick => {
            cfg.cranelift_opt_level(wasmtime::OptLevel::None);
            cfg.cranelift_regalloc_algorithm(wasmtime::RegallocAlgorithm::SinglePass);
        }
    }
    cfg.wasm_component_model(true);
    cfg.epoch_interruption(true);
    cfg.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
    // A trap carries handles to the guest's globals, so the host can tell a
    // stack overflow from other bad accesses (see `classify`); nothing is copied.
    cfg.coredump_on_trap(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(MAX_CONCURRENT_INSTANCES)
            .total_core_instances(MAX_CONCURRENT_INSTANCES * 8)
            .total_memories(MAX_CONCURRENT_INSTANCES * 2)
            .total_tables(MAX_CONCURRENT_INSTANCES * 4)
            .total_stacks(MAX_CONCURRENT_INSTANCES)
            .max_memory_size(RunLimits::MAX_MEMORY_CEILING)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(1 << 20)
            .max_core_instances_per_component(64)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .table_elements(100_000)
            // Reset reused slots by rewriting only the pages a run dirtied
            // (PAGEMAP_SCAN, Linux ≥ 6.7; a plain memset elsewhere) instead of
            // unmapping them: measured 2-3x cheaper per run for the reference
            // guests (docs/benchmarks.md).
            .linear_memory_keep_resident(4 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    cfg
}

/// The directory of the cache (`CWPUB_CACHE_DIR`) that wasmtime's cache
/// owns. Its cleanup deletes whatever it does not recognise there, so
/// cwpub's own notes (`optimized/`) live beside it.
pub const WASMTIME_CACHE: &str = "wasmtime";

/// The on-disk cache of compiled guests in `root`'s [`WASMTIME_CACHE`], so a
/// restart skips Cranelift (and the memory it touches). Without a usable
/// directory (e.g. a read-only container) guests are compiled at every
/// start, as they would be anyway the first time.
fn compile_cache(root: &std::path::Path) -> Option<wasmtime::Cache> {
    let dir = root.join(WASMTIME_CACHE);
    let mut cache_config = wasmtime::CacheConfig::new();
    cache_config.with_directory(&dir);
    match wasmtime::Cache::new(cache_config) {
        Ok(cache) => Some(cache),
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "compiled-guest cache unavailable; compiling at every start");
            None
        }
    }
}

/// The threads a guest call goes on running on once it has used up its first
/// epoch tick on the thread that made it (see `run`): a tokio runtime of its
/// own with one worker per CPU (at most one per instance slot), at a lower
/// CPU priority than the host's threads. A CPU-bound guest yields at every
/// epoch tick, so guests share these threads fairly among themselves, and
/// however busy they are, the host's own runtime (schedule timers, the HTTP
/// endpoint, delivery) waits behind none of them for more than one tick.
pub(crate) struct GuestPool {
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl GuestPool {
    fn new() -> anyhow::Result<Self> {
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(MAX_CONCURRENT_INSTANCES as usize);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("cwpub-guest")
            .on_thread_start(lower_thread_priority)
            .enable_all()
            .build()
            .context("starting the guest threads")?;
        Ok(GuestPool {
            runtime: Some(runtime),
        })
    }

    /// Runs `task` on a guest thread.
    pub(crate) fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.runtime {
            Some(runtime) => runtime.spawn(task),
            None => unreachable!("the guest pool is only taken when dropped"),
        }
    }
}

impl Drop for GuestPool {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside another
        // runtime (where a daemon or a test drops the last `Runtime`).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lowers the calling thread's CPU priority by [`GUEST_THREAD_NICE`] below
/// the process's own (the host threads'), whatever nice value the process
/// was started with.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid, getpriority and setpriority take plain integers and
    // touch no memory of ours; on Linux, PRIO_PROCESS with a thread id
    // reads and renices that thread only.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        // A new thread starts at the nice value of the thread that made it.
        // -1 is also a valid nice value; the start value then only matters
        // for where 19 caps it.
        let own = libc::getpriority(libc::PRIO_PROCESS, tid);
        // Raising one's own nice value needs no privilege; if it fails anyway
        // the guest threads simply keep the host's priority.
        libc::setpriority(
            libc::PRIO_PROCESS,
            tid,
            own.saturating_add(GUEST_THREAD_NICE).min(LOWEST_NICE),
        );
    }
}

/// Converts a wasmtime error into an `anyhow` error, keeping its full chain.
pub(crate) fn to_anyhow(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}
