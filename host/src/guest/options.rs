//! [`RuntimeOptions`]: how the wasm engine is built, read from the
//! environment map in one place so `invoke`, `check`, `run` and `test` build
//! the engine from the same variables, and [`Codegen`], the compile effort.

use std::path::{Path, PathBuf};

use crate::env::{ENV_CACHE_DIR, ENV_POOLING, Env, get};

/// Which compiler makes a guest's native code, and how hard it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codegen {
    /// Cranelift's optimized code, for guests that run for a long time (the
    /// daemon, `invoke`, `check`).
    #[default]
    Optimized,
    /// Winch, wasmtime's baseline compiler: one pass over the wasm, about a
    /// sixth of Cranelift's time for a large guest (an 18 MB Python guest:
    /// 3.7 s instead of 22 s), the same behaviour, slower code (a Rust
    /// guest's run 13 µs -> 16 µs; a Python guest's run, mostly
    /// instantiation, 1.4 ms -> 1.7 ms). For `cwpub test`, where a guest is
    /// compiled after every edit and run a few times, and for a daemon's first
    /// runs of a guest while its optimized code compiles. x86-64 only (Winch's
    /// other backends are incomplete). Cached separately.
    Baseline,
    /// Cranelift without optimization passes and with its single-pass
    /// register allocator: about half the optimized compile (a Python guest:
    /// 12 s instead of 22 s), slower code. `cwpub test`'s choice where there
    /// is no Winch.
    Quick,
}

impl Codegen {
    /// Whether this machine has Winch, wasmtime's baseline compiler.
    pub const BASELINE_AVAILABLE: bool = cfg!(target_arch = "x86_64");

    /// The fastest compile this machine has: Winch where it is available,
    /// else Cranelift's quick settings.
    pub fn fastest_compile() -> Codegen {
        if Self::BASELINE_AVAILABLE {
            Codegen::Baseline
        } else {
            Codegen::Quick
        }
    }
}

/// Engine settings taken from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// Use the pooling instance allocator (`CWPUB_POOLING=0` turns it off, for
    /// hosts that cannot reserve its virtual address space).
    pub pooling: bool,
    /// Where compiled guests are cached, so a restart skips compilation:
    /// `CWPUB_CACHE_DIR`, else `$XDG_CACHE_HOME/cwpub`, else `$HOME/.cache/cwpub`;
    /// `None` (`CWPUB_CACHE_DIR=off`, or no home) compiles at every start.
    pub cache_dir: Option<PathBuf>,
    /// Which compiler makes guests' code (not from the environment: the
    /// command decides; `cwpub test` uses [`Codegen::fastest_compile`]).
    pub codegen: Codegen,
    /// Start a guest that is not in the cache on baseline code, compiled in
    /// seconds, and switch its runs to optimized code once that is compiled
    /// in the background (not from the environment: the daemon asks for it;
    /// a command that exits soon compiles what it runs, and `cwpub check`
    /// fills the cache with optimized code).
    pub tiered: bool,
}

impl Default for RuntimeOptions {
    /// Pooling, no cache, optimized code.
    fn default() -> Self {
        RuntimeOptions {
            pooling: true,
            cache_dir: None,
            codegen: Codegen::Optimized,
            tiered: false,
        }
    }
}

impl RuntimeOptions {
    /// The options `env` asks for.
    pub fn from_env(env: &Env) -> Self {
        let pooling = get(env, ENV_POOLING).is_none_or(|v| v != "0");
        let cache_dir = match get(env, ENV_CACHE_DIR) {
            Some("off") => None,
            Some(dir) => Some(PathBuf::from(dir)),
            None => get(env, "XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| get(env, "HOME").map(|home| Path::new(home).join(".cache")))
                .map(|base| base.join("cwpub")),
        };
        RuntimeOptions {
            pooling,
            cache_dir,
            ..RuntimeOptions::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::from_pairs as env;

    #[test]
    fn from_the_environment_map() {
        let o = RuntimeOptions::from_env(&env(&[("HOME", "/home/u")]));
        assert!(o.pooling);
        assert_eq!(o.cache_dir, Some(PathBuf::from("/home/u/.cache/cwpub")));
        let o = RuntimeOptions::from_env(&env(&[
            ("HOME", "/home/u"),
            ("XDG_CACHE_HOME", "/x"),
            ("CWPUB_POOLING", "0"),
        ]));
        assert!(!o.pooling);
        assert_eq!(o.cache_dir, Some(PathBuf::from("/x/cwpub")));
        let o = RuntimeOptions::from_env(&env(&[("HOME", "/h"), ("CWPUB_CACHE_DIR", "off")]));
        assert_eq!(o.cache_dir, None);
        let o = RuntimeOptions::from_env(&env(&[("CWPUB_CACHE_DIR", "/c")]));
        assert_eq!(o.cache_dir, Some(PathBuf::from("/c")));
        assert_eq!(RuntimeOptions::from_env(&Env::new()).cache_dir, None);
    }
}
