//! The one wasmtime [`Engine`] a host process uses: pooling instance
//! allocation (cheap fresh instances per run), epoch interruption driven by a
//! 10 ms ticker thread (wall-clock deadlines), and the shared [`Linker`] with
//! WASI p2 and the `cwpub:publisher` imports.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings;
use super::limits::RunLimits;
use super::options::{Codegen, RuntimeOptions};
use super::sandbox::RunState;

/// How often the epoch advances; the granularity of run deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Guest runs that may be in flight at once (pooling allocator slots).
const MAX_CONCURRENT_INSTANCES: u32 = 64;

/// The engine and linker shared by every guest of a host process.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<RunState>,
    /// One permit per pooling-allocator slot: runs beyond it wait for a slot
    /// instead of failing to instantiate.
    pub(crate) slots: tokio::sync::Semaphore,
    /// Where compiled guests are cached, if anywhere.
    pub(crate) cache_dir: Option<std::path::PathBuf>,
}

impl Runtime {
    /// Builds the engine with the options the process environment asks for
    /// ([`RuntimeOptions::from_env`]).
    pub fn new() -> anyhow::Result<Self> {
        Self::with_options(&RuntimeOptions::from_env(&crate::env::process_env()))
    }

    /// Builds the engine (pooling allocator unless `options` says otherwise,
    /// or when the address space cannot be reserved) and starts the epoch ticker.
    pub fn with_options(options: &RuntimeOptions) -> anyhow::Result<Self> {
        let codegen = options.codegen;
        let cache = options.cache_dir.as_deref().and_then(compile_cache);
        let cache_dir = cache.as_ref().map(|c| c.directory().clone());
        let engine = if options.pooling {
            match Engine::new(&config(true, cache.clone(), codegen)) {
                Ok(engine) => engine,
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "pooling allocator unavailable (address space reservation failed?); \
                         falling back to on-demand instance allocation"
                    );
                    Engine::new(&config(false, cache, codegen))
                        .map_err(to_anyhow)
                        .context("creating the wasm engine")?
                }
            }
        } else {
            Engine::new(&config(false, cache, codegen))
                .map_err(to_anyhow)
                .context("creating the wasm engine")?
        };
        spawn_epoch_ticker(&engine)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(to_anyhow)
            .context("linking WASI")?;
        bindings::Guest::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(to_anyhow)
            .context("linking the cwpub:publisher imports")?;
        let slots = tokio::sync::Semaphore::new(MAX_CONCURRENT_INSTANCES as usize);
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                slots,
                cache_dir,
            }),
        })
    }

    /// The underlying wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

fn config(pooling: bool, cache: Option<wasmtime::Cache>, codegen: Codegen) -> Config {
    let mut cfg = Config::new();
    cfg.cache(cache);
    if codegen == Codegen::Quick {
        cfg.cranelift_opt_level(wasmtime::OptLevel::None);
        cfg.cranelift_regalloc_algorithm(wasmtime::RegallocAlgorithm::SinglePass);
    }
    cfg.wasm_component_model(true);
    cfg.epoch_interruption(true);
    cfg.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
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
            // guests (docs/performance.md).
            .linear_memory_keep_resident(4 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(wasmtime::Enabled::Auto);
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    cfg
}

/// The on-disk cache of compiled guests in `dir`, so a restart skips
/// Cranelift (and the memory it touches). Without a usable directory (e.g. a
/// read-only container) guests are compiled at every start, as they would be
/// anyway the first time.
fn compile_cache(dir: &std::path::Path) -> Option<wasmtime::Cache> {
    let dir = std::path::absolute(dir).ok()?;
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

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) -> anyhow::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("cwpub-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .context("starting the epoch ticker thread")?;
    Ok(())
}

/// Converts a wasmtime error into an `anyhow` error, keeping its full chain.
pub(crate) fn to_anyhow(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}
