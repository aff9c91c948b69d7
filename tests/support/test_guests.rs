//! Builds the test-only guests under `tests/guests/` for wasm32-wasip2, once
//! per test process, and returns the path of the resulting component. They
//! share `target/guests` with the reference guests `host/build.rs` builds, so
//! the wasm dependencies and the bindings generator are compiled once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is inside the workspace")
        .to_path_buf()
}

/// Builds (if needed) and returns the path of test guest `name` (a package under tests/guests).
pub fn test_guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<()>> = OnceLock::new();
    let _serialize = BUILT
        .get_or_init(|| Mutex::new(()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let root = workspace_root();
    let target_dir = root.join("target").join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "guest",
            "-p",
            name,
            "--target-dir",
        ])
        .arg(&target_dir)
        // As in host/build.rs: the build directory too, not an outer one. (A
        // build dir shared by several checkouts names a guest's artifacts
        // alike for each, so one checkout's guest would look up to date in
        // another.)
        .arg("--config")
        .arg(format!(
            "build.build-dir=\"{}\"",
            target_dir
                .display()
                .to_string()
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
        ))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("running cargo to build a test guest");
    assert!(
        output.status.success(),
        "building test guest `{name}` for wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = target_dir
        .join("wasm32-wasip2")
        .join("guest")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(
        path.is_file(),
        "cargo reported success but {} is missing",
        path.display()
    );
    path
}
