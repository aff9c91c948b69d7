//! Loading a guest: read the bytes, check they are a component for a
//! supported `cwpub:publisher` version, compile once, and type-check the
//! imports and exports into a reusable pre-instantiation. A load that takes
//! long (the first compile of a large guest, e.g. an 18 MB Python component)
//! says what is happening on the host's log, and how long it took.
//!
//! A daemon's runtime ([`RuntimeOptions::tiered`](super::RuntimeOptions))
//! starts a guest whose optimized code is not in the cache on code from
//! Winch, wasmtime's baseline compiler (seconds instead of tens of seconds
//! for a Python guest), and compiles the optimized code on a thread of its
//! own; runs that start once it is ready use it. A marker beside the cache
//! (`optimized/`) records which guests' optimized code the cache holds, so
//! later starts load that directly.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::bindings::{self, GuestPre};
use super::engine::{Runtime, Tier};
use super::error::LoadError;
use super::sandbox::RunState;
use super::source::GuestSource;
use crate::untrusted::GuestText;

/// A compiled, type-checked guest, ready for any number of runs.
#[derive(Clone)]
pub struct LoadedGuest {
    pub(crate) runtime: Runtime,
    /// The code runs use: replaced once when baseline code gives way to
    /// optimized code.
    code: Arc<RwLock<Arc<Code>>>,
    name: Arc<str>,
    wit_version: Arc<str>,
}

/// A guest compiled for one engine.
pub(crate) struct Code {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) pre: GuestPre<RunState>,
    /// Winch's code, to be replaced by optimized code.
    pub(crate) baseline: bool,
}

impl LoadedGuest {
    /// The guest as the operator named it (`builtin:heartbeat`, a path).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `cwpub:publisher` version the guest was built against, e.g. "0.1.0".
    pub fn wit_version(&self) -> &str {
        &self.wit_version
    }

    /// Whether runs still use baseline code (its optimized code is compiling).
    pub fn is_baseline(&self) -> bool {
        self.code().baseline
    }

