//! Runs the real `cwpub` binary for the command-line tests, with a compiled-
//! guest cache private to this test process (shared by its tests, so each
//! guest is compiled once per run, and never by an earlier run).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// `cwpub` with a private cache directory and no AWS or cwpub settings from the environment.
pub fn cwpub() -> Command {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let cache = CACHE.get_or_init(|| tempfile::tempdir().expect("cache dir"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cwpub"));
    cmd.env("CWPUB_CACHE_DIR", cache.path())
        .env_remove("RUST_LOG")
        .env_remove("AWS_REGION")
        .env_remove("CWPUB_TASK_ID");
    cmd
}

/// What a finished command returned.
pub struct Ran {
    /// The exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Ran {
    /// Both streams, for assertion messages.
    pub fn both(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

impl From<Output> for Ran {
    fn from(o: Output) -> Ran {
        Ran {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `cwpub <args>` in `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Ran {
    cwpub()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run cwpub")
        .into()
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}
