//! [`RuntimeOptions`]: how the wasm engine is built, read from the
//! environment map in one place so `invoke`, `check`, `run` and `test` build
//! the engine from the same variables, and [`Codegen`], the compile effort.

use std::path::{Path, PathBuf};

use crate::env::{ENV_CACHE_DIR, ENV_POOLING, Env, get};

/// How much work Cranelift puts into a guest's native code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codegen {
    /// Optimized code, for guests that run for a long time (the daemon, `invoke`, `check`).
    #[default]
    Optimized,
    /// No optimization passes and the single-pass register allocator: about
    /// half the first compile of a large guest (an 18 MB Python guest: 8.5 s
    /// instead of 17.6 s), the same behaviour, slower code (a Rust guest's
    /// run ~20 µs -> ~30 µs; a Python guest's run, mostly instantiation,
    /// unchanged). For `cwpub test`, where a guest is compiled after every
    /// edit and run a few times. Cached separately from optimized code.
    Quick,
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
    /// How much work Cranelift puts into guests (not from the environment:
    /// the command decides; `cwpub test` uses [`Codegen::Quick`]).
    pub codegen: Codegen,
}

impl Default for RuntimeOptions {
    /// Pooling, no cache, optimized code.
    fn default() -> Self {
        RuntimeOptions {
            pooling: true,
            cache_dir: None,
            codegen: Codegen::Optimized,
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
            codegen: Codegen::Optimized,
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