    /// The code the next run uses.
    pub(crate) fn code(&self) -> Arc<Code> {
        self.code
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Runtime {
    /// Loads and compiles a guest; compilation runs on a blocking thread.
    /// A load still running after [`SLOW_LOAD`] is announced at info level
    /// (guest, size, where the result is cached), then every
    /// [`PROGRESS_EVERY`], and its duration is logged when it ends. A tiered
    /// runtime starts a guest whose optimized code is not cached on baseline
    /// code (see the module docs).
    pub async fn load(&self, source: &GuestSource) -> Result<LoadedGuest, LoadError> {
        let bytes: Arc<[u8]> = source.bytes()?.into();
        let marker = self.optimized_marker(&bytes);
        let baseline = if self.inner.tiered && !marker.as_ref().is_some_and(|m| m.exists()) {
            match self.baseline() {
                Ok(tier) => Some(tier),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "no baseline compiler; compiling optimized code before the first run");
                    None
                }
            }
        } else {
            None
        };
        let Some(tier) = baseline else {
            let loaded = self.compile_noting(source, &bytes, None).await?;
            if let Some(marker) = marker {
                mark(&marker);
            }
            return Ok(loaded);
        };
        let loaded = match self.compile_noting(source, &bytes, Some(tier)).await {
            Ok(loaded) => loaded,
            Err(e) => {
                // Winch lacks a feature the guest uses: optimized code only.
                tracing::debug!(guest = %source, error = %e.message, "the baseline compiler cannot compile this guest");
                let loaded = self.compile_noting(source, &bytes, None).await?;
                if let Some(marker) = marker {
                    mark(&marker);
                }
                return Ok(loaded);
            }
        };
        tracing::info!(
            guest = %source,
            "guest {source} runs on baseline code until its optimized code, compiling in the background, is ready"
        );
        let (runtime, guest, name) = (self.clone(), loaded.clone(), source.to_string());
        let optimize = move || {
            let started = Instant::now();
            match runtime.compile(&runtime.inner.main, &name, &bytes, false) {
                Ok((code, _)) => {
                    *guest.code.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(code);
                    if let Some(marker) = &marker {
                        mark(marker);
                    }
                    // The compiler's heap and code pages are not needed again.
                    crate::memory::release_startup_memory();
                    tracing::info!(
                        guest = %name,
                        seconds = started.elapsed().as_secs_f64(),
                        "guest {name} now runs on optimized code (compiled in {:.1} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
                Err(e) => tracing::warn!(
                    guest = %name,
                    "optimizing guest {name} failed, so it keeps running on baseline code: {}",
                    e.message
                ),
            }
        };
        // A thread of its own, not tokio's blocking pool: a shutdown does
        // not wait for it.
        if let Err(e) = std::thread::Builder::new()
            .name("cwpub-optimize".into())
            .spawn(optimize)
        {
            tracing::warn!(guest = %source, error = %e, "cannot start the thread that optimizes guest {source}; it keeps running on baseline code");
        }
        Ok(loaded)
    }

    /// Compiles `bytes` (for `tier`, else the main engine) on a blocking
    /// thread, announcing a slow compile and its end.
    async fn compile_noting(
        &self,
        source: &GuestSource,
        bytes: &Arc<[u8]>,
        tier: Option<Arc<Tier>>,
    ) -> Result<LoadedGuest, LoadError> {
        let name = source.to_string();
        let size = bytes.len();
        let (runtime, bytes) = (self.clone(), bytes.clone());
        let started = Instant::now();
        let task = tokio::task::spawn_blocking(move || match &tier {
            Some(tier) => runtime.load_in(tier, &name, &bytes, true),
            None => runtime.load_bytes(&name, &bytes),
        });
        tokio::pin!(task);
        let mut next_note = SLOW_LOAD;
        let joined = loop {
            tokio::select! {
                joined = &mut task => break joined,
                () = tokio::time::sleep_until((started + next_note).into()) => {
                    self.note_progress(source, size, started.elapsed());
                    next_note = if next_note < PROGRESS_EVERY { PROGRESS_EVERY } else { next_note + PROGRESS_EVERY };
                }
            }
        };
        let loaded = joined.unwrap_or_else(|e| {
            Err(LoadError {
                source_name: source.to_string(),
                message: format!("compilation task failed: {e}"),
            })
        });
        let elapsed = started.elapsed();
        if elapsed >= SLOW_LOAD && loaded.is_ok() {
            tracing::info!(
                guest = %source,
                seconds = elapsed.as_secs_f64(),
                "compiled guest {source} ({}) in {:.1} s; {}",
                megabytes(size),
                elapsed.as_secs_f64(),
                match &self.inner.cache_dir {
                    Some(dir) => format!(
                        "cached in {}, so the next start of this guest version loads it in milliseconds",
                        dir.display()
                    ),
                    None => "not cached (no cache directory; see CWPUB_CACHE_DIR), so every start compiles it again".to_owned(),
                }
            );
        }
        loaded
    }

    /// Says that a load is still compiling, and what that is.
    fn note_progress(&self, source: &GuestSource, size: usize, elapsed: Duration) {
        if elapsed < PROGRESS_EVERY {
            tracing::info!(
                guest = %source,
                bytes = size,
                "compiling guest {source} ({}) to native code; a large guest (a Python one is ~18 MB) \
                 takes from seconds to minutes the first time{}",
                megabytes(size),
                match &self.inner.cache_dir {
                    Some(dir) => format!(", then it is cached in {}", dir.display()),
                    None => " (caching is off, see CWPUB_CACHE_DIR)".to_owned(),
                }
            );
        } else {
            tracing::info!(
                guest = %source,
                "still compiling guest {source} ({:.0} s so far)",
                elapsed.as_secs_f64()
            );
        }
    }

    /// Loads and compiles a guest from its bytes for the main engine, synchronously.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<LoadedGuest, LoadError> {
        self.load_in(&self.inner.main, name, bytes, false)
    }

    fn load_in(
        &self,
        tier: &Tier,
        name: &str,
        bytes: &[u8],
        baseline: bool,
    ) -> Result<LoadedGuest, LoadError> {
        let (code, wit_version) = self.compile(tier, name, bytes, baseline)?;
        Ok(LoadedGuest {
            runtime: self.clone(),
            code: Arc::new(RwLock::new(Arc::new(code))),
            name: name.into(),
            wit_version: wit_version.into(),
        })
    }

    /// Compiles and type-checks a guest for `tier`; returns its code and
    /// the `cwpub:publisher` version it was built for.
    fn compile(
        &self,
        tier: &Tier,
        name: &str,
        bytes: &[u8],
        baseline: bool,
    ) -> Result<(Code, String), LoadError> {
        let fail = |message: String| LoadError {
            source_name: name.to_owned(),
            message,
        };
        check_header(bytes).map_err(fail)?;
        let engine = &tier.engine;
        let component = Component::new(engine, bytes).map_err(|e| {
            let text = format!("{e:#}");
            // wasmtime's words when mprotect(PROT_EXEC) is refused.
            let what = if text.contains("unable to make memory executable") {
                "compiled, but the system forbids executable memory, which running compiled guests needs (a systemd unit's MemoryDenyWriteExecute=yes, or another W^X policy; remove it for cwpub)"
            } else {
                "not a valid WebAssembly component"
            };
            fail(format!("{what}: {}", GuestText::new(&text)))
        })?;
        let wit_version = publisher_version(&component, engine).map_err(fail)?;
        let instance_pre = tier.linker.instantiate_pre(&component).map_err(|e| {
            let hint = if newer_than(&wit_version, bindings::WIT_VERSION) {
                format!(
                    "it was built for cwpub:publisher@{wit_version}, newer than this host's {}; upgrade cwpub",
                    bindings::WIT_VERSION
                )
            } else {
                "it may use WASI features this host does not link".to_owned()
            };
            fail(format!(
                "the component needs imports this host does not provide ({hint}): {}",
                GuestText::new(&format!("{e:#}"))
            ))
        })?;
        let pre = GuestPre::new(instance_pre).map_err(|e| {
            fail(format!(
                "the component's exports do not match cwpub:publisher@{}: {}; rebuild it against wit/ of this cwpub version",
                bindings::WIT_VERSION,
                GuestText::new(&format!("{e:#}"))
            ))
        })?;
        let code = Code {
            engine: engine.clone(),
            pre,
            baseline,
        };
        Ok((code, wit_version))
    }

    /// The file that says the cache holds the main engine's code for
    /// `bytes`, if there is a cache: named after the bytes' CRC-32C and
    /// length and the engine's settings.
    fn optimized_marker(&self, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.inner.cache_dir.as_ref()?;
        let mut engine = DefaultHasher::new();
        self.engine()
            .precompile_compatibility_hash()
            .hash(&mut engine);
        Some(dir.join("optimized").join(format!(
            "{:08x}-{}-{:016x}",
            crc32c::crc32c(bytes),
            bytes.len(),
            engine.finish()
        )))
    }
}

/// Writes a marker; a cache that cannot be written only means that the
/// next start tiers again.
fn mark(marker: &std::path::Path) {
    if marker.exists() {
        return;
    }
    let written = marker
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(marker, b""));
    if let Err(e) = written {
        tracing::debug!(marker = %marker.display(), error = %e, "cannot note the optimized code in the cache");
    }
}

