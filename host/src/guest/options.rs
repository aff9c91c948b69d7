//! [`RuntimeOptions`]: how the wasm engine is built, read from the
//! environment map in one place so `invoke`, `check` and `run` build the same
//! engine from the same variables.

use std::path::{Path, PathBuf};

use crate::env::{ENV_CACHE_DIR, ENV_POOLING, Env, get};

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
}

impl Default for RuntimeOptions {
    /// Pooling, no cache.
    fn default() -> Self {
        RuntimeOptions {
            pooling: true,
            cache_dir: None,
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
        RuntimeOptions { pooling, cache_dir }
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