/// A load taking longer than this is announced (cached loads take milliseconds).
pub const SLOW_LOAD: Duration = Duration::from_secs(1);
/// How often a long compilation says it is still going.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(15);

/// `18.4 MB` (decimal, as file managers and `ls -h --si` show sizes).
fn megabytes(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Tells a core module (or garbage) from a component, with the fix for each.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    const MAGIC: &[u8; 4] = b"\0asm";
    const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err("not a WebAssembly file (no \\0asm header)".to_owned());
    }
    if bytes[4..8] == CORE_MODULE_VERSION {
        return Err(
            "this is a core WebAssembly module, not a component; build the guest with \
             `cargo build --target wasm32-wasip2` (or wrap it with `wasm-tools component new`)"
                .to_owned(),
        );
    }
    Ok(())
}

/// Finds the exported `cwpub:publisher/publisher@X.Y.Z` and checks it is compatible.
fn publisher_version(component: &Component, engine: &wasmtime::Engine) -> Result<String, String> {
    let ty = component.component_type();
    let mut exports = Vec::new();
    for (export, item) in ty.exports(engine) {
        if let Some(version) = export
            .strip_prefix(bindings::PUBLISHER_INTERFACE)
            .and_then(|r| r.strip_prefix('@'))
            && matches!(item.ty, ComponentItem::ComponentInstance(_))
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
        {
            return if compatible(version, bindings::WIT_VERSION) {
                Ok(version.to_owned())
            } else {
                Err(format!(
                    "the component was built for cwpub:publisher@{version}, but this host speaks \
                     cwpub:publisher@{}; rebuild the guest against wit/ of this cwpub version",
                    bindings::WIT_VERSION
                ))
            };
        }
        exports.push(export.to_owned());
    }
    Err(format!(
        "the component does not export {}@{} (it exports: {}); is it a cwpub guest built with \
         `wit_bindgen::generate!({{ world: \"guest\", path: \"wit\" }})`?",
        bindings::PUBLISHER_INTERFACE,
        bindings::WIT_VERSION,
        if exports.is_empty() {
            "nothing".to_owned()
        } else {
            GuestText::new(&exports.join(", ")).to_string()
        }
    ))
}

/// True when version `a` is greater than `b` (numeric major.minor.patch).
fn newer_than(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> {
        v.split(['-', '+'])
            .next()
            .unwrap_or("")
            .split('.')
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    parts(a) > parts(b)
}

/// Semver compatibility as the component model applies it: same major, or same
/// minor when the major is 0.
fn compatible(guest: &str, host: &str) -> bool {
    let parts = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split(['.', '-', '+']);
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parts(guest), parts(host)) {
        (Some((0, g_minor)), Some((0, h_minor))) => g_minor == h_minor,
        (Some((g_major, _)), Some((h_major, _))) => g_major == h_major,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_compatibility_follows_component_model_rules() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("2.0.0", "1.0.0"));
        assert!(!compatible("garbage", "0.1.0"));
        assert!(
            newer_than("0.1.3", "0.1.0")
                && !newer_than("0.1.0", "0.1.0")
                && !newer_than("0.0.9", "0.1.0")
        );
    }

    #[test]
    fn header_check_names_core_modules_and_non_wasm() {
        assert!(
            check_header(b"\0asm\x01\0\0\0")
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        assert!(
            check_header(b"hello world")
                .unwrap_err()
                .contains("not a WebAssembly file")
        );
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
